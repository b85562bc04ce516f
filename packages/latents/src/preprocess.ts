import { checkRgbImage } from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';

/**
 * The preprocessing every latent in a dataset went through, recorded in the plan, each commit
 * record and `manifest.jsonl`. Bump the version whenever the pixels fed to the encoder could change.
 *
 * `adm-center-crop-v1` is the center crop of ADM / efficientvit's `DMCrop` (docs/latents.md,
 * "Preprocessing"):
 * 1. while the short side is at least 2·size, halve both sides (`side // 2`) with a box filter;
 * 2. resize with a bicubic filter (a = −0.5, antialiased) so that the short side becomes `size`,
 *    the long side `round(side · size / short)`;
 * 3. cut the centered size×size square (offsets `(side − size) // 2`);
 * 4. x = pixel/255 then (x − 0.5)/0.5 ∈ [−1, 1] (the model input, see `imageToTensor`).
 * Both resampling steps follow Pillow's separable resampler: horizontal pass, rounding to 8 bits,
 * then vertical pass, with its window and coefficient normalisation, in floating point (Pillow
 * uses 22-bit fixed-point coefficients, so a pixel can differ from Pillow by one step).
 */
export const PREPROCESSING_VERSION = 'adm-center-crop-v1';

type Filter = { readonly support: number; readonly f: (x: number) => number };

const BOX: Filter = { support: 0.5, f: (x) => (x >= -0.5 && x < 0.5 ? 1 : 0) };
const BICUBIC: Filter = {
  support: 2,
  f: (x) => {
    const a = -0.5;
    const t = Math.abs(x);
    if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
    if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
    return 0;
  },
};

interface Coefficients {
  readonly start: Int32Array;
  readonly count: Int32Array;
  readonly weights: Float64Array;
  readonly stride: number;
}

function coefficients(inSize: number, outSize: number, filter: Filter): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      const w = filter.f((x + xmin - center + 0.5) / filterScale);
      weights[xx * stride + x] = w;
      total += w;
    }
    if (total !== 0) for (let x = 0; x < xmax; x++) weights[xx * stride + x]! /= total;
    start[xx] = xmin;
    count[xx] = xmax;
  }
  return { start, count, weights, stride };
}

const clampByte = (v: number): number => (v <= 0 ? 0 : v >= 255 ? 255 : Math.round(v));

function resizeHorizontal(image: RgbImage, width: number, filter: Filter): RgbImage {
  const c = coefficients(image.width, width, filter);
  const out = new Uint8Array(width * image.height * 3);
  for (let y = 0; y < image.height; y++) {
    const row = y * image.width * 3;
    for (let xx = 0; xx < width; xx++) {
      const base = xx * c.stride;
      let r = 0;
      let g = 0;
      let b = 0;
      for (let k = 0; k < c.count[xx]!; k++) {
        const w = c.weights[base + k]!;
        const p = row + (c.start[xx]! + k) * 3;
        r += w * image.data[p]!;
        g += w * image.data[p + 1]!;
        b += w * image.data[p + 2]!;
      }
      const o = (y * width + xx) * 3;
      out[o] = clampByte(r);
      out[o + 1] = clampByte(g);
      out[o + 2] = clampByte(b);
    }
  }
  return { width, height: image.height, channels: 3, data: out };
}

function resizeVertical(image: RgbImage, height: number, filter: Filter): RgbImage {
  const c = coefficients(image.height, height, filter);
  const rowBytes = image.width * 3;
  const out = new Uint8Array(rowBytes * height);
  for (let yy = 0; yy < height; yy++) {
    const base = yy * c.stride;
    for (let i = 0; i < rowBytes; i++) {
      let v = 0;
      for (let k = 0; k < c.count[yy]!; k++)
        v += c.weights[base + k]! * image.data[(c.start[yy]! + k) * rowBytes + i]!;
      out[yy * rowBytes + i] = clampByte(v);
    }
  }
  return { width: image.width, height, channels: 3, data: out };
}

/** Pillow-style separable resize (horizontal pass first, 8-bit intermediate). */
export function resizeImage(
  image: RgbImage,
  width: number,
  height: number,
  filter: 'box' | 'bicubic',
): RgbImage {
  checkRgbImage(image);
  const f = filter === 'box' ? BOX : BICUBIC;
  let out = image;
  if (width !== out.width) out = resizeHorizontal(out, width, f);
  if (height !== out.height) out = resizeVertical(out, height, f);
  return out;
}

/** Where the square came from, in the coordinates of the image after the box halvings and the resize. */
export interface CropBox {
  /** Source size before any step. */
  readonly source: { readonly width: number; readonly height: number };
  /** Size after halving and resizing, before the crop. */
  readonly resized: { readonly width: number; readonly height: number };
  readonly left: number;
  readonly top: number;
  readonly size: number;
}

/** `adm-center-crop-v1` (see {@link PREPROCESSING_VERSION}): any RGB image → size×size RGB. */
export function centerCrop(image: RgbImage, size: number): { image: RgbImage; crop: CropBox } {
  checkRgbImage(image);
  const source = { width: image.width, height: image.height };
  let img = image;
  while (Math.min(img.width, img.height) >= 2 * size) {
    img = resizeImage(img, Math.floor(img.width / 2), Math.floor(img.height / 2), 'box');
  }
  const scale = size / Math.min(img.width, img.height);
  // Python's round() is half-to-even.
  const pyRound = (x: number): number => {
    const r = Math.round(x);
    return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
  };
  img = resizeImage(img, pyRound(img.width * scale), pyRound(img.height * scale), 'bicubic');
  const top = Math.floor((img.height - size) / 2);
  const left = Math.floor((img.width - size) / 2);
  const out = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    const from = ((top + y) * img.width + left) * 3;
    out.set(img.data.subarray(from, from + size * 3), y * size * 3);
  }
  return {
    image: { width: size, height: size, channels: 3, data: out },
    crop: { source, resized: { width: img.width, height: img.height }, left, top, size },
  };
}
