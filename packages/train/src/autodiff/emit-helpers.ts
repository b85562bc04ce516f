import { DcaeError } from '@dcae/core';
import type { AttributeValue } from '@dcae/core/onnx';
import type { IrNode } from '../ir/graph.js';

/**
 * What every VJP rule shares, in grad.ts and spatial-rules.ts alike: the attribute builders, the
 * rule signature and the "no gradient" error. A leaf module, so spatial-rules.ts shares them
 * without importing grad.ts (which imports spatial-rules.ts).
 */

export const int = (value: number): AttributeValue => ({ kind: 'int', value });
export const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
export const str = (value: string): AttributeValue => ({ kind: 'string', value });

/** One gradient per input slot of a node; undefined where none is needed or none flows. */
export type Grads = (string | undefined)[];

/** A VJP rule: the input gradients of `node` given its output gradients `dy`. */
export type Rule<E> = (
  e: E,
  node: IrNode,
  dy: readonly (string | undefined)[],
  need: readonly boolean[],
) => Grads;

/** Rejects a node no rule covers (or a form of it, `why`), saying how to train around it. */
export function unsupported(node: IrNode, why = ''): never {
  throw new DcaeError(
    'GRADIENT_UNSUPPORTED',
    `No gradient for ${node.op} (node ${node.name})${why ? `: ${why}` : ''}. Freeze the weights before it (--trainable) or see docs/training.md for the supported ops.`,
  );
}
