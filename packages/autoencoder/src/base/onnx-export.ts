import { DcaeError, DTYPE_BYTES, formatShape, invariant, numel } from '@dcae/core';
import type { HostTensor, SafetensorsFile } from '@dcae/core';
import { rawBytes, serializeModel } from '@dcae/core/onnx';
import type { InitializerData, OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { AutoencoderPart } from './io.js';
import type { GraphDType } from './io.js';
import type { WeightBinding } from './weights.js';
import { foldedInitializers, readBound, toWeightDType } from './weights.js';

/**
 * Standalone ONNX files for one part of a loaded model: weights inline in the protobuf, or in an
 * external data file next to it, written tensor by tensor from the checkpoint in the model's
 * dtype (float16 models get float16 weights).
 */

/** `'auto'`: inline when the part's weights are under 1 GiB, else external. */
export type OnnxWeightsMode = 'auto' | 'inline' | 'external';

export interface OnnxExportOptions {
  /** @defaultValue 'auto' */
  readonly weights?: OnnxWeightsMode;
  /** dtype of the graphs' input and output (a float16 model computes in float16 either way). @defaultValue 'float32' */
  readonly io?: GraphDType;
  /** Checked before each tensor is read; an aborted export rejects with ABORTED. */
  readonly signal?: AbortSignal;
}

export interface OnnxExportFile {
  /** File name, e.g. `encoder.onnx` or `encoder.onnx_data`. */
  readonly name: string;
  readonly size: number;
  /** The file's bytes, in order; weights are read from the checkpoint as they are produced. */
  chunks(): AsyncIterable<Uint8Array>;
}

const INLINE_LIMIT = 2 ** 30;
/** Tensor starts in an external data file are aligned to this many bytes. */
const ALIGNMENT = 64;

type Build = (params: ParamResolver) => Promise<OnnxModel>;

export async function exportPart(
  part: AutoencoderPart,
  build: Build,
  file: SafetensorsFile,
  binding: WeightBinding,
  dtype: GraphDType,
  options: OnnxExportOptions,
): Promise<OnnxExportFile[]> {
  const folded = await foldedInitializers(file, binding, part);
  // The keys the graph reads, in first-use order, with their sizes in `dtype`.
  const reads: { key: string; length: number }[] = [];
  await build((key, shape) => {
    invariant(
      folded.has(key) || binding.tensors.has(key),
      () => `graph reads ${key}, which the checkpoint layout does not have`,
    );
    const length = numel(shape) * DTYPE_BYTES[dtype];
    reads.push({ key, length });
    return { kind: 'external', dtype, shape, location: 'pending', offset: 0, length };
  });
  const total = reads.reduce((sum, r) => sum + r.length, 0);
  const mode = options.weights ?? 'auto';
  const name = `${part}.onnx`;
  const tensor = async (key: string): Promise<HostTensor> => {
    if (options.signal?.aborted) {
      throw new DcaeError('ABORTED', `Exporting ${name} was aborted.`, { cause: options.signal.reason });
    }
    return toWeightDType(folded.get(key) ?? (await readBound(file, binding, key)), dtype);
  };

  if (mode === 'inline' || (mode === 'auto' && total < INLINE_LIMIT)) {
    const tensors = new Map<string, HostTensor>();
    for (const { key } of reads) tensors.set(key, await tensor(key));
    const model = serializeModel(await build((key) => ({ kind: 'inline', tensor: tensors.get(key)! })));
    return [bytesFile(name, model)];
  }

  const dataName = `${name}_data`;
  const offsets = new Map<string, number>();
  let size = 0;
  for (const { key, length } of reads) {
    size = Math.ceil(size / ALIGNMENT) * ALIGNMENT;
    offsets.set(key, size);
    size += length;
  }
  const model = serializeModel(
    await build((key, shape): InitializerData => {
      const offset = offsets.get(key);
      invariant(
        offset !== undefined,
        () => `graph reads ${key} ${formatShape(shape)} only on its second build`,
      );
      const length = reads.find((r) => r.key === key)!.length;
      return { kind: 'external', dtype, shape, location: dataName, offset, length };
    }),
  );
  const data: OnnxExportFile = {
    name: dataName,
    size,
    async *chunks() {
      let written = 0;
      for (const { key } of reads) {
        const padding = offsets.get(key)! - written;
        if (padding > 0) yield new Uint8Array(padding);
        const bytes = rawBytes(await tensor(key));
        yield bytes;
        written += padding + bytes.byteLength;
      }
    },
  };
  return [bytesFile(name, model), data];
}

function bytesFile(name: string, bytes: Uint8Array): OnnxExportFile {
  return {
    name,
    size: bytes.byteLength,
    async *chunks() {
      yield bytes;
    },
  };
}
