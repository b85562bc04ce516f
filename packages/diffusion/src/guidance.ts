import type { HostTensor } from '@dcae/core';
import type { DiffusionModel } from './model.js';
import type { DdpmModel } from './samplers/ddpm.js';
import type { NoisePrediction } from './samplers/dpm-solver.js';
import type { VelocityModel } from './samplers/heun.js';
import { f32 } from './schedules/float32.js';

/**
 * Classifier-free guidance the way each upstream model does it. A scale of exactly 1 is the
 * conditional prediction, so the unconditional pass is skipped.
 */
export interface Conditioning {
  readonly model: DiffusionModel;
  /** Class labels of the B samples. */
  readonly labels: readonly number[];
  readonly scale: number;
  readonly signal?: AbortSignal | undefined;
}

/** Runs the network on `x` (B or 2B samples) at one network time for every sample. */
async function run(
  { model, signal }: Conditioning,
  x: Float32Array,
  time: number,
  labels: readonly number[],
): Promise<Float32Array> {
  const [c, h, w] = model.latentShape;
  const latents: HostTensor<'float32'> = { dtype: 'float32', shape: [labels.length, c, h, w], data: x };
  const times = new Float32Array(labels.length).fill(time);
  return (await model.forward(latents, times, labels, signal ? { signal } : {})).data;
}

/** [x; x] with labels [y; null], the doubled batch of upstream `forward_with_cfg`. */
async function runBatched(conditioning: Conditioning, x: Float32Array, time: number) {
  const { labels, model } = conditioning;
  const doubled = new Float32Array(2 * x.length);
  doubled.set(x);
  doubled.set(x, x.length);
  const nulls = labels.map(() => model.config.numClasses);
  const out = await run(conditioning, doubled, time, [...labels, ...nulls]);
  const half = out.length / 2;
  return { cond: out.subarray(0, half), uncond: out.subarray(half) };
}

/** u + s·(c − u), float32. */
function guide(cond: Float32Array, uncond: Float32Array, scale: number): Float32Array {
  const s = f32(scale);
  return cond.map((ci, i) => uncond[i]! + f32(s * f32(ci - uncond[i]!)));
}

/**
 * DiT `forward_with_cfg` feeding `p_sample`: one batched pass; ε = ε_u + s·(ε_c − ε_u) on the ε
 * channels only; the variance value comes from the conditional half (the half that is returned).
 */
export function ditGuidedPrediction(conditioning: Conditioning): DdpmModel {
  const { model, scale } = conditioning;
  const perSample = model.latentShape[0] * model.latentShape[1] * model.latentShape[2];
  // Network output per sample: [ε (C channels), v (C channels)].
  const channels = (out: Float32Array, part: 0 | 1) => {
    const result = new Float32Array(out.length / 2);
    for (let n = 0; n < result.length / perSample; n++) {
      const start = (2 * n + part) * perSample;
      result.set(out.subarray(start, start + perSample), n * perSample);
    }
    return result;
  };
  return async (x, modelTime) => {
    if (scale === 1) {
      const out = await run(conditioning, x, modelTime, conditioning.labels);
      return { eps: channels(out, 0), v: channels(out, 1) };
    }
    const { cond, uncond } = await runBatched(conditioning, x, modelTime);
    return { eps: guide(channels(cond, 0), channels(uncond, 0), scale), v: channels(cond, 1) };
  };
}

/**
 * UViT's DPM-Solver model function: separate conditional and unconditional passes (batch B each);
 * ε = ε_c + (s − 1)·(ε_c − ε_u).
 */
export function uvitGuidedNoise(conditioning: Conditioning): NoisePrediction {
  const { model, labels, scale } = conditioning;
  const nulls = labels.map(() => model.config.numClasses);
  const excess = f32(scale - 1);
  return async (x, modelTime) => {
    const cond = await run(conditioning, x, modelTime, labels);
    if (scale === 1) return cond;
    const uncond = await run(conditioning, x, modelTime, nulls);
    return cond.map((ci, i) => ci + f32(excess * f32(ci - uncond[i]!)));
  };
}

/** USiT (`forward_with_cfg` in the SiT ODE): one batched pass; v = v_u + s·(v_c − v_u) on all channels. */
export function usitGuidedVelocity(conditioning: Conditioning): VelocityModel {
  return async (x, t) => {
    if (conditioning.scale === 1) return run(conditioning, x, t, conditioning.labels);
    const { cond, uncond } = await runBatched(conditioning, x, t);
    return guide(cond, uncond, conditioning.scale);
  };
}
