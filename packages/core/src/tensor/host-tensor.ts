import type { DType, TypedArrayFor } from './dtype.js';

/**
 * A tensor in host memory: dtype, row-major shape and the typed data. Runtime adapters convert
 * to and from their runtime's tensor type; nothing else in dcae sees runtime tensors.
 */
export interface HostTensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: TypedArrayFor<D>;
}
