import { DcaeError } from '@dcae/core';

/**
 * The model catalog: the released DC-AE repos on the Hugging Face Hub, as data. It names each
 * repo's autoencoder architecture and the few facts listings print. This package holds the shape
 * of an entry, the released autoencoders ({@link AUTOENCODER_MODELS}) and {@link modelCatalog},
 * which composes lists; the released diffusion models are listed once, by `@dcae/diffusion`
 * (`DIFFUSION_MODELS`, derived from its presets), whose `MODEL_CATALOG` composes both
 * (docs/ARCHITECTURE.md, "the catalog"). The architectures live in `@dcae/autoencoder`, whose
 * tests check these facts against its presets.
 */

/** The DC-AE architectures of the released repos (names of `@dcae/autoencoder`'s presets). */
export type CatalogAutoencoder =
  | 'dc-ae-f32c32-in-1.0'
  | 'dc-ae-f64c128-in-1.0'
  | 'dc-ae-f128c512-in-1.0'
  | 'dc-ae-f32c32-mix-1.0'
  | 'dc-ae-f64c128-mix-1.0'
  | 'dc-ae-f128c512-mix-1.0'
  | 'dc-ae-f32c32-sana-1.0'
  | 'dc-ae-f32c32-sana-1.1'
  | 'dc-ae-f32c32-in-1.0-256px'
  | 'dc-ae-f32c128-1.5'
  | 'dc-ae-f64c128-1.5';

/** f, latent channels and published scaling factor of each architecture (docs/ARCHITECTURE.md, catalog). */
export const CATALOG_AUTOENCODER_FACTS: Readonly<
  Record<CatalogAutoencoder, { f: number; c: number; scalingFactor: number | undefined }>
> = {
  'dc-ae-f32c32-in-1.0': { f: 32, c: 32, scalingFactor: 0.3189 },
  'dc-ae-f64c128-in-1.0': { f: 64, c: 128, scalingFactor: 0.2889 },
  'dc-ae-f128c512-in-1.0': { f: 128, c: 512, scalingFactor: 0.4883 },
  'dc-ae-f32c32-mix-1.0': { f: 32, c: 32, scalingFactor: 0.4552 },
  'dc-ae-f64c128-mix-1.0': { f: 64, c: 128, scalingFactor: 0.4538 },
  'dc-ae-f128c512-mix-1.0': { f: 128, c: 512, scalingFactor: 0.362 },
  'dc-ae-f32c32-sana-1.0': { f: 32, c: 32, scalingFactor: 0.41407 },
  'dc-ae-f32c32-sana-1.1': { f: 32, c: 32, scalingFactor: 0.41407 },
  'dc-ae-f32c32-in-1.0-256px': { f: 32, c: 32, scalingFactor: undefined },
  // DC-AE 1.5 (docs/dc-ae-1.5.md): none published for f32c128; 0.5935 from DC-Gen's c2i model zoo.
  'dc-ae-f32c128-1.5': { f: 32, c: 128, scalingFactor: undefined },
  'dc-ae-f64c128-1.5': { f: 64, c: 128, scalingFactor: 0.5935 },
};

/** What a released repo holds. */
export type KnownModelKind = 'autoencoder' | 'diffusion';

/**
 * How the repo's files are laid out: `diffusers` (config.json of an `AutoencoderDC` +
 * `diffusion_pytorch_model.safetensors`), `original` (efficientvit: config.json `{"model_name"}` +
 * `model.safetensors`), or `combined` (a diffusion checkpoint: config.json `{"model_name"}` + one
 * `model.safetensors` with the DC-AE under `autoencoder.` and the backbone under `diffusion_model.`).
 */
export type ModelLayout = 'diffusers' | 'original' | 'combined';

/** One released DC-AE repo on the Hugging Face Hub (docs/model-spec.md §1.1 and §4.1). */
export interface KnownModel {
  /** Hub repo id, e.g. `mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers`. */
  readonly id: string;
  readonly kind: KnownModelKind;
  readonly layout: ModelLayout;
  /** The files a loader needs, config.json first. */
  readonly files: readonly string[];
  /** The DC-AE architecture: the model's own, or the one a diffusion model samples in. */
  readonly autoencoder: CatalogAutoencoder;
  /** f: H×W images have H/f × W/f latents. */
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  /** Diffusion sees `latent × scalingFactor`; undefined where none is published. */
  readonly scalingFactor: number | undefined;
  /** One line for listings. */
  readonly description: string;
}

/** The key prefix of the DC-AE tensors inside a combined diffusion checkpoint. */
export const COMBINED_AUTOENCODER_PREFIX = 'autoencoder.';

const ORG = 'mit-han-lab';
const FILES: Readonly<Record<ModelLayout, readonly string[]>> = {
  diffusers: ['config.json', 'diffusion_pytorch_model.safetensors'],
  original: ['config.json', 'model.safetensors'],
  combined: ['config.json', 'model.safetensors'],
};

/** What a catalog entry is made from; {@link knownModel} adds the files and the architecture's facts. */
export interface KnownModelSpec {
  /** Hub repo id `org/name`. */
  readonly id: string;
  readonly kind: KnownModelKind;
  readonly layout: ModelLayout;
  readonly autoencoder: CatalogAutoencoder;
  readonly description: string;
}

/** A catalog entry: the spec with the layout's files and the f, c and scaling factor of its autoencoder. */
export function knownModel(spec: KnownModelSpec): KnownModel {
  const facts = CATALOG_AUTOENCODER_FACTS[spec.autoencoder];
  return {
    id: spec.id,
    kind: spec.kind,
    layout: spec.layout,
    files: FILES[spec.layout],
    autoencoder: spec.autoencoder,
    spatialCompressionRatio: facts.f,
    latentChannels: facts.c,
    scalingFactor: facts.scalingFactor,
    description: spec.description,
  };
}

function entry(
  name: string,
  layout: ModelLayout,
  autoencoder: CatalogAutoencoder,
  description: string,
  org = ORG,
): KnownModel {
  return knownModel({ id: `${org}/${name}`, kind: 'autoencoder', layout, autoencoder, description });
}

/** The released autoencoders with their training data (docs/model-spec.md §1.1); each in both formats. */
const AUTOENCODERS: readonly [CatalogAutoencoder, string][] = [
  ['dc-ae-f32c32-in-1.0', 'ImageNet'],
  ['dc-ae-f64c128-in-1.0', 'ImageNet'],
  ['dc-ae-f128c512-in-1.0', 'ImageNet'],
  ['dc-ae-f32c32-mix-1.0', 'a mixture of datasets'],
  ['dc-ae-f64c128-mix-1.0', 'a mixture of datasets'],
  ['dc-ae-f128c512-mix-1.0', 'a mixture of datasets'],
  ['dc-ae-f32c32-sana-1.0', 'a mixture of datasets; the SANA text-to-image autoencoder'],
  ['dc-ae-f32c32-sana-1.1', 'a mixture of datasets; sana-1.0 encoder, improved decoder'],
];

/**
 * The released DC-AE autoencoder repos under `mit-han-lab/` (DC-AE 1.5: `dc-ai/`): every one in
 * the diffusers and the original format, and `dc-ae-f32c32-in-1.0-256px` (original format only;
 * no published scaling factor). Not listed: DC-AE-Lite, whose Hub org is documented
 * inconsistently (`dc-ai/` vs `mit-han-lab/`). The diffusion models are `@dcae/diffusion`'s.
 */
export const AUTOENCODER_MODELS: readonly KnownModel[] = [
  ...AUTOENCODERS.flatMap(([name, data]) => [
    entry(`${name}-diffusers`, 'diffusers', name, `DC-AE trained on ${data} (diffusers format)`),
    entry(name, 'original', name, `DC-AE trained on ${data} (original format)`),
  ]),
  entry(
    'dc-ae-f32c32-in-1.0-256px',
    'original',
    'dc-ae-f32c32-in-1.0-256px',
    'DC-AE f32c32, in/mix architecture, listed in DC-Gen; purpose and scaling factor not published',
  ),
  // DC-AE 1.5 (DC-Gen), original format only: config.json {"model_name"} + model.safetensors.
  entry(
    'dc-ae-f32c128-1.5',
    'original',
    'dc-ae-f32c128-1.5',
    'DC-AE 1.5 f32c128, structured latent (adaptive channels); no published scaling factor',
    'dc-ai',
  ),
  entry(
    'dc-ae-f64c128-1.5',
    'original',
    'dc-ae-f64c128-1.5',
    'DC-AE 1.5 f64c128, structured latent (adaptive channels)',
    'dc-ai',
  ),
];

/**
 * The released TAESANA weights (docs/taesana.md): not on the Hugging Face Hub but in the GitHub repo
 * madebyollin/taesd, at the root of the commit that added them (2a1b414, "Add support for Sana
 * DC-AE", 2025-12-26), as `torch.save` state dicts without a config.json. `url` is that commit's
 * raw-file folder, which `resolveModel` downloads like any model folder URL.
 */
export const TAESANA_RELEASE = {
  repository: 'github.com/madebyollin/taesd',
  commit: '2a1b4149efda2cb6da482e8d3ff017bdb4f98fc3',
  url: 'https://raw.githubusercontent.com/madebyollin/taesd/2a1b4149efda2cb6da482e8d3ff017bdb4f98fc3/',
  files: ['taesana_encoder.pth', 'taesana_decoder.pth'],
  description: 'TAESANA, tiny preview autoencoder for dc-ae-f32c32-sana latents (madebyollin/taesd)',
} as const;

/** A list of released repos and the two look-ups every consumer needs. */
export interface ModelCatalog {
  /** Every entry, in listing order. */
  readonly models: readonly KnownModel[];
  /** The entries, optionally only those of one kind or layout (for `dcae models` and completion). */
  list(filter?: { kind?: KnownModelKind; layout?: ModelLayout }): readonly KnownModel[];
  /**
   * The entry for a repo id (`org/name`, an `@revision` suffix is ignored), or for the
   * `model_name` written in an original-format or combined config.json; undefined when not listed.
   */
  find(idOrModelName: string): KnownModel | undefined;
}

/**
 * A catalog of the given lists, in order (e.g. `modelCatalog(AUTOENCODER_MODELS, DIFFUSION_MODELS)`).
 * A repo id listed twice is INVALID_ARGUMENT: the lists overlap, and one of them is stale.
 */
export function modelCatalog(...lists: readonly (readonly KnownModel[])[]): ModelCatalog {
  const models = lists.flat();
  const seen = new Set<string>();
  for (const model of models) {
    if (seen.has(model.id)) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `the model catalog would list ${model.id} twice; compose lists that do not overlap.`,
        { source: model.id },
      );
    }
    seen.add(model.id);
  }
  return {
    models,
    list: (filter = {}) =>
      models.filter(
        (m) =>
          (filter.kind === undefined || m.kind === filter.kind) &&
          (filter.layout === undefined || m.layout === filter.layout),
      ),
    find: (idOrModelName) => {
      const id = idOrModelName.split('@')[0]!;
      return models.find((m) => m.id === id || (!id.includes('/') && m.id.endsWith(`/${id}`)));
    },
  };
}

/** The released autoencoders alone: what `resolveModel` knows unless given a fuller catalog. */
export const AUTOENCODER_CATALOG: ModelCatalog = /* @__PURE__ */ modelCatalog(AUTOENCODER_MODELS);
