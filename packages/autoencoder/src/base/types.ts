import type { HostTensor } from '@dcae/core';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import type { AutoencoderPart, GraphDType } from './io.js';
import type { QuantizationSpec } from './quantize/spec.js';
import type { OnnxExportFile, OnnxExportOptions } from './onnx-export.js';
import type { RunPlan, TilingOption } from './tiling.js';
import type { CheckpointFormat, WeightsFormat } from './weights.js';

/**
 * The contract every autoencoder family (DC-AE, the SD-VAE baseline, the next one) fulfils, and
 * the options and events they share. See docs/ARCHITECTURE.md for how a family plugs in.
 */

export type { AutoencoderPart, CheckpointFormat, WeightsFormat };

/**
 * Precision of weights and activations. fp16 keeps the norms' statistics and the attention core in
 * fp32. int8 (DC-AE): calibrated QDQ convolutions, see docs/quantization.md.
 */
export type AutoencoderDType = 'fp32' | 'fp16' | 'int8';

export type ProgressStage = 'load' | 'build' | 'session' | 'encode' | 'decode';

/**
 * Progress of a long operation; `done` of `total` steps of `stage`, starting at 0:
 * - `load`: reading the config (0 → 1), binding the weights (1 → 2);
 * - `build`: converting weights to fp16, one step per tensor, then the graph (one step);
 * - `session`: the runtime session of `part` (0 → 1);
 * - `encode` / `decode`: model runs (tiles × batch slices, see `plan`), reported after each run.
 */
export interface AutoencoderProgress {
  readonly stage: ProgressStage;
  readonly model: string;
  readonly done: number;
  readonly total: number;
  /** The graph being built, set up or run (absent for `load`). */
  readonly part?: AutoencoderPart;
  /** How the call runs (`encode` / `decode` only). */
  readonly plan?: RunPlan;
}

/** How encode and decode split their work (defaults at load, overridden per call). */
export interface ExecutionOptions {
  /** Tiles: `'auto'` (default) tiles only when a whole image exceeds `memoryBudgetBytes`. */
  readonly tiling?: TilingOption;
  /**
   * Estimated activation memory one run may use (`estimateActivationBytes`). @defaultValue 4 GiB;
   * on a wasm runtime, what wasm32's 4 GiB heap leaves next to the weights (`wasmMemoryBudget`)
   */
  readonly memoryBudgetBytes?: number;
  /** Images per run; `'auto'`: as many as fit `memoryBudgetBytes`. @defaultValue 'auto' */
  readonly batchSize?: number | 'auto';
}

/** What every family's loader takes (a family may add its own, e.g. DC-AE's `config`). */
export interface BaseLoadOptions extends ExecutionOptions {
  /** The engine graphs run on, e.g. `createNodeRuntime()` from `@dcae/runtime-adapters/node`. */
  readonly runtime: RuntimeV1;
  /** Aborts loading; later calls take their own signal. */
  readonly signal?: AbortSignal;
  /** Every progress event of this model: loading, each graph build and session, every encode and decode. */
  readonly onProgress?: (event: AutoencoderProgress) => void;
  /**
   * Read only the weights file's tensors under this prefix, named without it (e.g. `autoencoder.`
   * in the released diffusion checkpoints, which hold the DC-AE and the backbone in one file).
   */
  readonly keyPrefix?: string;
  /**
   * `'fp16'`: float16 weights (converted from the checkpoint when sessions are set up) and
   * activations; inputs and outputs stay float32. @defaultValue 'fp32'
   */
  readonly dtype?: AutoencoderDType;
  /**
   * `dtype: 'int8'`: the calibrated activation ranges (`calibrateAutoencoder`, `dcae quantize`).
   * @defaultValue the model folder's quantization.json
   */
  readonly quantization?: QuantizationSpec;
  /** Bind and build only these parts, e.g. `['decoder']` for a decoder-only checkpoint. @defaultValue both */
  readonly parts?: readonly AutoencoderPart[];
}

/** Learned parameters per part. */
export interface ParamCounts {
  readonly encoder: number;
  readonly decoder: number;
  readonly total: number;
}

/** Multiply-accumulates of one pass per part (batch 1). */
export interface MacCount {
  readonly encoder: number;
  readonly decoder: number;
}

export interface AutoencoderSummary {
  readonly name: string;
  readonly format: WeightsFormat;
  /** Learned parameters (BatchNorm running statistics excluded). */
  readonly parameters: ParamCounts;
  /** Tensors in the checkpoint file, and those each part reads (diffusers names). */
  readonly keys: { readonly checkpoint: number; readonly encoder: number; readonly decoder: number };
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  readonly scalingFactor: number | undefined;
}

export interface RunCallOptions extends ExecutionOptions {
  /**
   * Encode only: return the first N latent channels (adaptive latent channels, DC-AE 1.5), equal
   * to running the output conv with `weight[:N]`, `bias[:N]`. Models whose latent channels are
   * not separable (`adaptiveLatentChannels` false, e.g. DC-AE 1.0 with its encoder-out /
   * decoder-in averaging shortcuts) refuse it with UNSUPPORTED. `decode` reads N from the latent:
   * a latent with fewer channels than the model's is decoded as if zero-padded (the input conv's
   * `weight[:, :N]` with its full bias). See docs/dc-ae-1.5.md.
   */
  readonly latentChannels?: number;
  /** Checked between runs (tiles, batch slices) and passed to each run. */
  readonly signal?: AbortSignal;
  /** This call's progress (graph build and session setup if this call triggers them, then every run). */
  readonly onProgress?: (event: AutoencoderProgress) => void;
}

export interface BuildGraphOptions {
  /** Where weights come from. @defaultValue external data into the checkpoint (fp16: inline converted weights) */
  readonly params?: ParamResolver;
  /** Also output every stage's activations. */
  readonly intermediates?: boolean;
  /** Compute dtype. @defaultValue the model's */
  readonly dtype?: GraphDType;
  /** Input and output dtype. @defaultValue 'float32' */
  readonly io?: GraphDType;
}

/**
 * One loaded autoencoder of family `A` with config `C`: encode images to latents and decode
 * latents to images. Every family returns this shape; `architecture` tells them apart.
 */
export interface BaseAutoencoder<A extends string = string, C = unknown> {
  readonly architecture: A;
  readonly name: string;
  readonly format: WeightsFormat;
  readonly config: C;
  readonly dtype: AutoencoderDType;
  /** The parts that were loaded (`encode` needs the encoder, `decode` the decoder). */
  readonly parts: readonly AutoencoderPart[];
  /** Diffusion models see `(latent − shiftFactor) · scalingFactor`; undo it before `decode`. Never applied here. */
  readonly scalingFactor: number | undefined;
  /** See `scalingFactor`; undefined where the family has none (DC-AE, SD 1.x). */
  readonly shiftFactor: number | undefined;
  /** f: images of H×W have latents of H/f × W/f. */
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  /** Encode and decode with the first N latent channels (`RunCallOptions.latentChannels`); DC-AE 1.5 only. */
  readonly adaptiveLatentChannels: boolean;
  summary(): AutoencoderSummary;
  /** [channels, height/f, width/f] of the latent of a height×width image (multiples of f). */
  latentShape(height: number, width: number): [number, number, number];
  /**
   * Images [B, inChannels, H, W] float32 in [-1, 1], H and W multiples of f → latents [B, c, H/f, W/f]
   * (unscaled). Large images are encoded in tiles blended in latent space where the family tiles.
   */
  encode(images: HostTensor<'float32'>, options?: RunCallOptions): Promise<HostTensor<'float32'>>;
  /** Latents [B, c, h, w] (unscaled) → images [B, inChannels, f·h, f·w], not clamped. */
  decode(latents: HostTensor<'float32'>, options?: RunCallOptions): Promise<HostTensor<'float32'>>;
  /** How `encode` / `decode` would run an input of `shape` with `options` (tiles, batch slices, runs). */
  planRun(operation: 'encode' | 'decode', shape: readonly number[], options?: ExecutionOptions): RunPlan;
  /** The part's ONNX graph (default: weights as external data into the checkpoint, compute in the model's dtype). */
  buildGraph(part: AutoencoderPart, options?: BuildGraphOptions): Promise<OnnxModel>;
  /**
   * `encoder.onnx` and `decoder.onnx` of the loaded parts (inputs/outputs `sample` →
   * `latent_sample` → `sample`, dynamic batch and size), standalone: weights inline, or in
   * `<part>.onnx_data` next to them, in the model's dtype. Contents are produced as they are
   * written, tensor by tensor.
   */
  onnxFiles(options?: OnnxExportOptions): Promise<OnnxExportFile[]>;
  /** Releases sessions and the weights file. Idempotent; later calls reject with SESSION_DISPOSED. */
  dispose(): Promise<void>;
}
