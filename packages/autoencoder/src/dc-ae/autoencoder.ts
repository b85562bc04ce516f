import { DcaeError } from '@dcae/core';
import type { HostTensor, SafetensorsFile } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import type { ModelFiles } from '../model-files.js';
import { detectModel, openWeights } from '../model-files.js';
import type { DcAeConfig } from './config.js';
import { spatialCompressionRatio } from './config.js';
import { buildDecoderGraph, buildEncoderGraph } from './graph.js';
import type { GraphDType } from './graph.js';
import type { RunPlan, TilingOption } from './tiling.js';
import { planRun } from './tiling.js';
import type { CheckpointFormat, WeightBinding } from './weights.js';
import { bindWeights, checkpointParams, inlineInitializers } from './weights.js';
import type { ParamCounts } from './weights-map.js';
import { countParameters, dcAeCheckpointLayout } from './weights-map.js';
import type { OnnxExportFile, OnnxExportOptions } from './onnx-export.js';
import { exportPart } from './onnx-export.js';
import { checkParts, PartRunner, throwIfAborted } from '../shared/runner.js';
import { buildInt8Graph, resolveQuantizationSpec } from '../quantize/int8-graph.js';
import type { QuantizationSpec } from '../quantize/spec.js';
import { isWasmRuntime, wasmMemoryBudget } from '../wasm-memory.js';

export type AutoencoderPart = 'encoder' | 'decoder';

/**
 * Precision of weights and activations. fp16 keeps the norms' statistics and the attention core in
 * fp32. int8: convolutions with int8 weights and uint8 activations (calibrated QDQ graphs, see
 * docs/quantization.md); norms, the attention core and the pixel/latent projections stay fp32.
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

export interface LoadAutoencoderOptions extends ExecutionOptions {
  /** The engine graphs run on, e.g. `createNodeRuntime()` from `@dcae/runtime-adapters/node`. */
  readonly runtime: RuntimeV1;
  /** Aborts loading; later calls take their own signal. */
  readonly signal?: AbortSignal;
  /** Every progress event of this model: loading, each graph build and session, every encode and decode. */
  readonly onProgress?: (event: AutoencoderProgress) => void;
  /**
   * Use this architecture instead of the folder's config.json (which then may be absent), e.g. to
   * load original-format weights of an architecture that is not a released preset.
   */
  readonly config?: DcAeConfig;
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

export interface AutoencoderSummary {
  readonly name: string;
  readonly format: CheckpointFormat;
  /** Learned parameters (BatchNorm running statistics excluded). */
  readonly parameters: ParamCounts;
  /** Tensors in the checkpoint file, and those each part reads (diffusers names). */
  readonly keys: { readonly checkpoint: number; readonly encoder: number; readonly decoder: number };
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  readonly scalingFactor: number | undefined;
}

export interface RunCallOptions extends ExecutionOptions {
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

/** One loaded DC-AE model: encode images to latents and decode latents to images. */
export interface Autoencoder {
  /** Tells a DC-AE from the SD-VAE baseline (`loadAutoencoder` of the package entry returns either). */
  readonly architecture: 'dc-ae';
  readonly name: string;
  readonly format: CheckpointFormat;
  readonly config: DcAeConfig;
  readonly dtype: AutoencoderDType;
  /** The parts that were loaded (`encode` needs the encoder, `decode` the decoder). */
  readonly parts: readonly AutoencoderPart[];
  /** Diffusion models see `latent * scalingFactor`; divide by it before `decode`. Never applied here. */
  readonly scalingFactor: number | undefined;
  /** f: images of H×W have latents of H/f × W/f. */
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  summary(): AutoencoderSummary;
  /** [channels, height/f, width/f] of the latent of a height×width image (multiples of f). */
  latentShape(height: number, width: number): [number, number, number];
  /**
   * Images [B, inChannels, H, W] float32 in [-1, 1], H and W multiples of f → latents [B, c, H/f, W/f]
   * (unscaled). Large images are encoded in tiles blended in latent space (see `ExecutionOptions`).
   */
  encode(images: HostTensor<'float32'>, options?: RunCallOptions): Promise<HostTensor<'float32'>>;
  /**
   * Latents [B, c, h, w] (unscaled) → images [B, inChannels, f·h, f·w], not clamped. Large images
   * are decoded in tiles blended in pixel space.
   */
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

/**
 * Loads a DC-AE model folder: reads config.json (diffusers or original format), opens the weights
 * and binds every tensor strictly (headers only). Sessions are created on first use.
 */
export async function loadAutoencoder(
  files: ModelFiles,
  options: LoadAutoencoderOptions,
): Promise<Autoencoder> {
  const { signal, onProgress } = options;
  const dtype = checkDType(options.dtype);
  const parts = checkParts(options.parts);
  throwIfAborted(signal);
  onProgress?.({ stage: 'load', model: files.name, done: 0, total: 2 });
  const detected = await detectModel(files, options.config);
  throwIfAborted(signal);
  onProgress?.({ stage: 'load', model: detected.name, done: 1, total: 2 });
  const file = await openWeights(files, detected.weightsFile, options.keyPrefix);
  try {
    const layout = dcAeCheckpointLayout(detected.config);
    const binding = bindWeights(file, layout, {
      config: detected.config,
      format: detected.format,
      source:
        `${files.name}/${detected.weightsFile}` +
        (options.keyPrefix ? ` (tensors under "${options.keyPrefix}")` : ''),
      parts,
    });
    const quantization =
      dtype === 'int8' ? await resolveQuantizationSpec(files, options.quantization) : undefined;
    throwIfAborted(signal);
    const model = new DcAeAutoencoder(files, detected.weightsFile, file, binding, {
      ...options,
      ...detected,
      dtype,
      quantization,
    });
    onProgress?.({ stage: 'load', model: detected.name, done: 2, total: 2 });
    return model;
  } catch (error) {
    await file.close();
    throw error;
  }
}

function checkDType(dtype: unknown): AutoencoderDType {
  if (dtype === undefined || dtype === 'fp32' || dtype === 'fp16' || dtype === 'int8') return dtype ?? 'fp32';
  throw new DcaeError(
    'INVALID_ARGUMENT',
    `dtype must be 'fp32', 'fp16' or 'int8'; got ${JSON.stringify(dtype)}.`,
  );
}

/** The float dtype of a model's graph (int8 graphs are float32 graphs with QDQ convolutions). */
const GRAPH_DTYPE: Readonly<Record<AutoencoderDType, GraphDType>> = {
  fp32: 'float32',
  fp16: 'float16',
  int8: 'float32',
};

class DcAeAutoencoder implements Autoencoder {
  readonly architecture = 'dc-ae';
  readonly name: string;
  readonly format: CheckpointFormat;
  readonly config: DcAeConfig;
  readonly dtype: AutoencoderDType;
  readonly parts: readonly AutoencoderPart[];
  readonly scalingFactor: number | undefined;
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  readonly #weightsFile: string;
  readonly #file: SafetensorsFile;
  readonly #binding: WeightBinding;
  readonly #defaults: ExecutionOptions;
  readonly #runner: PartRunner;
  readonly #quantization: QuantizationSpec | undefined;

  constructor(
    files: ModelFiles,
    weightsFile: string,
    file: SafetensorsFile,
    binding: WeightBinding,
    options: LoadAutoencoderOptions & {
      name: string;
      format: CheckpointFormat;
      config: DcAeConfig;
      dtype: AutoencoderDType;
      quantization?: QuantizationSpec | undefined;
    },
  ) {
    this.name = options.name;
    this.format = options.format;
    this.config = options.config;
    this.dtype = options.dtype;
    this.parts = binding.parts;
    this.scalingFactor = options.config.scalingFactor;
    this.spatialCompressionRatio = spatialCompressionRatio(options.config);
    this.latentChannels = options.config.latentChannels;
    this.#weightsFile = weightsFile;
    this.#file = file;
    this.#binding = binding;
    this.#quantization = options.quantization;
    this.#runner = new PartRunner(this, {
      ...options,
      files,
      weightsFile,
      file,
      sessionGraph: (part, onTensor) =>
        this.dtype === 'int8'
          ? this.#int8Graph(part, undefined, onTensor)
          : this.#graph(part, { onTensor: this.dtype === 'fp16' ? onTensor : undefined }),
    });
    const { tiling, batchSize } = options;
    // On wasm the budget is what the 4 GiB heap leaves next to the weights (see wasm-memory.ts).
    const memoryBudgetBytes =
      options.memoryBudgetBytes ??
      (isWasmRuntime(options.runtime) ? wasmMemoryBudget(weightBytes(binding, this.dtype)) : undefined);
    this.#defaults = { tiling, memoryBudgetBytes, batchSize };
    // Fail at load, not at the first call, on bad defaults.
    planRun(this.config, 'decode', [1, this.latentChannels, 1, 1], this.#defaults);
  }

  summary(): AutoencoderSummary {
    const keys = [...this.#binding.tensors.keys()];
    return {
      name: this.name,
      format: this.format,
      parameters: countParameters(dcAeCheckpointLayout(this.config)),
      keys: {
        checkpoint: this.#file.header.tensors.size,
        encoder: keys.filter((k) => k.startsWith('encoder.')).length,
        decoder: keys.filter((k) => k.startsWith('decoder.')).length,
      },
      spatialCompressionRatio: this.spatialCompressionRatio,
      latentChannels: this.latentChannels,
      scalingFactor: this.scalingFactor,
    };
  }

  latentShape(height: number, width: number): [number, number, number] {
    return this.#runner.latentShape(height, width);
  }

  encode(images: HostTensor<'float32'>, options: RunCallOptions = {}): Promise<HostTensor<'float32'>> {
    return this.#runner.encode(images, options);
  }

  decode(latents: HostTensor<'float32'>, options: RunCallOptions = {}): Promise<HostTensor<'float32'>> {
    return this.#runner.decode(latents, options);
  }

  planRun(operation: 'encode' | 'decode', shape: readonly number[], options: ExecutionOptions = {}): RunPlan {
    return planRun(this.config, operation, shape, {
      tiling: options.tiling ?? this.#defaults.tiling,
      memoryBudgetBytes: options.memoryBudgetBytes ?? this.#defaults.memoryBudgetBytes,
      batchSize: options.batchSize ?? this.#defaults.batchSize,
      elementBytes: this.dtype === 'fp16' ? 2 : 4,
    });
  }

  buildGraph(part: AutoencoderPart, options: BuildGraphOptions = {}): Promise<OnnxModel> {
    if (this.dtype === 'int8' && options.dtype === undefined && options.params === undefined) {
      return this.#int8Graph(part, options.io);
    }
    return this.#graph(part, options);
  }

  /** The float32 graph with every weight inline, quantized (QDQ, int8 weights) with the spec's ranges. */
  #int8Graph(
    part: AutoencoderPart,
    io: GraphDType | undefined,
    onTensor?: (done: number, total: number) => void,
  ): Promise<OnnxModel> {
    this.#runner.checkOpen();
    this.#runner.checkPart(part);
    return buildInt8Graph(
      this.#file,
      this.#binding,
      part,
      this.#quantization!,
      this.#weightsFile,
      (params) => this.#graph(part, { params, dtype: 'float32', io }),
      onTensor,
    );
  }

  async #graph(
    part: AutoencoderPart,
    options: BuildGraphOptions & { onTensor?: (done: number, total: number) => void },
  ): Promise<OnnxModel> {
    this.#runner.checkOpen();
    this.#runner.checkPart(part);
    const dtype = options.dtype ?? GRAPH_DTYPE[this.dtype];
    const params =
      options.params ??
      checkpointParams(
        this.#binding,
        await inlineInitializers(this.#file, this.#binding, part, dtype, options.onTensor),
        this.#weightsFile,
      );
    const build = part === 'encoder' ? buildEncoderGraph : buildDecoderGraph;
    return build(this.config, {
      params,
      intermediates: options.intermediates,
      metadata: { model: this.name },
      dtype,
      io: options.io,
    });
  }

  dispose(): Promise<void> {
    return this.#runner.dispose();
  }

  async onnxFiles(options: OnnxExportOptions = {}): Promise<OnnxExportFile[]> {
    this.#runner.checkOpen();
    const dtype = GRAPH_DTYPE[this.dtype];
    const files: OnnxExportFile[] = [];
    if (this.dtype === 'int8') {
      for (const part of this.parts) files.push(int8File(part, await this.#int8Graph(part, options.io)));
      return files;
    }
    for (const part of this.parts) {
      const build = (params: ParamResolver) => this.#graph(part, { params, dtype, io: options.io });
      files.push(...(await exportPart(part, build, this.#file, this.#binding, dtype, options)));
    }
    return files;
  }
}

/** A standalone int8 ONNX file: the int8 weights are inline (a quarter of the float32 bytes). */
function int8File(part: AutoencoderPart, model: OnnxModel): OnnxExportFile {
  const bytes = serializeModel(model);
  return {
    name: `${part}.onnx`,
    size: bytes.byteLength,
    async *chunks() {
      yield bytes;
    },
  };
}

/** Bytes the loaded parts' weights take in a session of `dtype` (int8: a quarter, fp16: half of float32). */
function weightBytes(binding: WeightBinding, dtype: AutoencoderDType): number {
  const perElement = dtype === 'fp32' ? 4 : dtype === 'fp16' ? 2 : 1;
  let total = 0;
  for (const t of binding.tensors.values()) total += t.shape.reduce((a, b) => a * b, 1) * perElement;
  return total;
}
