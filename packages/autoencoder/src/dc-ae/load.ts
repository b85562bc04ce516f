import { DcaeError } from '@dcae/core';
import type { ModelFiles } from '@dcae/hub';
import type { BaseAutoencoder, BaseLoadOptions, AutoencoderDType } from '../base/types.js';
import { PartModel } from '../base/autoencoder.js';
import { openWeights } from '../base/checkpoint.js';
import { checkParts, throwIfAborted } from '../base/runner.js';
import type { DcAeConfig } from './config.js';
import { spatialCompressionRatio } from './config.js';
import { detectModel } from './detect.js';
import { buildDecoderGraph, buildEncoderGraph } from './graph.js';
import { dcAePlanModel } from './plan.js';
import { planTiledRun } from '../base/tiling.js';
import { bindWeights } from './bind.js';
import { countParameters, dcAeCheckpointLayout } from './weights-map.js';
import { resolveQuantizationSpec } from '../base/quantize/int8-graph.js';

/** One loaded DC-AE model: encode images to latents and decode latents to images. */
export type DcAeAutoencoder = BaseAutoencoder<'dc-ae', DcAeConfig>;

export interface LoadDcAeOptions extends BaseLoadOptions {
  /**
   * Use this architecture instead of the folder's config.json (which then may be absent), e.g. to
   * load original-format weights of an architecture that is not a released preset.
   */
  readonly config?: DcAeConfig;
}

/**
 * Loads a DC-AE model folder: reads config.json (diffusers or original format), opens the weights
 * and binds every tensor strictly (headers only). Sessions are created on first use.
 */
export async function loadDcAe(files: ModelFiles, options: LoadDcAeOptions): Promise<DcAeAutoencoder> {
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
    const { config, format, name, weightsFile } = detected;
    const layout = dcAeCheckpointLayout(config);
    const binding = bindWeights(file, layout, {
      config,
      format,
      source:
        `${files.name}/${weightsFile}` + (options.keyPrefix ? ` (tensors under "${options.keyPrefix}")` : ''),
      parts,
    });
    const quantization =
      dtype === 'int8' ? await resolveQuantizationSpec(files, options.quantization) : undefined;
    throwIfAborted(signal);
    const planModel = dcAePlanModel(config);
    const model = new PartModel(
      {
        architecture: 'dc-ae',
        name,
        format,
        config,
        dtype,
        scalingFactor: config.scalingFactor,
        shiftFactor: undefined,
        spatialCompressionRatio: spatialCompressionRatio(config),
        inChannels: config.inChannels,
        latentChannels: config.latentChannels,
        parameters: countParameters(layout),
        weights: {
          name,
          weightsFile,
          file,
          binding,
          build: (part, graphOptions) =>
            (part === 'encoder' ? buildEncoderGraph : buildDecoderGraph)(config, graphOptions),
        },
        isEncoderKey: (key) => key.startsWith('encoder.'),
        quantization,
        plan: (operation, shape, planOptions) => planTiledRun(planModel, operation, shape, planOptions),
        adaptiveChannelsRefusal: adaptiveChannelsRefusal(config),
      },
      { ...options, externalData: () => files.externalDataLocation(weightsFile) },
    );
    onProgress?.({ stage: 'load', model: name, done: 2, total: 2 });
    return model;
  } catch (error) {
    await file.close();
    throw error;
  }
}

/**
 * Why a DC-AE config cannot run with fewer latent channels, or undefined when it can: the
 * encoder-out shortcut averages groups of channels into each latent channel and the decoder-in
 * shortcut repeats each latent channel, so there the channels are not separable (DC-AE 1.0).
 * DC-AE 1.5 has neither (docs/dc-ae-1.5.md).
 */
export function adaptiveChannelsRefusal(config: DcAeConfig): string | undefined {
  const shortcuts = [
    config.encoder.outShortcut ? 'encoder-out' : undefined,
    config.decoder.inShortcut ? 'decoder-in' : undefined,
  ].filter((s) => s !== undefined);
  if (shortcuts.length === 0) return undefined;
  return `its ${shortcuts.join(' and ')} averaging shortcut${shortcuts.length > 1 ? 's mix' : ' mixes'} the latent channels.`;
}

function checkDType(dtype: unknown): AutoencoderDType {
  if (dtype === undefined || dtype === 'fp32' || dtype === 'fp16' || dtype === 'int8') return dtype ?? 'fp32';
  throw new DcaeError(
    'INVALID_ARGUMENT',
    `dtype must be 'fp32', 'fp16' or 'int8'; got ${JSON.stringify(dtype)}.`,
  );
}
