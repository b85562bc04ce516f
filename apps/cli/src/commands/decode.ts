import { DcaeError, formatShape, serializeSafetensors } from '@dcae/core';
import { takeLatentChannels, tensorToImages } from '@dcae/autoencoder';
import { openModel } from '../model.js';
import type { CommonOptions } from '../options.js';
import { formatMs } from '../reporter.js';
import { cropTensor, isSafetensorsPath, originalSizeOf, readTensorFile } from '../tensor-files.js';
import { batchPaths, outputKind, reporterFor, stageImages, withOutputs } from './shared.js';
import type { CommandContext } from './shared.js';

export interface DecodeOptions extends CommonOptions {
  readonly output: string;
  /** Decode only the first N channels of the latent, the rest taken as zero (adaptive latent channels, DC-AE 1.5). */
  readonly latentChannels?: number;
}

/**
 * `dcae decode`: .safetensors `latent` (unscaled) → image(s) or .safetensors `sample`.
 * Images are quantised as spec §7.4 (round half up, clamped); a batch of N > 1 writes
 * `name-0.ext` … `name-(N−1).ext`. A `sample` output is float32 and not clamped. When the latent
 * records `dcae.original_size` (encode --fit pad), the output is cropped back to that size.
 */
export async function runDecode(
  input: string,
  options: DecodeOptions,
  { io, signal }: CommandContext,
): Promise<void> {
  const reporter = reporterFor(options, { io, signal });
  if (!isSafetensorsPath(input)) {
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      `decode reads a .safetensors file with tensor "latent", not ${input}.`,
      {
        source: input,
      },
    );
  }
  const kind = outputKind(options.output);
  const result = await withOutputs(options, [input], signal, async (outputs) => {
    const read = await reporter.step('read', `reading ${input}`, () =>
      readTensorFile(input, 'latent', signal),
    );
    const metadata = read.metadata;
    let latent = read.tensor;
    const batch = latent.shape[0]!;
    const paths = kind === 'safetensors' ? [options.output] : batchPaths(options.output, batch);
    for (const path of paths) await outputs.claim(path);

    const model = await openModel(options, reporter, signal);
    try {
      const ae = model.autoencoder;
      const channels = latent.shape[1]!;
      const wanted = options.latentChannels;
      if (wanted !== undefined && wanted > channels) {
        throw new DcaeError(
          'INVALID_ARGUMENT',
          `--latent-channels ${wanted}: ${input} has only ${channels} latent channels.`,
          { source: input },
        );
      }
      if (wanted !== undefined && wanted < channels) latent = takeLatentChannels(latent, wanted);
      const partial = ae.adaptiveLatentChannels && latent.shape[1]! < ae.latentChannels;
      if (latent.shape[1] !== ae.latentChannels && !partial) {
        throw new DcaeError(
          'SHAPE_MISMATCH',
          `${input}: "latent" has shape ${formatShape(latent.shape)}, but ${ae.name} expects ${ae.latentChannels} latent channels ([N, ${ae.latentChannels}, h, w])` +
            (latent.shape[1]! < ae.latentChannels && !ae.adaptiveLatentChannels
              ? '; only DC-AE 1.5 models decode latents with fewer channels.'
              : '.'),
          { source: input },
        );
      }
      let sample = await reporter.step('decode', `decoding ${formatShape(latent.shape)}`, () =>
        ae.decode(latent, { signal }),
      );
      const original = originalSizeOf(metadata);
      if (original) sample = cropTensor(sample, original.width, original.height);

      if (kind === 'safetensors') {
        await outputs.stage(paths[0]!, serializeSafetensors({ sample }), signal);
      } else {
        await stageImages(outputs, paths, tensorToImages(sample), signal);
      }
      const [, , height, width] = sample.shape as [number, number, number, number];
      return {
        text: [
          `wrote ${paths.join(', ')}: ${batch} image${batch === 1 ? '' : 's'} of ${width}×${height}` +
            (original ? ' (cropped to the size recorded by encode --fit pad)' : ''),
          `timings: load ${formatMs(reporter.timings.load)}, decode ${formatMs(reporter.timings.decode)}`,
        ].join('\n'),
        json: {
          command: 'decode',
          input,
          outputs: paths,
          sample: { shape: sample.shape },
          ...(original ? { croppedTo: original } : {}),
          timingsMs: reporter.timings,
        },
      };
    } finally {
      await model.close();
    }
  });
  reporter.result(result.text, result.json);
}
