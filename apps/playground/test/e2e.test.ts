/**
 * The built playground in headless Chromium (the system one, via playwright-core): served like a
 * deployment (COOP/COEP, CSP, ETags), it loads the bundled tiny fixture, runs encode + decode on
 * the fixture's own sample and must agree with the PyTorch reference and with onnxruntime-node;
 * cancelling a long run must stop it; a screenshot goes to bench-results/e2e/playground.png.
 */
import { mkdir, mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { parseSafetensors } from '@dcae/core';
import { loadAutoencoder, memoryModelFiles, reconstructionMetrics, tensorToImages } from '@dcae/autoencoder';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { build } from 'vite';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodePng } from './png.js';
import type { StaticServer } from './static-server.js';
import { serveStatic } from './static-server.js';

const APP = resolve(import.meta.dirname, '..');
const REPO = resolve(APP, '../..');
const FIXTURE = join(REPO, 'fixtures/dcae/tiny-sana-f32');
const SCREENSHOT = join(REPO, 'bench-results/e2e/playground.png');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

let outDir: string;
let server: StaticServer;
let browser: Browser;
let page: Page;
const requests: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  outDir = await mkdtemp(join(tmpdir(), 'dcae-playground-'));
  await build({
    root: APP,
    configFile: join(APP, 'vite.config.ts'),
    logLevel: 'warn',
    build: { outDir, emptyOutDir: true },
  });
  server = await serveStatic(outDir);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(server.url);
  await page.waitForFunction(() => document.body.dataset.state !== 'starting', undefined, {
    timeout: 60_000,
  });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (outDir) await rm(outDir, { recursive: true, force: true });
});

/** Clicks Run and waits for the page to finish (done, cancelled or error). */
async function runAndWait(timeout = 60_000): Promise<string> {
  await page.click('#run');
  await page.waitForFunction(() => document.body.dataset.state === 'running', undefined, { timeout: 5_000 });
  await page.waitForFunction(
    () => ['done', 'cancelled', 'error'].includes(document.body.dataset.state!),
    undefined,
    { timeout },
  );
  return page.evaluate(() => document.body.dataset.state!);
}

/** The same image through onnxruntime-node: item 0 of the fixture sample, quantized as the page does. */
async function nodeReference(): Promise<{ psnr: number; ssim: number; latentShape: readonly number[] }> {
  const files = Object.fromEntries(
    await Promise.all(
      ['config.json', 'diffusion_pytorch_model.safetensors'].map(
        async (f) => [f, new Uint8Array(await readFile(join(FIXTURE, f)))] as const,
      ),
    ),
  );
  const runtime = createNodeRuntime({ threads: 1 });
  const ae = await loadAutoencoder(memoryModelFiles('tiny-sana-f32', files), { runtime });
  try {
    const all = parseSafetensors(await readFile(join(FIXTURE, 'input.safetensors'))).tensor(
      'sample',
    ) as HostTensor<'float32'>;
    const [, ...rest] = all.shape;
    const sample: HostTensor<'float32'> = {
      dtype: 'float32',
      shape: [1, ...rest],
      data: all.data.slice(
        0,
        rest.reduce((a, b) => a * b, 1),
      ),
    };
    const latent = await ae.encode(sample);
    const output = await ae.decode(latent);
    const metrics = reconstructionMetrics(tensorToImages(sample), tensorToImages(output));
    return { psnr: metrics.psnr, ssim: metrics.ssim, latentShape: latent.shape };
  } finally {
    await ae.dispose();
    await runtime.dispose();
  }
}

it('runs on 2 wasm threads in a cross-origin isolated page, loading everything from its own origin', async () => {
  const report = await page.evaluate(() => window.dcae);
  expect(report.state).toBe('idle');
  expect(report.runtime).toMatchObject({
    name: 'onnxruntime-web@1.30.0',
    devices: ['wasm'],
    crossOriginIsolated: true,
    threads: { count: 2 },
  });
});

it('encodes and decodes the bundled fixture like the PyTorch reference and onnxruntime-node', async () => {
  expect(
    await page.evaluate(() => (document.querySelector('#fixture-select') as HTMLSelectElement).value),
  ).toBe('tiny-sana-f32');
  expect(await runAndWait(), JSON.stringify(await page.evaluate(() => window.dcae.error))).toBe('done');
  const { result } = await page.evaluate(() => window.dcae);
  const reference = await nodeReference();

  expect(result!.latentShape).toEqual(reference.latentShape);
  expect(result!.reference!.latent.maxAbsDiff).toBeLessThanOrEqual(result!.reference!.latent.tolerance);
  expect(result!.reference!.reconstruction.maxAbsDiff).toBeLessThanOrEqual(
    result!.reference!.reconstruction.tolerance,
  );
  expect(Math.abs(result!.metrics.psnr - reference.psnr)).toBeLessThanOrEqual(0.01);
  expect(Math.abs(result!.metrics.ssim - reference.ssim)).toBeLessThanOrEqual(1e-4);
  expect(result!.device).toBe('wasm');
  const stages = result!.timings.map((t) => t.stage);
  expect(stages).toEqual(
    expect.arrayContaining([
      'build encoder',
      'session encoder',
      'encode',
      'build decoder',
      'session decoder',
      'decode',
    ]),
  );
  expect(await page.textContent('#reference')).toMatch(/✓ matches the PyTorch reference/);

  const origin = new URL(server.url).origin;
  expect(
    requests.filter((url) => !url.startsWith(origin) && !url.startsWith('blob:') && !url.startsWith('data:')),
  ).toEqual([]);
  expect(requests).toContain(`${origin}/ort/ort-wasm-simd-threaded.jsep.wasm`);
}, 90_000);

it('cancels a long run at once, then runs again', async () => {
  // A 1024×1024 PNG through the file picker: long enough on the tiny model to cancel mid-run.
  const size = 1024;
  const rgb = new Uint8Array(size * size * 3);
  for (let i = 0; i < size * size; i++) rgb.set([(i % size) >> 2, (i / size) >> 2, (i * 7) & 255], 3 * i);
  await page.setInputFiles('#image-input', {
    name: 'big.png',
    mimeType: 'image/png',
    buffer: encodePng(size, size, rgb),
  });
  await page.waitForFunction(() =>
    document.querySelector('#image-note')!.textContent.startsWith('big.png: 1024×1024'),
  );
  await page.selectOption('#max-side', '1024');
  const before = await page.evaluate(() => window.dcae.result);

  await page.click('#run');
  await page.waitForFunction(() => document.body.dataset.state === 'running');
  // By now the warm model is inside onnxruntime-web's encoder run, which only stopping the worker ends.
  await page.waitForTimeout(300);
  expect(await page.textContent('#status')).toMatch(/^Encod/);
  await page.click('#cancel');
  await page.waitForFunction(() => document.body.dataset.state !== 'running', undefined, { timeout: 5_000 });
  expect(await page.evaluate(() => document.body.dataset.state)).toBe('cancelled');
  // Measured in the page, from the click to the stopped job.
  expect(await page.evaluate(() => window.dcae.cancelMs)).toBeLessThan(1_000);
  expect(await page.evaluate(() => window.dcae.result)).toEqual(before);
  expect(await page.textContent('#status')).toMatch(/Cancel/);

  // The landscape sample on the same (reloaded) model.
  await page.click('[data-sample=landscape]');
  await page.selectOption('#max-side', '512');
  expect(await runAndWait()).toBe('done');
  const { result } = await page.evaluate(() => window.dcae);
  expect(result!.inputShape).toEqual([1, 3, 320, 512]);
  expect(result!.latentShape).toEqual([1, 8, 10, 16]);
  expect(Number.isFinite(result!.metrics.psnr)).toBe(true);

  await mkdir(join(REPO, 'bench-results/e2e'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect((await readdir(join(REPO, 'bench-results/e2e'))).includes('playground.png')).toBe(true);
  expect(problems).toEqual([]);
}, 90_000);
