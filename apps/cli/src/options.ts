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
}

export interface ImageInputOptions {
  readonly fit: FitMode;
  readonly maxPixels?: number;
}

function positiveInteger(name: string) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < 1) {
      throw new InvalidArgumentError(`${name} must be a positive integer, got "${value}".`);
    }
    return n;
  };
}

export function withCommonOptions(command: Command, { output }: { output: boolean }): Command {
  command
    .requiredOption(
      '-m, --model <dir>',
      'model folder: config.json + .safetensors weights (diffusers or original format)',
    )
    .addOption(new Option('--device <device>', 'where to run').choices(DEVICE_CHOICES).default('auto'))
    .option(
      '--threads <n>',
      "CPU threads per session (default: onnxruntime's choice)",
      positiveInteger('--threads'),
    )
    .option('--json', 'print the result as one JSON object on stdout')
    .option('-q, --quiet', 'no progress messages on stderr')
    .option('--debug', 'print stack traces and causes on errors');
  if (output) command.option('-f, --force', 'overwrite existing output files');
  return command;
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

/** `--size HxW` (or a single number for a square). */
export function parseSize(value: string): { height: number; width: number } {
  const match = /^\s*(\d+)\s*(?:[x×X*]\s*(\d+))?\s*$/.exec(value);
  const height = Number(match?.[1]);
  const width = Number(match?.[2] ?? match?.[1]);
  if (
    !match ||
    !(height >= 1) ||
    !(width >= 1) ||
    !Number.isSafeInteger(height) ||
    !Number.isSafeInteger(width)
  ) {
    throw new InvalidArgumentError(`--size must look like 512x768 (height x width) or 512, got "${value}".`);
  }
  return { height, width };
}
