import type { DdpmSchedule } from '../schedules/gaussian-diffusion.js';
import { f32 } from '../schedules/float32.js';
import type { SamplerRun } from './types.js';

/** The network's output for one DDPM step: ε̂ (guided) and the learned-range variance value v ∈ [−1, 1]. */
export interface DdpmPrediction {
  readonly eps: Float32Array;
  readonly v: Float32Array;
}

/** Evaluates the network on x at original DDPM time `modelTime` (an integer 0 … 999). */
export type DdpmModel = (x: Float32Array, modelTime: number) => Promise<DdpmPrediction>;

export interface DdpmStepResult {
  readonly x: Float32Array;
  /** x̂₀, the clean-sample estimate. */
  readonly predXstart: Float32Array;
  readonly logVariance: Float32Array;
}

/**
 * One ancestral step at respaced index k (upstream `p_sample` with `clip_denoised=False` and
 * LEARNED_RANGE variance). Table entries are cast to float32 first, as `_extract_into_tensor` does;
 * all arithmetic is float32. `noise` is only used when k > 0.
 */
export function ddpmStep(
  schedule: DdpmSchedule,
  k: number,
  x: Float32Array,
  { eps, v }: DdpmPrediction,
  noise: Float32Array | undefined,
): DdpmStepResult {
  const minLog = f32(schedule.posteriorLogVarianceClipped[k]!);
  const maxLog = f32(schedule.logBetas[k]!);
  const sqrtRecip = f32(schedule.sqrtRecipAlphasCumprod[k]!);
  const sqrtRecipm1 = f32(schedule.sqrtRecipm1AlphasCumprod[k]!);
  const coef1 = f32(schedule.posteriorMeanCoef1[k]!);
  const coef2 = f32(schedule.posteriorMeanCoef2[k]!);

  const next = new Float32Array(x.length);
  const predXstart = new Float32Array(x.length);
  const logVariance = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const frac = f32(f32(v[i]! + 1) / 2);
    logVariance[i] = f32(frac * maxLog) + f32(f32(1 - frac) * minLog);
    predXstart[i] = f32(sqrtRecip * x[i]!) - f32(sqrtRecipm1 * eps[i]!);
    const mean = f32(f32(coef1 * predXstart[i]!) + f32(coef2 * x[i]!));
    next[i] = k > 0 ? mean + f32(f32(Math.exp(f32(0.5 * logVariance[i]!))) * noise![i]!) : mean;
  }
  return { x: next, predXstart, logVariance };
}

export interface DdpmSamplerOptions {
  readonly schedule: DdpmSchedule;
  /** x at the first (noisiest) step, [B, C, h, w]. */
  readonly x: Float32Array;
  readonly model: DdpmModel;
  /** The fresh N(0, I) noise of step j (j = 0 is the first step); not asked for the last step. */
  readonly noise: (j: number) => Float32Array;
}

/** upstream `p_sample_loop`: k = S−1 … 0, model time `timestepMap[k]`. */
export async function* sampleDdpm({ schedule, x, model, noise }: DdpmSamplerOptions): SamplerRun {
  const total = schedule.timestepMap.length;
  for (let j = 0; j < total; j++) {
    const k = total - 1 - j;
    const prediction = await model(x, schedule.timestepMap[k]!);
    const step = ddpmStep(schedule, k, x, prediction, k > 0 ? noise(j) : undefined);
    x = step.x;
    yield {
      step: j + 1,
      totalSteps: total,
      progress: (j + 1) / total,
      nfe: j + 1,
      x,
      denoised: step.predXstart,
    };
  }
}
