import { parseJsonConfig } from '@dcae/core';
import type { Autoencoder as DcAeAutoencoder, LoadAutoencoderOptions } from './dc-ae/autoencoder.js';
import { loadAutoencoder as loadDcAe } from './dc-ae/autoencoder.js';
import type { ModelFiles } from './model-files.js';
import { CONFIG_FILE } from './model-files.js';
import { isSdVaeConfigJson } from './sd-vae/config.js';
import type { SdVaeAutoencoder } from './sd-vae/autoencoder.js';
import { loadSdVae } from './sd-vae/autoencoder.js';

/**
 * A loaded autoencoder: DC-AE, or the Stable Diffusion VAE (`AutoencoderKL`) as a baseline. Both
 * have the same members; `architecture` tells them apart where the config is needed.
 */
export type Autoencoder = DcAeAutoencoder | SdVaeAutoencoder;

/**
 * Loads a model folder: an `AutoencoderKL` when its config.json says `_class_name:
 * "AutoencoderKL"` (and no DC-AE `config` is given), else a DC-AE (diffusers or original format).
 * Both bind every tensor strictly at load and create sessions on first use.
 */
export async function loadAutoencoder(
  files: ModelFiles,
  options: LoadAutoencoderOptions,
): Promise<Autoencoder> {
  if (options.config === undefined && (await files.list()).includes(CONFIG_FILE)) {
    const source = `${files.name}/${CONFIG_FILE}`;
    const json = parseJsonConfig(await files.readText(CONFIG_FILE), { source });
    if (isSdVaeConfigJson(json)) return loadSdVae(files, json, options);
  }
  return loadDcAe(files, options);
}
