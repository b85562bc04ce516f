import { InvalidArgumentError, Option } from 'commander';
import type { Command } from 'commander';
import { FIT_MODES } from '@dcae/autoencoder';
import type { FitMode } from '@dcae/autoencoder';

/** `--device`: a runtime device, or `auto` (the best one this machine has, falling back to cpu). */
export const DEVICE_CHOICES = ['auto', 'cpu', 'cuda', 'webgpu'] as const;
export type DeviceChoice = (typeof DEVICE_CHOICES)[number];

/** Options every command takes. */
export interface CommonOptions {
  readonly model: string;
  readonly device: DeviceChoice;
  readonly threads?: number;
  readonly json?: boolean;
  readonly quiet?: boolean;
  readonly force?: boolean;
  readonly debug?: boolean;
  /** Tiling of encode/decode: auto (tiles only above the memory budget), always, never. */
  readonly tile?: 'auto' | 'always' | 'never';
  readonly tileSize?: number;
  readonly tileOverlap?: number;
  /** How tiles are laid out and blended: dcae's aligned tiles, or diffusers' `enable_tiling()` exactly. */
  readonly tileStyle?: 'aligned' | 'diffusers';
  /**
   * Compute precision; fp16 keeps norm statistics and the attention core in fp32; int8 runs the
   * convolutions in int8 with calibrated ranges (`--quantization`, or the model folder's quantization.json).
   */
  readonly dtype?: 'fp32' | 'fp16' | 'int8';
  /** `--dtype int8`: the quantization.json `dcae quantize` wrote. */
  readonly quantization?: string;
  /** Activation memory one run may use, in MB (decides tiling and batch slicing under `auto`). */
  readonly memoryBudget?: number;
}

export interface ImageInputOptions {
  readonly fit: FitMode;
  readonly maxPixels?: number;
}

export function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}".`);
    }
    return n;
  };
}

/** `--latent-channels <n>` of encode, decode and reconstruct. */
export function latentChannelsOption(): Option {
  return new Option(
    '--latent-channels <n>',
    'use only the first N latent channels (DC-AE 1.5 adaptive channels)',
  ).argParser(positiveInteger('--latent-channels'));
}

/** --device (where sessions run) and --threads (CPU threads per session). */
export function withDeviceOptions(command: Command): Command {
  return command
    .addOption(new Option('--device <device>', 'where to run').choices(DEVICE_CHOICES).default('auto'))
    .option(
      '--threads <n>',
      "CPU threads per session (default: onnxruntime's choice)",
      positiveInteger('--threads'),
    );
}

export function withCommonOptions(
  command: Command,
  {
    output,
    model = 'model folder (diffusers or original format), Hub id org/name[@revision] (see `dcae models`), or https URL',
    tiling = false,
    dtype = false,
    force = 'overwrite existing output files',
    defaultModel = false,
  }: {
    output: boolean;
    model?: string;
    /** `--model` may be left out: the bundled default model (`@dcae/model-tiny`) runs, see default-model.ts. */
    defaultModel?: boolean;
    /** The help of --force. */
    force?: string;
    /** The command runs the autoencoder on images: --tile, --tile-size, --tile-overlap, --tile-style, --memory-budget. */
    tiling?: boolean;
    /** The command builds graphs whose precision --dtype chooses. */
    dtype?: boolean;
  },
): Command {
  if (defaultModel)
    command.option(
      '-m, --model <model>',
      `${model} (default: the bundled @dcae/model-tiny, a small DC-AE trained by dcae)`,
    );
  else command.requiredOption('-m, --model <model>', model);
  withDeviceOptions(command)
    .option('--json', 'print the result as one JSON object on stdout')
    .option('-q, --quiet', 'no progress messages on stderr')
    .option('--debug', 'print stack traces and causes on errors');
  if (tiling) withTilingOptions(command);
  if (dtype)
    command
      .addOption(
        new Option('--dtype <dtype>', 'compute precision (int8: calibrated, see `dcae quantize`)')
          .choices(['fp32', 'fp16', 'int8'])
          .default('fp32'),
      )
      .option(
        '--quantization <file>',
        "--dtype int8: the quantization.json written by `dcae quantize` (default: the model folder's)",
      );
  if (output) command.option('-f, --force', force);
  return command;
}

function withTilingOptions(command: Command): Command {
  return command
    .addOption(
      new Option('--tile <mode>', 'tiled encode/decode: auto (only above --memory-budget), always, never')
        .choices(['auto', 'always', 'never'])
        .default('auto'),
    )
    .option(
      '--tile-size <px>',
      'tile side in pixels (implies tiling; default 512)',
      positiveInteger('--tile-size'),
    )
    .option(
      '--tile-overlap <px>',
      'overlap between tiles in pixels (implies tiling; default 64, at most --tile-size minus the compression ratio)',
      nonNegativeInteger('--tile-overlap'),
    )
    .addOption(
      new Option(
        '--tile-style <style>',
        "aligned: full-size tiles, stride a multiple of the compression ratio (dcae's default); diffusers: exactly AutoencoderDC.enable_tiling() (short edge tiles)",
      )
        .choices(['aligned', 'diffusers'])
        .default('aligned'),
    )
    .option(
      '--memory-budget <MB>',
      'activation memory one run may use (default 4096); bigger images are tiled, batches sliced',
      positiveInteger('--memory-budget'),
    );
}

export function withImageInputOptions(command: Command, defaultFit: FitMode): Command {
  return command
    .addOption(
      new Option('--fit <mode>', 'image sides not a multiple of the compression ratio: crop, pad or error')
        .choices(FIT_MODES)
        .default(defaultFit),
    )
    .option(
      '--max-pixels <n>',
      'refuse images with more pixels than this (default: 8192×8192)',
      positiveInteger('--max-pixels'),
    );
}

/** `--size WxH`, width first as everywhere dcae prints sizes (or a single number for a square). */
export function parseSize(value: string): { height: number; width: number } {
  const match = /^\s*(\d+)\s*(?:[x×X*]\s*(\d+))?\s*$/.exec(value);
  const width = Number(match?.[1]);
  const height = Number(match?.[2] ?? match?.[1]);
  if (
    !match ||
    !(height >= 1) ||
    !(width >= 1) ||
    !Number.isSafeInteger(height) ||
    !Number.isSafeInteger(width)
  ) {
    throw new InvalidArgumentError(`--size must look like 768x512 (width x height) or 512, got "${value}".`);
  }
  return { height, width };
}

/** A finite number ≥ 0 (e.g. `--cfg`). */
export function nonNegativeNumber(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n < 0) {
      throw new InvalidArgumentError(`${name} must be a finite number ≥ 0, got "${value}".`);
    }
    return n;
  };
}

/** An integer 0 … 2^53 − 1 (e.g. `--seed`). */
export function nonNegativeInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n)) {
      throw new InvalidArgumentError(`${name} must be an integer from 0 to 2^53 − 1, got "${value}".`);
    }
    return n;
  };
}

/** ImageNet classes: `--class 207`, repeatable, or several at once as `--class 207,360`. */
export function classList(value: string, previous: readonly number[] = []): number[] {
  const ids = value.split(',').map((id) => id.trim());
  if (ids.some((id) => !/^\d+$/.test(id) || Number(id) > 999)) {
    throw new InvalidArgumentError(
      `--class takes ImageNet class ids 0…999 (several separated by commas), got "${value}".`,
    );
  }
  return [...previous, ...ids.map(Number)];
}
