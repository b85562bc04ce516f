import {
  bfloat16ArrayToFloat32,
  DcaeError,
  DTYPE_BYTES,
  float16ArrayToFloat32,
  float32ArrayToFloat16,
  formatShape,
  invariant,
} from '@dcae/core';
import type { HostTensor, SafetensorsDType, SafetensorsFile } from '@dcae/core';
import type { InitializerData, ParamResolver } from '@dcae/core/onnx';
import type { AutoencoderPart } from './autoencoder.js';
import type { DcAeConfig } from './config.js';
import type { BatchNormFold, CheckpointParam, DcAeCheckpointLayout, MappedKey } from './weights-map.js';
import { originalKeyFlags, originalToDiffusersKey } from './weights-map.js';

/**
 * Strict binding of a checkpoint to the tensors a config implies, and the initializers the graphs
 * read. Only headers are read here; tensor data stays in the file (ONNX external data) except for
 * the BatchNorm folds and the conversions of float16 graphs.
 */

/** `diffusers`: `diffusion_pytorch_model.safetensors` keys; `original`: efficientvit `model.safetensors` keys. */
export type CheckpointFormat = 'diffusers' | 'original';

/** Float types a checkpoint may store weights in; graphs read them as stored or converted (see `checkpointParams`). */
export type WeightDType = 'float32' | 'float16' | 'bfloat16';

const WEIGHT_DTYPES: Readonly<Partial<Record<SafetensorsDType, WeightDType>>> = {
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

export interface WeightBinding {
  readonly format: CheckpointFormat;
  /** The parts whose tensors were bound. */
  readonly parts: readonly AutoencoderPart[];
  /** Every bound float tensor, by diffusers key (BatchNorm counters are skipped). */
  readonly tensors: ReadonlyMap<string, BoundTensor>;
  readonly folds: readonly BatchNormFold[];
}

const MAX_LISTED = 60;
const BN_EPS = 1e-5;

interface Problem {
  readonly kind: 'missing' | 'unused' | 'shape' | 'dtype';
  readonly text: string;
}

/** A checkpoint tensor seen under its diffusers key. */
interface Candidate {
  readonly name: string;
  readonly mapped: MappedKey;
}

/**
 * Binds every tensor of `file` to `layout`, strictly: one WEIGHTS_MISMATCH error lists every
 * missing, unused, mis-shaped or non-float (F32, F16, BF16) tensor. Original-format keys go through
 * the renaming rules of docs/model-spec.md §3.3, with the conv_in/conv_out variants chosen from `config`.
 * With `parts` (default both), only those parts' tensors are bound and the other part's are ignored.
 */
export function bindWeights(
  file: SafetensorsFile,
  fullLayout: DcAeCheckpointLayout,
  options: {
    config: DcAeConfig;
    format: CheckpointFormat;
    source?: string;
    parts?: readonly AutoencoderPart[];
  },
): WeightBinding {
  const { format } = options;
  const parts = options.parts ?? ['encoder', 'decoder'];
  const inParts = (key: string): boolean => parts.some((part) => key.startsWith(`${part}.`));
  const layout = {
    params: fullLayout.params.filter((p) => inParts(p.key)),
    folds: fullLayout.folds.filter((f) => inParts(f.conv)),
  };
  const otherParts = new Set(fullLayout.params.filter((p) => !inParts(p.key)).map((p) => p.key));
  const source = options.source ?? file.source.name;
  const flags = originalKeyFlags(options.config);
  const candidates = new Map<string, Candidate>();
  const problems: Problem[] = [];
  for (const name of file.header.tensors.keys()) {
    const mapped = format === 'original' ? originalToDiffusersKey(name, flags) : [{ key: name }];
    for (const m of mapped) {
      const clash = candidates.get(m.key);
      if (clash)
        problems.push({
          kind: 'unused',
          text: `${name} maps to ${m.key}, which ${clash.name} already provides`,
        });
      else candidates.set(m.key, { name, mapped: m });
    }
  }

  const tensors = new Map<string, BoundTensor>();
  const used = new Set<string>();
  const reportedMissing = new Set<string>();
  for (const p of layout.params) {
    const found = candidates.get(p.key);
    if (found === undefined) {
      // Missing keys are named as the checkpoint would name them (to_q/to_k/to_v share one fused key).
      const name = format === 'original' ? p.original : p.key;
      if (p.role !== 'counter' && !reportedMissing.has(name)) {
        reportedMissing.add(name);
        const also =
          name === p.key ? '' : ` (diffusers ${p.key.replace(/to_q\.weight$/, 'to_q|to_k|to_v.weight')})`;
        problems.push({
          kind: 'missing',
          text: `${name}${also} expected ${formatShape(expectedShape(p, format))}`,
        });
      }
      continue;
    }
    used.add(found.name);
    if (p.role === 'counter') continue; // num_batches_tracked: an int64 training counter, never read
    const info = file.header.tensors.get(found.name)!;
    const label = found.name === p.key ? p.key : `${found.name} (diffusers ${p.key})`;
    const dtype = WEIGHT_DTYPES[info.dtype];
    const located = locate(found, info.shape, p.shape, format, DTYPE_BYTES[dtype ?? 'float32']);
    if (located === undefined) {
      const expected = formatShape(expectedShape(p, format));
      problems.push({
        kind: 'shape',
        text: `${label} expected ${expected}, found ${formatShape(info.shape)}`,
      });
    } else if (dtype === undefined) {
      problems.push({
        kind: 'dtype',
        text: `${label} is ${info.dtype}; DC-AE weights must be F32, F16 or BF16`,
      });
    } else {
      const offset = file.fileOffset(found.name) + located.byteOffset;
      tensors.set(p.key, {
        key: p.key,
        name: found.name,
        shape: p.shape,
        dtype,
        offset,
        length: located.byteLength,
      });
    }
  }
  for (const name of file.header.tensors.keys()) {
    if (used.has(name)) continue;
    // A tensor of a part that is not loaded is skipped, not unused.
    const keys = format === 'original' ? originalToDiffusersKey(name, flags).map((m) => m.key) : [name];
    if (keys.some((key) => otherParts.has(key))) continue;
    problems.push({ kind: 'unused', text: `${name} ${formatShape(file.header.tensors.get(name)!.shape)}` });
  }
  if (problems.length > 0) throw mismatchError(problems, source, format);
  return { format, parts, tensors, folds: layout.folds };
}

/** The shape a parameter has in the checkpoint's own format. */
function expectedShape(p: CheckpointParam, format: CheckpointFormat): readonly number[] {
  if (format === 'diffusers' || p.shape.length !== 2) return p.shape;
  // Linear weights are 1×1 convs in efficientvit; to_q/to_k/to_v are thirds of the fused qkv.
  return /\.to_[qkv]\.weight$/.test(p.key) ? [3 * p.shape[0]!, p.shape[1]!, 1, 1] : [...p.shape, 1, 1];
}

/** Byte range of `expected` inside a checkpoint tensor of shape `actual`, or undefined on a shape mismatch. */
function locate(
  candidate: Candidate,
  actual: readonly number[],
  expected: readonly number[],
  format: CheckpointFormat,
  elementBytes: number,
): { byteOffset: number; byteLength: number } | undefined {
  const elements = expected.reduce((a, b) => a * b, 1);
  const { rows } = candidate.mapped;
  let shape = actual;
  // Original-format 1×1 conv weights [O, I, 1, 1] stand for diffusers Linear weights [O, I].
  const isPointConv = actual.length === 4 && actual[2] === 1 && actual[3] === 1;
  if (format === 'original' && expected.length === 2 && isPointConv) shape = actual.slice(0, 2);
  if (rows !== undefined) {
    if (shape.length !== 2 || shape[0]! % rows.of !== 0) return undefined;
    shape = [shape[0]! / rows.of, shape[1]!];
  }
  if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) return undefined;
  const byteLength = elements * elementBytes;
  return { byteOffset: (rows?.index ?? 0) * byteLength, byteLength };
}

function mismatchError(problems: readonly Problem[], source: string, format: CheckpointFormat): DcaeError {
  const counts = (['missing', 'unused', 'shape', 'dtype'] as const)
    .map((kind) => [kind, problems.filter((p) => p.kind === kind).length] as const)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${count} ${kind}`);
  const lines = problems.slice(0, MAX_LISTED).map((p) => `  - ${p.kind.padEnd(7)} ${p.text}`);
  if (problems.length > MAX_LISTED)
    lines.push(`  … and ${problems.length - MAX_LISTED} more (see error.detail.problems)`);
  const hint =
    problems.some((p) => p.kind === 'missing') && problems.some((p) => p.kind === 'unused')
      ? '\nCheck that the config matches this checkpoint (architecture, key format).'
      : '';
  return new DcaeError(
    'WEIGHTS_MISMATCH',
    `${source} (${format} format) does not match the DC-AE config: ${counts.join(', ')}:\n${lines.join('\n')}${hint}`,
    { source, detail: { problems: problems.map((p) => `${p.kind} ${p.text}`) } },
  );
}

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
