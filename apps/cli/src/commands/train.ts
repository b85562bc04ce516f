import { readFile } from 'node:fs/promises';
import { DcaeError, parseJsonConfig } from '@dcae/core';
import { PHASE_PRESETS, parseLossSpec, parseTrainConfigJson, resolveTrainConfig } from '@dcae/train';
import type { PhaseNumber, TrainConfigOverrides } from '@dcae/train';
import { readPerceptualWeights, trainRun } from '@dcae/train/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { Reporter } from '../reporter.js';
import type { CommandContext } from './shared.js';

export interface TrainOptions {
  readonly model: string;
  readonly data: string;
  readonly out: string;
  readonly steps?: number;
  readonly batch?: number;
  readonly size?: number;
  readonly lr?: number;
  readonly optimizer?: 'adamw' | 'sgd';
  readonly betas?: readonly [number, number];
  readonly weightDecay?: number;
  readonly eps?: number;
  readonly loss?: string;
  readonly trainable?: readonly string[];
  readonly phase?: string;
  readonly config?: string;
  readonly seed?: number;
  /** commander's `--no-augment`: false when given. */
  readonly augment?: boolean;
  readonly evalEvery?: number;
  readonly saveEvery?: number;
  readonly resume?: boolean;
  /** A VGG16/LPIPS safetensors file for the `perceptual` term (docs/training.md, "Losses"). */
  readonly perceptualWeights?: string;
  readonly device: 'cpu' | 'webgpu';
  readonly init?: 'random';
  readonly threads?: number;
  readonly json?: boolean;
  readonly quiet?: boolean;
}

/** `--betas 0.9,0.99`. */
export function parseBetas(value: string): [number, number] {
  const parts = value.split(',').map((v) => Number(v.trim()));
  if (parts.length !== 2 || parts.some((b) => !Number.isFinite(b) || b < 0 || b >= 1)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `--betas must be two numbers in [0, 1) like 0.9,0.999, got "${value}".`,
    );
  }
  return [parts[0]!, parts[1]!];
}

function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  return h > 0
    ? `${h}h${String(m).padStart(2, '0')}m`
    : m > 0
      ? `${m}m${String(s % 60).padStart(2, '0')}s`
      : `${s}s`;
}

/**
 * `dcae train`: the preset of `--phase` (1 by default), then `--config`, then the flags, as one
 * training run (docs/training-loop.md). Progress: a bar with loss, it/s and ETA on a terminal,
 * plain lines otherwise; held-out PSNR/SSIM at each evaluation. Ctrl-C stops after the step in
 * flight, saves `OUT/checkpoint-<step>/` and exits with 130; `--resume` continues from there.
 */
export async function runTrain(options: TrainOptions, { io, signal }: CommandContext): Promise<void> {
  const reporter = new Reporter(io, { json: options.json === true, quiet: options.quiet === true });
  let phase: PhaseNumber = 1;
  let fileOverrides: TrainConfigOverrides = {};
  if (options.config !== undefined) {
    const text = await readFile(options.config, 'utf8').catch((cause: unknown) => {
      throw new DcaeError('FILE_NOT_FOUND', `--config ${options.config} cannot be read.`, {
        source: options.config,
        cause,
      });
    });
    fileOverrides = parseTrainConfigJson(parseJsonConfig(text, { source: options.config }), options.config);
    if (fileOverrides.phase !== undefined) phase = fileOverrides.phase;
  }
  if (options.phase !== undefined) {
    if (!['1', '2', '3'].includes(options.phase)) {
      throw new DcaeError('INVALID_ARGUMENT', `--phase must be 1, 2 or 3, got "${options.phase}".`);
    }
    phase = Number(options.phase) as PhaseNumber;
  }
  const optimizer = {
    ...(options.optimizer !== undefined ? { kind: options.optimizer } : {}),
    ...(options.betas !== undefined ? { betas: options.betas } : {}),
    ...(options.eps !== undefined ? { eps: options.eps } : {}),
    ...(options.weightDecay !== undefined ? { weightDecay: options.weightDecay } : {}),
  };
  const flags: TrainConfigOverrides = {
    steps: options.steps,
    batch: options.batch,
    size: options.size,
    lr: options.lr,
    seed: options.seed,
    evalEvery: options.evalEvery,
    saveEvery: options.saveEvery,
    ...(options.augment === false ? { augment: false } : {}),
    ...(options.loss !== undefined ? { loss: parseLossSpec(options.loss) } : {}),
    ...(options.trainable !== undefined ? { trainable: options.trainable } : {}),
    ...(Object.keys(optimizer).length > 0
      ? { optimizer: optimizer as TrainConfigOverrides['optimizer'] }
      : {}),
  };
  const config = resolveTrainConfig(PHASE_PRESETS[phase], fileOverrides, flags);
  if (options.perceptualWeights !== undefined && !((config.loss.perceptual ?? 0) > 0)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `--perceptual-weights ${options.perceptualWeights} was given, but the loss has no perceptual term. ` +
        'Add one (e.g. --loss l1+perceptual:0.1) or drop the flag.',
    );
  }
  // Read (and checked strictly) before any training output is written.
  const perceptualWeights =
    options.perceptualWeights !== undefined
      ? await readPerceptualWeights(options.perceptualWeights)
      : undefined;

  // In-process sessions: a step's tensors (weights and optimizer state) are fed every step, and a
  // worker would copy them twice per step. Progress and Ctrl-C are handled between steps.
  const runtime = createNodeRuntime({ devices: [options.device], threads: options.threads });
  const started = performance.now();
  let last = { at: started, step: 0 };
  let rate = 0;
  try {
    const result = await trainRun({
      model: options.model,
      data: options.data,
      out: options.out,
      config,
      ...(options.init ? { init: options.init } : {}),
      resume: options.resume === true,
      ...(perceptualWeights ? { perceptualWeights } : {}),
      ...(options.resume && options.steps !== undefined ? { resumeSteps: options.steps } : {}),
      runtime,
      signal,
      onMessage: (m) => reporter.progress(m),
      onWarning: (m) => reporter.progress(`warning: ${m}`),
      onStep: (record, total) => {
        const now = performance.now();
        if (last.step === 0) last = { at: now - record.ms, step: record.step - 1 };
        const instant = (record.step - last.step) / Math.max(1e-9, (now - last.at) / 1000);
        rate = rate === 0 ? instant : 0.8 * rate + 0.2 * instant;
        last = { at: now, step: record.step };
        reporter.bar(
          'train',
          record.step,
          total,
          'steps',
          `loss ${record.loss.toFixed(4)}, ${rate.toFixed(2)} it/s, ETA ${formatDuration((total - record.step) / rate)}`,
        );
      },
      onEval: (step, e) =>
        reporter.progress(`step ${step}: held-out PSNR ${e.psnr.toFixed(2)} dB, SSIM ${e.ssim.toFixed(4)}`),
    });
    const seconds = (performance.now() - started) / 1000;
    if (result.interrupted) {
      throw new DcaeError(
        'ABORTED',
        `Interrupted at step ${result.step}; ${result.checkpoint !== undefined ? `saved ${result.checkpoint}` : 'no step had completed, nothing saved'}. Continue with the same command plus --resume.`,
        { detail: { saved: result.checkpoint ?? null, step: result.step } },
      );
    }
    reporter.result(
      [
        `trained steps ${result.startStep + 1}–${result.step} in ${formatDuration(seconds)} (${result.msPerStep.toFixed(0)} ms/step)`,
        ...(result.lastEval
          ? [`held-out PSNR ${result.lastEval.psnr.toFixed(2)} dB, SSIM ${result.lastEval.ssim.toFixed(4)}`]
          : []),
        ...(result.skipped > 0 ? [`skipped ${result.skipped} unreadable image(s)`] : []),
        `wrote ${result.final} (diffusers layout), ${options.out}/metrics.jsonl`,
      ].join('\n'),
      {
        command: 'train',
        startStep: result.startStep,
        steps: result.step,
        msPerStep: result.msPerStep,
        final: result.final,
        eval: result.lastEval ?? null,
        skipped: result.skipped,
        trainableTensors: result.trainableKeys.length,
        config,
      },
    );
  } finally {
    await runtime.dispose();
  }
}
