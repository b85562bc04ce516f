/**
 * TAESANA previews in the Generate view, in headless Chromium (the built playground served like a
 * deployment): the bundled 32-channel tiny DiT (fixtures/diffusion/tiny-dit-c32) with the DC-AE 1.5
 * tiny fixture, previewed through the bundled TAESANA (fixtures/family2/taesana-randinit, read from
 * its .pth). Each shown preview is a TAESANA decode of a step's x̂₀ (image-sized, not the 4×4 latent
 * PCA); the last one equals TAESANA's decode of the final sample on onnxruntime-node (at DDPM's
 * last step the sample is x̂₀). An 8-channel model with TAESANA previews is refused with the reason.
 */
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { loadAutoencoder, memoryModelFiles, tensorToImages } from '@dcae/autoencoder';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { OpenPlayground } from './static-server.js';
import { openPlayground } from './static-server.js';

const REPO = resolve(import.meta.dirname, '../../..');
const TAESANA = join(REPO, 'fixtures/family2/taesana-randinit');

let playground: OpenPlayground;
let page: Page;
let problems: string[];

beforeAll(async () => {
  playground = await openPlayground('dcae-playground-preview-');
  ({ page, problems } = playground);
  await page.click('#view-generate');
}, 180_000);

afterAll(async () => {
  await playground?.close();
});

/** Chooses the bundled backbone, DDPM 3 steps, seed 7, previews with `previewWith`; Generate; the final state. */
async function generateWith(model: string, previewWith: string): Promise<string> {
  await page.waitForFunction(
    (value) =>
      [...document.querySelectorAll('#gen-model option')].some(
        (o) => (o as HTMLOptionElement).value === value,
      ),
    model,
  );
  await page.selectOption('#gen-model', model);
  await page.selectOption('#gen-sampler', 'ddpm');
  await page.fill('#gen-steps', '3');
  await page.fill('#gen-seed', '7');
  await page.check('#gen-preview');
  await page.selectOption('#gen-preview-with', previewWith);
  const jobs = await page.evaluate(() => window.dcae.jobs);
  await page.click('#generate');
  await page
    .waitForFunction(
      (before) =>
        window.dcae.jobs > before && ['done', 'cancelled', 'error'].includes(document.body.dataset.state!),
      jobs,
      { timeout: 240_000 },
    )
    .catch(async (error: unknown) => {
      const status = await page.evaluate(() => ({
        status: document.querySelector('#gen-status')?.textContent,
        progress: window.dcae.progress.slice(-5),
        steps: window.dcae.steps,
        preview: window.dcae.preview,
      }));
      throw new Error(`${String(error)}; the page: ${JSON.stringify(status)}`);
    });
  return page.evaluate(() => document.body.dataset.state!);
}

it('previews each step’s x̂₀ through TAESANA; the last equals TAESANA’s decode of the sample', async () => {
  const state = await generateWith('fixture:tiny-dit-c32:dcae15-tiny-f32', 'taesana-fixture');
  expect(state, JSON.stringify(await page.evaluate(() => window.dcae.error))).toBe('done');
  const { generation, generator, preview } = await page.evaluate(() => ({
    generation: window.dcae.generation,
    generator: window.dcae.generator,
    preview: window.dcae.preview,
  }));
  expect(generator).toMatchObject({ latentShape: [32, 4, 4], imageSize: 128 });
  expect(generation).toMatchObject({ sampler: 'ddpm', steps: 3, latentShape: [2, 32, 4, 4] });
  // Image-sized TAESANA decodes of the last step (the latent PCA would be 4×4).
  expect(preview).toEqual({ kind: 'taesana', step: 3, sizes: ['128×128', '128×128'] });

  // TAESANA on onnxruntime-node, decoding the final sample ÷ the DC-AE's scaling factor (1.0 here).
  const files = Object.fromEntries(
    await Promise.all(
      ['config.json', 'taesana_decoder.pth'].map(
        async (f) => [f, new Uint8Array(await readFile(join(TAESANA, f)))] as const,
      ),
    ),
  );
  const runtime = createNodeRuntime({ threads: 1 });
  const taesana = await loadAutoencoder(memoryModelFiles('taesana-randinit', files), {
    runtime,
    parts: ['decoder'],
  });
  let expected: Uint8Array[];
  try {
    expected = tensorToImages(
      await taesana.decode({
        dtype: 'float32',
        shape: generation!.latentShape,
        data: Float32Array.from(generation!.latent),
      }),
    ).map((image) => image.data);
  } finally {
    await taesana.dispose();
    await runtime.dispose();
  }
  const shown = await page.evaluate(() => window.dcae.previewRgb());
  expect(shown).toHaveLength(2);
  for (let i = 0; i < 2; i++) {
    expect(shown[i]!.length).toBe(expected[i]!.length);
    const diff = shown[i]!.reduce((m, v, k) => Math.max(m, Math.abs(v - expected[i]![k]!)), 0);
    expect(diff, `sample ${i}`).toBeLessThanOrEqual(1);
  }
  expect(problems).toEqual([]);
}, 400_000);

it('refuses TAESANA previews for a model sampling 8-channel latents, naming both', async () => {
  const state = await generateWith('fixture:tiny-dit:tiny-in-f32', 'taesana-fixture');
  expect(state).toBe('error');
  const error = await page.evaluate(() => window.dcae.error);
  expect(error?.code).toBe('UNSUPPORTED');
  expect(error?.message).toMatch(
    /TAESANA decodes 32-channel f32 latents; this model samples 8-channel f32 latents/,
  );
  // The latent PCA still previews that model.
  expect(await generateWith('fixture:tiny-dit:tiny-in-f32', 'pca')).toBe('done');
  expect(await page.evaluate(() => window.dcae.preview)).toMatchObject({
    kind: 'pca',
    sizes: ['4×4', '4×4'],
  });
}, 240_000);
