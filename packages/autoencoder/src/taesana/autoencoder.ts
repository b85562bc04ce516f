import { DcaeError, float16ArrayToFloat32, float32ArrayToFloat16, formatShape, openPth } from '@dcae/core';
import type { HostTensor, PthFile } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { InitializerData, OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type {
  Autoencoder as DcAeAutoencoder,
  AutoencoderPart,
  AutoencoderSummary,
  BuildGraphOptions,
  ExecutionOptions,
  LoadAutoencoderOptions,
  RunCallOptions,
} from '../dc-ae/autoencoder.js';
import type { GraphDType } from '../dc-ae/graph.js';
import type { OnnxExportFile, OnnxExportOptions } from '../dc-ae/onnx-export.js';
import type { RunPlan } from '../dc-ae/tiling.js';
import type { ModelFiles } from '../model-files.js';
import { checkParts, PartRunner, throwIfAborted } from '../shared/runner.js';
import { buildTaesanaDecoderGraph, buildTaesanaEncoderGraph } from './graph.js';
import {
  TAESANA_COMPRESSION,
  TAESANA_DECODER,
  TAESANA_ENCODER,
  TAESANA_FILES,
  TAESANA_LATENT_CHANNELS,
  TAESANA_LATENT_SCALE,
  taesanaParameters,
  taesanaStateDict,
} from './layers.js';

/** TAESANA's fixed architecture, as the fields the runner and the apps read. */
export interface TaesanaConfig {
  readonly inChannels: 3;
  readonly latentChannels: typeof TAESANA_LATENT_CHANNELS;
  readonly spatialCompressionRatio: typeof TAESANA_COMPRESSION;
  /** The latent space TAESANA decodes: DC-AE f32c32-sana latents × this (Sana's diffusion space). */
  readonly latentScale: typeof TAESANA_LATENT_SCALE;
}

export const TAESANA_CONFIG: TaesanaConfig = {
  inChannels: 3,
  latentChannels: TAESANA_LATENT_CHANNELS,
  spatialCompressionRatio: TAESANA_COMPRESSION,
  latentScale: TAESANA_LATENT_SCALE,
};

export interface TaesanaSummary extends Omit<AutoencoderSummary, 'format'> {
  readonly format: 'pth';
}

/**
 * A loaded TAESANA (tiny autoencoder for Sana's f32c32 latents): the DC-AE model's interface over
 * `taesana_encoder.pth` / `taesana_decoder.pth`. Its API is dcae's: images in [-1, 1], latents
 * unscaled in the DC-AE f32c32-sana space (`scalingFactor` 0.41407 is Sana's), so it decodes what
 * `dc-ae-f32c32-sana-*` encodes, approximately and much faster. Whole images only (no tiling); no
 * adaptive channels.
 */
export interface TaesanaAutoencoder extends Omit<
  DcAeAutoencoder,
  'architecture' | 'config' | 'format' | 'summary'
> {
  readonly architecture: 'taesana';
  readonly config: TaesanaConfig;
  readonly format: 'pth';
  summary(): TaesanaSummary;
}

/** True when a folder's files say TAESANA: `taesana_encoder.pth` and/or `taesana_decoder.pth`. */
export function isTaesanaFolder(names: readonly string[]): boolean {
  return names.includes(TAESANA_FILES.encoder) || names.includes(TAESANA_FILES.decoder);
}

interface BoundPart {
  readonly file: PthFile;
  readonly weightsFile: string;
  /** Graph key (`encoder.4.conv.0.weight`) → external data into the .pth. */
  readonly params: ReadonlyMap<string, InitializerData & { kind: 'external' }>;
}

/**
 * Loads a TAESANA folder: opens each `.pth` present through the safe reader (no pickle code runs;
 * docs/pth-reader.md) and binds every tensor strictly against the layer list. Parts default to the
 * files present; asking for a part whose file is missing is MODEL_NOT_FOUND.
 */
export async function loadTaesana(
  files: ModelFiles,
  options: LoadAutoencoderOptions,
): Promise<TaesanaAutoencoder> {
  const { signal, onProgress } = options;
  if (options.dtype !== undefined && options.dtype !== 'fp32' && options.dtype !== 'fp16') {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `dtype must be 'fp32' or 'fp16'; got ${JSON.stringify(options.dtype)}.`,
    );
  }
  if (options.config !== undefined || options.keyPrefix !== undefined) {
    throw new DcaeError(
      'UNSUPPORTED',
      `${files.name} is a TAESANA folder; config and keyPrefix apply to DC-AE checkpoints only.`,
    );
  }
  const names = await files.list();
  const present = (['encoder', 'decoder'] as const).filter((p) => names.includes(TAESANA_FILES[p]));
  const parts = options.parts === undefined ? present : checkParts(options.parts);
  for (const part of parts) {
    if (!present.includes(part)) {
      throw new DcaeError(
        'MODEL_NOT_FOUND',
        `${files.name} has no ${TAESANA_FILES[part]}, so TAESANA's ${part} cannot be loaded; found: ${[...names].sort().join(', ')}.`,
        { source: files.name },
      );
    }
  }
  throwIfAborted(signal);
  onProgress?.({ stage: 'load', model: files.name, done: 0, total: 2 });
  const bound = new Map<AutoencoderPart, BoundPart>();
  try {
    for (const part of parts) {
      bound.set(part, await bindPart(files, part));
      throwIfAborted(signal);
    }
    onProgress?.({ stage: 'load', model: files.name, done: 1, total: 2 });
    const model = new TaesanaModel(files, bound, options);
    onProgress?.({ stage: 'load', model: files.name, done: 2, total: 2 });
    return model;
  } catch (error) {
    await Promise.all([...bound.values()].map((b) => b.file.close()));
    throw error;
  }
}

/** Opens `taesana_<part>.pth` and checks its state_dict against the layer list: same keys, shapes, float dtypes. */
async function bindPart(files: ModelFiles, part: AutoencoderPart): Promise<BoundPart> {
  const weightsFile = TAESANA_FILES[part];
  const source = `${files.name}/${weightsFile}`;
  const file = await openPth(await files.byteSource(weightsFile));
  try {
    const expected = taesanaStateDict(part === 'encoder' ? TAESANA_ENCODER : TAESANA_DECODER);
    const problems: string[] = [];
    for (const key of file.tensors.keys()) if (!expected.has(key)) problems.push(`unused ${key}`);
    for (const [key, shape] of expected) {
      const info = file.tensors.get(key);
      if (info === undefined) problems.push(`missing ${key} ${formatShape(shape)}`);
      else if (formatShape(info.shape) !== formatShape(shape)) {
        problems.push(`shape ${key}: expected ${formatShape(shape)}, found ${formatShape(info.shape)}`);
      } else if (info.dtype !== 'F32' && info.dtype !== 'F16')
        problems.push(`dtype ${key}: ${info.dtype} (F32 or F16 expected)`);
    }
    if (problems.length > 0) {
      throw new DcaeError(
        'WEIGHTS_MISMATCH',
        `${source} is not a TAESANA ${part} (madebyollin/taesd F32${part === 'encoder' ? 'Encoder' : 'Decoder'}, 32 latent channels): ` +
          `${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.slice(0, 40).join('\n')}`,
        { source, detail: { problems } },
      );
    }
    const st = await file.asSafetensors();
    const params = new Map<string, InitializerData & { kind: 'external' }>();
    for (const [key, shape] of expected) {
      const info = st.tensorInfo(key);
      params.set(`${part}.${key}`, {
        kind: 'external',
        dtype: info.dtype === 'F16' ? 'float16' : 'float32',
        shape,
        location: weightsFile,
        offset: info.begin,
        length: info.end - info.begin,
      });
    }
    return { file, weightsFile, params };
  } catch (error) {
    await file.close();
    throw error;
  }
}

class TaesanaModel implements TaesanaAutoencoder {
  readonly architecture = 'taesana';
  readonly name: string;
  readonly format = 'pth';
  readonly config = TAESANA_CONFIG;
  readonly dtype: 'fp32' | 'fp16';
  readonly parts: readonly AutoencoderPart[];
  readonly scalingFactor = TAESANA_LATENT_SCALE;
  readonly spatialCompressionRatio = TAESANA_COMPRESSION;
  readonly latentChannels = TAESANA_LATENT_CHANNELS;
  readonly adaptiveLatentChannels = false;
  readonly #bound: ReadonlyMap<AutoencoderPart, BoundPart>;
  readonly #defaults: ExecutionOptions;
  readonly #runner: PartRunner;

  constructor(
    files: ModelFiles,
    bound: ReadonlyMap<AutoencoderPart, BoundPart>,
    options: LoadAutoencoderOptions,
  ) {
    this.name = files.name;
    this.dtype = options.dtype ?? 'fp32';
    this.parts = [...bound.keys()];
    this.#bound = bound;
    this.#runner = new PartRunner(this, {
      ...options,
      files,
      weightsFile: (part) => TAESANA_FILES[part],
      file: { close: async () => void (await Promise.all([...bound.values()].map((b) => b.file.close()))) },
      adaptiveChannelsRefusal: 'TAESANA was not trained with a structured (ordered) latent.',
      sessionGraph: async (part) => this.#graph(part, {}),
    });
    const { tiling, memoryBudgetBytes, batchSize } = options;
    this.#defaults = { tiling, memoryBudgetBytes, batchSize };
    this.planRun('decode', [1, this.latentChannels, 1, 1]);
  }

  summary(): TaesanaSummary {
    const encoder = taesanaParameters(TAESANA_ENCODER);
    const decoder = taesanaParameters(TAESANA_DECODER);
    const count = (part: AutoencoderPart): number => this.#bound.get(part)?.params.size ?? 0;
    return {
      name: this.name,
      format: 'pth',
      parameters: { encoder, decoder, total: encoder + decoder },
      keys: {
        checkpoint: count('encoder') + count('decoder'),
        encoder: count('encoder'),
        decoder: count('decoder'),
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

  /** Whole images only (`tiling` 'auto' or 'never'); `batchSize` slices the batch. */
  planRun(operation: 'encode' | 'decode', shape: readonly number[], options: ExecutionOptions = {}): RunPlan {
    const tiling = options.tiling ?? this.#defaults.tiling ?? 'auto';
    if (tiling !== 'auto' && tiling !== 'never') {
      throw new DcaeError(
        'UNSUPPORTED',
        `${this.name} is a TAESANA, which runs whole images only; tiling ${JSON.stringify(tiling)} is not supported (use 'auto' or 'never').`,
      );
    }
    const option = options.batchSize ?? this.#defaults.batchSize ?? 'auto';
    if (option !== 'auto' && (!Number.isSafeInteger(option) || option < 1)) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `batchSize must be 'auto' or a whole number of images ≥ 1; got ${String(option)}.`,
      );
    }
    const [images, , h, w] = shape as [number, number, number, number];
    const batchSize = option === 'auto' ? images : Math.min(images, option);
    const f = operation === 'encode' ? 1 : this.spatialCompressionRatio;
    const height = h * f;
    const width = w * f;
    // The widest activation: 64 channels at half resolution (encoder), or at full resolution (decoder).
    const element = this.dtype === 'fp16' ? 2 : 4;
    const perImage = element * 64 * height * width * (operation === 'encode' ? 0.25 : 1) * 3;
    return {
      operation,
      height,
      width,
      tiles: undefined,
      batchSize,
      runs: Math.ceil(images / batchSize),
      estimatedBytes: batchSize * perImage,
    };
  }

  buildGraph(part: AutoencoderPart, options: BuildGraphOptions = {}): Promise<OnnxModel> {
    return Promise.resolve(this.#graph(part, options));
  }

  #graph(part: AutoencoderPart, options: BuildGraphOptions & { params?: ParamResolver }): OnnxModel {
    this.#runner.checkOpen();
    this.#runner.checkPart(part);
    const bound = this.#bound.get(part)!;
    const params: ParamResolver =
      options.params ??
      ((key, shape) => {
        const data = bound.params.get(key);
        if (data === undefined || formatShape(data.shape) !== formatShape(shape)) {
          throw new Error(`dcae internal error: TAESANA graph reads ${key} ${formatShape(shape)}, not bound`);
        }
        return data;
      });
    const build = part === 'encoder' ? buildTaesanaEncoderGraph : buildTaesanaDecoderGraph;
    const dtype: GraphDType = options.dtype ?? (this.dtype === 'fp16' ? 'float16' : 'float32');
    return build({
      params,
      dtype,
      io: options.io,
      intermediates: options.intermediates,
      metadata: { model: this.name },
    });
  }

  /** `encoder.onnx` / `decoder.onnx` with the weights inline, in the model's dtype (TAESANA is small). */
  async onnxFiles(options: OnnxExportOptions = {}): Promise<OnnxExportFile[]> {
    this.#runner.checkOpen();
    const out: OnnxExportFile[] = [];
    const dtype: GraphDType = this.dtype === 'fp16' ? 'float16' : 'float32';
    for (const part of this.parts) {
      const bound = this.#bound.get(part)!;
      const inline = new Map<string, HostTensor>();
      for (const [key, data] of bound.params) {
        throwIfAborted(options.signal);
        const tensor = await bound.file.readTensor(key.slice(part.length + 1));
        inline.set(key, convert(tensor, dtype, data.shape));
      }
      const model = this.#graph(part, {
        dtype,
        io: options.io,
        params: (key) => ({ kind: 'inline', tensor: inline.get(key)! }),
      });
      const bytes = serializeModel(model);
      out.push({
        name: `${part}.onnx`,
        size: bytes.byteLength,
        chunks: async function* () {
          yield bytes;
        },
      });
    }
    return out;
  }

  dispose(): Promise<void> {
    return this.#runner.dispose();
  }
}

/** A float16 or float32 checkpoint tensor in the graph's dtype. */
function convert(tensor: HostTensor, dtype: GraphDType, shape: readonly number[]): HostTensor {
  if (tensor.dtype === 'float16' && dtype === 'float16') return { ...tensor, shape };
  if (tensor.dtype === 'float32' && dtype === 'float32') return { ...tensor, shape };
  const f32 =
    tensor.dtype === 'float16'
      ? float16ArrayToFloat32(tensor.data as Uint16Array)
      : (tensor.data as Float32Array);
  if (dtype === 'float32') return { dtype: 'float32', shape, data: f32 };
  return { dtype: 'float16', shape, data: float32ArrayToFloat16(f32) };
}
