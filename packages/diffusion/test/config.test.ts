import { describe, expect, it } from 'vitest';
import type { DcaeError, JsonValue } from '@dcae/core';
import type { SamplerName } from '../src/index.js';
import { DIFFUSION_PRESETS, parseDiffusionConfig } from '../src/index.js';
import { readJson } from './fixtures.js';

/** Upstream's dataclass fields of a released model, as the fixtures' meta.json lists them. */
interface UpstreamConfig {
  readonly name: 'DiT' | 'UViT';
  readonly input_size: number;
  readonly patch_size: number;
  readonly in_channels: number;
  readonly hidden_size: number;
  readonly depth: number;
  readonly num_heads: number;
  readonly mlp_ratio: number;
  readonly class_dropout_prob: number;
  readonly num_classes: number;
  readonly qkv_bias?: boolean;
  readonly eval_scheduler: string;
  readonly num_inference_steps: number;
  readonly train_scheduler: string;
}

const SAMPLER_OF: Record<string, SamplerName> = {
  GaussianDiffusion: 'ddpm',
  DPM_Solver: 'dpm-solver',
  ODE_dopri5: 'dopri5',
};

function rejection(json: unknown): DcaeError {
  try {
    parseDiffusionConfig(json as JsonValue, 'config.json');
  } catch (error) {
    return error as DcaeError;
  }
  throw new Error('expected the config to be rejected');
}

describe('released presets', () => {
  it("every preset matches upstream's parsed config (fixtures meta.json → real_models_same_family)", async () => {
    const upstream: Record<string, UpstreamConfig> = {};
    for (const fixture of ['tiny-dit', 'tiny-uvit']) {
      const meta = (await readJson(`${fixture}/meta.json`)) as {
        real_models_same_family: Record<string, UpstreamConfig>;
      };
      Object.assign(upstream, meta.real_models_same_family);
    }
    // The -trainbs1024 / -train2000k repos are longer runs of the same architectures.
    const base = (name: string) => name.replace(/-(trainbs1024|train2000k)$/, '');
    expect(new Set(Object.keys(DIFFUSION_PRESETS).map(base))).toEqual(new Set(Object.keys(upstream)));

    for (const [name, preset] of Object.entries(DIFFUSION_PRESETS)) {
      const expected = upstream[base(name)]!;
      const { backbone } = parseDiffusionConfig({ model_name: name });
      expect(backbone).toBe(preset.backbone);
      expect(backbone).toMatchObject({
        family: expected.name === 'DiT' ? 'dit' : 'uvit',
        inputSize: expected.input_size,
        patchSize: expected.patch_size,
        inChannels: expected.in_channels,
        hiddenSize: expected.hidden_size,
        depth: expected.depth,
        numHeads: expected.num_heads,
        mlpRatio: expected.mlp_ratio,
        classDropoutProb: expected.class_dropout_prob,
        numClasses: expected.num_classes,
        prediction: expected.train_scheduler === 'SiTSampler' ? 'velocity' : 'epsilon',
        keyPrefix: 'diffusion_model.',
        ...(expected.qkv_bias === undefined ? {} : { qkvBias: expected.qkv_bias }),
      });
      expect(preset.sampler).toBe(SAMPLER_OF[expected.eval_scheduler]);
      expect(preset.steps).toBe(preset.sampler === 'dopri5' ? undefined : expected.num_inference_steps);
      // Spec §4.1: f32c32-in latents are 32×16×16 (scaling 0.3189), f64c128-in 128×8×8 (0.2889).
      expect(preset.scalingFactor).toBe(expected.in_channels === 32 ? 0.3189 : 0.2889);
      expect(preset.autoencoder).toBe(
        expected.in_channels === 32 ? 'dc-ae-f32c32-in-1.0' : 'dc-ae-f64c128-in-1.0',
      );
    }
  });

  it('FID guidance scales follow docs/model-spec.md §4.6 (DiT 1.3, UViT 1.5, USiT-H 1.2, USiT-2B 1.15)', () => {
    const byLabel = Object.fromEntries(
      Object.values(DIFFUSION_PRESETS).map((p) => [p.label, p.guidanceScale]),
    );
    expect(byLabel).toEqual({
      'DiT-XL': 1.3,
      'UViT-S': 1.5,
      'UViT-H': 1.5,
      'UViT-2B': 1.5,
      'USiT-H': 1.2,
      'USiT-2B': 1.15,
    });
  });

  it('an unknown model_name is CONFIG_UNKNOWN_MODEL and lists the known ones', () => {
    const error = rejection({ model_name: 'dc-ae-f32c32-in-1.0-dit-xxl-in-512px' });
    expect(error.code).toBe('CONFIG_UNKNOWN_MODEL');
    expect(error.message).toContain('dc-ae-f32c32-in-1.0-dit-xl-in-512px');
  });

  it('model_name with extra fields is rejected (the released config.json has only model_name)', () => {
    const error = rejection({ model_name: 'dc-ae-f32c32-in-1.0-uvit-s-in-512px', depth: 3 });
    expect(error.code).toBe('CONFIG_VALUE');
    expect(error.message).toContain('depth');
  });
});

describe('explicit backbone configs (fixtures schema)', () => {
  it('reads tiny-dit and tiny-uvit config.json', async () => {
    const dit = parseDiffusionConfig((await readJson('tiny-dit/config.json')) as JsonValue);
    expect(dit.preset).toBeUndefined();
    expect(dit.backbone).toEqual({
      family: 'dit',
      hiddenSize: 64,
      depth: 2,
      numHeads: 4,
      patchSize: 1,
      inChannels: 8,
      inputSize: 4,
      numClasses: 1000,
      classDropoutProb: 0.1,
      mlpRatio: 4,
      prediction: 'epsilon',
      keyPrefix: 'diffusion_model.',
      learnSigma: true,
    });
    const uvit = parseDiffusionConfig((await readJson('tiny-uvit/config.json')) as JsonValue);
    expect(uvit.backbone).toMatchObject({ family: 'uvit', depth: 4, qkvBias: false, prediction: 'epsilon' });
  });

  it('reports every bad field at once, with the expected value', async () => {
    const json = {
      ...((await readJson('tiny-uvit/config.json')) as object),
      hidden_size: -64,
      num_heads: 2.5,
      hiden_size: 64,
      prediction: 'v',
    };
    const error = rejection(json);
    expect(error.code).toBe('CONFIG_VALUE');
    const fields = (error.detail!.problems as { field: string }[]).map((p) => p.field).sort();
    expect(fields).toEqual(['hidden_size', 'hiden_size', 'num_heads', 'prediction']);
    expect(error.message).toContain('did you mean "hidden_size"');
  });

  it.each([
    [{ family: 'sit' }, 'family'],
    [{ hidden_size: 66 }, 'hidden_size'], // not divisible by 4 heads
    [{ input_size: 5, patch_size: 2 }, 'input_size'],
    [{ mlp_time_embed: true }, 'mlp_time_embed'],
    [{ act_layer: 'silu' }, 'act_layer'],
    [{ class_dropout_prob: 1 }, 'class_dropout_prob'],
    [{ depth: 100000 }, 'depth'],
  ])('UViT %j is rejected naming %s', async (change, field) => {
    const error = rejection({ ...((await readJson('tiny-uvit/config.json')) as object), ...change });
    expect(error.code).toBe('CONFIG_VALUE');
    expect((error.detail!.problems as { field: string }[]).map((p) => p.field)).toContain(field);
  });

  it.each([
    [{ learn_sigma: false }, 'learn_sigma'],
    [{ post_norm: true }, 'post_norm'],
    [{ prediction: 'velocity' }, 'prediction'],
    [{ qkv_bias: true }, 'qkv_bias'], // a UViT field
  ])('DiT %j is rejected naming %s', async (change, field) => {
    const error = rejection({ ...((await readJson('tiny-dit/config.json')) as object), ...change });
    expect(error.code).toBe('CONFIG_VALUE');
    expect((error.detail!.problems as { field: string }[]).map((p) => p.field)).toContain(field);
  });

  it('a missing structural field is named', () => {
    const error = rejection({
      family: 'dit',
      hidden_size: 64,
      depth: 2,
      num_heads: 4,
      patch_size: 1,
      in_channels: 8,
    });
    expect(error.code).toBe('CONFIG_VALUE');
    expect(error.message).toContain('input_size');
    expect(error.message).toContain('required');
  });
});
