import type { DcAeConfig, DcAeStagesConfig } from './config.js';
import { spatialCompressionRatio } from './config.js';
import { planTiledRun } from '../base/tiling.js';
import type { PlanModel, PlanOptions, RunPlan } from '../base/tiling.js';

/**
 * Estimated peak activation memory of one encoder or decoder run on `batch` images of
 * height × width pixels (docs/model-spec.md §8 "Activation memory"): the largest stage working set,
 * channels × pixels at that stage's resolution × live tensors per block (ResBlock: input, conv1
 * and its activation, conv2, plus onnxruntime's scratch; EfficientViT: dominated by GLUMBConv's 8C
 * hidden maps), plus input and output. Calibrated with the `ae-tiling` bench (onnxruntime CPU):
 * the full-width f32c32-in decoder at 1024² peaks about 1.45 GB above its weights against an
 * estimate of 1.36 GB; very narrow models (8 channels) use about 3.5× their estimate, because
 * onnxruntime pads channels to its SIMD block size.
 */
export function estimateActivationBytes(
  config: DcAeConfig,
  part: 'encoder' | 'decoder',
  height: number,
  width: number,
  options: { batch?: number; elementBytes?: number } = {},
): number {
  const stages: DcAeStagesConfig = config[part];
  const pixels = height * width;
  let peak = 0;
  stages.blockOutChannels.forEach((channels, s) => {
    const live = stages.blockTypes[s] === 'EfficientViTBlock' ? LIVE_EVIT : LIVE_RESBLOCK;
    // An empty stage still holds the resampling convs around it at its resolution.
    const factor = stages.layersPerBlock[s]! > 0 ? live : LIVE_RESAMPLE;
    peak = Math.max(peak, (pixels / 4 ** s) * channels * factor);
  });
  const io =
    pixels * config.inChannels + (pixels / spatialCompressionRatio(config) ** 2) * config.latentChannels;
  return (peak + io) * (options.batch ?? 1) * (options.elementBytes ?? 4);
}

/** Live full-size tensors per block (see `estimateActivationBytes`). */
const LIVE_RESBLOCK = 5;
const LIVE_EVIT = 20;
const LIVE_RESAMPLE = 2;

/**
 * Decides how to run `operation` on an NCHW input of `shape` with a DC-AE of `config` (see
 * `planTiledRun` of the base layer, which does the planning on this file's activation estimate).
 */
export function planRun(
  config: DcAeConfig,
  operation: 'encode' | 'decode',
  shape: readonly number[],
  options: PlanOptions = {},
): RunPlan {
  return planTiledRun(dcAePlanModel(config), operation, shape, options);
}

/** The DC-AE's planning figures for `planTiledRun`. */
export function dcAePlanModel(config: DcAeConfig): PlanModel {
  return {
    spatialCompressionRatio: spatialCompressionRatio(config),
    activationBytes: (part, height, width, elementBytes) =>
      estimateActivationBytes(config, part, height, width, { elementBytes }),
  };
}
