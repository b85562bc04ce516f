import { checkHostTensor, DcaeError, formatShape } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { OnnxModel } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import type { AutoencoderPart, GraphDType } from './io.js';
import { DECODER_IO, ENCODER_IO } from './io.js';
import type { ModelWeights } from './part-graph.js';
import { partGraph, weightFiles, weightsOfPart } from './part-graph.js';
import type { RunPlan } from './tiling.js';
import { runTiled } from './tiling.js';
import type { AutoencoderProgress, RunCallOptions } from './types.js';

// What every family shares: input checks, lazy sessions, runs and cancellation. The runner is
// given plain facts and the family's graph builder; it never calls back into the model facade.

/** Largest accepted image side, in pixels (about 16k: beyond that a single activation passes 2^31 elements). */
const MAX_SIDE = 16384;

type Emit = (event: AutoencoderProgress) => void;

/** The facts the runner checks inputs against. */
export interface RunnerModel {
  readonly name: string;
  readonly parts: readonly AutoencoderPart[];
  readonly inChannels: number;
  readonly latentChannels: number;
  readonly spatialCompressionRatio: number;
}

export interface PartRunnerOptions {
  readonly runtime: RuntimeV1;
  /**
   * The checkpoint, or one per part (their open handles are closed by `dispose`), and the
   * family's graph builder.
   */
  readonly weights: ModelWeights;
  /** What the runtime gets as a weights file's ONNX external data (see `ModelFiles`). */
  readonly externalData: (weightsFile: string) => string | Uint8Array;
  /**
   * Why this model cannot encode or decode with fewer latent channels (adaptive latent channels,
   * DC-AE 1.5; docs/dc-ae-1.5.md), or undefined when it can.
   */
  readonly adaptiveChannelsRefusal: string | undefined;
  /** Compute dtype of the session graphs. */
  readonly dtype: GraphDType;
  /** Builds the session graph instead of `partGraph` (int8: the quantized graph). */
  readonly sessionGraph?:
    | ((part: AutoencoderPart, onTensor: (done: number, total: number) => void) => Promise<OnnxModel>)
    | undefined;
  /** The model's listener, sent every event. */
  readonly onProgress?: Emit | undefined;
}

/**
 * The checks and runs of a model's `encode` / `decode`, and the sessions of its parts, created on
 * first use and shared by concurrent calls.
 */
export class PartRunner {
  readonly #model: RunnerModel;
  readonly #options: PartRunnerOptions;
  readonly #sessions = new Map<AutoencoderPart, Promise<SessionV1>>();
  #disposed = false;

  constructor(model: RunnerModel, options: PartRunnerOptions) {
    this.#model = model;
    this.#options = options;
  }

  latentShape(height: number, width: number): [number, number, number] {
    const { name, spatialCompressionRatio: f, latentChannels } = this.#model;
    checkImageSize(name, f, height, width);
    return [latentChannels, height / f, width / f];
  }

  /**
   * Throws unless `input` is a valid input of `operation` (checked before planning); a latent
   * may have `channels` channels where the caller has checked them (`checkAdaptive`).
   */
  checkInput(operation: 'encode' | 'decode', input: HostTensor<'float32'>, channels?: number): void {
    const { name, spatialCompressionRatio: f, inChannels } = this.#model;
    const latentChannels = channels ?? this.#model.latentChannels;
    if (operation === 'encode') {
      this.checkPart('encoder');
      checkInput('images', input, inChannels);
      checkImageSize(name, f, input.shape[2]!, input.shape[3]!);
    } else {
      this.checkPart('decoder');
      checkInput('latents', input, latentChannels);
      checkLatentSize(name, f, input.shape[2]!, input.shape[3]!);
    }
  }

  /**
   * Runs a checked `input` (see `checkInput`) through the part of `operation` as `plan` says, one
   * session run per tile × batch slice.
   */
  async run(
    operation: 'encode' | 'decode',
    input: HostTensor<'float32'>,
    plan: RunPlan,
    options: RunCallOptions,
  ): Promise<HostTensor<'float32'>> {
    const { signal } = options;
    const part = operation === 'encode' ? 'encoder' : 'decoder';
    const io = operation === 'encode' ? ENCODER_IO : DECODER_IO;
    const emit = this.#emitter(options.onProgress);
    throwIfAborted(signal);
    // The session is shared by concurrent callers: an abort stops waiting for it, not its setup.
    const session = await abortable(this.#session(part, emit), signal);
    const progress = (done: number): void =>
      emit({ stage: operation, model: this.#model.name, part, done, total: plan.runs, plan });
    progress(0);
    const f = this.#model.spatialCompressionRatio;
    return runTiled(input, {
      plan,
      scale: operation === 'encode' ? 1 / f : f,
      run: async (x) =>
        (await session.run({ [io.input]: x }, { signal }))[io.output] as HostTensor<'float32'>,
      beforeRun: () => throwIfAborted(signal),
      afterRun: progress,
    });
  }

  /**
   * Throws unless `channels` latent channels are a valid adaptive channel count and this model
   * supports adaptive channels (its channels are separable).
   */
  checkAdaptive(channels: number, operation: 'encode' | 'decode'): void {
    const { name, latentChannels } = this.#model;
    const refusal = this.#options.adaptiveChannelsRefusal;
    if (refusal !== undefined) {
      throw new DcaeError(
        'UNSUPPORTED',
        `${name} cannot ${operation} with ${String(channels)} of its ${latentChannels} latent channels: ${refusal} ` +
          'Adaptive latent channels need a model trained for them (DC-AE 1.5: dc-ae-f32c128-1.5, dc-ae-f64c128-1.5).',
        { detail: { channels, latentChannels } },
      );
    }
    if (!Number.isSafeInteger(channels) || channels < 1 || channels > latentChannels) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `latentChannels must be a whole number from 1 to ${latentChannels} (the latent channels of ${name}); got ${String(channels)}.`,
        { detail: { channels, latentChannels } },
      );
    }
  }

  /** Releases the sessions and the weights file(s). Idempotent. */
  async dispose(): Promise<void> {
    if (this.#disposed) return;
    this.#disposed = true;
    const sessions = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(sessions.map(async (s) => (await s.catch(() => undefined))?.dispose()));
    await Promise.all(weightFiles(this.#options.weights).map((w) => w.file.close()));
  }

  checkOpen(): void {
    if (this.#disposed) {
      throw new DcaeError(
        'SESSION_DISPOSED',
        `Autoencoder ${this.#model.name} was disposed; load it again to use it.`,
      );
    }
  }

  checkPart(part: AutoencoderPart): void {
    const { name, parts } = this.#model;
    if (parts.includes(part)) return;
    throw new DcaeError(
      'UNSUPPORTED',
      `${name} was loaded with parts [${parts.join(', ')}]; ` +
        `${part === 'encoder' ? 'encoding' : 'decoding'} needs the ${part}: load it with parts including '${part}'.`,
    );
  }

  /** Sends an event to this call's listener and to the model's. */
  #emitter(onCall: Emit | undefined): Emit {
    const onModel = this.#options.onProgress;
    return (event) => {
      onCall?.(event);
      onModel?.(event);
    };
  }

  #session(part: AutoencoderPart, emit: Emit): Promise<SessionV1> {
    this.checkOpen();
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
    const model = this.#model.name;
    const { runtime, dtype } = this.#options;
    const weights = weightsOfPart(this.#options.weights, part);
    emit({ stage: 'build', model, part, done: 0, total: 1 });
    let steps = 1;
    const onTensor = (done: number, total: number): void => {
      steps = total + 1;
      emit({ stage: 'build', model, part, done, total: steps });
    };
    const custom = this.#options.sessionGraph;
    const graph = custom ? await custom(part, onTensor) : await partGraph(weights, part, { dtype, onTensor });
    const bytes = serializeModel(graph);
    emit({ stage: 'build', model, part, done: steps, total: steps });
    emit({ stage: 'session', model, part, done: 0, total: 1 });
    const externalData = [
      { location: weights.weightsFile, data: this.#options.externalData(weights.weightsFile) },
    ];
    const session = await runtime.createSession(bytes, { externalData });
    if (this.#disposed) {
      await session.dispose();
      this.checkOpen();
    }
    emit({ stage: 'session', model, part, done: 1, total: 1 });
    return session;
  }
}

/** The first `channels` channels of an NCHW tensor. */
export function takeChannels(t: HostTensor<'float32'>, channels: number): HostTensor<'float32'> {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  const plane = h * w;
  const data = new Float32Array(n * channels * plane);
  for (let i = 0; i < n; i++) {
    data.set(t.data.subarray(i * c * plane, (i * c + channels) * plane), i * channels * plane);
  }
  return { dtype: 'float32', shape: [n, channels, h, w], data };
}

/** An NCHW tensor with zero channels appended up to `channels`. */
export function padChannels(t: HostTensor<'float32'>, channels: number): HostTensor<'float32'> {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  const plane = h * w;
  const data = new Float32Array(n * channels * plane);
  for (let i = 0; i < n; i++) {
    data.set(t.data.subarray(i * c * plane, (i + 1) * c * plane), i * channels * plane);
  }
  return { dtype: 'float32', shape: [n, channels, h, w], data };
}

/** The parts to load: both by default, else those listed (in encoder, decoder order). */
export function checkParts(parts: readonly AutoencoderPart[] | undefined): readonly AutoencoderPart[] {
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

/** `tensor` is float32 NCHW with `channels` channels, at least one image, and only finite values. */
function checkInput(what: string, tensor: HostTensor<'float32'>, channels: number): void {
  const call = what === 'images' ? 'encode(images)' : 'decode(latents)';
  const howTo =
    what === 'images'
      ? "Read an image with readImage(path) from '@dcae/autoencoder/node' and pass imageToTensor(image)."
      : 'Pass the tensor encode() returned, or one read from a .safetensors file.';
  const isObject = typeof tensor === 'object' && tensor !== null;
  if (!isObject || !('dtype' in tensor) || !('shape' in tensor) || !('data' in tensor)) {
    const got = !isObject
      ? String(tensor)
      : Array.isArray(tensor)
        ? 'an array'
        : `an object with keys ${JSON.stringify(Object.keys(tensor).slice(0, 5))}`;
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${call}: ${what} must be a float32 tensor { dtype, shape, data } of shape [N, ${channels}, H, W]; got ${got}.`,
      { hint: { library: howTo } },
    );
  }
  if (!Array.isArray(tensor.shape) || !ArrayBuffer.isView(tensor.data)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${call}: ${what}.shape must be an array of sizes and ${what}.data a typed array (Float32Array).`,
      { hint: { library: howTo } },
    );
  }
  if (tensor.dtype !== 'float32') {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${call}: ${what} must be float32, found ${String(tensor.dtype)}.`,
      {
        hint: { library: 'Convert it with toFloat32() from @dcae/core.' },
      },
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

/** Image sides are multiples of `f` up to `MAX_SIDE`; the error names the nearest valid sizes. */
function checkImageSize(model: string, f: number, height: number, width: number): void {
  const valid = (n: number): boolean => Number.isSafeInteger(n) && n > 0 && n % f === 0 && n <= MAX_SIDE;
  if (valid(height) && valid(width)) return;
  const down = (n: number): number => Math.min(MAX_SIDE, Math.max(f, Math.floor(n / f) * f));
  const up = (n: number): number => Math.min(MAX_SIDE, Math.max(f, Math.ceil(n / f) * f));
  throw new DcaeError(
    'INPUT_SIZE',
    `${model} cannot encode ${width}×${height} (W×H) images: width and height must be multiples of ${f} ` +
      `(at most ${MAX_SIDE}). Nearest valid sizes: ${down(width)}×${down(height)} (crop) or ` +
      `${up(width)}×${up(height)} (pad).`,
    {
      detail: { height, width, multiple: f },
      hint: {
        library: `fitToMultiple(image, ${f}, 'crop' | 'pad') does either.`,
        cli: 'pass --fit crop (keep the top-left region) or --fit pad (pad and crop the result back)',
      },
    },
  );
}

/** Latent sides are 1 to `MAX_SIDE / f`. */
function checkLatentSize(model: string, f: number, height: number, width: number): void {
  const max = MAX_SIDE / f;
  const valid = (n: number): boolean => n >= 1 && n <= max;
  if (valid(height) && valid(width)) return;
  throw new DcaeError(
    'INPUT_SIZE',
    `${model} cannot decode ${width}×${height} (w×h) latents: w and h must be 1 to ${max}.`,
    { detail: { height, width, max } },
  );
}

function abortedError(signal: AbortSignal): DcaeError {
  return new DcaeError('ABORTED', 'Loading or running the autoencoder was aborted.', {
    cause: signal.reason,
  });
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
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
