import { DcaeError, strides } from '@dcae/core';
import type { AttributeValue } from '@dcae/core/onnx';
import type { RefTensor } from './tensor.js';
import { broadcastIndex, broadcastShapes, ref, size } from './tensor.js';

/**
 * Float64 reference implementations of the forward ops our graphs use: the independent oracle of
 * the gradient checks (docs/training.md, "Checking gradients") and the constant folder of the IR.
 * Written for clarity, not speed: plain loops over row-major data.
 */

export type Attrs = Readonly<Record<string, AttributeValue>>;

export function attrInt(attrs: Attrs, name: string, fallback: number): number {
  const a = attrs[name];
  return a && (a.kind === 'int' || a.kind === 'float') ? a.value : fallback;
}
export function attrFloat(attrs: Attrs, name: string, fallback: number): number {
  const a = attrs[name];
  return a && (a.kind === 'float' || a.kind === 'int') ? a.value : fallback;
}
export function attrInts(attrs: Attrs, name: string): readonly number[] | undefined {
  const a = attrs[name];
  return a && (a.kind === 'ints' || a.kind === 'floats') ? a.value : undefined;
}
export function attrString(attrs: Attrs, name: string, fallback: string): string {
  const a = attrs[name];
  return a && a.kind === 'string' ? a.value : fallback;
}

const normAxis = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

function binary(a: RefTensor, b: RefTensor, f: (x: number, y: number) => number): RefTensor {
  const shape = broadcastShapes(a.shape, b.shape);
  if (!shape) throw new Error(`broadcast [${a.shape.join(',')}] with [${b.shape.join(',')}]`);
  const ia = broadcastIndex(a.shape, shape);
  const ib = broadcastIndex(b.shape, shape);
  const out = new Float64Array(size(shape));
  for (let i = 0; i < out.length; i++) out[i] = f(a.data[ia[i]!]!, b.data[ib[i]!]!);
  return { shape, data: out };
}

function unary(a: RefTensor, f: (x: number) => number): RefTensor {
  return { shape: [...a.shape], data: a.data.map(f) };
}

/** erf to ~1e-15: Taylor series below 3, continued fraction for erfc above. */
export function erf(x: number): number {
  const ax = Math.abs(x);
  if (ax < 3) {
    let term = x;
    let sum = x;
    const x2 = x * x;
    for (let n = 1; n < 200; n++) {
      term *= -x2 / n;
      const add = term / (2 * n + 1);
      sum += add;
      if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
    }
    return (2 / Math.sqrt(Math.PI)) * sum;
  }
  // erfc(x) = exp(-x²)/√π · 1/(x + 1/2/(x + 1/(x + 3/2/(x + …)))) (Lentz-free backward evaluation)
  let f = ax;
  for (let k = 60; k >= 1; k--) f = ax + k / 2 / f;
  const erfc = Math.exp(-ax * ax) / Math.sqrt(Math.PI) / f;
  return x > 0 ? 1 - erfc : erfc - 1;
}

const sigmoid = (x: number): number => (x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x)));
const softplus = (x: number): number => (x > 30 ? x : Math.log1p(Math.exp(x)));

function reduce(
  x: RefTensor,
  axesIn: readonly number[] | undefined,
  keepdims: boolean,
  kind: 'sum' | 'mean' | 'max' | 'sumsq',
): RefTensor {
  const rank = x.shape.length;
  const axes = new Set(
    (axesIn && axesIn.length ? axesIn : x.shape.map((_, i) => i)).map((a) => normAxis(a, rank)),
  );
  const outFull = x.shape.map((d, i) => (axes.has(i) ? 1 : d));
  const out = new Float64Array(size(outFull)).fill(kind === 'max' ? -Infinity : 0);
  const outStrides = strides(outFull);
  const counter = new Array<number>(rank).fill(0);
  for (let k = 0; k < x.data.length; k++) {
    let o = 0;
    for (let ax = 0; ax < rank; ax++) if (!axes.has(ax)) o += counter[ax]! * outStrides[ax]!;
    const v = x.data[k]!;
    if (kind === 'max') out[o] = Math.max(out[o]!, v);
    else out[o] = out[o]! + (kind === 'sumsq' ? v * v : v);
    for (let ax = rank - 1; ax >= 0; ax--) {
      if (++counter[ax]! < x.shape[ax]!) break;
      counter[ax] = 0;
    }
  }
  if (kind === 'mean') {
    const n = x.data.length / Math.max(1, out.length);
    for (let i = 0; i < out.length; i++) out[i] = out[i]! / n;
  }
  const shape = keepdims ? outFull : x.shape.filter((_, i) => !axes.has(i));
  return { shape, data: out };
}

export function transpose(x: RefTensor, perm: readonly number[]): RefTensor {
  const rank = x.shape.length;
  const shape = perm.map((p) => x.shape[p]!);
  const inStrides = strides(x.shape);
  const s = perm.map((p) => inStrides[p]!);
  const out = new Float64Array(x.data.length);
  const counter = new Array<number>(rank).fill(0);
  let offset = 0;
  for (let k = 0; k < out.length; k++) {
    out[k] = x.data[offset]!;
    for (let ax = rank - 1; ax >= 0; ax--) {
      counter[ax]!++;
      offset += s[ax]!;
      if (counter[ax]! < shape[ax]!) break;
      offset -= s[ax]! * shape[ax]!;
      counter[ax] = 0;
    }
  }
  return { shape, data: out };
}

/** Resolves an ONNX Reshape target (0 copies, -1 infers). */
export function reshapeTarget(
  inShape: readonly number[],
  target: readonly number[],
  allowZero = false,
): number[] {
  const total = size(inShape);
  const out = target.map((d, i) => (d === 0 && !allowZero ? inShape[i]! : d));
  const known = out.reduce((acc, d) => (d === -1 ? acc : acc * d), 1);
  const inferred = out.indexOf(-1);
  if (inferred >= 0) out[inferred] = known === 0 ? 0 : total / known;
  if (size(out) !== total || out.some((d) => !Number.isInteger(d) || d < 0))
    throw new Error(`Reshape [${inShape.join(',')}] to [${target.join(',')}]`);
  return out;
}

/**
 * The dims [start, end) that `Shape` returns of an input of rank `rank`: its `start` and `end`
 * attributes, negative ones counting from the back, clamped to the rank.
 */
export function shapeRange(attrs: Attrs, rank: number): [start: number, end: number] {
  let start = attrInt(attrs, 'start', 0);
  let end = attrInt(attrs, 'end', rank);
  if (start < 0) start += rank;
  if (end < 0) end += rank;
  return [Math.max(0, start), Math.min(rank, end)];
}

export interface SliceSpec {
  readonly starts: readonly number[];
  readonly steps: readonly number[];
  readonly shape: readonly number[];
}

/** Normalised Slice parameters for every axis (ONNX clamping rules). */
export function sliceSpec(
  inShape: readonly number[],
  starts: readonly number[],
  ends: readonly number[],
  axesIn?: readonly number[],
  stepsIn?: readonly number[],
): SliceSpec {
  const rank = inShape.length;
  const st = inShape.map(() => 0);
  const sp = inShape.map(() => 1);
  const shape = [...inShape];
  const axes = axesIn ?? starts.map((_, i) => i);
  axes.forEach((axRaw, i) => {
    const ax = normAxis(axRaw, rank);
    const dim = inShape[ax]!;
    const step = stepsIn?.[i] ?? 1;
    let s = starts[i]!;
    let e = ends[i]!;
    if (s < 0) s += dim;
    if (e < 0) e += dim;
    if (step > 0) {
      s = Math.min(Math.max(s, 0), dim);
      e = Math.min(Math.max(e, 0), dim);
      shape[ax] = Math.max(0, Math.ceil((e - s) / step));
    } else {
      s = Math.min(Math.max(s, 0), dim - 1);
      e = Math.min(Math.max(e, -1), dim - 1);
      shape[ax] = Math.max(0, Math.ceil((e - s) / step));
    }
    st[ax] = s;
    sp[ax] = step;
  });
  return { starts: st, steps: sp, shape };
}

function gather(x: RefTensor, spec: SliceSpec): RefTensor {
  const rank = x.shape.length;
  const inStrides = strides(x.shape);
  const out = new Float64Array(size(spec.shape));
  const counter = new Array<number>(rank).fill(0);
  for (let k = 0; k < out.length; k++) {
    let o = 0;
    for (let ax = 0; ax < rank; ax++)
      o += (spec.starts[ax]! + counter[ax]! * spec.steps[ax]!) * inStrides[ax]!;
    out[k] = x.data[o]!;
    for (let ax = rank - 1; ax >= 0; ax--) {
      if (++counter[ax]! < spec.shape[ax]!) break;
      counter[ax] = 0;
    }
  }
  return { shape: [...spec.shape], data: out };
}

function concat(xs: readonly RefTensor[], axisRaw: number): RefTensor {
  const rank = xs[0]!.shape.length;
  const axis = normAxis(axisRaw, rank);
  const shape = [...xs[0]!.shape];
  shape[axis] = xs.reduce((a, t) => a + t.shape[axis]!, 0);
  const outer = size(shape.slice(0, axis));
  const inner = size(shape.slice(axis + 1));
  const out = new Float64Array(size(shape));
  let o = 0;
  for (let i = 0; i < outer; i++)
    for (const t of xs) {
      const n = t.shape[axis]! * inner;
      out.set(t.data.subarray(i * n, (i + 1) * n), o);
      o += n;
    }
  return { shape, data: out };
}

function pad(x: RefTensor, pads: readonly number[], value: number): RefTensor {
  const rank = x.shape.length;
  const shape = x.shape.map((d, i) => d + pads[i]! + pads[i + rank]!);
  const out = new Float64Array(size(shape)).fill(value);
  const outStrides = strides(shape);
  const counter = new Array<number>(rank).fill(0);
  for (let k = 0; k < x.data.length; k++) {
    let o = 0;
    let inside = true;
    for (let ax = 0; ax < rank; ax++) {
      const c = counter[ax]! + pads[ax]!;
      if (c < 0 || c >= shape[ax]!) inside = false;
      o += c * outStrides[ax]!;
    }
    if (inside) out[o] = x.data[k]!;
    for (let ax = rank - 1; ax >= 0; ax--) {
      if (++counter[ax]! < x.shape[ax]!) break;
      counter[ax] = 0;
    }
  }
  return { shape, data: out };
}

export interface ConvAttrs {
  readonly strides: readonly number[];
  readonly pads: readonly number[];
  readonly dilations: readonly number[];
  readonly group: number;
}

export function convAttrs(attrs: Attrs, kernel: readonly number[]): ConvAttrs {
  return {
    strides: attrInts(attrs, 'strides') ?? kernel.map(() => 1),
    pads: attrInts(attrs, 'pads') ?? [...kernel.map(() => 0), ...kernel.map(() => 0)],
    dilations: attrInts(attrs, 'dilations') ?? kernel.map(() => 1),
    group: attrInt(attrs, 'group', 1),
  };
}

function conv2d(x: RefTensor, w: RefTensor, b: RefTensor | undefined, a: ConvAttrs): RefTensor {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [o, cg, kh, kw] = w.shape as [number, number, number, number];
  const [sh, sw] = a.strides as [number, number];
  const [dh, dw] = a.dilations as [number, number];
  const [pt, pl, pb, pr] = a.pads as [number, number, number, number];
  const g = a.group;
  const og = o / g;
  const ho = Math.floor((h + pt + pb - dh * (kh - 1) - 1) / sh) + 1;
  const wo = Math.floor((wd + pl + pr - dw * (kw - 1) - 1) / sw) + 1;
  if (cg * g !== c) throw new Error(`Conv: ${c} input channels, weight expects ${cg}×${g}`);
  const out = new Float64Array(n * o * ho * wo);
  // Valid output ranges per kernel tap, so the inner loop runs without bounds checks.
  const range = (
    k: number,
    d: number,
    s: number,
    p: number,
    size: number,
    outSize: number,
  ): [number, number] => {
    const off = k * d - p;
    const lo = Math.max(0, Math.ceil(-off / s));
    const hi = Math.min(outSize, Math.floor((size - 1 - off) / s) + 1);
    return [lo, Math.max(lo, hi)];
  };
  for (let bi = 0; bi < n; bi++)
    for (let oc = 0; oc < o; oc++) {
      const gi = Math.floor(oc / og);
      const ob = (bi * o + oc) * ho * wo;
      if (b) out.fill(b.data[oc]!, ob, ob + ho * wo);
      for (let ic = 0; ic < cg; ic++) {
        const xb = (bi * c + gi * cg + ic) * h * wd;
        for (let i = 0; i < kh; i++) {
          const [y0, y1] = range(i, dh, sh, pt, h, ho);
          for (let j = 0; j < kw; j++) {
            const wv = w.data[((oc * cg + ic) * kh + i) * kw + j]!;
            if (wv === 0) continue;
            const [x0, x1] = range(j, dw, sw, pl, wd, wo);
            for (let y = y0; y < y1; y++) {
              const xrow = xb + (y * sh - pt + i * dh) * wd - pl + j * dw;
              const orow = ob + y * wo;
              for (let xx = x0; xx < x1; xx++)
                out[orow + xx] = out[orow + xx]! + wv * x.data[xrow + xx * sw]!;
            }
          }
        }
      }
    }
  return { shape: [n, o, ho, wo], data: out };
}

/** ConvTranspose (2-D): the adjoint of conv2d — every input pixel scatters through the kernel. */
function convTranspose2d(
  x: RefTensor,
  w: RefTensor,
  b: RefTensor | undefined,
  a: ConvAttrs,
  outputPadding: readonly number[],
): RefTensor {
  const [n, ci, h, wd] = x.shape as [number, number, number, number];
  const [, og, kh, kw] = w.shape as [number, number, number, number];
  const g = a.group;
  const cig = ci / g;
  const o = og * g;
  const [sh, sw] = a.strides as [number, number];
  const [dh, dw] = a.dilations as [number, number];
  const [pt, pl, pb, pr] = a.pads as [number, number, number, number];
  const ho = sh * (h - 1) + outputPadding[0]! + (kh - 1) * dh + 1 - pt - pb;
  const wo = sw * (wd - 1) + outputPadding[1]! + (kw - 1) * dw + 1 - pl - pr;
  const out = new Float64Array(n * o * ho * wo);
  for (let bi = 0; bi < n; bi++)
    for (let c = 0; c < ci; c++) {
      const gi = Math.floor(c / cig);
      for (let y = 0; y < h; y++)
        for (let xx = 0; xx < wd; xx++) {
          const v = x.data[((bi * ci + c) * h + y) * wd + xx]!;
          if (v === 0) continue;
          for (let oc = 0; oc < og; oc++) {
            const ob = (bi * o + gi * og + oc) * ho;
            for (let i = 0; i < kh; i++) {
              const yy = y * sh - pt + i * dh;
              if (yy < 0 || yy >= ho) continue;
              for (let j = 0; j < kw; j++) {
                const xj = xx * sw - pl + j * dw;
                if (xj < 0 || xj >= wo) continue;
                out[(ob + yy) * wo + xj] =
                  out[(ob + yy) * wo + xj]! + v * w.data[((c * og + oc) * kh + i) * kw + j]!;
              }
            }
          }
        }
    }
  if (b) for (let i = 0; i < out.length; i++) out[i] = out[i]! + b.data[Math.floor(i / (ho * wo)) % o]!;
  return { shape: [n, o, ho, wo], data: out };
}

function matmul(a: RefTensor, b: RefTensor): RefTensor {
  if (a.shape.length < 2 || b.shape.length < 2) throw new Error('MatMul: rank < 2 is out of scope');
  const m = a.shape[a.shape.length - 2]!;
  const k = a.shape[a.shape.length - 1]!;
  const n = b.shape[b.shape.length - 1]!;
  const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2))!;
  const ia = broadcastIndex(a.shape.slice(0, -2), batch);
  const ib = broadcastIndex(b.shape.slice(0, -2), batch);
  const out = new Float64Array(size(batch) * m * n);
  for (let bi = 0; bi < ia.length; bi++) {
    const ao = ia[bi]! * m * k;
    const bo = ib[bi]! * k * n;
    const oo = bi * m * n;
    for (let i = 0; i < m; i++)
      for (let j = 0; j < n; j++) {
        let acc = 0;
        for (let t = 0; t < k; t++) acc += a.data[ao + i * k + t]! * b.data[bo + t * n + j]!;
        out[oo + i * n + j] = acc;
      }
  }
  return { shape: [...batch, m, n], data: out };
}

function softmax(x: RefTensor, axisRaw: number): RefTensor {
  const axis = normAxis(axisRaw, x.shape.length);
  const outer = size(x.shape.slice(0, axis));
  const len = x.shape[axis]!;
  const inner = size(x.shape.slice(axis + 1));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++)
    for (let i = 0; i < inner; i++) {
      let max = -Infinity;
      for (let t = 0; t < len; t++) max = Math.max(max, x.data[(o * len + t) * inner + i]!);
      let sum = 0;
      for (let t = 0; t < len; t++) sum += Math.exp(x.data[(o * len + t) * inner + i]! - max);
      for (let t = 0; t < len; t++)
        out[(o * len + t) * inner + i] = Math.exp(x.data[(o * len + t) * inner + i]! - max) / sum;
    }
  return { shape: [...x.shape], data: out };
}

/** Normalises over axes [axis, rank) (LayerNormalization) with optional scale/bias broadcast. */
function normalize(x: RefTensor, axis: number, eps: number): RefTensor {
  const outer = size(x.shape.slice(0, axis));
  const inner = size(x.shape.slice(axis));
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < outer; o++) {
    let mean = 0;
    for (let i = 0; i < inner; i++) mean += x.data[o * inner + i]!;
    mean /= inner;
    let v = 0;
    for (let i = 0; i < inner; i++) v += (x.data[o * inner + i]! - mean) ** 2;
    const inv = 1 / Math.sqrt(v / inner + eps);
    for (let i = 0; i < inner; i++) out[o * inner + i] = (x.data[o * inner + i]! - mean) * inv;
  }
  return { shape: [...x.shape], data: out };
}

function depthToSpace(x: RefTensor, r: number, mode: string): RefTensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const co = c / (r * r);
  const shaped = { shape: mode === 'CRD' ? [n, co, r, r, h, w] : [n, r, r, co, h, w], data: x.data };
  const t = transpose(shaped, mode === 'CRD' ? [0, 1, 4, 2, 5, 3] : [0, 3, 4, 1, 5, 2]);
  return { shape: [n, co, h * r, w * r], data: t.data };
}

function spaceToDepth(x: RefTensor, r: number): RefTensor {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const t = transpose({ shape: [n, c, h / r, r, w / r, r], data: x.data }, [0, 3, 5, 1, 2, 4]);
  return { shape: [n, c * r * r, h / r, w / r], data: t.data };
}

function resizeNearest(x: RefTensor, scales: readonly number[], attrs: Attrs): RefTensor {
  const ctm = attrString(attrs, 'coordinate_transformation_mode', 'half_pixel');
  const nm = attrString(attrs, 'nearest_mode', 'round_prefer_floor');
  const mode = attrString(attrs, 'mode', 'nearest');
  if (mode !== 'nearest' || ctm !== 'asymmetric' || nm !== 'floor')
    throw new Error(`Resize: only nearest/asymmetric/floor is implemented (got ${mode}/${ctm}/${nm})`);
  const shape = x.shape.map((d, i) => Math.floor(d * scales[i]!));
  const maps = shape.map((d, ax) =>
    Array.from({ length: d }, (_, i) => Math.min(x.shape[ax]! - 1, Math.floor(i / scales[ax]!))),
  );
  const inStrides = strides(x.shape);
  const out = new Float64Array(size(shape));
  const rank = shape.length;
  const counter = new Array<number>(rank).fill(0);
  for (let k = 0; k < out.length; k++) {
    let o = 0;
    for (let ax = 0; ax < rank; ax++) o += maps[ax]![counter[ax]!]! * inStrides[ax]!;
    out[k] = x.data[o]!;
    for (let ax = rank - 1; ax >= 0; ax--) {
      if (++counter[ax]! < shape[ax]!) break;
      counter[ax] = 0;
    }
  }
  return { shape, data: out };
}

function averagePool(x: RefTensor, attrs: Attrs): RefTensor {
  const k = attrInts(attrs, 'kernel_shape')!;
  const s = attrInts(attrs, 'strides') ?? [1, 1];
  const p = attrInts(attrs, 'pads') ?? [0, 0, 0, 0];
  const countPad = attrInt(attrs, 'count_include_pad', 0) === 1;
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const ho = Math.floor((h + p[0]! + p[2]! - k[0]!) / s[0]!) + 1;
  const wo = Math.floor((w + p[1]! + p[3]! - k[1]!) / s[1]!) + 1;
  const out = new Float64Array(n * c * ho * wo);
  for (let b = 0; b < n * c; b++)
    for (let y = 0; y < ho; y++)
      for (let xx = 0; xx < wo; xx++) {
        let acc = 0;
        let count = 0;
        for (let i = 0; i < k[0]!; i++)
          for (let j = 0; j < k[1]!; j++) {
            const yy = y * s[0]! - p[0]! + i;
            const xj = xx * s[1]! - p[1]! + j;
            if (yy < 0 || yy >= h || xj < 0 || xj >= w) {
              if (countPad) count++;
              continue;
            }
            acc += x.data[(b * h + yy) * w + xj]!;
            count++;
          }
        out[(b * ho + y) * wo + xx] = acc / count;
      }
  return { shape: [n, c, ho, wo], data: out };
}

/**
 * MaxPool (2-D, floor mode, no dilation): the maximum over the in-image positions of each window;
 * padded positions never win (ONNX and PyTorch semantics).
 */
function maxPool(x: RefTensor, attrs: Attrs): RefTensor {
  const k = attrInts(attrs, 'kernel_shape')!;
  const s = attrInts(attrs, 'strides') ?? [1, 1];
  const p = attrInts(attrs, 'pads') ?? [0, 0, 0, 0];
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const ho = Math.floor((h + p[0]! + p[2]! - k[0]!) / s[0]!) + 1;
  const wo = Math.floor((w + p[1]! + p[3]! - k[1]!) / s[1]!) + 1;
  const out = new Float64Array(n * c * ho * wo);
  for (let b = 0; b < n * c; b++)
    for (let y = 0; y < ho; y++)
      for (let xx = 0; xx < wo; xx++) {
        let best = -Infinity;
        for (let i = 0; i < k[0]!; i++)
          for (let j = 0; j < k[1]!; j++) {
            const yy = y * s[0]! - p[0]! + i;
            const xj = xx * s[1]! - p[1]! + j;
            if (yy < 0 || yy >= h || xj < 0 || xj >= w) continue;
            best = Math.max(best, x.data[(b * h + yy) * w + xj]!);
          }
        out[(b * ho + y) * wo + xx] = best;
      }
  return { shape: [n, c, ho, wo], data: out };
}

const ints = (t: RefTensor | undefined): number[] => (t ? Array.from(t.data) : []);

/** Evaluates one op on float64 tensors. Throws GRAPH_INVALID for an op it does not implement. */
export function evalOp(op: string, inputs: readonly (RefTensor | undefined)[], attrs: Attrs): RefTensor[] {
  const [a, b, c] = inputs;
  const A = a!;
  switch (op) {
    case 'Identity':
    case 'Cast':
      return [A];
    case 'Add':
      return [binary(A, b!, (x, y) => x + y)];
    case 'Sub':
      return [binary(A, b!, (x, y) => x - y)];
    case 'Mul':
      return [binary(A, b!, (x, y) => x * y)];
    case 'Div':
      return [binary(A, b!, (x, y) => x / y)];
    case 'Pow':
      return [binary(A, b!, (x, y) => x ** y)];
    case 'Max':
      return [inputs.slice(1).reduce<RefTensor>((acc, t) => binary(acc, t!, Math.max), A)];
    case 'Min':
      return [inputs.slice(1).reduce<RefTensor>((acc, t) => binary(acc, t!, Math.min), A)];
    case 'Equal':
      return [binary(A, b!, (x, y) => (x === y ? 1 : 0))];
    case 'Greater':
      return [binary(A, b!, (x, y) => (x > y ? 1 : 0))];
    case 'Less':
      return [binary(A, b!, (x, y) => (x < y ? 1 : 0))];
    case 'GreaterOrEqual':
      return [binary(A, b!, (x, y) => (x >= y ? 1 : 0))];
    case 'And':
      return [binary(A, b!, (x, y) => (x && y ? 1 : 0))];
    case 'Not':
      return [unary(A, (x) => (x ? 0 : 1))];
    case 'Where': {
      const shape = broadcastShapes(broadcastShapes(A.shape, b!.shape)!, c!.shape)!;
      const [ic, ix, iy] = [A, b!, c!].map((t) => broadcastIndex(t.shape, shape)) as [
        Int32Array,
        Int32Array,
        Int32Array,
      ];
      const out = new Float64Array(size(shape));
      for (let i = 0; i < out.length; i++) out[i] = A.data[ic[i]!] ? b!.data[ix[i]!]! : c!.data[iy[i]!]!;
      return [{ shape, data: out }];
    }
    case 'Neg':
      return [unary(A, (x) => -x)];
    case 'Abs':
      return [unary(A, Math.abs)];
    case 'Relu':
      return [unary(A, (x) => (x > 0 ? x : 0))];
    case 'LeakyRelu': {
      const alpha = attrFloat(attrs, 'alpha', 0.01);
      return [unary(A, (x) => (x >= 0 ? x : alpha * x))];
    }
    case 'Sigmoid':
      return [unary(A, sigmoid)];
    case 'Tanh':
      return [unary(A, Math.tanh)];
    case 'Erf':
      return [unary(A, erf)];
    case 'Exp':
      return [unary(A, Math.exp)];
    case 'Log':
      return [unary(A, Math.log)];
    case 'Sqrt':
      return [unary(A, Math.sqrt)];
    case 'Reciprocal':
      return [unary(A, (x) => 1 / x)];
    case 'Softplus':
      return [unary(A, softplus)];
    case 'Sin':
      return [unary(A, Math.sin)];
    case 'Cos':
      return [unary(A, Math.cos)];
    case 'Floor':
      return [unary(A, Math.floor)];
    case 'Ceil':
      return [unary(A, Math.ceil)];
    case 'Conv': {
      if (A.shape.length !== 4) throw new Error('Conv: only 2-D convolutions are implemented');
      return [conv2d(A, b!, c, convAttrs(attrs, b!.shape.slice(2)))];
    }
    case 'ConvTranspose':
      return [
        convTranspose2d(
          A,
          b!,
          c,
          convAttrs(attrs, b!.shape.slice(2)),
          attrInts(attrs, 'output_padding') ?? [0, 0],
        ),
      ];
    case 'MatMul':
      return [matmul(A, b!)];
    case 'Gemm': {
      const ta = attrInt(attrs, 'transA', 0) ? transpose(A, [1, 0]) : A;
      const tb = attrInt(attrs, 'transB', 0) ? transpose(b!, [1, 0]) : b!;
      const alpha = attrFloat(attrs, 'alpha', 1);
      const beta = attrFloat(attrs, 'beta', 1);
      let y = unary(matmul(ta, tb), (x) => x * alpha);
      if (c) y = binary(y, c, (x, z) => x + beta * z);
      return [y];
    }
    case 'ReduceSum':
    case 'ReduceMean':
    case 'ReduceMax':
    case 'ReduceSumSquare': {
      const axes = b ? ints(b) : attrInts(attrs, 'axes');
      const kind =
        op === 'ReduceSum' ? 'sum' : op === 'ReduceMean' ? 'mean' : op === 'ReduceMax' ? 'max' : 'sumsq';
      if (b && b.data.length === 0 && attrInt(attrs, 'noop_with_empty_axes', 0)) return [A];
      return [reduce(A, axes, attrInt(attrs, 'keepdims', 1) === 1, kind)];
    }
    case 'Reshape':
      return [{ shape: reshapeTarget(A.shape, ints(b), attrInt(attrs, 'allowzero', 0) === 1), data: A.data }];
    case 'Flatten': {
      const axis = normAxis(attrInt(attrs, 'axis', 1), A.shape.length);
      return [{ shape: [size(A.shape.slice(0, axis)), size(A.shape.slice(axis))], data: A.data }];
    }
    case 'Transpose': {
      const perm = attrInts(attrs, 'perm') ?? A.shape.map((_, i) => A.shape.length - 1 - i);
      return [transpose(A, perm)];
    }
    case 'Expand': {
      const shape = broadcastShapes(A.shape, ints(b))!;
      const idx = broadcastIndex(A.shape, shape);
      return [{ shape, data: Float64Array.from(idx, (i) => A.data[i]!) }];
    }
    case 'Tile': {
      const reps = ints(b);
      const shape = A.shape.map((d, i) => d * reps[i]!);
      const rank = shape.length;
      const inStrides = strides(A.shape);
      const out = new Float64Array(size(shape));
      const counter = new Array<number>(rank).fill(0);
      for (let k = 0; k < out.length; k++) {
        let o = 0;
        for (let ax = 0; ax < rank; ax++) o += (counter[ax]! % A.shape[ax]!) * inStrides[ax]!;
        out[k] = A.data[o]!;
        for (let ax = rank - 1; ax >= 0; ax--) {
          if (++counter[ax]! < shape[ax]!) break;
          counter[ax] = 0;
        }
      }
      return [{ shape, data: out }];
    }
    case 'Unsqueeze': {
      const axes = ints(b)
        .map((x) => normAxis(x, A.shape.length + ints(b).length))
        .sort((x, y) => x - y);
      const shape = [...A.shape];
      for (const ax of axes) shape.splice(ax, 0, 1);
      return [{ shape, data: A.data }];
    }
    case 'Squeeze': {
      const axes = b
        ? ints(b).map((x) => normAxis(x, A.shape.length))
        : A.shape.flatMap((d, i) => (d === 1 ? [i] : []));
      return [{ shape: A.shape.filter((_, i) => !axes.includes(i)), data: A.data }];
    }
    case 'Concat':
      return [concat(inputs as RefTensor[], attrInt(attrs, 'axis', 0))];
    case 'Split': {
      const axis = normAxis(attrInt(attrs, 'axis', 0), A.shape.length);
      const count = attrInt(attrs, 'num_outputs', 0);
      const sizes = b ? ints(b) : Array.from({ length: count }, () => A.shape[axis]! / count);
      let start = 0;
      return sizes.map((len) => {
        const spec = sliceSpec(A.shape, [start], [start + len], [axis]);
        start += len;
        return gather(A, spec);
      });
    }
    case 'Slice':
      return [
        gather(
          A,
          sliceSpec(
            A.shape,
            ints(b),
            ints(c),
            inputs[3] ? ints(inputs[3]) : undefined,
            inputs[4] ? ints(inputs[4]) : undefined,
          ),
        ),
      ];
    case 'Pad': {
      if (attrString(attrs, 'mode', 'constant') !== 'constant') throw new Error('Pad: only constant mode');
      return [pad(A, ints(b), c ? c.data[0]! : 0)];
    }
    case 'Shape': {
      const dims = A.shape.slice(...shapeRange(attrs, A.shape.length));
      return [ref([dims.length], dims)];
    }
    case 'Size':
      return [ref([], [A.data.length])];
    case 'ConstantOfShape': {
      const shape = ints(A);
      const v = attrs.value;
      const fill = v && v.kind === 'floats' ? v.value[0]! : v && v.kind === 'float' ? v.value : 0;
      return [{ shape, data: new Float64Array(size(shape)).fill(fill) }];
    }
    case 'Range': {
      const [s, l, d] = [A.data[0]!, b!.data[0]!, c!.data[0]!];
      const n = Math.max(0, Math.ceil((l - s) / d));
      return [
        ref(
          [n],
          Array.from({ length: n }, (_, i) => s + i * d),
        ),
      ];
    }
    case 'Gather': {
      const axis = normAxis(attrInt(attrs, 'axis', 0), A.shape.length);
      const idx = b!;
      const outer = size(A.shape.slice(0, axis));
      const inner = size(A.shape.slice(axis + 1));
      const dim = A.shape[axis]!;
      const out = new Float64Array(outer * idx.data.length * inner);
      for (let o = 0; o < outer; o++)
        for (let t = 0; t < idx.data.length; t++) {
          let i = idx.data[t]!;
          if (i < 0) i += dim;
          for (let r = 0; r < inner; r++)
            out[(o * idx.data.length + t) * inner + r] = A.data[(o * dim + i) * inner + r]!;
        }
      return [{ shape: [...A.shape.slice(0, axis), ...idx.shape, ...A.shape.slice(axis + 1)], data: out }];
    }
    case 'DepthToSpace':
      return [depthToSpace(A, attrInt(attrs, 'blocksize', 2), attrString(attrs, 'mode', 'DCR'))];
    case 'SpaceToDepth':
      return [spaceToDepth(A, attrInt(attrs, 'blocksize', 2))];
    case 'Resize':
      return [resizeNearest(A, ints(c), attrs)];
    case 'Softmax':
      return [softmax(A, attrInt(attrs, 'axis', -1))];
    case 'LayerNormalization': {
      const axis = normAxis(attrInt(attrs, 'axis', -1), A.shape.length);
      let y = normalize(A, axis, attrFloat(attrs, 'epsilon', 1e-5));
      y = binary(y, b!, (x, s) => x * s);
      if (c) y = binary(y, c, (x, s) => x + s);
      return [y];
    }
    case 'InstanceNormalization': {
      const [n, ch] = A.shape as [number, number];
      const y = normalize(
        { shape: [n, ch, size(A.shape.slice(2))], data: A.data },
        2,
        attrFloat(attrs, 'epsilon', 1e-5),
      );
      const bshape = [ch, ...A.shape.slice(2).map(() => 1)];
      const scaled = binary(
        { shape: A.shape, data: y.data },
        { shape: bshape, data: b!.data },
        (x, s) => x * s,
      );
      return [binary(scaled, { shape: bshape, data: c!.data }, (x, s) => x + s)];
    }
    case 'BatchNormalization': {
      const [scale, bias, mean, variance] = inputs.slice(1) as [RefTensor, RefTensor, RefTensor, RefTensor];
      const eps = attrFloat(attrs, 'epsilon', 1e-5);
      const ch = A.shape[1]!;
      const inner = size(A.shape.slice(2));
      const out = new Float64Array(A.data.length);
      for (let i = 0; i < A.data.length; i++) {
        const k = Math.floor(i / inner) % ch;
        out[i] =
          ((A.data[i]! - mean.data[k]!) / Math.sqrt(variance.data[k]! + eps)) * scale.data[k]! +
          bias.data[k]!;
      }
      return [{ shape: [...A.shape], data: out }];
    }
    case 'AveragePool':
      return [averagePool(A, attrs)];
    case 'MaxPool':
      return [maxPool(A, attrs)];
    default:
      throw new DcaeError(
        'GRAPH_INVALID',
        `The float64 reference interpreter has no implementation of ${op}.`,
      );
  }
}
