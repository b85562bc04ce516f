/**
 * `@dcae/model-tiny`: a small f32c32 DC-AE trained with dcae's own trainer, shipped as a model
 * folder (diffusers layout: `config.json` + fp16 `diffusion_pytorch_model.safetensors`) so that
 * dcae works offline with a real model. The folder is this package's root; its README.md is the
 * model card (data, compute, curve, held-out numbers) and NOTICE the data licences. See
 * docs/training-loop.md ("The default model").
 *
 * This module only computes paths: it reads nothing and has no side effects.
 */
import { fileURLToPath } from 'node:url';

/** The package name, which the CLI and the playground show for the default model. */
export const MODEL_TINY_NAME = '@dcae/model-tiny';

/** The model folder's files (all shipped in the package). */
export const MODEL_TINY_FILES = {
  config: 'config.json',
  weights: 'diffusion_pytorch_model.safetensors',
  card: 'README.md',
  notice: 'NOTICE',
  dataManifest: 'data-manifest.json',
  heldoutEval: 'eval-heldout.json',
} as const;

/** Held-out photos bundled for the quick start (never trained on; CC0, see NOTICE). */
export const MODEL_TINY_PHOTOS = ['photos/coffee.jpg', 'photos/chelsea.jpg'] as const;

/**
 * The package root as a `file:` URL ending in `/`. This file is `src/index.ts` (sources) or
 * `dist/index.js` (built): both sit one folder below the root.
 */
export const MODEL_TINY_URL: URL = new URL('../', import.meta.url);

/** The model folder on disk: pass it to `openAutoencoder` / `dcae --model`. */
export function modelTinyPath(): string {
  return fileURLToPath(MODEL_TINY_URL).replace(/[\\/]$/, '');
}

/** A file of the package on disk, e.g. `modelTinyFile(MODEL_TINY_FILES.card)`. */
export function modelTinyFile(name: string): string {
  return fileURLToPath(new URL(name, MODEL_TINY_URL));
}
