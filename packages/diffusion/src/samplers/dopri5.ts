import { DcaeError } from '@dcae/core';
import { f32 } from '../schedules/float32.js';
import type { VelocityModel } from './heun.js';
import { flowDenoised } from './heun.js';
import type { SamplerRun } from './types.js';

/**
 * Adaptive Dormand–Prince 5(4) for the SiT flow ODE from t = 0 to t = 1, following torchdiffeq
 * 0.2.5 (`odeint(method="dopri5")`: `rk_common.py`, `dopri5.py`, `misc.py`, `interp.py`) so that
 * the step sequence matches: the initial-step heuristic, the RMS error norm over the whole batch,
 * safety 0.9 and step factors 0.2 … 10, float64 time and error norms with float32 state, stages
 * at t1 evaluated one float32 ulp early, and the value at t = 1 read from the last step's
 * 4th-order dense output (that step may overshoot t = 1).
 */

/** Butcher tableau (Dormand & Prince 1980; Shampine 1986 for the dense output). */
const ALPHA = [1 / 5, 3 / 10, 4 / 5, 8 / 9, 1, 1];
const BETA = [
  [1 / 5],
  [3 / 40, 9 / 40],
  [44 / 45, -56 / 15, 32 / 9],
  [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
  [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
  [35 / 384, 0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
];
const C_ERROR = [
  35 / 384 - 1951 / 21600,
  0,
  500 / 1113 - 22642 / 50085,
  125 / 192 - 451 / 720,
  -2187 / 6784 - -12231 / 42400,
  11 / 84 - 649 / 6300,
  -1 / 60,
];
const C_MID = [
  6025192743 / 30085553152 / 2,
  0,
  51252292925 / 65400821598 / 2,
  -2691868925 / 45128329728 / 2,
  187940372067 / 1594534317056 / 2,
  -1776094331 / 19743644256 / 2,
  11237099 / 235043384 / 2,
];
const ORDER = 5;
const SAFETY = 0.9;
const IFACTOR = 10;
const DFACTOR = 0.2;

export interface Dopri5Tolerances {
  /** @defaultValue 1e-3 (SiT's sampling setting) */
  readonly rtol?: number;
  /** @defaultValue 1e-6 (SiT's sampling setting) */
  readonly atol?: number;
}

export interface Dopri5SamplerOptions extends Dopri5Tolerances {
  /** The noise at t = 0, [B, C, h, w]. */
  readonly x: Float32Array;
  readonly velocity: VelocityModel;
  /** Most steps (accepted or rejected) before giving up. @defaultValue 10000 */
  readonly maxSteps?: number;
}

/** sqrt(mean(x²)) over the whole tensor (torchdiffeq `_rms_norm`). */
function rmsNorm(values: ArrayLike<number>): number {
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += values[i]! * values[i]!;
  return Math.sqrt(sum / values.length);
}

/** `nextafter(t, t − 1)` in float32: torchdiffeq perturbs stages that land on t1 to just before it. */
function previousFloat32(t: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setFloat32(0, t);
  const bits = view.getUint32(0);
  if (t === 0) return -Math.pow(2, -149);
  view.setUint32(0, t > 0 ? bits - 1 : bits + 1);
  return view.getFloat32(0);
}

/** y0 + Σ_j k_j·(c_j·dt), the weighted stage sum of a Runge–Kutta step. */
function stageSum(
  y0: Float32Array,
  k: readonly Float32Array[],
  c: readonly number[],
  dt: number,
): Float32Array {
  const weights = c.map((cj) => f32(f32(cj) * dt));
  return y0.map((yi, i) => {
    let sum = 0;
    for (let j = 0; j < weights.length; j++) sum += k[j]![i]! * weights[j]!;
    return yi + f32(sum);
  });
}

/**
 * torchdiffeq `_select_initial_step` for a method of the given order (4 for dopri5: `order − 1`).
 * SiT passes the tolerances as one-element lists, which torchdiffeq turns into float64 tensors, so
 * the scaled norms are float64; only the state stays float32.
 */
async function initialStep(
  velocity: VelocityModel,
  y0: Float32Array,
  f0: Float32Array,
  rtol: number,
  atol: number,
): Promise<number> {
  const order = ORDER - 1;
  const scale = Float64Array.from(y0, (yi) => atol + Math.abs(yi) * rtol);
  const d0 = rmsNorm(Float64Array.from(y0, (yi, i) => yi / scale[i]!));
  const d1 = rmsNorm(Float64Array.from(f0, (fi, i) => fi / scale[i]!));
  const h0 = d0 < 1e-5 || d1 < 1e-5 ? 1e-6 : (0.01 * d0) / d1;
  const y1 = y0.map((yi, i) => yi + f32(f32(h0) * f0[i]!));
  const f1 = await velocity(y1, f32(h0)); // t0 = 0
  const d2 = Math.abs(rmsNorm(Float64Array.from(f1, (fi, i) => f32(fi - f0[i]!) / scale[i]!)) / h0);
  const h1 =
    d1 <= 1e-15 && d2 <= 1e-15
      ? Math.max(1e-6, h0 * 1e-3)
      : Math.pow(0.01 / Math.max(d1, d2), 1 / (order + 1));
  return Math.min(100 * h0, h1);
}

/** torchdiffeq `_optimal_step_size` (float64). */
function optimalStepSize(lastStep: number, errorRatio: number): number {
  if (errorRatio === 0) return lastStep * IFACTOR;
  const dfactor = errorRatio < 1 ? 1 : DFACTOR;
  const factor = Math.min(IFACTOR, Math.max(SAFETY / Math.pow(errorRatio, 1 / ORDER), dfactor));
  return lastStep * factor;
}

/** The value at `t` of the 4th-order dense output of an accepted step (torchdiffeq `_interp_fit` + `_interp_evaluate`). */
function interpolate(
  step: { y0: Float32Array; y1: Float32Array; k: Float32Array[]; dt: number; t0: number; t1: number },
  t: number,
): Float32Array {
  const { y0, y1, k, dt } = step;
  const f0 = k[0]!;
  const f1 = k[k.length - 1]!;
  const yMid = stageSum(y0, k, C_MID, dt);
  const x = f32((t - step.t0) / (step.t1 - step.t0));
  const x2 = f32(x * x);
  const x3 = f32(x2 * x);
  const x4 = f32(x3 * x);
  return y0.map((e, i) => {
    const [a0, a1, m] = [f0[i]!, f1[i]!, yMid[i]!];
    const y1i = y1[i]!;
    const a = f32(f32(f32(2 * dt) * f32(a1 - a0)) - f32(8 * f32(y1i + e))) + f32(16 * m);
    const b = f32(f32(f32(dt * f32(f32(5 * a0) - f32(3 * a1))) + f32(18 * e)) + f32(14 * y1i)) - f32(32 * m);
    const c = f32(f32(f32(dt * f32(a1 - f32(4 * a0))) - f32(11 * e)) - f32(5 * y1i)) + f32(16 * m);
    const d = f32(dt * a0);
    let total = f32(e + f32(x * d));
    total = f32(total + f32(x2 * c));
    total = f32(total + f32(x3 * b));
    return total + f32(x4 * a);
  });
}

/** Integrates from t = 0 to t = 1; yields after every accepted step, the last time with the value at t = 1. */
export async function* sampleDopri5(options: Dopri5SamplerOptions): SamplerRun {
  const { velocity, rtol = 1e-3, atol = 1e-6, maxSteps = 10_000 } = options;
  if (!(rtol > 0 && atol > 0 && Number.isFinite(rtol) && Number.isFinite(atol))) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `dopri5 tolerances must be positive, got rtol ${rtol}, atol ${atol}.`,
    );
  }
  const tEnd = 1;
  let y = options.x;
  let t = 0;
  let f = await velocity(y, t);
  let nfe = 1;
  let dt = await initialStep(velocity, y, f, rtol, atol);
  nfe += 1;
  let accepted = 0;

  for (let attempt = 0; ; attempt++) {
    if (attempt >= maxSteps) {
      throw new DcaeError(
        'RUN_FAILED',
        `dopri5 took more than ${maxSteps} steps without reaching t = 1 (at t = ${t}).`,
        {
          detail: { t, maxSteps },
        },
      );
    }
    const t1 = t + dt;
    if (!(t1 > t) || !y.every(Number.isFinite)) {
      throw new DcaeError(
        'RUN_FAILED',
        `dopri5 cannot continue at t = ${t}: ${t1 > t ? 'the state is not finite' : `step ${dt} underflows`}.`,
        { detail: { t, dt } },
      );
    }
    const [t0f, dtf, t1f] = [f32(t), f32(dt), f32(t1)];
    const k: Float32Array[] = [f];
    for (let i = 0; i < ALPHA.length; i++) {
      const alpha = f32(ALPHA[i]!);
      const ti = alpha === 1 ? previousFloat32(t1f) : f32(t0f + f32(alpha * dtf));
      k.push(await velocity(stageSum(y, k, BETA[i]!, dtf), ti));
      nfe += 1;
    }
    // The 5th-order solution is the last stage's input (c_sol equals the last row of beta).
    const y1 = stageSum(y, k, BETA[BETA.length - 1]!, dtf);
    const error = stageSum(new Float32Array(y.length), k, C_ERROR, dtf);
    const errorRatio = rmsNorm(
      Float64Array.from(error, (e, i) => e / (atol + rtol * Math.max(Math.abs(y[i]!), Math.abs(y1[i]!)))),
    );

    const previous = { y0: y, t0: t };
    if (errorRatio <= 1) {
      const denoised = flowDenoised(y, t0f, f);
      [y, f, t] = [y1, k[k.length - 1]!, t1];
      accepted += 1;
      const done = t >= tEnd;
      const x = done ? interpolate({ y0: previous.y0, y1, k, dt: dtf, t0: previous.t0, t1 }, tEnd) : y;
      yield { step: accepted, totalSteps: undefined, progress: Math.min(t, tEnd), nfe, x, denoised };
      if (done) return;
    }
    dt = optimalStepSize(dt, errorRatio);
  }
}
