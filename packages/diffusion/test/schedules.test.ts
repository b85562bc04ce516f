import { beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '@dcae/core';
import { dpmSolverOrders, dpmSolverPlan } from '../src/samplers/dpm-solver.js';
import type { DdpmSchedule } from '../src/schedules/gaussian-diffusion.js';
import { ddpmSchedule, linearBetas, spaceTimesteps } from '../src/schedules/gaussian-diffusion.js';
import {
  discreteNoiseSchedule,
  inverseLambda,
  marginalLambda,
  marginalLogMeanCoeff,
  marginalStd,
  uvitBetas,
} from '../src/schedules/noise-schedule-vp.js';
import { float32, float64, int64, readTensors } from './fixtures.js';

type Tensors = Map<string, HostTensor | Float64Array>;

/** max |a − b| / max(|b|, tiny) */
function maxRelative(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let max = 0;
  for (let i = 0; i < a.length; i++)
    max = Math.max(max, Math.abs(a[i]! - b[i]!) / Math.max(Math.abs(b[i]!), 1e-30));
  return max;
}

/** Largest distance in float32 units in the last place. */
function maxUlps(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  const pair = new Float32Array(2);
  const bits = new Int32Array(pair.buffer);
  let max = 0;
  for (let i = 0; i < a.length; i++) {
    pair[0] = a[i]!;
    pair[1] = b[i]!;
    max = Math.max(max, Math.abs(bits[0]! - bits[1]!));
  }
  return max;
}

const DDPM_TABLES: readonly [keyof Omit<DdpmSchedule, 'timestepMap'>, string][] = [
  ['betas', 'betas'],
  ['alphasCumprod', 'alphas_cumprod'],
  ['alphasCumprodPrev', 'alphas_cumprod_prev'],
  ['sqrtRecipAlphasCumprod', 'sqrt_recip_alphas_cumprod'],
  ['sqrtRecipm1AlphasCumprod', 'sqrt_recipm1_alphas_cumprod'],
  ['posteriorVariance', 'posterior_variance'],
  ['posteriorLogVarianceClipped', 'posterior_log_variance_clipped'],
  ['posteriorMeanCoef1', 'posterior_mean_coef1'],
  ['posteriorMeanCoef2', 'posterior_mean_coef2'],
  ['logBetas', 'log_betas'],
];

let tables: Tensors;
beforeAll(async () => {
  tables = await readTensors('schedules/schedules.safetensors');
});

describe('DDPM (DiT GaussianDiffusion, float64)', () => {
  it('the linear betas 1e-4 … 0.02 and the 1000-step tables match upstream', () => {
    expect(maxRelative(linearBetas(), float64(tables, 'ddpm.base.betas'))).toBeLessThan(1e-12);
    // Upstream's base tables are those of the 1000-step respacing (betas recomputed from ᾱ).
    const full = ddpmSchedule(1000);
    expect(maxRelative(full.betas, float64(tables, 'ddpm.base.betas'))).toBeLessThan(1e-14);
    expect(maxRelative(full.alphasCumprod, float64(tables, 'ddpm.base.alphas_cumprod'))).toBeLessThan(1e-14);
  });

  it.each([10, 250])('respacing to %i steps: kept timesteps and every table match upstream', (steps) => {
    const schedule = ddpmSchedule(steps);
    expect(schedule.timestepMap).toEqual(int64(tables, `ddpm.respace${steps}.timestep_map`));
    for (const [field, key] of DDPM_TABLES) {
      expect(maxRelative(schedule[field], float64(tables, `ddpm.respace${steps}.${key}`)), key).toBeLessThan(
        1e-14,
      );
    }
  });

  it('the dit-ddpm10-cfg4 fixture schedule matches too', async () => {
    const fixture = await readTensors('dit-ddpm10-cfg4/schedule.safetensors');
    const schedule = ddpmSchedule(10);
    expect(schedule.timestepMap).toEqual(int64(fixture, 'timestep_map'));
    for (const [field, key] of DDPM_TABLES) {
      expect(maxRelative(schedule[field], float64(fixture, key)), key).toBeLessThan(1e-14);
    }
  });

  it('respaced timesteps are round(k·999/(S−1)) for S = 1 … 1000, and invalid S is refused', () => {
    for (const steps of [1, 2, 3, 7, 50, 100, 249, 250, 333, 999, 1000]) {
      const kept = spaceTimesteps(1000, steps);
      expect(kept).toHaveLength(steps);
      if (steps > 1)
        kept.forEach((t, k) => expect(Math.abs(t - (k * 999) / (steps - 1))).toBeLessThanOrEqual(0.5));
    }
    for (const steps of [0, -1, 1.5, 1001, Number.NaN]) {
      expect(() => spaceTimesteps(1000, steps)).toThrowError(
        expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
      );
    }
  });
});

describe('DPM-Solver (UViT NoiseScheduleVP, float32)', () => {
  const schedule = discreteNoiseSchedule(uvitBetas());

  it('knots t_k = (k+1)/1000 and log α_k = ½·cumsum(log(1 − β)) match upstream', () => {
    expect(maxUlps(schedule.tArray, float32(tables, 'dpm.t_discrete').data)).toBeLessThanOrEqual(1);
    expect(maxUlps(schedule.logAlphaArray, float32(tables, 'dpm.log_alpha_discrete').data)).toBe(0);
  });

  it.each([9, 30])('NFE %i: grid, orders, λ, log α, σ and λ⁻¹ match upstream', (nfe) => {
    const prefix = `dpm.nfe${nfe}.`;
    const plan = dpmSolverPlan(schedule, nfe);
    expect(maxUlps(plan.timesteps, float32(tables, `${prefix}timesteps`).data)).toBeLessThanOrEqual(1);
    expect(plan.steps.map((step) => step.order)).toEqual(int64(tables, `${prefix}orders`));
    expect(dpmSolverOrders(nfe)).toEqual(int64(tables, `${prefix}orders`));

    const grid = Array.from(float32(tables, `${prefix}timesteps`).data);
    // Last-bit differences of float32 exp/log between libms, amplified by log(1 − e^(2 log α)).
    expect(
      maxRelative(
        grid.map((t) => marginalLambda(schedule, t)),
        float32(tables, `${prefix}lambda`).data,
      ),
    ).toBeLessThan(1e-5);
    expect(
      maxUlps(
        grid.map((t) => marginalLogMeanCoeff(schedule, t)),
        float32(tables, `${prefix}log_alpha`).data,
      ),
    ).toBeLessThanOrEqual(4);
    expect(
      maxUlps(
        grid.map((t) => marginalStd(schedule, t)),
        float32(tables, `${prefix}sigma`).data,
      ),
    ).toBeLessThanOrEqual(4);
    const lambdas = Array.from(float32(tables, `${prefix}lambda`).data);
    const inverse = lambdas.map((lambda) => inverseLambda(schedule, lambda));
    const expected = float32(tables, `${prefix}inverse_lambda(lambda)`).data;
    // Absolute in t: upstream's own λ⁻¹(λ(t)) misses t by up to 6e-8 (6.1e-5 on the network's ×1000 scale).
    inverse.forEach((t, i) => expect(Math.abs(t - expected[i]!)).toBeLessThan(1e-7));
  });

  it('per-step s, t, order, r1, r2 match what upstream dpm_solver_update received (uvit-dpm-nfe9-cfg3)', async () => {
    const fixture = await readTensors('uvit-dpm-nfe9-cfg3/schedule.safetensors');
    const plan = dpmSolverPlan(schedule, 9);
    expect(plan.steps.map((step) => step.order)).toEqual(int64(fixture, 'step_order'));
    expect(
      maxUlps(
        plan.steps.map((step) => step.s),
        float32(fixture, 'step_s').data,
      ),
    ).toBe(0);
    expect(
      maxUlps(
        plan.steps.map((step) => step.t),
        float32(fixture, 'step_t').data,
      ),
    ).toBe(0);
    for (const key of ['r1', 'r2'] as const) {
      const expected = float32(fixture, `step_${key}`).data;
      plan.steps.forEach((step, i) => expect(Math.abs(step[key] - expected[i]!)).toBeLessThan(1e-6));
    }
  });

  it('orders sum to the NFE and end as upstream does', () => {
    for (let nfe = 1; nfe <= 60; nfe++) {
      const orders = dpmSolverOrders(nfe);
      expect(orders.reduce((a, b) => a + b, 0)).toBe(nfe);
      expect(orders.slice(0, -2).every((order) => order === 3)).toBe(true);
    }
    expect(() => dpmSolverPlan(schedule, 0)).toThrowError(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
