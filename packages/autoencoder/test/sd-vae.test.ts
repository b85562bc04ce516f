import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng, DcaeError, serializeSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import type { SdVaeConfig } from '../src/index.js';
import {
  countSdVaeMacs,
  countSdVaeParameters,
  memoryModelFiles,
  parseSdVaeConfig,
  SD15_VAE_CONFIG,
  sdVaeCheckpointLayout,
} from '../src/index.js';
import { loadAutoencoder } from '../src/node/index.js';
import type { ReferenceConfig } from './sd-vae-reference.js';
import { NaiveAutoencoderKL, perImage } from './sd-vae-reference.js';

const runtime = createNodeRuntime({ threads: 1 });
const folders: string[] = [];
afterAll(async () => {
  await runtime.dispose();
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

/** A diffusers config.json of a tiny AutoencoderKL, as diffusers ≥ 0.30 writes them (nulls included). */
function configJson(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    _class_name: 'AutoencoderKL',
    _diffusers_version: '0.31.0',
    act_fn: 'silu',
    block_out_channels: [8, 16],
    down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D'],
    up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D'],
    force_upcast: true,
    in_channels: 3,
    out_channels: 3,
    latent_channels: 4,
    latents_mean: null,
    latents_std: null,
    layers_per_block: 1,
    mid_block_add_attention: true,
    norm_num_groups: 4,
    sample_size: 16,
    scaling_factor: 0.18215,
    shift_factor: null,
    use_quant_conv: true,
    use_post_quant_conv: true,
    ...overrides,
  };
}

/** Random weights for every tensor of `config`: convs and linears ±1/√fan-in, norms around 1 and 0. */
function randomWeights(config: SdVaeConfig, seed: number): Map<string, HostTensor<'float32'>> {
  const rng = createRng(seed);
  const tensors = new Map<string, HostTensor<'float32'>>();
  const fans = new Map<string, number>();
  for (const p of sdVaeCheckpointLayout(config)) {
    const count = p.shape.reduce((a, b) => a * b, 1);
    const module = p.key.replace(/\.(weight|bias)$/, '');
    if (p.shape.length >= 2) fans.set(module, count / p.shape[0]!);
    const fan = fans.get(module);
    const isNorm = fan === undefined;
    const [lo, hi] = isNorm
      ? p.key.endsWith('.weight')
        ? [0.5, 1.5]
        : [-0.25, 0.25]
      : [-1 / Math.sqrt(fan), 1 / Math.sqrt(fan)];
    tensors.set(p.key, {
      dtype: 'float32',
      shape: p.shape,
      data: rng.fillUniform(new Float32Array(count), lo, hi),
    });
  }
  return tensors;
}

function writeModel(json: Record<string, unknown>, tensors: ReadonlyMap<string, HostTensor>): string {
  const folder = mkdtempSync(join(tmpdir(), 'dcae-sd-vae-'));
  folders.push(folder);
  writeFileSync(join(folder, 'config.json'), JSON.stringify(json));
  writeFileSync(join(folder, 'diffusion_pytorch_model.safetensors'), serializeSafetensors(tensors));
  return folder;
}

function referenceOf(
  config: SdVaeConfig,
  tensors: ReadonlyMap<string, HostTensor<'float32'>>,
): NaiveAutoencoderKL {
  const weights = new Map([...tensors].map(([key, t]) => [key, Float64Array.from(t.data)]));
  const reference: ReferenceConfig = {
    inChannels: config.inChannels,
    outChannels: config.outChannels,
    latentChannels: config.latentChannels,
    blockOutChannels: config.blockOutChannels,
    layersPerBlock: config.layersPerBlock,
    groups: config.normNumGroups,
    act: config.act === 'relu' ? 'relu' : 'silu',
    useQuantConv: config.useQuantConv,
    usePostQuantConv: config.usePostQuantConv,
    attention: config.midBlockAddAttention,
  };
  return new NaiveAutoencoderKL(reference, weights);
}

function expectClose(
  actual: HostTensor<'float32'>,
  expected: { shape: readonly number[]; data: Float64Array },
): void {
  expect(actual.shape).toEqual(expected.shape);
  let scale = 0;
  let diff = 0;
  for (let i = 0; i < expected.data.length; i++) {
    scale = Math.max(scale, Math.abs(expected.data[i]!));
    diff = Math.max(diff, Math.abs(actual.data[i]! - expected.data[i]!));
  }
  expect(scale).toBeGreaterThan(0.01); // a dead network would match anything
  expect(diff).toBeLessThanOrEqual(1e-4 * Math.max(1, scale));
}

/** Smooth images in [-1, 1] with some noise, [n, 3, h, w]. */
function images(n: number, h: number, w: number, seed: number): HostTensor<'float32'> {
  const rng = createRng(seed);
  const data = new Float32Array(n * 3 * h * w);
  for (let i = 0; i < data.length; i++) {
    const x = i % w;
    const y = Math.floor(i / w) % h;
    const c = Math.floor(i / (w * h)) % 3;
    data[i] = 0.7 * Math.sin(x / 3 + c) * Math.cos(y / 4) + 0.2 * (rng.uniform() - 0.5);
  }
  return { dtype: 'float32', shape: [n, 3, h, w], data };
}

const VARIANTS: readonly [string, Record<string, unknown>][] = [
  ['SD layout (quant convs, mid attention)', {}],
  [
    'no quant convs, no attention, ReLU, three stages, two layers',
    {
      block_out_channels: [8, 8, 16],
      down_block_types: Array(3).fill('DownEncoderBlock2D'),
      up_block_types: Array(3).fill('UpDecoderBlock2D'),
      layers_per_block: 2,
      act_fn: 'relu',
      use_quant_conv: false,
      use_post_quant_conv: false,
      mid_block_add_attention: false,
      latent_channels: 3,
      shift_factor: 0.25,
    },
  ],
];

describe.each(VARIANTS)('AutoencoderKL against a naive reference: %s', (_, overrides) => {
  const json = configJson(overrides);
  const config = parseSdVaeConfig(json as never);
  const tensors = randomWeights(config, 7);
  const folder = writeModel(json, tensors);
  const f = 2 ** (config.blockOutChannels.length - 1);
  const [height, width] = [16, 24];

  it('encodes to the posterior mean and decodes as diffusers does', async () => {
    const ae = await loadAutoencoder(folder, { runtime });
    try {
      expect(ae.architecture).toBe('sd-vae');
      expect(ae.spatialCompressionRatio).toBe(f);
      expect(ae.latentChannels).toBe(config.latentChannels);
      expect(ae.scalingFactor).toBe(0.18215);
      const x = images(2, height, width, 1);
      const latent = await ae.encode(x);
      const reference = referenceOf(config, tensors);
      expectClose(
        latent,
        perImage(x, (image) => reference.encode(image)),
      );

      const z = createRng(2).randn([2, config.latentChannels, height / f, width / f]);
      const decoded = await ae.decode(z);
      expectClose(
        decoded,
        perImage(z, (image) => reference.decode(image)),
      );
    } finally {
      await ae.dispose();
    }
  });

  it('counts the MACs the reference performs', () => {
    const reference = referenceOf(config, tensors);
    const image = { c: 3, h: height, w: width, data: new Float64Array(3 * height * width) };
    reference.encode(image);
    const encoder = reference.macs;
    reference.decode({
      c: config.latentChannels,
      h: height / f,
      w: width / f,
      data: new Float64Array(config.latentChannels * (height / f) * (width / f)),
    });
    expect(countSdVaeMacs(config, height, width)).toEqual({ encoder, decoder: reference.macs - encoder });
  });
});

describe('AutoencoderKL checkpoints', () => {
  const json = configJson();
  const config = parseSdVaeConfig(json as never);
  const tensors = randomWeights(config, 11);
  const bytes = (t: ReadonlyMap<string, HostTensor>) => ({
    'config.json': new TextEncoder().encode(JSON.stringify(json)),
    'diffusion_pytorch_model.safetensors': serializeSafetensors(t),
  });

  it('reads the pre-0.14 attention names (query, key, value, proj_attn) like the current ones', async () => {
    const renamed = new Map<string, HostTensor>();
    const old = { to_q: 'query', to_k: 'key', to_v: 'value', 'to_out.0': 'proj_attn' } as Record<
      string,
      string
    >;
    for (const [key, t] of tensors)
      renamed.set(
        key.replace(
          /attentions\.0\.(to_q|to_k|to_v|to_out\.0)\./,
          (_, name: string) => `attentions.0.${old[name]}.`,
        ),
        t,
      );
    expect([...renamed.keys()]).toContain('decoder.mid_block.attentions.0.proj_attn.weight');
    const current = await loadAutoencoder(memoryModelFiles('current', bytes(tensors)), { runtime });
    const legacy = await loadAutoencoder(memoryModelFiles('legacy', bytes(renamed)), { runtime });
    try {
      const z = createRng(5).randn([1, 4, 4, 4]);
      expect((await legacy.decode(z)).data).toEqual((await current.decode(z)).data);
    } finally {
      await Promise.all([current.dispose(), legacy.dispose()]);
    }
  });

  it('lists every missing, unused, mis-shaped and non-float tensor in one WEIGHTS_MISMATCH', async () => {
    const edited = new Map<string, HostTensor>(tensors);
    edited.delete('encoder.mid_block.attentions.0.to_k.bias');
    edited.delete('post_quant_conv.weight');
    edited.set('decoder.extra.weight', { dtype: 'float32', shape: [2], data: new Float32Array(2) });
    edited.set('encoder.conv_in.weight', {
      dtype: 'float32',
      shape: [8, 3, 1, 1],
      data: new Float32Array(24),
    });
    edited.set('decoder.conv_out.bias', { dtype: 'int32', shape: [3], data: new Int32Array(3) });
    const error = await loadAutoencoder(memoryModelFiles('bad', bytes(edited)), { runtime }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(DcaeError.is(error, 'WEIGHTS_MISMATCH')).toBe(true);
    const { message, detail } = error as DcaeError;
    expect(message).toContain('2 missing, 1 unused, 1 shape, 1 dtype');
    expect(message).toContain('missing encoder.mid_block.attentions.0.to_k.bias expected [16]');
    expect(message).toContain('missing post_quant_conv.weight expected [4, 4, 1, 1]');
    expect(message).toContain('unused  decoder.extra.weight [2]');
    expect(message).toContain('shape   encoder.conv_in.weight expected [8, 3, 3, 3], found [8, 3, 1, 1]');
    expect(message).toContain('dtype   decoder.conv_out.bias is I32');
    expect(detail?.problems).toHaveLength(5);
  });

  it('skips the tensors of a part that is not loaded, and refuses to run it', async () => {
    const decoderOnly = new Map(
      [...tensors].filter(([key]) => !key.startsWith('encoder.') && !key.startsWith('quant_conv.')),
    );
    const ae = await loadAutoencoder(memoryModelFiles('decoder-only', bytes(decoderOnly)), {
      runtime,
      parts: ['decoder'],
    });
    try {
      expect(ae.parts).toEqual(['decoder']);
      await expect(ae.encode(images(1, 8, 8, 3))).rejects.toMatchObject({ code: 'UNSUPPORTED' });
      expect((await ae.decode(createRng(1).randn([1, 4, 2, 2]))).shape).toEqual([1, 3, 4, 4]);
    } finally {
      await ae.dispose();
    }
  });

  it('refuses float16, tiling and sizes that are not multiples of f', async () => {
    const files = memoryModelFiles('tiny', bytes(tensors));
    await expect(loadAutoencoder(files, { runtime, dtype: 'fp16' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
    const ae = await loadAutoencoder(files, { runtime });
    try {
      await expect(ae.decode(createRng(1).randn([1, 4, 2, 2]), { tiling: 'always' })).rejects.toMatchObject({
        code: 'UNSUPPORTED',
      });
      await expect(ae.encode(images(1, 9, 8, 3))).rejects.toMatchObject({ code: 'INPUT_SIZE' });
    } finally {
      await ae.dispose();
    }
  });

  it('slices batches as asked, with the same result', async () => {
    const ae = await loadAutoencoder(memoryModelFiles('tiny', bytes(tensors)), { runtime });
    try {
      const z = createRng(6).randn([3, 4, 2, 3]);
      expect(ae.planRun('decode', z.shape, { batchSize: 2 })).toMatchObject({
        height: 4,
        width: 6,
        tiles: undefined,
        batchSize: 2,
        runs: 2,
      });
      const runs: number[] = [];
      const sliced = await ae.decode(z, {
        batchSize: 2,
        onProgress: (e) => e.stage === 'decode' && runs.push(e.done),
      });
      expect(runs).toEqual([0, 1, 2]);
      const whole = await ae.decode(z);
      expect(sliced.shape).toEqual([3, 3, 4, 6]);
      for (let i = 0; i < whole.data.length; i++) expect(sliced.data[i]).toBeCloseTo(whole.data[i]!, 5);
    } finally {
      await ae.dispose();
    }
  });

  it('exports standalone ONNX files that decode like the model', async () => {
    const ae = await loadAutoencoder(memoryModelFiles('tiny', bytes(tensors)), { runtime });
    try {
      const files = await ae.onnxFiles();
      expect(files.map((f) => f.name)).toEqual(['encoder.onnx', 'decoder.onnx']);
      const chunks: Uint8Array[] = [];
      for await (const chunk of files[1]!.chunks()) chunks.push(chunk);
      const session = await runtime.createSession(Buffer.concat(chunks));
      const z = createRng(4).randn([1, 4, 3, 5]);
      const standalone = (await session.run({ latent_sample: z })).sample as HostTensor<'float32'>;
      expect(standalone.data).toEqual((await ae.decode(z)).data);
      await session.dispose();
    } finally {
      await ae.dispose();
    }
  });
});

describe('AutoencoderKL configs', () => {
  /** stabilityai/sd-vae-ft-mse config.json (the SD 1.x VAE). */
  const SD15 = {
    _class_name: 'AutoencoderKL',
    _diffusers_version: '0.4.2',
    act_fn: 'silu',
    block_out_channels: [128, 256, 512, 512],
    down_block_types: Array(4).fill('DownEncoderBlock2D'),
    in_channels: 3,
    latent_channels: 4,
    layers_per_block: 2,
    norm_num_groups: 32,
    out_channels: 3,
    sample_size: 256,
    up_block_types: Array(4).fill('UpDecoderBlock2D'),
  };

  it('parses the SD 1.x config with the class defaults (scaling factor 0.18215)', () => {
    expect(parseSdVaeConfig(SD15)).toEqual({ ...SD15_VAE_CONFIG, sampleSize: 256 });
  });

  it('has the published SD 1.x VAE parameter count (83,653,863)', () => {
    expect(countSdVaeParameters(SD15_VAE_CONFIG).total).toBe(83_653_863);
  });

  it('reads SDXL and FLUX fields', () => {
    const sdxl = parseSdVaeConfig({
      ...SD15,
      scaling_factor: 0.13025,
      force_upcast: true,
      sample_size: 1024,
    });
    expect(sdxl.scalingFactor).toBe(0.13025);
    const flux = parseSdVaeConfig({
      ...SD15,
      latent_channels: 16,
      scaling_factor: 0.3611,
      shift_factor: 0.1159,
      use_quant_conv: false,
      use_post_quant_conv: false,
      latents_mean: null,
      mid_block_add_attention: true,
    });
    expect(flux).toMatchObject({
      latentChannels: 16,
      shiftFactor: 0.1159,
      useQuantConv: false,
      latentsMean: undefined,
    });
  });

  it('lists every bad field in one CONFIG_VALUE error', () => {
    const error = (() => {
      try {
        parseSdVaeConfig({ ...SD15, up_block_types: ['UpDecoderBlock2D'], act_fn: 'tanh', norm_groups: 32 });
      } catch (e) {
        return e as DcaeError;
      }
    })();
    expect(error?.code).toBe('CONFIG_VALUE');
    expect(error?.message).toContain('"up_block_types"');
    expect(error?.message).toContain('"act_fn"');
    expect(error?.message).toContain('"norm_groups": unknown field');
  });

  it('refuses widths that are not whole GroupNorm groups', () => {
    expect(() => parseSdVaeConfig({ ...SD15, block_out_channels: [128, 256, 500, 512] })).toThrow(
      /stage 2 width 500 is not a multiple of normNumGroups 32/,
    );
  });
});
