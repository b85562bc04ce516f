import { describe, expect, it } from 'vitest';
import { createRng } from '@dcae/core';
import type { SamplerRun } from '../src/index.js';
import { sampleDdpm } from '../src/samplers/ddpm.js';
import { sampleDopri5 } from '../src/samplers/dopri5.js';
import { dpmSolverPlan, dpmSolverStep, sampleDpmSolver } from '../src/samplers/dpm-solver.js';
import { sampleHeun } from '../src/samplers/heun.js';
import type { DdpmSchedule } from '../src/schedules/gaussian-diffusion.js';
import { ddpmSchedule } from '../src/schedules/gaussian-diffusion.js';
import {
  discreteNoiseSchedule,
  marginalAlpha,
  marginalLambda,
  marginalStd,
  uvitBetas,
} from '../src/schedules/noise-schedule-vp.js';
import { maxAbsDiff } from './fixtures.js';
import type { GaussianData } from './gaussian.js';
import {
  applyInEigenbasis,
  CHANNELS,
  CORRELATED,
  covarianceOf,
  DIAGONAL,
  linearFlowMap,
  maxAbsDifference,
  moments,
  optimalEpsilon,
  optimalVelocity,
  posteriorVarianceOfData,
  vpFlowMap,
} from './gaussian.js';

/**
 * Samplers driven by the exact optimal network for Gaussian data N(μ, Σ), whose answers are known
 * in closed form: the probability-flow ODEs map noise to data by an explicit linear map, and the
 * DDPM reverse transitions are exactly Gaussian. Latents are [1, 3, N]: N independent pixels.
 */

async function final(run: SamplerRun): Promise<{ x: Float32Array; nfe: number }> {
  let result: { x: Float32Array; nfe: number } = { x: new Float32Array(0), nfe: 0 };
  for await (const step of run) result = { x: step.x, nfe: step.nfe };
  return result;
}

/** Worst mean and covariance difference between two sample sets. */
function momentError(a: Float32Array, b: Float32Array): number {
  const [ma, mb] = [moments(a), moments(b)];
  return Math.max(maxAbsDifference(ma.mean, mb.mean), maxAbsDifference(ma.cov, mb.cov));
}

/** Samples of N(shift, Q·diag(g(λ))·Qᵀ) from standard normal noise. */
function gaussianSamples(
  data: GaussianData,
  noise: Float32Array,
  shift: readonly number[],
  variance: (l: number) => number,
) {
  return applyInEigenbasis(data, noise, [0, 0, 0], (l) => Math.sqrt(variance(l)), shift);
}

describe('DDPM ancestral sampling on Gaussian data (Monte Carlo, 8192 samples per channel)', () => {
  const pixels = 8192;
  // 5 standard errors of a sample mean / variance with variance ≤ 1.
  const meanTolerance = 5 * Math.sqrt(1 / pixels);
  const covTolerance = 5 * Math.sqrt(2 / pixels);

  /** Runs `steps` respaced steps from the exact marginal at t = 999 with the exact ε̂ and the chosen variance value. */
  async function runDdpm(steps: number, variance: 'optimal' | 'fixed-small', seed: number) {
    const data = DIAGONAL;
    const rng = createRng(seed);
    const schedule = ddpmSchedule(steps);
    const last = schedule.timestepMap.length - 1;
    const [alphaT, sigmaT] = alphaSigma(schedule, last);
    const x = gaussianSamples(
      data,
      rng.randn([CHANNELS * pixels]).data,
      data.mean.map((m) => m * alphaT),
      (l) => alphaT ** 2 * l + sigmaT ** 2,
    );
    const model = async (xk: Float32Array, modelTime: number) => {
      const k = schedule.timestepMap.indexOf(modelTime);
      const [alpha, sigma] = alphaSigma(schedule, k);
      const v = new Float32Array(xk.length);
      data.eigenvalues.forEach((l, c) =>
        v.fill(
          variance === 'optimal' ? optimalV(schedule, k, l, alpha, sigma) : -1,
          c * pixels,
          (c + 1) * pixels,
        ),
      );
      return { eps: optimalEpsilon(data, xk, alpha, sigma), v };
    };
    const { x: sample } = await final(
      sampleDdpm({ schedule, x, model, noise: () => rng.randn([CHANNELS * pixels]).data }),
    );
    // The last step returns x̂₀ = E[x₀ | x at t = 0], whose covariance is Σ − Var(x₀ | x₀-with-β₀-noise).
    const [alpha0, sigma0] = alphaSigma(schedule, 0);
    const expectedCov = covarianceOf(data, (l) => l - posteriorVarianceOfData(l, alpha0, sigma0));
    const observed = moments(sample);
    return {
      meanError: maxAbsDifference(observed.mean, data.mean),
      covError: maxAbsDifference(observed.cov, expectedCov),
    };
  }

  function alphaSigma(schedule: DdpmSchedule, k: number): [number, number] {
    const alphaCumprod = schedule.alphasCumprod[k]!;
    return [Math.sqrt(alphaCumprod), Math.sqrt(1 - alphaCumprod)];
  }

  /**
   * The variance value v ∈ [−1, 1] that makes the step's variance exactly that of the true reverse
   * transition: posterior variance + coef1²·Var(x₀ | x_t) (inside [P̃, β′] when λ ≤ 1).
   */
  function optimalV(schedule: DdpmSchedule, k: number, l: number, alpha: number, sigma: number): number {
    if (k === 0) return 0; // the last step adds no noise
    const target =
      schedule.posteriorVariance[k]! +
      schedule.posteriorMeanCoef1[k]! ** 2 * posteriorVarianceOfData(l, alpha, sigma);
    const [low, high] = [schedule.posteriorLogVarianceClipped[k]!, schedule.logBetas[k]!];
    return (2 * (Math.log(target) - low)) / (high - low) - 1;
  }

  it.each([10, 50])(
    'with the optimal learned variance, %i steps give the exact mean and covariance',
    async (steps) => {
      const { meanError, covError } = await runDdpm(steps, 'optimal', 11 + steps);
      expect(meanError).toBeLessThan(meanTolerance);
      expect(covError).toBeLessThan(covTolerance);
    },
  );

  it('with the fixed-small variance (v = −1) the variance deficit shrinks as steps grow (10 → 40 → 160)', async () => {
    const errors = [];
    for (const steps of [10, 40, 160]) errors.push((await runDdpm(steps, 'fixed-small', 5)).covError);
    expect(errors[0]).toBeGreaterThan(0.3);
    expect(errors[1]).toBeLessThan(errors[0]! / 2);
    expect(errors[2]).toBeLessThan(errors[1]! / 2);
  });
});

describe('DPM-Solver on Gaussian data (exact ε̂; exact VP flow map)', () => {
  const schedule = discreteNoiseSchedule(uvitBetas());
  const at = (t: number) => ({ alpha: marginalAlpha(schedule, t), sigma: marginalStd(schedule, t) });
  const predictNoise = async (x: Float32Array, modelTime: number) => {
    const { alpha, sigma } = at(modelTime / 1000);
    return optimalEpsilon(CORRELATED, x, alpha, sigma);
  };
  const noise = createRng(21).randn([CHANNELS * 1024]).data;

  it.each([
    [1, 2],
    [2, 3],
    [3, 4],
  ] as const)('an order-%i step has local error O(h^%i)', async (order, power) => {
    const s = 0.5;
    const errors = [];
    for (const dt of [0.16, 0.08]) {
      const t = s - dt;
      const h = marginalLambda(schedule, t) - marginalLambda(schedule, s);
      const ratio = (fraction: number) =>
        (marginalLambda(schedule, s - fraction * dt) - marginalLambda(schedule, s)) / h;
      const step = { order, s, t, r1: order === 2 ? ratio(1 / 2) : ratio(1 / 3), r2: ratio(2 / 3) };
      const xs = vpFlowMap(CORRELATED, noise, at(1), at(s));
      const { x } = await dpmSolverStep(schedule, step, xs, predictNoise);
      errors.push(maxAbsDiff(x, vpFlowMap(CORRELATED, noise, at(1), at(t))));
    }
    // Halving h divides the error by at least 2^(order+1) (less 25 %); a wrong coefficient lowers the order.
    expect(errors[0]! / errors[1]!).toBeGreaterThan(0.75 * 2 ** power);
  });

  it('the sample converges to the exact flow map as NFE grows (9 → 30 → 96), pointwise and in mean/covariance', async () => {
    const exact = vpFlowMap(CORRELATED, noise, at(1), at(0.001));
    const errors = [];
    for (const nfe of [9, 30, 96]) {
      const { x } = await final(
        sampleDpmSolver({ schedule, plan: dpmSolverPlan(schedule, nfe), x: noise, predictNoise }),
      );
      errors.push({ pointwise: maxAbsDiff(x, exact), moments: momentError(x, exact) });
    }
    // Upstream's last step is first order over a λ-interval that shrinks only slowly on the
    // time-uniform grid, which limits the global rate to about 1/NFE.
    expect(errors[1]!.pointwise).toBeLessThan(errors[0]!.pointwise / 3);
    expect(errors[2]!.pointwise).toBeLessThan(errors[1]!.pointwise / 3);
    expect(errors[2]!.pointwise).toBeLessThan(0.03);
    expect(errors[2]!.moments).toBeLessThan(errors[0]!.moments / 10);
  });
});

describe('SiT flow samplers on Gaussian data (exact velocity; x₁ = μ + Σ^½·x₀)', () => {
  const velocity = async (x: Float32Array, t: number) => optimalVelocity(CORRELATED, x, t);
  const noise = createRng(31).randn([CHANNELS * 1024]).data;
  const exact = linearFlowMap(CORRELATED, noise);

  it('the exact map itself reproduces the data mean and covariance (checks the reference)', () => {
    const big = linearFlowMap(CORRELATED, createRng(32).randn([CHANNELS * 16384]).data);
    const observed = moments(big);
    expect(maxAbsDifference(observed.mean, CORRELATED.mean)).toBeLessThan(5 * Math.sqrt(1 / 16384));
    expect(
      maxAbsDifference(
        observed.cov,
        covarianceOf(CORRELATED, (l) => l),
      ),
    ).toBeLessThan(5 * Math.sqrt(2 / 16384));
  });

  it('Heun converges at second order (5 → 10 → 20 → 40 steps), pointwise and in mean/covariance', async () => {
    const errors = [];
    for (const steps of [5, 10, 20, 40]) {
      const { x, nfe } = await final(sampleHeun({ x: noise, velocity, steps }));
      expect(nfe).toBe(2 * steps);
      errors.push({ pointwise: maxAbsDiff(x, exact), moments: momentError(x, exact) });
    }
    for (let i = 1; i < errors.length; i++) {
      expect(errors[i - 1]!.pointwise / errors[i]!.pointwise).toBeGreaterThan(3);
      expect(errors[i - 1]!.pointwise / errors[i]!.pointwise).toBeLessThan(5);
    }
    expect(errors[3]!.moments).toBeLessThan(errors[0]!.moments / 30);
  });

  it('dopri5 meets its tolerance and tightens with it (rtol 1e-3 → 1e-5)', async () => {
    const loose = await final(sampleDopri5({ x: noise, velocity }));
    const tight = await final(sampleDopri5({ x: noise, velocity, rtol: 1e-5, atol: 1e-8 }));
    expect(maxAbsDiff(loose.x, exact)).toBeLessThan(1e-2);
    expect(maxAbsDiff(tight.x, exact)).toBeLessThan(1e-4);
    expect(momentError(tight.x, exact)).toBeLessThan(momentError(loose.x, exact) / 10);
    expect(tight.nfe).toBeGreaterThan(loose.nfe);
  });
});
