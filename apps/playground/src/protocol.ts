/**
 * Messages between the page and the inference worker. The worker owns onnxruntime-web (whose wasm
 * settings are fixed per worker), the loaded model and every heavy computation; the page only
 * draws. Pixel buffers travel as transferables.
 */
import type { DcAeConfig, ExecutionOptions, RgbImage, RunPlan } from '@dcae/autoencoder';
import type { SamplerName } from '@dcae/diffusion';

export type DeviceChoice = 'wasm' | 'webgpu';

export interface RuntimeChoice {
  readonly device: DeviceChoice;
  readonly threads: number;
}

/** Where a model comes from. */
export type ModelSource =
  /** The default model, `@dcae/model-tiny` (a small DC-AE trained by dcae), served by the page's origin. */
  | { readonly kind: 'default' }
  | { readonly kind: 'fixture'; readonly name: string }
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'files'; readonly name: string; readonly files: readonly File[] };

/**
 * A class-conditional diffusion model and the DC-AE that decodes its samples: a bundled tiny
 * backbone with the bundled DC-AE it pairs with, or a released combined checkpoint (config.json
 * `{"model_name": …}` + model.safetensors holding the backbone and the AE) at a URL or hub id.
 */
export type GeneratorSource =
  | { readonly kind: 'fixture'; readonly name: string; readonly autoencoder: string }
  | { readonly kind: 'url'; readonly url: string };

/** What the page asks `generate()` for; undefined fields take the model's defaults. */
export interface GenerateSettings {
  readonly classLabels: readonly number[];
  readonly guidanceScale: number | undefined;
  readonly steps: number | undefined;
  readonly sampler: SamplerName | undefined;
  readonly seed: number;
  /** Post the clean-sample estimate x̂₀ of every step (as latent PCA pictures, or through TAESANA). */
  readonly preview: boolean;
  /**
   * Decode the previews with TAESANA (docs/taesana.md) from this folder URL (`taesana_decoder.pth`)
   * instead of drawing the latent's principal components.
   */
  readonly taesana?: { readonly url: string; readonly name: string };
}

export type ImageSource =
  /** The fixture's own `sample` tensor, fed exactly, so results compare with the reference. */
  { readonly kind: 'fixture-sample' } | { readonly kind: 'rgb'; readonly image: RgbImage };

export type Request =
  | { readonly type: 'init'; readonly runtime: RuntimeChoice }
  | {
      readonly type: 'load';
      readonly job: number;
      readonly source: ModelSource;
      readonly dtype: 'fp32' | 'fp16' | 'int8';
    }
  | {
      readonly type: 'run';
      readonly job: number;
      readonly image: ImageSource;
      /** Tiling and memory budget for encode and decode. */
      readonly execution: ExecutionOptions;
    }
  /** Decodes the first `channels` channels of the last run's latent (adaptive latent channels). */
  | { readonly type: 'decode-channels'; readonly job: number; readonly channels: number }
  | { readonly type: 'load-generator'; readonly job: number; readonly source: GeneratorSource }
  | { readonly type: 'generate'; readonly job: number; readonly settings: GenerateSettings }
  | { readonly type: 'cancel'; readonly job: number };

export interface RuntimeInfo {
  readonly name: string;
  readonly devices: readonly string[];
  readonly report: readonly {
    readonly device: string;
    readonly selected: boolean;
    readonly reason: string;
  }[];
  readonly threads: { readonly count: number | undefined; readonly reason: string };
  readonly crossOriginIsolated: boolean;
  /** How long starting onnxruntime-web took (wasm compilation, threads, a first tiny session). */
  readonly startMs: number;
  /** The WebGPU adapter, when there is one. */
  readonly gpu?: { readonly name: string; readonly isFallbackAdapter: boolean; readonly shaderF16: boolean };
}

export interface ModelInfo {
  readonly name: string;
  readonly format: string;
  readonly ratio: number;
  readonly latentChannels: number;
  readonly parameters: { readonly encoder: number; readonly decoder: number };
  readonly scalingFactor: number | undefined;
  readonly dtype: string;
  /** Set for bundled fixtures: the reference sample is available. */
  readonly fixture: boolean;
  /** Set for the default model (`@dcae/model-tiny`). */
  readonly defaultModel?: boolean;
  /** The DC-AE architecture (tile geometry is checked against it); absent for the SD-VAE baseline. */
  readonly config?: DcAeConfig;
  /**
   * Whether it decodes a latent's first N channels alone (DC-AE 1.5 layout, docs/dc-ae-1.5.md);
   * otherwise `adaptiveChannelsNote` says why not.
   */
  readonly adaptiveLatentChannels: boolean;
  readonly adaptiveChannelsNote?: string;
}

export interface GeneratorInfo {
  readonly name: string;
  /** e.g. `UViT-H` (a release preset), or `DiT (explicit config)`. */
  readonly label: string;
  /** [C, h, w] of one sample in diffusion space. */
  readonly latentShape: readonly number[];
  /** Image side after decoding: h · f. */
  readonly imageSize: number;
  /** The samplers this backbone was trained for; the first is its default. */
  readonly samplers: readonly SamplerName[];
  readonly defaults: {
    readonly sampler: SamplerName;
    /** Per sampler (undefined: adaptive dopri5). */
    readonly steps: Readonly<Partial<Record<SamplerName, number>>>;
    /** The preset's guidance scale; undefined: generate()'s default. */
    readonly guidanceScale: number | undefined;
  };
  readonly classes: number;
  readonly autoencoder: {
    readonly name: string;
    readonly ratio: number;
    readonly scalingFactor: number | undefined;
  };
  readonly fixture: boolean;
}

/** RGBA pixels for a canvas. */
export interface Picture {
  readonly width: number;
  readonly height: number;
  readonly rgba: Uint8ClampedArray;
}

/** Milliseconds per stage, in the order they ran. */
export type Timings = readonly { readonly stage: string; readonly ms: number }[];

export interface RunResult {
  readonly inputShape: readonly number[];
  readonly latentShape: readonly number[];
  readonly original: Picture;
  readonly reconstruction: Picture;
  readonly error: Picture;
  /** Mean |original − reconstruction| over channels that maps to the heatmap's top colour, in 0–255 units. */
  readonly errorScale: number;
  readonly channels: Picture;
  readonly pca: Picture;
  /** Fraction of latent variance the three PCA components explain. */
  readonly pcaExplained: number;
  readonly metrics: { readonly psnr: number; readonly ssim: number; readonly meanAbsError: number };
  readonly latentStats: {
    readonly min: number;
    readonly max: number;
    readonly mean: number;
    readonly std: number;
  };
  /** Bundled fixture + its sample: max |Δ| against the PyTorch reference and the allowed tolerance. */
  readonly reference?: {
    readonly latent: { readonly maxAbsDiff: number; readonly tolerance: number };
    readonly reconstruction: { readonly maxAbsDiff: number; readonly tolerance: number };
  };
  /** How encode and decode ran: whole or in tiles (the library's plan). */
  readonly plans: { readonly encode: RunPlan; readonly decode: RunPlan };
  readonly device: string;
  readonly timings: Timings;
}

/** The last run's latent decoded from its first `channels` channels (the rest as zeros). */
export interface ChannelDecode {
  readonly channels: number;
  readonly latentChannels: number;
  readonly reconstruction: Picture;
  /** Against the run's original image. */
  readonly metrics: { readonly psnr: number; readonly ssim: number };
  /** Bundled fixture with a PyTorch reference for this channel count (`reconstruction_c<N>`). */
  readonly reference?: { readonly maxAbsDiff: number; readonly tolerance: number };
  readonly ms: number;
}

export interface GenerateResult {
  readonly classLabels: readonly number[];
  /** The final sample in diffusion space, [B, C, h, w]. */
  readonly latentShape: readonly number[];
  readonly latent: Float32Array;
  /** Decoded images, one per class label. */
  readonly images: readonly Picture[];
  readonly sampler: SamplerName;
  readonly steps: number | undefined;
  readonly guidanceScale: number;
  readonly seed: number;
  readonly nfe: number;
  /** Wall time of each sampler step, in milliseconds. */
  readonly stepMs: readonly number[];
  readonly latentStats: {
    readonly min: number;
    readonly max: number;
    readonly mean: number;
    readonly std: number;
  };
  readonly device: string;
  readonly timings: Timings;
}

export type Reply =
  | { readonly type: 'ready'; readonly runtime: RuntimeInfo }
  | {
      readonly type: 'progress';
      readonly job: number;
      readonly stage: string;
      readonly detail: string;
      /** 0–1 within the stage, when known. */
      readonly fraction?: number;
      /** Steps of the stage (model runs: tiles × batch slices for encode and decode). */
      readonly done?: number;
      readonly total?: number;
    }
  | {
      readonly type: 'step';
      readonly job: number;
      readonly step: number;
      readonly totalSteps: number | undefined;
      /** Share of the trajectory covered, 0–1. */
      readonly progress: number;
      readonly nfe: number;
      readonly ms: number;
      /** x̂₀ of each sample as latent PCA pictures, when asked for. */
      readonly preview?: readonly Picture[];
    }
  /** A step's x̂₀ decoded by TAESANA (at most one decode at a time; the newest step wins). */
  | {
      readonly type: 'preview';
      readonly job: number;
      readonly step: number;
      readonly pictures: readonly Picture[];
    }
  | {
      readonly type: 'generator-loaded';
      readonly job: number;
      readonly model: GeneratorInfo;
      readonly timings: Timings;
    }
  | { readonly type: 'generated'; readonly job: number; readonly result: GenerateResult }
  | { readonly type: 'loaded'; readonly job: number; readonly model: ModelInfo; readonly timings: Timings }
  | { readonly type: 'result'; readonly job: number; readonly result: RunResult }
  | { readonly type: 'channels-decoded'; readonly job: number; readonly result: ChannelDecode }
  | { readonly type: 'cancelled'; readonly job: number }
  | {
      readonly type: 'failed';
      readonly job: number | undefined;
      readonly code: string;
      readonly message: string;
    };
