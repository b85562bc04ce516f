/**
 * onnxruntime-web in headless Chromium (vitest browser mode, cross-origin isolated page): the
 * RuntimeV1 conformance suite on wasm with 2 threads, and the weights cache on the real Cache API.
 */
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import { afterEach, describe, expect, it } from 'vitest';
import type { WeightsCache } from '../src/web/index.js';
import { createWebRuntime, createWeightsCache, weightsCacheAvailable } from '../src/web/index.js';
import type { ConformanceFiles } from './conformance/suite.js';
import { describeRuntimeConformance } from './conformance/suite.js';

// In the browser, external data files are URLs: blob URLs here (same origin, fetched by onnxruntime-web).
const files: ConformanceFiles = {
  async writeFile(name, bytes) {
    return URL.createObjectURL(new File([bytes.slice()], name));
  },
};

describeRuntimeConformance(
  'onnxruntime-web wasm in Chromium, 2 threads',
  () => createWebRuntime({ devices: ['wasm'], threads: 2 }),
  files,
);

describe('wasm threads in Chromium', () => {
  it('uses the 2 threads asked for on a cross-origin isolated page', async () => {
    expect(globalThis.crossOriginIsolated).toBe(true);
    const runtime = await createWebRuntime({ devices: ['wasm'], threads: 2 });
    const g = new GraphBuilder({ name: 'threads' });
    g.output(g.root.neg(g.input('x', 'float32', [1])), 'y', [1]);
    const session = await runtime.createSession(serializeModel(g.build()));
    expect(runtime.threads).toEqual({ count: 2, reason: expect.stringMatching(/cross-origin isolated/) });
    await session.dispose();
    await runtime.dispose();
  });
});

/** An in-memory HTTP server for the cache: files by URL, with the validators a test sets. */
function fakeServer() {
  const files = new Map<string, { body: Uint8Array; headers: Record<string, string> }>();
  const log: string[] = [];
  let offline = false;
  const fetch = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = input instanceof Request ? input.url : input.toString();
    const method = init?.method ?? 'GET';
    log.push(`${method} ${new URL(url).pathname}`);
    if (init?.signal?.aborted) throw init.signal.reason;
    if (offline) throw new TypeError('Failed to fetch');
    const file = files.get(url);
    if (file === undefined) return new Response('not found', { status: 404, statusText: 'Not Found' });
    const headers = { 'content-length': String(file.body.byteLength), ...file.headers };
    return new Response(method === 'HEAD' ? null : file.body.slice(), { status: 200, headers });
  };
  return {
    fetch,
    log,
    put: (url: string, body: Uint8Array, headers: Record<string, string> = {}) =>
      files.set(url, { body, headers }),
    goOffline: () => (offline = true),
  };
}

const bytes = (n: number, seed: number): Uint8Array =>
  Uint8Array.from({ length: n }, (_, i) => (i * 31 + seed) & 255);

async function sha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data.slice()));
  return [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
}

async function contents(blob: Blob): Promise<number[]> {
  return [...new Uint8Array(await blob.arrayBuffer())];
}

describe('weights cache (Cache API)', () => {
  const url = 'https://weights.test/repo/model.safetensors';
  let cache: WeightsCache | undefined;
  let caseNumber = 0;
  const open = (server: ReturnType<typeof fakeServer>): WeightsCache =>
    (cache = createWeightsCache({ cacheName: `dcae-test-${caseNumber++}`, fetch: server.fetch }));
  afterEach(async () => {
    await cache?.clear();
  });

  it('is available on this page', () => {
    expect(weightsCacheAvailable()).toBe(true);
  });

  it('downloads once, then serves the copy while the ETag matches, and again when it changes', async () => {
    const server = fakeServer();
    const cache = open(server);
    server.put(url, bytes(1000, 1), { etag: '"v1"' });
    const progress: number[] = [];
    const first = await cache.get(url, { onProgress: (loaded, total) => progress.push(loaded / total!) });
    expect(first).toMatchObject({ source: 'network', version: '"v1"', stored: true });
    expect(await contents(first.blob)).toEqual([...bytes(1000, 1)]);
    expect(progress.at(-1)).toBe(1);

    const second = await cache.get(url);
    expect(second).toMatchObject({ source: 'cache', version: '"v1"', stored: true });
    expect(await contents(second.blob)).toEqual([...bytes(1000, 1)]);
    expect(server.log).toEqual([
      'HEAD /repo/model.safetensors',
      'GET /repo/model.safetensors',
      'HEAD /repo/model.safetensors',
    ]);

    server.put(url, bytes(800, 2), { etag: '"v2"' });
    const third = await cache.get(url);
    expect(third).toMatchObject({ source: 'network', version: '"v2"' });
    expect(await contents(third.blob)).toEqual([...bytes(800, 2)]);
    expect(await cache.list()).toEqual([{ url, version: '"v2"', size: 800, storedAt: expect.any(String) }]);
  });

  it("checks a SHA-256 ETag (the Hub's X-Linked-Etag) and never stores a corrupt copy", async () => {
    const server = fakeServer();
    const cache = open(server);
    const good = bytes(4096, 3);
    server.put(url, good, { 'x-linked-etag': `"${await sha256(good)}"`, etag: '"cdn"' });
    expect(await cache.get(url)).toMatchObject({ source: 'network', stored: true });

    const other = 'https://weights.test/repo/corrupt.safetensors';
    server.put(other, bytes(4096, 4), { etag: `"${await sha256(good)}"` });
    await expect(cache.get(other)).rejects.toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringMatching(/SHA-256/),
    });
    expect((await cache.list()).map((e) => e.url)).toEqual([url]);
  });

  it('rejects a truncated download with INTEGRITY', async () => {
    const server = fakeServer();
    const cache = open(server);
    server.put(url, bytes(100, 5), { etag: '"t"', 'content-length': '150' });
    await expect(cache.get(url)).rejects.toMatchObject({
      code: 'INTEGRITY',
      message: expect.stringMatching(/100 bytes .* 150/),
    });
    expect(await cache.list()).toEqual([]);
  });

  it('serves the copy offline with a note, and says NETWORK when there is none', async () => {
    const server = fakeServer();
    const cache = open(server);
    server.put(url, bytes(64, 6), { etag: '"o"' });
    await cache.get(url);
    server.goOffline();
    const offline = await cache.get(url);
    expect(offline).toMatchObject({ source: 'cache', note: expect.stringMatching(/not revalidated/) });
    expect(await contents(offline.blob)).toEqual([...bytes(64, 6)]);
    await expect(cache.get('https://weights.test/other.bin')).rejects.toMatchObject({ code: 'NETWORK' });
  });

  it('maps HTTP errors to FILE_NOT_FOUND and HTTP_STATUS', async () => {
    const server = fakeServer();
    const cache = open(server);
    await expect(cache.get('https://weights.test/missing.bin')).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
      message: 'https://weights.test/missing.bin: HTTP 404 Not Found.',
    });
  });

  it('does not store what it cannot revalidate (no ETag, no Last-Modified)', async () => {
    const server = fakeServer();
    const cache = open(server);
    server.put(url, bytes(10, 7));
    expect(await cache.get(url)).toMatchObject({
      source: 'network',
      stored: false,
      note: expect.stringMatching(/neither ETag/),
    });
    expect(await cache.list()).toEqual([]);
  });

  it('aborts a download with ABORTED', async () => {
    const server = fakeServer();
    const cache = open(server);
    server.put(url, bytes(10, 8), { etag: '"a"' });
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    await expect(cache.get(url, { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });

  it('deletes one entry or clears them all', async () => {
    const server = fakeServer();
    const cache = open(server);
    const other = 'https://weights.test/repo/b.safetensors';
    server.put(url, bytes(10, 9), { etag: '"a"' });
    server.put(other, bytes(20, 9), { 'last-modified': 'Tue, 01 Sep 2026 00:00:00 GMT' });
    await cache.get(url);
    expect(await cache.get(other)).toMatchObject({
      stored: true,
      version: 'Tue, 01 Sep 2026 00:00:00 GMT; 20 bytes',
    });
    expect(await cache.delete(url)).toBe(true);
    expect(await cache.delete(url)).toBe(false);
    expect((await cache.list()).map((e) => e.url)).toEqual([other]);
    await cache.clear();
    expect(await cache.list()).toEqual([]);
  });
});
