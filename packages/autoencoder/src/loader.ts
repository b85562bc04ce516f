import { parseJsonConfig } from '@dcae/core';
import type { Autoencoder as DcAeAutoencoder, LoadAutoencoderOptions } from './dc-ae/autoencoder.js';
import { loadAutoencoder as loadDcAe } from './dc-ae/autoencoder.js';
import type { ModelFiles } from './model-files.js';
import { CONFIG_FILE } from './model-files.js';
import { isSdVaeConfigJson } from './sd-vae/config.js';
import type { SdVaeAutoencoder } from './sd-vae/autoencoder.js';
import { loadSdVae } from './sd-vae/autoencoder.js';
import type { TaesanaAutoencoder } from './taesana/autoencoder.js';
import { isTaesanaFolder, loadTaesana } from './taesana/autoencoder.js';

/**
 * A loaded autoencoder: DC-AE, the Stable Diffusion VAE (`AutoencoderKL`) as a baseline, or
 * TAESANA (tiny preview autoencoder for Sana's f32c32 latents). All have the same members;
 * `architecture` tells them apart where the config is needed.
 */
export type Autoencoder = DcAeAutoencoder | SdVaeAutoencoder | TaesanaAutoencoder;

/**
 * Loads a model folder: TAESANA when it holds `taesana_encoder.pth` and/or `taesana_decoder.pth`,
 * an `AutoencoderKL` when its config.json says `_class_name:
 * "AutoencoderKL"` (and no DC-AE `config` is given), else a DC-AE (diffusers or original format).
 * Both bind every tensor strictly at load and create sessions on first use.
 */
export async function loadAutoencoder(
  files: ModelFiles,
  options: LoadAutoencoderOptions,
): Promise<Autoencoder> {
  const names = await files.list();
  // TAESANA ships no config.json upstream: its .pth file names identify it (a descriptor config.json may sit beside them).
  if (options.config === undefined && isTaesanaFolder(names)) return loadTaesana(files, options);
  if (options.config === undefined && names.includes(CONFIG_FILE)) {
    const source = `${files.name}/${CONFIG_FILE}`;
    const json = parseJsonConfig(await files.readText(CONFIG_FILE), { source });
    if (isSdVaeConfigJson(json)) return loadSdVae(files, json, options);
  }
  return loadDcAe(files, options);
}
