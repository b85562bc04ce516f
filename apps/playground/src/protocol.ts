/**
 * Messages between the page and the inference worker. The worker owns onnxruntime-web (whose wasm
 * settings are fixed per worker), the loaded model and every heavy computation; the page only
 * draws. Pixel buffers travel as transferables.
 */
import type { RgbImage } from '@dcae/autoencoder';

export type DeviceChoice = 'wasm' | 'webgpu';

export interface RuntimeChoice {
  readonly device: DeviceChoice;
  readonly threads: number;
}

/** Where a model comes from. */
export type ModelSource =
  | { readonly kind: 'fixture'; readonly name: string }
  | { readonly kind: 'url'; readonly url: string }
  | { readonly kind: 'files'; readonly name: string; readonly files: readonly File[] };

export type ImageSource =
  /** The fixture's own `sample` tensor, fed exactly, so results compare with the reference. */
  { readonly kind: 'fixture-sample' } | { readonly kind: 'rgb'; readonly image: RgbImage };

export type Request =
  | { readonly type: 'init'; readonly runtime: RuntimeChoice }
  | {
      readonly type: 'load';
      readonly job: number;
      readonly source: ModelSource;
      readonly dtype: 'fp32' | 'fp16';
    }
  | { readonly type: 'run'; readonly job: number; readonly image: ImageSource }
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
    }
  | { readonly type: 'loaded'; readonly job: number; readonly model: ModelInfo; readonly timings: Timings }
  | { readonly type: 'result'; readonly job: number; readonly result: RunResult }
  | { readonly type: 'cancelled'; readonly job: number }
  | {
      readonly type: 'failed';
      readonly job: number | undefined;
      readonly code: string;
      readonly message: string;
    };
