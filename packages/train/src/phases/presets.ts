import { closestNames, ConfigReader, DcaeError } from '@dcae/core';
import type { JsonValue } from '@dcae/core';
import { LOSS_NAMES } from '../losses/index.js';
import type { DiscriminatorSpec } from '../gan/discriminator.js';
import { resolveDiscriminatorSpec } from '../gan/discriminator.js';
import type { LossName, LossWeights, OptimizerSpec } from '../step/types.js';

/**
 * Training configuration and the three phases of Decoupled High-Resolution Adaptation (DHRA) as
 * editable presets (docs/training-loop.md, "Phases"). A run's configuration is layered: the phase
 * preset, then a `--config file.json`, then command-line flags.
 */

export type PhaseNumber = 1 | 2 | 3;

export interface TrainConfig {
  /** Which DHRA phase this preset came from (informational; the fields below decide everything). */
  readonly phase?: PhaseNumber;
  /** Total optimizer steps of the run (a resumed run continues up to this count). */
  readonly steps: number;
  readonly batch: number;
  /** Training crop side in pixels (a multiple of the model's compression ratio). */
  readonly size: number;
  /** Peak learning rate. */
  readonly lr: number;
  /** Linear warm-up from 0 to `lr` over this many steps, then cosine decay to `lr · minLrRatio`. */
  readonly warmupSteps: number;
  readonly minLrRatio: number;
  readonly optimizer: OptimizerSpec;
  readonly loss: LossWeights;
  /** Key globs of the trainable tensors (diffusers names); `*` matches any run of characters, dots included. */
  readonly trainable: readonly string[];
  readonly seed: number;
  /** Random crops and horizontal flips (image folders only); false: centre crops, no flips. */
  readonly augment: boolean;
  /** Crop at a random scale between `size` and the image's own short side (log-uniform). */
  readonly multiScale: boolean;
  /** Evaluate (PSNR/SSIM on the held-out set, preview grid) every N steps; 0 = only at the end. */
  readonly evalEvery: number;
  /** Write `checkpoint-<step>/` every N steps; 0 = only the final checkpoint. */
  readonly saveEvery: number;
  /** Images of an image folder kept out of training for evaluation (chosen by the seed). */
  readonly heldOut: number;
  /** Side of the centre crops evaluated on the held-out images. */
  readonly evalSize: number;
  /** A separate held-out image folder or `.safetensors` sample file instead of `heldOut` images. */
  readonly evalData?: string;
  /** Scale of the last layer of each residual branch under `--init random` (near zero: training starts from the shortcuts). */
  readonly residualInitScale: number;
  /**
   * The PatchGAN discriminator of the `gan` loss term (fields default to 64 channels, 3 layers,
   * start step 0, betas 0.5/0.9); its weights are initialised from `seed`.
   */
  readonly discriminator?: Partial<DiscriminatorSpec>;
}

const BASE: Omit<TrainConfig, 'phase' | 'trainable' | 'loss' | 'size' | 'lr'> = {
  steps: 1000,
  batch: 4,
  // No warm-up by default: `--lr X` is the rate of the first step (the one-step SGD contract).
  warmupSteps: 0,
  minLrRatio: 0.1,
  optimizer: { kind: 'adamw', betas: [0.9, 0.999], eps: 1e-8, weightDecay: 0 },
  seed: 0,
  augment: true,
  multiScale: false,
  evalEvery: 200,
  saveEvery: 1000,
  heldOut: 4,
  evalSize: 256,
  residualInitScale: 1e-3,
};

/**
 * The DHRA phases (DC-AE paper §3.2):
 * 1. low-resolution full training with a reconstruction loss;
 * 2. high-resolution latent adaptation: only the layers around the latent (`encoder.conv_out`,
 *    `decoder.conv_in`; efficientvit's `project_out` / `project_in`) train;
 * 3. low-resolution local refinement: only the decoder head trains, with a GAN loss added.
 */
export const PHASE_PRESETS: Readonly<Record<PhaseNumber, TrainConfig>> = {
  1: { ...BASE, phase: 1, trainable: ['*'], loss: { l1: 1 }, size: 128, lr: 1e-3 },
  2: {
    ...BASE,
    phase: 2,
    trainable: ['encoder.conv_out.*', 'decoder.conv_in.*'],
    loss: { l1: 1 },
    size: 512,
    lr: 1e-4,
    batch: 2,
  },
  3: {
    ...BASE,
    phase: 3,
    trainable: ['decoder.norm_out.*', 'decoder.conv_out.*'],
    loss: { l1: 1, gan: 0.1 },
    size: 128,
    lr: 1e-4,
  },
};

/** Overrides read from a JSON file or from flags: every field optional. */
export type TrainConfigOverrides = { -readonly [K in keyof TrainConfig]?: TrainConfig[K] };

/** `base` with `overrides` applied (undefined values keep the base's), then validated. */
export function resolveTrainConfig(base: TrainConfig, ...overrides: TrainConfigOverrides[]): TrainConfig {
  let config: TrainConfig = base;
  for (const o of overrides) {
    const defined = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
    config = {
      ...config,
      ...defined,
      optimizer: { ...config.optimizer, ...(o.optimizer ?? {}) },
      ...(config.discriminator !== undefined || o.discriminator !== undefined
        ? { discriminator: { ...(config.discriminator ?? {}), ...(o.discriminator ?? {}) } }
        : {}),
    };
  }
  validateTrainConfig(config);
  return config;
}

/** Throws INVALID_ARGUMENT naming the first bad field. */
export function validateTrainConfig(config: TrainConfig, source = 'training config'): void {
  const bad = (field: string, expected: string, value: unknown): never => {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${source}: "${field}" must be ${expected}, got ${JSON.stringify(value)}.`,
      { source, detail: { field, expected, actual: value } },
    );
  };
  const posInt = (field: keyof TrainConfig): void => {
    const v = config[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1) bad(field, 'a positive integer', v);
  };
  const nonNegInt = (field: keyof TrainConfig): void => {
    const v = config[field];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(field, 'an integer ≥ 0', v);
  };
  posInt('steps');
  posInt('batch');
  posInt('size');
  posInt('evalSize');
  nonNegInt('warmupSteps');
  nonNegInt('evalEvery');
  nonNegInt('saveEvery');
  nonNegInt('heldOut');
  nonNegInt('seed');
  if (!(config.lr > 0) || !Number.isFinite(config.lr)) bad('lr', 'a finite number > 0', config.lr);
  if (!(config.minLrRatio >= 0 && config.minLrRatio <= 1))
    bad('minLrRatio', 'a number in [0, 1]', config.minLrRatio);
  if (!(config.residualInitScale >= 0 && config.residualInitScale <= 1))
    bad('residualInitScale', 'a number in [0, 1]', config.residualInitScale);
  if (config.trainable.length === 0 || config.trainable.some((g) => typeof g !== 'string' || g.trim() === ''))
    bad('trainable', 'a non-empty list of key globs', config.trainable);
  const terms = Object.entries(config.loss);
  if (terms.length === 0) bad('loss', 'at least one loss term', config.loss);
  for (const [name, weight] of terms) {
    if (!LOSS_NAMES.includes(name as LossName)) bad('loss', `terms from ${LOSS_NAMES.join(', ')}`, name);
    if (typeof weight !== 'number' || !Number.isFinite(weight) || weight < 0)
      bad(`loss.${name}`, 'a finite weight ≥ 0', weight);
  }
  if (config.discriminator !== undefined) {
    try {
      resolveDiscriminatorSpec(config.discriminator);
    } catch (error) {
      const e = error as { detail?: { field?: string; expected?: string; actual?: unknown } };
      bad(
        e.detail?.field ?? 'discriminator',
        e.detail?.expected ?? 'a valid discriminator',
        e.detail?.actual,
      );
    }
  }
  const { optimizer } = config;
  if (optimizer.kind !== 'adamw' && optimizer.kind !== 'sgd')
    bad('optimizer.kind', '"adamw" or "sgd"', optimizer.kind);
  if (optimizer.betas !== undefined) {
    const [b1, b2] = optimizer.betas;
    if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1))
      bad('optimizer.betas', 'two numbers in [0, 1)', optimizer.betas);
  }
  if (optimizer.eps !== undefined && !(optimizer.eps > 0))
    bad('optimizer.eps', 'a number > 0', optimizer.eps);
  if (optimizer.weightDecay !== undefined && !(optimizer.weightDecay >= 0))
    bad('optimizer.weightDecay', 'a number ≥ 0', optimizer.weightDecay);
  if (optimizer.clipGradNorm !== undefined && !(optimizer.clipGradNorm > 0))
    bad('optimizer.clipGradNorm', 'a number > 0', optimizer.clipGradNorm);
}

const CONFIG_FIELDS: readonly string[] = [
  'phase',
  'steps',
  'batch',
  'size',
  'lr',
  'warmupSteps',
  'minLrRatio',
  'optimizer',
  'loss',
  'trainable',
  'seed',
  'augment',
  'multiScale',
  'evalEvery',
  'saveEvery',
  'heldOut',
  'evalSize',
  'evalData',
  'residualInitScale',
  'discriminator',
];

/**
 * Parses a `--config` JSON object (the fields of {@link TrainConfig}, all optional; a `phase` field
 * picks the preset underneath). Unknown fields are errors with a suggestion.
 */
export function parseTrainConfigJson(json: JsonValue, source: string): TrainConfigOverrides {
  const r = new ConfigReader(json, source);
  const out: TrainConfigOverrides = {};
  const obj = json as Record<string, JsonValue>;
  const int = (f: keyof TrainConfig, min: number) => {
    if (r.has(f)) (out as Record<string, unknown>)[f] = r.int(f, { min, max: Number.MAX_SAFE_INTEGER });
  };
  if (r.has('phase')) out.phase = r.int('phase', { min: 1, max: 3 }) as PhaseNumber;
  int('steps', 1);
  int('batch', 1);
  int('size', 1);
  int('warmupSteps', 0);
  int('evalEvery', 0);
  int('saveEvery', 0);
  int('heldOut', 0);
  int('evalSize', 1);
  int('seed', 0);
  if (r.has('lr')) out.lr = r.number('lr', { min: 0 });
  if (r.has('minLrRatio')) out.minLrRatio = r.number('minLrRatio', { min: 0, max: 1 });
  if (r.has('residualInitScale')) out.residualInitScale = r.number('residualInitScale', { min: 0, max: 1 });
  if (r.has('augment')) out.augment = r.bool('augment');
  if (r.has('multiScale')) out.multiScale = r.bool('multiScale');
  if (r.has('evalData')) out.evalData = r.string('evalData');
  if (r.has('trainable')) {
    const v = obj.trainable;
    if (!Array.isArray(v) || v.some((g) => typeof g !== 'string'))
      r.report('trainable', 'expected a list of strings');
    else out.trainable = v as string[];
  }
  if (r.has('loss')) {
    const v = obj.loss;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) r.report('loss', 'expected {"l1": 1, …}');
    else out.loss = v;
  }
  if (r.has('optimizer')) {
    const v = obj.optimizer;
    const o = new ConfigReader(v ?? null, `${source} "optimizer"`);
    const spec: { -readonly [K in keyof OptimizerSpec]?: OptimizerSpec[K] } = {};
    if (o.has('kind')) spec.kind = o.string('kind', { oneOf: ['adamw', 'sgd'] as const });
    if (o.has('betas')) {
      const b = (v as Record<string, JsonValue>).betas;
      if (!Array.isArray(b) || b.length !== 2 || b.some((x) => typeof x !== 'number'))
        o.report('betas', 'expected [b1, b2]');
      else spec.betas = [b[0] as number, b[1] as number];
    }
    if (o.has('eps')) spec.eps = o.number('eps', { min: 0 });
    if (o.has('weightDecay')) spec.weightDecay = o.number('weightDecay', { min: 0 });
    if (o.has('clipGradNorm')) spec.clipGradNorm = o.number('clipGradNorm', { min: 0 });
    o.finish({ ignorePrefix: '_', allowUnknown: ['betas'] });
    out.optimizer = spec as OptimizerSpec;
  }
  if (r.has('discriminator')) {
    const v = obj.discriminator;
    const d = new ConfigReader(v ?? null, `${source} "discriminator"`);
    const spec: { -readonly [K in keyof DiscriminatorSpec]?: DiscriminatorSpec[K] } = {};
    if (d.has('channels')) spec.channels = d.int('channels', { min: 1, max: 1024 });
    if (d.has('layers')) spec.layers = d.int('layers', { min: 1, max: 8 });
    if (d.has('startStep')) spec.startStep = d.int('startStep', { min: 0, max: Number.MAX_SAFE_INTEGER });
    if (d.has('betas')) {
      const b = (v as Record<string, JsonValue>).betas;
      if (!Array.isArray(b) || b.length !== 2 || b.some((x) => typeof x !== 'number'))
        d.report('betas', 'expected [b1, b2]');
      else spec.betas = [b[0] as number, b[1] as number];
    }
    d.finish({ ignorePrefix: '_', allowUnknown: ['betas'] });
    out.discriminator = spec;
  }
  for (const field of Object.keys(obj)) {
    if (field.startsWith('_') || CONFIG_FIELDS.includes(field)) continue;
    const [near] = closestNames(field, CONFIG_FIELDS, 1);
    r.report(field, near === undefined ? 'unknown field' : `unknown field (did you mean "${near}"?)`);
  }
  r.finish({ allowUnknown: Object.keys(obj) });
  return out;
}

/**
 * `--loss l1+ssim` or `l1:1+ssim:0.2`: terms joined by `+`, each optionally `name:weight`.
 */
export function parseLossSpec(spec: string): LossWeights {
  const out: Partial<Record<LossName, number>> = {};
  for (const part of spec.split('+')) {
    const [name = '', weight] = part.trim().split(':');
    if (!LOSS_NAMES.includes(name as LossName)) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `--loss: unknown term "${name}"; use ${LOSS_NAMES.join(', ')} joined by "+", e.g. l1+ssim or l1:1+ssim:0.2.`,
      );
    }
    const w = weight === undefined ? 1 : Number(weight);
    if (!Number.isFinite(w) || w < 0)
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `--loss: the weight of "${name}" must be a number ≥ 0, got "${weight}".`,
      );
    out[name as LossName] = w;
  }
  return out;
}
