import { extname } from 'node:path';
import { DcaeError, formatShape } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { fitToMultiple, imageToTensor } from '@dcae/autoencoder';
import type { FitMode, FittedImage, RgbImage } from '@dcae/autoencoder';
import { encodeImage, imageFormatFromPath, readImage } from '@dcae/autoencoder/node';
import { modelFiles } from '../model.js';
import type { CommonOptions, ImageInputOptions } from '../options.js';
import { OutputSet } from '../outputs.js';
import { Reporter } from '../reporter.js';
import type { Io } from '../reporter.js';
import { isSafetensorsPath, readTensorFile } from '../tensor-files.js';

export interface CommandContext {
  readonly io: Io;
  readonly signal: AbortSignal;
}

export function reporterFor(options: CommonOptions, context: CommandContext): Reporter {
  return new Reporter(context.io, { json: options.json === true, quiet: options.quiet === true });
}

/**
 * Runs `work` with an output transaction whose inputs are `inputs` plus the model's files:
 * outputs are committed only when `work` returns, and removed on any error or Ctrl-C.
 */
export async function withOutputs<T>(
  options: CommonOptions,
  inputs: readonly string[],
  signal: AbortSignal,
  work: (outputs: OutputSet) => Promise<T>,
): Promise<T> {
  const outputs = new OutputSet({ force: options.force === true });
  try {
    for (const path of [...inputs, ...(await modelFiles(options.model))]) await outputs.addInput(path);
    const result = await work(outputs);
    signal.throwIfAborted();
    await outputs.commit();
    return result;
  } catch (error) {
    await outputs.rollback();
    throw error;
  }
}

/** `out.png` for one image; `out-0.png`, `out-1.png`, … for a batch. */
export function batchPaths(path: string, count: number): string[] {
  if (count === 1) return [path];
  const ext = extname(path);
  const stem = path.slice(0, path.length - ext.length);
  return Array.from({ length: count }, (_, i) => `${stem}-${i}${ext}`);
}

/** What an output path asks for: a .safetensors tensor file or an image format (else UNSUPPORTED_FORMAT). */
export function outputKind(path: string): 'safetensors' | 'image' {
  if (isSafetensorsPath(path)) return 'safetensors';
  imageFormatFromPath(path);
  return 'image';
}

/** An input file as read: a .safetensors `sample`, or decoded image pixels (fitted once the model is known). */
export type RawInput =
  | { readonly kind: 'tensor'; readonly path: string; readonly sample: HostTensor<'float32'> }
  | { readonly kind: 'image'; readonly path: string; readonly pixels: RgbImage };

export async function readSampleInput(
  path: string,
  options: ImageInputOptions,
  signal: AbortSignal,
): Promise<RawInput> {
  if (isSafetensorsPath(path)) {
    const { tensor } = await readTensorFile(path, 'sample', signal);
    if (tensor.shape[1] !== 3) {
      throw new DcaeError(
        'SHAPE_MISMATCH',
        `${path}: "sample" has shape ${formatShape(tensor.shape)}; expected [N, 3, H, W] (RGB).`,
        { source: path },
      );
    }
    return { kind: 'tensor', path, sample: tensor };
  }
  return { kind: 'image', path, pixels: await readImage(path, { maxPixels: options.maxPixels, signal }) };
}

/** The model input for `input`: images are fitted to `ratio` as --fit says; tensors must already fit. */
export function prepareSample(
  input: RawInput,
  fit: FitMode,
  ratio: number,
): { sample: HostTensor<'float32'>; fitted?: FittedImage } {
  if (input.kind === 'image') {
    const fitted = fitToMultiple(input.pixels, ratio, fit);
    return { sample: imageToTensor(fitted.image), fitted };
  }
  const [, , h, w] = input.sample.shape as [number, number, number, number];
  if (h % ratio !== 0 || w % ratio !== 0) {
    throw new DcaeError(
      'INPUT_SIZE',
      `${input.path}: "sample" is ${w}×${h}, but this model needs both sides to be multiples of ${ratio}; ` +
        '--fit applies to images only, so crop or pad the tensor.',
      { source: input.path },
    );
  }
  return { sample: input.sample };
}

/** Encodes decoded images for `paths` (one per image) and stages them in `outputs`. */
export async function stageImages(
  outputs: OutputSet,
  paths: readonly string[],
  images: readonly RgbImage[],
  signal: AbortSignal,
): Promise<void> {
  for (const [i, path] of paths.entries()) {
    signal.throwIfAborted();
    await outputs.stage(path, await encodeImage(images[i]!, imageFormatFromPath(path)), signal);
  }
}
