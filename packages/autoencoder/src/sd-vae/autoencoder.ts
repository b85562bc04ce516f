import { DcaeError } from '@dcae/core';
import type { JsonValue } from '@dcae/core';
import { PartModel } from '../base/autoencoder.js';
import { CONFIG_FILE, openWeights, WEIGHTS_FILE } from '../base/checkpoint.js';
import { checkParts, throwIfAborted } from '../base/runner.js';
import { planWholeImages } from '../base/tiling.js';
import type { BaseAutoencoder, BaseLoadOptions } from '../base/types.js';
import type { ModelFiles } from '@dcae/hub';
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
export type SdVaeAutoencoder = BaseAutoencoder<'sd-vae', SdVaeConfig>;

/**
 * Loads an `AutoencoderKL` folder whose config.json (`json`, already parsed) says so: parses the
 * config strictly, opens `diffusion_pytorch_model.safetensors` (under `keyPrefix`, if given) and
 * binds every tensor (headers only). Sessions are created on first use. `dtype: 'fp16'` is
 * refused; `options.config` is a DC-AE config and not read here.
 */
export async function loadSdVae(
  files: ModelFiles,
  json: JsonValue,
  options: BaseLoadOptions,
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
    const name = files.name;
    const model = new PartModel(
      {
        architecture: 'sd-vae',
        name,
        format: 'diffusers',
        config,
        dtype: 'fp32',
        scalingFactor: config.scalingFactor,
        shiftFactor: config.shiftFactor,
        spatialCompressionRatio: sdVaeCompressionRatio(config),
        inChannels: config.inChannels,
        latentChannels: config.latentChannels,
        parameters: countSdVaeParameters(config),
        weights: {
          name,
          weightsFile,
          file,
          binding,
          build: (part, { params, intermediates, metadata, io }) =>
            (part === 'encoder' ? buildSdVaeEncoderGraph : buildSdVaeDecoderGraph)(config, {
              params,
              intermediates,
              metadata,
              io,
            }),
        },
        isEncoderKey: (k) => k.startsWith('encoder.') || k.startsWith('quant_conv.'),
        plan: (operation, shape, planOptions) =>
          planWholeImages(
            name,
            'an AutoencoderKL',
            operation,
            shape,
            planOptions,
            sdVaeCompressionRatio(config),
            (h, w) => activationBytes(config, h, w),
          ),
        adaptiveChannelsRefusal: 'an AutoencoderKL latent has no channel order to truncate.',
        graphDTypes: ['float32'],
      },
      { ...options, externalData: () => files.externalDataLocation(weightsFile) },
    );
    onProgress?.({ stage: 'load', model: files.name, done: 2, total: 2 });
    return model;
  } catch (error) {
    await file.close();
    throw error;
  }
}

/** Rough peak activation bytes of one image: the largest stage map × 4 live tensors, or the mid attention's N² scores twice. */
function activationBytes(config: SdVaeConfig, height: number, width: number): number {
  const maps = config.blockOutChannels.map((c, s) => 4 * c * (height / 2 ** s) * (width / 2 ** s));
  const tokens = (height * width) / 4 ** (config.blockOutChannels.length - 1);
  const attention = config.midBlockAddAttention ? 2 * tokens * tokens : 0;
  return 4 * Math.max(attention, ...maps);
}
