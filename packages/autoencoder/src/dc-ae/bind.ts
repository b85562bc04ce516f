import { DcaeError, DTYPE_BYTES, formatShape } from '@dcae/core';
import type { SafetensorsFile } from '@dcae/core';
import type { AutoencoderPart } from '../base/io.js';
import type { BoundTensor, CheckpointFormat, WeightBinding } from '../base/weights.js';
import { WEIGHT_DTYPES } from '../base/weights.js';
import type { DcAeConfig } from './config.js';
import type { CheckpointParam, DcAeCheckpointLayout, MappedKey } from './weights-map.js';
import { originalKeyFlags, originalToDiffusersKey } from './weights-map.js';

/** Strict binding of a DC-AE checkpoint (either key format) to the tensors its config implies. */

const MAX_LISTED = 60;

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
