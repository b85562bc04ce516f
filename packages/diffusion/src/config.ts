import type { JsonValue } from '@dcae/core';
import { ConfigReader, DcaeError } from '@dcae/core';
import { DIFFUSION_PRESETS, isDiffusionPresetName } from './presets.js';
import type { DiffusionPreset } from './presets.js';
import type { BackboneConfig, DitConfig, Prediction, UvitConfig } from './backbone-config.js';

export type { BackboneConfig, DitConfig, Prediction, UvitConfig };

/** A checkpoint's config: the backbone, and the release preset when config.json named one. */
export interface DiffusionModelConfig {
  readonly backbone: BackboneConfig;
  readonly preset: DiffusionPreset | undefined;
}

/** Bounds checked before anything is allocated (docs/reliability.md §9 D4). */
const LIMITS = {
  hiddenSize: { min: 2, max: 16384 },
  depth: { min: 1, max: 256 },
  numHeads: { min: 1, max: 1024 },
  patchSize: { min: 1, max: 64 },
  inChannels: { min: 1, max: 4096 },
  inputSize: { min: 1, max: 1024 },
  numClasses: { min: 1, max: 1_000_000 },
} as const;

/**
 * Reads a diffusion checkpoint's config.json: either the released form `{"model_name": …}`, resolved
 * through {@link DIFFUSION_PRESETS}, or an explicit backbone in the fixtures' schema (upstream
 * `DiTConfig` / `UViTConfig` field names plus `family`, `prediction`, `key_prefix`). Every field is
 * checked; all problems are reported in one CONFIG_VALUE error.
 */
export function parseDiffusionConfig(json: JsonValue, source = 'config.json'): DiffusionModelConfig {
  const reader = new ConfigReader(json, source);
  if (reader.has('model_name')) {
    const name = reader.string('model_name');
    reader.finish();
    if (!isDiffusionPresetName(name)) {
      throw new DcaeError(
        'CONFIG_UNKNOWN_MODEL',
        `${source}: model_name ${JSON.stringify(name)} is not a released DC-AE diffusion model. Known: ${Object.keys(DIFFUSION_PRESETS).join(', ')}.`,
        { source, detail: { modelName: name } },
      );
    }
    const preset = DIFFUSION_PRESETS[name];
    return { backbone: preset.backbone, preset };
  }
  const backbone = readBackbone(reader);
  reader.finish();
  return { backbone, preset: undefined };
}

function readBackbone(r: ConfigReader): BackboneConfig {
  const family = r.string('family', { oneOf: ['dit', 'uvit'] as const });
  const common = {
    hiddenSize: r.int('hidden_size', LIMITS.hiddenSize),
    depth: r.int('depth', LIMITS.depth),
    numHeads: r.int('num_heads', LIMITS.numHeads),
    patchSize: r.int('patch_size', LIMITS.patchSize),
    inChannels: r.int('in_channels', LIMITS.inChannels),
    inputSize: r.int('input_size', LIMITS.inputSize),
    numClasses: r.int('num_classes', { ...LIMITS.numClasses, default: 1000 }),
    classDropoutProb: r.number('class_dropout_prob', { min: 0, max: 1, default: 0.1 }),
    mlpRatio: r.number('mlp_ratio', { min: 0.25, max: 16, default: 4 }),
    prediction: r.string('prediction', { oneOf: ['epsilon', 'velocity'] as const, default: 'epsilon' }),
    keyPrefix: r.string('key_prefix', { default: 'diffusion_model.' }),
  };
  if (common.hiddenSize % common.numHeads !== 0) {
    r.report('hidden_size', `${common.hiddenSize} is not divisible by num_heads ${common.numHeads}`);
  }
  if (common.inputSize % common.patchSize !== 0) {
    r.report('input_size', `${common.inputSize} is not divisible by patch_size ${common.patchSize}`);
  }
  if (common.classDropoutProb >= 1) r.report('class_dropout_prob', 'must be below 1');
  if (family === 'dit') {
    // Configurations no released model uses; refusing them is better than computing something else.
    if (!r.bool('learn_sigma', { default: true })) {
      r.report('learn_sigma', 'only learn_sigma = true (learned-range variance, as released) is supported');
    }
    if (r.bool('post_norm', { default: false })) r.report('post_norm', 'post_norm = true is not supported');
    if (common.prediction !== 'epsilon') r.report('prediction', 'DiT predicts epsilon');
    if (common.hiddenSize % 4 !== 0) r.report('hidden_size', 'DiT needs a multiple of 4 (2-D sin-cos table)');
    return { family, ...common, learnSigma: true };
  }
  const qkvBias = r.bool('qkv_bias', { default: false });
  if (r.bool('mlp_time_embed', { default: false })) {
    r.report('mlp_time_embed', 'mlp_time_embed = true is not supported (no released model uses it)');
  }
  r.string('act_layer', { oneOf: ['gelu'], default: 'gelu' });
  if (common.hiddenSize % 2 !== 0)
    r.report('hidden_size', 'UViT needs an even width (sinusoidal time token)');
  return { family, ...common, qkvBias };
}

/** Whether the label table has the null-class row, i.e. whether guidance is possible. */
export function hasNullClass(config: BackboneConfig): boolean {
  return config.classDropoutProb > 0;
}

/** Latent shape [C, h, w] the backbone works on. */
export function latentShape(config: BackboneConfig): [number, number, number] {
  return [config.inChannels, config.inputSize, config.inputSize];
}
