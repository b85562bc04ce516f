// The catalog functions this package exported before the model sources moved to `@dcae/hub`
// and the diffusion models to `@dcae/diffusion` (docs/ARCHITECTURE.md, "the catalog"). They can
// no longer list the diffusion models: that would make this package import `@dcae/diffusion`,
// which imports it. They go in 0.2.
import { AUTOENCODER_CATALOG, AUTOENCODER_MODELS } from '@dcae/hub';
import type { KnownModel, KnownModelKind, ModelLayout } from '@dcae/hub';

/**
 * @deprecated Since 0.1: the released autoencoders only. Use `AUTOENCODER_MODELS` of `@dcae/hub`,
 * or `MODEL_CATALOG.models` of `@dcae/diffusion` for the diffusion models too.
 */
export const KNOWN_MODELS: readonly KnownModel[] = AUTOENCODER_MODELS;

/**
 * @deprecated Since 0.1: finds released autoencoders only. Use `MODEL_CATALOG.find` of
 * `@dcae/diffusion` (every released repo) or `AUTOENCODER_CATALOG.find` of `@dcae/hub`.
 */
export function findKnownModel(idOrModelName: string): KnownModel | undefined {
  return AUTOENCODER_CATALOG.find(idOrModelName);
}

/**
 * @deprecated Since 0.1: lists released autoencoders only. Use `MODEL_CATALOG.list` of
 * `@dcae/diffusion` (every released repo) or `AUTOENCODER_CATALOG.list` of `@dcae/hub`.
 */
export function listKnownModels(
  filter: { kind?: KnownModelKind; layout?: ModelLayout } = {},
): readonly KnownModel[] {
  return AUTOENCODER_CATALOG.list(filter);
}
