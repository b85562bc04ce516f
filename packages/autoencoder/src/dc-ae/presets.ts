import { DcaeError } from '@dcae/core';
import type {
  DcAeActivation,
  DcAeBlockType,
  DcAeConfig,
  DcAeDecoderConfig,
  DcAeEncoderConfig,
  DcAeNormType,
} from './config.js';

/**
 * Architectures of the released checkpoints, keyed by the `model_name` of their original-format
 * (efficientvit) `config.json`. Values: docs/model-spec.md §1.1 / §1.3 (efficientvit `dc_ae.py` config
 * strings, expressed in diffusers terms) and DC-Gen `dc_gen/aecore/models/dc_ae.py` for DC-AE-Lite.
 */
const R: DcAeBlockType = 'ResBlock';
const E: DcAeBlockType = 'EfficientViTBlock';

const repeat = <T>(value: T, count: number): T[] => Array<T>(count).fill(value);

/** in/mix family: f = 2^(n−1) with n = 6, 7 or 8 stages; stage 0 empty; BN+ReLU decoder ResBlocks. */
function inMix(stages: 6 | 7 | 8, latentChannels: number, scalingFactor: number | undefined): DcAeConfig {
  const widths = [128, 256, 512, 512, 1024, 1024, 2048, 2048].slice(0, stages);
  const evit = stages - 3;
  const common = {
    blockTypes: [R, R, R, ...repeat(E, evit)],
    blockOutChannels: widths,
    qkvMultiscales: repeat<number[]>([], stages),
  };
  return {
    inChannels: 3,
    latentChannels,
    attentionHeadDim: 32,
    encoder: {
      ...common,
      layersPerBlock: [0, 4, 8, ...repeat(2, evit)],
      downsample: 'pixel_unshuffle',
      outShortcut: true,
    },
    decoder: {
      ...common,
      layersPerBlock: [0, 5, 10, ...repeat(2, evit)],
      upsample: 'pixel_shuffle',
      normTypes: [...repeat<DcAeNormType>('batch_norm', 3), ...repeat<DcAeNormType>('rms_norm', evit)],
      actFns: [...repeat<DcAeActivation>('relu', 3), ...repeat<DcAeActivation>('silu', evit)],
      inShortcut: true,
      convActFn: 'relu',
    },
    scalingFactor,
  };
}

const SANA_WIDTHS = [128, 256, 512, 512, 1024, 1024];

const SANA_ENCODER: DcAeEncoderConfig = {
  blockTypes: [R, R, R, E, E, E],
  blockOutChannels: SANA_WIDTHS,
  layersPerBlock: [2, 2, 2, 3, 3, 3],
  qkvMultiscales: [[], [], [], [5], [5], [5]],
  downsample: 'conv',
  outShortcut: true,
};

const SANA_DECODER: DcAeDecoderConfig = {
  blockTypes: [R, R, R, E, E, E],
  blockOutChannels: SANA_WIDTHS,
  layersPerBlock: [3, 3, 3, 3, 3, 3],
  qkvMultiscales: [[], [], [], [5], [5], [5]],
  upsample: 'interpolate',
  normTypes: repeat<DcAeNormType>('rms_norm', 6),
  actFns: repeat<DcAeActivation>('silu', 6),
  inShortcut: true,
  convActFn: 'relu',
};

const SANA: DcAeConfig = {
  inChannels: 3,
  latentChannels: 32,
  attentionHeadDim: 32,
  encoder: SANA_ENCODER,
  decoder: SANA_DECODER,
  scalingFactor: 0.41407,
};

/**
 * DC-AE-Lite: the sana encoder with a ResBlock-only decoder (RMSNorm + SiLU, pixel-shuffle
 * upsampling, empty stage 0) whose output activation is SiLU. Its scaling factor is not in
 * docs/model-spec.md; 0.41407 is the value of DC-Gen's config string, and the shared sana encoder means
 * the same latent space (DC-AE-Lite is documented as a drop-in for sana-1.0 diffusion models).
 */
const LITE: DcAeConfig = {
  ...SANA,
  decoder: {
    blockTypes: repeat(R, 6),
    blockOutChannels: SANA_WIDTHS,
    layersPerBlock: [0, 3, 5, 4, 4, 4],
    qkvMultiscales: repeat<number[]>([], 6),
    upsample: 'pixel_shuffle',
    normTypes: repeat<DcAeNormType>('rms_norm', 6),
    actFns: repeat<DcAeActivation>('silu', 6),
    inShortcut: true,
    convActFn: 'silu',
  },
};

/**
 * DC-AE 1.5 (DC-Gen `dc_ae_f32_1_5` / `dc_ae_f64_1_5`): ResBlocks only, RMSNorm + SiLU everywhere,
 * pixel-unshuffle / pixel-shuffle resampling, latent 128, and no encoder-out / decoder-in
 * averaging shortcut: the output conv (`AdaptiveOutputConvLayer`) and input conv
 * (`AdaptiveInputConvLayer`) see the latent channels one by one, which is what lets a 1.5 model
 * encode and decode with only the first c′ channels (docs/dc-ae-1.5.md).
 */
function dcAe15(stages: 6 | 7, scalingFactor: number | undefined): DcAeConfig {
  const common = {
    blockTypes: repeat(R, stages),
    blockOutChannels: [128, 256, 512, 512, 1024, 1024, 1024].slice(0, stages),
    layersPerBlock: [0, 5, 10, 4, 4, 4, 4].slice(0, stages),
    qkvMultiscales: repeat<number[]>([], stages),
  };
  return {
    inChannels: 3,
    latentChannels: 128,
    attentionHeadDim: 32,
    encoder: { ...common, downsample: 'pixel_unshuffle', outShortcut: false },
    decoder: {
      ...common,
      upsample: 'pixel_shuffle',
      normTypes: repeat<DcAeNormType>('rms_norm', stages),
      actFns: repeat<DcAeActivation>('silu', stages),
      inShortcut: false,
      convActFn: 'silu',
    },
    scalingFactor,
  };
}

export const DC_AE_PRESETS = {
  'dc-ae-f32c32-in-1.0': inMix(6, 32, 0.3189),
  'dc-ae-f32c32-mix-1.0': inMix(6, 32, 0.4552),
  /** Listed in DC-Gen's registry with the in/mix f32 architecture; no scaling factor is published. */
  'dc-ae-f32c32-in-1.0-256px': inMix(6, 32, undefined),
  'dc-ae-f64c128-in-1.0': inMix(7, 128, 0.2889),
  'dc-ae-f64c128-mix-1.0': inMix(7, 128, 0.4538),
  'dc-ae-f128c512-in-1.0': inMix(8, 512, 0.4883),
  'dc-ae-f128c512-mix-1.0': inMix(8, 512, 0.362),
  'dc-ae-f32c32-sana-1.0': SANA,
  /** Same architecture and encoder as sana-1.0, improved decoder. */
  'dc-ae-f32c32-sana-1.1': SANA,
  'dc-ae-lite-f32c32': LITE,
  /** DC-Gen's registry name for the same checkpoint. */
  'dc-ae-lite-f32c32-sana-1.1': LITE,
  /** No scaling factor is published for f32c128-1.5 (DC-Gen's model zoo has none); none is invented. */
  'dc-ae-f32c128-1.5': dcAe15(6, undefined),
  /** 0.5935: DC-Gen `c2i_model_zoo.py`, the USiT-2B/3B ImageNet 512px models in this latent space. */
  'dc-ae-f64c128-1.5': dcAe15(7, 0.5935),
} as const satisfies Record<string, DcAeConfig>;

export type DcAePresetName = keyof typeof DC_AE_PRESETS;

export const DC_AE_PRESET_NAMES = Object.keys(DC_AE_PRESETS) as DcAePresetName[];

export function isDcAePresetName(name: unknown): name is DcAePresetName {
  return typeof name === 'string' && Object.hasOwn(DC_AE_PRESETS, name);
}

/** The preset for an original-format `model_name`; CONFIG_UNKNOWN_MODEL lists the known names. */
export function presetConfig(modelName: string, options: { source?: string } = {}): DcAeConfig {
  if (isDcAePresetName(modelName)) return DC_AE_PRESETS[modelName];
  throw new DcaeError(
    'CONFIG_UNKNOWN_MODEL',
    `${options.source ?? 'config.json'}: unknown DC-AE model_name ${JSON.stringify(modelName)}. ` +
      `Known: ${DC_AE_PRESET_NAMES.join(', ')}.`,
    {
      source: options.source,
      detail: { modelName, known: DC_AE_PRESET_NAMES },
      hint: {
        library: 'For another architecture pass { config } to loadAutoencoder.',
        cli: 'use a released model (`dcae models`), or a diffusers-format folder whose config.json spells out the architecture',
      },
    },
  );
}
