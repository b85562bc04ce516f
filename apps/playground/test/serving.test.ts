/**
 * The built playground under hostile serving and hostile files (docs/reliability.md T10): the header
 * variants of E8 (no cross-origin isolation; isolation missing on onnxruntime's worker script; a
 * CSP without 'wasm-unsafe-eval') and image uploads of C2 (PNG claiming 2³¹−1 px) and C4 (a PNG
 * bomb: 560 KB that inflates to 12000² RGBA). Each ends in a visible message and a live tab,
 * never a hang or a crash.
 */
import { rm } from 'node:fs/promises';
import { createDeflate } from 'node:zlib';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng, pngChunks } from './png.js';
import type { StaticServer } from './static-server.js';
import { buildPlayground, launchChromium, serveStatic } from './static-server.js';

let outDir: string;
let browser: Browser;

beforeAll(async () => {
  outDir = await buildPlayground('dcae-playground-serving-');
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

/** Opens the playground served with `headersFor`, waits until it has started (or failed to). */
async function open(
  headersFor?: Parameters<typeof serveStatic>[1],
  startTimeout = 60_000,
): Promise<{ page: Page; server: StaticServer; crashed: () => boolean }> {
  const server = await serveStatic(outDir, headersFor);
  const page = await browser.newPage();
  let crashed = false;
  page.on('crash', () => (crashed = true));
  await page.goto(server.url);
  await page.waitForFunction(() => document.body.dataset.state !== 'starting', undefined, {
    timeout: startTimeout,
  });
  return { page, server, crashed: () => crashed };
}

async function closeAll(page: Page, server: StaticServer): Promise<void> {
  await page.close();
  await server.close();
}

/** Clicks Run on the bundled tiny fixture's reference input and waits for the outcome. */
async function runReference(page: Page): Promise<string> {
  // The default model has no reference sample: choose the random-weight fixture first.
  await page.selectOption('#fixture-select', 'tiny-sana-f32');
  await page.click('[data-sample=fixture-sample]');
  await page.click('#run');
  await page.waitForFunction(() => !['running', 'idle'].includes(document.body.dataset.state!), undefined, {
    timeout: 60_000,
  });
  return (await page.evaluate(() => document.body.dataset.state))!;
}

/** Every response without COOP/COEP, as a static host with default settings would serve it. */
function withoutIsolation(_: string, headers: Record<string, string>): Record<string, string> {
  const { 'Cross-Origin-Opener-Policy': _coop, 'Cross-Origin-Embedder-Policy': _coep, ...rest } = headers;
  return rest;
}

describe('header variants (E8)', () => {
  it('without COOP/COEP: says so, runs on 1 thread, and still gets the numbers', async () => {
    const { page, server, crashed } = await open(withoutIsolation);
    try {
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(false);
      expect(await page.textContent('#runtime-note')).toMatch(/not cross-origin isolated.*1 thread/);
      expect(await page.isDisabled('#threads')).toBe(true);
      expect(await runReference(page)).toBe('done');
      const reference = await page.evaluate(() => window.dcae.result!.reference!);
      expect(reference.reconstruction.maxAbsDiff).toBeLessThanOrEqual(reference.reconstruction.tolerance);
      expect(crashed()).toBe(false);
    } finally {
      await closeAll(page, server);
    }
  }, 90_000);

  it("with a CSP lacking 'wasm-unsafe-eval': a visible error naming the cause, not a hang", async () => {
    const { page, server, crashed } = await open((_, headers) => ({
      ...headers,
      'Content-Security-Policy': headers['Content-Security-Policy']!.replace(" 'wasm-unsafe-eval'", ''),
    }));
    try {
      expect(await page.evaluate(() => document.body.dataset.state)).toBe('error');
      const status = (await page.textContent('#status'))!;
      expect(status).toMatch(/^[A-Z_]+: /);
      expect(status).toMatch(/WebAssembly|wasm/i);
      expect(crashed()).toBe(false);
    } finally {
      await closeAll(page, server);
    }
  }, 90_000);

  it("with COEP missing on onnxruntime's worker script: SESSION_INIT_TIMEOUT instead of a silent hang", async () => {
    // The page is isolated, so onnxruntime-web starts threads; their script is refused (no COEP),
    // which hangs the wasm start. The adapter's 30 s init timeout turns that into an error.
    const { page, server, crashed } = await open(
      (path, headers) =>
        path.startsWith('/ort/') ? { ...headers, 'Cross-Origin-Embedder-Policy': 'unsafe-none' } : headers,
      90_000,
    );
    try {
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      expect(await page.evaluate(() => document.body.dataset.state)).toBe('error');
      expect(await page.textContent('#status')).toMatch(/SESSION_INIT_TIMEOUT/);
      expect(crashed()).toBe(false);
    } finally {
      await closeAll(page, server);
    }
  }, 120_000);
});

/** A PNG whose header claims `width`×`height` RGBA, with `idat` as its (compressed) pixel data. */
function pngClaiming(width: number, height: number, idat: Uint8Array): Buffer {
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8); // bit depth 8, colour type RGBA
  return pngChunks([
    ['IHDR', header],
    ['IDAT', idat],
    ['IEND', new Uint8Array(0)],
  ]);
}

/** zlib stream of `height` all-zero RGBA rows of `width` pixels: a decompression bomb. */
async function zeroRows(width: number, height: number): Promise<Buffer> {
  const deflate = createDeflate({ level: 9 });
  const parts: Buffer[] = [];
  deflate.on('data', (part: Buffer) => parts.push(part));
  const done = new Promise((resolve) => deflate.on('end', resolve));
  const row = Buffer.alloc(1 + 4 * width);
  for (let y = 0; y < height; y++)
    if (!deflate.write(row)) await new Promise((r) => deflate.once('drain', r));
  deflate.end();
  await done;
  return Buffer.concat(parts);
}

describe('hostile image uploads (C2, C4)', () => {
  it('refuse huge images from their header with a visible error; the tab lives on and still works', async () => {
    const { page, server, crashed } = await open();
    try {
      const bomb = pngClaiming(12000, 12000, await zeroRows(12000, 12000));
      expect(bomb.length).toBeLessThan(1 << 20); // ~560 KB that would inflate to 576 MB
      const cases = [
        { name: 'c2-huge-header.png', bytes: pngClaiming(2 ** 31 - 1, 1, new Uint8Array(16)) },
        { name: 'c4-bomb.png', bytes: bomb },
      ];
      for (const { name, bytes } of cases) {
        await page.setInputFiles('#image-input', { name, mimeType: 'image/png', buffer: bytes });
        await page.waitForFunction(() => document.body.dataset.state === 'error', undefined, {
          timeout: 10_000,
        });
        const status = (await page.textContent('#status'))!;
        expect(status, name).toMatch(/^DIMENSIONS_TOO_LARGE: /);
        expect(status, name).toContain(name);
      }
      // Still alive and usable: a valid upload, then a run.
      const rgb = new Uint8Array(64 * 96 * 3).map((_, i) => (i * 37) % 256);
      await page.setInputFiles('#image-input', {
        name: 'ok.png',
        mimeType: 'image/png',
        buffer: encodePng(96, 64, rgb),
      });
      await page.waitForFunction(() =>
        document.querySelector('#image-note')!.textContent.startsWith('ok.png'),
      );
      await page.click('#run');
      await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state!), undefined, {
        timeout: 60_000,
      });
      expect(await page.evaluate(() => document.body.dataset.state)).toBe('done');
      expect(crashed()).toBe(false);
    } finally {
      await closeAll(page, server);
    }
  }, 90_000);
});
