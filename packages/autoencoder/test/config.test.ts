import { readFileSync } from 'node:fs';
import { DcaeError, parseJsonConfig } from '@dcae/core';
import { describe, expect, it } from 'vitest';
import type { DcAeConfig } from '../src/index.js';
import {
  DC_AE_PRESET_NAMES,
  DC_AE_PRESETS,
  parseDcAeConfig,
  presetConfig,
  spatialCompressionRatio,
  validateDcAeConfig,
} from '../src/index.js';
import { fixturePath } from './helpers.js';

const fixtureJson = (name: string) =>
  parseJsonConfig(readFileSync(fixturePath(name, 'config.json'), 'utf8')) as Record<string, unknown>;

/** The error a call throws (fails the test when it does not throw). */
function thrown(fn: () => unknown): DcaeError {
  try {
    fn();
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a DcaeError');
}

describe('parseDcAeConfig', () => {
  it('reads the tiny-in fixture config into camelCase fields', () => {
    const config = parseDcAeConfig(fixtureJson('tiny-in-f32'));
    expect(config).toMatchObject({
      inChannels: 3,
      latentChannels: 8,
      attentionHeadDim: 16,
      scalingFactor: 0.3189,
      encoder: { layersPerBlock: [0, 2, 2, 1, 1, 1], downsample: 'pixel_unshuffle', outShortcut: true },
      decoder: {
        upsample: 'pixel_shuffle',
        normTypes: ['batch_norm', 'batch_norm', 'batch_norm', 'rms_norm', 'rms_norm', 'rms_norm'],
        actFns: ['relu', 'relu', 'relu', 'silu', 'silu', 'silu'],
        convActFn: 'relu',
      },
    });
    expect(spatialCompressionRatio(config)).toBe(32);
  });

  it('normalises string-or-list fields and treats "Conv" as a strided conv (tiny-sana)', () => {
    const config = parseDcAeConfig(fixtureJson('tiny-sana-f32'));
    expect(config.encoder.downsample).toBe('conv');
    expect(config.decoder.upsample).toBe('interpolate');
    expect(config.decoder.normTypes).toEqual(Array(6).fill('rms_norm'));
    expect(config.decoder.actFns).toEqual(Array(6).fill('silu'));
    expect(config.encoder.qkvMultiscales).toEqual([[], [], [], [5], [5], [5]]);
  });

  it('takes the AutoencoderDC class defaults for missing fields and reads "swish" as SiLU', () => {
    const config = parseDcAeConfig({ _class_name: 'AutoencoderDC', decoder_act_fns: 'swish' });
    expect(config).toEqual(
      parseDcAeConfig({ decoder_act_fns: ['silu', 'silu', 'silu', 'silu', 'silu', 'silu'] }),
    );
    expect(config.scalingFactor).toBe(1);
    expect(config.encoder.blockTypes).toEqual(Array(6).fill('ResBlock'));
  });

  it('matches the sana preset when given the published sana-1.0 diffusers config', () => {
    const published = {
      _class_name: 'AutoencoderDC',
      _diffusers_version: '0.32.0.dev0',
      attention_head_dim: 32,
      decoder_act_fns: 'silu',
      decoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
      decoder_block_types: [
        'ResBlock',
        'ResBlock',
        'ResBlock',
        'EfficientViTBlock',
        'EfficientViTBlock',
        'EfficientViTBlock',
      ],
      decoder_layers_per_block: [3, 3, 3, 3, 3, 3],
      decoder_norm_types: 'rms_norm',
      decoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
      downsample_block_type: 'Conv',
      encoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
      encoder_block_types: [
        'ResBlock',
        'ResBlock',
        'ResBlock',
        'EfficientViTBlock',
        'EfficientViTBlock',
        'EfficientViTBlock',
      ],
      encoder_layers_per_block: [2, 2, 2, 3, 3, 3],
      encoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
      in_channels: 3,
      latent_channels: 32,
      scaling_factor: 0.41407,
      upsample_block_type: 'interpolate',
    };
    expect(parseDcAeConfig(published)).toEqual(DC_AE_PRESETS['dc-ae-f32c32-sana-1.0']);
  });

  it('lists every bad or unknown field in one CONFIG_VALUE error', () => {
    const error = thrown(() =>
      parseDcAeConfig({
        ...fixtureJson('tiny-in-f32'),
        latent_channels: -1,
        attention_head_dim: 'x',
        decoder_norm_types: 'layer_norm',
        decoder_act_fns: ['relu', 'relu', 'relu', 'silu', 'silu', 'tanh'],
        encoder_layers_per_block: [0, 2, 2, 1, 1, 1e9],
        scaling_factor: 0,
        latent_chanels: 8,
        _commit_hash: 'ignored',
      }),
    );
    expect(error.code).toBe('CONFIG_VALUE');
    for (const field of [
      'latent_channels',
      'attention_head_dim',
      'decoder_norm_types',
      'decoder_act_fns',
      'encoder_layers_per_block',
      'scaling_factor',
      'latent_chanels',
    ]) {
      expect(error.message).toContain(`"${field}"`);
    }
    expect(error.message).not.toContain('_commit_hash');
    expect((error.detail?.problems as unknown[]).length).toBe(7);
  });

  it('rejects a config of another diffusers class', () => {
    const error = thrown(() => parseDcAeConfig({ _class_name: 'AutoencoderKL' }));
    expect(error.code).toBe('CONFIG_VALUE');
    expect(error.message).toContain('"_class_name"');
  });

  it('requires one entry per stage in every per-stage list', () => {
    const error = thrown(() =>
      parseDcAeConfig({
        ...fixtureJson('tiny-sana-f32'),
        encoder_layers_per_block: [1, 1, 1, 1, 1],
        decoder_block_types: ['ResBlock'],
      }),
    );
    expect(error.message).toContain('"encoder_layers_per_block": expected a list of 6');
    expect(error.message).toContain('"decoder_block_types"');
  });

  it.each([
    [{ attention_head_dim: 24 }, 'not a multiple of attentionHeadDim 24'],
    [{ encoder_block_out_channels: [8, 16, 32, 32, 64, 48] }, '4 × 64 is not a multiple of 48'],
    [{ latent_channels: 48 }, 'not a multiple of latentChannels 48'],
    [{ encoder_layers_per_block: [1, 1, 0, 1, 1, 2] }, 'encoder stage 2 has 0 layers'],
    [
      { decoder_block_out_channels: [8, 16, 32, 32, 64], decoder_layers_per_block: [1, 1, 2, 1, 1] },
      'both need the same spatial compression',
    ],
  ])('rejects the cross-field inconsistency %j', (change, message) => {
    const json = fixtureJson('tiny-sana-f32');
    const error = thrown(() =>
      parseDcAeConfig({
        ...json,
        ...change,
        ...('decoder_block_out_channels' in change
          ? { decoder_block_types: 'ResBlock', decoder_qkv_multiscales: [[], [], [], [], []] }
          : {}),
      }),
    );
    expect(error.code).toBe('CONFIG_VALUE');
    expect(error.message).toContain(message);
  });

  it('checks caller-supplied configs with the same rules', () => {
    const base = DC_AE_PRESETS['dc-ae-f32c32-in-1.0'];
    const broken: DcAeConfig = { ...base, decoder: { ...base.decoder, normTypes: ['rms_norm'] } };
    expect(thrown(() => validateDcAeConfig(broken)).message).toContain('decoder.normTypes has 1 entries');
  });
});

describe('presets', () => {
  it('every preset passes validation', () => {
    for (const name of DC_AE_PRESET_NAMES)
      expect(() => validateDcAeConfig(DC_AE_PRESETS[name], { source: name })).not.toThrow();
  });

  it.each([
    ['dc-ae-f32c32-in-1.0', 32, 32, 0.3189],
    ['dc-ae-f64c128-mix-1.0', 64, 128, 0.4538],
    ['dc-ae-f128c512-in-1.0', 128, 512, 0.4883],
    ['dc-ae-f32c32-sana-1.1', 32, 32, 0.41407],
    ['dc-ae-f32c32-in-1.0-256px', 32, 32, undefined],
  ] as const)('%s: f%i c%i, scaling factor %s', (name, f, c, scaling) => {
    const config = presetConfig(name);
    expect(spatialCompressionRatio(config)).toBe(f);
    expect(config.latentChannels).toBe(c);
    expect(config.scalingFactor).toBe(scaling);
  });

  it('names the known models when a model_name is unknown', () => {
    const error = thrown(() => presetConfig('dc-ae-f32c64-in-1.0'));
    expect(error.code).toBe('CONFIG_UNKNOWN_MODEL');
    for (const name of DC_AE_PRESET_NAMES) expect(error.message).toContain(name);
  });
});
