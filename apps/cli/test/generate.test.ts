import { spawn } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseJsonConfig, parseSafetensors, serializeSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { dcAeCheckpointLayout, parseDcAeConfig, tensorToImages } from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';
import { loadAutoencoder, readImage } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { describe, expect, it } from 'vitest';
import { BIN, FIXTURES, REPO, maxAbsDiff, readMetadata, readTensor, runCli, tempDir } from './helpers.js';

const DIFFUSION = join(REPO, 'fixtures/diffusion');
const UVIT = join(DIFFUSION, 'tiny-uvit');
const DIT = join(DIFFUSION, 'tiny-dit');
const SANA = join(FIXTURES, 'tiny-sana-f32');

function expectFailure(result: { code: number; stderr: string }, code: string, exitCode: number): void {
  expect(result.code, result.stderr).toBe(exitCode);
  expect(result.stderr).toMatch(new RegExp(`^error\\[${code}\\]: .+`, 'm'));
  expect(result.stderr).not.toMatch(/^\s+at /m);
}

async function tensors(path: string): Promise<Map<string, HostTensor>> {
  const file = parseSafetensors(await readFile(path), { name: path });
  return new Map([...file.header.tensors.keys()].map((name) => [name, file.tensor(name)]));
}

interface SamplerMeta {
  readonly model: { readonly fixture: string };
  readonly labels: readonly number[];
  readonly cfg_scale: number;
  readonly sampler: Record<string, unknown>;
  readonly tolerance: { readonly final: number };
}

/** The CLI's --sampler and --steps (upstream's num_inference_steps) for a fixture's meta.json, and the network evaluations upstream made. */
function samplerArgs(meta: SamplerMeta): { sampler: string; steps: number; nfe: number } {
  const s = meta.sampler;
  if ('respacing' in s) return { sampler: 'ddpm', steps: s.num_steps as number, nfe: s.num_steps as number };
  if ('nfe' in s) return { sampler: 'dpm-solver', steps: s.nfe as number, nfe: s.nfe as number };
  expect(s.method).toBe('ODE_heun2');
  return {
    sampler: 'heun',
    steps: s['num_steps (output grid points)'] as number,
    nfe: s['nfe (batched [cond; uncond] calls)'] as number,
  };
}

describe('generate reproduces the sampler fixtures (--noise, latent output)', () => {
  it.each(['dit-ddpm10-cfg4', 'uvit-dpm-nfe9-cfg3', 'usit-heun2-6pt-cfg1.5'])('%s', async (name) => {
    const dir = join(DIFFUSION, name);
    const meta = JSON.parse(await readFile(join(dir, 'meta.json'), 'utf8')) as SamplerMeta;
    const sample = await tensors(join(dir, 'sample.safetensors'));
    expect(Array.from(sample.get('labels')!.data as BigInt64Array, Number)).toEqual(meta.labels);
    const tmp = await tempDir();
    const noise = join(tmp, 'noise.safetensors');
    const injected = new Map([...sample].filter(([key]) => key === 'noise_init' || key === 'step_noise'));
    await writeFile(noise, serializeSafetensors(injected));

    const { sampler, steps, nfe } = samplerArgs(meta);
    const out = join(tmp, 'latent.safetensors');
    const r = await runCli([
      'generate',
      '--model',
      resolve(dir, meta.model.fixture),
      ...meta.labels.flatMap((label) => ['--class', String(label)]),
      '--cfg',
      String(meta.cfg_scale),
      '--sampler',
      sampler,
      '--steps',
      String(steps),
      '--noise',
      noise,
      '--threads',
      '1',
      '--json',
      '-o',
      out,
    ]);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({
      sampler,
      steps,
      nfe,
      guidanceScale: meta.cfg_scale,
      classes: meta.labels,
    });
    expect(report.timingsMs.perStep).toHaveLength(report.stepsTaken);

    const latent = await readTensor(out, 'latent');
    const expected = sample.get('final') as HostTensor<'float32'>;
    expect(latent.shape).toEqual(expected.shape);
    expect(maxAbsDiff(latent, expected)).toBeLessThanOrEqual(meta.tolerance.final);
    const metadata = await readMetadata(out);
    expect(metadata.get('dcae.latent_space')).toBe('diffusion');
    expect(metadata.get('dcae.sampler')).toBe(sampler);
  });
});

/** Reference near-square grid, composed pixel by pixel. */
function referenceGrid(images: readonly RgbImage[], columns: number, rows: number): Uint8Array {
  const { width, height } = images[0]!;
  const out = new Uint8Array(columns * width * rows * height * 3);
  images.forEach((image, i) => {
    for (let y = 0; y < height; y++)
      for (let x = 0; x < width; x++)
        for (let c = 0; c < 3; c++) {
          const gy = Math.floor(i / columns) * height + y;
          const gx = (i % columns) * width + x;
          out[(gy * columns * width + gx) * 3 + c] = image.data[(y * width + x) * 3 + c]!;
        }
  });
  return out;
}

describe('generate decodes with --autoencoder into one image grid', () => {
  it('3 classes → a 2×2 grid of 128×128 decodes of latent / scaling factor, last cell black', async () => {
    const tmp = await tempDir();
    const args = ['generate', '--model', UVIT, '--class', '207,360', '--class', '999'];
    const run = ['--sampler', 'heun', '--steps', '3', '--cfg', '2', '--seed', '7', '--threads', '1'];
    const latentRun = await runCli([...args, ...run, '-o', join(tmp, 'latent.safetensors')]);
    expect(latentRun.code, latentRun.stderr).toBe(0);
    const png = join(tmp, 'grid.png');
    const r = await runCli([...args, ...run, '--autoencoder', SANA, '--json', '-o', png]);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).image).toEqual({ width: 128, height: 128, grid: { columns: 2, rows: 2 } });

    // The decode of the latent the same run wrote, divided by the AE's scaling factor (no preset here).
    const latent = await readTensor(join(tmp, 'latent.safetensors'), 'latent');
    expect(latent.shape).toEqual([3, 8, 4, 4]);
    const scaling = (
      JSON.parse(await readFile(join(SANA, 'config.json'), 'utf8')) as { scaling_factor: number }
    ).scaling_factor;
    const runtime = createNodeRuntime({ threads: 1 });
    let decoded: RgbImage[];
    try {
      const ae = await loadAutoencoder(SANA, { runtime });
      decoded = tensorToImages(
        await ae.decode({ dtype: 'float32', shape: latent.shape, data: latent.data.map((v) => v / scaling) }),
      );
      await ae.dispose();
    } finally {
      await runtime.dispose();
    }
    const grid = await readImage(png);
    expect([grid.width, grid.height]).toEqual([256, 256]);
    const want = referenceGrid(decoded, 2, 2);
    const diff = grid.data.reduce((m, v, k) => Math.max(m, Math.abs(v - want[k]!)), 0);
    expect(diff).toBeLessThanOrEqual(1);
    // bottom-right cell: no image
    for (let y = 128; y < 256; y++) {
      const row = grid.data.subarray((y * 256 + 128) * 3, (y * 256 + 256) * 3);
      expect(row.every((v) => v === 0)).toBe(true);
    }
    expect((await readdir(tmp)).sort()).toEqual(['grid.png', 'latent.safetensors']);
  });
});

/** A DC-AE folder shaped like tiny-sana-f32 but with 4 latent channels (zero weights: it is never run). */
async function fourChannelAutoencoder(dir: string): Promise<void> {
  const json = { ...JSON.parse(await readFile(join(SANA, 'config.json'), 'utf8')), latent_channels: 4 };
  const { params } = dcAeCheckpointLayout(parseDcAeConfig(parseJsonConfig(JSON.stringify(json))));
  const weights = new Map<string, HostTensor>(
    params.map((p) => [
      p.key,
      { dtype: 'float32', shape: p.shape, data: new Float32Array(p.shape.reduce((a, b) => a * b, 1)) },
    ]),
  );
  await writeFile(join(dir, 'config.json'), JSON.stringify(json));
  await writeFile(join(dir, 'diffusion_pytorch_model.safetensors'), serializeSafetensors(weights));
}

describe('generate refuses bad inputs before writing anything', () => {
  const base = (out: string) => ['generate', '--model', UVIT, '--class', '207', '-o', out];

  it.each([
    [['--class', '1000'], 'class above 999'],
    [['--class', '-1'], 'negative class'],
    [['--class', '12x'], 'class not a number'],
    [['--cfg', '-0.5'], 'negative guidance'],
    [['--cfg', 'NaN'], 'guidance not a number'],
    [['--steps', '0'], 'zero steps'],
    [['--sampler', 'ddpm'], 'DDPM on a UViT'],
    [['--sampler', 'euler'], 'unknown sampler'],
    [['--sampler', 'heun', '--steps', '1'], 'a one-point Heun grid'],
  ])('%j (%s) → INVALID_ARGUMENT, exit 2', async (extra) => {
    const tmp = await tempDir();
    expectFailure(await runCli([...base(join(tmp, 'l.safetensors')), ...extra]), 'INVALID_ARGUMENT', 2);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('no --class → INVALID_ARGUMENT, exit 2', async () => {
    const tmp = await tempDir();
    const r = await runCli(['generate', '--model', UVIT, '-o', join(tmp, 'l.safetensors')]);
    expectFailure(r, 'INVALID_ARGUMENT', 2);
    expect(await readdir(tmp)).toEqual([]);
  });

  it('an image output without autoencoder weights says to pass --autoencoder (exit 2)', async () => {
    const tmp = await tempDir();
    const r = await runCli(base(join(tmp, 'out.png')));
    expectFailure(r, 'INVALID_ARGUMENT', 2);
    expect(r.stderr).toContain('--autoencoder');
    expect(r.stderr).toContain('.safetensors');
    expect(await readdir(tmp)).toEqual([]);
  });

  it('a released-style folder whose model.safetensors has no autoencoder.* tensors: same advice, naming its AE', async () => {
    const tmp = await tempDir();
    const model = join(tmp, 'model');
    await mkdir(model);
    await writeFile(
      join(model, 'config.json'),
      JSON.stringify({ model_name: 'dc-ae-f32c32-in-1.0-uvit-s-in-512px' }),
    );
    const dummy: HostTensor = { dtype: 'float32', shape: [1], data: new Float32Array(1) };
    await writeFile(join(model, 'model.safetensors'), serializeSafetensors({ 'diffusion_model.x': dummy }));
    const r = await runCli(['generate', '--model', model, '--class', '1', '-o', join(tmp, 'out.png')]);
    expectFailure(r, 'INVALID_ARGUMENT', 2);
    expect(r.stderr).toContain('dc-ae-f32c32-in-1.0');
    expect(r.stderr).toContain('--autoencoder');
    expect((await readdir(tmp)).sort()).toEqual(['model']);
  });

  it('a released-style folder with autoencoder.* tensors binds them strictly to its AE preset (WEIGHTS_MISMATCH, exit 7)', async () => {
    const tmp = await tempDir();
    const model = join(tmp, 'model');
    await mkdir(model);
    await writeFile(
      join(model, 'config.json'),
      JSON.stringify({ model_name: 'dc-ae-f64c128-in-1.0-uvit-h-in-512px' }),
    );
    const dummy: HostTensor = { dtype: 'float32', shape: [1], data: new Float32Array(1) };
    await writeFile(
      join(model, 'model.safetensors'),
      serializeSafetensors({ 'autoencoder.encoder.extra': dummy, 'diffusion_model.x': dummy }),
    );
    const r = await runCli(['generate', '--model', model, '--class', '1', '-o', join(tmp, 'out.png')]);
    expectFailure(r, 'WEIGHTS_MISMATCH', 7);
    expect(r.stderr).toContain('(tensors under "autoencoder.")');
    expect(r.stderr).toMatch(/\d+ missing, 1 unused/); // the backbone's tensor is not the AE's concern
    expect(r.stderr).not.toContain('diffusion_model.x');
    expect((await readdir(tmp)).sort()).toEqual(['model']);
  });

  it('an autoencoder with other latent channels → SHAPE_MISMATCH, exit 5', async () => {
    const tmp = await tempDir();
    const ae = join(tmp, 'ae');
    await mkdir(ae);
    await fourChannelAutoencoder(ae);
    const r = await runCli([...base(join(tmp, 'out.png')), '--autoencoder', ae]);
    expectFailure(r, 'SHAPE_MISMATCH', 5);
    expect(r.stderr).toMatch(/4 latent channels.*8-channel/);
    expect(await readdir(tmp)).toEqual(['ae']);
  });

  it('noise files: wrong shape → SHAPE_MISMATCH (5), step_noise for DPM-Solver → INVALID_ARGUMENT (2), neither tensor → TENSOR_NOT_FOUND (8)', async () => {
    const tmp = await tempDir();
    const noise = (shape: number[]): HostTensor => ({
      dtype: 'float32',
      shape,
      data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
    });
    const cases: [Record<string, HostTensor>, string, number][] = [
      [{ noise_init: noise([2, 8, 4, 4]) }, 'SHAPE_MISMATCH', 5], // one --class, two latents
      [{ noise_init: noise([1, 8, 8, 8]) }, 'SHAPE_MISMATCH', 5],
      [{ noise_init: noise([1, 8, 4, 4]), step_noise: noise([9, 1, 8, 4, 4]) }, 'INVALID_ARGUMENT', 2],
      [{ other: noise([1]) }, 'TENSOR_NOT_FOUND', 8],
    ];
    for (const [i, [content, code, exit]] of cases.entries()) {
      const path = join(tmp, `noise-${i}.safetensors`);
      await writeFile(path, serializeSafetensors(content));
      expectFailure(await runCli([...base(join(tmp, 'l.safetensors')), '--noise', path]), code, exit);
    }
    // DDPM: step_noise needs one row per step
    const path = join(tmp, 'ddpm.safetensors');
    await writeFile(path, serializeSafetensors({ step_noise: noise([10, 1, 8, 4, 4]) }));
    const r = await runCli([
      'generate',
      '--model',
      DIT,
      '--class',
      '1',
      '--steps',
      '5',
      '--noise',
      path,
      '-o',
      join(tmp, 'l.safetensors'),
    ]);
    expectFailure(r, 'SHAPE_MISMATCH', 5);
    expect(r.stderr).toContain('[5, 1, 8, 4, 4]');
    expect(await readdir(tmp)).not.toContain('l.safetensors');
  });

  it('a folder without config.json → MODEL_NOT_FOUND (6); an existing output → OUTPUT_EXISTS (3), untouched', async () => {
    const tmp = await tempDir();
    const r = await runCli(['generate', '--model', tmp, '--class', '1', '-o', join(tmp, 'l.safetensors')]);
    expectFailure(r, 'MODEL_NOT_FOUND', 6);
    const out = join(tmp, 'keep.safetensors');
    await writeFile(out, 'keep me');
    expectFailure(await runCli(base(out)), 'OUTPUT_EXISTS', 3);
    expect(await readFile(out, 'utf8')).toBe('keep me');
  });
});

describe('generate and Ctrl-C', () => {
  it('SIGINT between steps → exit 130 and no output file', async () => {
    const tmp = await tempDir();
    // 10,000 Heun steps: far more than can finish before the signal arrives
    const child = spawn(
      process.execPath,
      [
        BIN,
        'generate',
        '--model',
        UVIT,
        '--class',
        '1',
        '--sampler',
        'heun',
        '--steps',
        '10001',
        '-o',
        join(tmp, 'l.safetensors'),
      ],
      { cwd: REPO },
    );
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    await new Promise<void>((started) =>
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('step 2/')) started();
      }),
    );
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toMatch(/^error\[ABORTED\]/m);
    expect(await readdir(tmp)).toEqual([]);
  });
});
