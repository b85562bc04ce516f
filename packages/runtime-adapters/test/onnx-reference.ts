/**
 * Naive float64 reference implementations of the ops the graph builder emits, written from the
 * ONNX operator definitions (and torch's documented formulas where noted). Slow and obvious on
 * purpose: they are the independent side of the op tests.
 */
import type { HostTensor } from '@dcae/core';

export class Nd {
  readonly strides: readonly number[];

  constructor(
    readonly shape: readonly number[],
    readonly values: readonly number[],
  ) {
    const strides: number[] = [];
    let s = 1;
    for (let d = shape.length - 1; d >= 0; d--) {
      strides[d] = s;
      s *= shape[d]!;
    }
    this.strides = strides;
    if (values.length !== s) throw new Error(`Nd: ${values.length} values for shape [${shape.join(', ')}]`);
  }

  static of(t: HostTensor): Nd {
    return new Nd(t.shape, Array.from(t.data as ArrayLike<number | bigint>, Number));
  }

  /** Builds a tensor of `shape` whose element at each multi-index is `f(index)`. */
  static fromFn(shape: readonly number[], f: (index: number[]) => number): Nd {
    const values: number[] = [];
    forEachIndex(shape, (index) => values.push(f(index)));
    return new Nd(shape, values);
  }

  get(index: readonly number[]): number {
    let offset = 0;
    for (let d = 0; d < this.shape.length; d++) offset += index[d]! * this.strides[d]!;
    return this.values[offset]!;
  }

  /** Numpy broadcasting read: `index` addresses a (possibly larger) broadcast shape, aligned right. */
  at(index: readonly number[]): number {
    const lead = index.length - this.shape.length;
    return this.get(this.shape.map((dim, d) => (dim === 1 ? 0 : index[d + lead]!)));
  }

  map(f: (v: number) => number): Nd {
    return new Nd(this.shape, this.values.map(f));
  }

  reshape(shape: readonly number[]): Nd {
    return new Nd(shape, this.values);
  }
}

export function forEachIndex(shape: readonly number[], f: (index: number[]) => void): void {
  const size = shape.reduce((a, b) => a * b, 1);
  if (size === 0) return;
  const index = shape.map(() => 0);
  for (let n = 0; n < size; n++) {
    f([...index]);
    for (let d = shape.length - 1; d >= 0; d--) {
      if (++index[d]! < shape[d]!) break;
      index[d] = 0;
    }
  }
}

export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  return Array.from({ length: rank }, (_, i) => {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new Error(`cannot broadcast ${da} with ${db}`);
    return da === 1 ? db : da;
  });
}

export function binary(a: Nd, b: Nd, f: (x: number, y: number) => number): Nd {
  return Nd.fromFn(broadcastShape(a.shape, b.shape), (i) => f(a.at(i), b.at(i)));
}

const axisOf = (axis: number, rank: number): number => (axis < 0 ? axis + rank : axis);

/** erf by its Maclaurin series (float64 error < 1e-9 on |x| < 4; erf(±4) = ±(1 − 1.5e-8)). */
export function erf(x: number): number {
  if (Math.abs(x) >= 4) return Math.sign(x);
  let term = x;
  let sum = x;
  for (let n = 1; n < 100; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

export interface ConvParams {
  strides?: readonly number[];
  /** [top, left, bottom, right] */
  pads?: readonly number[];
  dilations?: readonly number[];
  group?: number;
}

/** 2-D cross-correlation, NCHW input, MCkk weight (ONNX Conv). */
export function conv2d(x: Nd, w: Nd, bias: Nd | undefined, p: ConvParams = {}): Nd {
  const [n, c, h, wd] = x.shape as [number, number, number, number];
  const [m, cg, kh, kw] = w.shape as [number, number, number, number];
  const [sh, sw] = p.strides ?? [1, 1];
  const [pt, pl, pb, pr] = p.pads ?? [0, 0, 0, 0];
  const [dh, dw] = p.dilations ?? [1, 1];
  const group = p.group ?? 1;
  if (cg * group !== c) throw new Error('conv2d: channels');
  const oh = Math.floor((h + pt! + pb! - dh! * (kh - 1) - 1) / sh!) + 1;
  const ow = Math.floor((wd + pl! + pr! - dw! * (kw - 1) - 1) / sw!) + 1;
  return Nd.fromFn([n, m, oh, ow], ([b, o, oy, ox]) => {
    const g = Math.floor(o! / (m / group));
    let sum = bias ? bias.get([o!]) : 0;
    for (let ci = 0; ci < cg; ci++) {
      for (let ky = 0; ky < kh; ky++) {
        for (let kx = 0; kx < kw; kx++) {
          const iy = oy! * sh! - pt! + ky * dh!;
          const ix = ox! * sw! - pl! + kx * dw!;
          if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
          sum += x.get([b!, g * cg + ci, iy, ix]) * w.get([o!, ci, ky, kx]);
        }
      }
    }
    return sum;
  });
}

/** Numpy matmul for rank ≥ 2 operands (batch dims broadcast). */
export function matMul(a: Nd, b: Nd): Nd {
  const [mDim, k] = a.shape.slice(-2) as [number, number];
  const nDim = b.shape[b.shape.length - 1]!;
  const batch = broadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  return Nd.fromFn([...batch, mDim, nDim], (i) => {
    const lead = i.slice(0, -2);
    const [r, c] = i.slice(-2) as [number, number];
    let sum = 0;
    for (let j = 0; j < k; j++) sum += a.at([...lead, r, j]) * b.at([...lead, j, c]);
    return sum;
  });
}

export function transpose(x: Nd, perm: readonly number[]): Nd {
  return Nd.fromFn(
    perm.map((p) => x.shape[p]!),
    (i) => {
      const src: number[] = [];
      perm.forEach((p, k) => (src[p] = i[k]!));
      return x.get(src);
    },
  );
}

export function gemm(
  a: Nd,
  b: Nd,
  c: Nd | undefined,
  o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number },
): Nd {
  const ab = matMul(o.transA ? transpose(a, [1, 0]) : a, o.transB ? transpose(b, [1, 0]) : b);
  return Nd.fromFn(ab.shape, (i) => (o.alpha ?? 1) * ab.get(i) + (c ? (o.beta ?? 1) * c.at(i) : 0));
}

/** Sums (or averages) over `axes`, keeping them as size-1 dims or dropping them. */
export function reduce(x: Nd, axes: readonly number[], keepdims: boolean, mean: boolean): Nd {
  const rank = x.shape.length;
  const reduced = new Set(axes.map((a) => axisOf(a, rank)));
  const kept = x.shape.map((d, i) => (reduced.has(i) ? 1 : d));
  const window = x.shape.map((d, i) => (reduced.has(i) ? d : 1));
  const count = window.reduce((p, q) => p * q, 1);
  const out = Nd.fromFn(kept, (i) => {
    let sum = 0;
    forEachIndex(window, (w) => (sum += x.get(i.map((v, d) => v + w[d]!))));
    return mean ? sum / count : sum;
  });
  return keepdims ? out : out.reshape(x.shape.filter((_, i) => !reduced.has(i)));
}

export function softmax(x: Nd, axis: number): Nd {
  const a = axisOf(axis, x.shape.length);
  const shifted = Nd.fromFn(x.shape, (i) => {
    let m = -Infinity;
    for (let j = 0; j < x.shape[a]!; j++) m = Math.max(m, x.get(i.map((v, d) => (d === a ? j : v))));
    return Math.exp(x.get(i) - m);
  });
  const sums = reduce(shifted, [a], true, false);
  return Nd.fromFn(x.shape, (i) => shifted.get(i) / sums.at(i.map((v, d) => (d === a ? 0 : v))));
}

/** LayerNormalization over the dims from `axis` on; scale/bias have the normalised shape. */
export function layerNorm(x: Nd, scale: Nd, bias: Nd | undefined, axis: number, epsilon: number): Nd {
  const a = axisOf(axis, x.shape.length);
  const axes = x.shape.map((_, i) => i).filter((i) => i >= a);
  const mean = reduce(x, axes, true, true);
  const variance = reduce(
    Nd.fromFn(x.shape, (i) => (x.get(i) - mean.at(i.map((v, d) => (d >= a ? 0 : v)))) ** 2),
    axes,
    true,
    true,
  );
  return Nd.fromFn(x.shape, (i) => {
    const head = i.map((v, d) => (d >= a ? 0 : v));
    const norm = (x.get(i) - mean.get(head)) / Math.sqrt(variance.get(head) + epsilon);
    return norm * scale.at(i) + (bias ? bias.at(i) : 0);
  });
}

export function concat(xs: readonly Nd[], axis: number): Nd {
  const a = axisOf(axis, xs[0]!.shape.length);
  const shape = [...xs[0]!.shape];
  shape[a] = xs.reduce((s, x) => s + x.shape[a]!, 0);
  return Nd.fromFn(shape, (i) => {
    let k = i[a]!;
    for (const x of xs) {
      if (k < x.shape[a]!) return x.get(i.map((v, d) => (d === a ? k : v)));
      k -= x.shape[a]!;
    }
    throw new Error('concat: index');
  });
}

/** The indices a Python/ONNX slice `start:end:step` selects along a dim of size `dim`. */
export function sliceIndices(dim: number, start: number, end: number, step: number): number[] {
  const clamp = (v: number, lo: number, hi: number): number => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + dim : start;
  let e = end < 0 ? end + dim : end;
  if (step > 0) {
    s = clamp(s, 0, dim);
    e = clamp(e, 0, dim);
  } else {
    s = clamp(s, 0, dim - 1);
    e = clamp(e, -1, dim - 1);
  }
  const out: number[] = [];
  for (let i = s; step > 0 ? i < e : i > e; i += step) out.push(i);
  return out;
}

export function slice(
  x: Nd,
  starts: readonly number[],
  ends: readonly number[],
  axes: readonly number[],
  steps: readonly number[],
): Nd {
  const picks = x.shape.map((dim) => Array.from({ length: dim }, (_, i) => i));
  axes.forEach((axis, k) => {
    const a = axisOf(axis, x.shape.length);
    picks[a] = sliceIndices(x.shape[a]!, starts[k]!, ends[k]!, steps[k]!);
  });
  return Nd.fromFn(
    picks.map((p) => p.length),
    (i) => x.get(i.map((v, d) => picks[d]![v]!)),
  );
}

/** Constant Pad; `pads` = [begin_0 … begin_n, end_0 … end_n]. */
export function pad(x: Nd, pads: readonly number[], value: number): Nd {
  const r = x.shape.length;
  const shape = x.shape.map((d, i) => d + pads[i]! + pads[i + r]!);
  return Nd.fromFn(shape, (i) => {
    const src = i.map((v, d) => v - pads[d]!);
    return src.every((v, d) => v >= 0 && v < x.shape[d]!) ? x.get(src) : value;
  });
}

export function tile(x: Nd, repeats: readonly number[]): Nd {
  return Nd.fromFn(
    x.shape.map((d, i) => d * repeats[i]!),
    (i) => x.get(i.map((v, d) => v % x.shape[d]!)),
  );
}

export function gather(x: Nd, indices: Nd, axis: number): Nd {
  const a = axisOf(axis, x.shape.length);
  const q = indices.shape.length;
  const shape = [...x.shape.slice(0, a), ...indices.shape, ...x.shape.slice(a + 1)];
  return Nd.fromFn(shape, (i) => {
    const raw = indices.get(i.slice(a, a + q));
    const k = raw < 0 ? raw + x.shape[a]! : raw;
    return x.get([...i.slice(0, a), k, ...i.slice(a + q)]);
  });
}

/** torch pixel_shuffle: out[b, c, y·r + i, x·r + j] = in[b, c·r² + i·r + j, y, x] (= ONNX DepthToSpace CRD). */
export function pixelShuffle(x: Nd, r: number): Nd {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return Nd.fromFn([n, c / (r * r), h * r, w * r], ([b, ch, oy, ox]) => {
    const i = oy! % r;
    const j = ox! % r;
    return x.get([b!, ch! * r * r + i * r + j, Math.floor(oy! / r), Math.floor(ox! / r)]);
  });
}

/** ONNX DepthToSpace DCR: out[b, c, y·r + i, x·r + j] = in[b, (i·r + j)·C + c, y, x]. */
export function depthToSpaceDcr(x: Nd, r: number): Nd {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const cOut = c / (r * r);
  return Nd.fromFn([n, cOut, h * r, w * r], ([b, ch, oy, ox]) => {
    const i = oy! % r;
    const j = ox! % r;
    return x.get([b!, (i * r + j) * cOut + ch!, Math.floor(oy! / r), Math.floor(ox! / r)]);
  });
}

/** ONNX SpaceToDepth (DCR order): out[b, (i·r + j)·C + c, y, x] = in[b, c, y·r + i, x·r + j]. */
export function spaceToDepth(x: Nd, r: number): Nd {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return Nd.fromFn([n, c * r * r, h / r, w / r], ([b, oc, y, xx]) => {
    const block = Math.floor(oc! / c);
    const ch = oc! % c;
    const i = Math.floor(block / r);
    const j = block % r;
    return x.get([b!, ch, y! * r + i, xx! * r + j]);
  });
}

/** torch pixel_unshuffle: out[b, c·r² + i·r + j, y, x] = in[b, c, y·r + i, x·r + j]. */
export function pixelUnshuffle(x: Nd, r: number): Nd {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return Nd.fromFn([n, c * r * r, h / r, w / r], ([b, oc, y, xx]) => {
    const ch = Math.floor(oc! / (r * r));
    const i = Math.floor((oc! % (r * r)) / r);
    const j = oc! % r;
    return x.get([b!, ch, y! * r + i, xx! * r + j]);
  });
}

/** Resize nearest, asymmetric coordinates, floor rounding: out[…, y, x] = in[…, ⌊y/sy⌋, ⌊x/sx⌋]. */
export function resizeNearest(x: Nd, scales: readonly number[]): Nd {
  return Nd.fromFn(
    x.shape.map((d, i) => Math.floor(d * scales[i]!)),
    (i) => x.get(i.map((v, d) => Math.min(Math.floor(v / scales[d]!), x.shape[d]! - 1))),
  );
}
