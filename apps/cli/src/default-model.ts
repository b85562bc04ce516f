import { DcaeError } from '@dcae/core';
import { MODEL_TINY_FILES, MODEL_TINY_NAME, modelTinyFile, modelTinyPath } from '@dcae/model-tiny';
import type { Io } from './reporter.js';

/**
 * The model used when `--model` is left out: `@dcae/model-tiny`, the small f32c32 DC-AE that dcae
 * trained itself and ships as a package, so every autoencoder command works offline with real
 * weights (docs/training-loop.md, "The default model"). The random-weight folders in `fixtures/`
 * are for tests only and never a default.
 */
export const DEFAULT_MODEL_NAME = MODEL_TINY_NAME;

/** The default model's folder on disk. */
export function defaultModelPath(): string {
  return modelTinyPath();
}

/** The default model's card (README.md: data, compute, curve, held-out numbers). */
export function defaultModelCard(): string {
  return modelTinyFile(MODEL_TINY_FILES.card);
}

/** The one stderr line that says which model runs when `--model` is left out. */
export function defaultModelNotice(): string {
  return (
    `note: no --model given, using the bundled default model ${DEFAULT_MODEL_NAME} (${defaultModelPath()}): ` +
    'a small f32c32 DC-AE trained by dcae itself, blurry and well below the released checkpoints. ' +
    `Its numbers are in its model card, ${defaultModelCard()}. ` +
    'Pass --model for another model (`dcae models` lists them).\n'
  );
}

/**
 * `options` with `model` filled in: as given, or the bundled default (said once on stderr unless
 * `--quiet`).
 */
export function withDefaultModel<T extends { readonly model?: string; readonly quiet?: boolean }>(
  options: T,
  io: Io,
): T & { readonly model: string } {
  if (options.model !== undefined) return options as T & { readonly model: string };
  if (options.quiet !== true) io.stderr.write(defaultModelNotice());
  return { ...options, model: defaultModelPath() };
}

/** `convert --to safetensors` reads a .pth file, which has no default. */
export function requirePthModel(options: { readonly model?: string }): void {
  if (options.model !== undefined) return;
  throw new DcaeError(
    'INVALID_ARGUMENT',
    '`dcae convert --to safetensors` turns a PyTorch .pth file into .safetensors; name it with -m file.pth (there is no default).',
    { hint: { cli: 'dcae convert --to safetensors -m weights.pth -o weights.safetensors' } },
  );
}
