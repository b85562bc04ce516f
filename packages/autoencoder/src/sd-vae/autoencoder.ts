import { DcaeError } from '@dcae/core';
import type { HostTensor, JsonValue, SafetensorsFile } from '@dcae/core';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type {
  Autoencoder as DcAeAutoencoder,
  AutoencoderPart,
  AutoencoderSummary,
  BuildGraphOptions,
  ExecutionOptions,
  LoadAutoencoderOptions,
  RunCallOptions,
} from '../dc-ae/autoencoder.js';
import type { OnnxExportFile, OnnxExportOptions } from '../dc-ae/onnx-export.js';
import { exportPart } from '../dc-ae/onnx-export.js';
import type { RunPlan } from '../dc-ae/tiling.js';
import type { WeightBinding } from '../dc-ae/weights.js';
import { checkpointParams } from '../dc-ae/weights.js';
import type { ModelFiles } from '../model-files.js';
import { CONFIG_FILE, openWeights, WEIGHTS_FILE } from '../model-files.js';
import type { SdVaeConfig } from './config.js';
import { parseSdVaeConfig, sdVaeCompressionRatio } from './config.js';
import { buildSdVaeDecoderGraph, buildSdVaeEncoderGraph } from './graph.js';
import { bindSdVaeWeights, countSdVaeParameters } from './weights.js';
import { checkParts, PartRunner, throwIfAborted } from '../shared/runner.js';

/**
 * A loaded Stable Diffusion VAE (diffusers `AutoencoderKL`), with the DC-AE model's interface so
 * that the CLI, the playground and the benchmarks take either. `encode` returns the posterior's
 * mean (`latent_dist.mode()`, deterministic), not a sample; neither `encode` nor `decode` applies
 * `scalingFactor` or `shiftFactor`. float32 only, and no tiling: every image runs whole.
 */
export interface SdVaeAutoencoder extends Omit<DcAeAutoencoder, 'architecture' | 'config'> {
  readonly architecture: 'sd-vae';
  readonly config: SdVaeConfig;
  /** Diffusion models see `(latent − shiftFactor) · scalingFactor` (SD3, FLUX); undefined for SD 1.x and SDXL. */
  readonly shiftFactor: number | undefined;
}

/**
 * Loads an `AutoencoderKL` folder whose config.json (`json`, already parsed) says so: parses the
 * config strictly, opens `diffusion_pytorch_model.safetensors` (under `keyPrefix`, if given) and
 * binds every tensor (headers only). Sessions are created on first use. `dtype: 'fp16'` is
 * refused; `options.config` is a DC-AE config and not read here.
 */
export async function loadSdVae(
  files: ModelFiles,
  json: JsonValue,
  options: LoadAutoencoderOptions,
): Promise<SdVaeAutoencoder> {
  const { signal, onProgress } = options;
  if (options.dtype !== undefined && options.dtype !== 'fp32') {
    throw new DcaeError(
      'UNSUPPORTED',
      `${files.name} is an AutoencoderKL (SD-VAE), which runs in float32 only (dtype ${JSON.stringify(options.dtype)} asked): ` +
        'its activations overflow float16, which is why diffusers upcasts it (force_upcast).',
    );
  }
  const parts = checkParts(options.parts);
  throwIfAborted(signal);
  onProgress?.({ stage: 'load', model: files.name, done: 0, total: 2 });
  const config = parseSdVaeConfig(json, { source: `${files.name}/${CONFIG_FILE}` });
  onProgress?.({ stage: 'load', model: files.name, done: 1, total: 2 });
  const weightsFile = WEIGHTS_FILE.diffusers;
  const names = await files.list();
  if (!names.includes(weightsFile)) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${files.name} has an AutoencoderKL config.json but no ${weightsFile}; found: ${[...names].sort().join(', ')}.` +
        (names.includes('diffusion_pytorch_model.bin')
          ? ' PyTorch .bin checkpoints are not read; convert it to safetensors.'
          : ''),
      { source: files.name },
    );
  }
  const file = await openWeights(files, weightsFile, options.keyPrefix);
  try {
    const binding = bindSdVaeWeights(file, config, {
      source:
        `${files.name}/${weightsFile}` + (options.keyPrefix ? ` (tensors under "${options.keyPrefix}")` : ''),
      parts,
    });
    throwIfAborted(signal);
    const model = new SdVaeModel(files, weightsFile, file, binding, config, options);
    onProgress?.({ stage: 'load', model: files.name, done: 2, total: 2 });
    return model;
  } catch (error) {
    await file.close();
    throw error;
  }
}

class SdVaeModel implements SdVaeAutoencoder {
  readonly architecture = 'sd-vae';
  readonly name: string;
  readonly format = 'diffusers';
  readonly config: SdVaeConfig;
  readonly dtype = 'fp32';
  readonly parts: readonly AutoencoderPart[];
  readonly scalingFactor: number;
  readonly shiftFactor: number | undefined;
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  readonly adaptiveLatentChannels = false;
  readonly #weightsFile: string;
  readonly #file: SafetensorsFile;
  readonly #binding: WeightBinding;
  readonly #defaults: ExecutionOptions;
  readonly #runner: PartRunner;

  constructor(
    files: ModelFiles,
    weightsFile: string,
    file: SafetensorsFile,
    binding: WeightBinding,
    config: SdVaeConfig,
    options: LoadAutoencoderOptions,
  ) {
    this.name = files.name;
    this.config = config;
    this.parts = binding.parts;
    this.scalingFactor = config.scalingFactor;
    this.shiftFactor = config.shiftFactor;
    this.spatialCompressionRatio = sdVaeCompressionRatio(config);
    this.latentChannels = config.latentChannels;
    this.#weightsFile = weightsFile;
    this.#file = file;
    this.#binding = binding;
    this.#runner = new PartRunner(this, {
      ...options,
      files,
      weightsFile,
      file,
      adaptiveChannelsRefusal: 'an AutoencoderKL latent has no channel order to truncate.',
      sessionGraph: async (part) => this.#graph(part, undefined),
    });
    const { tiling, memoryBudgetBytes, batchSize } = options;
    this.#defaults = { tiling, memoryBudgetBytes, batchSize };
    // Fail at load, not at the first call, on bad defaults.
    this.planRun('decode', [1, this.latentChannels, 1, 1]);
  }

  summary(): AutoencoderSummary {
    const keys = [...this.#binding.tensors.keys()];
    const isEncoder = (k: string): boolean => k.startsWith('encoder.') || k.startsWith('quant_conv.');
    return {
      name: this.name,
      format: this.format,
      parameters: countSdVaeParameters(this.config),
      keys: {
        checkpoint: this.#file.header.tensors.size,
        encoder: keys.filter(isEncoder).length,
        decoder: keys.filter((k) => !isEncoder(k)).length,
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

  /**
   * Whole images only: `tiling` may be `'auto'` or `'never'`; `batchSize` slices the batch
   * (`'auto'`: all images in one run; `memoryBudgetBytes` is not consulted). `estimatedBytes` is
   * a rough figure: the largest stage's activation × 4 live tensors, or the attention scores.
   */
  planRun(operation: 'encode' | 'decode', shape: readonly number[], options: ExecutionOptions = {}): RunPlan {
    const tiling = options.tiling ?? this.#defaults.tiling ?? 'auto';
    if (tiling !== 'auto' && tiling !== 'never') {
      throw new DcaeError(
        'UNSUPPORTED',
        `${this.name} is an AutoencoderKL, which runs whole images only; tiling ${JSON.stringify(tiling)} is not supported (use 'auto' or 'never').`,
      );
    }
    const option = options.batchSize ?? this.#defaults.batchSize ?? 'auto';
    const [images, , h, w] = shape as [number, number, number, number];
    if (option !== 'auto' && (!Number.isSafeInteger(option) || option < 1)) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `batchSize must be 'auto' or a whole number of images ≥ 1; got ${String(option)}.`,
      );
    }
    const batchSize = option === 'auto' ? images : Math.min(images, option);
    const f = operation === 'encode' ? 1 : this.spatialCompressionRatio;
    return {
      operation,
      height: h * f,
      width: w * f,
      tiles: undefined,
      batchSize,
      runs: Math.ceil(images / batchSize),
      estimatedBytes: batchSize * activationBytes(this.config, h * f, w * f),
    };
  }

  buildGraph(part: AutoencoderPart, options: BuildGraphOptions = {}): Promise<OnnxModel> {
    if (options.dtype !== undefined && options.dtype !== 'float32') {
      throw new DcaeError('UNSUPPORTED', `${this.name} (AutoencoderKL) builds float32 graphs only.`);
    }
    return Promise.resolve(this.#graph(part, options.params, options));
  }

  #graph(
    part: AutoencoderPart,
    params: ParamResolver | undefined,
    options: BuildGraphOptions = {},
  ): OnnxModel {
    this.#runner.checkOpen();
    this.#runner.checkPart(part);
    const build = part === 'encoder' ? buildSdVaeEncoderGraph : buildSdVaeDecoderGraph;
    return build(this.config, {
      params: params ?? checkpointParams(this.#binding, new Map(), this.#weightsFile),
      intermediates: options.intermediates,
      metadata: { model: this.name },
      io: options.io,
    });
  }

  async onnxFiles(options: OnnxExportOptions = {}): Promise<OnnxExportFile[]> {
    this.#runner.checkOpen();
    const files: OnnxExportFile[] = [];
    for (const part of this.parts) {
      const build = async (params: ParamResolver) => this.#graph(part, params, { io: options.io });
      files.push(...(await exportPart(part, build, this.#file, this.#binding, 'float32', options)));
    }
    return files;
  }

  dispose(): Promise<void> {
    return this.#runner.dispose();
  }
}

/** Rough peak activation bytes of one image: the largest stage map × 4 live tensors, or the mid attention's N² scores twice. */
function activationBytes(config: SdVaeConfig, height: number, width: number): number {
  const maps = config.blockOutChannels.map((c, s) => 4 * c * (height / 2 ** s) * (width / 2 ** s));
  const tokens = (height * width) / 4 ** (config.blockOutChannels.length - 1);
  const attention = config.midBlockAddAttention ? 2 * tokens * tokens : 0;
  return 4 * Math.max(attention, ...maps);
}
