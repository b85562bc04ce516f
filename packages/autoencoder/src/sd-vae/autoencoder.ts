import { checkHostTensor, DcaeError, formatShape } from '@dcae/core';
import type { HostTensor, JsonValue, SafetensorsFile } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import type {
  Autoencoder as DcAeAutoencoder,
  AutoencoderPart,
  AutoencoderProgress,
  AutoencoderSummary,
  BuildGraphOptions,
  ExecutionOptions,
  LoadAutoencoderOptions,
  RunCallOptions,
} from '../dc-ae/autoencoder.js';
import { DECODER_IO, ENCODER_IO } from '../dc-ae/graph.js';
import type { OnnxExportFile, OnnxExportOptions } from '../dc-ae/onnx-export.js';
import { exportPart } from '../dc-ae/onnx-export.js';
import type { RunPlan } from '../dc-ae/tiling.js';
import { runTiled } from '../dc-ae/tiling.js';
import type { WeightBinding } from '../dc-ae/weights.js';
import { checkpointParams } from '../dc-ae/weights.js';
import type { ModelFiles } from '../model-files.js';
import { CONFIG_FILE, openWeights, WEIGHTS_FILE } from '../model-files.js';
import type { SdVaeConfig } from './config.js';
import { parseSdVaeConfig, sdVaeCompressionRatio } from './config.js';
import { buildSdVaeDecoderGraph, buildSdVaeEncoderGraph } from './graph.js';
import { bindSdVaeWeights, countSdVaeParameters } from './weights.js';

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

/** Largest accepted image side, in pixels (as for DC-AE). */
const MAX_SIDE = 16384;

type Emit = (event: AutoencoderProgress) => void;

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

function checkParts(parts: readonly AutoencoderPart[] | undefined): readonly AutoencoderPart[] {
  if (parts === undefined) return ['encoder', 'decoder'];
  const valid =
    Array.isArray(parts) && parts.length > 0 && parts.every((p) => p === 'encoder' || p === 'decoder');
  if (!valid) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `parts must list 'encoder' and/or 'decoder'; got ${JSON.stringify(parts)}.`,
    );
  }
  return (['encoder', 'decoder'] as const).filter((p) => parts.includes(p));
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
  readonly #files: ModelFiles;
  readonly #weightsFile: string;
  readonly #file: SafetensorsFile;
  readonly #binding: WeightBinding;
  readonly #runtime: RuntimeV1;
  readonly #onProgress: Emit | undefined;
  readonly #defaults: ExecutionOptions;
  readonly #sessions = new Map<AutoencoderPart, Promise<SessionV1>>();
  #disposed = false;

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
    this.#files = files;
    this.#weightsFile = weightsFile;
    this.#file = file;
    this.#binding = binding;
    this.#runtime = options.runtime;
    this.#onProgress = options.onProgress;
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
    this.#checkImageSize(height, width);
    const f = this.spatialCompressionRatio;
    return [this.latentChannels, height / f, width / f];
  }

  async encode(images: HostTensor<'float32'>, options: RunCallOptions = {}): Promise<HostTensor<'float32'>> {
    this.#checkPart('encoder');
    this.#checkInput('images', images, this.config.inChannels);
    this.#checkImageSize(images.shape[2]!, images.shape[3]!);
    return this.#execute('encode', images, options);
  }

  async decode(latents: HostTensor<'float32'>, options: RunCallOptions = {}): Promise<HostTensor<'float32'>> {
    this.#checkPart('decoder');
    this.#checkInput('latents', latents, this.latentChannels);
    const max = MAX_SIDE / this.spatialCompressionRatio;
    const [h, w] = [latents.shape[2]!, latents.shape[3]!];
    if (!(h >= 1 && h <= max && w >= 1 && w <= max)) {
      throw new DcaeError(
        'INPUT_SIZE',
        `${this.name} cannot decode ${h}×${w} (h×w) latents: h and w must be 1 to ${max}.`,
        { detail: { height: h, width: w, max } },
      );
    }
    return this.#execute('decode', latents, options);
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
    this.#checkOpen();
    this.#checkPart(part);
    const build = part === 'encoder' ? buildSdVaeEncoderGraph : buildSdVaeDecoderGraph;
    return build(this.config, {
      params: params ?? checkpointParams(this.#binding, new Map(), this.#weightsFile),
      intermediates: options.intermediates,
      metadata: { model: this.name },
      io: options.io,
    });
  }

  async onnxFiles(options: OnnxExportOptions = {}): Promise<OnnxExportFile[]> {
    this.#checkOpen();
    const files: OnnxExportFile[] = [];
    for (const part of this.parts) {
      const build = async (params: ParamResolver) => this.#graph(part, params, { io: options.io });
      files.push(...(await exportPart(part, build, this.#file, this.#binding, 'float32', options)));
    }
    return files;
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(sessions.map(async (s) => (await s.catch(() => undefined))?.dispose()));
    await this.#file.close();
  }

  async #execute(
    operation: 'encode' | 'decode',
    input: HostTensor<'float32'>,
    options: RunCallOptions,
  ): Promise<HostTensor<'float32'>> {
    const { signal } = options;
    const part = operation === 'encode' ? 'encoder' : 'decoder';
    const io = operation === 'encode' ? ENCODER_IO : DECODER_IO;
    const plan = this.planRun(operation, input.shape, options);
    const emit: Emit = (event) => {
      options.onProgress?.(event);
      this.#onProgress?.(event);
    };
    throwIfAborted(signal);
    const session = await abortable(this.#session(part, emit), signal);
    const progress = (done: number): void =>
      emit({ stage: operation, model: this.name, part, done, total: plan.runs, plan });
    progress(0);
    const f = this.spatialCompressionRatio;
    return runTiled(input, {
      plan,
      scale: operation === 'encode' ? 1 / f : f,
      run: async (x) =>
        (await session.run({ [io.input]: x }, { signal }))[io.output] as HostTensor<'float32'>,
      beforeRun: () => throwIfAborted(signal),
      afterRun: progress,
    });
  }

  #session(part: AutoencoderPart, emit: Emit): Promise<SessionV1> {
    this.#checkOpen();
    let session = this.#sessions.get(part);
    if (session === undefined) {
      session = this.#createSession(part, emit);
      this.#sessions.set(part, session);
      // A failed setup is retried by the next call.
      session.catch(() => this.#sessions.get(part) === session && this.#sessions.delete(part));
    }
    return session;
  }

  async #createSession(part: AutoencoderPart, emit: Emit): Promise<SessionV1> {
    const model = this.name;
    emit({ stage: 'build', model, part, done: 0, total: 1 });
    const bytes = serializeModel(this.#graph(part, undefined));
    emit({ stage: 'build', model, part, done: 1, total: 1 });
    emit({ stage: 'session', model, part, done: 0, total: 1 });
    const externalData = [
      { location: this.#weightsFile, data: this.#files.externalDataLocation(this.#weightsFile) },
    ];
    const session = await this.#runtime.createSession(bytes, { externalData });
    if (this.#disposed) {
      await session.dispose();
      this.#checkOpen();
    }
    emit({ stage: 'session', model, part, done: 1, total: 1 });
    return session;
  }

  #checkPart(part: AutoencoderPart): void {
    if (this.parts.includes(part)) return;
    throw new DcaeError(
      'UNSUPPORTED',
      `${this.name} was loaded with parts [${this.parts.join(', ')}]; ` +
        `${part === 'encoder' ? 'encoding' : 'decoding'} needs the ${part}: load it with parts including '${part}'.`,
    );
  }

  #checkOpen(): void {
    if (this.#disposed) {
      throw new DcaeError(
        'SESSION_DISPOSED',
        `Autoencoder ${this.name} was disposed; load it again to use it.`,
      );
    }
  }

  #checkInput(what: string, tensor: HostTensor<'float32'>, channels: number): void {
    if (tensor?.dtype !== 'float32') {
      throw new DcaeError(
        'DTYPE_UNSUPPORTED',
        `${what} must be float32, found ${String(tensor?.dtype)}; convert with toFloat32().`,
      );
    }
    checkHostTensor(tensor, what);
    const shape = tensor.shape;
    if (shape.length !== 4 || shape[1] !== channels || shape[0] === 0) {
      throw new DcaeError(
        'SHAPE_MISMATCH',
        `${what} must be NCHW [batch, ${channels}, height, width] with batch ≥ 1, found ${formatShape(shape)}.`,
        { detail: { shape, channels } },
      );
    }
    const bad = tensor.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `${what} holds a non-finite value (${tensor.data[bad]}) at flat index ${bad}.`,
      );
    }
  }

  #checkImageSize(height: number, width: number): void {
    const f = this.spatialCompressionRatio;
    const valid = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && n % f === 0 && n <= MAX_SIDE;
    if (valid(height) && valid(width)) return;
    const down = (n: number): number => Math.min(MAX_SIDE, Math.max(f, Math.floor(n / f) * f));
    const up = (n: number): number => Math.min(MAX_SIDE, Math.max(f, Math.ceil(n / f) * f));
    throw new DcaeError(
      'INPUT_SIZE',
      `${this.name} cannot encode ${height}×${width} (H×W) images: height and width must be multiples of ${f} ` +
        `(at most ${MAX_SIDE}). Nearest valid sizes: ${down(height)}×${down(width)} (crop) or ` +
        `${up(height)}×${up(width)} (pad); fitToMultiple(image, ${f}, 'crop' | 'pad') does either.`,
      { detail: { height, width, multiple: f } },
    );
  }
}

/** Rough peak activation bytes of one image: the largest stage map × 4 live tensors, or the mid attention's N² scores twice. */
function activationBytes(config: SdVaeConfig, height: number, width: number): number {
  const maps = config.blockOutChannels.map((c, s) => 4 * c * (height / 2 ** s) * (width / 2 ** s));
  const tokens = (height * width) / 4 ** (config.blockOutChannels.length - 1);
  const attention = config.midBlockAddAttention ? 2 * tokens * tokens : 0;
  return 4 * Math.max(attention, ...maps);
}

function abortedError(signal: AbortSignal): DcaeError {
  return new DcaeError('ABORTED', 'Loading or running the autoencoder was aborted.', {
    cause: signal.reason,
  });
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(signal);
}

/** `promise`, or an ABORTED rejection as soon as `signal` aborts (the work itself goes on). */
function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(abortedError(signal));
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
