/** Element types a host tensor can hold. float16 and bfloat16 are stored as raw bits in a Uint16Array. */
export type DType = 'float32' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'uint8' | 'int8' | 'bool';

export interface DTypeArrayMap {
  float32: Float32Array;
  float16: Uint16Array;
  bfloat16: Uint16Array;
  int64: BigInt64Array;
  int32: Int32Array;
  uint8: Uint8Array;
  int8: Int8Array;
  bool: Uint8Array;
}

export type TypedArrayFor<D extends DType> = DTypeArrayMap[D];
export type AnyTypedArray = DTypeArrayMap[DType];

export const DTYPE_BYTES: Readonly<Record<DType, number>> = {
  float32: 4,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  uint8: 1,
  int8: 1,
  bool: 1,
};

/** The typed-array class that holds each dtype's data (float16 and bfloat16 as raw bits). */
export const DTYPE_ARRAYS = {
  float32: Float32Array,
  float16: Uint16Array,
  bfloat16: Uint16Array,
  int64: BigInt64Array,
  int32: Int32Array,
  uint8: Uint8Array,
  int8: Int8Array,
  bool: Uint8Array,
} as const satisfies Record<DType, unknown>;

export const DTYPES: readonly DType[] = Object.keys(DTYPE_BYTES) as DType[];

export function isDType(value: unknown): value is DType {
  return typeof value === 'string' && Object.hasOwn(DTYPE_BYTES, value);
}
