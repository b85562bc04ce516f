import { mkdir, readFile, stat } from 'node:fs/promises';
import { appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { writeFileAtomic } from '@dcae/core/node';
import { spatialCompressionRatio } from '@dcae/autoencoder';
import { encodeImage } from '@dcae/autoencoder/node';
import type { TrainData } from '../data/types.js';
import type { TrainConfig } from '../phases/presets.js';
import { validateTrainConfig } from '../phases/presets.js';
import type { DiscriminatorState, OptimizerState, TrainStepOptions, TrainStepRunner } from '../step/types.js';
import { createTrainStepRunner } from '../step/runner.js';
import { matchTrainable } from '../trainer/globs.js';
import { runTrainLoop } from '../trainer/loop.js';
import type { EvalResult, StepRecord } from '../trainer/loop.js';
import { previewGrid } from '../trainer/preview.js';
import {
  checkpointTensors,
  latestCheckpoint,
  loadTrainableModel,
  readDiscriminatorState,
  readOptimizerState,
  readTrainerState,
  saveCheckpoint,
} from './checkpoint.js';
import type { TrainableModel } from './checkpoint.js';
import { openImageFolder } from './image-folder.js';
import { openSampleFile } from './sample-file.js';

export type CreateRunner = (runtime: RuntimeV1, options: TrainStepOptions) => Promise<TrainStepRunner>;

export interface TrainRunOptions {
  /** Model folder, Hub id, or (with `init: 'random'`) a diffusers config.json. */
  readonly model: string;
  /** Image folder or `.safetensors` file with tensor `sample`. */
  readonly data: string;
  /** Output folder: metrics.jsonl, checkpoint-<step>/, final/, preview-<step>.png. */
  readonly out: string;
  readonly config: TrainConfig;
  readonly init?: 'random';
  /** Continue from the latest checkpoint in `out` (its saved config; `steps` may be raised). */
  readonly resume?: boolean;
  /** With `resume`: the new total step count (default: the saved run's). */
  readonly resumeSteps?: number;
  readonly runtime: RuntimeV1;
  /** The step engine. @defaultValue this package's `createTrainStepRunner` */
  readonly createRunner?: CreateRunner;
  readonly signal?: AbortSignal;
  readonly onStep?: (record: StepRecord, total: number) => void;
  readonly onEval?: (step: number, evaluation: EvalResult) => void;
  readonly onMessage?: (message: string) => void;
  readonly onWarning?: (message: string) => void;
  /** Decode threads for image folders (0: on the main thread). */
  readonly workers?: number;
  /** Optional perceptual-net weights passed to the runner. */
  readonly perceptualWeights?: ReadonlyMap<string, HostTensor>;
}

export interface TrainRunResult {
  readonly startStep: number;
  readonly step: number;
  readonly interrupted: boolean;
  /** The checkpoint folder written last. */
  readonly checkpoint?: string;
  readonly final?: string;
  readonly lastEval?: { readonly psnr: number; readonly ssim: number };
  readonly skipped: number;
  readonly trainableKeys: readonly string[];
  /** Mean wall time per step of this run, ms. */
  readonly msPerStep: number;
  readonly data: string;
}

const METRICS_FILE = 'metrics.jsonl';
const MASTER_PREFIX = 'master.';

/** Keys the optimizer may update: every tensor except BatchNorm running statistics and counters. */
export function learnableKeys(weights: ReadonlyMap<string, HostTensor>): string[] {
  return [...weights.keys()].filter(
    (k) => !k.endsWith('.running_mean') && !k.endsWith('.running_var') && !k.endsWith('.num_batches_tracked'),
  );
}

async function openData(path: string, config: TrainConfig, options: TrainRunOptions): Promise<TrainData> {
  if (path.toLowerCase().endsWith('.safetensors')) {
    return openSampleFile(path, { batch: config.batch, evalData: config.evalData });
  }
  return openImageFolder(path, {
    batch: config.batch,
    size: config.size,
    augment: config.augment,
    multiScale: config.multiScale,
    seed: config.seed,
    heldOut: config.heldOut,
    evalSize: config.evalSize,
    evalDir: config.evalData,
    workers: options.workers,
    onWarning: options.onWarning,
  });
}

/**
 * Runs (or resumes) a training run: loads the model and data, builds the step runner, trains
 * `config.steps` steps with evaluation, previews and checkpoints, and writes `final/`. See
 * docs/training-loop.md for the output layout. On an aborted signal the loop stops after the step in
 * flight, saves `checkpoint-<step>/` and resolves with `interrupted: true`.
 */
export async function trainRun(options: TrainRunOptions): Promise<TrainRunResult> {
  const { out, runtime, signal } = options;
  let config = options.config;
  let model: TrainableModel;
  let startStep = 0;
  let optimizerState: OptimizerState | undefined;
  let discriminatorState: DiscriminatorState | undefined;
  const say = (m: string): void => options.onMessage?.(m);

  const metricsPath = join(out, METRICS_FILE);
  const resumeFrom = options.resume ? await latestCheckpoint(out) : undefined;
  if (resumeFrom !== undefined) {
    const state = await readTrainerState(resumeFrom.directory);
    const saved = state.config as TrainConfig;
    config = { ...saved, steps: options.resumeSteps ?? saved.steps };
    validateTrainConfig(config, `${resumeFrom.directory}/trainer_state.json`);
    startStep = Number(state.step);
    model = inKeyOrder(await loadTrainableModel(resumeFrom.directory), state.keyOrder);
    const savedOpt = await readOptimizerState(resumeFrom.directory);
    if (savedOpt !== undefined) {
      const tensors = new Map<string, HostTensor>();
      const weights = new Map(model.weights);
      for (const [k, t] of savedOpt.tensors) {
        if (k.startsWith(MASTER_PREFIX)) weights.set(k.slice(MASTER_PREFIX.length), t);
        else tensors.set(k, t);
      }
      optimizerState = { step: savedOpt.step, tensors };
      model = { ...model, weights };
    }
    discriminatorState = await readDiscriminatorState(resumeFrom.directory);
    if ((config.loss.gan ?? 0) > 0 && discriminatorState === undefined)
      throw new DcaeError(
        'WEIGHTS_MISMATCH',
        `${resumeFrom.directory} has no discriminator.safetensors, but its run has a gan term; it cannot be resumed exactly. Start a new run with --model ${resumeFrom.directory}.`,
        { source: resumeFrom.directory },
      );
    say(`resuming from ${resumeFrom.directory} at step ${startStep}`);
  } else {
    if (options.resume) say(`--resume: no checkpoint in ${out} yet; starting at step 0`);
    else if (await stat(metricsPath).catch(() => undefined)) {
      throw new DcaeError(
        'OUTPUT_EXISTS',
        `${out} already holds a training run (${METRICS_FILE}); pass --resume to continue it, or choose another --out.`,
        { source: out },
      );
    }
    model = await loadTrainableModel(options.model, {
      init: options.init,
      seed: config.seed,
      residualInitScale: config.residualInitScale,
    });
  }

  const ratio = spatialCompressionRatio(model.config);
  const trainableKeys = matchTrainable(learnableKeys(model.weights), config.trainable);
  const data = await openData(options.data, config, options);
  try {
    if (data.count === 0)
      throw new DcaeError('DATA_EMPTY', `--data ${options.data} holds no training samples.`);
    const first = await data.batch(startStep, signal);
    const [, , height, width] = first.shape as [number, number, number, number];
    if (height % ratio !== 0 || width % ratio !== 0) {
      throw new DcaeError(
        'INPUT_SIZE',
        `Training crops are ${width}×${height}, but this model needs sides that are multiples of ${ratio}; use --size ${Math.max(ratio, Math.round(height / ratio) * ratio)}.`,
        { detail: { size: height, ratio } },
      );
    }
    say(`data: ${data.description}`);
    say(
      `model: ${model.name}; ${trainableKeys.length} of ${model.weights.size} tensors trainable; batch ${config.batch} × ${width}×${height}`,
    );
    const runner = await (options.createRunner ?? createTrainStepRunner)(runtime, {
      weights: model.weights,
      config: model.config,
      batch: config.batch,
      height,
      width,
      loss: config.loss,
      trainable: trainableKeys,
      optimizer: config.optimizer,
      ...(options.perceptualWeights ? { perceptualWeights: options.perceptualWeights } : {}),
      ...((config.loss.gan ?? 0) > 0
        ? {
            discriminator: {
              ...(config.discriminator ? { spec: config.discriminator } : {}),
              seed: config.seed,
            },
          }
        : {}),
    });
    try {
      if (optimizerState !== undefined) runner.restoreOptimizerState(optimizerState);
      if (discriminatorState !== undefined && (config.loss.gan ?? 0) > 0) {
        if (!runner.restoreDiscriminatorState)
          throw new DcaeError(
            'UNSUPPORTED',
            'This step runner cannot restore a discriminator; resume needs one.',
          );
        runner.restoreDiscriminatorState(discriminatorState);
      }
      await mkdir(out, { recursive: true });
      await truncateMetrics(metricsPath, startStep);

      const stateOf = (step: number, evaluation: EvalResult | undefined): Record<string, unknown> => ({
        format: 'dcae-train-state',
        version: 1,
        step,
        config,
        model: { source: options.model, name: model.name, init: options.init ?? null },
        data: { source: options.data, description: data.description, count: data.count },
        trainableKeys: trainableKeys.length,
        // The runner sees the weights in the input's key order; a resumed run restores it.
        keyOrder: [...model.original.keys()],
        skippedImages: data.skipped,
        ...(evaluation ? { eval: { psnr: evaluation.psnr, ssim: evaluation.ssim } } : {}),
      });
      const save = async (dir: string, step: number, evaluation: EvalResult | undefined): Promise<string> => {
        const current = runner.weights();
        const tensors = checkpointTensors(model, current, runner.trainableKeys);
        const opt = runner.optimizerState();
        const optTensors = new Map(opt.tensors);
        // Trainable tensors stored in a lower precision keep their float32 master copy beside the
        // optimizer state, so a resumed run continues the exact trajectory.
        for (const key of runner.trainableKeys) {
          if (model.original.get(key)?.dtype !== 'float32')
            optTensors.set(MASTER_PREFIX + key, current.get(key)!);
        }
        const path = join(out, dir);
        const discriminator = runner.discriminatorState?.();
        await saveCheckpoint(path, {
          model,
          tensors,
          optimizer: { step: opt.step, tensors: optTensors },
          trainerState: stateOf(step, evaluation),
          ...(discriminator ? { discriminator } : {}),
        });
        return path;
      };

      let checkpoint: string | undefined;
      let lastEval: EvalResult | undefined;
      const times: number[] = [];
      const result = await runTrainLoop({
        runner,
        data: {
          ...data,
          batch: (s, sig) => (s === startStep ? Promise.resolve(first) : data.batch(s, sig)),
          evalImages: (sig) => data.evalImages(sig),
          get skipped() {
            return data.skipped;
          },
        },
        config,
        startStep,
        signal,
        onStep: async (record) => {
          times.push(record.ms);
          const { terms, discriminator, ...rest } = record;
          const line = {
            ...rest,
            ...Object.fromEntries(Object.entries(terms).map(([k, v]) => [`loss_${k}`, v])),
            ...(discriminator
              ? {
                  d_loss: discriminator.loss,
                  d_real: discriminator.real,
                  d_fake: discriminator.fake,
                  d_gradNorm: discriminator.gradNorm,
                }
              : {}),
          };
          await appendFile(metricsPath, `${JSON.stringify(line)}\n`);
          options.onStep?.(record, config.steps);
        },
        onEval: async (step, evaluation) => {
          lastEval = evaluation;
          const grid = previewGrid(evaluation.originals.slice(0, 8), evaluation.reconstructions.slice(0, 8));
          await writeFileAtomic(join(out, `preview-${step}.png`), await encodeImage(grid, 'png'), {
            overwrite: true,
          });
          options.onEval?.(step, evaluation);
        },
        onSave: async (step, evaluation) => {
          checkpoint = await save(`checkpoint-${step}`, step, evaluation ?? lastEval);
          say(`saved ${checkpoint}`);
        },
      });
      let final: string | undefined;
      if (result.interrupted) {
        if (result.step > startStep && checkpoint !== join(out, `checkpoint-${result.step}`)) {
          checkpoint = await save(`checkpoint-${result.step}`, result.step, lastEval);
        }
      } else {
        final = await save('final', result.step, lastEval);
        if (config.saveEvery > 0 && result.step % config.saveEvery === 0)
          checkpoint = await save(`checkpoint-${result.step}`, result.step, lastEval);
      }
      return {
        startStep,
        step: result.step,
        interrupted: result.interrupted,
        ...(checkpoint !== undefined ? { checkpoint } : {}),
        ...(final !== undefined ? { final } : {}),
        ...(lastEval !== undefined ? { lastEval: { psnr: lastEval.psnr, ssim: lastEval.ssim } } : {}),
        skipped: data.skipped,
        trainableKeys: runner.trainableKeys,
        msPerStep: times.length > 0 ? times.reduce((a, b) => a + b, 0) / times.length : 0,
        data: data.description,
      };
    } finally {
      await runner.dispose();
    }
  } finally {
    await data.close();
  }
}

/** The model's maps in the key order a run started with (the safetensors writer sorts keys). */
function inKeyOrder(model: TrainableModel, order: unknown): TrainableModel {
  if (
    !Array.isArray(order) ||
    order.length !== model.original.size ||
    !order.every((k) => model.original.has(k as string))
  ) {
    return model;
  }
  const keys = order as string[];
  return {
    ...model,
    original: new Map(keys.map((k) => [k, model.original.get(k)!])),
    weights: new Map(keys.map((k) => [k, model.weights.get(k)!])),
  };
}

/** Keeps the metrics lines of steps ≤ `step` (a resumed run rewrites what came after its checkpoint). */
async function truncateMetrics(path: string, step: number): Promise<void> {
  const text = await readFile(path, 'utf8').catch(() => undefined);
  if (text === undefined) return;
  const kept = text
    .split('\n')
    .filter((line) => line.trim() !== '')
    .filter((line) => {
      try {
        return (JSON.parse(line) as { step: number }).step <= step;
      } catch {
        return false;
      }
    });
  await writeFileAtomic(path, new TextEncoder().encode(kept.map((l) => `${l}\n`).join('')), {
    overwrite: true,
  });
}
