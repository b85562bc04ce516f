import { DcaeError, formatShape } from '../errors.js';
import { bfloat16ArrayToFloat32 } from './bfloat16.js';
import type { DType, TypedArrayFor } from './dtype.js';
import { DTYPE_ARRAYS, isDType } from './dtype.js';
import { float16ArrayToFloat32 } from './float16.js';
import { numel } from './shape.js';

/**
 * A tensor in host memory: dtype, row-major shape and the typed data. Runtime adapters convert
 * to and from their runtime's tensor type; nothing else in dcae sees runtime tensors.
 */
export interface HostTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: TypedArrayFor<D>;
}

/** A tensor over `data` (not copied), checked: `data` is the array type of `dtype` with `numel(shape)` elements. */
export function hostTensor<D extends DType>(
  dtype: D,
  shape: readonly number[],
  data: TypedArrayFor<D>,
): HostTensor<D> {
  const tensor = { dtype, shape: Object.freeze([...shape]), data };
  checkHostTensor(tensor);
  return tensor;
}

/** A zero-filled tensor (false for bool). */
export function zeros<D extends DType>(dtype: D, shape: readonly number[]): HostTensor<D> {
  const data = new DTYPE_ARRAYS[dtype](numel(shape)) as TypedArrayFor<D>;
  return hostTensor(dtype, shape, data);
}

/** Throws unless `tensor` has a known dtype, a valid shape and data of the right type and length. */
export function checkHostTensor(tensor: HostTensor, name = 'tensor'): void {
  if (!isDType(tensor.dtype)) {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${name} has dtype ${String(tensor.dtype)}; expected one of float32, float16, bfloat16, int64, int32, uint8, int8, bool.`,
    );
  }
  const ArrayType = DTYPE_ARRAYS[tensor.dtype];
  if (!(tensor.data instanceof ArrayType)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${name} is ${tensor.dtype} but its data is a ${describeArray(tensor.data)}; ${tensor.dtype} data must be a ${ArrayType.name}.`,
    );
  }
  const expected = numel(tensor.shape);
  if (tensor.data.length !== expected) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${name} has shape ${formatShape(tensor.shape)} (${expected} elements) but ${tensor.data.length} data elements.`,
      { detail: { shape: tensor.shape, expected, actual: tensor.data.length } },
    );
  }
}

function describeArray(data: unknown): string {
  return typeof data === 'object' && data !== null ? data.constructor.name : typeof data;
}

/**
 * The tensor's values as float32: `tensor` itself when it already is float32, otherwise a new
 * tensor. int64 values beyond ±2^24 lose precision, as any float32 does.
 */
export function toFloat32(tensor: HostTensor): HostTensor<'float32'> {
  if (tensor.dtype === 'float32') return tensor as HostTensor<'float32'>;
  return { dtype: 'float32', shape: tensor.shape, data: float32Data(tensor) };
}

function float32Data(tensor: HostTensor): Float32Array {
  switch (tensor.dtype) {
    case 'float16':
      return float16ArrayToFloat32(tensor.data as Uint16Array);
    case 'bfloat16':
      return bfloat16ArrayToFloat32(tensor.data as Uint16Array);
    case 'int64':
      return Float32Array.from(tensor.data as BigInt64Array, Number);
    default:
      return Float32Array.from(tensor.data as Int32Array | Uint8Array);
  }
}
