import type { DitConfig, UvitConfig } from './backbone-config.js';
import type { SamplerName } from './samplers/types.js';

/**
 * A released class-conditional ImageNet 512×512 model (docs/model-spec.md §4.1, §4.6): its backbone, the DC-AE it
 * samples in, and upstream's default sampling settings.
 */
export interface DiffusionPreset {
  /** The Hugging Face repo name under `mit-han-lab/`, as written in the repo's config.json. */
  readonly name: string;
  /** e.g. `DiT-XL`, `USiT-2B`. */
  readonly label: string;
  /** What sets a repo apart from another of the same label, e.g. `batch 1024`, `2000k steps`. */
  readonly variant?: string;
  readonly backbone: DitConfig | UvitConfig;
  /** The DC-AE whose latents the model was trained on (its weights are in the same file under `autoencoder.`). */
  readonly autoencoder: 'dc-ae-f32c32-in-1.0' | 'dc-ae-f64c128-in-1.0';
  /** Diffusion space = AE latent × scalingFactor. */
  readonly scalingFactor: number;
  readonly sampler: SamplerName;
  /** Default steps of `sampler` (undefined for the adaptive dopri5). */
  readonly steps: number | undefined;
  /** Guidance scale of the FID evaluations (`applications/dc_ae/README.md`). The demo uses 6.0. */
  readonly guidanceScale: number;
}

const COMMON = {
  patchSize: 1,
  numClasses: 1000,
  classDropoutProb: 0.1,
  mlpRatio: 4,
  keyPrefix: 'diffusion_model.',
} as const;

const DIT_XL: DitConfig = {
  family: 'dit',
  ...COMMON,
  hiddenSize: 1152,
  depth: 28,
  numHeads: 16,
  inChannels: 32,
  inputSize: 16,
  prediction: 'epsilon',
  learnSigma: true,
};

type UvitSize = 'S' | 'H' | '2B';
const UVIT_SIZES: Record<UvitSize, Pick<UvitConfig, 'hiddenSize' | 'depth' | 'numHeads'>> = {
  S: { hiddenSize: 512, depth: 12, numHeads: 8 },
  H: { hiddenSize: 1152, depth: 28, numHeads: 16 },
  '2B': { hiddenSize: 2048, depth: 28, numHeads: 32 },
};

function uvit(
  size: UvitSize,
  latent: 'f32c32' | 'f64c128',
  prediction: UvitConfig['prediction'],
): UvitConfig {
  const [inChannels, inputSize] = latent === 'f32c32' ? [32, 16] : [128, 8];
  return {
    family: 'uvit',
    ...COMMON,
    ...UVIT_SIZES[size],
    inChannels,
    inputSize,
    prediction,
    qkvBias: false,
  };
}

const F32 = { autoencoder: 'dc-ae-f32c32-in-1.0', scalingFactor: 0.3189 } as const;
const F64 = { autoencoder: 'dc-ae-f64c128-in-1.0', scalingFactor: 0.2889 } as const;
const DDPM_250 = { sampler: 'ddpm', steps: 250 } as const;
const DPM_30 = { sampler: 'dpm-solver', steps: 30 } as const;
const DOPRI5 = { sampler: 'dopri5', steps: undefined } as const;

function presets<const T extends Record<string, Omit<DiffusionPreset, 'name'>>>(
  table: T,
): { readonly [K in keyof T]: DiffusionPreset } {
  return Object.fromEntries(Object.entries(table).map(([name, preset]) => [name, { name, ...preset }])) as {
    [K in keyof T]: DiffusionPreset;
  };
}

const dit = { label: 'DiT-XL', backbone: DIT_XL, ...F32, ...DDPM_250, guidanceScale: 1.3 } as const;
const uvitS = {
  label: 'UViT-S',
  backbone: uvit('S', 'f32c32', 'epsilon'),
  ...F32,
  ...DPM_30,
  guidanceScale: 1.5,
};
const uvitH = {
  label: 'UViT-H',
  backbone: uvit('H', 'f32c32', 'epsilon'),
  ...F32,
  ...DPM_30,
  guidanceScale: 1.5,
};
const uvit2B = {
  label: 'UViT-2B',
  backbone: uvit('2B', 'f32c32', 'epsilon'),
  ...F32,
  ...DPM_30,
  guidanceScale: 1.5,
};
const usitH = {
  label: 'USiT-H',
  backbone: uvit('H', 'f32c32', 'velocity'),
  ...F32,
  ...DOPRI5,
  guidanceScale: 1.2,
};
const usit2B = {
  label: 'USiT-2B',
  backbone: uvit('2B', 'f32c32', 'velocity'),
  ...F32,
  ...DOPRI5,
  guidanceScale: 1.15,
};
const f64UvitH = {
  label: 'UViT-H',
  backbone: uvit('H', 'f64c128', 'epsilon'),
  ...F64,
  ...DPM_30,
  guidanceScale: 1.5,
};
const f64Uvit2B = {
  label: 'UViT-2B',
  backbone: uvit('2B', 'f64c128', 'epsilon'),
  ...F64,
  ...DPM_30,
  guidanceScale: 1.5,
};

/**
 * The released DC-AE diffusion checkpoints, by Hugging Face repo name (`mit-han-lab/<name>`). The
 * one list of them: the catalog entries (`DIFFUSION_MODELS`, catalog.ts) are derived from it.
 */
export const DIFFUSION_PRESETS = presets({
  'dc-ae-f32c32-in-1.0-dit-xl-in-512px': dit,
  'dc-ae-f32c32-in-1.0-dit-xl-in-512px-trainbs1024': { ...dit, variant: 'batch 1024' },
  'dc-ae-f32c32-in-1.0-uvit-s-in-512px': uvitS,
  'dc-ae-f32c32-in-1.0-uvit-h-in-512px': uvitH,
  'dc-ae-f32c32-in-1.0-uvit-2b-in-512px': uvit2B,
  'dc-ae-f32c32-in-1.0-usit-h-in-512px': usitH,
  'dc-ae-f32c32-in-1.0-usit-2b-in-512px': usit2B,
  'dc-ae-f64c128-in-1.0-uvit-h-in-512px': f64UvitH,
  'dc-ae-f64c128-in-1.0-uvit-h-in-512px-train2000k': { ...f64UvitH, variant: '2000k steps' },
  'dc-ae-f64c128-in-1.0-uvit-2b-in-512px': f64Uvit2B,
  'dc-ae-f64c128-in-1.0-uvit-2b-in-512px-train2000k': { ...f64Uvit2B, variant: '2000k steps' },
});

export type DiffusionPresetName = keyof typeof DIFFUSION_PRESETS;

export function isDiffusionPresetName(name: unknown): name is DiffusionPresetName {
  return typeof name === 'string' && Object.hasOwn(DIFFUSION_PRESETS, name);
}
