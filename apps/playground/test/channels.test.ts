/**
 * The latent-channel slider in headless Chromium (the built playground, served like a deployment):
 * on the DC-AE 1.5 tiny fixture (fixtures/dcae/dcae15-tiny-f32, a copy of family2's) the slider
 * re-decodes the run's latent from its first N channels, which changes the reconstruction; the
 * picture equals the library's adaptive decode on onnxruntime-node (`encode(x, { latentChannels })`
 * then `decode`) and the PyTorch reference for N = 16 and 8. Quick moves are debounced into one
 * decode, a stale decode is dropped, and a DC-AE 1.0 model gets the slider disabled with the reason.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { parseSafetensors } from '@dcae/core';
import { loadAutoencoder, memoryModelFiles, tensorToImages } from '@dcae/autoencoder';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OpenPlayground } from './static-server.js';
import { openPlayground } from './static-server.js';

const REPO = resolve(import.meta.dirname, '../../..');
const DCAE15 = join(REPO, 'fixtures/dcae/dcae15-tiny-f32');

let playground: OpenPlayground;
let page: Page;
let problems: string[];

beforeAll(async () => {
  playground = await openPlayground('dcae-playground-channels-');
  ({ page, problems } = playground);
}, 180_000);

afterAll(async () => {
  await playground?.close();
});

/** Loads bundled fixture `name` and runs Encode → decode on its own sample. */
async function runFixture(name: string): Promise<void> {
  await page.waitForFunction(
    (n) =>
      [...document.querySelectorAll<HTMLOptionElement>('#fixture-select option')].some((o) => o.value === n),
    name,
  );
  await page.selectOption('#fixture-select', name);
  // The page starts on the default model's photo; a fixture's own sample is a separate choice.
  await page.click('[data-sample=fixture-sample]');
  await page.click('#run');
  await page.waitForFunction(() => document.body.dataset.state === 'running', undefined, { timeout: 5_000 });
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.state!), undefined, {
    timeout: 60_000,
  });
  expect(await page.evaluate(() => document.body.dataset.state)).toBe('done');
}

/** Moves the slider to each value in turn, synchronously (as fast as a drag can). */
function slide(...values: number[]): Promise<void> {
  return page.evaluate((list) => {
    const slider = document.querySelector<HTMLInputElement>('#channels-slider')!;
    for (const value of list) {
      slider.value = String(value);
      slider.dispatchEvent(new Event('input', { bubbles: true }));
    }
  }, values);
}

/** Waits until nothing is decoding and the reconstruction shows `channels` channels. */
async function settled(channels: number, total: number): Promise<void> {
  await page.waitForFunction(
    ([n, all]) => {
      const c = window.dcae.channels;
      return c !== undefined && c.decoding === undefined && (c.shown?.channels ?? all) === n;
    },
    [channels, total] as const,
    { timeout: 30_000 },
  );
}

/** The reconstruction canvas as RGB bytes. */
function reconstructionPixels(): Promise<{ width: number; height: number; rgb: number[] }> {
  return page.evaluate(() => {
    const canvas = document.querySelector<HTMLCanvasElement>('#reconstruction-canvas')!;
    const rgba = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const rgb: number[] = [];
    for (let i = 0; i < rgba.length; i += 4) rgb.push(rgba[i]!, rgba[i + 1]!, rgba[i + 2]!);
    return { width: canvas.width, height: canvas.height, rgb };
  });
}

/** The library's adaptive decode on onnxruntime-node: the first `channels` of the sample's latent. */
async function nodeAdaptive(channelCounts: readonly number[]): Promise<Map<number, Uint8Array>> {
  const files = Object.fromEntries(
    await Promise.all(
      ['config.json', 'diffusion_pytorch_model.safetensors'].map(
        async (f) => [f, new Uint8Array(await readFile(join(DCAE15, f)))] as const,
      ),
    ),
  );
  const sample = parseSafetensors(await readFile(join(DCAE15, 'input.safetensors'))).tensor(
    'sample',
  ) as HostTensor<'float32'>;
  const runtime = createNodeRuntime({ threads: 1 });
  const ae = await loadAutoencoder(memoryModelFiles('dcae15-tiny-f32', files), { runtime });
  try {
    const out = new Map<number, Uint8Array>();
    for (const n of channelCounts) {
      const latent = await ae.encode(sample, { latentChannels: n });
      expect(latent.shape[1]).toBe(n);
      out.set(n, tensorToImages(await ae.decode(latent))[0]!.data);
    }
    return out;
  } finally {
    await ae.dispose();
    await runtime.dispose();
  }
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < a.length; i++) worst = Math.max(worst, Math.abs(a[i]! - b[i]!));
  return worst;
}

it('re-decodes the DC-AE 1.5 latent from its first N channels, equal to the library', async () => {
  await runFixture('dcae15-tiny-f32');
  expect(await page.evaluate(() => window.dcae.result?.latentShape)).toEqual([1, 32, 2, 3]);
  const slider = await page.evaluate(() => {
    const s = document.querySelector<HTMLInputElement>('#channels-slider')!;
    return { disabled: s.disabled, max: s.max, value: s.value };
  });
  expect(slider).toEqual({ disabled: false, max: '32', value: '32' });
  const full = await reconstructionPixels();
  expect(await page.textContent('#reconstruction-channels')).toBe('(all 32 channels)');

  const node = await nodeAdaptive([16, 8, 32]);
  for (const n of [16, 8]) {
    await slide(n);
    await settled(n, 32);
    const shown = await page.evaluate(() => window.dcae.channels!.shown!);
    // The PyTorch reference of the fixture (expected.safetensors: reconstruction_c16, _c8).
    expect(shown.reference, `N=${n}`).toBeDefined();
    expect(shown.reference!.maxAbsDiff, `N=${n}`).toBeLessThanOrEqual(shown.reference!.tolerance);
    const pixels = await reconstructionPixels();
    expect([pixels.width, pixels.height]).toEqual([full.width, full.height]);
    // The library's adaptive decode on onnxruntime-node, to within 8-bit rounding.
    expect(maxAbsDiff(pixels.rgb, node.get(n)!), `N=${n}`).toBeLessThanOrEqual(1);
    // …and not the all-channel reconstruction.
    expect(maxAbsDiff(pixels.rgb, full.rgb), `N=${n}`).toBeGreaterThan(8);
    expect(await page.textContent('#reconstruction-channels')).toBe(`(first ${n} of 32 channels)`);
  }
  expect(maxAbsDiff(full.rgb, node.get(32)!)).toBeLessThanOrEqual(1);

  // A quick drag (three values inside the debounce time) decodes once, the last value.
  const before = await page.evaluate(() => window.dcae.channels!.started);
  await slide(4, 12, 20);
  await settled(20, 32);
  expect(await page.evaluate(() => window.dcae.channels!.started)).toBe(before + 1);

  // A value that is overtaken while it decodes is never shown: the last one wins.
  const overtaken = await page.evaluate(() => window.dcae.channels!.started);
  await slide(2);
  await page.waitForFunction((n) => window.dcae.channels!.started === n + 1, overtaken, { timeout: 10_000 });
  await slide(24);
  await settled(24, 32);
  expect(await page.evaluate(() => window.dcae.channels!.wanted)).toBe(24);

  // Back to all channels: the run's own reconstruction, without a decode.
  const started = await page.evaluate(() => window.dcae.channels!.started);
  await slide(32);
  await settled(32, 32);
  expect((await reconstructionPixels()).rgb).toEqual(full.rgb);
  expect(await page.evaluate(() => window.dcae.channels!.started)).toBe(started);
  expect(problems).toEqual([]);
}, 240_000);

it('a DC-AE 1.0 model (latent shortcuts) gets the slider disabled, with the reason', async () => {
  await runFixture('tiny-sana-f32');
  expect(await page.evaluate(() => window.dcae.channels)).toBeUndefined();
  expect(await page.isDisabled('#channels-slider')).toBe(true);
  expect(await page.textContent('#channels-note')).toMatch(
    /adaptive latent channels.*encoder-out and decoder-in averaging shortcuts mix the latent channels/,
  );
  expect(await page.textContent('#reconstruction-channels')).toBe('');
}, 120_000);
