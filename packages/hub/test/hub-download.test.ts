import { lstat, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { DownloadProgress } from '../src/node/index.js';
import { hubDownload } from '../src/node/index.js';
import { gitSha1Hex, HubTestServer, listFiles, sha256Hex, testBytes, waitFor } from './helpers/hub-server.js';
import { failure, useHubFixture } from './helpers/hub-fixture.js';

const fx = useHubFixture({
  prefix: 'dcae-hub-',
  defaults: { retry: { attempts: 3, baseDelayMs: 1, maxDelayMs: 20 }, timeoutMs: 2000 },
});
let repoCount = 0;

const CONFIG = new TextEncoder().encode('{"model_name": "dc-ae-f32c32-in-1.0"}');
const WEIGHTS = testBytes(300_000, 7);

/** A fresh repo per test, so requests and faults never mix. */
function newRepo(options: { token?: string } = {}) {
  const repo = `org/repo-${++repoCount}`;
  const info = fx.hub.addRepo(repo, { 'config.json': CONFIG, 'model.safetensors': WEIGHTS }, options);
  return { repo, ...info };
}

/** A failed download leaves nothing in the cache: no blob, no temp file, no link, no ref, no lock. */
async function expectNothingCached(): Promise<void> {
  expect(await listFiles(fx.cacheDir)).toEqual([]);
}

describe('hubDownload: the happy path and the cache layout', () => {
  it('downloads a plain file and an LFS file into the huggingface_hub layout', async () => {
    const { repo, commit } = newRepo();
    const folder = `models--${repo.replace('/', '--')}`;
    const config = await hubDownload(repo, 'config.json', fx.opts());
    const weights = await hubDownload(repo, 'model.safetensors', fx.opts());

    expect(config).toMatchObject({
      repo,
      revision: 'main',
      commit,
      file: 'config.json',
      size: CONFIG.byteLength,
      cached: false,
    });
    expect(weights.path).toBe(join(fx.cacheDir, folder, 'snapshots', commit, 'model.safetensors'));
    expect(new Uint8Array(await readFile(weights.path))).toEqual(WEIGHTS);
    expect(new Uint8Array(await readFile(config.path))).toEqual(CONFIG);

    const sha = sha256Hex(WEIGHTS);
    const gitSha = gitSha1Hex(CONFIG);
    expect(await listFiles(fx.cacheDir)).toEqual([
      `${folder}/blobs/${gitSha}`,
      `${folder}/blobs/${sha}`,
      `${folder}/refs/main`,
      `${folder}/snapshots/${commit}/config.json`,
      `${folder}/snapshots/${commit}/model.safetensors`,
    ]);
    expect(await readlink(weights.path)).toBe(`../../blobs/${sha}`);
    expect(await readlink(config.path)).toBe(`../../blobs/${gitSha}`);
    expect(await readFile(join(fx.cacheDir, folder, 'refs', 'main'), 'utf8')).toBe(commit);

    // The LFS file: HEAD answered by the 302 itself, then GET resolve → 302 → GET /blobs.
    expect(fx.hub.count('GET', /\/blobs\//)).toBe(1);
    expect(fx.hub.count('GET', /\/resolve\/[0-9a-f]{40}\/model\.safetensors$/)).toBe(1);
  });

  it('uses the cache on the next call: one HEAD per file, no GET', async () => {
    const { repo } = newRepo();
    await hubDownload(repo, 'model.safetensors', fx.opts());
    fx.hub.requests.length = 0;
    const again = await hubDownload(repo, 'model.safetensors', fx.opts());
    expect(again.cached).toBe(true);
    expect(fx.hub.requests.map((r) => r.method)).toEqual(['HEAD']);
  });

  it('accepts a commit id as revision and writes no ref for it', async () => {
    const { repo, commit } = newRepo();
    const file = await hubDownload(repo, 'config.json', fx.opts({ revision: commit }));
    expect(file.commit).toBe(commit);
    expect((await listFiles(fx.cacheDir)).some((f) => f.includes('/refs/'))).toBe(false);
  });

  it('reports progress: bytes rising to the total, a speed, and an ETA of 0 at the end', async () => {
    const { repo } = newRepo();
    const events: DownloadProgress[] = [];
    await hubDownload(repo, 'model.safetensors', fx.opts({ onProgress: (p) => events.push(p) }));
    expect(events.length).toBeGreaterThanOrEqual(2);
    expect(events[0]).toMatchObject({
      file: `${repo}/model.safetensors`,
      loaded: 0,
      total: WEIGHTS.byteLength,
    });
    expect(events.at(-1)).toMatchObject({
      loaded: WEIGHTS.byteLength,
      total: WEIGHTS.byteLength,
      etaSeconds: 0,
    });
    expect(events.at(-1)!.bytesPerSecond).toBeGreaterThan(0);
    for (let i = 1; i < events.length; i++)
      expect(events[i]!.loaded).toBeGreaterThanOrEqual(events[i - 1]!.loaded);
  });
});

describe('hubDownload: hostile input and faults (docs/reliability.md §9 DL)', () => {
  it.each(['../../x', '/etc/passwd', 'C:\\x', '\\\\host\\share\\x', 'a/../../x'])(
    'DL8: file name %j is UNSAFE_PATH before any request or file-system call',
    async (name) => {
      const missing = join(fx.cacheDir, 'not-created');
      const error = await failure(hubDownload('org/repo', name, fx.opts({ cacheDir: missing })));
      expect(error.code).toBe('UNSAFE_PATH');
      expect(fx.hub.requests).toEqual([]);
      await expect(lstat(missing)).rejects.toThrow();
    },
  );

  it('an invalid repo id or revision is INVALID_ARGUMENT before any request', async () => {
    expect((await failure(hubDownload('org/../x', 'config.json', fx.opts()))).code).toBe('INVALID_ARGUMENT');
    expect(
      (await failure(hubDownload('org/x', 'config.json', fx.opts({ revision: '../../main' })))).code,
    ).toBe('INVALID_ARGUMENT');
    expect(fx.hub.requests).toEqual([]);
  });

  it('a HEAD answer whose etag is a path is NETWORK, and nothing is created', async () => {
    const { repo } = newRepo();
    const missing = join(fx.cacheDir, 'not-created');
    fx.hub.fault({
      method: 'HEAD',
      path: /config\.json$/,
      action: { override: { etag: '"../../../evil"' } },
    });
    const error = await failure(hubDownload(repo, 'config.json', fx.opts({ cacheDir: missing })));
    expect(error).toMatchObject({
      code: 'NETWORK',
      message: expect.stringContaining('not a safe blob name'),
    });
    await expect(lstat(missing)).rejects.toThrow();
  });

  it('DL1: one flipped bit is INTEGRITY; no blob, no temp file, no link', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, action: { corrupt: true } });
    const error = await failure(hubDownload(repo, 'model.safetensors', fx.opts()));
    expect(error).toMatchObject({ code: 'INTEGRITY', message: expect.stringContaining('sha256') });
    await expectNothingCached();
  });

  it('DL1: a corrupted plain file fails its git sha1 check', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /config\.json$/, action: { corrupt: true } });
    expect((await failure(hubDownload(repo, 'config.json', fx.opts()))).code).toBe('INTEGRITY');
    await expectNothingCached();
  });

  it('DL2: a body shorter than announced is INTEGRITY (the server has nothing more to resume from)', async () => {
    const { repo } = newRepo();
    fx.hub.fault({
      method: 'HEAD',
      path: /model\.safetensors$/,
      action: { override: { 'x-linked-size': String(WEIGHTS.byteLength + 10) } },
    });
    const error = await failure(hubDownload(repo, 'model.safetensors', fx.opts()));
    expect(error).toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringContaining(String(WEIGHTS.byteLength + 10)),
    });
    await expectNothingCached();
  });

  it('DL2: a body longer than announced is INTEGRITY', async () => {
    const { repo } = newRepo();
    fx.hub.fault({
      method: 'HEAD',
      path: /model\.safetensors$/,
      action: { override: { 'x-linked-size': '1000' } },
    });
    const error = await failure(hubDownload(repo, 'model.safetensors', fx.opts()));
    expect(error).toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringContaining('more than the expected 1000'),
    });
    await expectNothingCached();
  });

  it('DL3: a connection dropped mid-file is resumed with Range from the bytes received', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, times: 1, action: { drop: 100_000 } });
    const file = await hubDownload(repo, 'model.safetensors', fx.opts());
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    const blobGets = fx.hub.requests.filter((r) => r.method === 'GET' && r.path.startsWith('/blobs/'));
    expect(blobGets.map((r) => r.range)).toEqual([undefined, 'bytes=100000-']);
    expect(fx.warnings.some((w) => w.includes('Retrying'))).toBe(true);
    expect((await listFiles(fx.cacheDir)).filter((f) => f.includes('incomplete'))).toEqual([]);
  });

  it('DL3: a connection that keeps dropping is NETWORK after the retries; nothing is left', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, action: { drop: 1000 } });
    const error = await failure(hubDownload(repo, 'model.safetensors', fx.opts()));
    expect(error.code).toBe('NETWORK');
    expect(fx.hub.count('GET', /\/blobs\//)).toBe(3);
    await expectNothingCached();
  });

  it('DL4: a server that answers Range with 200 restarts the file from 0; the result verifies', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, times: 1, action: { drop: 50_000 } });
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, times: 1, action: { ignoreRange: true } });
    const file = await hubDownload(repo, 'model.safetensors', fx.opts());
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    expect(fx.hub.requests.filter((r) => r.path.startsWith('/blobs/')).map((r) => r.range)).toEqual([
      undefined,
      'bytes=50000-',
    ]);
  });

  it('DL10: 429 and 503 are retried with backoff (Retry-After honoured), then succeed', async () => {
    const { repo } = newRepo();
    fx.hub.fault({
      method: 'HEAD',
      path: /config\.json$/,
      times: 1,
      action: { status: 429, headers: { 'retry-after': '0' } },
    });
    fx.hub.fault({ method: 'HEAD', path: /config\.json$/, times: 1, action: { status: 503 } });
    const started = Date.now();
    const file = await hubDownload(
      repo,
      'config.json',
      fx.opts({ retry: { attempts: 3, baseDelayMs: 60, maxDelayMs: 1000 } }),
    );
    expect(file.size).toBe(CONFIG.byteLength);
    expect(fx.hub.count('HEAD', /config\.json$/)).toBe(3);
    // Retry-After: 0 for the 429, then a backoff of 60 ms × 2 × (0.75…1.25) for the 503.
    expect(Date.now() - started).toBeGreaterThanOrEqual(90);
    expect(fx.warnings.filter((w) => w.includes('Retrying'))).toHaveLength(2);
  });

  it('DL10: a server failing on every try is HTTP_STATUS with the status; nothing is cached', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, action: { status: 500 } });
    const error = await failure(hubDownload(repo, 'model.safetensors', fx.opts()));
    expect(error).toMatchObject({ code: 'HTTP_STATUS', detail: { status: 500 } });
    expect(fx.hub.count('GET', /\/blobs\//)).toBe(3);
    await expectNothingCached();
  });

  it.each([
    ['a missing file', 'nope.json', 404, 'no such file'],
    ['a missing revision', 'config.json', 404, 'revision does not exist'],
  ])('DL10: %s is HTTP_STATUS %i, not retried', async (_, file, status, says) => {
    const { repo } = newRepo();
    const revision = says.includes('revision') ? 'v9' : 'main';
    const error = await failure(hubDownload(repo, file, fx.opts({ revision })));
    expect(error).toMatchObject({
      code: 'HTTP_STATUS',
      detail: { status },
      message: expect.stringContaining(says),
    });
    expect(fx.hub.requests).toHaveLength(1);
    await expectNothingCached();
  });

  it('DL10: a missing (or private) repo is HTTP_STATUS 401 saying to set HF_TOKEN', async () => {
    const error = await failure(hubDownload('org/does-not-exist', 'config.json', fx.opts()));
    expect(error).toMatchObject({
      code: 'HTTP_STATUS',
      detail: { status: 401, hubErrorCode: 'RepoNotFound' },
    });
    expect(error.message).toContain('HF_TOKEN');
  });

  it('DL10: gated repo: 401 without a token, 403 with a wrong one, success with the right one; the token is never printed', async () => {
    const token = 'hf_SECRETtoken123';
    const { repo } = newRepo({ token });
    const without = await failure(hubDownload(repo, 'model.safetensors', fx.opts()));
    expect(without).toMatchObject({ code: 'HTTP_STATUS', detail: { status: 401 } });
    const wrong = await failure(hubDownload(repo, 'model.safetensors', fx.opts({ token: 'hf_wrong' })));
    expect(wrong).toMatchObject({
      code: 'HTTP_STATUS',
      detail: { status: 403 },
      message: expect.stringContaining('accept its conditions'),
    });
    await expectNothingCached();

    const file = await hubDownload(repo, 'model.safetensors', fx.opts({ token }));
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    expect(fx.hub.requests.filter((r) => r.path.includes('/resolve/')).at(-1)?.authorization).toBe(
      `Bearer ${token}`,
    );
    for (const text of [without.message, wrong.message, JSON.stringify(without.detail), ...fx.warnings]) {
      expect(text).not.toContain('SECRET');
    }
  });

  it('HF_TOKEN from the environment is used for the endpoint', async () => {
    const token = 'hf_fromEnv';
    const { repo } = newRepo({ token });
    const { token: _unused, ...rest } = fx.opts();
    await hubDownload(repo, 'config.json', { ...rest, env: { HF_TOKEN: token } });
    expect(fx.hub.requests.at(-1)?.authorization).toBe(`Bearer ${token}`);
  });

  it('a redirect to another host gets no Authorization header', async () => {
    const cdn = await HubTestServer.start(fx.hub);
    try {
      fx.hub.blobOrigin = cdn.origin;
      const token = 'hf_cross';
      const { repo } = newRepo({ token });
      const file = await hubDownload(repo, 'model.safetensors', fx.opts({ token }));
      expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
      expect(cdn.requests.map((r) => [r.method, r.authorization])).toEqual([['GET', undefined]]);
      expect(fx.hub.requests.every((r) => r.authorization === `Bearer ${token}`)).toBe(true);
    } finally {
      await cdn.close();
    }
  });

  it('DL10: a redirect loop is HTTP_STATUS after the hop limit', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, action: { loop: true } });
    const error = await failure(hubDownload(repo, 'model.safetensors', fx.opts({ maxRedirects: 5 })));
    expect(error).toMatchObject({
      code: 'HTTP_STATUS',
      message: expect.stringContaining('more than 5 redirects'),
    });
    // GET resolve → 302 → /blobs/… → 302 → itself: the first request and 5 redirects followed.
    expect(fx.hub.count('GET', /./)).toBe(6);
    await expectNothingCached();
  });

  it('a server that never answers times out: NETWORK after the retries', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'HEAD', path: /config\.json$/, action: { stall: true } });
    const error = await failure(
      hubDownload(repo, 'config.json', fx.opts({ timeoutMs: 150, retry: { attempts: 2, baseDelayMs: 1 } })),
    );
    expect(error).toMatchObject({
      code: 'NETWORK',
      message: expect.stringContaining('no answer within 150 ms'),
    });
    await expectNothingCached();
  });

  it('a body that stalls midway is resumed after the timeout', async () => {
    const { repo } = newRepo();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, times: 1, action: { stall: true, after: 70_000 } });
    const file = await hubDownload(repo, 'model.safetensors', fx.opts({ timeoutMs: 200 }));
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    expect(fx.hub.requests.filter((r) => r.path.startsWith('/blobs/')).map((r) => r.range)).toEqual([
      undefined,
      'bytes=70000-',
    ]);
  });

  it('cancelling keeps the partial temp file, and the next call resumes it with Range', async () => {
    const { repo, etags } = newRepo();
    const controller = new AbortController();
    fx.hub.fault({ method: 'GET', path: /\/blobs\//, times: 1, action: { stall: true, after: 120_000 } });
    const pending = hubDownload(repo, 'model.safetensors', fx.opts({ signal: controller.signal }));
    const blobs = join(fx.cacheDir, `models--${repo.replace('/', '--')}`, 'blobs');
    await waitFor(async () => {
      const temp = (await listFiles(blobs)).find((f) => f.endsWith('.incomplete'));
      return temp !== undefined && (await stat(join(blobs, temp))).size === 120_000;
    });
    controller.abort();
    expect((await failure(pending)).code).toBe('ABORTED');
    const temps = (await listFiles(fx.cacheDir)).filter((f) => f.endsWith('.incomplete'));
    expect(temps).toHaveLength(1);
    expect(temps[0]).toMatch(new RegExp(`blobs/${etags['model.safetensors']}\\.[0-9a-f]{12}\\.incomplete$`));

    fx.hub.requests.length = 0;
    const file = await hubDownload(repo, 'model.safetensors', fx.opts());
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    expect(fx.hub.requests.find((r) => r.path.startsWith('/blobs/'))?.range).toBe('bytes=120000-');
    expect(
      (await listFiles(fx.cacheDir)).filter((f) => f.endsWith('.incomplete') || f.endsWith('.lock')),
    ).toEqual([]);
  });

  it('a leftover temp file with wrong bytes is discarded after the hash check and downloaded again', async () => {
    const { repo, etags } = newRepo();
    const folder = join(fx.cacheDir, `models--${repo.replace('/', '--')}`);
    await hubDownload(repo, 'config.json', fx.opts());
    await writeFile(
      join(folder, 'blobs', `${etags['model.safetensors']}.0123456789ab.incomplete`),
      testBytes(5000, 99),
    );
    const file = await hubDownload(repo, 'model.safetensors', fx.opts());
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    expect(fx.hub.requests.filter((r) => r.path.startsWith('/blobs/')).map((r) => r.range)).toEqual([
      'bytes=5000-',
      undefined,
    ]);
    expect(fx.warnings.some((w) => w.includes('starting over'))).toBe(true);
    expect((await listFiles(fx.cacheDir)).filter((f) => f.endsWith('.incomplete'))).toEqual([]);
  });
});
