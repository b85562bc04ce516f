import type { IrGraph, IrNode } from '../ir/graph.js';
import { NON_DIFFERENTIABLE } from '../ir/shapes.js';
import { attrFloat, attrInt, attrInts, attrString, convAttrs, sliceSpec } from '../reference/ops.js';
import { size } from '../reference/tensor.js';
import {
  averagePoolRule,
  convTransposeRule,
  gatherRule,
  maxPoolRule,
  shiftWeightGrad,
  sliceGrad,
} from './spatial-rules.js';
import type { RuleEmit } from './spatial-rules.js';
import type { Grads, Rule } from './emit-helpers.js';
import { int, ints, str, unsupported } from './emit-helpers.js';

/**
 * Reverse-mode autodiff over the static IR. Every rule emits standard opset-18 ONNX nodes (no
 * contrib or training ops: onnxruntime's inference builds have none) — docs/training.md,
 * "Autodiff". Gradients are accumulated per input slot, so `Mul(x, x)` contributes twice.
 * Only values that depend on a `wrt` value get gradients: frozen subgraphs emit no nodes.
 */

/** Emission helpers shared by the VJP rules, the losses and the optimizers. */
export class Emit implements RuleEmit {
  constructor(readonly g: IrGraph) {}
  i64(values: readonly number[]): string {
    return this.g.constant(values, 'int64');
  }
  f32(value: number): string {
    return this.g.constant(value, 'float32');
  }
  shape(v: string): readonly number[] {
    return this.g.shape(v);
  }
  add(a: string, b: string): string {
    return this.g.op1('Add', [a, b]);
  }
  sub(a: string, b: string): string {
    return this.g.op1('Sub', [a, b]);
  }
  mul(a: string, b: string): string {
    return this.g.op1('Mul', [a, b]);
  }
  div(a: string, b: string): string {
    return this.g.op1('Div', [a, b]);
  }
  neg(a: string): string {
    return this.g.op1('Neg', [a]);
  }
  scale(a: string, s: number): string {
    return s === 1 ? a : this.mul(a, this.f32(s));
  }
  reshape(a: string, shape: readonly number[]): string {
    const cur = this.shape(a);
    if (cur.length === shape.length && cur.every((d, i) => d === shape[i])) return a;
    return this.g.op1('Reshape', [a, this.i64(shape)]);
  }
  transpose(a: string, perm: readonly number[]): string {
    if (perm.every((p, i) => p === i)) return a;
    return this.g.op1('Transpose', [a], { perm: ints(perm) });
  }
  reduceSum(a: string, axes: readonly number[], keepdims: boolean): string {
    return this.g.op1('ReduceSum', [a, this.i64(axes)], { keepdims: int(keepdims ? 1 : 0) });
  }
  reduceMean(a: string, axes: readonly number[], keepdims: boolean): string {
    return this.g.op1('ReduceMean', [a, this.i64(axes)], { keepdims: int(keepdims ? 1 : 0) });
  }
  expand(a: string, shape: readonly number[]): string {
    const cur = this.shape(a);
    if (cur.length === shape.length && cur.every((d, i) => d === shape[i])) return a;
    return this.g.op1('Expand', [a, this.i64(shape)]);
  }
  slice(
    a: string,
    starts: readonly number[],
    ends: readonly number[],
    axes: readonly number[],
    steps?: readonly number[],
  ): string {
    const inputs = [a, this.i64(starts), this.i64(ends), this.i64(axes)];
    if (steps) inputs.push(this.i64(steps));
    return this.g.op1('Slice', inputs);
  }
  pad(a: string, pads: readonly number[]): string {
    if (pads.every((p) => p === 0)) return a;
    return this.g.op1('Pad', [a, this.i64(pads)], { mode: str('constant') });
  }
  zeros(shape: readonly number[]): string {
    return this.expand(this.f32(0), shape);
  }
  /** Sums a broadcast gradient back to `target` (numpy broadcasting in reverse). */
  sumTo(grad: string, target: readonly number[]): string {
    const shape = this.shape(grad);
    const lead = shape.length - target.length;
    const axes: number[] = [];
    for (let i = 0; i < shape.length; i++) {
      if (i < lead) axes.push(i);
      else if (target[i - lead] === 1 && shape[i] !== 1) axes.push(i);
    }
    const summed = axes.length ? this.reduceSum(grad, axes, true) : grad;
    return this.reshape(summed, target);
  }
  /** Σ of values (Add chain), or the one value. */
  sum(values: readonly string[]): string {
    return values.reduce((acc, v) => this.add(acc, v));
  }
}

function convRule(
  e: Emit,
  node: IrNode,
  dy: readonly (string | undefined)[],
  need: readonly boolean[],
): Grads {
  const [x, w] = node.inputs as [string, string];
  const d = dy[0]!;
  const xs = e.shape(x) as [number, number, number, number];
  const ws = e.shape(w) as [number, number, number, number];
  if (xs.length !== 4) unsupported(node, 'only 2-D convolutions');
  const [, c, h, wd] = xs;
  const [o, cg, kh, kw] = ws;
  const a = convAttrs(node.attrs, [kh, kw]);
  if (a.dilations.some((v) => v !== 1)) unsupported(node, 'dilated convolutions');
  const [sh, sw] = a.strides as [number, number];
  const [pt, pl, pb, pr] = a.pads as [number, number, number, number];
  const g = a.group;
  const [, , ho, wo] = e.shape(d) as [number, number, number, number];
  const out: Grads = [undefined, undefined, undefined];

  if (need[0]) {
    if (sh === 1 && sw === 1 && pt <= kh - 1 && pb <= kh - 1 && pl <= kw - 1 && pr <= kw - 1) {
      // Stride 1: correlate dY with the spatially flipped, in/out-swapped weights (fastest form, §2.1).
      const flipped = e.slice(w, [-1, -1], [-kh - 1, -kw - 1], [2, 3], [-1, -1]);
      const swapped =
        g === 1
          ? e.transpose(flipped, [1, 0, 2, 3])
          : e.reshape(e.transpose(e.reshape(flipped, [g, o / g, cg, kh, kw]), [0, 2, 1, 3, 4]), [
              c,
              o / g,
              kh,
              kw,
            ]);
      out[0] = e.g.op1('Conv', [d, swapped], {
        dilations: ints([1, 1]),
        group: int(g),
        pads: ints([kh - 1 - pt, kw - 1 - pl, kh - 1 - pb, kw - 1 - pr]),
        strides: ints([1, 1]),
      });
    } else {
      out[0] = e.g.op1('ConvTranspose', [d, w], {
        dilations: ints([1, 1]),
        group: int(g),
        kernel_shape: ints([kh, kw]),
        output_padding: ints([h + pt + pb - kh - sh * (ho - 1), wd + pl + pr - kw - sw * (wo - 1)]),
        pads: ints([pt, pl, pb, pr]),
        strides: ints([sh, sw]),
      });
    }
  }
  // dW: the "shift" form (one batched MatMul over k² strided taps), spatial-rules.ts.
  if (need[1]) out[1] = shiftWeightGrad(e, x, d, ws, a.strides, a.pads, g);
  if (node.inputs[2] && need[2]) out[2] = e.reduceSum(d, [0, 2, 3], false);
  return out;
}

function matMulRule(
  e: Emit,
  node: IrNode,
  dy: readonly (string | undefined)[],
  need: readonly boolean[],
): Grads {
  const [a, b] = node.inputs as [string, string];
  const d = dy[0]!;
  const swap = (v: string): string => {
    const r = e.shape(v).length;
    return e.transpose(v, [...Array.from({ length: r - 2 }, (_, i) => i), r - 1, r - 2]);
  };
  return [
    need[0] ? e.sumTo(e.g.op1('MatMul', [d, swap(b)]), e.shape(a)) : undefined,
    need[1] ? e.sumTo(e.g.op1('MatMul', [swap(a), d]), e.shape(b)) : undefined,
  ];
}

const constAxes = (e: Emit, node: IrNode, input: number): number[] => {
  const name = node.inputs[input];
  if (name) {
    const v = e.g.constValue(name);
    if (!v) unsupported(node, 'axes must be constant');
    return Array.from(v.data);
  }
  return [...(attrInts(node.attrs, 'axes') ?? [])];
};

function reduceRule(e: Emit, node: IrNode, dy: readonly (string | undefined)[]): Grads {
  const x = node.inputs[0]!;
  const xs = e.shape(x);
  const rank = xs.length;
  const list = constAxes(e, node, 1);
  const axes = new Set((list.length ? list : xs.map((_, i) => i)).map((a) => (a < 0 ? a + rank : a)));
  const kept = xs.map((dim, i) => (axes.has(i) ? 1 : dim));
  let d = e.reshape(dy[0]!, kept);
  if (node.op === 'ReduceMean') d = e.scale(d, size(kept) / size(xs));
  return [e.expand(d, xs)];
}

/** Max/Min of two inputs: the gradient goes to the selected input (to the first on ties). */
function minMax(
  e: Emit,
  n: IrNode,
  dy: readonly (string | undefined)[],
  need: readonly boolean[],
  cmp: 'Greater' | 'Less',
): Grads {
  if (n.inputs.length !== 2) unsupported(n, 'only two inputs');
  const [a, b] = n.inputs as [string, string];
  const pickA = e.g.op1('Not', [e.g.op1(cmp, [b, a])]);
  const zero = e.f32(0);
  return [
    need[0] ? e.sumTo(e.g.op1('Where', [pickA, dy[0]!, zero]), e.shape(a)) : undefined,
    need[1] ? e.sumTo(e.g.op1('Where', [pickA, zero, dy[0]!]), e.shape(b)) : undefined,
  ];
}

const RULES: Record<string, Rule<Emit>> = {
  Identity: (_e, _n, dy) => [dy[0]],
  Cast: (_e, _n, dy) => [dy[0]],
  Add: (e, n, dy, need) => [
    need[0] ? e.sumTo(dy[0]!, e.shape(n.inputs[0]!)) : undefined,
    need[1] ? e.sumTo(dy[0]!, e.shape(n.inputs[1]!)) : undefined,
  ],
  Sub: (e, n, dy, need) => [
    need[0] ? e.sumTo(dy[0]!, e.shape(n.inputs[0]!)) : undefined,
    need[1] ? e.sumTo(e.neg(dy[0]!), e.shape(n.inputs[1]!)) : undefined,
  ],
  Mul: (e, n, dy, need) => {
    const [a, b] = n.inputs as [string, string];
    return [
      need[0] ? e.sumTo(e.mul(dy[0]!, b), e.shape(a)) : undefined,
      need[1] ? e.sumTo(e.mul(dy[0]!, a), e.shape(b)) : undefined,
    ];
  },
  Div: (e, n, dy, need) => {
    const [a, b] = n.inputs as [string, string];
    const y = n.outputs[0]!;
    return [
      need[0] ? e.sumTo(e.div(dy[0]!, b), e.shape(a)) : undefined,
      need[1] ? e.sumTo(e.neg(e.mul(dy[0]!, e.div(y, b))), e.shape(b)) : undefined,
    ];
  },
  Pow: (e, n, dy, need) => {
    const [a, p] = n.inputs as [string, string];
    const y = n.outputs[0]!;
    const pc = e.g.constValue(p);
    let da: string | undefined;
    if (need[0]) {
      const local =
        pc && pc.data.length === 1
          ? e.scale(e.g.op1('Pow', [a, e.f32(pc.data[0]! - 1)]), pc.data[0]!)
          : e.mul(p, e.g.op1('Pow', [a, e.sub(p, e.f32(1))]));
      da = e.sumTo(e.mul(dy[0]!, local), e.shape(a));
    }
    return [da, need[1] ? e.sumTo(e.mul(dy[0]!, e.mul(y, e.g.op1('Log', [a]))), e.shape(p)) : undefined];
  },
  Neg: (e, _n, dy) => [e.neg(dy[0]!)],
  // No Sign: the WebGPU EP has no kernel for it (docs/training.md).
  Abs: (e, n, dy) => [e.g.op1('Where', [e.g.op1('Less', [n.inputs[0]!, e.f32(0)]), e.neg(dy[0]!), dy[0]!])],
  Relu: (e, n, dy) => [e.g.op1('Where', [e.g.op1('Greater', [n.inputs[0]!, e.f32(0)]), dy[0]!, e.f32(0)])],
  // ONNX LeakyRelu: x for x ≥ 0, alpha·x below (the PatchGAN discriminator, docs/training.md).
  LeakyRelu: (e, n, dy) => [
    e.g.op1('Where', [
      e.g.op1('Less', [n.inputs[0]!, e.f32(0)]),
      e.scale(dy[0]!, attrFloat(n.attrs, 'alpha', 0.01)),
      dy[0]!,
    ]),
  ],
  Sigmoid: (e, n, dy) => {
    const y = n.outputs[0]!;
    return [e.mul(dy[0]!, e.mul(y, e.sub(e.f32(1), y)))];
  },
  Tanh: (e, n, dy) => {
    const y = n.outputs[0]!;
    return [e.mul(dy[0]!, e.sub(e.f32(1), e.mul(y, y)))];
  },
  Erf: (e, n, dy) => {
    const x = n.inputs[0]!;
    const gauss = e.g.op1('Exp', [e.neg(e.mul(x, x))]);
    return [e.mul(dy[0]!, e.scale(gauss, 2 / Math.sqrt(Math.PI)))];
  },
  Exp: (e, n, dy) => [e.mul(dy[0]!, n.outputs[0]!)],
  Log: (e, n, dy) => [e.div(dy[0]!, n.inputs[0]!)],
  Sqrt: (e, n, dy) => [e.div(e.scale(dy[0]!, 0.5), n.outputs[0]!)],
  Reciprocal: (e, n, dy) => {
    const y = n.outputs[0]!;
    return [e.neg(e.mul(dy[0]!, e.mul(y, y)))];
  },
  Softplus: (e, n, dy) => [e.mul(dy[0]!, e.g.op1('Sigmoid', [n.inputs[0]!]))],
  Where: (e, n, dy, need) => {
    const [c, a, b] = n.inputs as [string, string, string];
    const zero = e.f32(0);
    return [
      undefined,
      need[1] ? e.sumTo(e.g.op1('Where', [c, dy[0]!, zero]), e.shape(a)) : undefined,
      need[2] ? e.sumTo(e.g.op1('Where', [c, zero, dy[0]!]), e.shape(b)) : undefined,
    ];
  },
  Sin: (e, n, dy) => [e.mul(dy[0]!, e.g.op1('Cos', [n.inputs[0]!]))],
  Cos: (e, n, dy) => [e.neg(e.mul(dy[0]!, e.g.op1('Sin', [n.inputs[0]!])))],
  Max: (e, n, dy, need) => minMax(e, n, dy, need, 'Greater'),
  Min: (e, n, dy, need) => minMax(e, n, dy, need, 'Less'),
  Tile: (e, n, dy) => {
    const x = n.inputs[0]!;
    const xs = e.shape(x);
    const reps = e.g.constValue(n.inputs[1]!);
    if (!reps) unsupported(n, 'repeats must be constant');
    // [r0·d0, r1·d1, …] → [r0, d0, r1, d1, …], summed over the r axes.
    const split = xs.flatMap((d, i) => [reps.data[i]!, d]);
    return [
      e.reduceSum(
        e.reshape(dy[0]!, split),
        xs.map((_, i) => 2 * i),
        false,
      ),
    ];
  },
  Conv: convRule,
  MatMul: matMulRule,
  ReduceSum: reduceRule,
  ReduceMean: reduceRule,
  Reshape: (e, n, dy) => [e.reshape(dy[0]!, e.shape(n.inputs[0]!))],
  Flatten: (e, n, dy) => [e.reshape(dy[0]!, e.shape(n.inputs[0]!))],
  Squeeze: (e, n, dy) => [e.reshape(dy[0]!, e.shape(n.inputs[0]!))],
  Unsqueeze: (e, n, dy) => [e.reshape(dy[0]!, e.shape(n.inputs[0]!))],
  Transpose: (e, n, dy) => {
    const rank = e.shape(n.inputs[0]!).length;
    const perm = attrInts(n.attrs, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
    const inverse = new Array<number>(rank);
    perm.forEach((p, i) => (inverse[p] = i));
    return [e.transpose(dy[0]!, inverse)];
  },
  Expand: (e, n, dy) => [e.sumTo(dy[0]!, e.shape(n.inputs[0]!))],
  Concat: (e, n, dy, need) => {
    const rank = e.shape(n.inputs[0]!).length;
    const raw = attrInt(n.attrs, 'axis', 0);
    const axis = raw < 0 ? raw + rank : raw;
    let offset = 0;
    return n.inputs.map((x, i) => {
      const len = e.shape(x)[axis]!;
      const start = offset;
      offset += len;
      return need[i] ? e.slice(dy[0]!, [start], [start + len], [axis]) : undefined;
    });
  },
  Split: (e, n, dy) => {
    const x = n.inputs[0]!;
    const rank = e.shape(x).length;
    const raw = attrInt(n.attrs, 'axis', 0);
    const axis = raw < 0 ? raw + rank : raw;
    const parts = n.outputs.map((o, i) => dy[i] ?? e.zeros(e.shape(o)));
    return [e.g.op1('Concat', parts, { axis: int(axis) })];
  },
  Slice: (e, n, dy) => {
    const x = n.inputs[0]!;
    const xs = e.shape(x);
    const c = (i: number): number[] | undefined => {
      const name = n.inputs[i];
      if (!name) return undefined;
      const v = e.g.constValue(name);
      if (!v) unsupported(n, 'slice parameters must be constant');
      return Array.from(v.data);
    };
    return [sliceGrad(e, dy[0]!, xs, sliceSpec(xs, c(1)!, c(2)!, c(3), c(4)))];
  },
  Pad: (e, n, dy) => {
    const x = n.inputs[0]!;
    const xs = e.shape(x);
    const pv = e.g.constValue(n.inputs[1]!);
    if (!pv) unsupported(n, 'pads must be constant');
    if (attrString(n.attrs, 'mode', 'constant') !== 'constant') unsupported(n, 'only constant padding');
    const pads = Array.from(pv.data);
    if (pads.some((p) => p < 0)) unsupported(n, 'negative pads');
    const axes = xs.map((_, i) => i);
    return [
      e.slice(
        dy[0]!,
        pads.slice(0, xs.length),
        xs.map((d, i) => pads[i]! + d),
        axes,
      ),
    ];
  },
  DepthToSpace: (e, n, dy) => {
    const r = attrInt(n.attrs, 'blocksize', 2);
    const [b, c, h, w] = e.shape(n.inputs[0]!) as [number, number, number, number];
    if (attrString(n.attrs, 'mode', 'DCR') === 'DCR')
      return [e.g.op1('SpaceToDepth', [dy[0]!], { blocksize: int(r) })];
    const co = c / (r * r);
    const split = e.reshape(dy[0]!, [b, co, h, r, w, r]);
    return [e.reshape(e.transpose(split, [0, 1, 3, 5, 2, 4]), [b, c, h, w])];
  },
  SpaceToDepth: (e, n, dy) => [
    e.g.op1('DepthToSpace', [dy[0]!], { blocksize: int(attrInt(n.attrs, 'blocksize', 2)), mode: str('DCR') }),
  ],
  Resize: (e, n, dy) => {
    const x = n.inputs[0]!;
    const [b, c, h, w] = e.shape(x) as [number, number, number, number];
    const scales = n.inputs[2] ? e.g.constValue(n.inputs[2]) : undefined;
    const ok =
      attrString(n.attrs, 'mode', 'nearest') === 'nearest' &&
      attrString(n.attrs, 'coordinate_transformation_mode', 'half_pixel') === 'asymmetric' &&
      attrString(n.attrs, 'nearest_mode', 'round_prefer_floor') === 'floor' &&
      scales !== undefined &&
      scales.data[0] === 1 &&
      scales.data[1] === 1 &&
      Number.isInteger(scales.data[2]) &&
      Number.isInteger(scales.data[3]);
    if (!ok) unsupported(n, 'only nearest/asymmetric/floor resizes by integer factors');
    const [sh, sw] = [scales.data[2]!, scales.data[3]!];
    return [e.reduceSum(e.reshape(dy[0]!, [b, c, h, sh, w, sw]), [3, 5], false)];
  },
  Softmax: (e, n, dy) => {
    const y = n.outputs[0]!;
    const rank = e.shape(y).length;
    const raw = attrInt(n.attrs, 'axis', -1);
    const axis = raw < 0 ? raw + rank : raw;
    const dot = e.reduceSum(e.mul(dy[0]!, y), [axis], true);
    return [e.mul(y, e.sub(dy[0]!, dot))];
  },
  // Pooling, ConvTranspose, Gather: spatial-rules.ts.
  ConvTranspose: convTransposeRule,
  AveragePool: (e, n, dy) => averagePoolRule(e, n, dy),
  MaxPool: (e, n, dy) => maxPoolRule(e, n, dy),
  Gather: gatherRule,
};

/** The ops `grad` has a VJP rule for. */
export const DIFFERENTIABLE_OPS: readonly string[] = Object.keys(RULES).sort();

export interface GradResult {
  /** wrt value → gradient value (zeros when the loss does not depend on it). */
  readonly grads: Map<string, string>;
  /** Forward nodes that emitted backward nodes (the others were frozen or did not reach the loss). */
  readonly differentiated: readonly IrNode[];
  /** Number of nodes emitted by the backward pass. */
  readonly backwardNodes: number;
}

/** Values that depend on any of `wrt` (requires-grad propagation). */
export function requiresGrad(
  g: IrGraph,
  wrt: Iterable<string>,
  nodes: readonly IrNode[] = g.nodes,
): Set<string> {
  const rg = new Set(wrt);
  for (const n of nodes) {
    if (NON_DIFFERENTIABLE.has(n.op)) continue;
    if (n.inputs.some((i) => rg.has(i)))
      for (const o of n.outputs)
        if (g.value(o).dtype === 'float32' || g.value(o).dtype === 'float16') rg.add(o);
  }
  return rg;
}

/** Appends the backward pass of scalar `loss` to `g`; returns ∂loss/∂w for each `wrt`. */
export function grad(g: IrGraph, loss: string, wrt: readonly string[]): GradResult {
  const forward = g.nodes.slice();
  const before = g.nodes.length;
  const rg = requiresGrad(g, wrt, forward);
  const e = new Emit(g);
  const contributions = new Map<string, string[]>();
  const push = (v: string, d: string): void => {
    const list = contributions.get(v);
    if (list) list.push(d);
    else contributions.set(v, [d]);
  };
  const gradOf = (v: string): string | undefined => {
    const list = contributions.get(v);
    if (!list?.length) return undefined;
    if (list.length > 1) contributions.set(v, [e.sum(list)]);
    return contributions.get(v)![0];
  };
  push(loss, e.expand(e.f32(1), g.shape(loss)));
  const differentiated: IrNode[] = [];
  for (let k = forward.length - 1; k >= 0; k--) {
    const node = forward[k]!;
    const need = node.inputs.map((i) => i !== '' && rg.has(i));
    if (!need.some(Boolean)) continue;
    const dy = node.outputs.map(gradOf);
    if (dy.every((d) => d === undefined)) continue;
    const rule = RULES[node.op];
    if (rule === undefined) return unsupported(node);
    if (node.outputs.length === 1 && dy[0] === undefined) continue;
    const dx = rule(e, node, dy, need);
    differentiated.push(node);
    node.inputs.forEach((input, i) => {
      const d = dx[i];
      if (need[i] && d !== undefined) push(input, d);
    });
  }
  const grads = new Map<string, string>();
  for (const w of wrt) grads.set(w, gradOf(w) ?? e.zeros(g.shape(w)));
  return { grads, differentiated, backwardNodes: g.nodes.length - before };
}
