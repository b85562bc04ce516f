import { DcaeError, formatShape, serializeSafetensors } from '@dcae/core';
import { reconstructionMetrics, SSIM_MIN_SIDE, tensorToImages } from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';
import { openModel } from '../model.js';
import type { CommonOptions, ImageInputOptions } from '../options.js';
import { formatMs } from '../reporter.js';
import { cropTensor } from '../tensor-files.js';
import {
  batchPaths,
  outputKind,
  prepareSample,
  readSampleInput,
  reporterFor,
  stageImages,
  withOutputs,
} from './shared.js';
import type { CommandContext } from './shared.js';

export interface ReconstructOptions extends CommonOptions, ImageInputOptions {
  readonly output: string;
  /** Encode and decode with only the first N latent channels (adaptive latent channels, DC-AE 1.5). */
  readonly latentChannels?: number;
  /** Also write original | reconstruction, side by side, as one image (per image of a batch). */
  readonly sideBySide?: string;
}

/** White columns between the original and the reconstruction of a side-by-side image. */
export const SIDE_BY_SIDE_GAP = 8;

/**
 * `original | reconstruction`: both images (of the same size) on one row, separated by
 * {@link SIDE_BY_SIDE_GAP} white columns.
 */
export function sideBySide(original: RgbImage, reconstruction: RgbImage): RgbImage {
  const { width, height } = original;
  if (reconstruction.width !== width || reconstruction.height !== height)
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `side by side: the original is ${width}×${height}, the reconstruction ${reconstruction.width}×${reconstruction.height}.`,
    );
  const outWidth = 2 * width + SIDE_BY_SIDE_GAP;
  const data = new Uint8Array(outWidth * height * 3).fill(255);
  const row = width * 3;
  for (let y = 0; y < height; y++) {
    data.set(original.data.subarray(y * row, (y + 1) * row), y * outWidth * 3);
    data.set(
      reconstruction.data.subarray(y * row, (y + 1) * row),
      (y * outWidth + width + SIDE_BY_SIDE_GAP) * 3,
    );
  }
  return { width: outWidth, height, channels: 3, data };
}

/**
 * `dcae reconstruct`: encode then decode, write the reconstruction and print PSNR and SSIM as
 * efficientvit's evaluator computes them (docs/model-spec.md §6.1): both sides quantised to uint8 first
 * (an image input already is; a .safetensors `sample` is quantised like the output), PSNR and
 * SSIM per image, then the mean. With the default `--fit pad` the reconstruction is cropped back
 * to the input's size, so the metrics cover exactly the input's pixels.
 */
export async function runReconstruct(
  input: string,
  options: ReconstructOptions,
  { io, signal }: CommandContext,
): Promise<void> {
  const reporter = reporterFor(options, { io, signal });
  const kind = outputKind(options.output);
  if (options.sideBySide !== undefined && outputKind(options.sideBySide) !== 'image')
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      `--side-by-side writes an image (.png, .jpg or .webp), not ${options.sideBySide}.`,
      { source: options.sideBySide },
    );
  const result = await withOutputs(options, [input], signal, async (outputs) => {
    const raw = await reporter.step('read', `reading ${input}`, () =>
      readSampleInput(input, options, signal),
    );
    const batch = raw.kind === 'image' ? 1 : raw.sample.shape[0]!;
    const paths = kind === 'safetensors' ? [options.output] : batchPaths(options.output, batch);
    const pairPaths = options.sideBySide === undefined ? [] : batchPaths(options.sideBySide, batch);
    for (const path of [...paths, ...pairPaths]) await outputs.claim(path);

    const model = await openModel(options, reporter, signal, 'reconstruct');
    try {
      const ae = model.autoencoder;
      const { sample, fitted } = prepareSample(raw, options.fit, ae.spatialCompressionRatio);
      // The metrics' preconditions, before the model runs: SSIM needs its 11 × 11 window.
      const measured =
        fitted === undefined
          ? { width: sample.shape[3]!, height: sample.shape[2]! }
          : fitted.applied === 'crop'
            ? { width: fitted.image.width, height: fitted.image.height }
            : fitted.original;
      if (measured.width < SSIM_MIN_SIDE || measured.height < SSIM_MIN_SIDE) {
        throw new DcaeError(
          'INPUT_SIZE',
          `${input} is ${measured.width}×${measured.height}; reconstruct measures SSIM, whose window needs at least ` +
            `${SSIM_MIN_SIDE}×${SSIM_MIN_SIDE} pixels. Nothing was run.`,
          {
            source: input,
            detail: { ...measured, minimum: SSIM_MIN_SIDE },
            hint: {
              cli: `use \`dcae encode\` then \`dcae decode\` for images under ${SSIM_MIN_SIDE}×${SSIM_MIN_SIDE} (no metrics)`,
            },
          },
        );
      }
      const latent = await reporter.step('encode', `encoding ${formatShape(sample.shape)}`, () =>
        ae.encode(sample, { signal, latentChannels: options.latentChannels }),
      );
      let decoded = await reporter.step('decode', `decoding ${formatShape(latent.shape)}`, () =>
        ae.decode(latent, { signal }),
      );
      if (fitted?.applied === 'pad')
        decoded = cropTensor(decoded, fitted.original.width, fitted.original.height);

      const reconstructions = tensorToImages(decoded);
      const references =
        raw.kind === 'image'
          ? [fitted!.applied === 'crop' ? fitted!.image : raw.pixels]
          : tensorToImages(raw.sample);
      const metrics = await reporter.step('metrics', 'computing PSNR and SSIM', async () =>
        reconstructionMetrics(references, reconstructions),
      );

      if (kind === 'safetensors') {
        await outputs.stage(paths[0]!, serializeSafetensors({ sample: decoded }), signal);
      } else {
        await stageImages(outputs, paths, reconstructions, signal);
      }
      if (pairPaths.length > 0)
        await stageImages(
          outputs,
          pairPaths,
          references.map((reference, i) => sideBySide(reference, reconstructions[i]!)),
          signal,
        );
      const t = reporter.timings;
      return {
        text: [
          `PSNR ${metrics.psnr.toFixed(4)} dB`,
          `SSIM ${metrics.ssim.toFixed(6)}`,
          ...(batch > 1
            ? metrics.images.map(
                (m, i) => `  image ${i}: PSNR ${m.psnr.toFixed(4)} dB, SSIM ${m.ssim.toFixed(6)}`,
              )
            : []),
          `latent ${formatShape(latent.shape)}`,
          ...(fitted && fitted.applied !== 'none'
            ? [
                `input ${fitted.original.width}×${fitted.original.height} ${fitted.applied === 'pad' ? 'padded to' : 'cropped to'} ${fitted.image.width}×${fitted.image.height}`,
              ]
            : []),
          `wrote ${paths.join(', ')}`,
          ...(pairPaths.length > 0 ? [`wrote ${pairPaths.join(', ')} (original | reconstruction)`] : []),
          `timings: load ${formatMs(t.load)}, encode ${formatMs(t.encode)}, decode ${formatMs(t.decode)}, metrics ${formatMs(t.metrics)}`,
        ].join('\n'),
        json: {
          command: 'reconstruct',
          input,
          outputs: paths,
          ...(pairPaths.length > 0 ? { sideBySide: pairPaths } : {}),
          psnr: metrics.psnr,
          ssim: metrics.ssim,
          images: metrics.images,
          latent: { shape: latent.shape },
          ...(fitted ? { fit: { applied: fitted.applied, original: fitted.original } } : {}),
          timingsMs: t,
        },
      };
    } finally {
      await model.close();
    }
  });
  reporter.result(result.text, result.json);
}
