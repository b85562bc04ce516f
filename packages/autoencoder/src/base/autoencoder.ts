import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import type { AutoencoderPart, GraphDType } from './io.js';
import type { OnnxExportFile, OnnxExportOptions } from './onnx-export.js';
import { exportPart } from './onnx-export.js';
import type { ModelWeights } from './part-graph.js';
import { loadedParts, partGraph, weightFiles, weightsOfPart } from './part-graph.js';
import { padChannels, PartRunner, takeChannels } from './runner.js';
import type { WeightBinding } from './weights.js';
import { buildInt8Graph } from './quantize/int8-graph.js';
import type { QuantizationSpec } from './quantize/spec.js';
import { isWasmRuntime, wasmMemoryBudget } from './wasm-memory.js';
import type { PlanOptions, RunPlan } from './tiling.js';
import type {
  AutoencoderDType,
  AutoencoderProgress,
  AutoencoderSummary,
  BaseAutoencoder,
  BuildGraphOptions,
  WeightsFormat,
  ExecutionOptions,
  ParamCounts,
  RunCallOptions,
} from './types.js';

/**
 * Everything a family hands the one model facade: facts from its config, the bound checkpoint
 * and graph builder, and how it plans a run. The facade adds the checks, sessions, tiling runs,
 * graph builds and ONNX export every family shares.
 */
export interface FamilyModel<A extends string, C> {
  readonly architecture: A;
  readonly name: string;
  readonly format: WeightsFormat;
  readonly config: C;
  readonly dtype: AutoencoderDType;
  readonly scalingFactor: number | undefined;
  readonly shiftFactor: number | undefined;
  readonly spatialCompressionRatio: number;
  readonly inChannels: number;
  readonly latentChannels: number;
  readonly parameters: ParamCounts;
  /**
   * The checkpoint, its binding (whose `parts` are the loaded parts) and the family's graph
   * builder; or one such checkpoint per loaded part (`{ byPart }`).
   */
  readonly weights: ModelWeights;
  /**
   * Why the model cannot encode or decode with only the first N latent channels, or undefined
   * when it can (DC-AE 1.5's adaptive latent channels; docs/dc-ae-1.5.md). Shown in the refusal.
   */
  readonly adaptiveChannelsRefusal: string | undefined;
  /** Whether a bound (diffusers) key belongs to the encoder, for `summary()`. */
  isEncoderKey(key: string): boolean;
  /** How to run an input of `shape`; `options` holds the call's and the load's options merged. */
  plan(operation: 'encode' | 'decode', shape: readonly number[], options: PlanOptions): RunPlan;
  /** Compute dtypes `buildGraph` accepts. @defaultValue both */
  readonly graphDTypes?: readonly GraphDType[];
  /** `dtype: 'int8'`: the calibrated ranges the session graphs are quantized with. */
  readonly quantization?: QuantizationSpec | undefined;
}

/** The load options the facade keeps: runtime, listener, the weights' location and run defaults. */
export interface FacadeOptions extends ExecutionOptions {
  readonly runtime: RuntimeV1;
  readonly onProgress?: ((event: AutoencoderProgress) => void) | undefined;
  /** What the runtime gets as a weights file's ONNX external data. */
  readonly externalData: (weightsFile: string) => string | Uint8Array;
}

/** The float dtype of a model's graph (int8 graphs are float32 graphs with QDQ convolutions). */
const GRAPH_DTYPE: Readonly<Record<AutoencoderDType, GraphDType>> = {
  fp32: 'float32',
  fp16: 'float16',
  int8: 'float32',
};

/** The one model facade: a family's facts and graphs behind the `BaseAutoencoder` interface. */
export class PartModel<A extends string, C> implements BaseAutoencoder<A, C> {
  readonly architecture: A;
  readonly name: string;
  readonly format: WeightsFormat;
  readonly config: C;
  readonly dtype: AutoencoderDType;
  readonly parts: readonly AutoencoderPart[];
  readonly scalingFactor: number | undefined;
  readonly shiftFactor: number | undefined;
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  readonly adaptiveLatentChannels: boolean;
  readonly #family: FamilyModel<A, C>;
  readonly #defaults: ExecutionOptions;
  readonly #runner: PartRunner;

  constructor(family: FamilyModel<A, C>, options: FacadeOptions) {
    this.architecture = family.architecture;
    this.name = family.name;
    this.format = family.format;
    this.config = family.config;
    this.dtype = family.dtype;
    this.parts = loadedParts(family.weights);
    this.scalingFactor = family.scalingFactor;
    this.shiftFactor = family.shiftFactor;
    this.spatialCompressionRatio = family.spatialCompressionRatio;
    this.latentChannels = family.latentChannels;
    this.adaptiveLatentChannels = family.adaptiveChannelsRefusal === undefined;
    this.#family = family;
    this.#runner = new PartRunner(
      {
        name: family.name,
        parts: this.parts,
        inChannels: family.inChannels,
        latentChannels: family.latentChannels,
        spatialCompressionRatio: family.spatialCompressionRatio,
      },
      {
        runtime: options.runtime,
        weights: family.weights,
        externalData: options.externalData,
        dtype: GRAPH_DTYPE[family.dtype],
        onProgress: options.onProgress,
        adaptiveChannelsRefusal: family.adaptiveChannelsRefusal,
        sessionGraph:
          family.dtype === 'int8'
            ? (part, onTensor) => this.#int8Graph(part, undefined, onTensor)
            : undefined,
      },
    );
    const { tiling, batchSize } = options;
    // On wasm the budget is what the 4 GiB heap leaves next to the weights (see wasm-memory.ts).
    const memoryBudgetBytes =
      options.memoryBudgetBytes ??
      (isWasmRuntime(options.runtime)
        ? wasmMemoryBudget(weightBytes(weightFiles(family.weights), family.dtype))
        : undefined);
    this.#defaults = { tiling, memoryBudgetBytes, batchSize };
    // Fail at load, not at the first call, on bad defaults.
    this.planRun('decode', [1, this.latentChannels, 1, 1]);
  }

  summary(): AutoencoderSummary {
    const files = weightFiles(this.#family.weights);
    const keys = files.flatMap((w) => [...w.binding.tensors.keys()]);
    const encoder = keys.filter((k) => this.#family.isEncoderKey(k)).length;
    return {
      name: this.name,
      format: this.format,
      parameters: this.#family.parameters,
      keys: {
        checkpoint: files.reduce((n, w) => n + w.file.header.tensors.size, 0),
        encoder,
        decoder: keys.length - encoder,
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
    return this.#run('encode', images, options);
  }

  decode(latents: HostTensor<'float32'>, options: RunCallOptions = {}): Promise<HostTensor<'float32'>> {
    return this.#run('decode', latents, options);
  }

  async #run(
    operation: 'encode' | 'decode',
    input: HostTensor<'float32'>,
    options: RunCallOptions,
  ): Promise<HostTensor<'float32'>> {
    const full = this.latentChannels;
    if (operation === 'encode') {
      const channels = options.latentChannels;
      if (channels !== undefined) this.#runner.checkAdaptive(channels, 'encode');
      this.#runner.checkInput('encode', input);
      const plan = this.planRun('encode', input.shape, options);
      const latent = await this.#runner.run('encode', input, plan, options);
      // The first N channels of the full latent: exactly the output conv with weight[:N] and bias[:N].
      return channels === undefined || channels === full ? latent : takeChannels(latent, channels);
    }
    // A latent with fewer channels on a model with adaptive channels: decoded as if zero-padded
    // (zero channels add nothing to the input conv, i.e. its weight[:, :N] with the full bias).
    // Elsewhere a partial latent stays a SHAPE_MISMATCH.
    const given = input?.shape?.[1];
    if (
      this.adaptiveLatentChannels &&
      input?.shape?.length === 4 &&
      typeof given === 'number' &&
      given >= 1 &&
      given < full
    ) {
      this.#runner.checkAdaptive(given, 'decode');
      this.#runner.checkInput('decode', input, given);
      const padded = padChannels(input, full);
      return this.#runner.run('decode', padded, this.planRun('decode', padded.shape, options), options);
    }
    this.#runner.checkInput('decode', input);
    const plan = this.planRun('decode', input.shape, options);
    return this.#runner.run('decode', input, plan, options);
  }

  planRun(operation: 'encode' | 'decode', shape: readonly number[], options: ExecutionOptions = {}): RunPlan {
    return this.#family.plan(operation, shape, {
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
    const dtype = options.dtype ?? GRAPH_DTYPE[this.dtype];
    const accepted = this.#family.graphDTypes ?? ['float32', 'float16'];
    if (!accepted.includes(dtype)) {
      throw new DcaeError(
        'UNSUPPORTED',
        `${this.name} (${this.architecture}) builds ${accepted.join(' and ')} graphs only; got dtype ${JSON.stringify(dtype)}.`,
      );
    }
    return this.#graph(part, { ...options, dtype });
  }

  async #graph(
    part: AutoencoderPart,
    options: BuildGraphOptions & { dtype: GraphDType; params?: ParamResolver | undefined },
  ): Promise<OnnxModel> {
    this.#runner.checkOpen();
    this.#runner.checkPart(part);
    return partGraph(weightsOfPart(this.#family.weights, part), part, options);
  }

  /** The float32 graph with every weight inline, quantized (QDQ, int8 weights) with the spec's ranges. */
  #int8Graph(
    part: AutoencoderPart,
    io: GraphDType | undefined,
    onTensor?: (done: number, total: number) => void,
  ): Promise<OnnxModel> {
    this.#runner.checkOpen();
    this.#runner.checkPart(part);
    const weights = weightsOfPart(this.#family.weights, part);
    return buildInt8Graph(
      weights.file,
      weights.binding,
      part,
      this.#family.quantization!,
      weights.weightsFile,
      (params) => partGraph(weights, part, { params, dtype: 'float32', io }),
      onTensor,
    );
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
      const { file, binding } = weightsOfPart(this.#family.weights, part);
      const build = (params: ParamResolver) => this.#graph(part, { params, dtype, io: options.io });
      files.push(...(await exportPart(part, build, file, binding, dtype, options)));
    }
    return files;
  }

  dispose(): Promise<void> {
    return this.#runner.dispose();
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
function weightBytes(files: readonly { readonly binding: WeightBinding }[], dtype: AutoencoderDType): number {
  const perElement = dtype === 'fp32' ? 4 : dtype === 'fp16' ? 2 : 1;
  let total = 0;
  for (const { binding } of files) {
    for (const t of binding.tensors.values()) total += t.shape.reduce((a, b) => a * b, 1) * perElement;
  }
  return total;
}
