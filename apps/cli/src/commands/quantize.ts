import { readdir } from 'node:fs/promises';
import { basename, extname, join } from 'node:path';
import { DcaeError } from '@dcae/core';
import {
  calibrateAutoencoder,
  formatQuantizationSpec,
  imageToTensor,
  QUANTIZATION_FILE,
} from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';
import { autoencoderLoadDefaults, encodeImage, exportOnnx, readImage } from '@dcae/autoencoder/node';
import { directoryModelFiles, resolveModel } from '@dcae/hub/node';
import { MODEL_CATALOG } from '@dcae/diffusion';
import { openModel, startRuntime } from '../model.js';
import type { CommonOptions } from '../options.js';
import { formatMs } from '../reporter.js';
import { reporterFor, withOutputs } from './shared.js';
import type { CommandContext } from './shared.js';

export interface QuantizeOptions extends CommonOptions {
  readonly output: string;
  /** Side of the square each calibration photo is cropped and resized to. @defaultValue 256 */
  readonly calibrationSize?: number;
  readonly maxPixels?: number;
}

const MODEL_FILES = ['encoder.onnx', 'decoder.onnx', QUANTIZATION_FILE];

/**
 * `dcae quantize`: calibrates the model's int8 activation ranges on a few photos and writes, into
 * the output folder, `quantization.json` (the ranges), `calibration-<i>-<name>.png` (the photos
 * as calibrated: centre square, resized) and the int8 graphs `encoder.onnx` / `decoder.onnx` (QDQ, int8 weights
 * inline; any onnxruntime runs them). Nothing is written unless everything succeeded.
 */
export async function runQuantize(
  images: readonly string[],
  options: QuantizeOptions,
  { io, signal }: CommandContext,
): Promise<void> {
  const reporter = reporterFor(options, { io, signal });
  if (images.length === 0) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      'dcae quantize needs calibration photos: --calibration a.png b.jpg …',
    );
  }
  const size = options.calibrationSize ?? 256;
  const result = await withOutputs(options, images, signal, async (outputs) => {
    const dir = await outputs.claimDirectory(options.output, MODEL_FILES);
    const names = images.map((path, i) => `calibration-${i}-${basename(path, extname(path))}.png`);
    for (const name of names) await outputs.claim(join(dir, name));
    const photos = await reporter.step('read', `reading ${images.length} calibration photos`, () =>
      Promise.all(images.map((path) => readImage(path, { maxPixels: options.maxPixels, signal }))),
    );
    const squares = photos.map((p) => centreSquare(p, size));

    const resolved = await resolveModel(options.model, { signal, catalog: MODEL_CATALOG });
    const implied = autoencoderLoadDefaults(resolved);
    const files = { ...directoryModelFiles(resolved.directory), name: resolved.name };
    const runtime = startRuntime(options);
    let spec;
    try {
      spec = await reporter.step(
        'calibrate',
        `calibrating on ${images.length} photos at ${size}×${size}`,
        () =>
          calibrateAutoencoder(files, {
            runtime,
            images: squares.map(imageToTensor),
            imageNames: names,
            config: implied.config,
            keyPrefix: implied.keyPrefix,
            signal,
            onProgress: ({ part, done, total }) => reporter.bar(`calibrate ${part}`, done, total),
          }),
      );
    } finally {
      await runtime.dispose();
    }
    await outputs.stage(
      join(dir, QUANTIZATION_FILE),
      new TextEncoder().encode(formatQuantizationSpec(spec)),
      signal,
    );
    for (const [i, square] of squares.entries()) {
      await outputs.stage(join(dir, names[i]!), await encodeImage(square, 'png'), signal);
    }

    const model = await openModel(
      { ...options, dtype: 'int8', quantization: undefined },
      reporter,
      signal,
      'quantize',
      spec,
    );
    try {
      const temp = join(await outputs.makeTempDir(dir), 'export');
      await reporter.step('export', `writing the int8 graphs to ${options.output}`, () =>
        exportOnnx(model.autoencoder, temp),
      );
      for (const name of (await readdir(temp)).sort()) outputs.adopt(join(temp, name), join(dir, name));
    } finally {
      await model.close();
    }
    const written = [QUANTIZATION_FILE, ...MODEL_FILES.filter((f) => f !== QUANTIZATION_FILE)];
    return {
      text: [
        `wrote ${options.output}: ${written.join(', ')} and the ${names.length} calibration photos (calibration-*.png)`,
        `ranges: ${Object.entries(spec.parts)
          .map(([part, p]) => `${part} ${Object.keys(p.ranges).length} tensors`)
          .join(', ')}; fp32 modules: ${spec.keepFloat.join(', ')}`,
        `use: dcae encode --model ${options.model} --dtype int8 --quantization ${join(options.output, QUANTIZATION_FILE)} …`,
        `timings: calibrate ${formatMs(reporter.timings.calibrate)}, export ${formatMs(reporter.timings.export)}`,
      ].join('\n'),
      json: {
        command: 'quantize',
        output: options.output,
        files: written,
        calibration: names,
        tensors: Object.fromEntries(
          Object.entries(spec.parts).map(([k, p]) => [k, Object.keys(p.ranges).length]),
        ),
        keepFloat: spec.keepFloat,
        timingsMs: reporter.timings,
      },
    };
  });
  reporter.result(result.text, result.json);
}

/** The centre square of `image`, area-resampled to `size`×`size`. */
export function centreSquare(image: RgbImage, size: number): RgbImage {
  const side = Math.min(image.width, image.height);
  const [x0, y0] = [(image.width - side) >> 1, (image.height - side) >> 1];
  const data = new Uint8Array(size * size * 3);
  const step = side / size;
  for (let y = 0; y < size; y++) {
    const [ya, yb] = [Math.floor(y * step), Math.max(Math.floor(y * step) + 1, Math.floor((y + 1) * step))];
    for (let x = 0; x < size; x++) {
      const [xa, xb] = [Math.floor(x * step), Math.max(Math.floor(x * step) + 1, Math.floor((x + 1) * step))];
      for (let c = 0; c < 3; c++) {
        let sum = 0;
        for (let sy = ya; sy < yb; sy++)
          for (let sx = xa; sx < xb; sx++) sum += image.data[((y0 + sy) * image.width + x0 + sx) * 3 + c]!;
        data[(y * size + x) * 3 + c] = Math.round(sum / ((yb - ya) * (xb - xa)));
      }
    }
  }
  return { width: size, height: size, channels: 3, data };
}
