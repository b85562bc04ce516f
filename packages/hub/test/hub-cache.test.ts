import { execFileSync } from 'node:child_process';
import { chmod, mkdir, readFile, symlink, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { hubDownload, verifyHubCache } from '../src/node/index.js';
import { gitSha1Hex, listFiles, sha256Hex, testBytes } from './helpers/hub-server.js';
import { failure, useHubFixture } from './helpers/hub-fixture.js';

const fx = useHubFixture({
  prefix: 'dcae-hub-cache-',
  cacheSubdir: 'hub',
  defaults: { retry: { attempts: 2, baseDelayMs: 1 }, timeoutMs: 2000 },
});
let repoCount = 0;

const CONFIG = new TextEncoder().encode('{"_class_name": "AutoencoderDC"}');
const WEIGHTS = testBytes(200_000, 3);

function newRepo() {
  const repo = `org/cache-${++repoCount}`;
  return {
    repo,
    ...fx.hub.addRepo(repo, { 'config.json': CONFIG, 'diffusion_pytorch_model.safetensors': WEIGHTS }),
  };
}

/** An endpoint where nothing listens (a port just freed): every request fails to connect. */
let DEAD_ENDPOINT: string;
beforeAll(async () => {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  DEAD_ENDPOINT = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await new Promise((resolve) => server.close(resolve));
});

/**
 * A cache laid out by hand exactly as huggingface_hub's `hf_hub_download` leaves it: blobs named
 * by sha256 (LFS) or git sha1, relative symlinks from snapshots/<commit>/, refs/main holding the
 * commit without a newline, and the lock files Python's filelock leaves behind.
 */
async function pythonCache(repo: string, commit: string): Promise<void> {
  const root = join(fx.cacheDir, `models--${repo.replace('/', '--')}`);
  const files: [string, Uint8Array, string][] = [
    ['config.json', CONFIG, gitSha1Hex(CONFIG)],
    ['diffusion_pytorch_model.safetensors', WEIGHTS, sha256Hex(WEIGHTS)],
  ];
  await mkdir(join(root, 'blobs'), { recursive: true });
  await mkdir(join(root, 'snapshots', commit), { recursive: true });
  await mkdir(join(root, 'refs'), { recursive: true });
  await mkdir(join(fx.cacheDir, '.locks', `models--${repo.replace('/', '--')}`), { recursive: true });
  for (const [name, bytes, etag] of files) {
    await writeFile(join(root, 'blobs', etag), bytes);
    await symlink(`../../blobs/${etag}`, join(root, 'snapshots', commit, name));
    await writeFile(join(fx.cacheDir, '.locks', `models--${repo.replace('/', '--')}`, `${etag}.lock`), '');
  }
  await writeFile(join(root, 'refs', 'main'), commit);
}

describe('a cache written by huggingface_hub (Python) is used as is', () => {
  it('offline: both files come from the snapshot, verified, with no request', async () => {
    const { repo, commit } = newRepo();
    await pythonCache(repo, commit);
    const before = await listFiles(fx.cacheDir);
    for (const file of ['config.json', 'diffusion_pytorch_model.safetensors']) {
      const found = await hubDownload(
        repo,
        file,
        fx.opts({ env: { HF_HUB_OFFLINE: '1' }, endpoint: DEAD_ENDPOINT }),
      );
      expect(found).toMatchObject({
        commit,
        cached: true,
        path: join(fx.cacheDir, `models--${repo.replace('/', '--')}`, 'snapshots', commit, file),
      });
    }
    expect(fx.hub.requests).toEqual([]);
    expect(await listFiles(fx.cacheDir)).toEqual(before);
  });

  it('online: one HEAD per file and no download; the Python lock files do not block us', async () => {
    const { repo, commit } = newRepo();
    await pythonCache(repo, commit);
    const found = await hubDownload(repo, 'diffusion_pytorch_model.safetensors', fx.opts());
    expect(found).toMatchObject({ commit, cached: true });
    expect(fx.hub.requests.map((r) => r.method)).toEqual(['HEAD']);
  });

  it('a revision that moved downloads only the changed file and updates refs/main', async () => {
    const { repo, commit } = newRepo();
    await pythonCache(repo, commit);
    const moved = fx.hub.addRepo(repo, {
      'config.json': CONFIG,
      'diffusion_pytorch_model.safetensors': testBytes(1000, 4),
    });
    const config = await hubDownload(repo, 'config.json', fx.opts());
    expect(config).toMatchObject({ commit: moved.commit, cached: true });
    const weights = await hubDownload(repo, 'diffusion_pytorch_model.safetensors', fx.opts());
    expect(weights).toMatchObject({ commit: moved.commit, cached: false });
    const root = join(fx.cacheDir, `models--${repo.replace('/', '--')}`);
    expect(await readFile(join(root, 'refs', 'main'), 'utf8')).toBe(moved.commit);
    // The old snapshot stays, as huggingface_hub keeps it.
    expect(await listFiles(join(root, 'snapshots', commit))).toEqual([
      'config.json',
      'diffusion_pytorch_model.safetensors',
    ]);
  });
});

describe('offline mode (HF_HUB_OFFLINE)', () => {
  it('without a cached snapshot: OFFLINE naming the cache, and no request', async () => {
    const { repo } = newRepo();
    const error = await failure(hubDownload(repo, 'config.json', fx.opts({ offline: true })));
    expect(error).toMatchObject({ code: 'OFFLINE', message: expect.stringContaining(fx.cacheDir) });
    expect(error.message).toContain('HF_HUB_OFFLINE');
    expect(fx.hub.requests).toEqual([]);
  });

  it('with a snapshot of another revision only: OFFLINE', async () => {
    const { repo } = newRepo();
    await hubDownload(repo, 'config.json', fx.opts());
    expect(
      (await failure(hubDownload(repo, 'config.json', fx.opts({ offline: true, revision: 'v2' })))).code,
    ).toBe('OFFLINE');
    const { commit } = await hubDownload(repo, 'config.json', fx.opts({ offline: true }));
    expect(
      (await hubDownload(repo, 'config.json', fx.opts({ offline: true, revision: commit }))).cached,
    ).toBe(true);
  });

  it('DL9: a blob damaged on disk is CORRUPT_BLOB offline, and downloaded again online', async () => {
    const { repo, etags } = newRepo();
    const file = 'diffusion_pytorch_model.safetensors';
    await hubDownload(repo, file, fx.opts());
    const blob = join(fx.cacheDir, `models--${repo.replace('/', '--')}`, 'blobs', etags[file]!);
    const damaged = new Uint8Array(await readFile(blob));
    damaged[1000]! ^= 1;
    await writeFile(blob, damaged);

    const offline = await failure(hubDownload(repo, file, fx.opts({ offline: true })));
    expect(offline).toMatchObject({ code: 'CORRUPT_BLOB', message: expect.stringContaining(blob) });

    expect((await verifyHubCache(fx.cacheDir)).corrupt).toEqual([{ repo, path: blob, etag: etags[file] }]);

    // Online, the default check is by size; 'hash' re-hashes and replaces the blob.
    expect((await hubDownload(repo, file, fx.opts())).cached).toBe(true);
    expect((await hubDownload(repo, file, fx.opts({ verify: 'hash' }))).cached).toBe(false);
    expect(new Uint8Array(await readFile(blob))).toEqual(WEIGHTS);
    expect(await verifyHubCache(fx.cacheDir)).toEqual({
      checked: 1,
      skipped: 0,
      corrupt: [],
      incomplete: [],
    });
  });

  it('a truncated blob is downloaded again online (size check)', async () => {
    const { repo, etags } = newRepo();
    const file = 'diffusion_pytorch_model.safetensors';
    await hubDownload(repo, file, fx.opts());
    await truncate(join(fx.cacheDir, `models--${repo.replace('/', '--')}`, 'blobs', etags[file]!), 100);
    const again = await hubDownload(repo, file, fx.opts());
    expect(again.cached).toBe(false);
    expect(new Uint8Array(await readFile(again.path))).toEqual(WEIGHTS);
    expect(fx.warnings.some((w) => w.includes('has 100 bytes'))).toBe(true);
  });
});

describe('an unreachable server', () => {
  it('falls back to the cached copy of the revision, with a warning', async () => {
    const { repo, commit } = newRepo();
    await hubDownload(repo, 'config.json', fx.opts());
    const found = await hubDownload(repo, 'config.json', fx.opts({ endpoint: DEAD_ENDPOINT }));
    expect(found).toMatchObject({ commit, cached: true });
    expect(fx.warnings.at(-1)).toContain('Using the cached copy');
  });

  it('uses the cached copy at the first connection failure, without the retry backoff, and says so', async () => {
    const { repo } = newRepo();
    const files = ['config.json', 'diffusion_pytorch_model.safetensors'];
    for (const file of files) await hubDownload(repo, file, fx.opts());
    // Five tries with a 2 s base delay would cost over 20 s per file before falling back.
    const slowRetries = { endpoint: DEAD_ENDPOINT, retry: { attempts: 5, baseDelayMs: 2000 } };
    const started = performance.now();
    for (const file of files)
      expect(await hubDownload(repo, file, fx.opts(slowRetries))).toMatchObject({ cached: true });
    expect(performance.now() - started).toBeLessThan(1500);
    expect(fx.warnings.filter((w) => w.includes('Retrying'))).toEqual([]);
    expect(fx.warnings.at(-1)).toMatch(/ECONNREFUSED.*Using the cached copy of .* without retrying/);
  });

  it('without a cached copy: NETWORK', async () => {
    const { repo } = newRepo();
    const error = await failure(hubDownload(repo, 'config.json', fx.opts({ endpoint: DEAD_ENDPOINT })));
    expect(error).toMatchObject({ code: 'NETWORK', message: expect.stringContaining('ECONNREFUSED') });
    expect(await listFiles(fx.cacheDir)).toEqual([]);
  });
});

describe('verifyHubCache', () => {
  it('counts blobs, skips names that are no digest, and lists temp files of interrupted downloads', async () => {
    const { repo, etags } = newRepo();
    await hubDownload(repo, 'config.json', fx.opts());
    const blobs = join(fx.cacheDir, `models--${repo.replace('/', '--')}`, 'blobs');
    await writeFile(join(blobs, 'not-a-digest'), 'x');
    await writeFile(
      join(blobs, `${etags['diffusion_pytorch_model.safetensors']}.0123456789ab.incomplete`),
      'x',
    );
    const result = await verifyHubCache(fx.cacheDir);
    expect(result).toMatchObject({ checked: 1, skipped: 1, corrupt: [] });
    expect(result.incomplete).toHaveLength(1);
  });
});

/** Mounts a tmpfs of `size` at a new folder; undefined where mounting is not permitted. */
function mountTmpfs(path: string, options: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', path], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const isRoot = process.getuid?.() === 0;

describe('a cache on a full or read-only disk', () => {
  it.runIf(process.platform === 'linux' && isRoot)(
    'DL5: a full disk (a 128 KiB tmpfs) is DISK_FULL; the temp file is removed and earlier blobs stay intact',
    async (context) => {
      await mkdir(fx.cacheDir);
      if (!mountTmpfs(fx.cacheDir, 'size=128k')) context.skip('mount is not permitted here');
      try {
        const { repo } = newRepo();
        const config = await hubDownload(repo, 'config.json', fx.opts());
        const before = await listFiles(fx.cacheDir);
        const error = await failure(hubDownload(repo, 'diffusion_pytorch_model.safetensors', fx.opts()));
        expect(error).toMatchObject({ code: 'DISK_FULL', message: expect.stringContaining('HF_HUB_CACHE') });
        expect(await listFiles(fx.cacheDir)).toEqual(before);
        expect(new Uint8Array(await readFile(config.path))).toEqual(CONFIG);
        expect(fx.warnings.some((w) => w.includes('free in'))).toBe(true);
      } finally {
        execFileSync('umount', [fx.cacheDir]);
      }
    },
  );

  it.runIf(process.platform === 'linux' && isRoot)(
    'a read-only cache: cached files are used (online and offline), a new download is OUTPUT_UNWRITABLE',
    async (context) => {
      await mkdir(fx.cacheDir);
      if (!mountTmpfs(fx.cacheDir, 'size=1m')) context.skip('mount is not permitted here');
      try {
        const { repo } = newRepo();
        await hubDownload(repo, 'config.json', fx.opts());
        execFileSync('mount', ['-o', 'remount,ro', fx.cacheDir]);
        const before = await listFiles(fx.cacheDir);
        expect((await hubDownload(repo, 'config.json', fx.opts())).cached).toBe(true);
        expect((await hubDownload(repo, 'config.json', fx.opts({ offline: true }))).cached).toBe(true);
        const error = await failure(hubDownload(repo, 'diffusion_pytorch_model.safetensors', fx.opts()));
        expect(error).toMatchObject({ code: 'OUTPUT_UNWRITABLE', message: expect.stringContaining('EROFS') });
        expect(await listFiles(fx.cacheDir)).toEqual(before);
        expect(fx.hub.count('GET', /\/blobs\//)).toBe(0);
      } finally {
        execFileSync('umount', [fx.cacheDir]);
      }
    },
  );

  it.skipIf(isRoot || process.platform === 'win32')(
    'a cache folder without write permission is OUTPUT_UNWRITABLE',
    async () => {
      await mkdir(fx.cacheDir);
      await chmod(fx.cacheDir, 0o555);
      const { repo } = newRepo();
      const error = await failure(hubDownload(repo, 'config.json', fx.opts()));
      expect(error).toMatchObject({ code: 'OUTPUT_UNWRITABLE', message: expect.stringContaining('EACCES') });
    },
  );
});
