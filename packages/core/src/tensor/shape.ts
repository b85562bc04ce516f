import { DcaeError, formatShape } from '../errors.js';

/**
 * Number of elements of a row-major shape (1 for a scalar `[]`). Every dim must be a non-negative
 * safe integer and the product must stay at or below `Number.MAX_SAFE_INTEGER`.
 */
export function numel(shape: readonly number[]): number {
  let count = 1;
  for (const dim of shape) {
    if (!Number.isSafeInteger(dim) || dim < 0) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `Shape ${formatShape(shape)} has dim ${dim}; dims must be non-negative integers.`,
      );
    }
    count *= dim;
    if (count > Number.MAX_SAFE_INTEGER) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `Shape ${formatShape(shape)} has more than 2^53 - 1 elements; no tensor can hold that many.`,
      );
    }
  }
  return count;
}

/** Row-major (C-contiguous) strides in elements: the last dim has stride 1. */
export function strides(shape: readonly number[]): number[] {
  const result = new Array<number>(shape.length);
  let stride = 1;
  for (let axis = shape.length - 1; axis >= 0; axis--) {
    result[axis] = stride;
    stride *= shape[axis]!;
  }
  return result;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((dim, axis) => dim === b[axis]);
}
