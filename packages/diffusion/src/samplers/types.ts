/**
 * `ddpm`: improved-DDPM ancestral sampling with learned-range variance (DiT).
 * `dpm-solver`: DPM-Solver "fast", order 3, data prediction (UViT).
 * `heun`: Heun's method on a uniform time grid (USiT, torchdiffeq `heun2`).
 * `dopri5`: adaptive Dormand–Prince 5(4) (USiT, torchdiffeq `dopri5`).
 */
export type SamplerName = 'ddpm' | 'dpm-solver' | 'heun' | 'dopri5';

export const SAMPLER_NAMES: readonly SamplerName[] = ['ddpm', 'dpm-solver', 'heun', 'dopri5'];

/** What a sampler reports after each step. Arrays are the sampler's own; copy them to keep them. */
export interface SamplerStep {
  /** Steps done so far (1 after the first). */
  readonly step: number;
  /** Steps in all, or undefined when the sampler is adaptive. */
  readonly totalSteps: number | undefined;
  /** Share of the trajectory covered, 0 … 1. */
  readonly progress: number;
  /** Network evaluations so far (a guided evaluation counts once). */
  readonly nfe: number;
  /** The state after the step, [B, C, h, w] row-major. */
  readonly x: Float32Array;
  /** The model's estimate of the clean sample made during the step (cheap preview; not the final sample). */
  readonly denoised: Float32Array;
}

/** A sampler run: yields after every step; the last yielded `x` is the sample. */
export type SamplerRun = AsyncGenerator<SamplerStep, void, undefined>;
