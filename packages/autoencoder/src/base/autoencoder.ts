import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import type { AutoencoderPart, GraphDType } from './io.js';
import type { OnnxExportFile, OnnxExportOptions } from './onnx-export.js';
import { exportPart } from './onnx-export.js';
import type { PartWeights } from './part-graph.js';
import { partGraph } from './part-graph.js';
import { PartRunner } from './runner.js';
import type { PlanOptions, RunPlan } from './tiling.js';
import type {
  AutoencoderDType,
  AutoencoderProgress,
  AutoencoderSummary,
  BaseAutoencoder,
  BuildGraphOptions,
  CheckpointFormat,
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
  readonly format: CheckpointFormat;
  readonly config: C;
  readonly dtype: AutoencoderDType;
  readonly scalingFactor: number | undefined;
  readonly shiftFactor: number | undefined;
  readonly spatialCompressionRatio: number;
  readonly inChannels: number;
  readonly latentChannels: number;
  readonly parameters: ParamCounts;
  /** The checkpoint, its binding (whose `parts` are the loaded parts) and the family's graph builder. */
  readonly weights: PartWeights;
  /** Whether a bound (diffusers) key belongs to the encoder, for `summary()`. */
  isEncoderKey(key: string): boolean;
  /** How to run an input of `shape`; `options` holds the call's and the load's options merged. */
  plan(operation: 'encode' | 'decode', shape: readonly number[], options: PlanOptions): RunPlan;
  /** Compute dtypes `buildGraph` accepts. @defaultValue both */
  readonly graphDTypes?: readonly GraphDType[];
}

/** The load options the facade keeps: runtime, listener, the weights' location and run defaults. */
export interface FacadeOptions extends ExecutionOptions {
  readonly runtime: RuntimeV1;
  readonly onProgress?: ((event: AutoencoderProgress) => void) | undefined;
  /** What the runtime gets as the weights file's ONNX external data. */
  readonly externalData: () => string | Uint8Array;
}

const GRAPH_DTYPE: Readonly<Record<AutoencoderDType, GraphDType>> = { fp32: 'float32', fp16: 'float16' };

/** The one model facade: a family's facts and graphs behind the `BaseAutoencoder` interface. */
export class PartModel<A extends string, C> implements BaseAutoencoder<A, C> {
  readonly architecture: A;
  readonly name: string;
  readonly format: CheckpointFormat;
  readonly config: C;
  readonly dtype: AutoencoderDType;
  readonly parts: readonly AutoencoderPart[];
  readonly scalingFactor: number | undefined;
  readonly shiftFactor: number | undefined;
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  readonly #family: FamilyModel<A, C>;
  readonly #defaults: ExecutionOptions;
  readonly #runner: PartRunner;

  constructor(family: FamilyModel<A, C>, options: FacadeOptions) {
    this.architecture = family.architecture;
    this.name = family.name;
    this.format = family.format;
    this.config = family.config;
    this.dtype = family.dtype;
    this.parts = family.weights.binding.parts;
    this.scalingFactor = family.scalingFactor;
    this.shiftFactor = family.shiftFactor;
    this.spatialCompressionRatio = family.spatialCompressionRatio;
    this.latentChannels = family.latentChannels;
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
      },
    );
    const { tiling, memoryBudgetBytes, batchSize } = options;
    this.#defaults = { tiling, memoryBudgetBytes, batchSize };
    // Fail at load, not at the first call, on bad defaults.
    this.planRun('decode', [1, this.latentChannels, 1, 1]);
  }

  summary(): AutoencoderSummary {
    const keys = [...this.#family.weights.binding.tensors.keys()];
    const encoder = keys.filter((k) => this.#family.isEncoderKey(k)).length;
    return {
      name: this.name,
      format: this.format,
      parameters: this.#family.parameters,
      keys: {
        checkpoint: this.#family.weights.file.header.tensors.size,
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
    this.#runner.checkInput(operation, input);
    const plan = this.planRun(operation, input.shape, options);
    return this.#runner.run(operation, input, plan, options);
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
    return partGraph(this.#family.weights, part, options);
  }

  async onnxFiles(options: OnnxExportOptions = {}): Promise<OnnxExportFile[]> {
    this.#runner.checkOpen();
    const dtype = GRAPH_DTYPE[this.dtype];
    const { file, binding } = this.#family.weights;
    const files: OnnxExportFile[] = [];
    for (const part of this.parts) {
      const build = (params: ParamResolver) => this.#graph(part, { params, dtype, io: options.io });
      files.push(...(await exportPart(part, build, file, binding, dtype, options)));
    }
    return files;
  }

  dispose(): Promise<void> {
    return this.#runner.dispose();
  }
}
