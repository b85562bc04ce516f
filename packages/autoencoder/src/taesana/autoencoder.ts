import { DcaeError, formatShape, openPth } from '@dcae/core';
import type { SafetensorsFile } from '@dcae/core';
import type { ModelFiles } from '@dcae/hub';
import { PartModel } from '../base/autoencoder.js';
import type { AutoencoderPart } from '../base/io.js';
import type { PartWeights } from '../base/part-graph.js';
import { checkParts, throwIfAborted } from '../base/runner.js';
import { planWholeImages } from '../base/tiling.js';
import type { AutoencoderDType, BaseAutoencoder, BaseLoadOptions } from '../base/types.js';
import type { BoundTensor } from '../base/weights.js';
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

/**
 * A loaded TAESANA (tiny autoencoder for Sana's f32c32 latents) over `taesana_encoder.pth` /
 * `taesana_decoder.pth`, one weights file per part. Its API is dcae's: images in [-1, 1], latents
 * unscaled in the DC-AE f32c32-sana space (`scalingFactor` 0.41407 is Sana's), so it decodes what
 * `dc-ae-f32c32-sana-*` encodes, approximately and much faster. Whole images only (no tiling); no
 * adaptive channels; `format` is `pth`.
 */
export type TaesanaAutoencoder = BaseAutoencoder<'taesana', TaesanaConfig>;

/** What `loadTaesana` takes: the shared load options (a DC-AE `config` is refused). */
export interface LoadTaesanaOptions extends BaseLoadOptions {
  readonly config?: unknown;
}

/** True when a folder's files say TAESANA: `taesana_encoder.pth` and/or `taesana_decoder.pth`. */
export function isTaesanaFolder(names: readonly string[]): boolean {
  return names.includes(TAESANA_FILES.encoder) || names.includes(TAESANA_FILES.decoder);
}

/**
 * Loads a TAESANA folder: opens each `.pth` present through core's safe reader (no pickle code
 * runs; docs/pth-reader.md) and binds every tensor strictly against the layer list. Parts default
 * to the files present; asking for a part whose file is missing is MODEL_NOT_FOUND. Sessions read
 * each part's weights as external data of its own `.pth`.
 */
export async function loadTaesana(
  files: ModelFiles,
  options: LoadTaesanaOptions,
): Promise<TaesanaAutoencoder> {
  const { signal, onProgress } = options;
  const dtype = checkDType(options.dtype);
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
  const name = files.name;
  onProgress?.({ stage: 'load', model: name, done: 0, total: 2 });
  const byPart: Partial<Record<AutoencoderPart, PartWeights>> = {};
  try {
    for (const part of parts) {
      byPart[part] = await bindPart(files, part);
      throwIfAborted(signal);
    }
    onProgress?.({ stage: 'load', model: name, done: 1, total: 2 });
    const encoder = taesanaParameters(TAESANA_ENCODER);
    const decoder = taesanaParameters(TAESANA_DECODER);
    const model = new PartModel(
      {
        architecture: 'taesana',
        name,
        format: 'pth',
        config: TAESANA_CONFIG,
        dtype,
        scalingFactor: TAESANA_LATENT_SCALE,
        shiftFactor: undefined,
        spatialCompressionRatio: TAESANA_COMPRESSION,
        inChannels: TAESANA_CONFIG.inChannels,
        latentChannels: TAESANA_LATENT_CHANNELS,
        parameters: { encoder, decoder, total: encoder + decoder },
        weights: { byPart },
        isEncoderKey: (key) => key.startsWith('encoder.'),
        plan: (operation, shape, planOptions) =>
          planWholeImages(name, 'a TAESANA', operation, shape, planOptions, TAESANA_COMPRESSION, (h, w) =>
            taesanaImageBytes(operation, h, w, planOptions.elementBytes),
          ),
        adaptiveChannelsRefusal: 'TAESANA was not trained with a structured (ordered) latent.',
      },
      { ...options, externalData: (weightsFile) => files.externalDataLocation(weightsFile) },
    );
    onProgress?.({ stage: 'load', model: name, done: 2, total: 2 });
    return model;
  } catch (error) {
    await Promise.all(Object.values(byPart).map((w) => w.file.close()));
    throw error;
  }
}

function checkDType(dtype: unknown): AutoencoderDType {
  if (dtype === undefined || dtype === 'fp32' || dtype === 'fp16') return dtype ?? 'fp32';
  throw new DcaeError('INVALID_ARGUMENT', `dtype must be 'fp32' or 'fp16'; got ${JSON.stringify(dtype)}.`);
}

/**
 * Opens `taesana_<part>.pth` and checks its state_dict against the layer list (same keys, shapes,
 * float dtypes); the binding names each tensor `<part>.<key>`, located in the .pth file.
 */
async function bindPart(files: ModelFiles, part: AutoencoderPart): Promise<PartWeights> {
  const weightsFile = TAESANA_FILES[part];
  const source = `${files.name}/${weightsFile}`;
  const pth = await openPth(await files.byteSource(weightsFile));
  let file: SafetensorsFile;
  try {
    const expected = taesanaStateDict(part === 'encoder' ? TAESANA_ENCODER : TAESANA_DECODER);
    const problems: string[] = [];
    for (const key of pth.tensors.keys()) if (!expected.has(key)) problems.push(`unused ${key}`);
    for (const [key, shape] of expected) {
      const info = pth.tensors.get(key);
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
    file = await pth.asSafetensors();
    const tensors = new Map<string, BoundTensor>();
    for (const [key, shape] of expected) {
      const info = file.tensorInfo(key);
      const bound = `${part}.${key}`;
      tensors.set(bound, {
        key: bound,
        name: key,
        shape,
        dtype: info.dtype === 'F16' ? 'float16' : 'float32',
        offset: info.begin,
        length: info.end - info.begin,
      });
    }
    return {
      name: files.name,
      weightsFile,
      file,
      binding: { format: 'pth', parts: [part], tensors, folds: [] },
      build: (p, graphOptions) =>
        (p === 'encoder' ? buildTaesanaEncoderGraph : buildTaesanaDecoderGraph)(graphOptions),
    };
  } catch (error) {
    await pth.close();
    throw error;
  }
}

/** One image's activations: the widest map (64 channels at half resolution in the encoder, at full resolution in the decoder) × 3 live tensors. */
function taesanaImageBytes(
  operation: 'encode' | 'decode',
  height: number,
  width: number,
  elementBytes = 4,
): number {
  return elementBytes * 64 * height * width * (operation === 'encode' ? 0.25 : 1) * 3;
}
