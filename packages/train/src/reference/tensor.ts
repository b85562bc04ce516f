import type { HostTensor } from '@dcae/core';
import { strides } from '@dcae/core';

/**
 * A float64 tensor of the reference interpreter: every dtype (float, int64, bool) is held as
 * float64 numbers. int64 values used as shapes and indices are small, so nothing is lost.
 */
export interface RefTensor {
  readonly shape: readonly number[];
  readonly data: Float64Array;
}

export function size(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function ref(shape: readonly number[], data?: Float64Array | readonly number[]): RefTensor {
  const n = size(shape);
  const values = data === undefined ? new Float64Array(n) : Float64Array.from(data);
  if (values.length !== n) throw new Error(`ref: ${values.length} values for shape [${shape.join(',')}]`);
  return { shape: [...shape], data: values };
}

/** A host tensor (any dtype) as float64. float16/bfloat16 are not used by training graphs. */
export function fromHost(t: HostTensor): RefTensor {
  const d = t.data;
  if (d instanceof BigInt64Array)
    return { shape: [...t.shape], data: Float64Array.from(d, (v) => Number(v)) };
  if (t.dtype === 'float16' || t.dtype === 'bfloat16')
    throw new Error(`reference interpreter: ${t.dtype} tensors are out of scope (float32 graphs only)`);
  return { shape: [...t.shape], data: Float64Array.from(d as ArrayLike<number>) };
}

/** `t` as a host tensor of `dtype` (rounded for float32, truncated for integers). */
export function toHost(t: RefTensor, dtype: HostTensor['dtype']): HostTensor {
  const shape = [...t.shape];
  switch (dtype) {
    case 'float32':
      return { dtype, shape, data: Float32Array.from(t.data) };
    case 'int64':
      return { dtype, shape, data: BigInt64Array.from(t.data, (v) => BigInt(Math.trunc(v))) };
    case 'int32':
      return { dtype, shape, data: Int32Array.from(t.data) };
    case 'bool':
    case 'uint8':
      return { dtype, shape, data: Uint8Array.from(t.data, (v) => (v ? 1 : 0)) };
    default:
      throw new Error(`toHost: dtype ${dtype} is out of scope`);
  }
}

/** Broadcast shape of two shapes (numpy rules), or undefined when they do not broadcast. */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) return undefined;
    out[i] = x === 1 ? y : x;
  }
  return out;
}

/** Element offsets of `t` read at every index of `outShape` (broadcast). */
export function broadcastIndex(shape: readonly number[], outShape: readonly number[]): Int32Array {
  const n = size(outShape);
  const rank = outShape.length;
  const inStrides = strides(shape);
  // Stride per output axis in the input; 0 where the input is broadcast.
  const s = new Array<number>(rank).fill(0);
  for (let i = 0; i < rank; i++) {
    const j = i - (rank - shape.length);
    if (j >= 0 && shape[j] !== 1) s[i] = inStrides[j]!;
  }
  const idx = new Int32Array(n);
  const counter = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let k = 0; k < n; k++) {
    idx[k] = offset;
    for (let ax = rank - 1; ax >= 0; ax--) {
      counter[ax]!++;
      offset += s[ax]!;
      if (counter[ax]! < outShape[ax]!) break;
      offset -= s[ax]! * outShape[ax]!;
      counter[ax] = 0;
    }
  }
  return idx;
}
