import type { HostTensor } from '@dcae/core';
import type { RgbImage } from '@dcae/autoencoder';
import { reconstructionMetrics, tensorToImages } from '@dcae/autoencoder';
import type { TrainData } from '../data/types.js';
import type { TrainConfig } from '../phases/presets.js';
import type { DiscriminatorStepResult, StepResult, TrainStepRunner } from '../step/types.js';
import { learningRate } from './schedule.js';

/** One line of metrics.jsonl. */
export interface StepRecord {
  /** Optimizer steps completed (1 after the first step). */
  readonly step: number;
  readonly loss: number;
  readonly lr: number;
  /** Wall time of this step in ms: waiting for the batch (if any) plus the optimizer step. */
  readonly ms: number;
  /** Of `ms`, the time spent waiting for data (0 when prefetching kept up). */
  readonly dataMs: number;
  readonly terms: Readonly<Record<string, number>>;
  readonly gradNorm?: number;
  /** The discriminator step of the GAN term (steps where it is active). */
  readonly discriminator?: DiscriminatorStepResult;
  /** Held-out PSNR (dB) and SSIM, on eval steps. */
  readonly psnr?: number;
  readonly ssim?: number;
}

export interface EvalResult {
  readonly psnr: number;
  readonly ssim: number;
  readonly images: readonly { readonly psnr: number; readonly ssim: number }[];
  readonly originals: readonly RgbImage[];
  readonly reconstructions: readonly RgbImage[];
}

export interface LoopOptions {
  readonly runner: TrainStepRunner;
  readonly data: TrainData;
  readonly config: TrainConfig;
  /** Steps already completed (0, or the step of the checkpoint resumed from). */
  readonly startStep: number;
  readonly signal?: AbortSignal;
  readonly onStep?: (record: StepRecord) => void | Promise<void>;
  /** Called after a step that is a multiple of `saveEvery` (and not the last). */
  readonly onSave?: (step: number, evaluation: EvalResult | undefined) => Promise<void>;
  readonly onEval?: (step: number, evaluation: EvalResult) => void | Promise<void>;
  /** Images per reconstruct call during evaluation. @defaultValue 2 */
  readonly evalBatch?: number;
}

export interface LoopResult {
  /** Steps completed when the loop stopped. */
  readonly step: number;
  /** The loop stopped early because `signal` was aborted (the last step completed is `step`). */
  readonly interrupted: boolean;
  readonly lastEval?: EvalResult;
}

/** PSNR/SSIM of the runner's reconstructions of `images` (uint8 round trip, as `dcae reconstruct`). */
export async function evaluate(
  runner: TrainStepRunner,
  images: readonly RgbImage[],
  batchSize = 2,
  signal?: AbortSignal,
): Promise<EvalResult | undefined> {
  if (images.length === 0) return undefined;
  const reconstructions: RgbImage[] = [];
  for (let i = 0; i < images.length; i += batchSize) {
    signal?.throwIfAborted();
    // Same-size images batch together; others go one by one.
    const group = images.slice(i, i + batchSize);
    const same = group.every((g) => g.width === group[0]!.width && g.height === group[0]!.height);
    for (const part of same ? [group] : group.map((g) => [g])) {
      const out = await runner.reconstruct(imagesToTensor(part));
      reconstructions.push(...tensorToImages(out as HostTensor<'float32'>));
    }
  }
  const m = reconstructionMetrics(images, reconstructions);
  return { psnr: m.psnr, ssim: m.ssim, images: m.images, originals: images, reconstructions };
}

function imagesToTensor(images: readonly RgbImage[]): HostTensor<'float32'> {
  const { width, height } = images[0]!;
  const plane = width * height;
  const out = new Float32Array(images.length * 3 * plane);
  const f32 = Math.fround;
  images.forEach((image, b) => {
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        out[b * 3 * plane + c * plane + i] = f32(f32(f32(image.data[3 * i + c]! / 255) - 0.5) / 0.5);
      }
    }
  });
  return { dtype: 'float32', shape: [images.length, 3, height, width], data: out };
}

/**
 * The training loop: batches are prefetched (the next one is prepared while the current step runs),
 * the learning rate follows warm-up + cosine, every `evalEvery` steps the held-out set is evaluated,
 * every `saveEvery` steps `onSave` writes a checkpoint. An aborted `signal` stops the loop between
 * two steps (a step in flight completes, so the state is always that of a whole step).
 */
export async function runTrainLoop(options: LoopOptions): Promise<LoopResult> {
  const { runner, data, config, signal } = options;
  const total = config.steps;
  let step = options.startStep;
  let lastEval: EvalResult | undefined;
  const schedule = {
    lr: config.lr,
    warmupSteps: config.warmupSteps,
    totalSteps: total,
    minLrRatio: config.minLrRatio,
  };
  const fetch = (s: number): Promise<HostTensor<'float32'>> => {
    const p = data.batch(s);
    p.catch(() => undefined); // awaited below; never an unhandled rejection while a step runs
    return p;
  };
  let next = step < total ? fetch(step) : undefined;
  while (step < total) {
    if (signal?.aborted) return { step, interrupted: true, lastEval };
    const t0 = performance.now();
    const batch = await next!;
    const t1 = performance.now();
    next = step + 1 < total ? fetch(step + 1) : undefined;
    const lr = learningRate(step, schedule);
    const result: StepResult = await runner.step(batch, { lr });
    step++;
    const ms = performance.now() - t0;
    let evaluation: EvalResult | undefined;
    const isEval = (config.evalEvery > 0 && step % config.evalEvery === 0) || step === total;
    if (isEval) {
      evaluation = await evaluate(runner, await data.evalImages(), options.evalBatch ?? 2);
      if (evaluation !== undefined) lastEval = evaluation;
    }
    await options.onStep?.({
      step,
      loss: result.loss,
      lr,
      ms: round(ms),
      dataMs: round(t1 - t0),
      terms: result.terms,
      ...(result.gradNorm !== undefined ? { gradNorm: result.gradNorm } : {}),
      ...(result.discriminator !== undefined ? { discriminator: result.discriminator } : {}),
      ...(evaluation !== undefined ? { psnr: evaluation.psnr, ssim: evaluation.ssim } : {}),
    });
    if (evaluation !== undefined) await options.onEval?.(step, evaluation);
    if (config.saveEvery > 0 && step % config.saveEvery === 0 && step < total) {
      await options.onSave?.(step, evaluation);
    }
  }
  return { step, interrupted: false, lastEval };
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}
