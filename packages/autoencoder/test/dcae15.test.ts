import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseJsonConfig, parseSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  countParameters,
  DC_AE_PRESETS,
  dcAeCheckpointLayout,
  loadAutoencoder,
  memoryModelFiles,
  parseDcAeConfig,
} from '../src/index.js';
import type { Autoencoder, DcAeAutoencoder } from '../src/index.js';
import { fixturePath, fixtureTolerance, maxAbsDiff } from './helpers.js';

/** fixtures/family2/dcae15-tiny-f32: the DC-AE 1.5 layout with tiny widths, both key layouts, adaptive-channel outputs. */
const DIR = resolve(import.meta.dirname, '../../../fixtures/family2');
const TINY = resolve(DIR, 'dcae15-tiny-f32');
const read = (file: string): Uint8Array => readFileSync(resolve(TINY, file));
const tensors = (file: string): Map<string, HostTensor<'float32'>> => {
  const st = parseSafetensors(read(file), { name: file });
  return new Map([...st.header.tensors.keys()].map((k) => [k, st.tensor(k) as HostTensor<'float32'>]));
};
const released = JSON.parse(readFileSync(resolve(DIR, 'dcae15-released.json'), 'utf8')) as {
  released: Record<
    string,
    {
      autoencoder_dc_config: unknown;
      params_encoder: number;
      params_decoder: number;
      params_autoencoder_dc: number;
    }
  >;
};
const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

const input = tensors('input.safetensors');
const expected = tensors('expected.safetensors');
const config = parseDcAeConfig(parseJsonConfig(read('config.json')));

const expectClose = (actual: HostTensor<'float32'>, reference: HostTensor<'float32'>): void => {
  expect(actual.shape).toEqual(reference.shape);
  expect(maxAbsDiff(actual, reference)).toBeLessThanOrEqual(fixtureTolerance(reference));
};

describe('DC-AE 1.5 presets (dcae15-released.json: DC-Gen configs mapped to AutoencoderDC)', () => {
  it.each(['dc-ae-f32c128-1.5', 'dc-ae-f64c128-1.5'] as const)(
    '%s: the preset is the released architecture, with its parameter count',
    (name) => {
      const release = released.released[name]!;
      // f32c128-1.5 has no scaling factor (null in the file): compare the architecture with a placeholder.
      const json = { ...(release.autoencoder_dc_config as Record<string, unknown>) };
      json.scaling_factor ??= 1;
      const parsed = parseDcAeConfig(json);
      expect({ ...DC_AE_PRESETS[name], scalingFactor: parsed.scalingFactor }).toEqual(parsed);
      expect(countParameters(dcAeCheckpointLayout(DC_AE_PRESETS[name]))).toEqual({
        encoder: release.params_encoder,
        decoder: release.params_decoder,
        total: release.params_autoencoder_dc,
      });
    },
  );

  it('keeps the one published scaling factor (f64c128-1.5: 0.5935) and invents none for f32c128-1.5', () => {
    expect(DC_AE_PRESETS['dc-ae-f64c128-1.5'].scalingFactor).toBe(0.5935);
    expect(DC_AE_PRESETS['dc-ae-f32c128-1.5'].scalingFactor).toBeUndefined();
  });

  it('maps every DC-Gen key of the fixture through the one original → diffusers table', () => {
    const dcgen = parseSafetensors(read('dcgen_model.safetensors'));
    const layout = dcAeCheckpointLayout(config);
    expect(new Set(layout.params.map((p) => p.original))).toEqual(new Set(dcgen.header.tensors.keys()));
    const meta = JSON.parse(read('meta.json').toString()) as {
      key_map_diffusers_to_dcgen: Record<string, string>;
    };
    for (const p of layout.params) expect(meta.key_map_diffusers_to_dcgen[p.key]).toBe(p.original);
  });
});

describe.each([
  [
    'diffusers layout',
    () =>
      memoryModelFiles('dcae15-diffusers', {
        'config.json': read('config.json'),
        'diffusion_pytorch_model.safetensors': read('diffusion_pytorch_model.safetensors'),
      }),
    undefined,
  ],
  [
    'DC-Gen layout',
    () => memoryModelFiles('dcae15-dcgen', { 'model.safetensors': read('dcgen_model.safetensors') }),
    config,
  ],
] as const)('dcae15-tiny-f32, %s', (_layout, files, override) => {
  let ae: Autoencoder;
  beforeAll(async () => {
    ae = await loadAutoencoder(files(), { runtime, ...(override ? { config: override } : {}) });
  });
  afterAll(() => ae?.dispose());

  it('full channels: encode, decode and reconstruction match DC-Gen', async () => {
    expect(ae.adaptiveLatentChannels).toBe(true);
    const latent = await ae.encode(input.get('sample')!);
    expectClose(latent, expected.get('latent')!);
    expectClose(await ae.decode(input.get('latent')!), expected.get('decoded')!);
    expectClose(await ae.decode(latent), expected.get('reconstruction')!);
  });

  it.each([16, 8])('adaptive channels N = %i: encode, decode and reconstruction match DC-Gen', async (n) => {
    const latent = await ae.encode(input.get('sample')!, { latentChannels: n });
    expectClose(latent, expected.get(`latent_c${n}`)!);
    const partial = (await ae.encode(input.get('sample')!)).shape; // the full latent is unchanged
    expect(partial[1]).toBe(32);
    const z = input.get('latent')!;
    const [b, , h, w] = z.shape as [number, number, number, number];
    const first = new Float32Array(b * n * h * w);
    for (let i = 0; i < b; i++)
      first.set(z.data.subarray(i * 32 * h * w, (i * 32 + n) * h * w), i * n * h * w);
    expectClose(
      await ae.decode({ dtype: 'float32', shape: [b, n, h, w], data: first }),
      expected.get(`decoded_c${n}`)!,
    );
    expectClose(await ae.decode(latent), expected.get(`reconstruction_c${n}`)!);
  });
});

describe('adaptive channels: tiling, fp16 and refusals', () => {
  it('tiling and fp16 work with partial channels', async () => {
    const files = memoryModelFiles('dcae15', {
      'config.json': read('config.json'),
      'diffusion_pytorch_model.safetensors': read('diffusion_pytorch_model.safetensors'),
    });
    const ae = await loadAutoencoder(files, { runtime });
    const half = await loadAutoencoder(files, { runtime, dtype: 'fp16' });
    try {
      const sample = input.get('sample')!;
      const latent = await ae.encode(sample, { latentChannels: 16 });
      const tiling = { tileSize: 64, overlap: 32 };
      expect(ae.planRun('decode', [1, 32, 2, 3], { tiling }).tiles).toBeDefined();
      expect(ae.planRun('encode', [1, 3, 64, 96], { tiling }).tiles).toBeDefined();
      // Tiled, a partial latent decodes as its zero-padded full latent does, and a tiled N-channel
      // encode is the first N channels of the tiled full encode.
      const padded = new Float32Array(32 * 6);
      padded.set(latent.data);
      const full = { dtype: 'float32' as const, shape: [1, 32, 2, 3], data: padded };
      expect(maxAbsDiff(await ae.decode(latent, { tiling }), await ae.decode(full, { tiling }))).toBe(0);
      const tiledFull = await ae.encode(sample, { tiling });
      const tiledPartial = await ae.encode(sample, { latentChannels: 16, tiling });
      expect(tiledPartial.shape).toEqual([1, 16, 2, 3]);
      expect([...tiledPartial.data]).toEqual([...tiledFull.data.subarray(0, 16 * 6)]);
      const halfDecoded = await half.decode(latent);
      expect(maxAbsDiff(halfDecoded, expected.get('reconstruction_c16')!)).toBeLessThan(0.05);
      expect((await half.encode(sample, { latentChannels: 8 })).shape).toEqual([1, 8, 2, 3]);
    } finally {
      await Promise.all([ae.dispose(), half.dispose()]);
    }
  });

  it('refuses bad channel counts, and DC-AE 1.0 models with their averaging shortcuts', async () => {
    const files = memoryModelFiles('dcae15', {
      'config.json': read('config.json'),
      'diffusion_pytorch_model.safetensors': read('diffusion_pytorch_model.safetensors'),
    });
    const ae = await loadAutoencoder(files, { runtime, parts: ['encoder'] });
    const sana = (await loadAutoencoder(
      memoryModelFiles('tiny-sana', {
        'config.json': readFileSync(fixturePath('tiny-sana-f32', 'config.json')),
        'diffusion_pytorch_model.safetensors': readFileSync(
          fixturePath('tiny-sana-f32', 'diffusion_pytorch_model.safetensors'),
        ),
      }),
      { runtime },
    )) as DcAeAutoencoder;
    try {
      const sample = input.get('sample')!;
      for (const n of [0, 33, 2.5]) {
        await expect(ae.encode(sample, { latentChannels: n })).rejects.toMatchObject({
          code: 'INVALID_ARGUMENT',
        });
      }
      expect(sana.adaptiveLatentChannels).toBe(false);
      await expect(sana.encode(sample, { latentChannels: 4 })).rejects.toMatchObject({
        code: 'UNSUPPORTED',
        message: expect.stringContaining(
          'encoder-out and decoder-in averaging shortcuts mix the latent channels',
        ),
      });
      const partial = { dtype: 'float32' as const, shape: [1, 4, 2, 3], data: new Float32Array(24) };
      // Decoding a partial latent there is the plain shape error it always was.
      await expect(sana.decode(partial)).rejects.toMatchObject({ code: 'SHAPE_MISMATCH' });
    } finally {
      await Promise.all([ae.dispose(), sana.dispose()]);
    }
  });
});
