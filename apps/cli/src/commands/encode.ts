import { DcaeError, formatShape, serializeSafetensors } from '@dcae/core';
import { openModel } from '../model.js';
import type { CommonOptions, ImageInputOptions } from '../options.js';
import { formatMs } from '../reporter.js';
import { formatLatentMetadata } from '@dcae/autoencoder';
import { isSafetensorsPath } from '../tensor-files.js';
import { prepareSample, readSampleInput, reporterFor, withOutputs } from './shared.js';
import type { CommandContext } from './shared.js';

export interface EncodeOptions extends CommonOptions, ImageInputOptions {
  readonly output: string;
  /** Keep only the first N latent channels (adaptive latent channels, DC-AE 1.5). */
  readonly latentChannels?: number;
}

/**
 * `dcae encode`: image or .safetensors `sample` → .safetensors `latent` (float32, unscaled: the
 * encoder's output before the scaling factor; multiply by it for diffusion). With `--fit pad` the
 * original size is recorded as `dcae.original_size`, and `dcae decode` crops back to it.
 */
export async function runEncode(
  input: string,
  options: EncodeOptions,
  { io, signal }: CommandContext,
): Promise<void> {
  const reporter = reporterFor(options, { io, signal });
  if (!isSafetensorsPath(options.output)) {
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      `encode writes a .safetensors file (tensor "latent"), not ${options.output}.`,
      { source: options.output },
    );
  }
  const result = await withOutputs(options, [input], signal, async (outputs) => {
    const output = await outputs.claim(options.output);
    const raw = await reporter.step('read', `reading ${input}`, () =>
      readSampleInput(input, options, signal),
    );
    const model = await openModel(options, reporter, signal, 'encode');
    try {
      const ae = model.autoencoder;
      const { sample, fitted } = prepareSample(raw, options.fit, ae.spatialCompressionRatio);
      const latent = await reporter.step('encode', `encoding ${formatShape(sample.shape)}`, () =>
        ae.encode(sample, { signal, latentChannels: options.latentChannels }),
      );
      // The latent file contract (docs/latent-format.md): unscaled, with the model that made it.
      const metadata = formatLatentMetadata({
        model: ae.name,
        space: 'autoencoder',
        ...(ae.scalingFactor !== undefined ? { scalingFactor: ae.scalingFactor } : {}),
        dtype: options.dtype ?? 'fp32',
        ...(fitted?.applied === 'pad' ? { originalSize: fitted.original } : {}),
      });
      await outputs.stage(output, serializeSafetensors({ latent }, metadata), signal);
      return {
        text: [
          `wrote ${options.output}: latent ${formatShape(latent.shape)} float32 (unscaled; scaling factor ${ae.scalingFactor ?? 'not documented'})`,
          ...(fitted && fitted.applied !== 'none'
            ? [
                `input ${fitted.original.width}×${fitted.original.height} ${fitted.applied === 'pad' ? 'padded' : 'cropped'} to ${fitted.image.width}×${fitted.image.height}`,
              ]
            : []),
          `timings: load ${formatMs(reporter.timings.load)}, encode ${formatMs(reporter.timings.encode)}`,
        ].join('\n'),
        json: {
          command: 'encode',
          input,
          output: options.output,
          latent: { name: 'latent', dtype: 'float32', shape: latent.shape },
          scalingFactor: ae.scalingFactor ?? null,
          ...(fitted
            ? {
                fit: {
                  applied: fitted.applied,
                  original: fitted.original,
                  encoded: { width: fitted.image.width, height: fitted.image.height },
                },
              }
            : {}),
          timingsMs: reporter.timings,
        },
      };
    } finally {
      await model.close();
    }
  });
  reporter.result(result.text, result.json);
}
