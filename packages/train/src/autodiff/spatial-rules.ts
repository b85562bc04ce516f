import type { IrGraph, IrNode } from '../ir/graph.js';
import type { SliceSpec } from '../reference/ops.js';
import { attrInt, attrInts, attrString, convAttrs } from '../reference/ops.js';
import { size } from '../reference/tensor.js';
import type { Grads, Rule } from './emit-helpers.js';
import { int, ints, unsupported } from './emit-helpers.js';

/**
 * VJP rules for the pooling, transposed-convolution, gather and strided-slice ops
 * (docs/training.md, "VJP rules and the forms chosen"). Like every rule they emit standard
 * opset-18 ONNX ops only, chosen so that the CPU and WebGPU execution providers both run them:
 * no ScatterND/ScatterElements (duplicate indices need a reduction that not every EP implements)
 * and no MaxPool `Indices` output. Kept apart from grad.ts; `grad.ts` registers them.
 */

/**
 * The part of grad.ts's `Emit` these rules use (structural, so this file does not import grad.ts;
 * `Emit` implements it).
 */
export interface RuleEmit {
  readonly g: IrGraph;
  i64(values: readonly number[]): string;
  f32(value: number): string;
  shape(v: string): readonly number[];
  mul(a: string, b: string): string;
  sub(a: string, b: string): string;
  add(a: string, b: string): string;
  reshape(a: string, shape: readonly number[]): string;
  transpose(a: string, perm: readonly number[]): string;
  reduceSum(a: string, axes: readonly number[], keepdims: boolean): string;
  slice(
    a: string,
    starts: readonly number[],
    ends: readonly number[],
    axes: readonly number[],
    steps?: readonly number[],
  ): string;
  pad(a: string, pads: readonly number[]): string;
  zeros(shape: readonly number[]): string;
}

/** Rejects the attributes these rules do not cover (auto_pad, dilations ≠ 1, ceil_mode). */
function plainWindow(node: IrNode): void {
  const autoPad = attrString(node.attrs, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET') unsupported(node, `auto_pad ${autoPad} (give explicit pads)`);
  if ((attrInts(node.attrs, 'dilations') ?? []).some((d) => d !== 1)) unsupported(node, 'dilations ≠ 1');
  if (attrInt(node.attrs, 'ceil_mode', 0) !== 0) unsupported(node, 'ceil_mode = 1');
}

/**
 * ∂L/∂W of `Conv(x, W)` given ∂L/∂Y = `d`, in the "shift" form, per group: x in [g, N, H, W, C/g]
 * layout once, k² strided slices stacked as [k², g, M, C/g] (M = N·Ho·Wo), one batched MatMul
 * with dY as [g, O/g, M] → [k², g, O/g, C/g]. For groups > 1 this replaces the "conv trick" (a
 * grouped Conv whose kernel is the whole image), which onnxruntime runs slowly for depthwise
 * layers. Also the dW of ConvTranspose (with x and dY swapped: ConvTranspose is Conv's adjoint).
 */
export function shiftWeightGrad(
  e: RuleEmit,
  x: string,
  d: string,
  ws: readonly number[],
  strides: readonly number[],
  pads: readonly number[],
  g: number,
): string {
  const [n, c, h, wd] = e.shape(x) as [number, number, number, number];
  const [o, cg, kh, kw] = ws as [number, number, number, number];
  const [sh, sw] = strides as [number, number];
  const [pt, pl, pb, pr] = pads as [number, number, number, number];
  const [, , ho, wo] = e.shape(d) as [number, number, number, number];
  const m = n * ho * wo;
  const og = o / g;
  const nhwc = e.transpose(x, [0, 2, 3, 1]);
  const grouped =
    g === 1
      ? e.reshape(nhwc, [1, n, h, wd, c])
      : e.transpose(e.reshape(nhwc, [n, h, wd, g, cg]), [3, 0, 1, 2, 4]);
  const xp = e.pad(grouped, [0, 0, pt, pl, 0, 0, 0, pb, pr, 0]);
  const [, , hp, wp] = e.shape(xp) as [number, number, number, number, number];
  const taps: string[] = [];
  for (let i = 0; i < kh; i++)
    for (let j = 0; j < kw; j++) {
      const whole = i === 0 && j === 0 && sh === 1 && sw === 1 && hp === ho && wp === wo;
      const tap = whole
        ? xp
        : e.slice(xp, [i, j], [i + sh * (ho - 1) + 1, j + sw * (wo - 1) + 1], [2, 3], [sh, sw]);
      taps.push(e.reshape(tap, [1, g, m, cg]));
    }
  const stacked = taps.length === 1 ? taps[0]! : e.g.op1('Concat', taps, { axis: int(0) });
  const dyT = e.reshape(e.transpose(e.reshape(d, [n, g, og, ho, wo]), [1, 2, 0, 3, 4]), [g, og, m]);
  const prod = e.g.op1('MatMul', [dyT, stacked]); // [k², g, O/g, C/g]
  return e.reshape(e.transpose(prod, [1, 2, 3, 0]), [o, cg, kh, kw]);
}

/**
 * ConvTranspose(x, W, b), W [C_in, C_out/g, kh, kw]: it is the adjoint of Conv(·, W) with the same
 * strides, pads and groups, so dX = Conv(dY, W) (output_padding only adds rows that Conv's floor
 * drops), dW = the Conv dW of input dY against output gradient x, dB = Σ dY over N, H, W.
 */
export const convTransposeRule: Rule<RuleEmit> = (e, node, dy, need) => {
  const [x, w] = node.inputs as [string, string];
  const d = dy[0]!;
  const ws = e.shape(w);
  if (e.shape(x).length !== 4) unsupported(node, 'only 2-D transposed convolutions');
  plainWindow(node);
  if (attrInts(node.attrs, 'output_shape')) unsupported(node, 'output_shape (give pads and output_padding)');
  const a = convAttrs(node.attrs, ws.slice(2));
  const out: Grads = [undefined, undefined, undefined];
  if (need[0])
    out[0] = e.g.op1('Conv', [d, w], {
      dilations: ints([1, 1]),
      group: int(a.group),
      kernel_shape: ints(ws.slice(2)),
      pads: ints(a.pads),
      strides: ints(a.strides),
    });
  if (need[1]) out[1] = shiftWeightGrad(e, d, x, ws, a.strides, a.pads, a.group);
  if (node.inputs[2] && need[2]) out[2] = e.reduceSum(d, [0, 2, 3], false);
  return out;
};

interface Window {
  readonly n: number;
  readonly c: number;
  readonly h: number;
  readonly w: number;
  readonly k: readonly [number, number];
  readonly s: readonly [number, number];
  readonly p: readonly [number, number, number, number];
  readonly ho: number;
  readonly wo: number;
}

function windowOf(e: RuleEmit, node: IrNode): Window {
  const xs = e.shape(node.inputs[0]!);
  if (xs.length !== 4) unsupported(node, 'only 2-D pooling');
  plainWindow(node);
  const [n, c, h, w] = xs as [number, number, number, number];
  const k = attrInts(node.attrs, 'kernel_shape') as [number, number];
  const s = (attrInts(node.attrs, 'strides') ?? [1, 1]) as [number, number];
  const p = (attrInts(node.attrs, 'pads') ?? [0, 0, 0, 0]) as [number, number, number, number];
  const [, , ho, wo] = e.shape(node.outputs[0]!) as [number, number, number, number];
  return { n, c, h, w, k, s, p, ho, wo };
}

/**
 * Scatters per-tap gradients `taps` ([N, C·k², Ho, Wo], channel c·k² + t for tap t = i·kw + j)
 * back onto the input grid: one depthwise ConvTranspose with a constant one-hot kernel, which sums
 * overlapping windows, onto the padded canvas; a Pad adds the rows and columns the forward floor
 * dropped and a Slice crops the pool's pads.
 */
function scatterTaps(e: RuleEmit, taps: string, win: Window, perTap: boolean): string {
  const { c, h, w, k, s, p, ho, wo } = win;
  const kk = k[0] * k[1];
  const channels = perTap ? c * kk : c;
  const data = new Float32Array(channels * kk);
  for (let ch = 0; ch < channels; ch++)
    if (perTap) data[ch * kk + (ch % kk)] = 1;
    else data.fill(1, ch * kk, (ch + 1) * kk);
  const kernel = e.g.constant({ dtype: 'float32', shape: [channels, 1, k[0], k[1]], data });
  // Unpadded ConvTranspose onto the padded canvas, then crop: onnxruntime-web's WebGPU
  // ConvTranspose misplaces the result with asymmetric pads (measured, docs/training.md).
  const full = e.g.op1('ConvTranspose', [taps, kernel], {
    dilations: ints([1, 1]),
    group: int(c),
    kernel_shape: ints(k),
    pads: ints([0, 0, 0, 0]),
    strides: ints(s),
  });
  const canvas = e.pad(full, [
    0,
    0,
    0,
    0,
    0,
    0,
    h + p[0] + p[2] - k[0] - s[0] * (ho - 1),
    w + p[1] + p[3] - k[1] - s[1] * (wo - 1),
  ]);
  return p.every((v) => v === 0) ? canvas : e.slice(canvas, [p[0], p[1]], [p[0] + h, p[1] + w], [2, 3]);
}

/**
 * AveragePool: every input position in a window receives dY / count, count being k_h·k_w with
 * count_include_pad = 1 and the number of in-image positions of that window otherwise (a constant
 * [Ho, Wo] map: shapes are static). dX = depthwise ConvTranspose(dY · (1/count), ones).
 */
export function averagePoolRule(e: RuleEmit, node: IrNode, dy: readonly (string | undefined)[]): Grads {
  const win = windowOf(e, node);
  const { h, w, k, s, p, ho, wo } = win;
  const includePad = attrInt(node.attrs, 'count_include_pad', 0) === 1;
  const inv = new Float32Array(ho * wo);
  for (let y = 0; y < ho; y++)
    for (let x = 0; x < wo; x++) {
      const rows = includePad ? k[0] : Math.min(h, y * s[0] - p[0] + k[0]) - Math.max(0, y * s[0] - p[0]);
      const cols = includePad ? k[1] : Math.min(w, x * s[1] - p[1] + k[1]) - Math.max(0, x * s[1] - p[1]);
      inv[y * wo + x] = 1 / (rows * cols);
    }
  const uniform = inv.every((v) => v === inv[0]);
  const scaled = uniform
    ? e.mul(dy[0]!, e.f32(inv[0]!))
    : e.mul(dy[0]!, e.g.constant({ dtype: 'float32', shape: [ho, wo], data: inv }));
  return [scatterTaps(e, scaled, win, false)];
}

/**
 * MaxPool: the gradient of each window goes to one input position, the first maximum in the
 * window's row-major scan order (PyTorch's CPU and CUDA kernels keep the first maximum, `val >
 * max`, so tied inputs match). No `Indices` output (the WebGPU EP has none): the k² strided taps
 * of x (padded with −3.4e38, which never wins) are compared with Y, a running "already taken" mask
 * keeps only the first equal tap, and the masked dY of every tap is scattered back by scatterTaps.
 * NaN inputs are out of scope (PyTorch routes to a NaN; Equal never matches one).
 */
export function maxPoolRule(e: RuleEmit, node: IrNode, dy: readonly (string | undefined)[]): Grads {
  const win = windowOf(e, node);
  if (attrInt(node.attrs, 'storage_order', 0) !== 0) unsupported(node, 'storage_order = 1');
  const { n, c, k, s, p, ho, wo } = win;
  const x = node.inputs[0]!;
  const y = node.outputs[0]!;
  const d = dy[0];
  if (d === undefined) return [undefined];
  const xp = e.g.op1('Pad', [x, e.i64([0, 0, p[0], p[1], 0, 0, p[2], p[3]]), e.f32(-3.4e38)], {
    mode: { kind: 'string', value: 'constant' },
  });
  const taps: string[] = [];
  for (let i = 0; i < k[0]; i++)
    for (let j = 0; j < k[1]; j++)
      taps.push(e.slice(xp, [i, j], [i + s[0] * (ho - 1) + 1, j + s[1] * (wo - 1) + 1], [2, 3], s));
  const parts: string[] = [];
  let taken: string | undefined;
  for (let i = 0; i < k[0]; i++)
    for (let j = 0; j < k[1]; j++) {
      const tap = taps[i * k[1] + j]!;
      const equal = e.g.op1('Cast', [e.g.op1('Equal', [tap, y])], { to: int(1) });
      const first = taken ? e.mul(equal, e.sub(e.f32(1), taken)) : equal;
      taken = taken ? e.add(taken, first) : first;
      parts.push(e.reshape(e.mul(d, first), [n, c, 1, ho, wo]));
    }
  const stacked = parts.length === 1 ? parts[0]! : e.g.op1('Concat', parts, { axis: int(2) });
  return [scatterTaps(e, e.reshape(stacked, [n, c * k[0] * k[1], ho, wo]), win, true)];
}

/**
 * Gather(x, indices, axis): dX = OneHot(indices)ᵀ · dY as one MatMul, [dim, T] × [outer, T, inner]
 * → [outer, dim, inner]. Repeated indices add up in the MatMul. The one-hot matrix is a constant
 * when the indices are (the usual case); otherwise it is built with Equal against 0..dim−1 (and
 * −dim..−1 for negative indices) and Cast.
 */
export const gatherRule: Rule<RuleEmit> = (e, node, dy, need) => {
  if (!need[0]) return [undefined, undefined];
  const [x, indices] = node.inputs as [string, string];
  const xs = e.shape(x);
  const rank = xs.length;
  const raw = attrInt(node.attrs, 'axis', 0);
  const axis = raw < 0 ? raw + rank : raw;
  const dim = xs[axis]!;
  const count = size(e.shape(indices));
  const outer = size(xs.slice(0, axis));
  const inner = size(xs.slice(axis + 1));
  let oneHot: string;
  const known = e.g.constValue(indices);
  if (known) {
    const data = new Float32Array(dim * count);
    known.data.forEach((v, t) => {
      const i = v < 0 ? v + dim : v;
      if (i < 0 || i >= dim) unsupported(node, `index ${v} is out of range for a dimension of ${dim}`);
      data[i * count + t] = 1;
    });
    oneHot = e.g.constant({ dtype: 'float32', shape: [dim, count], data });
  } else {
    const dtype = e.g.value(indices).dtype;
    const row = e.reshape(indices, [1, count]);
    const col = (offset: number): string =>
      e.reshape(
        e.g.constant(
          Array.from({ length: dim }, (_, i) => i + offset),
          dtype,
        ),
        [dim, 1],
      );
    const hit = (offset: number): string =>
      e.g.op1('Cast', [e.g.op1('Equal', [row, col(offset)])], { to: int(1) });
    oneHot = e.add(hit(0), hit(-dim));
  }
  const d3 = e.reshape(dy[0]!, [outer, count, inner]);
  return [e.reshape(e.g.op1('MatMul', [oneHot, d3]), xs), undefined];
};

/**
 * Slice with any steps: dY is placed back at start, start + step, …. A reversed axis (step < 0)
 * is flipped first (Gather with n − 1 … 0), which turns it into a forward slice from its last
 * selected index; a step s > 1 interleaves s − 1 zeros after each value (Reshape to [.., n, 1, ..],
 * Pad to [.., n, s, ..], Reshape, trim); one Pad then puts the block at its offset.
 */
export function sliceGrad(e: RuleEmit, dy: string, xs: readonly number[], spec: SliceSpec): string {
  if (spec.shape.some((d) => d === 0)) return e.zeros(xs);
  const rank = xs.length;
  const before = new Array<number>(rank).fill(0);
  const after = new Array<number>(rank).fill(0);
  let d = dy;
  for (let ax = 0; ax < rank; ax++) {
    const n = spec.shape[ax]!;
    let lo = spec.starts[ax]!;
    let step = spec.steps[ax]!;
    if (step < 0) {
      // Reversed with a constant Gather, not Slice step −1: onnxruntime-web's WebGPU Slice returned
      // n − 1 values for that (docs/training.md).
      if (n > 1)
        d = e.g.op1('Gather', [d, e.i64(Array.from({ length: n }, (_, i) => n - 1 - i))], { axis: int(ax) });
      lo += (n - 1) * step;
      step = -step;
    }
    if (step > 1 && n > 1) {
      const sh = e.shape(d);
      const lifted = e.reshape(d, [...sh.slice(0, ax + 1), 1, ...sh.slice(ax + 1)]);
      const zeros = new Array<number>(2 * (rank + 1)).fill(0);
      zeros[rank + 1 + ax + 1] = step - 1;
      const spread = e.reshape(e.pad(lifted, zeros), [...sh.slice(0, ax), n * step, ...sh.slice(ax + 1)]);
      d = e.slice(spread, [0], [(n - 1) * step + 1], [ax]);
    }
    const span = n === 1 ? 1 : (n - 1) * step + 1;
    before[ax] = lo;
    after[ax] = xs[ax]! - lo - span;
  }
  return e.pad(d, [...before, ...after]);
}
