import { f32, linspaceFloat32, logAddExp } from './float32.js';

/**
 * The discrete-time VP noise schedule of DPM-Solver (`NoiseScheduleVP('discrete', betas)` in
 * U-ViT's `dpm_solver_pp.py`, docs/model-spec.md §4.5.2), in float32 like upstream: knots t_k = (k+1)/N with
 * log α_k = ½·Σ_{j≤k} log(1 − β_j), and log α(t) piecewise linear between them.
 */
export interface NoiseScheduleVP {
  /** Knot times (k+1)/N, ascending. */
  readonly tArray: Float32Array;
  /** log α at the knots, descending. */
  readonly logAlphaArray: Float32Array;
}

/** UViT's training betas: `linspace(√0.00085, √0.012, 1000)²` in float64, then float32. */
export function uvitBetas(): Float32Array {
  const n = 1000;
  const start = Math.sqrt(0.00085);
  const end = Math.sqrt(0.012);
  const step = (end - start) / (n - 1);
  const halfway = n / 2;
  return Float32Array.from({ length: n }, (_, i) => {
    const root = i < halfway ? start + step * i : end - step * (n - i - 1);
    return root * root;
  });
}

export function discreteNoiseSchedule(betas: Float32Array): NoiseScheduleVP {
  const logAlphaArray = new Float32Array(betas.length);
  // torch's CPU cumsum accumulates float32 input in double and rounds each partial sum.
  let sum = 0;
  betas.forEach((beta, k) => {
    sum += f32(Math.log(f32(1 - beta)));
    logAlphaArray[k] = f32(0.5 * f32(sum));
  });
  const tArray = linspaceFloat32(0, 1, betas.length + 1).subarray(1);
  return { tArray, logAlphaArray };
}

/** log α(t). */
export function marginalLogMeanCoeff(schedule: NoiseScheduleVP, t: number): number {
  return interpolate(t, schedule.tArray, schedule.logAlphaArray);
}

/** α(t). */
export function marginalAlpha(schedule: NoiseScheduleVP, t: number): number {
  return f32(Math.exp(marginalLogMeanCoeff(schedule, t)));
}

/** σ(t) = √(1 − α(t)²). */
export function marginalStd(schedule: NoiseScheduleVP, t: number): number {
  return f32(Math.sqrt(oneMinusAlphaSquared(marginalLogMeanCoeff(schedule, t))));
}

/** λ(t) = log α(t) − log σ(t), the half log-SNR. */
export function marginalLambda(schedule: NoiseScheduleVP, t: number): number {
  const logMeanCoeff = marginalLogMeanCoeff(schedule, t);
  const logStd = f32(0.5 * f32(Math.log(oneMinusAlphaSquared(logMeanCoeff))));
  return f32(logMeanCoeff - logStd);
}

/** t(λ): log α = −½·logaddexp(0, −2λ), then t from the knots read backwards. */
export function inverseLambda(schedule: NoiseScheduleVP, lambda: number): number {
  const logAlpha = f32(-0.5 * logAddExp(0, f32(-2 * lambda)));
  return interpolate(logAlpha, reversed(schedule.logAlphaArray), reversed(schedule.tArray));
}

function oneMinusAlphaSquared(logMeanCoeff: number): number {
  return f32(1 - f32(Math.exp(f32(2 * logMeanCoeff))));
}

const reversedCache = new WeakMap<Float32Array, Float32Array>();

function reversed(values: Float32Array): Float32Array {
  let result = reversedCache.get(values);
  if (result === undefined) {
    result = values.slice().reverse();
    reversedCache.set(values, result);
  }
  return result;
}

/**
 * upstream `interpolate_fn`: piecewise-linear through the knots (xs ascending), extended linearly
 * beyond the first and last segment.
 */
export function interpolate(x: number, xs: Float32Array, ys: Float32Array): number {
  const count = xs.length;
  // Number of knots below x: where x lands when sorted in among them.
  let below = 0;
  for (let hi = count; below < hi;) {
    const mid = (below + hi) >>> 1;
    if (xs[mid]! < x) below = mid + 1;
    else hi = mid;
  }
  const start = below === 0 ? 0 : below === count ? count - 2 : below - 1;
  const [x0, x1, y0, y1] = [xs[start]!, xs[start + 1]!, ys[start]!, ys[start + 1]!];
  return f32(y0 + f32(f32(f32(x - x0) * f32(y1 - y0)) / f32(x1 - x0)));
}
