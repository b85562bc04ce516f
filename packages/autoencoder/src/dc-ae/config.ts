import type { Activation } from '../base/layers.js';
import { ConfigReader, DcaeError } from '@dcae/core';
import type { JsonValue } from '@dcae/core';

/**
 * The DC-AE architecture as a typed, readonly, camelCase value. Parsed once from a diffusers
 * `AutoencoderDC` config.json (`parseDcAeConfig`) or taken from a preset (`presets.ts`); the graph
 * builders read nothing else. Field meanings: docs/model-spec.md §3.2.
 */
export type DcAeBlockType = 'ResBlock' | 'EfficientViTBlock';
export type DcAeNormType = 'rms_norm' | 'batch_norm';
/** diffusers `get_activation` names; `"swish"` is read as `'silu'`. */
export type DcAeActivation = Activation;

/** Per-stage lists, one entry per stage (stage 0 = full resolution). */
export interface DcAeStagesConfig {
  readonly blockTypes: readonly DcAeBlockType[];
  readonly blockOutChannels: readonly number[];
  readonly layersPerBlock: readonly number[];
  /** Kernel sizes of LiteMLA's multi-scale qkv branches (sana: `[5]`); used by EfficientViT stages only. */
  readonly qkvMultiscales: readonly (readonly number[])[];
}

export interface DcAeEncoderConfig extends DcAeStagesConfig {
  /**
   * `'pixel_unshuffle'`: conv 3×3 then pixel-unshuffle (config value exactly `"pixel_unshuffle"`);
   * `'conv'`: conv 3×3 stride 2 (any other value; the published sana config says `"Conv"`).
   */
  readonly downsample: 'pixel_unshuffle' | 'conv';
  /** Channel-averaging shortcut around `conv_out`. */
  readonly outShortcut: boolean;
}

export interface DcAeDecoderConfig extends DcAeStagesConfig {
  /**
   * `'interpolate'`: nearest ×2 then conv 3×3 (config value exactly `"interpolate"`);
   * `'pixel_shuffle'`: conv 3×3 then pixel-shuffle (any other value).
   */
  readonly upsample: 'pixel_shuffle' | 'interpolate';
  /** Norm of each stage's ResBlocks and of its attention output (`attn.norm_out`). */
  readonly normTypes: readonly DcAeNormType[];
  /** Activation of each stage's ResBlocks. */
  readonly actFns: readonly DcAeActivation[];
  /** Channel-repeat shortcut around `conv_in`. */
  readonly inShortcut: boolean;
  /** Activation between `norm_out` and `conv_out`. */
  readonly convActFn: DcAeActivation;
}

export interface DcAeConfig {
  readonly inChannels: number;
  readonly latentChannels: number;
  /** Channels per attention head (d); heads per EfficientViT block = width / d. */
  readonly attentionHeadDim: number;
  readonly encoder: DcAeEncoderConfig;
  readonly decoder: DcAeDecoderConfig;
  /**
   * Diffusion models see `latent * scalingFactor`; divide by it before decoding. Never applied by
   * encode/decode. `undefined` where the checkpoint does not document one.
   */
  readonly scalingFactor: number | undefined;
}

/** Upper bounds checked before anything is allocated (docs/reliability.md §9 D4). */
export const DC_AE_CONFIG_LIMITS = {
  stages: 12,
  channels: 16384,
  inChannels: 64,
  layersPerStage: 256,
  attentionHeadDim: 4096,
  multiscaleBranches: 4,
  multiscaleKernel: 31,
} as const;

/** Spatial compression f: H/f × W/f latents (one ×2 per stage transition). */
export function spatialCompressionRatio(config: DcAeConfig): number {
  return 2 ** (config.encoder.blockOutChannels.length - 1);
}

/** Every field of diffusers `AutoencoderDC.__init__`, with its class default. */
const DIFFUSERS_DEFAULTS = {
  in_channels: 3,
  latent_channels: 32,
  attention_head_dim: 32,
  encoder_block_types: 'ResBlock',
  decoder_block_types: 'ResBlock',
  encoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
  decoder_block_out_channels: [128, 256, 512, 512, 1024, 1024],
  encoder_layers_per_block: [2, 2, 2, 3, 3, 3],
  decoder_layers_per_block: [3, 3, 3, 3, 3, 3],
  encoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  decoder_qkv_multiscales: [[], [], [], [5], [5], [5]],
  upsample_block_type: 'pixel_shuffle',
  downsample_block_type: 'pixel_unshuffle',
  decoder_norm_types: 'rms_norm',
  decoder_act_fns: 'silu',
  encoder_out_shortcut: true,
  decoder_in_shortcut: true,
  decoder_conv_act_fn: 'relu',
  scaling_factor: 1.0,
} as const;

const BLOCK_TYPES = ['ResBlock', 'EfficientViTBlock'] as const;
const NORM_TYPES = ['rms_norm', 'batch_norm'] as const;
/** diffusers `get_activation` names; `swish` is SiLU. */
const ACTIVATIONS = ['relu', 'silu', 'swish', 'gelu', 'mish'] as const;

const activation = (name: (typeof ACTIVATIONS)[number]): DcAeActivation => (name === 'swish' ? 'silu' : name);

/**
 * Parses a diffusers `AutoencoderDC` config.json value (e.g. from `parseJsonConfig`). Missing fields
 * take the class defaults, as in diffusers; `_`-prefixed fields are metadata, except that
 * `_class_name` must be `"AutoencoderDC"` when present; any other unknown field is an error.
 * Every bad field is listed in one CONFIG_VALUE error, then the cross-field checks of
 * `validateDcAeConfig` run.
 */
export function parseDcAeConfig(json: unknown, options: { source?: string } = {}): DcAeConfig {
  const source = options.source ?? 'config.json';
  const D = DIFFUSERS_DEFAULTS;
  const L = DC_AE_CONFIG_LIMITS;
  const r = new ConfigReader(json as JsonValue, source);
  if (r.has('_class_name')) r.string('_class_name', { oneOf: ['AutoencoderDC'] });
  const channels = { min: 1, max: L.channels };
  const depths = { min: 0, max: L.layersPerStage };
  const kernels = { min: 1, max: L.multiscaleKernel };

  const encoderWidths = r.intList('encoder_block_out_channels', {
    ...channels,
    default: D.encoder_block_out_channels,
  });
  const decoderWidths = r.intList('decoder_block_out_channels', {
    ...channels,
    default: D.decoder_block_out_channels,
  });
  const n = encoderWidths.length;
  const m = decoderWidths.length;
  const config: DcAeConfig = {
    inChannels: r.int('in_channels', { min: 1, max: L.inChannels, default: D.in_channels }),
    latentChannels: r.int('latent_channels', { ...channels, default: D.latent_channels }),
    attentionHeadDim: r.int('attention_head_dim', {
      min: 1,
      max: L.attentionHeadDim,
      default: D.attention_head_dim,
    }),
    encoder: {
      blockTypes: r.stringOrList('encoder_block_types', {
        oneOf: BLOCK_TYPES,
        length: n,
        default: D.encoder_block_types,
      }),
      blockOutChannels: encoderWidths,
      layersPerBlock: r.intList('encoder_layers_per_block', {
        ...depths,
        length: n,
        default: D.encoder_layers_per_block,
      }),
      qkvMultiscales: r.intLists('encoder_qkv_multiscales', {
        ...kernels,
        length: n,
        default: D.encoder_qkv_multiscales,
      }),
      downsample:
        r.string('downsample_block_type', { default: D.downsample_block_type }) === 'pixel_unshuffle'
          ? 'pixel_unshuffle'
          : 'conv',
      outShortcut: r.bool('encoder_out_shortcut', { default: D.encoder_out_shortcut }),
    },
    decoder: {
      blockTypes: r.stringOrList('decoder_block_types', {
        oneOf: BLOCK_TYPES,
        length: m,
        default: D.decoder_block_types,
      }),
      blockOutChannels: decoderWidths,
      layersPerBlock: r.intList('decoder_layers_per_block', {
        ...depths,
        length: m,
        default: D.decoder_layers_per_block,
      }),
      qkvMultiscales: r.intLists('decoder_qkv_multiscales', {
        ...kernels,
        length: m,
        default: D.decoder_qkv_multiscales,
      }),
      upsample:
        r.string('upsample_block_type', { default: D.upsample_block_type }) === 'interpolate'
          ? 'interpolate'
          : 'pixel_shuffle',
      normTypes: r.stringOrList('decoder_norm_types', {
        oneOf: NORM_TYPES,
        length: m,
        default: D.decoder_norm_types,
      }),
      actFns: r
        .stringOrList('decoder_act_fns', { oneOf: ACTIVATIONS, length: m, default: D.decoder_act_fns })
        .map(activation),
      inShortcut: r.bool('decoder_in_shortcut', { default: D.decoder_in_shortcut }),
      convActFn: activation(
        r.string('decoder_conv_act_fn', { oneOf: ACTIVATIONS, default: D.decoder_conv_act_fn }),
      ),
    },
    scalingFactor: r.number('scaling_factor', { min: Number.MIN_VALUE, default: D.scaling_factor }),
  };
  r.finish({ ignorePrefix: '_' });
  validateDcAeConfig(config, { source });
  return config;
}

/**
 * Checks a config before anything is built from it: value ranges, one entry per stage, and the
 * cross-field rules (EfficientViT widths divisible by the head dim, whole shortcut groups, only the
 * first or last stage empty). Used for parsed configs, presets and caller-supplied configs alike;
 * throws one CONFIG_VALUE error listing every problem.
 */
export function validateDcAeConfig(config: DcAeConfig, options: { source?: string } = {}): void {
  const source = options.source ?? 'config';
  const issues: string[] = [];
  const L = DC_AE_CONFIG_LIMITS;
  const check = (ok: boolean, message: string): void => {
    if (!ok) issues.push(message);
  };

  check(isInt(config.inChannels, 1, L.inChannels), `inChannels must be an integer in [1, ${L.inChannels}].`);
  check(
    isInt(config.latentChannels, 1, L.channels),
    `latentChannels must be an integer in [1, ${L.channels}].`,
  );
  check(
    isInt(config.attentionHeadDim, 1, L.attentionHeadDim),
    `attentionHeadDim must be an integer in [1, ${L.attentionHeadDim}].`,
  );
  const s = config.scalingFactor;
  check(
    s === undefined || (Number.isFinite(s) && s > 0),
    `scalingFactor must be a positive number, found ${s}.`,
  );
  for (const part of ['encoder', 'decoder'] as const) stageIssues(config, part, issues);
  const [n, m] = [config.encoder.blockOutChannels.length, config.decoder.blockOutChannels.length];
  check(
    issues.length > 0 || n === m,
    `encoder has ${n} stages but decoder has ${m}; both need the same spatial compression.`,
  );

  if (issues.length === 0) return;
  const message =
    issues.length === 1
      ? `${source}: invalid DC-AE config: ${issues[0]!}`
      : `${source}: ${issues.length} problems in the DC-AE config:\n${issues.map((i) => `  - ${i}`).join('\n')}`;
  throw new DcaeError('CONFIG_VALUE', message, { source, detail: { issues } });
}

function isInt(value: unknown, min: number, max: number): value is number {
  return Number.isSafeInteger(value) && (value as number) >= min && (value as number) <= max;
}

function stageIssues(config: DcAeConfig, part: 'encoder' | 'decoder', issues: string[]): void {
  const L = DC_AE_CONFIG_LIMITS;
  const stages = config[part];
  const widths = stages.blockOutChannels;
  const n = Array.isArray(widths) ? widths.length : 0;
  if (n < 1 || n > L.stages) {
    issues.push(`${part}.blockOutChannels needs 1 to ${L.stages} stages, found ${n}.`);
    return;
  }
  const lists: Record<string, unknown> = {
    blockTypes: stages.blockTypes,
    layersPerBlock: stages.layersPerBlock,
    qkvMultiscales: stages.qkvMultiscales,
    ...(part === 'decoder' ? { normTypes: config.decoder.normTypes, actFns: config.decoder.actFns } : {}),
  };
  const before = issues.length;
  for (const [name, list] of Object.entries(lists)) {
    if (!Array.isArray(list) || list.length !== n) {
      const found = Array.isArray(list) ? `${list.length} entries` : JSON.stringify(list);
      issues.push(
        `${part}.${name} has ${found} but ${part}.blockOutChannels has ${n}; they need one entry per stage.`,
      );
    }
  }
  if (issues.length > before) return;

  const depths = stages.layersPerBlock;
  for (let s = 0; s < n; s++) {
    const [w, depth, kernels] = [widths[s]!, depths[s]!, stages.qkvMultiscales[s]!];
    if (!isInt(w, 1, L.channels))
      issues.push(`${part} stage ${s} width must be an integer in [1, ${L.channels}], found ${String(w)}.`);
    if (!isInt(depth, 0, L.layersPerStage)) {
      issues.push(
        `${part} stage ${s} depth must be an integer in [0, ${L.layersPerStage}], found ${String(depth)}.`,
      );
    } else if (depth === 0 && s > 0 && s < n - 1) {
      issues.push(
        `${part} stage ${s} has 0 layers; only the first or last stage may be empty (an empty middle stage drops a ×2 resampling).`,
      );
    }
    if (!['ResBlock', 'EfficientViTBlock'].includes(stages.blockTypes[s]!)) {
      issues.push(
        `${part} stage ${s} block type must be "ResBlock" or "EfficientViTBlock", found ${JSON.stringify(stages.blockTypes[s])}.`,
      );
    }
    if (!Array.isArray(kernels) || kernels.length > L.multiscaleBranches) {
      issues.push(
        `${part} stage ${s} needs a list of at most ${L.multiscaleBranches} multi-scale kernel sizes.`,
      );
    } else if (!kernels.every((k) => isInt(k, 1, L.multiscaleKernel) && k % 2 === 1)) {
      issues.push(
        `${part} stage ${s} multi-scale kernels must be odd integers in [1, ${L.multiscaleKernel}], found [${kernels.join(', ')}].`,
      );
    }
  }
  if (issues.length > before) return;

  const { latentChannels: c, attentionHeadDim: d } = config;
  if (depths[0] === 0 && n < 2)
    issues.push(`${part} stage 0 is empty, so a second stage is needed to project into.`);
  for (let s = 0; s < n; s++) {
    if (stages.blockTypes[s] === 'EfficientViTBlock' && depths[s]! > 0 && widths[s]! % d !== 0) {
      issues.push(
        `${part} stage ${s} width ${widths[s]} is not a multiple of attentionHeadDim ${d} (heads = width / head dim).`,
      );
    }
    if (s + 1 < n && depths[s]! > 0 && (4 * widths[s]!) % widths[s + 1]! !== 0) {
      // Down: pixel-unshuffle makes 4·w_s channels, averaged in groups down to w_{s+1};
      // up: each of w_{s+1} channels is repeated 4·w_s / w_{s+1} times before pixel-shuffle.
      const what = part === 'encoder' ? 'averaging-shortcut groups' : 'duplicating-shortcut repeats';
      issues.push(
        `${part} stage ${s}→${s + 1}: 4 × ${widths[s]} is not a multiple of ${widths[s + 1]}, so the ${what} are not whole.`,
      );
    }
  }
  if (part === 'encoder' && config.encoder.downsample === 'pixel_unshuffle') {
    widths.forEach((w, s) => {
      const downsampledInto = s > 0 && (depths[s - 1]! > 0 || s === 1);
      if (downsampledInto && w % 4 !== 0)
        issues.push(`encoder stage ${s} width ${w} must be a multiple of 4 for pixel-unshuffle.`);
    });
  }
  const last = widths[n - 1]!;
  const shortcut = part === 'encoder' ? config.encoder.outShortcut : config.decoder.inShortcut;
  if (shortcut && last % c !== 0) {
    issues.push(
      `${part} last width ${last} is not a multiple of latentChannels ${c}, as its latent shortcut needs.`,
    );
  }
}
