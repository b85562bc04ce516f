export { DCAE_ERROR_CODES, DcaeError, formatShape, invariant } from './errors.js';
export type { DcaeErrorCategory, DcaeErrorCode, DcaeErrorOptions } from './errors.js';
export { DTYPE_BYTES, DTYPES, isDType } from './tensor/dtype.js';
export type { AnyTypedArray, DType, DTypeArrayMap, TypedArrayFor } from './tensor/dtype.js';
export type { HostTensor } from './tensor/host-tensor.js';
