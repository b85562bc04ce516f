import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { Autoencoder, QuantizationSpec } from '@dcae/autoencoder';
import { calibrateAutoencoder, imageToTensor } from '@dcae/autoencoder';
import { directoryModelFiles, loadAutoencoder, readImage } from '@dcae/autoencoder/node';
import { profileModel } from '@dcae/runtime-adapters/node';
import { benchModel } from '../random-weights.js';
import type { BenchCase, Figure, Scenario } from '../scenario.js';

/**
 * int8 (QDQ, calibrated) against fp32 and fp16 on the CPU, side by side in one run, with the
 * quality cost: random-weight full-width dc-ae-f32c32-in-1.0, calibrated on the repository's
 * calibration photos, measured on the held-out ones.
 */

/** The repository's `fixtures/photos` folder, found from this file upwards. */
function photosFolder(): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'fixtures', 'photos');
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`fixtures/photos not found above ${import.meta.url}`);
  }
}

/** Box-downsampled by an integer factor (the photos are 256², the quick run uses 64²). */
function downsample(x: HostTensor<'float32'>, factor: number): HostTensor<'float32'> {
  if (factor === 1) return x;
  const [b, c, h, w] = x.shape as [number, number, number, number];
  const [oh, ow] = [h / factor, w / factor];
  const out = new Float32Array(b * c * oh * ow);
  for (let p = 0; p < b * c; p++)
    for (let y = 0; y < oh; y++)
      for (let xx = 0; xx < ow; xx++) {
        let s = 0;
        for (let i = 0; i < factor; i++)
          for (let j = 0; j < factor; j++) s += x.data[p * h * w + (y * factor + i) * w + xx * factor + j]!;
        out[p * oh * ow + y * ow + xx] = s / factor ** 2;
      }
  return { dtype: 'float32', shape: [b, c, oh, ow], data: out };
}

/** The repository's calibration or held-out photos at `size`² (fixtures/photos). */
export async function photos(set: 'calibration' | 'heldout', size: number) {
  const folder = photosFolder();
  const files = readdirSync(folder)
    .filter((f) => f.startsWith(`${set}-`))
    .sort();
  const images = await Promise.all(files.map(async (f) => imageToTensor(await readImage(join(folder, f)))));
  return { files, images: images.map((x) => downsample(x, x.shape[2]! / size)) };
}

/** PSNR in dB of two images in [-1, 1] (clamped, as they would be saved). */
export function psnrTensors(a: HostTensor<'float32'>, b: HostTensor<'float32'>): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = (Math.max(-1, Math.min(1, a.data[i]!)) - Math.max(-1, Math.min(1, b.data[i]!))) / 2;
    se += d * d;
  }
  return -10 * Math.log10(Math.max(se / a.data.length, 1e-20));
}

/** max |a − b| ÷ max |b| and mean |a − b| ÷ mean |b|. */
export function latentErrors(
  a: HostTensor<'float32'>,
  b: HostTensor<'float32'>,
): { max: number; mean: number } {
  let maxDiff = 0;
  let maxRef = 0;
  let sumDiff = 0;
  let sumRef = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = Math.abs(a.data[i]! - b.data[i]!);
    const r = Math.abs(b.data[i]!);
    maxDiff = Math.max(maxDiff, d);
    maxRef = Math.max(maxRef, r);
    sumDiff += d;
    sumRef += r;
  }
  return { max: maxDiff / maxRef, mean: sumDiff / sumRef };
}

const mean = (xs: readonly number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;

export const int8: Scenario = {
  name: 'int8',
  title: 'int8 (calibrated QDQ) vs fp32 and fp16 on the CPU: speed and quality',
  description:
    'dc-ae-f32c32-in-1.0 at its real widths with random weights (the bench writer), calibrated with ' +
    '`calibrateAutoencoder` on the 3 calibration photos in fixtures/photos (min/max ranges of every quantized ' +
    "Conv's input and output), then loaded three times (`dtype` fp32, fp16, int8) and run side by side in rounds: " +
    'encode of a 256² photo and decode of its latent. Quality on the 4 held-out photos: int8 latents against fp32 ' +
    'latents (max and mean absolute error, relative to max and mean |z|), and PSNR of the int8 reconstruction ' +
    'decode_int8(encode_int8(x)) against the fp32 one. The int8 encoder is profiled with onnxruntime (kernel time per ' +
    'op type after graph optimisation) to show which kernels run. Quick: 1/16 widths at 64².',
  async run(context) {
    const { quick } = context;
    const size = quick ? 64 : 256;
    const runtime = await context.runtime();
    const model = await benchModel(context.cacheDir, 'f32c32-in', {
      tiny: quick,
      log: (m) => context.log(m),
    });
    const calibration = await photos('calibration', size);
    const heldout = await photos('heldout', size);
    const files = directoryModelFiles(model.folder);

    context.log(`calibrating ${model.label} on ${calibration.images.length} photos at ${size}²`);
    const t0 = performance.now();
    const spec: QuantizationSpec = await calibrateAutoencoder(files, {
      runtime,
      config: model.config,
      images: calibration.images,
      imageNames: calibration.files,
    });
    const calibrationMs = performance.now() - t0;

    const load = (dtype: 'fp32' | 'fp16' | 'int8'): Promise<Autoencoder> =>
      loadAutoencoder(model.folder, {
        runtime,
        config: model.config,
        dtype,
        quantization: spec,
      });
    const models = { fp32: await load('fp32'), fp16: await load('fp16'), int8: await load('int8') };
    try {
      const x = heldout.images[0]!;
      const setup: Figure[] = [];
      for (const [dtype, ae] of Object.entries(models)) {
        const s = performance.now();
        await ae.decode(await ae.encode(x));
        setup.push({
          name: `${dtype}: graph build + sessions + first encode/decode`,
          value: performance.now() - s,
          unit: 'ms',
        });
      }
      const z = await models.fp32.encode(x);
      const macs = model.macs(size, size);
      const cases: BenchCase[] = (['fp32', 'int8', 'fp16'] as const).flatMap((dtype) => [
        {
          name: `encode ${size}² ${dtype}`,
          work: { amount: (2 * macs.encoder) / 1e9, unit: 'GFLOP' as const },
          run: () => models[dtype].encode(x),
        },
        {
          name: `decode ${size}² ${dtype}`,
          work: { amount: (2 * macs.decoder) / 1e9, unit: 'GFLOP' as const },
          run: () => models[dtype].decode(z),
        },
      ]);
      const series = await context.compare(cases);

      // Quality on the held-out photos.
      const maxErr: number[] = [];
      const meanErr: number[] = [];
      const psnrInt8: number[] = [];
      const psnrDecoderOnly: number[] = [];
      const psnrFp16: number[] = [];
      for (const image of heldout.images) {
        const [z32, z8, z16] = [
          await models.fp32.encode(image),
          await models.int8.encode(image),
          await models.fp16.encode(image),
        ];
        const e = latentErrors(z8, z32);
        maxErr.push(e.max);
        meanErr.push(e.mean);
        const y32 = await models.fp32.decode(z32);
        psnrInt8.push(psnrTensors(await models.int8.decode(z8), y32));
        psnrDecoderOnly.push(psnrTensors(await models.int8.decode(z32), y32));
        psnrFp16.push(psnrTensors(await models.fp16.decode(z16), y32));
      }

      // Which kernels onnxruntime runs for the int8 encoder.
      const graph = await models.int8.buildGraph('encoder');
      const convs = graph.graph.nodes.filter((n) => n.opType === 'Conv').length;
      const quantized = graph.graph.initializers.filter((i) => i.name.endsWith('/weight_int8')).length;
      const profile = await profileModel(serializeModel(graph), { sample: x }, { runs: 1 });
      const total = profile.totalUs;
      const opShare = profile.byOpType
        .slice(0, 8)
        .map((o) => `${o.opType} ×${o.count}: ${((100 * o.durationUs) / total).toFixed(1)} %`);

      const figures: Figure[] = [
        { name: 'calibration (3 photos, encoder + decoder)', value: calibrationMs, unit: 'ms' },
        ...setup,
        {
          name: 'int8 latent: max |Δz| ÷ max |z| (mean over held-out photos)',
          value: mean(maxErr),
          unit: '',
        },
        {
          name: 'int8 latent: mean |Δz| ÷ mean |z| (mean over held-out photos)',
          value: mean(meanErr),
          unit: '',
        },
        { name: 'PSNR int8 reconstruction vs fp32 reconstruction (mean)', value: mean(psnrInt8), unit: 'dB' },
        {
          name: 'PSNR int8 reconstruction vs fp32 reconstruction (worst photo)',
          value: Math.min(...psnrInt8),
          unit: 'dB',
        },
        {
          name: 'PSNR int8 decoder on fp32 latents vs fp32 (mean)',
          value: mean(psnrDecoderOnly),
          unit: 'dB',
        },
        { name: 'PSNR fp16 reconstruction vs fp32 reconstruction (mean)', value: mean(psnrFp16), unit: 'dB' },
        {
          name: 'int8 encoder profile: QLinearConv share of kernel time',
          value: (100 * (profile.byOpType.find((o) => o.opType === 'QLinearConv')?.durationUs ?? 0)) / total,
          unit: '%',
        },
        {
          name: 'int8 encoder profile: float Conv/FusedConv kernels left',
          value: profile.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'FusedConv').length,
          unit: '',
        },
        { name: 'encoder Convs quantized (of all Convs)', value: quantized, unit: `of ${convs}` },
      ];
      const ratios = (['encode', 'decode'] as const).flatMap((op) => [
        { of: `${op} ${size}² fp32`, to: `${op} ${size}² int8` },
        { of: `${op} ${size}² fp32`, to: `${op} ${size}² fp16` },
      ]);
      return {
        params: {
          model: model.label,
          size: `${size}x${size}`,
          calibrationPhotos: calibration.files.join(' '),
          heldoutPhotos: heldout.files.join(' '),
          keepFloat: spec.keepFloat.join(' '),
          samplesPerCase: context.sampling.samples,
        },
        series,
        ratios,
        figures,
        notes: [
          'Ratios are fp32 time ÷ int8 (or fp16) time: above 1 the lower precision is faster.',
          `int8 encoder kernels (onnxruntime profile, share of kernel time): ${opShare.join('; ')}.`,
          'Weights are random (the bench writer), so PSNR figures compare int8 with fp32 outputs of the same random network; the quality on the trained model is not measured here.',
        ],
      };
    } finally {
      await Promise.all(Object.values(models).map((m) => m.dispose()));
    }
  },
};
