import { checkHostTensor, DcaeError, formatShape, openSafetensors } from '@dcae/core';
import type { HostTensor, SafetensorsFile } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import type { ModelFiles } from '../model-files.js';
import { detectModel } from '../model-files.js';
import type { DcAeConfig } from './config.js';
import { spatialCompressionRatio } from './config.js';
import { buildDecoderGraph, buildEncoderGraph, DECODER_IO, ENCODER_IO } from './graph.js';
import type { CheckpointFormat, WeightBinding } from './weights.js';
import { bindWeights, checkpointParams, foldedInitializers } from './weights.js';
import type { ParamCounts } from './weights-map.js';
import { countParameters, dcAeCheckpointLayout } from './weights-map.js';
import type { OnnxExportFile, OnnxExportOptions } from './onnx-export.js';
import { exportPart } from './onnx-export.js';

export type AutoencoderPart = 'encoder' | 'decoder';

/** Progress of loading and of the lazy per-part session setup. */
export type LoadProgress =
  | { readonly stage: 'config' | 'weights'; readonly model: string }
  | { readonly stage: 'graph' | 'session'; readonly model: string; readonly part: AutoencoderPart };

export interface LoadAutoencoderOptions {
  /** The engine graphs run on, e.g. `createNodeRuntime()` from `@dcae/runtime-adapters/node`. */
  readonly runtime: RuntimeV1;
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: LoadProgress) => void;
  /**
   * Use this architecture instead of the folder's config.json (which then may be absent), e.g. to
   * load original-format weights of an architecture that is not a released preset.
   */
  readonly config?: DcAeConfig;
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

export interface RunCallOptions {
  readonly signal?: AbortSignal;
}

/** One loaded DC-AE model: encode images to latents and decode latents to images. */
export interface Autoencoder {
  readonly name: string;
  readonly format: CheckpointFormat;
  readonly config: DcAeConfig;
  /** Diffusion models see `latent * scalingFactor`; divide by it before `decode`. Never applied here. */
  readonly scalingFactor: number | undefined;
  /** f: images of H×W have latents of H/f × W/f. */
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  summary(): AutoencoderSummary;
  /** [channels, height/f, width/f] of the latent of a height×width image (multiples of f). */
  latentShape(height: number, width: number): [number, number, number];
  /** Images [B, inChannels, H, W] float32 in [-1, 1], H and W multiples of f → latents [B, c, H/f, W/f] (unscaled). */
  encode(images: HostTensor<'float32'>, options?: RunCallOptions): Promise<HostTensor<'float32'>>;
  /** Latents [B, c, h, w] (unscaled) → images [B, inChannels, f·h, f·w], not clamped. */
  decode(latents: HostTensor<'float32'>, options?: RunCallOptions): Promise<HostTensor<'float32'>>;
  /** The part's ONNX graph with weights from `params` (default: external data into the checkpoint). */
  buildGraph(
    part: AutoencoderPart,
    options?: { params?: ParamResolver; intermediates?: boolean },
  ): Promise<OnnxModel>;
  /**
   * `encoder.onnx` and `decoder.onnx` (inputs/outputs `sample` → `latent_sample` → `sample`,
   * dynamic batch and size), standalone: weights inline, or in `<part>.onnx_data` next to them.
   * Contents are produced as they are written, tensor by tensor.
   */
  onnxFiles(options?: OnnxExportOptions): Promise<OnnxExportFile[]>;
  /** Releases sessions and the weights file. Idempotent; later calls reject with SESSION_DISPOSED. */
  dispose(): Promise<void>;
}

/** Largest accepted image side, in pixels (about 16k: beyond that a single activation passes 2^31 elements). */
const MAX_SIDE = 16384;

/**
 * Loads a DC-AE model folder: reads config.json (diffusers or original format), opens the weights
 * and binds every tensor strictly (headers only). Sessions are created on first use.
 */
export async function loadAutoencoder(
  files: ModelFiles,
  options: LoadAutoencoderOptions,
): Promise<Autoencoder> {
  const { signal, onProgress } = options;
  throwIfAborted(signal);
  onProgress?.({ stage: 'config', model: files.name });
  const detected = await detectModel(files, options.config);
  throwIfAborted(signal);
  onProgress?.({ stage: 'weights', model: detected.name });
  const file = await openSafetensors(await files.byteSource(detected.weightsFile));
  try {
    const layout = dcAeCheckpointLayout(detected.config);
    const binding = bindWeights(file, layout, {
      config: detected.config,
      format: detected.format,
      source: `${files.name}/${detected.weightsFile}`,
    });
    throwIfAborted(signal);
    return new DcAeAutoencoder(files, detected.weightsFile, file, binding, { ...detected, ...options });
  } catch (error) {
    await file.close();
    throw error;
  }
}

class DcAeAutoencoder implements Autoencoder {
  readonly name: string;
  readonly format: CheckpointFormat;
  readonly config: DcAeConfig;
  readonly scalingFactor: number | undefined;
  readonly spatialCompressionRatio: number;
  readonly latentChannels: number;
  readonly #files: ModelFiles;
  readonly #weightsFile: string;
  readonly #file: SafetensorsFile;
  readonly #binding: WeightBinding;
  readonly #runtime: RuntimeV1;
  readonly #onProgress: ((event: LoadProgress) => void) | undefined;
  readonly #sessions = new Map<AutoencoderPart, Promise<SessionV1>>();
  #disposed = false;

  constructor(
    files: ModelFiles,
    weightsFile: string,
    file: SafetensorsFile,
    binding: WeightBinding,
    options: LoadAutoencoderOptions & { name: string; format: CheckpointFormat; config: DcAeConfig },
  ) {
    this.name = options.name;
    this.format = options.format;
    this.config = options.config;
    this.scalingFactor = options.config.scalingFactor;
    this.spatialCompressionRatio = spatialCompressionRatio(options.config);
    this.latentChannels = options.config.latentChannels;
    this.#files = files;
    this.#weightsFile = weightsFile;
    this.#file = file;
    this.#binding = binding;
    this.#runtime = options.runtime;
    this.#onProgress = options.onProgress;
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
    this.#checkImageSize(height, width);
    const f = this.spatialCompressionRatio;
    return [this.latentChannels, height / f, width / f];
  }

  async encode(images: HostTensor<'float32'>, options: RunCallOptions = {}): Promise<HostTensor<'float32'>> {
    this.#checkInput('images', images, this.config.inChannels);
    this.#checkImageSize(images.shape[2]!, images.shape[3]!);
    return this.#run('encoder', ENCODER_IO, images, options.signal);
  }

  async decode(latents: HostTensor<'float32'>, options: RunCallOptions = {}): Promise<HostTensor<'float32'>> {
    this.#checkInput('latents', latents, this.latentChannels);
    this.#checkLatentSize(latents.shape[2]!, latents.shape[3]!);
    return this.#run('decoder', DECODER_IO, latents, options.signal);
  }

  async buildGraph(
    part: AutoencoderPart,
    options: { params?: ParamResolver; intermediates?: boolean } = {},
  ): Promise<OnnxModel> {
    this.#checkOpen();
    const params =
      options.params ??
      checkpointParams(
        this.#binding,
        await foldedInitializers(this.#file, this.#binding, part),
        this.#weightsFile,
      );
    const build = part === 'encoder' ? buildEncoderGraph : buildDecoderGraph;
    return build(this.config, {
      params,
      intermediates: options.intermediates,
      metadata: { model: this.name },
    });
  }

  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(sessions.map(async (s) => (await s.catch(() => undefined))?.dispose()));
    await this.#file.close();
  }

  async onnxFiles(options: OnnxExportOptions = {}): Promise<OnnxExportFile[]> {
    this.#checkOpen();
    const files: OnnxExportFile[] = [];
    for (const part of ['encoder', 'decoder'] as const) {
      const build = (params: ParamResolver) => this.buildGraph(part, { params });
      files.push(...(await exportPart(part, build, this.#file, this.#binding, options)));
    }
    return files;
  }

  async #run(
    part: AutoencoderPart,
    io: { readonly input: string; readonly output: string },
    input: HostTensor<'float32'>,
    signal: AbortSignal | undefined,
  ): Promise<HostTensor<'float32'>> {
    throwIfAborted(signal);
    // The session is shared by concurrent callers, so one caller's signal does not cancel its setup.
    const session = await this.#session(part);
    throwIfAborted(signal);
    const outputs = await session.run({ [io.input]: input }, { signal });
    return outputs[io.output] as HostTensor<'float32'>;
  }

  #session(part: AutoencoderPart): Promise<SessionV1> {
    this.#checkOpen();
    let session = this.#sessions.get(part);
    if (session === undefined) {
      session = this.#createSession(part);
      this.#sessions.set(part, session);
      // A failed setup is retried by the next call.
      session.catch(() => this.#sessions.get(part) === session && this.#sessions.delete(part));
    }
    return session;
  }

  async #createSession(part: AutoencoderPart): Promise<SessionV1> {
    this.#onProgress?.({ stage: 'graph', model: this.name, part });
    const model = serializeModel(await this.buildGraph(part));
    this.#onProgress?.({ stage: 'session', model: this.name, part });
    const externalData = [
      { location: this.#weightsFile, data: this.#files.externalDataLocation(this.#weightsFile) },
    ];
    const session = await this.#runtime.createSession(model, { externalData });
    if (this.#disposed) {
      await session.dispose();
      this.#checkOpen();
    }
    return session;
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

  #checkLatentSize(height: number, width: number): void {
    const max = MAX_SIDE / this.spatialCompressionRatio;
    const valid = (n: number): boolean => n >= 1 && n <= max;
    if (valid(height) && valid(width)) return;
    throw new DcaeError(
      'INPUT_SIZE',
      `${this.name} cannot decode ${height}×${width} (h×w) latents: h and w must be 1 to ${max}.`,
      { detail: { height, width, max } },
    );
  }
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw new DcaeError('ABORTED', 'Loading or running the autoencoder was aborted.', {
      cause: signal.reason,
    });
}
