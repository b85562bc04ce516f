import type { ChildProcess } from 'node:child_process';
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HubDownloadOptions } from '../src/node/index.js';
import { hubDownload } from '../src/node/index.js';
import { listFiles, sha256Hex, testBytes, waitFor } from './helpers/hub-server.js';
import { useHubFixture } from './helpers/hub-fixture.js';

// Two real processes against one cache (docs/reliability.md §9 DL6, DL7): the child is
// test/helpers/hub-child.ts, bundled with esbuild (a dependency of tsup) into a temp folder.

const fx = useHubFixture({
  prefix: 'dcae-hub-proc-',
  defaults: { retry: { attempts: 2, baseDelayMs: 1 }, lock: { pollMs: 20, staleMs: 5000 } },
});
let work: string;
let child: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'dcae-hub-proc-'));
  const require = createRequire(import.meta.url);
  const esbuildPath = createRequire(require.resolve('tsup')).resolve('esbuild');
  const esbuild = (await import(pathToFileURL(esbuildPath).href)) as {
    build(options: Record<string, unknown>): Promise<unknown>;
  };
  child = join(work, 'hub-child.mjs');
  await esbuild.build({
    // The review run (vitest.review-hf.config.ts, docs/hub.md) bundles the child on @huggingface/hub.
    entryPoints: [
      process.env.DCAE_HUB_REVIEW === 'hf'
        ? join(import.meta.dirname, 'review', 'hf-hub-child.ts')
        : join(import.meta.dirname, 'helpers', 'hub-child.ts'),
    ],
    outfile: child,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    logLevel: 'silent',
  });
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const WEIGHTS = testBytes(1 << 20, 11);
let repoCount = 0;

interface ChildResult {
  ok: boolean;
  code?: string;
  result?: { path: string; cached: boolean };
  warnings: string[];
}

function startChild(
  repo: string,
  options: HubDownloadOptions,
): { process: ChildProcess; done: Promise<ChildResult> } {
  const proc = spawn(
    process.execPath,
    [child, JSON.stringify({ repo, file: 'model.safetensors', options })],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  let out = '';
  proc.stdout.on('data', (data: Buffer) => (out += data.toString()));
  const done = new Promise<ChildResult>((resolve, reject) => {
    proc.on('error', reject);
    proc.on('close', () => {
      try {
        resolve(JSON.parse(out) as ChildResult);
      } catch {
        reject(new Error(`child printed no result: ${JSON.stringify(out)}`));
      }
    });
  });
  return { process: proc, done };
}

describe('two processes, one cache', () => {
  it('DL6: both get a verified file; the bytes are downloaded once (the second waits on the lock)', async () => {
    const repo = `org/race-${++repoCount}`;
    const { etags } = fx.hub.addRepo(repo, { 'model.safetensors': WEIGHTS });
    // ~1 MiB at ~4 MiB/s: long enough for the second process to find the lock taken.
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, action: { throttle: 4 << 20 } });
    const a = startChild(repo, fx.opts());
    const b = startChild(repo, fx.opts());
    const [ra, rb] = await Promise.all([a.done, b.done]);

    expect([ra.ok, rb.ok]).toEqual([true, true]);
    expect(ra.result!.path).toBe(rb.result!.path);
    expect([ra.result!.cached, rb.result!.cached].sort()).toEqual([false, true]);
    expect(sha256Hex(new Uint8Array(await readFile(ra.result!.path)))).toBe(etags['model.safetensors']);
    expect(fx.hub.count('GET', /\/blobs\//)).toBe(1);
    const files = await listFiles(fx.cacheDir);
    expect(
      files.filter((f) => f.endsWith('.incomplete') || f.endsWith('.lock') || f.endsWith('.tmp')),
    ).toEqual([]);
  });

  it('DL7: a process killed mid-download leaves a temp file and a stale lock; the next run takes the lock over and resumes', async () => {
    const repo = `org/crash-${++repoCount}`;
    const { etags } = fx.hub.addRepo(repo, { 'model.safetensors': WEIGHTS });
    const etag = etags['model.safetensors']!;
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, times: 1, action: { throttle: 1 << 20 } });
    const killed = startChild(repo, fx.opts());
    const blobs = join(fx.cacheDir, `models--${repo.replace('/', '--')}`, 'blobs');
    let partial = 0;
    await waitFor(async () => {
      const temp = (await listFiles(blobs)).find((f) => f.endsWith('.incomplete'));
      partial = temp === undefined ? 0 : (await stat(join(blobs, temp))).size;
      return partial >= 100_000;
    });
    killed.process.kill('SIGKILL');
    await killed.done.catch(() => undefined);

    const lock = await lockFile(repo, etag);
    const owner = JSON.parse(await readFile(lock, 'utf8')) as { pid: number; host: string };
    expect(owner).toMatchObject({ pid: killed.process.pid, host: hostname() });
    const left = (await listFiles(blobs)).filter((f) => f.endsWith('.incomplete'));
    expect(left).toHaveLength(1);
    const leftSize = (await stat(join(blobs, left[0]!))).size;

    fx.hub.requests.length = 0;
    const file = await hubDownload(repo, 'model.safetensors', fx.opts());
    expect(sha256Hex(new Uint8Array(await readFile(file.path)))).toBe(etag);
    expect(
      fx.warnings.some(
        (w) => w.includes(`taking over the stale lock`) && w.includes(`process ${owner.pid} no longer runs`),
      ),
    ).toBe(true);
    expect(fx.hub.requests.find((r) => r.path.startsWith('/blobs/'))?.range).toBe(`bytes=${leftSize}-`);
    expect(
      (await listFiles(fx.cacheDir)).filter((f) => f.endsWith('.incomplete') || f.endsWith('.lock')),
    ).toEqual([]);
  });

  it('DL7: a lock that is not refreshed is stale after staleMs, even from another host', async () => {
    const repo = `org/stale-${++repoCount}`;
    const { etags } = fx.hub.addRepo(repo, { 'model.safetensors': testBytes(5000, 2) });
    const lock = await lockFile(repo, etags['model.safetensors']!);
    await writeFile(lock, JSON.stringify({ pid: 1, host: 'another-host', token: 'x' }));
    const started = Date.now();
    await hubDownload(repo, 'model.safetensors', fx.opts({ lock: { staleMs: 300, pollMs: 20 } }));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(fx.warnings.some((w) => w.includes('not refreshed'))).toBe(true);
  });

  it('a live holder that never finishes: LOCK_TIMEOUT naming the lock file', async () => {
    const repo = `org/held-${++repoCount}`;
    const { etags } = fx.hub.addRepo(repo, { 'model.safetensors': testBytes(5000, 5) });
    const lock = await lockFile(repo, etags['model.safetensors']!);
    // This very process holds it: alive, and on this host.
    await writeFile(lock, JSON.stringify({ pid: process.pid, host: hostname(), token: 'x' }));
    await expect(
      hubDownload(
        repo,
        'model.safetensors',
        fx.opts({ lock: { timeoutMs: 200, pollMs: 20, staleMs: 60_000 } }),
      ),
    ).rejects.toMatchObject({ code: 'LOCK_TIMEOUT', message: expect.stringContaining(lock) });
    expect((await listFiles(fx.cacheDir)).filter((f) => f.includes('blobs'))).toEqual([]);
  });
});

/** The path of the lock of `repo`'s blob `etag` in this test's cache (its folder created). */
async function lockFile(repo: string, etag: string): Promise<string> {
  const path = join(fx.cacheDir, '.locks', `models--${repo.replace('/', '--')}`, `${etag}.dcae.lock`);
  await mkdir(dirname(path), { recursive: true });
  return path;
}
