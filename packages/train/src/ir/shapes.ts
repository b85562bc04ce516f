import type { DType } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import { ONNX_DATA_TYPE } from '@dcae/core/onnx';
import type { Attrs } from '../reference/ops.js';
import {
  attrInt,
  attrInts,
  attrString,
  convAttrs,
  reshapeTarget,
  shapeRange,
  sliceSpec,
} from '../reference/ops.js';
import type { RefTensor } from '../reference/tensor.js';
import { broadcastShapes, size } from '../reference/tensor.js';

/** What shape inference knows about an input: its static shape, dtype and, for constants, the values. */
export interface KnownValue {
  readonly shape: readonly number[];
  readonly dtype: DType;
  readonly value?: RefTensor;
}

export interface InferredValue {
  readonly shape: readonly number[];
  readonly dtype: DType;
}

const DTYPE_BY_ONNX = new Map<number, DType>(Object.entries(ONNX_DATA_TYPE).map(([k, v]) => [v, k as DType]));

/** Ops whose outputs never carry a gradient (integer, boolean or shape results). */
export const NON_DIFFERENTIABLE = new Set([
  'Shape',
  'Size',
  'Equal',
  'Greater',
  'Less',
  'GreaterOrEqual',
  'And',
  'Not',
  'ConstantOfShape',
  'Range',
  'Floor',
  'Ceil',
]);

function fail(op: string, message: string): never {
  throw new DcaeError('GRAPH_INVALID', `Shape inference for ${op}: ${message}.`);
}

function constInts(op: string, v: KnownValue | undefined, what: string): number[] {
  if (!v?.value) fail(op, `${what} must be a constant for static shapes`);
  return Array.from(v.value.data);
}

const norm = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** Static shape and dtype inference of one node. Every shape is concrete (training graphs are static). */
export function inferNode(
  op: string,
  inputs: readonly (KnownValue | undefined)[],
  attrs: Attrs,
  outputs: number,
): InferredValue[] {
  const [a, b, c] = inputs;
  const A = a!;
  const same = (shape: readonly number[], dtype: DType = A.dtype): InferredValue[] => [{ shape, dtype }];
  switch (op) {
    case 'Identity':
    case 'Neg':
    case 'Abs':
    case 'Relu':
    case 'LeakyRelu':
    case 'Sigmoid':
    case 'Tanh':
    case 'Erf':
    case 'Exp':
    case 'Log':
    case 'Sqrt':
    case 'Reciprocal':
    case 'Softplus':
    case 'Sin':
    case 'Cos':
    case 'Floor':
    case 'Ceil':
    case 'Softmax':
    case 'LayerNormalization':
    case 'InstanceNormalization':
    case 'BatchNormalization':
      return same(A.shape);
    case 'Not':
      return same(A.shape, 'bool');
    case 'Cast': {
      const to = DTYPE_BY_ONNX.get(attrInt(attrs, 'to', 1));
      if (!to) fail(op, `unknown target type ${attrInt(attrs, 'to', 1)}`);
      return same(A.shape, to);
    }
    case 'Add':
    case 'Sub':
    case 'Mul':
    case 'Div':
    case 'Pow':
    case 'Max':
    case 'Min':
    case 'Equal':
    case 'Greater':
    case 'Less':
    case 'GreaterOrEqual':
    case 'And': {
      let shape: number[] | undefined = [...A.shape];
      for (const t of inputs.slice(1)) shape = shape && broadcastShapes(shape, t!.shape);
      if (!shape)
        fail(op, `shapes ${inputs.map((t) => `[${t!.shape.join(',')}]`).join(' and ')} do not broadcast`);
      const cmp = ['Equal', 'Greater', 'Less', 'GreaterOrEqual', 'And'].includes(op);
      return same(shape, cmp ? 'bool' : A.dtype);
    }
    case 'Where': {
      const shape = broadcastShapes(broadcastShapes(A.shape, b!.shape) ?? [], c!.shape);
      if (!shape) fail(op, 'shapes do not broadcast');
      return same(shape, b!.dtype);
    }
    case 'Conv': {
      const w = b!;
      const k = w.shape.slice(2);
      const ca = convAttrs(attrs, k);
      const spatial = A.shape.slice(2).map((d, i) => {
        const eff = ca.dilations[i]! * (k[i]! - 1) + 1;
        return Math.floor((d + ca.pads[i]! + ca.pads[i + k.length]! - eff) / ca.strides[i]!) + 1;
      });
      if (A.shape[1] !== w.shape[1]! * ca.group)
        fail(
          op,
          `input has ${A.shape[1]} channels, weight [${w.shape.join(',')}] with group ${ca.group} expects ${w.shape[1]! * ca.group}`,
        );
      return same([A.shape[0]!, w.shape[0]!, ...spatial]);
    }
    case 'ConvTranspose': {
      const w = b!;
      const k = w.shape.slice(2);
      const ca = convAttrs(attrs, k);
      const op2 = attrInts(attrs, 'output_padding') ?? k.map(() => 0);
      const spatial = A.shape
        .slice(2)
        .map(
          (d, i) =>
            ca.strides[i]! * (d - 1) +
            op2[i]! +
            (k[i]! - 1) * ca.dilations[i]! +
            1 -
            ca.pads[i]! -
            ca.pads[i + k.length]!,
        );
      return same([A.shape[0]!, w.shape[1]! * ca.group, ...spatial]);
    }
    case 'MatMul': {
      if (A.shape.length < 2 || b!.shape.length < 2) fail(op, 'operands of rank < 2 are out of scope');
      const [m, k] = A.shape.slice(-2) as [number, number];
      const [k2, n] = b!.shape.slice(-2) as [number, number];
      if (k !== k2) fail(op, `inner dimensions ${k} and ${k2} differ`);
      const batch = broadcastShapes(A.shape.slice(0, -2), b!.shape.slice(0, -2));
      if (!batch) fail(op, 'batch dimensions do not broadcast');
      return same([...batch, m, n]);
    }
    case 'Gemm': {
      const m = attrInt(attrs, 'transA', 0) ? A.shape[1]! : A.shape[0]!;
      const n = attrInt(attrs, 'transB', 0) ? b!.shape[0]! : b!.shape[1]!;
      return same([m, n]);
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax':
    case 'ReduceSumSquare': {
      const rank = A.shape.length;
      const list = b ? constInts(op, b, 'axes') : (attrInts(attrs, 'axes') ?? []);
      if (b && list.length === 0 && attrInt(attrs, 'noop_with_empty_axes', 0)) return same(A.shape);
      const axes = new Set((list.length ? list : A.shape.map((_, i) => i)).map((x) => norm(x, rank)));
      const keep = attrInt(attrs, 'keepdims', 1) === 1;
      return same(
        keep ? A.shape.map((d, i) => (axes.has(i) ? 1 : d)) : A.shape.filter((_, i) => !axes.has(i)),
      );
    }
    case 'Reshape':
      return same(
        reshapeTarget(A.shape, constInts(op, b, 'the target shape'), attrInt(attrs, 'allowzero', 0) === 1),
      );
    case 'Flatten': {
      const axis = norm(attrInt(attrs, 'axis', 1), A.shape.length);
      return same([size(A.shape.slice(0, axis)), size(A.shape.slice(axis))]);
    }
    case 'Transpose': {
      const perm = attrInts(attrs, 'perm') ?? A.shape.map((_, i) => A.shape.length - 1 - i);
      return same(perm.map((p) => A.shape[p]!));
    }
    case 'Expand': {
      const shape = broadcastShapes(A.shape, constInts(op, b, 'the shape'));
      if (!shape) fail(op, 'shape does not broadcast');
      return same(shape);
    }
    case 'Tile': {
      const reps = constInts(op, b, 'repeats');
      return same(A.shape.map((d, i) => d * reps[i]!));
    }
    case 'Unsqueeze': {
      const list = constInts(op, b, 'axes');
      const rank = A.shape.length + list.length;
      const shape = [...A.shape];
      for (const ax of list.map((x) => norm(x, rank)).sort((x, y) => x - y)) shape.splice(ax, 0, 1);
      return same(shape);
    }
    case 'Squeeze': {
      const axes = b
        ? constInts(op, b, 'axes').map((x) => norm(x, A.shape.length))
        : A.shape.flatMap((d, i) => (d === 1 ? [i] : []));
      return same(A.shape.filter((_, i) => !axes.includes(i)));
    }
    case 'Concat': {
      const axis = norm(attrInt(attrs, 'axis', 0), A.shape.length);
      const shape = [...A.shape];
      shape[axis] = inputs.reduce((acc, t) => acc + t!.shape[axis]!, 0);
      return same(shape);
    }
    case 'Split': {
      const axis = norm(attrInt(attrs, 'axis', 0), A.shape.length);
      const sizes = b
        ? constInts(op, b, 'split sizes')
        : Array.from({ length: outputs }, () => A.shape[axis]! / outputs);
      return sizes.map((len) => {
        const shape = [...A.shape];
        shape[axis] = len;
        return { shape, dtype: A.dtype };
      });
    }
    case 'Slice': {
      const spec = sliceSpec(
        A.shape,
        constInts(op, b, 'starts'),
        constInts(op, c, 'ends'),
        inputs[3] ? constInts(op, inputs[3], 'axes') : undefined,
        inputs[4] ? constInts(op, inputs[4], 'steps') : undefined,
      );
      return same(spec.shape);
    }
    case 'Pad': {
      const pads = constInts(op, b, 'pads');
      const rank = A.shape.length;
      return same(A.shape.map((d, i) => d + pads[i]! + pads[i + rank]!));
    }
    case 'Shape': {
      const [start, end] = shapeRange(attrs, A.shape.length);
      return same([Math.max(0, end - start)], 'int64');
    }
    case 'Size':
      return same([], 'int64');
    case 'ConstantOfShape':
      return same(constInts(op, A, 'the shape'), 'float32');
    case 'Range':
      fail(op, 'Range is evaluated only when its inputs are constant');
      break;
    case 'Gather': {
      const axis = norm(attrInt(attrs, 'axis', 0), A.shape.length);
      return same([...A.shape.slice(0, axis), ...b!.shape, ...A.shape.slice(axis + 1)]);
    }
    case 'DepthToSpace': {
      const r = attrInt(attrs, 'blocksize', 2);
      const [n, ch, h, w] = A.shape as [number, number, number, number];
      return same([n, ch / (r * r), h * r, w * r]);
    }
    case 'SpaceToDepth': {
      const r = attrInt(attrs, 'blocksize', 2);
      const [n, ch, h, w] = A.shape as [number, number, number, number];
      return same([n, ch * r * r, h / r, w / r]);
    }
    case 'Resize': {
      if (attrString(attrs, 'mode', 'nearest') !== 'nearest') fail(op, 'only nearest resize is supported');
      const scales = constInts(op, c, 'scales');
      return same(A.shape.map((d, i) => Math.floor(d * scales[i]!)));
    }
    case 'MaxPool':
    case 'AveragePool': {
      const k = attrInts(attrs, 'kernel_shape')!;
      const s = attrInts(attrs, 'strides') ?? k.map(() => 1);
      const p = attrInts(attrs, 'pads') ?? [...k.map(() => 0), ...k.map(() => 0)];
      if (op === 'MaxPool' && outputs > 1) fail(op, 'the Indices output is not supported (one output only)');
      return same([
        A.shape[0]!,
        A.shape[1]!,
        ...A.shape.slice(2).map((d, i) => Math.floor((d + p[i]! + p[i + k.length]! - k[i]!) / s[i]!) + 1),
      ]);
    }
    default:
      fail(op, 'the op is not supported by @dcae/train (see docs/training.md, op coverage)');
  }
  return fail(op, 'unreachable');
}
