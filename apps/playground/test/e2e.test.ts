/**
 * The built playground in headless Chromium (the system one, via playwright-core): served like a
 * deployment (COOP/COEP, CSP, ETags), it loads the bundled tiny fixture, runs encode + decode on
 * the fixture's own sample and must agree with the PyTorch reference and with onnxruntime-node;
 * a tiled run must equal the Node library's tiled result; cancelling a long run (whole or tiled)
 * must stop it. The Generate view must sample like `generate()` in Node for the tiny DiT and UViT,
 * show the library's message for bad inputs and cancel mid-sampling. Every view shows one
 * consistent state: after a refused upload, a cancel or a failure, nothing mixes one job's
 * pictures with another's numbers. Network failures are NETWORK errors naming the URL, shown at
 * the top of the window. Screenshots go to bench-results/e2e/playground.png,
 * playground-generate.png and playground-error.png.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { parseSafetensors } from '@dcae/core';
import type { ExecutionOptions, RgbImage } from '@dcae/autoencoder';
import {
  imageToTensor,
  loadAutoencoder,
  memoryModelFiles,
  reconstructionMetrics,
  tensorToImages,
} from '@dcae/autoencoder';
import type { GenerateOptions } from '@dcae/diffusion';
import { generate, loadDiffusionModel } from '@dcae/diffusion';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type { Browser, Page, Route } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { encodePng } from './png.js';
import type { StaticServer } from './static-server.js';
import { buildPlayground, launchChromium, serveStatic } from './static-server.js';
import { stats } from '../src/visualize.js';

const APP = resolve(import.meta.dirname, '..');
const REPO = resolve(APP, '../..');
const FIXTURE = join(REPO, 'fixtures/dcae/tiny-sana-f32');
const DIFFUSION = join(REPO, 'fixtures/diffusion');
const GENERATE_AE = join(REPO, 'fixtures/dcae/tiny-in-f32');
const SCREENSHOT = join(REPO, 'bench-results/e2e/playground.png');
const GENERATE_SCREENSHOT = join(REPO, 'bench-results/e2e/playground-generate.png');
const ERROR_SCREENSHOT = join(REPO, 'bench-results/e2e/playground-error.png');
const VIEWPORT = { width: 1400, height: 1000 };
/**
 * Click-to-stopped limit for Cancel. The page ends a job by terminating its worker 250 ms after
 * asking it to stop, so a job that kept running would take seconds; the margin above 250 ms is for
 * a loaded 2-core CI machine (2.6 s was seen with the cores shared by other jobs, under 1 s alone).
 */
const CANCEL_LIMIT_MS = 4_000;

let outDir: string;
let server: StaticServer;
let browser: Browser;
let page: Page;
const requests: string[] = [];
const problems: string[] = [];

beforeAll(async () => {
  outDir = await buildPlayground('dcae-playground-');
  server = await serveStatic(outDir);
  browser = await launchChromium();
  page = await browser.newPage({ viewport: VIEWPORT });
  page.on('request', (r) => requests.push(r.url()));
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(`console: ${m.text()}`);
  });
  await page.goto(server.url);
  await page.waitForFunction(() => document.body.dataset.state !== 'starting', undefined, {
    timeout: 60_000,
  });
}, 300_000); // a production build (it copies the 12 MB default model) and Chromium: minutes on a loaded machine

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

/** A model folder read into memory. */
async function folder(path: string, files: readonly string[]) {
  const entries = await Promise.all(
    files.map(async (f) => [f, new Uint8Array(await readFile(join(path, f)))] as const),
  );
  return memoryModelFiles(path, Object.fromEntries(entries));
}

/** A deterministic test image: smooth ramps plus a checker pattern (edges to cross the tile seams). */
function testImage(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const checker = ((x >> 4) + (y >> 4)) & 1 ? 60 : 0;
      data.set(
        [(x * 255) / width, (y * 255) / height, (128 + checker + ((x * y) & 63)) & 255],
        3 * (y * width + x),
      );
    }
  return { width, height, channels: 3, data };
}

/** `image` through the tiny fixture on onnxruntime-node with `execution`: what the page shows. */
async function nodeRun(image: RgbImage, execution: ExecutionOptions) {
  const runtime = createNodeRuntime({ threads: 1 });
  const ae = await loadAutoencoder(
    await folder(FIXTURE, ['config.json', 'diffusion_pytorch_model.safetensors']),
    { runtime },
  );
  try {
    const latent = await ae.encode(imageToTensor(image), execution);
    const output = await ae.decode(latent, execution);
    const metrics = reconstructionMetrics([image], tensorToImages(output));
    return { latent, latentStats: stats(latent.data), psnr: metrics.psnr, ssim: metrics.ssim };
  } finally {
    await ae.dispose();
    await runtime.dispose();
  }
}

/** `generate()` of @dcae/diffusion on onnxruntime-node: a bundled backbone decoded by the tiny ImageNet DC-AE. */
async function nodeGenerate(backbone: string, options: Omit<GenerateOptions, 'model' | 'autoencoder'>) {
  const runtime = createNodeRuntime({ threads: 1 });
  const model = await loadDiffusionModel(
    await folder(join(DIFFUSION, backbone), ['config.json', 'model.safetensors']),
    { runtime },
  );
  const autoencoder = await loadAutoencoder(
    await folder(GENERATE_AE, ['config.json', 'diffusion_pytorch_model.safetensors']),
    { runtime },
  );
  try {
    return await generate({ ...options, model, autoencoder });
  } finally {
    await model.dispose();
    await autoencoder.dispose();
    await runtime.dispose();
  }
}

/** The sampler fixture's final-sample tolerance (meta.json → tolerance.final), see fixtures/diffusion/README.md. */
async function samplerTolerance(fixture: string): Promise<number> {
  const meta = JSON.parse(await readFile(join(DIFFUSION, fixture, 'meta.json'), 'utf8')) as {
    tolerance: { final: number };
  };
  return meta.tolerance.final;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

/** The error banner: shown, and inside the window without scrolling (wherever the page is scrolled to). */
async function expectBannerInView(text: RegExp): Promise<void> {
  for (const scrollTo of ['top', 'bottom'] as const) {
    await page.evaluate((to) => window.scrollTo(0, to === 'top' ? 0 : document.body.scrollHeight), scrollTo);
    expect(await page.isVisible('#alert'), scrollTo).toBe(true);
    const box = (await page.locator('#alert').boundingBox())!;
    expect(box.y, scrollTo).toBeGreaterThanOrEqual(0);
    expect(box.y + box.height, scrollTo).toBeLessThanOrEqual(VIEWPORT.height);
    expect(await page.textContent('#alert-text')).toMatch(text);
  }
  await page.evaluate(() => window.scrollTo(0, 0));
}

/** What the reconstruct results show: the note, the original's size, the metrics and the latent facts. */
function shownResults() {
  return page.evaluate(() => ({
    shows: document.querySelector<HTMLElement>('#results')!.dataset.shows,
    outcome: document.querySelector<HTMLElement>('#results')!.dataset.outcome,
    note: document.querySelector('#results-note')!.textContent,
    originalSize: document.querySelector('#original-size')!.textContent,
    originalWidth: document.querySelector<HTMLCanvasElement>('#original-canvas')!.width,
    reconstructionWidth: document.querySelector<HTMLCanvasElement>('#reconstruction-canvas')!.width,
    metrics: document.querySelector('#metrics')!.textContent,
    latent: document.querySelector('#latent-facts')!.textContent,
  }));
}

/** The results the page must show for the last completed run `result`. */
function expectShowsRun(
  shown: Awaited<ReturnType<typeof shownResults>>,
  result: NonNullable<Window['dcae']['result']>,
): void {
  const [, , height, width] = result.inputShape;
  expect(shown.shows).toBe('result');
  expect(shown.originalSize).toBe(`${width}×${height}`);
  expect(shown.originalWidth).toBe(width);
  expect(shown.reconstructionWidth).toBe(width);
  expect(shown.metrics).toContain(`${result.metrics.psnr.toFixed(2)} dB`);
  expect(shown.latent).toContain(`[${result.latentShape.join(', ')}]`);
}

/** The Generate grid: figure captions and a checksum of each canvas's pixels. */
function shownGrid() {
  return page.evaluate(() => ({
    shows: document.querySelector<HTMLElement>('#gen-results')!.dataset.shows,
    outcome: document.querySelector<HTMLElement>('#gen-results')!.dataset.outcome,
    note: document.querySelector('#gen-results-note')!.textContent,
    captions: [...document.querySelectorAll('#gen-grid figcaption')].map((c) => c.textContent),
    pixels: [...document.querySelectorAll<HTMLCanvasElement>('#gen-grid canvas')].map((c) => {
      const data = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let sum = 0;
      for (let i = 0; i < data.length; i++) sum = (sum * 31 + data[i]!) % 2 ** 31;
      return `${c.width}×${c.height}:${sum}`;
    }),
    facts: document.querySelector('#gen-facts')!.textContent,
  }));
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
  // Defaults agree with what the page says and with the CLI: --fit pad, 512 px tiles with 64 px overlap.
  expect(await page.inputValue('#fit')).toBe('pad');
  expect(await page.getAttribute('#tile-size', 'placeholder')).toBe('512');
  expect(await page.getAttribute('#tile-overlap', 'placeholder')).toBe('64');
  expect(await page.textContent('#tiling-note')).toMatch(/tiles of 512 px, overlap 64 px/);
  expect(await page.isVisible('#alert')).toBe(false);
});

it('starts on the default model, @dcae/model-tiny, served from its package, on one of its held-out photos', async () => {
  const options = () =>
    page.evaluate(() =>
      [...document.querySelectorAll<HTMLOptionElement>('#fixture-select option')].map((o) => ({
        value: o.value,
        text: o.textContent,
      })),
    );
  await page.waitForFunction(() => document.querySelectorAll('#fixture-select option').length > 1);
  const [first, ...fixtures] = await options();
  expect(first).toEqual({ value: 'default-model', text: '@dcae/model-tiny — trained by dcae (default)' });
  expect(await page.inputValue('#fixture-select')).toBe('default-model');
  expect(fixtures.map((o) => o.value)).toEqual(expect.arrayContaining(['tiny-in-f32', 'tiny-sana-f32']));
  for (const fixture of fixtures) expect(fixture.text).toBe(`${fixture.value} — random weights, test only`);
  expect(await page.textContent('#bundled-note')).toMatch(/random weights/);
  // Its numbers come from its model card, which the page links to and serves.
  const card = await page.getAttribute('#model-card', 'href');
  const cardText = await page.evaluate(async (href) => (await fetch(href!)).text(), card);
  expect(cardText).toContain('@dcae/model-tiny');
  // The first held-out photo is the chosen image (no reference sample without a fixture).
  await page.waitForSelector('[data-sample=photo-coffee][aria-pressed=true]');
  expect(await page.$('[data-sample=fixture-sample]')).toBeNull();

  await page.selectOption('#max-side', '256');
  try {
    // The trained model builds its graphs in wasm: slower than the tiny fixture's, minutes under load.
    expect(await runAndWait(240_000), JSON.stringify(await page.evaluate(() => window.dcae.error))).toBe(
      'done',
    );
  } finally {
    await page.selectOption('#max-side', '512');
  }
  const { result, model } = await page.evaluate(() => ({
    result: window.dcae.result,
    model: window.dcae.model,
  }));
  expect(model).toMatchObject({
    name: '@dcae/model-tiny',
    defaultModel: true,
    fixture: false,
    latentChannels: 32,
  });
  expect(await page.textContent('#model-info')).toContain('the default: trained by dcae');
  // A trained model: a random-weight one scores about 9 dB on a photo.
  expect(result!.metrics.psnr).toBeGreaterThan(15);
  expect(result!.reference).toBeUndefined();
  const origin = new URL(server.url).origin;
  expect(requests).toContain(`${origin}/models/model-tiny/diffusion_pytorch_model.safetensors`);
  expect(requests).toContain(`${origin}/models/model-tiny/photos/coffee.jpg`);
}, 300_000);

it('encodes and decodes the bundled fixture like the PyTorch reference and onnxruntime-node', async () => {
  await page.selectOption('#fixture-select', 'tiny-sana-f32');
  await page.click('[data-sample=fixture-sample]');
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

it('runs tiled like the Node library, reporting every tile', async () => {
  // 256×160: multiples of f = 32, under the longest side, so the page feeds the PNG's exact pixels.
  const image = testImage(256, 160);
  await page.setInputFiles('#image-input', {
    name: 'tiles.png',
    mimeType: 'image/png',
    buffer: encodePng(image.width, image.height, image.data),
  });
  await page.waitForFunction(() =>
    document.querySelector('#image-note')!.textContent.startsWith('tiles.png: 256×160'),
  );
  await page.selectOption('#max-side', '256');
  // The tile geometry is checked against the loaded model's compression ratio.
  await page.click('#load');
  await page.waitForFunction(
    () => window.dcae.model !== undefined && document.body.dataset.state !== 'running',
  );
  await page.selectOption('#tiling', 'on');
  await page.fill('#tile-size', '100');
  expect(await page.textContent('#tiling-note')).toMatch(
    /tileSize must be a positive multiple of .* 32 px; got 100/,
  );
  expect(await page.getAttribute('#tile-size', 'aria-invalid')).toBe('true');
  await page.fill('#tile-size', '128');
  await page.fill('#tile-overlap', '32');
  expect(await page.textContent('#tiling-note')).toMatch(/✓ stride 96 px/);

  expect(await runAndWait(), JSON.stringify(await page.evaluate(() => window.dcae.error))).toBe('done');
  const { result, progress } = await page.evaluate(() => window.dcae);
  // 160 px: tiles at 0 and 32 (moved back to end at the border); 256 px: at 0, 96, 128.
  for (const plan of [result!.plans.encode, result!.plans.decode]) {
    expect(plan.tiles).toMatchObject({ tileSize: 128, overlap: 32, stride: 96, rows: 2, columns: 3 });
    expect(plan.runs).toBe(6);
  }
  for (const stage of ['encode', 'decode']) {
    const events = progress.filter((e) => e.stage === stage);
    expect(events.map((e) => `${e.done}/${e.total}`)).toEqual([
      '0/6',
      '1/6',
      '2/6',
      '3/6',
      '4/6',
      '5/6',
      '6/6',
    ]);
  }
  expect(await page.textContent('#latent-facts')).toMatch(/tiled: 2×3 = 6 tiles of 128 px/);

  const tiled = await nodeRun(image, { tiling: { tileSize: 128, overlap: 32 } });
  const whole = await nodeRun(image, { tiling: 'never' });
  const scale = Math.max(1, Math.abs(tiled.latentStats.min), Math.abs(tiled.latentStats.max));
  for (const key of ['min', 'max', 'mean', 'std'] as const)
    expect(Math.abs(result!.latentStats[key] - tiled.latentStats[key])).toBeLessThanOrEqual(1e-4 * scale);
  expect(Math.abs(result!.metrics.psnr - tiled.psnr)).toBeLessThanOrEqual(0.01);
  expect(Math.abs(result!.metrics.ssim - tiled.ssim)).toBeLessThanOrEqual(1e-4);
  // The comparison can tell a tiled run from a whole one: blending moves the latent well past the tolerance.
  expect(maxAbsDiff(tiled.latent.data, whole.latent.data)).toBeGreaterThan(1e-2 * scale);

  await page.selectOption('#tiling', 'auto');
}, 90_000);

it('says what it does with an RGBA upload, and forgets the previous image when an upload is refused', async () => {
  // Half of the pixels transparent: the note says the alpha channel is dropped.
  const rgba = new Uint8Array(64 * 64 * 4).map((_, i) =>
    i % 4 === 3 ? ((i >> 2) % 2 ? 0 : 255) : (i * 13) & 255,
  );
  await page.setInputFiles('#image-input', {
    name: 'logo.png',
    mimeType: 'image/png',
    buffer: encodePng(64, 64, rgba, 4),
  });
  await page.waitForFunction(() => document.querySelector('#image-note')!.textContent.startsWith('logo.png'));
  expect(await page.textContent('#image-note')).toMatch(
    /transparency \(50% of its pixels\): the alpha channel is dropped/,
  );
  expect((await shownResults()).originalSize).toBe('64×64');

  const before = await page.evaluate(() => window.dcae.result);
  await page.setInputFiles('#image-input', {
    name: 'notes.png',
    mimeType: 'image/png',
    buffer: Buffer.from('these are notes, not a picture'),
  });
  await page.waitForFunction(() => document.body.dataset.state === 'error');
  const note = (await page.textContent('#image-note'))!;
  expect(note).toMatch(/^notes\.png was refused \(UNSUPPORTED_FORMAT\)/);
  expect(note).not.toContain('logo.png');
  expect(note).not.toContain('64×64');
  const shown = await shownResults();
  expect(shown.originalWidth).toBe(1);
  expect(shown.originalSize).toBe('');
  expect(shown.note).toMatch(/No image: notes\.png was refused/);
  expect(await page.evaluate(() => window.dcae.error?.code)).toBe('UNSUPPORTED_FORMAT');
  await expectBannerInView(/^UNSUPPORTED_FORMAT: .*notes\.png/);
  // Nothing to run until an image is chosen; the last completed run is kept.
  expect(await clickJob('#run')).toBe('error');
  expect(await page.textContent('#status')).toMatch(/INVALID_ARGUMENT: notes\.png was refused; pick/);
  expect(await page.evaluate(() => window.dcae.result)).toEqual(before);
  expectShowsRun(await shownResults(), before!);
});

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
  expect(await page.evaluate(() => window.dcae.cancelMs)).toBeLessThan(CANCEL_LIMIT_MS);
  expect(await page.evaluate(() => window.dcae.result)).toEqual(before);
  expect(await page.textContent('#status')).toMatch(/Cancel/);
  // Every panel shows the last completed run (the 256×160 tiled one), not the cancelled 1024×1024 image.
  const shown = await shownResults();
  expectShowsRun(shown, before!);
  expect(shown.outcome).toBe('cancelled');
  expect(shown.note).toBe('Cancelled: showing the last completed run (tiles.png).');
  // Choosing an image shows its preview alone: no numbers of another image under it.
  await page.click('[data-sample=landscape]');
  const preview = await shownResults();
  expect(preview).toMatchObject({
    shows: 'preview',
    outcome: '',
    metrics: '',
    latent: '',
    reconstructionWidth: 1,
  });

  // The landscape sample on the same (reloaded) model.
  await page.click('[data-sample=landscape]');
  await page.selectOption('#max-side', '512');
  expect(await runAndWait()).toBe('done');
  const { result } = await page.evaluate(() => window.dcae);
  // Fit defaults to pad, as in the CLI: the sample's sides are padded up to multiples of 32.
  expect(result!.inputShape).toEqual([1, 3, 352, 512]);
  expect(result!.latentShape).toEqual([1, 8, 11, 16]);
  expect(Number.isFinite(result!.metrics.psnr)).toBe(true);

  await mkdir(join(REPO, 'bench-results/e2e'), { recursive: true });
  await page.screenshot({ path: SCREENSHOT, fullPage: true });
  expect((await readdir(join(REPO, 'bench-results/e2e'))).includes('playground.png')).toBe(true);
  expect(problems).toEqual([]);
}, 90_000);

it('cancels a tiled run between tiles', async () => {
  const size = 1024;
  const rgb = testImage(size, size).data;
  await page.setInputFiles('#image-input', {
    name: 'big.png',
    mimeType: 'image/png',
    buffer: encodePng(size, size, rgb),
  });
  await page.waitForFunction(() =>
    document.querySelector('#image-note')!.textContent.startsWith('big.png: 1024×1024'),
  );
  await page.selectOption('#max-side', '1024');
  await page.selectOption('#tiling', 'on');
  await page.fill('#tile-size', '128');
  await page.fill('#tile-overlap', '32');
  const before = await page.evaluate(() => window.dcae.result);

  await page.click('#run');
  // 11×11 = 121 tiles; cancel once a few are done.
  await page.waitForFunction(
    () => window.dcae.progress.filter((e) => e.stage === 'encode' && (e.done ?? 0) >= 2).length > 0,
    undefined,
    { timeout: 60_000 },
  );
  expect(await page.textContent('#status')).toMatch(
    /^Encode: tile \d+\/121 \(11×11 tiles of 128 px, overlap 32 px\)/,
  );
  await page.click('#cancel');
  await page.waitForFunction(() => document.body.dataset.state !== 'running', undefined, { timeout: 5_000 });
  expect(await page.evaluate(() => document.body.dataset.state)).toBe('cancelled');
  const status = await page.textContent('#status');
  expect(await page.evaluate(() => window.dcae.cancelMs), status!).toBeLessThan(CANCEL_LIMIT_MS);
  const done = await page.evaluate(() =>
    Math.max(...window.dcae.progress.filter((e) => e.stage === 'encode').map((e) => e.done ?? 0)),
  );
  expect(done).toBeLessThan(121);
  expect(await page.evaluate(() => window.dcae.result)).toEqual(before);
  await page.selectOption('#tiling', 'auto');
}, 90_000);

/** Clicks Generate and waits for that job to finish (done, cancelled or error; bad inputs fail at once). */
function generateAndWait(timeout = 60_000): Promise<string> {
  return clickJob('#generate', timeout);
}

/** Clicks a button that starts a job and waits for that job to finish (done, cancelled or error). */
async function clickJob(selector: string, timeout = 60_000): Promise<string> {
  const jobs = await page.evaluate(() => window.dcae.jobs);
  await page.click(selector);
  await page.waitForFunction(
    (before) =>
      window.dcae.jobs > before && ['done', 'cancelled', 'error'].includes(document.body.dataset.state!),
    jobs,
    { timeout },
  );
  return page.evaluate(() => document.body.dataset.state!);
}

/** Replaces the chosen classes through the keyboard: Backspace empties, then search + Enter for each. */
async function chooseClasses(queries: readonly string[]): Promise<void> {
  await page.focus('#class-search');
  while ((await page.locator('#class-chips li').count()) > 0) await page.keyboard.press('Backspace');
  for (const query of queries) {
    await page.keyboard.type(query);
    await page.keyboard.press('Enter');
  }
}

const GENERATE_CASES = [
  // The settings of the sampler fixtures, so their tolerance applies (fixtures/diffusion/README.md).
  // `steps` is what the page asks for: DDPM steps, DPM-Solver network evaluations (9 = fast
  // order-3 steps 3, 3, 2, 1: 4 sampler steps).
  {
    backbone: 'tiny-dit',
    fixture: 'dit-ddpm10-cfg4',
    sampler: 'ddpm',
    steps: 10,
    samplerSteps: 10,
    guidanceScale: 4,
    seed: 1234,
  },
  {
    backbone: 'tiny-uvit',
    fixture: 'uvit-dpm-nfe9-cfg3',
    sampler: 'dpm-solver',
    steps: 9,
    samplerSteps: 4,
    guidanceScale: 3,
    seed: 77,
  },
] as const;

it.each(GENERATE_CASES)(
  'generates with $backbone like generate() in Node ($sampler, $steps steps, guidance $guidanceScale)',
  async ({ backbone, fixture, sampler, steps, samplerSteps, guidanceScale, seed }) => {
    await page.click('#view-generate');
    await page.selectOption('#gen-model', `fixture:${backbone}:tiny-in-f32`);
    // "golden retriever" is class 207; a bare index adds that class.
    await chooseClasses(['golden retriever', '999']);
    expect(await page.locator('#class-chips li').allTextContents()).toEqual([
      'golden retriever × 207',
      'toilet tissue × 999',
    ]);
    await page.fill('#gen-steps', String(steps));
    await page.fill('#gen-guidance', String(guidanceScale));
    await page.fill('#gen-seed', String(seed));
    expect(await generateAndWait(), JSON.stringify(await page.evaluate(() => window.dcae.error))).toBe(
      'done',
    );
    const { generation, generator, steps: reported } = await page.evaluate(() => window.dcae);
    expect(generator).toMatchObject({ latentShape: [8, 4, 4], imageSize: 128, defaults: { sampler } });
    expect(generation).toMatchObject({ classLabels: [207, 999], sampler, steps, guidanceScale, seed });
    expect(generation!.stepMs).toHaveLength(samplerSteps);
    expect(reported).toBe(samplerSteps);

    const expected = await nodeGenerate(backbone, { classLabels: [207, 999], steps, guidanceScale, seed });
    expect(generation!.latentShape).toEqual(expected.latent.shape);
    expect(generation!.nfe).toBe(expected.nfe);
    // onnxruntime-web (2 threads) vs onnxruntime-node (1 thread): float32 kernels that sum in another
    // order, as the fixture's 2-thread rerun (5–15 % of this tolerance). The random network
    // amplifies such differences along the chain (DiT reaches |x| ≈ 1000), hence the sampler
    // fixture's rule, 10 × the fp32 noise floor of the same chain, not 1e-4 relative.
    const tolerance = await samplerTolerance(fixture);
    expect(maxAbsDiff(generation!.latent, expected.latent.data)).toBeLessThanOrEqual(tolerance);
    expect(
      await page.locator('#gen-grid canvas').evaluateAll((c) => c.map((e) => (e as HTMLCanvasElement).width)),
    ).toEqual([128, 128]);
  },
  90_000,
);

it('shows the library message for bad generation inputs', async () => {
  const cases: [() => Promise<void>, RegExp][] = [
    [() => page.fill('#gen-steps', '0'), /INVALID_ARGUMENT: steps must be an integer in \[1, 1000\]/],
    [() => page.fill('#gen-guidance', '-1'), /INVALID_ARGUMENT: guidanceScale must be a finite number ≥ 0/],
    [
      () => chooseClasses(['1000']),
      /INVALID_ARGUMENT: Class labels must be integers in \[0, 999\]; got 1000/,
    ],
  ];
  for (const [spoil, message] of cases) {
    await page.fill('#gen-steps', '4');
    await page.fill('#gen-guidance', '2');
    await chooseClasses(['207']);
    await spoil();
    expect(await generateAndWait()).toBe('error');
    expect(await page.evaluate(() => window.dcae.error?.code)).toBe('INVALID_ARGUMENT');
    expect(await page.textContent('#gen-status')).toMatch(message);
  }
  // 1000 is shown as a chip that is not a class.
  expect(await page.locator('#class-chips li').allTextContents()).toEqual(['not an ImageNet class × 1000']);
  // The failures left the grid on the last completed generation.
  expect(await shownGrid()).toMatchObject({ shows: 'result', outcome: 'error' });

  // A class is chosen once: the second is refused, visibly.
  await chooseClasses(['207', 'golden retriever']);
  expect(await page.locator('#class-chips li').allTextContents()).toEqual(['golden retriever × 207']);
  expect(await page.isVisible('#class-note')).toBe(true);
  expect(await page.textContent('#class-note')).toMatch(/golden retriever \(207\) is already chosen/);
  expect(await page.getAttribute('#class-chips button', 'class')).toContain('repeated');
  await chooseClasses(['999']);
  expect(await page.isVisible('#class-note')).toBe(false);
  // The model facts speak of numbers, not of library functions.
  const info = (await page.textContent('#gen-model-info'))!;
  expect(info).not.toMatch(/generate\(\)/);
  expect(info).toMatch(/guidance (\d+(\.\d+)?|1\.5 \(the model sets none\))/);
});

it('cancels mid-generation', async () => {
  await page.selectOption('#gen-model', 'fixture:tiny-dit:tiny-in-f32');
  await chooseClasses(['207']);
  await page.fill('#gen-guidance', '4');
  await page.fill('#gen-steps', '1000');
  const before = await page.evaluate(() => window.dcae.generation);
  const grid = await shownGrid();
  expect(grid.captions).toEqual(['golden retriever (207) · 128×128', 'toilet tissue (999) · 128×128']);

  await page.click('#generate');
  await page.waitForFunction(() => window.dcae.steps >= 5, undefined, { timeout: 60_000 });
  // While sampling, the grid shows this run's classes and no facts of another run.
  const running = await shownGrid();
  expect(running).toMatchObject({
    shows: 'running',
    captions: ['golden retriever (207) · 128×128'],
    facts: '',
  });
  expect(await page.textContent('#gen-status')).toMatch(/^Step \d+\/1000/);
  await page.click('#gen-cancel');
  await page.waitForFunction(() => document.body.dataset.state !== 'running', undefined, { timeout: 5_000 });
  expect(await page.evaluate(() => document.body.dataset.state)).toBe('cancelled');
  expect(await page.evaluate(() => window.dcae.cancelMs)).toBeLessThan(CANCEL_LIMIT_MS);
  expect(await page.evaluate(() => window.dcae.steps)).toBeLessThan(1000);
  expect(await page.evaluate(() => window.dcae.generation)).toEqual(before);
  expect(await page.textContent('#gen-status')).toMatch(/Cancel/);
  // The grid is back on the last completed generation: its images, under its own facts.
  const after = await shownGrid();
  expect(after).toMatchObject({
    shows: 'result',
    outcome: 'cancelled',
    captions: grid.captions,
    pixels: grid.pixels,
  });
  expect(after.facts).toBe(grid.facts);
  expect(after.note).toMatch(
    /^Cancelled: showing the last completed generation \(golden retriever \(207\), toilet tissue \(999\)\)/,
  );

  // Runs again afterwards.
  await page.fill('#gen-steps', '10');
  expect(await generateAndWait()).toBe('done');
  await mkdir(join(REPO, 'bench-results/e2e'), { recursive: true });
  await page.screenshot({ path: GENERATE_SCREENSHOT, fullPage: true });
  expect(problems).toEqual([]);
}, 90_000);

it('refuses text that is not a URL, and reports network failures as NETWORK with the URL, at the top', async () => {
  await page.click('#view-reconstruct');
  await page.click('[data-tab=url]');
  const requestsBefore = requests.length;
  await page.fill('#url-input', 'not a url at all');
  expect(await page.getAttribute('#url-input', 'aria-invalid')).toBe('true');
  expect(await page.textContent('#url-note')).toMatch(
    /neither a Hugging Face repo id \(org\/name\) nor an http\(s\) URL/,
  );
  expect(await clickJob('#load')).toBe('error');
  expect(await page.evaluate(() => window.dcae.error?.code)).toBe('INVALID_ARGUMENT');
  expect(requests.slice(requestsBefore)).toEqual([]); // nothing was fetched (no index.html as a config)
  await expectBannerInView(/^INVALID_ARGUMENT: "not a url at all" is neither/);

  // A server that is not there: a real refused connection (https, as the page's CSP allows).
  const closed = createServer();
  await new Promise<void>((done) => closed.listen(0, '127.0.0.1', done));
  const { port } = closed.address() as AddressInfo;
  await new Promise((done) => closed.close(done));
  const deadUrl = `https://127.0.0.1:${port}/models/tiny`;
  await page.fill('#url-input', deadUrl);
  expect(await page.getAttribute('#url-input', 'aria-invalid')).toBe('false');
  expect(await clickJob('#load')).toBe('error');
  const error = await page.evaluate(() => window.dcae.error);
  expect(error?.code).toBe('NETWORK');
  // The folder URL keeps its last segment without a trailing slash.
  expect(error?.message).toContain(`${deadUrl}/config.json: GET failed`);
  expect(error?.message).toMatch(/check the connection and retry/);
  await expectBannerInView(/^NETWORK: https:\/\/127\.0\.0\.1:\d+\/models\/tiny\/config\.json: GET failed/);
  expect(await page.textContent('#status')).toMatch(/^NETWORK: /);

  // A Hugging Face preset while offline (the test never reaches the internet).
  let refused = 0;
  const offline = (route: Route) => {
    refused++;
    return route.abort('internetdisconnected');
  };
  await page.context().route('https://huggingface.co/**', offline);
  try {
    await page.click('[data-tab=hub]');
    const repo = await page.inputValue('#hub-select');
    expect(await clickJob('#load')).toBe('error');
    const failure = await page.evaluate(() => window.dcae.error);
    expect(refused).toBeGreaterThan(0);
    expect(failure?.code).toBe('NETWORK');
    expect(failure?.message).toContain(`https://huggingface.co/${repo}/resolve/main/config.json: GET failed`);
    expect(failure?.message).not.toMatch(/^Failed to fetch/);
    await expectBannerInView(/^NETWORK: https:\/\/huggingface\.co\//);
    await mkdir(join(REPO, 'bench-results/e2e'), { recursive: true });
    await page.screenshot({ path: ERROR_SCREENSHOT });
  } finally {
    await page.context().unroute('https://huggingface.co/**', offline);
  }

  // The Generate view's own URL field refuses the same text.
  await page.click('#view-generate');
  await page.selectOption('#gen-model', 'custom');
  await page.fill('#gen-url', 'not a url at all');
  expect(await generateAndWait()).toBe('error');
  expect(await page.textContent('#gen-status')).toMatch(/^INVALID_ARGUMENT: "not a url at all" is neither/);
  await page.click('#alert-close');
  expect(await page.isVisible('#alert')).toBe(false);
}, 90_000);
