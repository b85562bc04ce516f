import { directoryModelFiles } from '@dcae/autoencoder/node';
import type { CheckpointFiles, DiffusionModel, LoadDiffusionModelOptions } from '../model.js';
import { loadDiffusionModel as loadFromFiles } from '../model.js';

/**
 * Loads a diffusion checkpoint from a local folder holding config.json and model.safetensors (a
 * Hugging Face snapshot folder works: symlinks are followed), or from any `CheckpointFiles`.
 */
export function loadDiffusionModel(
  model: string | CheckpointFiles,
  options: LoadDiffusionModelOptions,
): Promise<DiffusionModel> {
  return loadFromFiles(typeof model === 'string' ? directoryModelFiles(model) : model, options);
}
