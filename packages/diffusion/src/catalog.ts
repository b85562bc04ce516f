import { AUTOENCODER_MODELS, knownModel, modelCatalog } from '@dcae/hub';
import type { KnownModel, ModelCatalog } from '@dcae/hub';
import { DIFFUSION_PRESETS } from './presets.js';

/** The Hub org of the released diffusion checkpoints. */
export const DIFFUSION_ORG = 'mit-han-lab';

/**
 * The released diffusion models as catalog entries (combined layout: the DC-AE under `autoencoder.`
 * in the same model.safetensors), derived from {@link DIFFUSION_PRESETS}, the one list of them
 * (docs/ARCHITECTURE.md, "the catalog").
 */
export const DIFFUSION_MODELS: readonly KnownModel[] = /* @__PURE__ */ Object.values(DIFFUSION_PRESETS).map(
  (preset) =>
    knownModel({
      id: `${DIFFUSION_ORG}/${preset.name}`,
      kind: 'diffusion',
      layout: 'combined',
      autoencoder: preset.autoencoder,
      description:
        `${preset.label}${preset.variant === undefined ? '' : ` (${preset.variant})`}, ` +
        `class-conditional ImageNet 512×512, in the latent space of ${preset.autoencoder}`,
    }),
);

/**
 * Every released repo dcae knows: the autoencoders of `@dcae/hub`, then the diffusion models.
 * What `dcae models` lists; pass it as `catalog` to `resolveModel` (the node `loadGenerator` does)
 * so that a released diffusion checkpoint is recognised by its repo id or `model_name`.
 */
export const MODEL_CATALOG: ModelCatalog = /* @__PURE__ */ modelCatalog(AUTOENCODER_MODELS, DIFFUSION_MODELS);
