import { execFileSync } from 'node:child_process';
import { open, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  centerCrop,
  encodeNpy,
  npyHeader,
  parseNpy,
  resizeImage,
  sanitizeKey,
  shardName,
} from '@dcae/latents';
import { makePlan, readTarFile, resolvePartition, writeTar } from '@dcae/latents/node';
import { hasNumpy, imageFolder, picture, tempDir } from './helpers.js';

const numpy = hasNumpy();

describe('.npy v1.0', () => {
  it('writes the header NumPy writes, padded to 64 bytes', () => {
    const header = npyHeader('float32', [32, 16, 16]);
    expect(header.length % 64).toBe(0);
    const text = new TextDecoder('latin1').decode(header);
    expect(text.slice(0, 10)).toBe('\x93NUMPY\x01\x00v\x00');
    expect(text.slice(10).trimEnd()).toBe(
      "{'descr': '<f4', 'fortran_order': False, 'shape': (32, 16, 16), }",
    );
    expect(text.endsWith('\n')).toBe(true);
    expect(new TextDecoder().decode(npyHeader('float16', [7]))).toContain("'descr': '<f2'");
    expect(new TextDecoder().decode(npyHeader('float16', [7]))).toContain("'shape': (7,)");
  });

  it('round-trips float32 and float16 and refuses truncated data', () => {
    const data = Float32Array.from({ length: 24 }, (_, i) => i / 3 - 4);
    const parsed = parseNpy(encodeNpy('float32', [2, 3, 4], data));
    expect(parsed.shape).toEqual([2, 3, 4]);
    expect([...parsed.data]).toEqual([...data]);
    const half = Uint16Array.from([0x3c00, 0xc000, 0x7bff]);
    expect([...parseNpy(encodeNpy('float16', [3], half)).data]).toEqual([...half]);
    const bytes = encodeNpy('float32', [2, 3, 4], data);
    expect(() => parseNpy(bytes.subarray(0, bytes.length - 1))).toThrow(/data bytes/);
    expect(() => parseNpy(new Uint8Array(20))).toThrow(/magic/);
  });

  it.skipIf(!numpy)('loads with numpy as written (float32 and float16)', async () => {
    const dir = await tempDir();
    const f32 = Float32Array.from({ length: 12 }, (_, i) => i * 0.25 - 1);
    await writeFile(join(dir, 'a.npy'), encodeNpy('float32', [3, 2, 2], f32));
    await writeFile(
      join(dir, 'b.npy'),
      encodeNpy('float16', [2, 2], Uint16Array.from([0x3c00, 0x3800, 0xbc00, 0])),
    );
    const out = execFileSync('python3', [
      '-c',
      `import numpy as np; a=np.load("${dir}/a.npy"); b=np.load("${dir}/b.npy"); print(a.dtype, a.shape, float(a.sum()), b.dtype, b.tolist())`,
    ]).toString();
    expect(out.trim()).toBe(
      `float32 (3, 2, 2) ${f32.reduce((s, v) => s + v, 0).toFixed(1)} float16 [[1.0, 0.5], [-1.0, 0.0]]`,
    );
  });
});

describe('keys and names', () => {
  it('sanitizes keys: no dots or slashes, distinct names stay distinct', () => {
    expect(sanitizeKey('n01440764_10026')).toBe('n01440764_10026');
    const a = sanitizeKey('cls/img.1');
    const b = sanitizeKey('cls/img_1');
    expect(a).toMatch(/^cls_img_1_[0-9a-f]{8}$/);
    expect(a).not.toBe(b);
    expect(sanitizeKey('a.b')).not.toContain('.');
    expect(shardName(42)).toBe('shard-000042');
  });
});

describe('deterministic tar', () => {
  it('the same entries give the same bytes, and Python tarfile reads them', async () => {
    const dir = await tempDir();
    const entries = [
      { name: 'k1.npy', data: encodeNpy('float32', [2], Float32Array.from([1, 2])) },
      { name: 'k1.json', data: new TextEncoder().encode('{"key":"k1"}') },
    ];
    const write = async (path: string) => {
      const handle = await open(path, 'w');
      try {
        return await writeTar(
          handle,
          (async function* () {
            yield* entries;
          })(),
        );
      } finally {
        await handle.close();
      }
    };
    const a = await write(join(dir, 'a.tar'));
    await new Promise((r) => setTimeout(r, 1100)); // a different wall clock second must not matter
    const b = await write(join(dir, 'b.tar'));
    expect(a.sha256).toBe(b.sha256);
    expect(Buffer.compare(await readFile(join(dir, 'a.tar')), await readFile(join(dir, 'b.tar')))).toBe(0);
    const names: string[] = [];
    for await (const e of readTarFile(join(dir, 'a.tar'))) names.push(e.name);
    expect(names).toEqual(['k1.npy', 'k1.json']);
    const py = execFileSync('python3', [
      '-c',
      `import tarfile; t=tarfile.open("${dir}/a.tar"); print([(m.name, m.mtime, m.uid, m.gid, m.uname, oct(m.mode)) for m in t.getmembers()])`,
    ]).toString();
    expect(py.trim()).toBe("[('k1.npy', 0, 0, 0, '', '0o644'), ('k1.json', 0, 0, 0, '', '0o644')]");
  });
});

describe('preprocessing adm-center-crop-v1', () => {
  it('box-halves big images, resizes the short side, and cuts the centred square', () => {
    const { image, crop } = centerCrop(picture(300, 140, 1), 64);
    expect([image.width, image.height]).toEqual([64, 64]);
    // 300×140: 140 ≥ 128 → one halving to 150×70; short side 70 → 64: 150·64/70 = 137.14 → 137.
    expect(crop.resized).toEqual({ width: 137, height: 64 });
    expect([crop.left, crop.top]).toEqual([36, 0]);
  });

  it('keeps flat colours flat and averages 2×2 blocks when halving', () => {
    const flat = { width: 9, height: 7, channels: 3 as const, data: new Uint8Array(9 * 7 * 3).fill(77) };
    expect(new Set(resizeImage(flat, 5, 4, 'bicubic').data)).toEqual(new Set([77]));
    const checker = {
      width: 4,
      height: 2,
      channels: 3 as const,
      data: Uint8Array.from({ length: 24 }, (_, i) => (Math.floor(i / 3) % 2 === 0 ? 0 : 200)),
    };
    expect([...resizeImage(checker, 2, 1, 'box').data]).toEqual([100, 100, 100, 100, 100, 100]);
  });
});

describe('plans', () => {
  it('are deterministic: the same folder and options give the same runId; labels come from class folders', async () => {
    const dir = await tempDir();
    await imageFolder(join(dir, 'in'), 2, 3);
    const opts = { model: 'm', input: join(dir, 'in'), output: join(dir, 'out'), size: 64, shardSize: 4 };
    const a = await makePlan(opts);
    const b = await makePlan(opts);
    expect(a.runId).toBe(b.runId);
    expect(a.shards.map((s) => (s.source.kind === 'files' ? s.source.files.length : -1))).toEqual([4, 2]);
    const files = a.shards.flatMap((s) => (s.source.kind === 'files' ? s.source.files : []));
    expect(files.map((f) => f.label)).toEqual([0, 0, 0, 1, 1, 1]);
    expect(files.every((f) => !f.key.includes('.'))).toBe(true);
    expect((await makePlan({ ...opts, dtype: 'fp16' })).runId).not.toBe(a.runId);
  });

  it('partitions statically from flags and launcher variables', () => {
    expect(resolvePartition(5, {}, {}).shards).toEqual([0, 1, 2, 3, 4]);
    expect(resolvePartition(5, {}, { JOB_COMPLETION_INDEX: '3' }).shards).toEqual([3]);
    expect(resolvePartition(5, {}, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '2' }).shards).toEqual(
      [1, 3],
    );
    expect(resolvePartition(5, {}, { RANK: '0', WORLD_SIZE: '2' }).shards).toEqual([0, 2, 4]);
    expect(resolvePartition(5, { rank: 2, world: 3 }, {}).shards).toEqual([2]);
    expect(() => resolvePartition(5, { index: 7 }, {})).toThrow(/past the plan/);
    expect(() => resolvePartition(5, { rank: 3, world: 3 }, {})).toThrow(/outside world size/);
  });
});
