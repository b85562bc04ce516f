import type { RgbImage } from '@dcae/autoencoder';

/**
 * A square region of an RGB image resampled to `size`×`size` bytes, optionally mirrored. Separable
 * triangle filter whose support widens with the downscale factor (an antialiased bilinear, as
 * PIL's BILINEAR resize does), so crops at any scale are free of aliasing; upscaling is plain
 * bilinear. Pure integer-free float maths in a fixed order: the same bytes on every machine.
 */
export interface Region {
  /** Left/top edge of the region in source pixels (may be fractional). */
  readonly x: number;
  readonly y: number;
  /** Side of the square region in source pixels (may be fractional, ≤ the image's short side). */
  readonly side: number;
  /** Output side in pixels. */
  readonly size: number;
  /** Mirror left–right. */
  readonly flip: boolean;
}

interface AxisWeights {
  readonly first: Int32Array;
  readonly count: Int32Array;
  readonly weights: Float64Array;
  readonly stride: number;
}

function axisWeights(start: number, side: number, size: number, limit: number): AxisWeights {
  const scale = side / size;
  const support = Math.max(1, scale);
  const stride = Math.ceil(support) * 2 + 2;
  const first = new Int32Array(size);
  const count = new Int32Array(size);
  const weights = new Float64Array(size * stride);
  for (let o = 0; o < size; o++) {
    const centre = start + (o + 0.5) * scale;
    const lo = Math.max(0, Math.floor(centre - support));
    const hi = Math.min(limit, Math.ceil(centre + support));
    let total = 0;
    let n = 0;
    for (let i = lo; i < hi && n < stride; i++) {
      const w = Math.max(0, 1 - Math.abs((i + 0.5 - centre) / support));
      weights[o * stride + n] = w;
      total += w;
      n++;
    }
    if (total === 0) {
      // A region edge beyond the image: take the nearest pixel.
      weights[o * stride] = 1;
      first[o] = Math.min(limit - 1, Math.max(0, Math.floor(centre)));
      count[o] = 1;
      continue;
    }
    for (let k = 0; k < n; k++) weights[o * stride + k]! /= total;
    first[o] = lo;
    count[o] = n;
  }
  return { first, count, weights, stride };
}

export function resampleRegion(image: RgbImage, region: Region): RgbImage {
  const { width, height, data } = image;
  const { size } = region;
  const ax = axisWeights(region.x, region.side, size, width);
  const ay = axisWeights(region.y, region.side, size, height);
  // Rows first (only the source rows the region touches), then columns.
  const rowLo = ay.first.reduce((m, v) => Math.min(m, v), height);
  let rowHi = 0;
  for (let o = 0; o < size; o++) rowHi = Math.max(rowHi, ay.first[o]! + ay.count[o]!);
  const rows = rowHi - rowLo;
  const tmp = new Float64Array(rows * size * 3);
  for (let r = 0; r < rows; r++) {
    const src = (rowLo + r) * width * 3;
    for (let o = 0; o < size; o++) {
      let a = 0;
      let b = 0;
      let c = 0;
      const f = ax.first[o]!;
      for (let k = 0; k < ax.count[o]!; k++) {
        const w = ax.weights[o * ax.stride + k]!;
        const p = src + (f + k) * 3;
        a += w * data[p]!;
        b += w * data[p + 1]!;
        c += w * data[p + 2]!;
      }
      const t = (r * size + o) * 3;
      tmp[t] = a;
      tmp[t + 1] = b;
      tmp[t + 2] = c;
    }
  }
  const out = new Uint8Array(size * size * 3);
  for (let oy = 0; oy < size; oy++) {
    const f = ay.first[oy]! - rowLo;
    for (let ox = 0; ox < size; ox++) {
      let a = 0;
      let b = 0;
      let c = 0;
      for (let k = 0; k < ay.count[oy]!; k++) {
        const w = ay.weights[oy * ay.stride + k]!;
        const t = ((f + k) * size + ox) * 3;
        a += w * tmp[t]!;
        b += w * tmp[t + 1]!;
        c += w * tmp[t + 2]!;
      }
      const dx = region.flip ? size - 1 - ox : ox;
      const q = (oy * size + dx) * 3;
      out[q] = clampByte(a);
      out[q + 1] = clampByte(b);
      out[q + 2] = clampByte(c);
    }
  }
  return { width: size, height: size, channels: 3, data: out };
}

function clampByte(v: number): number {
  const r = Math.round(v);
  return r < 0 ? 0 : r > 255 ? 255 : r;
}
