import { parseJsonConfig } from '@dcae/core';
import type { JsonValue } from '@dcae/core';
import { CONFIG_FILE } from './base/checkpoint.js';
import type { DcAeAutoencoder, LoadDcAeOptions } from './dc-ae/load.js';
import { loadDcAe } from './dc-ae/load.js';
import type { ModelFiles } from '@dcae/hub';
import type { SdVaeAutoencoder } from './sd-vae/autoencoder.js';
import { loadSdVae } from './sd-vae/autoencoder.js';
import { isSdVaeConfigJson } from './sd-vae/config.js';

/**
 * A loaded autoencoder of any family this package knows: DC-AE, or the Stable Diffusion VAE
 * (`AutoencoderKL`) as a baseline. All have the same members (`BaseAutoencoder`);
 * `architecture` tells them apart where the config is needed.
 */
export type Autoencoder = DcAeAutoencoder | SdVaeAutoencoder;

/** What `loadAutoencoder` takes: every family's options (DC-AE's `config` override included). */
export type LoadAutoencoderOptions = LoadDcAeOptions;

/**
 * One family: which config.json it claims, and its loader. `loadAutoencoder` asks the families in
 * order; the first that claims the folder's config loads it, else the last (DC-AE, which also
 * reads config-less original-format folders). A new family adds one entry here (see
 * docs/ARCHITECTURE.md).
 */
interface Family {
  readonly architecture: Autoencoder['architecture'];
  claims(json: JsonValue): boolean;
  load(files: ModelFiles, json: JsonValue, options: LoadAutoencoderOptions): Promise<Autoencoder>;
}

const FAMILIES: readonly Family[] = [{ architecture: 'sd-vae', claims: isSdVaeConfigJson, load: loadSdVae }];

/**
 * Loads a model folder with the family its config.json names (an `AutoencoderKL` when it says
 * `_class_name: "AutoencoderKL"` and no DC-AE `config` is given), else as a DC-AE (diffusers or
 * original format). Every family binds each tensor strictly at load and creates sessions on
 * first use.
 */
export async function loadAutoencoder(
  files: ModelFiles,
  options: LoadAutoencoderOptions,
): Promise<Autoencoder> {
  if (options.config === undefined && (await files.list()).includes(CONFIG_FILE)) {
    const source = `${files.name}/${CONFIG_FILE}`;
    const json = parseJsonConfig(await files.readText(CONFIG_FILE), { source });
    const family = FAMILIES.find((f) => f.claims(json));
    if (family !== undefined) return family.load(files, json, options);
  }
  return loadDcAe(files, options);
}
