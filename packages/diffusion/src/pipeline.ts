import type { HostTensor, Rng } from '@dcae/core';
import { createRng, DcaeError, formatShape } from '@dcae/core';
import type { BackboneConfig } from './config.js';
import { hasNullClass } from './config.js';
import type { Conditioning } from './guidance.js';
import { ditGuidedPrediction, usitGuidedVelocity, uvitGuidedNoise } from './guidance.js';
import type { DiffusionModel } from './model.js';
import { sampleDdpm } from './samplers/ddpm.js';
import type { Dopri5Tolerances } from './samplers/dopri5.js';
import { sampleDopri5 } from './samplers/dopri5.js';
import { dpmSolverPlan, sampleDpmSolver } from './samplers/dpm-solver.js';
import { sampleHeun } from './samplers/heun.js';
import type { SamplerName, SamplerRun } from './samplers/types.js';
import { SAMPLER_NAMES } from './samplers/types.js';
import { ddpmSchedule } from './schedules/gaussian-diffusion.js';
import { discreteNoiseSchedule, uvitBetas } from './schedules/noise-schedule-vp.js';

/** The autoencoder side of generation: anything that decodes AE latents (e.g. `loadAutoencoder`'s result). */
export interface LatentDecoder {
  /** AE latents [B, C, h, w] → images [B, 3, H, W] in [−1, 1]. */
  decode(
    latents: HostTensor<'float32'>,
    options?: { readonly signal?: AbortSignal },
  ): Promise<HostTensor<'float32'>>;
  /** Diffusion space = AE latent × scalingFactor. When undefined, the diffusion model's preset supplies it. */
  readonly scalingFactor: number | undefined;
  /** When present, must equal the diffusion model's latent channels. */
  readonly latentChannels?: number;
}

/** Noise to use instead of the seeded generator (for tests against reference runs). */
export interface InjectedNoise {
  /** The starting state [B, C, h, w] (the fixtures' `noise_init`): x_T for DDPM and DPM-Solver, x at t = 0 for the flow samplers. */
  readonly initial?: HostTensor<'float32'>;
  /**
   * DDPM only: per-step noise [S, B′, C, h, w] with S = steps and B′ ≥ B (the fixtures'
   * `step_noise`); step j (j = 0 the noisiest) uses `steps[j, :B]`, the last step uses none.
   */
  readonly steps?: HostTensor<'float32'>;
}

export interface GenerateProgress {
  /** Steps done (1 after the first). */
  readonly step: number;
  /** Steps in all; undefined for the adaptive dopri5. */
  readonly totalSteps: number | undefined;
  /** Share of the trajectory covered, 0 … 1. */
  readonly progress: number;
  /** Network evaluations so far (a guided evaluation counts once). */
  readonly nfe: number;
  /** The current state, in diffusion space. */
  readonly latent: HostTensor<'float32'>;
  /** The model's clean-sample estimate, in diffusion space: divide by scalingFactor and decode for a preview. */
  readonly denoised: HostTensor<'float32'>;
}

export interface GenerateOptions {
  readonly model: DiffusionModel;
  /** Decodes the sample when given. */
  readonly autoencoder?: LatentDecoder;
  /** One ImageNet class (0 … 999) per sample. */
  readonly classLabels: readonly number[];
  /** Classifier-free guidance scale, ≥ 0 (1 = no guidance). @defaultValue the preset's FID setting, else 1.5 */
  readonly guidanceScale?: number;
  /** @defaultValue the preset's sampler, else the one the model family was trained for */
  readonly sampler?: SamplerName;
  /** DDPM: respaced steps; DPM-Solver: network evaluations; Heun: steps. Not for dopri5. @defaultValue 250 / 30 / 249 */
  readonly steps?: number;
  /** dopri5 only. @defaultValue rtol 1e-3, atol 1e-6 */
  readonly tolerances?: Dopri5Tolerances;
  /** Seed of the noise generator. @defaultValue a random seed, returned in the result */
  readonly seed?: number | bigint;
  readonly noise?: InjectedNoise;
  /** Cancels between steps (and inside a running network evaluation); rejects with ABORTED. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: GenerateProgress) => void;
}

export interface GenerateResult {
  /** The final sample in diffusion space, [B, C, h, w]. */
  readonly latent: HostTensor<'float32'>;
  /** `autoencoder.decode(latent / scalingFactor)` when an autoencoder was given. */
  readonly images: HostTensor<'float32'> | undefined;
  readonly sampler: SamplerName;
  readonly steps: number | undefined;
  readonly guidanceScale: number;
  readonly seed: number | bigint;
  readonly nfe: number;
}

/** Default steps per sampler: upstream's settings (Heun: the 250-point grid of `ODE_heun2`). */
export const DEFAULT_STEPS: Readonly<Record<Exclude<SamplerName, 'dopri5'>, number>> = {
  ddpm: 250,
  'dpm-solver': 30,
  heun: 249,
};

/** Upstream `generate()`'s default guidance scale: used when neither the call nor the preset sets one. */
export const DEFAULT_GUIDANCE = 1.5;
const MAX_BATCH = 1024;

/** The samplers a backbone was trained for: DiT → DDPM, UViT → DPM-Solver, USiT (velocity) → the flow ODE. */
export function compatibleSamplers(config: BackboneConfig): SamplerName[] {
  if (config.prediction === 'velocity') return ['dopri5', 'heun'];
  return config.family === 'dit' ? ['ddpm'] : ['dpm-solver'];
}

/**
 * Class-conditional sampling: draws the initial noise, runs the sampler (with guidance as the
 * model's upstream does it) and decodes `latent / scalingFactor` when an autoencoder is given.
 */
export async function generate(options: GenerateOptions): Promise<GenerateResult> {
  const { model, signal } = options;
  const settings = resolveSettings(options);
  if (options.autoencoder) checkAutoencoder(options.autoencoder, model);
  const [c, h, w] = model.latentShape;
  const shape = [settings.labels.length, c, h, w];
  throwIfAborted(signal, 'before sampling');

  const rng = createRng(settings.seed);
  const x = options.noise?.initial
    ? checkNoise(options.noise.initial, shape, 'noise.initial').data.slice()
    : rng.randn(shape).data;
  const conditioning: Conditioning = {
    model,
    labels: settings.labels,
    scale: settings.guidanceScale,
    signal,
  };
  const run = startSampler(settings, conditioning, x, stepNoise(options.noise?.steps, settings, shape, rng));

  let latent = x;
  let nfe = 0;
  for await (const step of run) {
    latent = step.x;
    nfe = step.nfe;
    options.onProgress?.({
      step: step.step,
      totalSteps: step.totalSteps,
      progress: step.progress,
      nfe,
      latent: { dtype: 'float32', shape, data: latent },
      denoised: { dtype: 'float32', shape, data: step.denoised },
    });
    throwIfAborted(
      signal,
      `after step ${step.step}${step.totalSteps === undefined ? '' : ` of ${step.totalSteps}`}`,
    );
  }

  const result: HostTensor<'float32'> = { dtype: 'float32', shape, data: latent };
  const { autoencoder } = options;
  const images = autoencoder
    ? await decode(autoencoder, scalingFactorOf(autoencoder, model), result, signal)
    : undefined;
  return {
    latent: result,
    images,
    sampler: settings.sampler,
    steps: settings.steps,
    guidanceScale: settings.guidanceScale,
    seed: settings.seed,
    nfe,
  };
}

interface Settings {
  readonly sampler: SamplerName;
  readonly steps: number | undefined;
  readonly guidanceScale: number;
  readonly labels: readonly number[];
  readonly seed: number | bigint;
  readonly tolerances: Dopri5Tolerances | undefined;
}

/** Checks every option against the model and fills in the defaults. */
function resolveSettings(options: GenerateOptions): Settings {
  const { model } = options;
  const config = model.config;
  const allowed = compatibleSamplers(config);
  const sampler = options.sampler ?? model.preset?.sampler ?? allowed[0]!;
  if (!SAMPLER_NAMES.includes(sampler) || !allowed.includes(sampler)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Sampler ${JSON.stringify(sampler)} does not fit this ${describeModel(config)}; use ${allowed.map((s) => JSON.stringify(s)).join(' or ')}.`,
      { detail: { sampler, allowed } },
    );
  }

  let steps: number | undefined;
  if (sampler === 'dopri5') {
    if (options.steps !== undefined) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `dopri5 chooses its own steps (adaptive); drop steps = ${options.steps}, or use sampler "heun" for a fixed number of steps.`,
      );
    }
  } else {
    steps =
      options.steps ??
      (model.preset?.sampler === sampler ? model.preset.steps : undefined) ??
      DEFAULT_STEPS[sampler];
    const max = sampler === 'ddpm' || sampler === 'dpm-solver' ? 1000 : 10_000;
    if (!Number.isInteger(steps) || steps < 1 || steps > max) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `steps must be an integer in [1, ${max}] for ${sampler}, got ${steps}.`,
        {
          detail: { steps },
        },
      );
    }
  }
  if (options.tolerances !== undefined && sampler !== 'dopri5') {
    throw new DcaeError('INVALID_ARGUMENT', `tolerances apply to the dopri5 sampler only, not ${sampler}.`);
  }

  const guidanceScale = options.guidanceScale ?? model.preset?.guidanceScale ?? DEFAULT_GUIDANCE;
  if (!Number.isFinite(guidanceScale) || guidanceScale < 0) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `guidanceScale must be a finite number ≥ 0 (1 = no guidance), got ${guidanceScale}.`,
      {
        detail: { guidanceScale },
      },
    );
  }
  if (guidanceScale !== 1 && !hasNullClass(config)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `This model has no null class (class_dropout_prob = 0), so it cannot be guided; use guidanceScale 1.`,
    );
  }

  return {
    sampler,
    steps,
    guidanceScale,
    labels: checkClassLabels(options.classLabels, config),
    seed: options.seed ?? randomSeed(),
    tolerances: options.tolerances,
  };
}

/** The factor that maps diffusion space back to AE latents: the autoencoder's, else the model preset's. */
function scalingFactorOf(autoencoder: LatentDecoder, model: DiffusionModel): number {
  const scalingFactor = autoencoder.scalingFactor ?? model.preset?.scalingFactor;
  if (scalingFactor === undefined || !Number.isFinite(scalingFactor) || scalingFactor <= 0) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Decoding needs a positive scalingFactor (diffusion space = AE latent × scalingFactor); the autoencoder has ${scalingFactor} and the model has no preset to supply one.`,
    );
  }
  return scalingFactor;
}

function checkAutoencoder(autoencoder: LatentDecoder, model: DiffusionModel): void {
  scalingFactorOf(autoencoder, model);
  const { latentChannels } = autoencoder;
  const channels = model.latentShape[0];
  if (latentChannels !== undefined && latentChannels !== channels) {
    const expected = model.preset ? ` (${model.preset.autoencoder})` : '';
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `The autoencoder has ${latentChannels} latent channels but the diffusion model samples ${channels}; use the autoencoder the model was trained with${expected}.`,
      { detail: { expected: channels, actual: latentChannels } },
    );
  }
}

function describeModel(config: BackboneConfig): string {
  if (config.prediction === 'velocity') return 'velocity (USiT) model';
  return config.family === 'dit' ? 'DiT (ε and learned variance) model' : 'UViT (ε) model';
}

function checkClassLabels(labels: readonly number[], config: BackboneConfig): readonly number[] {
  const count: unknown = Array.isArray(labels) ? labels.length : typeof labels;
  if (typeof count !== 'number' || count === 0 || count > MAX_BATCH) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `classLabels must list 1 to ${MAX_BATCH} classes, got ${String(count)}.`,
    );
  }
  const bad = labels.filter((label) => !Number.isInteger(label) || label < 0 || label >= config.numClasses);
  if (bad.length > 0) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Class labels must be integers in [0, ${config.numClasses - 1}]; got ${bad.slice(0, 5).map(String).join(', ')}${bad.length > 5 ? ', …' : ''}.`,
      { detail: { bad } },
    );
  }
  return Array.from(labels);
}

function randomSeed(): number {
  const words = globalThis.crypto.getRandomValues(new Uint32Array(2));
  return (words[0]! & 0x1fffff) * 2 ** 32 + words[1]!;
}

function checkNoise(
  tensor: HostTensor<'float32'>,
  shape: readonly number[],
  name: string,
): HostTensor<'float32'> {
  const valid =
    tensor.dtype === 'float32' &&
    tensor.shape.length === shape.length &&
    tensor.shape.every((d, i) => d === shape[i]) &&
    tensor.data instanceof Float32Array &&
    tensor.data.length === shape.reduce((a, b) => a * b, 1);
  if (!valid) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${name} must be float32 ${formatShape(shape)}, got ${tensor.dtype} ${formatShape(tensor.shape)}.`,
      { detail: { expected: shape, actual: tensor.shape } },
    );
  }
  return tensor;
}

/** Per-step DDPM noise: rows of the injected tensor, else fresh draws from the generator. */
function stepNoise(
  injected: HostTensor<'float32'> | undefined,
  settings: Settings,
  shape: readonly number[],
  rng: Rng,
): (j: number) => Float32Array {
  if (injected === undefined) return () => rng.randn(shape).data;
  if (settings.sampler !== 'ddpm') {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `noise.steps is for the DDPM sampler only; ${settings.sampler} draws no noise after the start.`,
    );
  }
  const [steps, batch, ...sample] = injected.shape;
  const perSample = sample.reduce((a, b) => a * b, 1);
  const wanted = [settings.steps!, shape[0]!, ...shape.slice(1)];
  const valid =
    injected.dtype === 'float32' &&
    injected.shape.length === 5 &&
    steps === settings.steps &&
    (batch ?? 0) >= shape[0]! &&
    sample.every((d, i) => d === shape[i + 1]) &&
    injected.data.length === steps! * batch! * perSample;
  if (!valid) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `noise.steps must be float32 [${wanted.join(', ')}] (or wider in dim 1), got ${injected.dtype} ${formatShape(injected.shape)}.`,
      { detail: { expected: wanted, actual: injected.shape } },
    );
  }
  const rowLength = shape[0]! * perSample;
  return (j) => injected.data.subarray(j * batch! * perSample, j * batch! * perSample + rowLength);
}

function startSampler(
  settings: Settings,
  conditioning: Conditioning,
  x: Float32Array,
  noise: (j: number) => Float32Array,
): SamplerRun {
  switch (settings.sampler) {
    case 'ddpm':
      return sampleDdpm({
        schedule: ddpmSchedule(settings.steps!),
        x,
        model: ditGuidedPrediction(conditioning),
        noise,
      });
    case 'dpm-solver': {
      const schedule = discreteNoiseSchedule(uvitBetas());
      const plan = dpmSolverPlan(schedule, settings.steps!);
      return sampleDpmSolver({ schedule, plan, x, predictNoise: uvitGuidedNoise(conditioning) });
    }
    case 'heun':
      return sampleHeun({ x, velocity: usitGuidedVelocity(conditioning), steps: settings.steps! });
    case 'dopri5':
      return sampleDopri5({ x, velocity: usitGuidedVelocity(conditioning), ...settings.tolerances });
  }
}

async function decode(
  autoencoder: LatentDecoder,
  scale: number,
  latent: HostTensor<'float32'>,
  signal: AbortSignal | undefined,
): Promise<HostTensor<'float32'>> {
  throwIfAborted(signal, 'before decoding');
  const latents = latent.data.map((value) => value / scale);
  return autoencoder.decode(
    { dtype: 'float32', shape: latent.shape, data: latents },
    signal ? { signal } : {},
  );
}

function throwIfAborted(signal: AbortSignal | undefined, where: string): void {
  if (signal?.aborted) {
    throw new DcaeError('ABORTED', `generate() was aborted ${where}.`, { cause: signal.reason });
  }
}
