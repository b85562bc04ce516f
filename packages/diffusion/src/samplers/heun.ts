import { DcaeError } from '@dcae/core';
import { f32, linspaceFloat32 } from '../schedules/float32.js';
import type { SamplerRun } from './types.js';

/**
 * The SiT flow ODE dx/dt = v̂(x, t) from t = 0 (noise) to t = 1 (data), with the network output read
 * as the velocity (SiT `Linear` path; docs/model-spec.md §4.5.3).
 */
export type VelocityModel = (x: Float32Array, t: number) => Promise<Float32Array>;

/** The clean-sample estimate x + (1 − t)·v (the straight-line extrapolation to t = 1). */
export function flowDenoised(x: Float32Array, t: number, velocity: Float32Array): Float32Array {
  const remaining = f32(1 - t);
  return x.map((xi, i) => xi + f32(remaining * velocity[i]!));
}

/** One Heun step from t0 to t1 (torchdiffeq fixed-grid `heun2`). */
export async function heunStep(
  velocity: VelocityModel,
  t0: number,
  t1: number,
  y: Float32Array,
): Promise<{ x: Float32Array; denoised: Float32Array }> {
  const dt = f32(t1 - t0);
  const k1 = await velocity(y, t0);
  const k2 = await velocity(
    y.map((yi, i) => yi + f32(dt * k1[i]!)),
    f32(t0 + dt),
  );
  const x = y.map((yi, i) => yi + f32(dt * f32(f32(0.5 * k1[i]!) + f32(0.5 * k2[i]!))));
  return { x, denoised: flowDenoised(y, t0, k1) };
}

export interface HeunSamplerOptions {
  /** The noise at t = 0, [B, C, h, w]. */
  readonly x: Float32Array;
  readonly velocity: VelocityModel;
  /** Steps on the grid `linspace(0, 1, steps + 1)` (upstream's `num_inference_steps` = steps + 1 points). */
  readonly steps: number;
}

/** Two evaluations per step; the grid points are hit exactly, so no interpolation is involved. */
export async function* sampleHeun({ x, velocity, steps }: HeunSamplerOptions): SamplerRun {
  if (!Number.isInteger(steps) || steps < 1 || steps > 10_000) {
    throw new DcaeError('INVALID_ARGUMENT', `Heun steps must be an integer in [1, 10000], got ${steps}.`, {
      detail: { steps },
    });
  }
  const grid = linspaceFloat32(0, 1, steps + 1);
  for (let i = 0; i < steps; i++) {
    const result = await heunStep(velocity, grid[i]!, grid[i + 1]!, x);
    x = result.x;
    yield {
      step: i + 1,
      totalSteps: steps,
      progress: grid[i + 1]!,
      nfe: 2 * (i + 1),
      x,
      denoised: result.denoised,
    };
  }
}
