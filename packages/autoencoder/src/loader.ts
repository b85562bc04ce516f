import { parseJsonConfig } from '@dcae/core';
import type { JsonValue } from '@dcae/core';
import { CONFIG_FILE } from './base/checkpoint.js';
import type { DcAeAutoencoder, LoadDcAeOptions } from './dc-ae/load.js';
import { loadDcAe } from './dc-ae/load.js';
import type { ModelFiles } from '@dcae/hub';
import type { SdVaeAutoencoder } from './sd-vae/autoencoder.js';
import { loadSdVae } from './sd-vae/autoencoder.js';
import { isSdVaeConfigJson } from './sd-vae/config.js';
import type { TaesanaAutoencoder } from './taesana/autoencoder.js';
import { isTaesanaFolder, loadTaesana } from './taesana/autoencoder.js';

/**
 * A loaded autoencoder of any family this package knows: DC-AE, the Stable Diffusion VAE
 * (`AutoencoderKL`) as a baseline, or TAESANA (tiny preview autoencoder for Sana's f32c32
 * latents). All have the same members (`BaseAutoencoder`);
 * `architecture` tells them apart where the config is needed.
 */
export type Autoencoder = DcAeAutoencoder | SdVaeAutoencoder | TaesanaAutoencoder;

/** What `loadAutoencoder` takes: every family's options (DC-AE's `config` override included). */
export type LoadAutoencoderOptions = LoadDcAeOptions;

/**
 * What a family sees of a folder when `loadAutoencoder` asks whether it is one of its: the parsed
 * config.json (undefined where the folder has none) and the folder's file names.
 */
export interface FolderFacts {
  readonly json: JsonValue | undefined;
  readonly names: readonly string[];
}

/**
 * One family: which folders it claims (by config.json, or by file names where the family ships
 * none, as TAESANA), and its loader. `loadAutoencoder` asks the families in order; the first that
 * claims the folder loads it, else DC-AE (which also reads config-less original-format folders).
 * A new family adds one entry here (see docs/ARCHITECTURE.md).
 */
interface Family {
  readonly architecture: Autoencoder['architecture'];
  claims(folder: FolderFacts): boolean;
  load(files: ModelFiles, folder: FolderFacts, options: LoadAutoencoderOptions): Promise<Autoencoder>;
}

const FAMILIES: readonly Family[] = [
  {
    // TAESANA ships no config.json upstream: its .pth file names identify it (a descriptor config.json may sit beside them).
    architecture: 'taesana',
    claims: ({ names }) => isTaesanaFolder(names),
    load: (files, _folder, options) => loadTaesana(files, options),
  },
  {
    architecture: 'sd-vae',
    claims: ({ json }) => json !== undefined && isSdVaeConfigJson(json),
    load: (files, { json }, options) => loadSdVae(files, json ?? null, options),
  },
];

/**
 * Loads a model folder with the family that claims it: TAESANA when it holds
 * `taesana_encoder.pth` and/or `taesana_decoder.pth`, an `AutoencoderKL` when its config.json says
 * `_class_name: "AutoencoderKL"`, else a DC-AE (diffusers or original format). A DC-AE `config`
 * in the options skips the families. Every family binds each tensor strictly at load and creates
 * sessions on first use.
 */
export async function loadAutoencoder(
  files: ModelFiles,
  options: LoadAutoencoderOptions,
): Promise<Autoencoder> {
  if (options.config === undefined) {
    const names = await files.list();
    const json = names.includes(CONFIG_FILE)
      ? parseJsonConfig(await files.readText(CONFIG_FILE), { source: `${files.name}/${CONFIG_FILE}` })
      : undefined;
    const folder: FolderFacts = { json, names };
    const family = FAMILIES.find((f) => f.claims(folder));
    if (family !== undefined) return family.load(files, folder, options);
  }
  return loadDcAe(files, options);
}
