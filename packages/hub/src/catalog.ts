/**
 * The model catalog: the released DC-AE repos on the Hugging Face Hub, as data. It names each
 * repo's autoencoder architecture and the few facts listings print; the architectures themselves
 * live in `@dcae/autoencoder` (its tests check these facts against its presets), the diffusion
 * backbones in `@dcae/diffusion` (whose tests check its presets against the diffusion entries).
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

function entry(
  name: string,
  kind: KnownModelKind,
  layout: ModelLayout,
  autoencoder: CatalogAutoencoder,
  description: string,
  org = ORG,
): KnownModel {
  const facts = CATALOG_AUTOENCODER_FACTS[autoencoder];
  return {
    id: `${org}/${name}`,
    kind,
    layout,
    files: FILES[layout],
    autoencoder,
    spatialCompressionRatio: facts.f,
    latentChannels: facts.c,
    scalingFactor: facts.scalingFactor,
    description,
  };
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

/** The class-conditional ImageNet 512×512 diffusion models (docs/model-spec.md §4.1): repo name, backbone, autoencoder. */
const DIFFUSION: readonly [string, string, CatalogAutoencoder][] = [
  ['dc-ae-f32c32-in-1.0-dit-xl-in-512px', 'DiT-XL', 'dc-ae-f32c32-in-1.0'],
  ['dc-ae-f32c32-in-1.0-dit-xl-in-512px-trainbs1024', 'DiT-XL (batch 1024)', 'dc-ae-f32c32-in-1.0'],
  ['dc-ae-f32c32-in-1.0-uvit-s-in-512px', 'UViT-S', 'dc-ae-f32c32-in-1.0'],
  ['dc-ae-f32c32-in-1.0-uvit-h-in-512px', 'UViT-H', 'dc-ae-f32c32-in-1.0'],
  ['dc-ae-f32c32-in-1.0-uvit-2b-in-512px', 'UViT-2B', 'dc-ae-f32c32-in-1.0'],
  ['dc-ae-f32c32-in-1.0-usit-h-in-512px', 'USiT-H', 'dc-ae-f32c32-in-1.0'],
  ['dc-ae-f32c32-in-1.0-usit-2b-in-512px', 'USiT-2B', 'dc-ae-f32c32-in-1.0'],
  ['dc-ae-f64c128-in-1.0-uvit-h-in-512px', 'UViT-H', 'dc-ae-f64c128-in-1.0'],
  ['dc-ae-f64c128-in-1.0-uvit-h-in-512px-train2000k', 'UViT-H (2000k steps)', 'dc-ae-f64c128-in-1.0'],
  ['dc-ae-f64c128-in-1.0-uvit-2b-in-512px', 'UViT-2B', 'dc-ae-f64c128-in-1.0'],
  ['dc-ae-f64c128-in-1.0-uvit-2b-in-512px-train2000k', 'UViT-2B (2000k steps)', 'dc-ae-f64c128-in-1.0'],
];

/**
 * The released DC-AE repos under `mit-han-lab/` (DC-AE 1.5: `dc-ai/`): every autoencoder in the diffusers and the
 * original format, `dc-ae-f32c32-in-1.0-256px` (original format only; no published scaling
 * factor), and the diffusion models, whose `model.safetensors` also holds their autoencoder. Not
 * listed: DC-AE-Lite, whose Hub org is documented inconsistently (`dc-ai/` vs `mit-han-lab/`).
 */
export const KNOWN_MODELS: readonly KnownModel[] = [
  ...AUTOENCODERS.flatMap(([name, data]) => [
    entry(
      `${name}-diffusers`,
      'autoencoder',
      'diffusers',
      name,
      `DC-AE trained on ${data} (diffusers format)`,
    ),
    entry(name, 'autoencoder', 'original', name, `DC-AE trained on ${data} (original format)`),
  ]),
  entry(
    'dc-ae-f32c32-in-1.0-256px',
    'autoencoder',
    'original',
    'dc-ae-f32c32-in-1.0-256px',
    'DC-AE f32c32, in/mix architecture, listed in DC-Gen; purpose and scaling factor not published',
  ),
  // DC-AE 1.5 (DC-Gen), original format only: config.json {"model_name"} + model.safetensors.
  entry(
    'dc-ae-f32c128-1.5',
    'autoencoder',
    'original',
    'dc-ae-f32c128-1.5',
    'DC-AE 1.5 f32c128, structured latent (adaptive channels); no published scaling factor',
    'dc-ai',
  ),
  entry(
    'dc-ae-f64c128-1.5',
    'autoencoder',
    'original',
    'dc-ae-f64c128-1.5',
    'DC-AE 1.5 f64c128, structured latent (adaptive channels)',
    'dc-ai',
  ),
  ...DIFFUSION.map(([name, backbone, autoencoder]) =>
    entry(
      name,
      'diffusion',
      'combined',
      autoencoder,
      `${backbone}, class-conditional ImageNet 512×512, in the latent space of ${autoencoder}`,
    ),
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

/** The released repos, optionally only those of one kind or layout (for `dcae models` and completion). */
export function listKnownModels(
  filter: { kind?: KnownModelKind; layout?: ModelLayout } = {},
): readonly KnownModel[] {
  return KNOWN_MODELS.filter(
    (m) =>
      (filter.kind === undefined || m.kind === filter.kind) &&
      (filter.layout === undefined || m.layout === filter.layout),
  );
}

/**
 * The registry entry for a repo id (`org/name`, an `@revision` suffix is ignored), or for the
 * `model_name` written in an original-format or combined config.json; undefined when not released.
 */
export function findKnownModel(idOrModelName: string): KnownModel | undefined {
  const id = idOrModelName.split('@')[0]!;
  return KNOWN_MODELS.find((m) => m.id === id || (!id.includes('/') && m.id.endsWith(`/${id}`)));
}
