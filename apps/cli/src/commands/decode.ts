import { DcaeError, formatShape, serializeSafetensors } from '@dcae/core';
import { latentForDecoder, parseLatentMetadata, takeLatentChannels, tensorToImages } from '@dcae/autoencoder';
import { MODEL_CATALOG } from '@dcae/diffusion';
import { openModel } from '../model.js';
import type { CommonOptions } from '../options.js';
import { formatMs } from '../reporter.js';
import { cropTensor, isSafetensorsPath, readTensorFile } from '../tensor-files.js';
import { batchPaths, outputKind, reporterFor, stageImages, withOutputs } from './shared.js';
import type { CommandContext } from './shared.js';

export interface DecodeOptions extends CommonOptions {
  readonly output: string;
  /** Decode only the first N channels of the latent, the rest taken as zero (adaptive latent channels, DC-AE 1.5). */
  readonly latentChannels?: number;
  /** The latent is in diffusion space although its metadata does not say so. */
  readonly scaled?: boolean;
}

/**
 * `dcae decode`: .safetensors `latent` (unscaled) → image(s) or .safetensors `sample`.
 * Images are quantised as docs/model-spec.md §7.4 (round half up, clamped); a batch of N > 1 writes
 * `name-0.ext` … `name-(N−1).ext`. A `sample` output is float32 and not clamped. When the latent
 * records `dcae.original_size` (encode --fit pad), the output is cropped back to that size.
 * The latent's metadata is honoured (docs/latent-format.md): a diffusion-space latent
 * (`dcae generate -o x.safetensors`) is divided by its scaling factor first, and a latent of
 * another model is refused unless `--force`.
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
    const { tensor: stored, metadata: raw } = await reporter.step('read', `reading ${input}`, () =>
      readTensorFile(input, 'latent', signal),
    );
    const metadata = parseLatentMetadata(raw, input);
    let latent = stored;
    const batch = latent.shape[0]!;
    const paths = kind === 'safetensors' ? [options.output] : batchPaths(options.output, batch);
    for (const path of paths) await outputs.claim(path);

    const model = await openModel(options, reporter, signal, 'decode');
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
      const prepared = latentForDecoder(latent, metadata, ae, {
        source: input,
        allowModelMismatch: options.force === true,
        catalog: MODEL_CATALOG,
        assumeDiffusionSpace: options.scaled === true,
        onWarning: (message) => reporter.progress(`warning: ${message}`),
      });
      if (prepared.unscaledBy !== undefined)
        reporter.progress(
          `${input} is a diffusion-space latent: dividing by its scaling factor ${prepared.unscaledBy}`,
        );
      let sample = await reporter.step('decode', `decoding ${formatShape(latent.shape)}`, () =>
        ae.decode(prepared.latent, { signal }),
      );
      const original = metadata.originalSize;
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
            (original ? ' (cropped to the size recorded by encode --fit pad)' : '') +
            (prepared.unscaledBy !== undefined
              ? ` (diffusion-space latent, divided by its scaling factor ${prepared.unscaledBy})`
              : ''),
          `timings: load ${formatMs(reporter.timings.load)}, decode ${formatMs(reporter.timings.decode)}`,
        ].join('\n'),
        json: {
          command: 'decode',
          input,
          outputs: paths,
          sample: { shape: sample.shape },
          ...(original ? { croppedTo: original } : {}),
          latentSpace: metadata.space ?? (options.scaled ? 'diffusion' : 'autoencoder'),
          unscaledBy: prepared.unscaledBy ?? null,
          timingsMs: reporter.timings,
        },
      };
    } finally {
      await model.close();
    }
  });
  reporter.result(result.text, result.json);
}
