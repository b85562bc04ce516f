import {
  bfloat16ArrayToFloat32,
  float16ArrayToFloat32,
  float32ArrayToFloat16,
  formatShape,
  invariant,
} from '@dcae/core';
import type { HostTensor, SafetensorsDType, SafetensorsFile } from '@dcae/core';
import type { InitializerData, ParamResolver } from '@dcae/core/onnx';
import type { AutoencoderPart } from './io.js';

/**
 * Weight bindings and the initializers the graphs read, for every family (each family binds its
 * own checkpoint strictly, e.g. `dc-ae/bind.ts`, and produces a `WeightBinding`). Only headers are read here; tensor data stays in the file (ONNX external data) except for
 * the BatchNorm folds and the conversions of float16 graphs.
 */

/** `diffusers`: `diffusion_pytorch_model.safetensors` keys; `original`: efficientvit `model.safetensors` keys. */
export type CheckpointFormat = 'diffusers' | 'original';

/** Float types a checkpoint may store weights in; graphs read them as stored or converted (see `checkpointParams`). */
export type WeightDType = 'float32' | 'float16' | 'bfloat16';

export const WEIGHT_DTYPES: Readonly<Partial<Record<SafetensorsDType, WeightDType>>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
};

/** A diffusers-named tensor located in the checkpoint file (possibly a row block of a fused tensor). */
export interface BoundTensor {
  readonly key: string;
  /** The tensor's name in the file. */
  readonly name: string;
  readonly shape: readonly number[];
  readonly dtype: WeightDType;
  /** Absolute byte range in the file. */
  readonly offset: number;
  readonly length: number;
}

/** A BatchNorm folded into the conv before it (original-format checkpoints), read at graph build. */
export interface BatchNormFold {
  /** The conv weight key, e.g. `decoder.up_blocks.1.1.conv2.weight`. */
  readonly conv: string;
  /** The BatchNorm module path, e.g. `decoder.up_blocks.1.1.norm`. */
  readonly norm: string;
  /** The key the graph reads the folded bias from (no such tensor exists in the checkpoint). */
  readonly bias: string;
}

/** What a family's strict binder produces: every tensor a part's graph reads, located in the file. */
export interface WeightBinding {
  readonly format: CheckpointFormat;
  /** The parts whose tensors were bound. */
  readonly parts: readonly AutoencoderPart[];
  /** Every bound float tensor, by diffusers key (BatchNorm counters are skipped). */
  readonly tensors: ReadonlyMap<string, BoundTensor>;
  readonly folds: readonly BatchNormFold[];
}

const BN_EPS = 1e-5;

/** The bound tensor `key` as a float32 host tensor with its diffusers shape (F16 and BF16 widened exactly). */
export async function readBound(
  file: SafetensorsFile,
  binding: WeightBinding,
  key: string,
): Promise<HostTensor<'float32'>> {
  const t = binding.tensors.get(key);
  invariant(t !== undefined, () => `no bound tensor ${key}`);
  const bytes = await file.source.read(t.offset, t.length);
  // A copy: `bytes` may be a view at an offset that is not a multiple of the element size.
  const raw = new Uint8Array(t.length);
  raw.set(bytes);
  const data =
    t.dtype === 'float32'
      ? new Float32Array(raw.buffer)
      : t.dtype === 'float16'
        ? float16ArrayToFloat32(new Uint16Array(raw.buffer))
        : bfloat16ArrayToFloat32(new Uint16Array(raw.buffer));
  return { dtype: 'float32', shape: t.shape, data };
}

/** `tensor` in the graph's weight dtype: float32 as is, float16 rounded to nearest even. */
export function toWeightDType(tensor: HostTensor<'float32'>, dtype: 'float32' | 'float16'): HostTensor {
  if (dtype === 'float32') return tensor;
  return { dtype, shape: tensor.shape, data: float32ArrayToFloat16(tensor.data) };
}

/**
 * Folds an eval-mode BatchNorm into the bias-free conv (or Linear) before it:
 * s = γ / √(running_var + 1e-5), W′[o] = W[o] · s[o], b′[o] = β[o] − running_mean[o] · s[o].
 * Computed in float64 from the float32 weights and stored as float32 (one rounding per value).
 */
export async function foldBatchNorm(
  file: SafetensorsFile,
  binding: WeightBinding,
  fold: BatchNormFold,
): Promise<{ weight: HostTensor<'float32'>; bias: HostTensor<'float32'> }> {
  const read = (key: string) => readBound(file, binding, key);
  const [w, gamma, beta, mean, variance] = await Promise.all([
    read(fold.conv),
    read(`${fold.norm}.weight`),
    read(`${fold.norm}.bias`),
    read(`${fold.norm}.running_mean`),
    read(`${fold.norm}.running_var`),
  ]);
  const channels = w.shape[0]!;
  const perChannel = w.data.length / channels;
  const weight = new Float32Array(w.data.length);
  const bias = new Float32Array(channels);
  for (let o = 0; o < channels; o++) {
    const scale = gamma.data[o]! / Math.sqrt(variance.data[o]! + BN_EPS);
    for (let i = o * perChannel; i < (o + 1) * perChannel; i++) weight[i] = w.data[i]! * scale;
    bias[o] = beta.data[o]! - mean.data[o]! * scale;
  }
  return {
    weight: { dtype: 'float32', shape: w.shape, data: weight },
    bias: { dtype: 'float32', shape: [channels], data: bias },
  };
}

/** The folded BatchNorms whose conv belongs to `part` (`encoder.` or `decoder.` keys), as inline initializers by key. */
export async function foldedInitializers(
  file: SafetensorsFile,
  binding: WeightBinding,
  part: AutoencoderPart,
): Promise<Map<string, HostTensor<'float32'>>> {
  const folded = new Map<string, HostTensor<'float32'>>();
  for (const fold of binding.folds) {
    if (!fold.conv.startsWith(`${part}.`)) continue;
    const { weight, bias } = await foldBatchNorm(file, binding, fold);
    folded.set(fold.conv, weight);
    folded.set(fold.bias, bias);
  }
  return folded;
}

/**
 * The inline initializers a run-time graph of `part` needs in `dtype`: the BatchNorm folds, and
 * for float16 graphs every tensor not stored as F16, converted (external data into a float32 file
 * cannot be read as float16). `onTensor(done, total)` follows the conversion.
 */
export async function inlineInitializers(
  file: SafetensorsFile,
  binding: WeightBinding,
  part: AutoencoderPart,
  dtype: 'float32' | 'float16',
  onTensor?: (done: number, total: number) => void,
): Promise<Map<string, HostTensor>> {
  const folded = await foldedInitializers(file, binding, part);
  const inline = new Map<string, HostTensor>();
  for (const [key, tensor] of folded) inline.set(key, toWeightDType(tensor, dtype));
  if (dtype === 'float32') return inline;
  const keys = [...binding.tensors.values()]
    .filter((t) => t.key.startsWith(`${part}.`) && t.dtype !== dtype && !folded.has(t.key))
    .map((t) => t.key);
  for (const [i, key] of keys.entries()) {
    inline.set(key, toWeightDType(await readBound(file, binding, key), dtype));
    onTensor?.(i + 1, keys.length);
  }
  return inline;
}

/**
 * The resolver graphs use at run time: `inline` tensors in the model, every other weight as
 * external data pointing straight into the checkpoint file (named `location` in the model), in
 * the dtype it is stored in (the graph casts it to its compute dtype where they differ).
 */
export function checkpointParams(
  binding: WeightBinding,
  inline: ReadonlyMap<string, HostTensor>,
  location: string,
): ParamResolver {
  return (key, expected) => {
    const tensor = inline.get(key);
    const data: InitializerData | undefined = tensor
      ? { kind: 'inline', tensor }
      : externalData(binding.tensors.get(key), location);
    invariant(data !== undefined, () => `graph reads ${key}, which the checkpoint layout does not have`);
    const shape = data.kind === 'inline' ? data.tensor.shape : data.shape;
    invariant(
      formatShape(shape) === formatShape(expected),
      () => `${key}: graph expects ${formatShape(expected)}, bound ${formatShape(shape)}`,
    );
    return data;
  };
}

function externalData(t: BoundTensor | undefined, location: string): InitializerData | undefined {
  if (t === undefined) return undefined;
  return { kind: 'external', dtype: t.dtype, shape: t.shape, location, offset: t.offset, length: t.length };
}
