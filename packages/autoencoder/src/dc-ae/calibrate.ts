import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { OnnxModel } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import type { ModelFiles } from '@dcae/hub';
import type { AutoencoderPart } from '../base/io.js';
import type { DcAeAutoencoder as Autoencoder } from './load.js';
import { loadDcAe as loadAutoencoder } from './load.js';
import type { DcAeConfig } from './config.js';
import { DECODER_IO, ENCODER_IO } from '../base/io.js';
import { detectModel } from './detect.js';
import { throwIfAborted } from '../base/runner.js';
import type { ActivationRanges } from '../base/quantize/qdq.js';
import {
  calibrationOutput,
  calibrationTensors,
  DEFAULT_KEEP_FLOAT,
  findConvSites,
  withCalibrationOutputs,
} from '../base/quantize/qdq.js';
import type { QuantizationSpec } from '../base/quantize/spec.js';
import { QUANTIZATION_FORMAT, QUANTIZATION_GRAPH_VERSION } from '../base/quantize/spec.js';

export interface CalibrateOptions {
  readonly runtime: RuntimeV1;
  /**
   * Calibration images [1, inChannels, H, W] in [-1, 1] (H, W multiples of f), e.g. a handful of
   * photos like the ones the model will see. The decoder is calibrated on their float32 latents.
   */
  readonly images: readonly HostTensor<'float32'>[];
  /** File names recorded in the spec (`calibration/<name>`); default `image-<i>.png`. */
  readonly imageNames?: readonly string[];
  readonly config?: DcAeConfig;
  readonly keyPrefix?: string;
  /** @defaultValue both */
  readonly parts?: readonly AutoencoderPart[];
  /** Modules whose Conv stays float32. @defaultValue DEFAULT_KEEP_FLOAT */
  readonly keepFloat?: readonly string[];
  readonly signal?: AbortSignal;
  /** After each calibration run. */
  readonly onProgress?: (event: { part: AutoencoderPart; done: number; total: number }) => void;
}

/**
 * Activation ranges of a DC-AE for `dtype: 'int8'`: runs the float32 graphs on the calibration
 * images with every quantized Conv's input and output as extra outputs and records each tensor's
 * min and max over all images. The result is what `quantization.json` holds.
 */
export async function calibrateAutoencoder(
  files: ModelFiles,
  options: CalibrateOptions,
): Promise<QuantizationSpec> {
  const { runtime, images, signal } = options;
  if (images.length === 0) {
    throw new DcaeError('INVALID_ARGUMENT', 'Calibration needs at least one image; pass a few photos.');
  }
  const keepFloat = options.keepFloat ?? DEFAULT_KEEP_FLOAT;
  const { weightsFile } = await detectModel(files, options.config);
  const model = await loadAutoencoder(files, {
    runtime,
    config: options.config,
    keyPrefix: options.keyPrefix,
    parts: options.parts,
  });
  try {
    for (const image of images) {
      if (image.shape.length !== 4 || image.shape[0] !== 1 || image.shape[1] !== model.config.inChannels) {
        throw new DcaeError(
          'SHAPE_MISMATCH',
          `Calibration images must be [1, ${model.config.inChannels}, H, W]; got [${image.shape.join(', ')}].`,
        );
      }
      model.latentShape(image.shape[2]!, image.shape[3]!); // size check
    }
    const externalData = [{ location: weightsFile, data: files.externalDataLocation(weightsFile) }];
    const run = async (part: AutoencoderPart, inputs: readonly HostTensor<'float32'>[]) => {
      const graph = await model.buildGraph(part, { dtype: 'float32' });
      return calibratePart(runtime, graph, part, inputs, {
        externalData,
        keepFloat,
        signal,
        onProgress: options.onProgress,
      });
    };
    const parts: { encoder?: { ranges: ActivationRanges }; decoder?: { ranges: ActivationRanges } } = {};
    let latents: HostTensor<'float32'>[] | undefined;
    if (model.parts.includes('encoder')) {
      const encoded = await run('encoder', images);
      parts.encoder = { ranges: encoded.ranges };
      latents = encoded.outputs;
    }
    if (model.parts.includes('decoder')) {
      // Without the encoder, latents of the images come from nowhere: calibrate on N(0, 1) noise.
      latents ??= images.map((image, i) => gaussianLatent(model, image, i));
      parts.decoder = { ranges: (await run('decoder', latents)).ranges };
    }
    const [height, width] = [images[0]!.shape[2]!, images[0]!.shape[3]!];
    return {
      format: QUANTIZATION_FORMAT,
      graphVersion: QUANTIZATION_GRAPH_VERSION,
      model: model.name,
      weights: 'int8 per-channel symmetric',
      activations: 'uint8 per-tensor asymmetric (min/max)',
      keepFloat: [...keepFloat],
      parts,
      calibration: {
        images: images.map((_, i) => options.imageNames?.[i] ?? `image-${i}.png`),
        height,
        width,
      },
    };
  } finally {
    await model.dispose();
  }
}

function gaussianLatent(
  model: Autoencoder,
  image: HostTensor<'float32'>,
  seed: number,
): HostTensor<'float32'> {
  const [c, h, w] = model.latentShape(image.shape[2]!, image.shape[3]!);
  const data = new Float32Array(c * h * w);
  let s = (seed + 1) * 0x9e3779b1;
  const uniform = (): number => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return (s + 0.5) / 2 ** 32;
  };
  for (let i = 0; i < data.length; i++) {
    data[i] = Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  }
  return { dtype: 'float32', shape: [1, c, h, w], data };
}

async function calibratePart(
  runtime: RuntimeV1,
  graph: OnnxModel,
  part: AutoencoderPart,
  inputs: readonly HostTensor<'float32'>[],
  options: {
    externalData: { location: string; data: string | Uint8Array }[];
    keepFloat: readonly string[];
    signal: AbortSignal | undefined;
    onProgress: CalibrateOptions['onProgress'];
  },
): Promise<{ ranges: ActivationRanges; outputs: HostTensor<'float32'>[] }> {
  // Conv sites need constant weights to be found; external weights are enough to name them here.
  const names = calibrationTensors(findConvSitesByName(graph, options.keepFloat));
  const io = part === 'encoder' ? ENCODER_IO : DECODER_IO;
  const session: SessionV1 = await runtime.createSession(
    serializeModel(withCalibrationOutputs(graph, names)),
    {
      externalData: options.externalData,
      signal: options.signal,
    },
  );
  const ranges = new Map<string, { min: number; max: number }>();
  const outputs: HostTensor<'float32'>[] = [];
  try {
    for (const [i, x] of inputs.entries()) {
      throwIfAborted(options.signal);
      const result = await session.run({ [io.input]: x }, { signal: options.signal });
      outputs.push(result[io.output] as HostTensor<'float32'>);
      names.forEach((name, k) => {
        const t = result[calibrationOutput(k)]!;
        const r = minMax(t.data as Float32Array);
        const prev = ranges.get(name);
        ranges.set(name, prev ? { min: Math.min(prev.min, r.min), max: Math.max(prev.max, r.max) } : r);
      });
      options.onProgress?.({ part, done: i + 1, total: inputs.length });
    }
  } finally {
    await session.dispose();
  }
  return { ranges: Object.fromEntries(ranges), outputs };
}

/**
 * The Conv sites of a graph whose weights are still external data: the same Convs `findConvSites`
 * finds once they are inline (those reading a parameter directly or through Reshape / Concat).
 */
function findConvSitesByName(graph: OnnxModel, keepFloat: readonly string[]) {
  const placeholder = graph.graph.initializers.map((init) =>
    init.data.kind === 'inline' ||
    (init.data.dtype !== 'float32' && init.data.dtype !== 'float16' && init.data.dtype !== 'bfloat16')
      ? init
      : {
          name: init.name,
          data: {
            kind: 'inline' as const,
            tensor: { dtype: 'float32' as const, shape: init.data.shape, data: new Float32Array(0) },
          },
        },
  );
  // Casts of float16/bfloat16 checkpoint weights to float32 are constants too.
  const nodes = graph.graph.nodes.map((n) =>
    n.opType === 'Cast' && placeholder.some((p) => p.name === n.inputs[0]) ? { ...n, opType: 'Identity' } : n,
  );
  return findConvSites({ ...graph, graph: { ...graph.graph, initializers: placeholder, nodes } }, keepFloat);
}

function minMax(data: Float32Array): { min: number; max: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let i = 0; i < data.length; i++) {
    const v = data[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    throw new DcaeError(
      'NON_FINITE_OUTPUT',
      'A calibration activation is not finite (NaN or infinity); the float32 model overflows on these images.',
    );
  }
  return { min, max };
}
