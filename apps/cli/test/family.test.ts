import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createRng, parseSafetensors } from '@dcae/core';
import { tensorToImages } from '@dcae/autoencoder';
import { loadAutoencoder, readImage } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { describe, expect, it } from 'vitest';
import { startPreview } from '../src/commands/preview.js';
import { readTensor, REPO, runCli, tempDir } from './helpers.js';

const FAMILY = join(REPO, 'fixtures/family2');
const TAESANA = join(FAMILY, 'taesana-randinit');
const DIT = join(REPO, 'fixtures/diffusion/tiny-dit');

describe('dcae convert --to safetensors', () => {
  it('turns taesana_encoder.pth into a safetensors file with the same tensors', async () => {
    const out = join(await tempDir(), 'enc.safetensors');
    const result = await runCli([
      'convert',
      '--to',
      'safetensors',
      '-m',
      join(TAESANA, 'taesana_encoder.pth'),
      '-o',
      out,
      '--json',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({ command: 'convert', to: 'safetensors', tensors: 69 });
    const st = parseSafetensors(await readFile(out));
    expect(st.header.tensors.get('0.weight')).toMatchObject({ dtype: 'F16', shape: [32, 3, 3, 3] });
  });

  it('refuses a file that is not a .pth (exit 8) and writes nothing', async () => {
    const dir = await tempDir();
    const result = await runCli([
      'convert',
      '--to',
      'safetensors',
      '-m',
      join(TAESANA, 'config.json'),
      '-o',
      join(dir, 'x.safetensors'),
    ]);
    expect(result.code).toBe(8);
    expect(result.stderr).toMatch(/^error\[PTH_NOT_ZIP\]/m);
    expect(await readdir(dir)).toEqual([]);
  });
});

describe('decode --model <TAESANA folder>, --latent-channels', () => {
  it('decodes a 32-channel latent with TAESANA; refuses --latent-channels on it', async () => {
    const dir = await tempDir();
    // A 32-channel latent, made by TAESANA's own encoder from the tiny fixture's 96×64 sample.
    const latent = join(dir, 'latent.safetensors');
    const sample = join(REPO, 'fixtures/dcae/tiny-sana-f32/input.safetensors');
    expect((await runCli(['encode', '-m', TAESANA, sample, '-o', latent, '-q'])).code).toBe(0);
    const png = join(dir, 'out.png');
    const result = await runCli(['decode', '-m', TAESANA, latent, '-o', png, '-q']);
    expect(result.code, result.stderr).toBe(0);
    const image = await readImage(png);
    expect([image.width, image.height]).toEqual([64, 96]);
    const refused = await runCli([
      'encode',
      '-m',
      TAESANA,
      '--latent-channels',
      '8',
      sample,
      '-o',
      join(dir, 'x.safetensors'),
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^error\[UNSUPPORTED\]/m);
  });
});

describe('generate --preview taesana', () => {
  it('bad values are usage errors; a model with other latent channels is refused', async () => {
    const out = join(await tempDir(), 'g.png');
    const bad = await runCli(['generate', '-m', DIT, '--class', '1', '--preview', 'pca', '-o', out]);
    expect(bad.code).toBe(2);
    // (DCAE_TAESANA is not set in the test environment.)
    const missing = await runCli(['generate', '-m', DIT, '--class', '1', '--preview', 'taesana', '-o', out]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/DCAE_TAESANA/);
    const other = await runCli([
      'generate',
      '-m',
      DIT,
      '--class',
      '1',
      '--steps',
      '2',
      '--autoencoder',
      join(REPO, 'fixtures/dcae/tiny-in-f32'),
      '--preview',
      `taesana=${TAESANA}`,
      '-o',
      out,
    ]);
    expect(other.code, other.stderr).toBe(2);
    expect(other.stderr).toMatch(/decodes 32-channel f32 latents; this model samples 8-channel latents/);
  });

  it('writes each pushed step as a PNG, skipping steps that arrive while one is decoding', async () => {
    const dir = await tempDir();
    const runtime = createNodeRuntime({ threads: 1 });
    const warnings: string[] = [];
    try {
      const previewer = await startPreview({
        spec: { folder: TAESANA },
        output: join(dir, 'sample.png'),
        force: false,
        runtime,
        signal: new AbortController().signal,
        scalingFactor: 0.3189,
        latentChannels: 32,
        autoencoderName: 'dc-ae-f32c32-in-1.0',
        warn: (m) => warnings.push(m),
      });
      const rng = createRng(1);
      for (let step = 1; step <= 3; step++) previewer.push(step, rng.randn([2, 32, 2, 3]));
      await previewer.close();
      const files = (await readdir(previewer.directory)).sort();
      // Step 1 starts at once; 2 is replaced by 3 while 1 decodes.
      expect(files).toEqual(['step-001.png', 'step-003.png']);
      const image = await readImage(join(previewer.directory, 'step-003.png'));
      expect([image.width, image.height]).toEqual([2 * 96, 64]);
      expect(warnings.join('\n')).toMatch(/trained on dc-ae-f32c32-sana latents/);
    } finally {
      await runtime.dispose();
    }
  });
});

describe('generate --preview taesana=DIR end to end, 32 latent channels', () => {
  // A tiny DiT sampling 32-channel latents (fixtures/diffusion/tiny-dit-c32) decoded by the tiny
  // DC-AE 1.5 fixture (32 channels, f32, scaling factor 1.0); TAESANA previews every step.
  const DIT32 = join(REPO, 'fixtures/diffusion/tiny-dit-c32');
  const AE32 = join(REPO, 'fixtures/dcae/dcae15-tiny-f32');

  it('writes step PNGs; the last one is TAESANA’s decode of the final sample', async () => {
    const dir = await tempDir();
    const run = ['--class', '1', '--class', '2', '--sampler', 'ddpm', '--steps', '3', '--seed', '7'];
    const args = ['generate', '-m', DIT32, ...run, '--threads', '1'];
    const latentRun = await runCli([...args, '-o', join(dir, 'latent.safetensors')]);
    expect(latentRun.code, latentRun.stderr).toBe(0);
    const png = join(dir, 'g.png');
    const result = await runCli([
      ...args,
      '--autoencoder',
      AE32,
      '--preview',
      `taesana=${TAESANA}`,
      '--json',
      '-o',
      png,
    ]);
    expect(result.code, result.stderr).toBe(0);
    const report = JSON.parse(result.stdout) as { previews: { directory: string; written: number } };
    const files = (await readdir(report.previews.directory)).sort();
    expect(files.length).toBe(report.previews.written);
    // The first step starts decoding at once; the last is always written (close() decodes it).
    expect(files[0]).toBe('step-001.png');
    expect(files.at(-1)).toBe('step-003.png');

    // At DDPM's last step the sample is x̂₀ itself: the last preview is TAESANA(latent ÷ 1.0).
    const latent = await readTensor(join(dir, 'latent.safetensors'), 'latent');
    expect(latent.shape).toEqual([2, 32, 4, 4]);
    const runtime = createNodeRuntime({ threads: 1 });
    let expected: Uint8Array;
    try {
      const taesana = await loadAutoencoder(TAESANA, { runtime, parts: ['decoder'] });
      const [a, b] = tensorToImages(await taesana.decode(latent));
      await taesana.dispose();
      expected = new Uint8Array(2 * 128 * 128 * 3);
      for (let y = 0; y < 128; y++) {
        expected.set(a!.data.subarray(y * 128 * 3, (y + 1) * 128 * 3), y * 256 * 3);
        expected.set(b!.data.subarray(y * 128 * 3, (y + 1) * 128 * 3), (y * 256 + 128) * 3);
      }
    } finally {
      await runtime.dispose();
    }
    const last = await readImage(join(report.previews.directory, 'step-003.png'));
    expect([last.width, last.height]).toEqual([256, 128]);
    const diff = last.data.reduce((m, v, k) => Math.max(m, Math.abs(v - expected[k]!)), 0);
    expect(diff).toBeLessThanOrEqual(1);
    // …and not the DC-AE's own decode of it (the grid), which TAESANA only approximates.
    const grid = await readImage(png);
    expect([grid.width, grid.height]).toEqual([256, 128]);
    expect(grid.data.some((v, k) => Math.abs(v - last.data[k]!) > 8)).toBe(true);
  }, 120_000);
});
