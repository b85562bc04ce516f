import type { Autoencoder } from '@dcae/autoencoder';
import { openAutoencoder } from '@dcae/autoencoder/node';
import type { ModelFiles } from '@dcae/hub';
import { directoryModelFiles, resolveModel } from '@dcae/hub/node';
import type { ResolvedModel, ResolveModelOptions } from '@dcae/hub/node';
import { MODEL_CATALOG } from '../catalog.js';
import type { Generator, LoadGeneratorOptions } from '../generator.js';
import { loadGenerator as loadFromFiles } from '../generator.js';
import type { CheckpointFiles, DiffusionModel, LoadDiffusionModelOptions } from '../model.js';
import { loadDiffusionModel as loadModelFromFiles, WEIGHTS_FILE } from '../model.js';

/**
 * Loads a diffusion checkpoint from a local folder holding config.json and model.safetensors (a
 * Hugging Face snapshot folder works: symlinks are followed), or from any `CheckpointFiles`.
 */
export function loadDiffusionModel(
  model: string | CheckpointFiles,
  options: LoadDiffusionModelOptions,
): Promise<DiffusionModel> {
  return loadModelFromFiles(typeof model === 'string' ? directoryModelFiles(model) : model, options);
}

export interface OpenGeneratorOptions extends Omit<LoadGeneratorOptions, 'autoencoder'> {
  /**
   * `'auto'` / `'none'` / `ModelFiles` / an `Autoencoder` as in `loadGenerator`, or any other
   * string: a second model source (folder, Hub id, URL) for the autoencoder.
   */
  readonly autoencoder?: string | ModelFiles | Autoencoder;
  /** Hub and URL downloads (endpoint, cache, token, offline, progress); defaults from the environment. */
  readonly hub?: ResolveModelOptions;
}

/**
 * The files of a model source (local folder, Hub id `org/name[@revision]`, https URL) after
 * `resolveModel` from `@dcae/hub/node` downloaded or found them, named as the user wrote them.
 */
export async function resolveModelFiles(
  source: string,
  options: { signal?: AbortSignal; hub?: ResolveModelOptions } = {},
): Promise<{ files: ModelFiles; resolved: ResolvedModel }> {
  // A diffusion checkpoint's weights are model.safetensors whatever its config.json says; the
  // catalog with the diffusion models recognises a released one (unless the caller gives another).
  const resolved = await resolveModel(source, {
    signal: options.signal,
    catalog: MODEL_CATALOG,
    ...options.hub,
    weightsFile: WEIGHTS_FILE,
  });
  return { files: { ...directoryModelFiles(resolved.directory), name: resolved.name }, resolved };
}

/**
 * Loads a generator (backbone and autoencoder, see the main entry's `loadGenerator`) from a model
 * source: a local folder, a Hub id or a URL, resolved by the one resolver every command uses.
 */
export async function loadGenerator(
  source: string | ModelFiles,
  options: OpenGeneratorOptions,
): Promise<Generator> {
  const files = typeof source === 'string' ? (await resolveModelFiles(source, options)).files : source;
  const choice = options.autoencoder;
  let autoencoder: LoadGeneratorOptions['autoencoder'];
  if (typeof choice === 'string' && choice !== 'auto' && choice !== 'none') {
    options.onStage?.('autoencoder');
    autoencoder = await openAutoencoder(choice, {
      runtime: options.runtime,
      signal: options.signal,
      hub: options.hub,
    });
  } else autoencoder = choice;
  try {
    return await loadFromFiles(files, { ...options, autoencoder });
  } catch (error) {
    if (typeof choice === 'string' && isLoaded(autoencoder)) await autoencoder.dispose();
    throw error;
  }
}

function isLoaded(value: LoadGeneratorOptions['autoencoder']): value is Autoencoder {
  return typeof value === 'object' && typeof (value as Autoencoder).decode === 'function';
}
