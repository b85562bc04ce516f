import { execFileSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hostTensor, parseSafetensors, serializeSafetensors } from '../src/index.js';
import type { HostTensor } from '../src/index.js';
import { writeFileAtomic, writeSafetensorsFile } from '../src/node/index.js';
import { outputError } from '../src/node/write-file-atomic.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dcae-core-write-'));
});
afterEach(async () => {
  await chmod(dir, 0o755).catch(() => undefined);
  await rm(dir, { recursive: true, force: true });
});

const tensors = {
  w: hostTensor('float32', [2], new Float32Array([1, -1])),
  n: hostTensor('int64', [], new BigInt64Array([3n])),
};

describe('writeFileAtomic', () => {
  it('writes bytes or chunks (sync and async iterables) to a new file, leaving no temp file', async () => {
    await writeFileAtomic(join(dir, 'a.bin'), new Uint8Array([1, 2, 3]));
    await writeFileAtomic(join(dir, 'b.bin'), [
      new Uint8Array([1]),
      new Uint8Array(0),
      new Uint8Array([2, 3]),
    ]);
    async function* chunks() {
      yield new Uint8Array([4]);
      yield new Uint8Array([5, 6]);
    }
    await writeFileAtomic(join(dir, 'c.bin'), chunks());
    expect([...(await readFile(join(dir, 'a.bin')))]).toEqual([1, 2, 3]);
    expect([...(await readFile(join(dir, 'b.bin')))]).toEqual([1, 2, 3]);
    expect([...(await readFile(join(dir, 'c.bin')))]).toEqual([4, 5, 6]);
    expect((await readdir(dir)).sort()).toEqual(['a.bin', 'b.bin', 'c.bin']);
  });

  it('O1: refuses an existing file with OUTPUT_EXISTS and leaves it intact; overwrite replaces it', async () => {
    const path = join(dir, 'out.png');
    await writeFile(path, 'old');
    await expect(writeFileAtomic(path, new Uint8Array([1]))).rejects.toMatchObject({
      code: 'OUTPUT_EXISTS',
      message: expect.stringContaining(path),
    });
    expect(await readFile(path, 'utf8')).toBe('old');
    await writeFileAtomic(path, new TextEncoder().encode('new'), { overwrite: true });
    expect(await readFile(path, 'utf8')).toBe('new');
    expect(await readdir(dir)).toEqual(['out.png']);
  });

  it('a failure while producing the data leaves neither the file nor a temp file, and keeps the error', async () => {
    const path = join(dir, 'partial.bin');
    async function* failing() {
      yield new Uint8Array(1024);
      throw new Error('encoder crashed');
    }
    await expect(writeFileAtomic(path, failing())).rejects.toThrow('encoder crashed');
    expect(await readdir(dir)).toEqual([]);

    await writeFile(path, 'old');
    await expect(writeFileAtomic(path, failing(), { overwrite: true })).rejects.toThrow('encoder crashed');
    expect(await readFile(path, 'utf8')).toBe('old');
    expect(await readdir(dir)).toEqual(['partial.bin']);
  });

  it('a missing directory is OUTPUT_UNWRITABLE', async () => {
    await expect(writeFileAtomic(join(dir, 'no', 'such', 'x.bin'), new Uint8Array(1))).rejects.toMatchObject({
      code: 'OUTPUT_UNWRITABLE',
      message: expect.stringContaining('directory does not exist'),
    });
  });

  it('overwriting a directory is OUTPUT_UNWRITABLE and removes the temp file', async () => {
    await mkdir(join(dir, 'taken'));
    await expect(
      writeFileAtomic(join(dir, 'taken'), new Uint8Array(1), { overwrite: true }),
    ).rejects.toMatchObject({ code: 'OUTPUT_UNWRITABLE' });
    expect(await readdir(dir)).toEqual(['taken']);
  });

  it.skipIf(process.getuid?.() === 0)('a read-only directory is OUTPUT_UNWRITABLE', async () => {
    await chmod(dir, 0o555);
    await expect(writeFileAtomic(join(dir, 'x.bin'), new Uint8Array(1))).rejects.toMatchObject({
      code: 'OUTPUT_UNWRITABLE',
    });
  });

  // Needs root on Linux, with mount allowed (containers often forbid it).
  it.runIf(process.platform === 'linux' && process.getuid?.() === 0)(
    'O3: a real full disk (a 64 KiB tmpfs) is DISK_FULL; the old file stays and no temp is left',
    async (context) => {
      const mountPoint = join(dir, 'small');
      await mkdir(mountPoint);
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mountPoint], { stdio: 'ignore' });
      } catch {
        context.skip('mount is not permitted here');
      }
      try {
        const path = join(mountPoint, 'out.bin');
        await writeFile(path, 'old');
        await expect(
          writeFileAtomic(path, new Uint8Array(1 << 20), { overwrite: true }),
        ).rejects.toMatchObject({ code: 'DISK_FULL' });
        expect(await readFile(path, 'utf8')).toBe('old');
        expect(await readdir(mountPoint)).toEqual(['out.bin']);
      } finally {
        execFileSync('umount', [mountPoint]);
      }
    },
  );

  it('maps ENOSPC and EDQUOT to DISK_FULL and permission errors to OUTPUT_UNWRITABLE; other errors pass through', () => {
    const systemError = (code: string) => Object.assign(new Error(code), { code, syscall: 'write' });
    expect(outputError(systemError('ENOSPC'), '/x')).toMatchObject({
      code: 'DISK_FULL',
      message: expect.stringContaining('disk is full'),
    });
    expect(outputError(systemError('EDQUOT'), '/x')).toMatchObject({ code: 'DISK_FULL' });
    for (const code of ['EACCES', 'EPERM', 'EROFS', 'ENOENT', 'EIO']) {
      expect(outputError(systemError(code), '/x')).toMatchObject({ code: 'OUTPUT_UNWRITABLE' });
    }
    const plain = Object.assign(new Error('not from fs'), { code: 'ENOSPC' });
    expect(outputError(plain, '/x')).toBe(plain);
  });
});

describe('writeSafetensorsFile', () => {
  it('writes the same bytes as serializeSafetensors, with metadata', async () => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensorsFile(path, tensors, { metadata: { format: 'pt' } });
    const written = new Uint8Array(await readFile(path));
    expect(written).toEqual(serializeSafetensors(tensors, { format: 'pt' }));
    expect(parseSafetensors(written).header.metadata.get('format')).toBe('pt');
  });

  it('refuses to overwrite without { overwrite: true }', async () => {
    const path = join(dir, 'model.safetensors');
    await writeSafetensorsFile(path, tensors);
    await expect(writeSafetensorsFile(path, {})).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
    await writeSafetensorsFile(path, {}, { overwrite: true });
    expect(parseSafetensors(new Uint8Array(await readFile(path))).header.tensors.size).toBe(0);
  });

  it('invalid tensors fail before anything is written: no file, no temp', async () => {
    const bad = { w: { dtype: 'float32', shape: [3], data: new Float32Array(2) } as HostTensor };
    await expect(writeSafetensorsFile(join(dir, 'bad.safetensors'), bad)).rejects.toMatchObject({
      code: 'SHAPE_MISMATCH',
    });
    expect(await readdir(dir)).toEqual([]);
  });
});
