import { COMBINED_AUTOENCODER_PREFIX } from '@dcae/hub';
import type { ResolvedModel } from '@dcae/hub/node';
import type { DcAeConfig } from '../dc-ae/config.js';
import { DC_AE_PRESETS, isDcAePresetName } from '../dc-ae/presets.js';

/**
 * The `loadAutoencoder` options a resolved model implies beyond its folder: for a released
 * diffusion checkpoint (combined layout, in the catalog), the architecture of its autoencoder and
 * the key prefix of its tensors. Empty for everything else: an unreleased combined checkpoint needs
 * `{ config, keyPrefix: 'autoencoder.' }` from the caller, as its architecture is unknown.
 */
export function autoencoderLoadDefaults(resolved: ResolvedModel): {
  config?: DcAeConfig;
  keyPrefix?: string;
} {
  const known = resolved.known;
  if (resolved.layout !== 'combined' || known?.layout !== 'combined') return {};
  if (!isDcAePresetName(known.autoencoder)) return {};
  return { config: DC_AE_PRESETS[known.autoencoder], keyPrefix: COMBINED_AUTOENCODER_PREFIX };
}
