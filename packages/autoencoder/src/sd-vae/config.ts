import { ConfigReader, DcaeError } from '@dcae/core';
import type { JsonValue } from '@dcae/core';
import type { Activation } from '../base/layers.js';

/**
 * The Stable Diffusion VAE (diffusers `AutoencoderKL`, f = 8 for four stages) as a typed, readonly
 * value, parsed from its config.json. Only the `DownEncoderBlock2D` / `UpDecoderBlock2D` variant
 * (SD 1.x/2.x, SDXL, SD3, FLUX VAEs) is supported.
 */
export interface SdVaeConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly latentChannels: number;
  /** Widths of the stages, full resolution first; the decoder runs them in reverse. */
  readonly blockOutChannels: readonly number[];
  /** ResNets per encoder stage; decoder stages have one more. */
  readonly layersPerBlock: number;
  /** GroupNorm groups of every norm (ε = 1e-6). */
  readonly normNumGroups: number;
  /** Activation of the ResNet blocks (the norm_out activations are always SiLU). */
  readonly act: Activation;
  /** 1×1 conv on the encoder's moments / on the latent before the decoder. */
  readonly useQuantConv: boolean;
  readonly usePostQuantConv: boolean;
  /** Self-attention between the two mid-block ResNets of encoder and decoder. */
  readonly midBlockAddAttention: boolean;
  /** The training resolution (informational). */
  readonly sampleSize: number;
  /** Diffusion models see `(latent − shiftFactor) · scalingFactor`. Never applied by encode/decode. */
  readonly scalingFactor: number;
  readonly shiftFactor: number | undefined;
  /** diffusers runs this VAE in float32 even in float16 pipelines (the SD 1.x VAE overflows float16). */
  readonly forceUpcast: boolean;
  /** Per-channel latent statistics some configs carry (informational). */
  readonly latentsMean: readonly number[] | undefined;
  readonly latentsStd: readonly number[] | undefined;
}

export const SD_VAE_CLASS_NAME = 'AutoencoderKL';

/** Upper bounds checked before anything is allocated (docs/reliability.md §9 D4). */
export const SD_VAE_CONFIG_LIMITS = {
  stages: 12,
  channels: 16384,
  inChannels: 64,
  layersPerBlock: 256,
} as const;

/** Class defaults of diffusers `AutoencoderKL.__init__`. */
const DEFAULTS = {
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  block_out_channels: [64],
  layers_per_block: 1,
  norm_num_groups: 32,
  act_fn: 'silu',
  sample_size: 32,
  scaling_factor: 0.18215,
  force_upcast: true,
  use_quant_conv: true,
  use_post_quant_conv: true,
  mid_block_add_attention: true,
} as const;

const ACTIVATIONS = ['silu', 'swish', 'relu', 'gelu', 'mish'] as const;

/** The SD 1.x VAE (`stabilityai/sd-vae-ft-mse`, `…/stable-diffusion-v1-5/vae`): 83.7 M parameters. */
export const SD15_VAE_CONFIG: SdVaeConfig = {
  inChannels: 3,
  outChannels: 3,
  latentChannels: 4,
  blockOutChannels: [128, 256, 512, 512],
  layersPerBlock: 2,
  normNumGroups: 32,
  act: 'silu',
  useQuantConv: true,
  usePostQuantConv: true,
  midBlockAddAttention: true,
  sampleSize: 512,
  scalingFactor: 0.18215,
  shiftFactor: undefined,
  forceUpcast: true,
  latentsMean: undefined,
  latentsStd: undefined,
};

/** Spatial compression f: one ×2 per stage transition (8 for the usual four stages). */
export function sdVaeCompressionRatio(config: SdVaeConfig): number {
  return 2 ** (config.blockOutChannels.length - 1);
}

/** Whether a parsed config.json is a diffusers `AutoencoderKL` config. */
export function isSdVaeConfigJson(json: JsonValue | undefined): boolean {
  return (
    typeof json === 'object' &&
    json !== null &&
    !Array.isArray(json) &&
    json._class_name === SD_VAE_CLASS_NAME
  );
}

/**
 * Parses a diffusers `AutoencoderKL` config.json value. Missing fields take the class defaults;
 * `null` stands for an absent optional (`shift_factor`, `latents_mean`, `latents_std`); every bad
 * or unknown field is listed in one CONFIG_VALUE error, then `validateSdVaeConfig` runs.
 */
export function parseSdVaeConfig(json: JsonValue, options: { source?: string } = {}): SdVaeConfig {
  const source = options.source ?? 'config.json';
  const D = DEFAULTS;
  const L = SD_VAE_CONFIG_LIMITS;
  const r = new ConfigReader(json, source);
  const fields = json as Readonly<Record<string, JsonValue>>;
  if (r.has('_class_name')) r.string('_class_name', { oneOf: [SD_VAE_CLASS_NAME] });
  const widths = r.intList('block_out_channels', {
    min: 1,
    max: L.channels,
    default: D.block_out_channels,
  });
  const n = widths.length;
  r.stringOrList('down_block_types', {
    oneOf: ['DownEncoderBlock2D'],
    length: n,
    default: 'DownEncoderBlock2D',
  });
  r.stringOrList('up_block_types', { oneOf: ['UpDecoderBlock2D'], length: n, default: 'UpDecoderBlock2D' });
  const nullable = ['shift_factor', 'latents_mean', 'latents_std'].filter((f) => fields[f] === null);
  const present = (field: string): boolean => r.has(field) && !nullable.includes(field);
  const latentChannels = r.int('latent_channels', { min: 1, max: L.channels, default: D.latent_channels });
  const statistics = (field: string): number[] | undefined => {
    if (!present(field)) return undefined;
    const value = fields[field];
    const ok =
      Array.isArray(value) &&
      value.length === latentChannels &&
      value.every((v) => typeof v === 'number' && Number.isFinite(v));
    if (!ok) r.report(field, `expected null or a list of ${latentChannels} finite numbers`);
    return ok ? (value as number[]) : undefined;
  };
  const act = r.string('act_fn', { oneOf: ACTIVATIONS, default: D.act_fn });
  const config: SdVaeConfig = {
    inChannels: r.int('in_channels', { min: 1, max: L.inChannels, default: D.in_channels }),
    outChannels: r.int('out_channels', { min: 1, max: L.inChannels, default: D.out_channels }),
    latentChannels,
    blockOutChannels: widths,
    layersPerBlock: r.int('layers_per_block', { min: 1, max: L.layersPerBlock, default: D.layers_per_block }),
    normNumGroups: r.int('norm_num_groups', { min: 1, max: L.channels, default: D.norm_num_groups }),
    act: act === 'swish' ? 'silu' : act,
    useQuantConv: r.bool('use_quant_conv', { default: D.use_quant_conv }),
    usePostQuantConv: r.bool('use_post_quant_conv', { default: D.use_post_quant_conv }),
    midBlockAddAttention: r.bool('mid_block_add_attention', { default: D.mid_block_add_attention }),
    sampleSize: r.int('sample_size', { min: 1, max: 1 << 20, default: D.sample_size }),
    scalingFactor: r.number('scaling_factor', { min: Number.MIN_VALUE, default: D.scaling_factor }),
    shiftFactor: present('shift_factor') ? r.number('shift_factor') : undefined,
    forceUpcast: r.bool('force_upcast', { default: D.force_upcast }),
    latentsMean: statistics('latents_mean'),
    latentsStd: statistics('latents_std'),
  };
  r.finish({ ignorePrefix: '_', allowUnknown: ['latents_mean', 'latents_std', ...nullable] });
  validateSdVaeConfig(config, { source });
  return config;
}

/**
 * Cross-field checks: 1 to 12 stages, every width and the latent width in range, and every width a
 * multiple of `normNumGroups` (GroupNorm splits channels into whole groups). One CONFIG_VALUE error.
 */
export function validateSdVaeConfig(config: SdVaeConfig, options: { source?: string } = {}): void {
  const source = options.source ?? 'config';
  const L = SD_VAE_CONFIG_LIMITS;
  const issues: string[] = [];
  const n = config.blockOutChannels.length;
  if (n < 1 || n > L.stages) issues.push(`blockOutChannels needs 1 to ${L.stages} stages, found ${n}.`);
  for (const [s, w] of config.blockOutChannels.entries()) {
    if (!Number.isSafeInteger(w) || w < 1 || w > L.channels)
      issues.push(`stage ${s} width must be an integer in [1, ${L.channels}], found ${w}.`);
    else if (w % config.normNumGroups !== 0)
      issues.push(`stage ${s} width ${w} is not a multiple of normNumGroups ${config.normNumGroups}.`);
  }
  if (!(config.scalingFactor > 0))
    issues.push(`scalingFactor must be positive, found ${config.scalingFactor}.`);
  if (issues.length === 0) return;
  const message =
    issues.length === 1
      ? `${source}: invalid AutoencoderKL config: ${issues[0]!}`
      : `${source}: ${issues.length} problems in the AutoencoderKL config:\n${issues.map((i) => `  - ${i}`).join('\n')}`;
  throw new DcaeError('CONFIG_VALUE', message, { source, detail: { issues } });
}
