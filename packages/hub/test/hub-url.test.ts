import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { UrlCacheOptions } from '../src/node/index.js';
import { downloadUrlFile, urlCacheFolder } from '../src/node/index.js';
import { HubTestServer, listFiles, sha256Hex, testBytes } from './helpers/hub-server.js';

let server: HubTestServer;
let urlCacheDir: string;
let folderCount = 0;

beforeAll(async () => {
  server = await HubTestServer.start();
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  urlCacheDir = await mkdtemp(join(tmpdir(), 'dcae-url-cache-'));
  server.faults.length = 0;
  server.requests.length = 0;
});
afterEach(async () => {
  await rm(urlCacheDir, { recursive: true, force: true });
});

const WEIGHTS = testBytes(150_000, 21);
const opts = (extra: UrlCacheOptions = {}): UrlCacheOptions => ({
  urlCacheDir,
  env: {},
  retry: { attempts: 3, baseDelayMs: 1 },
  timeoutMs: 2000,
  ...extra,
});

function newFolder(files: Record<string, Uint8Array> = { 'model.safetensors': WEIGHTS }): string {
  return server.addStatic(`f${++folderCount}`, files);
}

describe('downloadUrlFile', () => {
  it('downloads into one cache folder per URL folder, records the sha256, and reuses it while the ETag holds', async () => {
    const folder = newFolder();
    const file = await downloadUrlFile(folder, 'model.safetensors', opts());
    expect(file).toMatchObject({
      url: `${folder}model.safetensors`,
      size: WEIGHTS.byteLength,
      sha256: sha256Hex(WEIGHTS),
      cached: false,
    });
    expect(dirname(file.path)).toBe(urlCacheFolder(folder, { urlCacheDir }));
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    expect(await listFiles(dirname(file.path))).toEqual([
      '.dcae/model.safetensors.json',
      'model.safetensors',
    ]);

    server.requests.length = 0;
    expect((await downloadUrlFile(folder, 'model.safetensors', opts())).cached).toBe(true);
    expect(server.requests.map((r) => r.method)).toEqual(['HEAD']);
  });

  it('downloads again when the file on the server changed', async () => {
    const name = `f${++folderCount}`;
    const folder = server.addStatic(name, { 'model.safetensors': WEIGHTS });
    await downloadUrlFile(folder, 'model.safetensors', opts());
    const changed = testBytes(1000, 22);
    server.addStatic(name, { 'model.safetensors': changed });
    const file = await downloadUrlFile(folder, 'model.safetensors', opts());
    expect(file.cached).toBe(false);
    expect(new Uint8Array(await readFile(file.path))).toEqual(changed);
  });

  it('resumes a dropped connection with Range', async () => {
    const folder = newFolder();
    server.fault({ method: 'GET', path: /\/static\//, times: 1, action: { drop: 40_000 } });
    const file = await downloadUrlFile(folder, 'model.safetensors', opts());
    expect(new Uint8Array(await readFile(file.path))).toEqual(WEIGHTS);
    expect(server.requests.filter((r) => r.method === 'GET').map((r) => r.range)).toEqual([
      undefined,
      'bytes=40000-',
    ]);
  });

  it('offline: the cached copy is re-hashed; a damaged one is CORRUPT_BLOB; a missing one is OFFLINE', async () => {
    const folder = newFolder();
    await expect(downloadUrlFile(folder, 'model.safetensors', opts({ offline: true }))).rejects.toMatchObject(
      {
        code: 'OFFLINE',
      },
    );
    const file = await downloadUrlFile(folder, 'model.safetensors', opts());
    server.requests.length = 0;
    expect((await downloadUrlFile(folder, 'model.safetensors', opts({ offline: true }))).cached).toBe(true);
    expect(server.requests).toEqual([]);

    const damaged = new Uint8Array(await readFile(file.path));
    damaged[7]! ^= 4;
    await writeFile(file.path, damaged);
    await expect(downloadUrlFile(folder, 'model.safetensors', opts({ offline: true }))).rejects.toMatchObject(
      {
        code: 'CORRUPT_BLOB',
      },
    );
    // Online with verify 'hash', the damaged copy is replaced.
    const again = await downloadUrlFile(folder, 'model.safetensors', opts({ verify: 'hash' }));
    expect(again.cached).toBe(false);
    expect(new Uint8Array(await readFile(again.path))).toEqual(WEIGHTS);
  });

  it('HTTP errors, unsafe names and a failed download leave nothing behind', async () => {
    const folder = newFolder();
    await expect(downloadUrlFile(folder, 'missing.json', opts())).rejects.toMatchObject({
      code: 'HTTP_STATUS',
      detail: { status: 404 },
    });
    for (const name of ['../x', 'a/b.json', '/etc/passwd']) {
      await expect(downloadUrlFile(folder, name, opts())).rejects.toMatchObject({ code: 'UNSAFE_PATH' });
    }
    server.fault({ method: 'GET', path: /\/static\//, action: { drop: 1000 } });
    await expect(downloadUrlFile(folder, 'model.safetensors', opts())).rejects.toMatchObject({
      code: 'NETWORK',
    });
    expect(await listFiles(urlCacheDir)).toEqual([]);
  });

  it('never sends a Hub token', async () => {
    const folder = newFolder();
    await downloadUrlFile(folder, 'model.safetensors', { ...opts(), env: { HF_TOKEN: 'hf_secret' } });
    expect(server.requests.every((r) => r.authorization === undefined)).toBe(true);
  });
});
