import { DcaeError } from '@dcae/core';
import { f32, linspaceFloat32 } from '../schedules/float32.js';
import type { NoiseScheduleVP } from '../schedules/noise-schedule-vp.js';
import {
  inverseLambda,
  marginalAlpha,
  marginalLambda,
  marginalLogMeanCoeff,
  marginalStd,
} from '../schedules/noise-schedule-vp.js';
import type { SamplerRun } from './types.js';

/**
 * DPM-Solver as UViT samples with it (U-ViT's `dpm_solver_pp.py`: `method="fast"`, order 3,
 * `predict_x0=True`, `solver_type="dpm_solver"`, time-uniform grid; docs/model-spec.md §4.5.2). Schedule scalars
 * are float32 like upstream's.
 */

/** ε̂ of the network on x at network time `modelTime` = 1000·t (guidance applied). */
export type NoisePrediction = (x: Float32Array, modelTime: number) => Promise<Float32Array>;

/** One solver step: `order` grid intervals from s to t, with the stage ratios r1, r2 (0 where unused). */
export interface DpmSolverStepPlan {
  readonly order: 1 | 2 | 3;
  readonly s: number;
  readonly t: number;
  readonly r1: number;
  readonly r2: number;
}

export interface DpmSolverPlan {
  /** The grid `linspace(tStart, tEnd, nfe + 1)` in float32. */
  readonly timesteps: Float32Array;
  readonly steps: readonly DpmSolverStepPlan[];
}

/** Upstream's network time scale: the model sees 1000·t. */
const MODEL_TIME_SCALE = 1000;

/**
 * Orders of the singlestep "fast" solver for `nfe` evaluations (upstream
 * `get_orders_and_timesteps_for_singlestep_solver`, order 3): mostly 3, ending in 2, 1 or [2, 1].
 */
export function dpmSolverOrders(nfe: number): (1 | 2 | 3)[] {
  const k = Math.floor(nfe / 3) + 1;
  const threes = (count: number): 3[] => Array.from({ length: Math.max(0, count) }, () => 3);
  if (nfe % 3 === 0) return [...threes(k - 2), 2, 1];
  if (nfe % 3 === 1) return [...threes(k - 1), 1];
  return [...threes(k - 1), 2];
}

/** The grid and per-step (order, s, t, r1, r2) for `nfe` evaluations from tStart down to tEnd. */
export function dpmSolverPlan(
  schedule: NoiseScheduleVP,
  nfe: number,
  tStart = 1,
  tEnd = 1 / 1000,
): DpmSolverPlan {
  if (!Number.isInteger(nfe) || nfe < 1 || nfe > 1000) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `DPM-Solver steps (NFE) must be an integer in [1, 1000], got ${nfe}.`,
      {
        detail: { steps: nfe },
      },
    );
  }
  const timesteps = linspaceFloat32(tStart, tEnd, nfe + 1);
  const lambda = (i: number) => marginalLambda(schedule, timesteps[i]!);
  const steps: DpmSolverStepPlan[] = [];
  let i = 0;
  for (const order of dpmSolverOrders(nfe)) {
    const h = f32(lambda(i + order) - lambda(i));
    const ratio = (j: number) => f32(f32(lambda(i + j) - lambda(i)) / h);
    steps.push({
      order,
      s: timesteps[i]!,
      t: timesteps[i + order]!,
      r1: order > 1 ? ratio(1) : 0,
      r2: order > 2 ? ratio(2) : 0,
    });
    i += order;
  }
  return { timesteps, steps };
}

/** Marginal coefficients at time t. */
function coefficients(schedule: NoiseScheduleVP, t: number) {
  return {
    lambda: marginalLambda(schedule, t),
    alpha: marginalAlpha(schedule, t),
    sigma: marginalStd(schedule, t),
    logAlpha: marginalLogMeanCoeff(schedule, t),
  };
}

/** D(x, t) = (x − σ_t·ε̂)/α_t. */
async function dataPrediction(
  schedule: NoiseScheduleVP,
  predictNoise: NoisePrediction,
  x: Float32Array,
  t: number,
): Promise<Float32Array> {
  const eps = await predictNoise(x, f32(t * MODEL_TIME_SCALE));
  const { alpha, sigma } = coefficients(schedule, t);
  return x.map((xi, i) => f32(xi - f32(sigma * eps[i]!)) / alpha);
}

/** a·x − b·d + c·(e − d), elementwise in float32 (the shape of every update below). */
function combine(
  a: number,
  x: Float32Array,
  b: number,
  d: Float32Array,
  c = 0,
  e: Float32Array = d,
): Float32Array {
  return x.map((xi, i) => f32(f32(a * xi) - f32(b * d[i]!)) + f32(c * f32(e[i]! - d[i]!)));
}

/** One singlestep update of order 1, 2 or 3 from s to t (upstream `dpm_solver_update`, x0 branch). */
export async function dpmSolverStep(
  schedule: NoiseScheduleVP,
  { order, s, t, r1, r2 }: DpmSolverStepPlan,
  x: Float32Array,
  predictNoise: NoisePrediction,
): Promise<{ x: Float32Array; denoised: Float32Array }> {
  const at = (time: number) => coefficients(schedule, time);
  const cs = at(s);
  const ct = at(t);
  const h = f32(ct.lambda - cs.lambda);
  const modelS = await dataPrediction(schedule, predictNoise, x, s);

  if (order === 1) {
    const phi1 = f32(f32(f32(Math.exp(-h)) - 1) / -1);
    // x_t = (σ_t/σ_s)·x + α_t·(1 − e^−h)·D_s
    return { x: combine(f32(ct.sigma / cs.sigma), x, -f32(ct.alpha * phi1), modelS), denoised: modelS };
  }

  const phi1 = f32(Math.expm1(-h));
  const s1 = inverseLambda(schedule, f32(cs.lambda + f32(r1 * h)));
  const c1 = at(s1);
  const phi11 = f32(Math.expm1(f32(-r1 * h)));
  const xS1 = combine(f32(c1.sigma / cs.sigma), x, f32(c1.alpha * phi11), modelS);
  const modelS1 = await dataPrediction(schedule, predictNoise, xS1, s1);

  if (order === 2) {
    const b = f32(ct.alpha * phi1);
    const next = combine(f32(ct.sigma / cs.sigma), x, b, modelS, -f32(f32(0.5 / r1) * b), modelS1);
    return { x: next, denoised: modelS };
  }

  const s2 = inverseLambda(schedule, f32(cs.lambda + f32(r2 * h)));
  const c2 = at(s2);
  const phi12 = f32(Math.expm1(f32(-r2 * h)));
  const phi22 = f32(f32(phi12 / f32(r2 * h)) + 1);
  const phi2 = f32(f32(phi1 / h) + 1);
  const xS2 = combine(
    f32(c2.sigma / cs.sigma),
    x,
    f32(c2.alpha * phi12),
    modelS,
    f32(f32(r2 / r1) * f32(c2.alpha * phi22)),
    modelS1,
  );
  const modelS2 = await dataPrediction(schedule, predictNoise, xS2, s2);
  const next = combine(
    f32(ct.sigma / cs.sigma),
    x,
    f32(ct.alpha * phi1),
    modelS,
    f32(f32(1 / r2) * f32(ct.alpha * phi2)),
    modelS2,
  );
  return { x: next, denoised: modelS };
}

export interface DpmSolverSamplerOptions {
  readonly schedule: NoiseScheduleVP;
  readonly plan: DpmSolverPlan;
  /** x at t = tStart, [B, C, h, w]. */
  readonly x: Float32Array;
  readonly predictNoise: NoisePrediction;
}

/** upstream `DPM_Solver.sample(method="fast")`: no final denoising step, no thresholding. */
export async function* sampleDpmSolver({
  schedule,
  plan,
  x,
  predictNoise,
}: DpmSolverSamplerOptions): SamplerRun {
  let nfe = 0;
  for (const [index, step] of plan.steps.entries()) {
    const result = await dpmSolverStep(schedule, step, x, predictNoise);
    x = result.x;
    nfe += step.order;
    yield {
      step: index + 1,
      totalSteps: plan.steps.length,
      progress: nfe / (plan.timesteps.length - 1),
      nfe,
      x,
      denoised: result.denoised,
    };
  }
}
