import { DcaeError } from '@dcae/core';
import { checkRgbImage } from './rgb-image.js';
import type { RgbImage } from './rgb-image.js';

/**
 * Reconstruction metrics as efficientvit's evaluator computes them (docs/model-spec.md §6.1): both images are
 * uint8 (quantise model outputs with `tensorToImages` first), data range 255.
 */

const DATA_RANGE = 255;

function checkPair(reference: RgbImage, reconstruction: RgbImage): void {
  checkRgbImage(reference, 'reference image');
  checkRgbImage(reconstruction, 'reconstruction');
  if (reference.width !== reconstruction.width || reference.height !== reconstruction.height) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `Cannot compare a ${reference.width}×${reference.height} reference with a ` +
        `${reconstruction.width}×${reconstruction.height} reconstruction; crop them to the same size first.`,
    );
  }
}

/** PSNR in dB of one image: 10·log10(255² / MSE), MSE over all 3·H·W values; Infinity when identical. */
export function psnr(reference: RgbImage, reconstruction: RgbImage): number {
  checkPair(reference, reconstruction);
  const a = reference.data;
  const b = reconstruction.data;
  let sum = 0;
  for (let i = 0; i < a.length; i++) {
    const d = a[i]! - b[i]!;
    sum += d * d;
  }
  const mse = sum / a.length;
  return mse === 0 ? Infinity : 10 * Math.log10((DATA_RANGE * DATA_RANGE) / mse);
}

/** torchmetrics' SSIM defaults: Gaussian window 11×11 (⌊3.5σ + 0.5⌋·2 + 1), σ 1.5, k1 0.01, k2 0.03. */
const SIGMA = 1.5;
const RADIUS = Math.floor(3.5 * SIGMA + 0.5);
const WINDOW = 2 * RADIUS + 1;
/** The smallest width and height `ssim` accepts: its Gaussian window, 11 px. */
export const SSIM_MIN_SIDE = WINDOW;
const C1 = (0.01 * DATA_RANGE) ** 2;
const C2 = (0.03 * DATA_RANGE) ** 2;

/** The normalised 1-D Gaussian; the 2-D window is its outer product with itself. */
const GAUSS: Float64Array = (() => {
  const g = new Float64Array(WINDOW);
  let total = 0;
  for (let k = 0; k < WINDOW; k++) {
    const d = (k - RADIUS) / SIGMA;
    g[k] = Math.exp(-(d * d) / 2);
    total += g[k]!;
  }
  return g.map((v) => v / total);
})();

/**
 * SSIM of one RGB image pair, equal to torchmetrics'
 * `StructuralSimilarityIndexMeasure(data_range=(0, 255))` with its defaults: per channel, local
 * Gaussian-weighted means μ, variances σ² = E[x²] − μ² (clamped at 0) and covariance σxy give
 * ((2μxμy + C1)(2σxy + C2)) / ((μx² + μy² + C1)(σx² + σy² + C2)); the result is the mean over
 * all channels and positions.
 *
 * Border handling: torchmetrics reflect-pads by 5 pixels, convolves and then crops 5 pixels from
 * every side of the SSIM map. The kept positions are exactly those whose 11×11 window lies inside
 * the image, so the padded values never reach the result; this computes that "valid" region
 * directly ((H − 10)·(W − 10) positions per channel) and needs both sides ≥ 11.
 *
 * Computed in float64 (torchmetrics runs in the input dtype, usually float32; the two agree to
 * about 1e-6). The separable window is applied row by row with an 11-row ring buffer, so memory is
 * O(W) whatever the image size.
 */
export function ssim(reference: RgbImage, reconstruction: RgbImage): number {
  checkPair(reference, reconstruction);
  const { width, height } = reference;
  if (width < WINDOW || height < WINDOW) {
    throw new DcaeError(
      'INPUT_SIZE',
      `SSIM needs images of at least ${WINDOW}×${WINDOW} pixels (its Gaussian window), got ${width}×${height}.`,
    );
  }
  const outW = width - WINDOW + 1;
  const outH = height - WINDOW + 1;
  // ring[s] holds the horizontally filtered x, y, x², y², xy of one input row (slot = row % WINDOW).
  const ring = Array.from({ length: WINDOW }, () => new Float64Array(5 * outW));
  let total = 0;
  for (let c = 0; c < 3; c++) {
    for (let row = 0; row < height; row++) {
      filterRow(reference.data, reconstruction.data, width, row, c, outW, ring[row % WINDOW]!);
      if (row < WINDOW - 1) continue;
      const top = row - WINDOW + 1;
      for (let j = 0; j < outW; j++) {
        let mx = 0;
        let my = 0;
        let exx = 0;
        let eyy = 0;
        let exy = 0;
        for (let k = 0; k < WINDOW; k++) {
          const w = GAUSS[k]!;
          const r = ring[(top + k) % WINDOW]!;
          mx += w * r[j]!;
          my += w * r[outW + j]!;
          exx += w * r[2 * outW + j]!;
          eyy += w * r[3 * outW + j]!;
          exy += w * r[4 * outW + j]!;
        }
        const vx = Math.max(exx - mx * mx, 0);
        const vy = Math.max(eyy - my * my, 0);
        const cxy = exy - mx * my;
        total += ((2 * mx * my + C1) * (2 * cxy + C2)) / ((mx * mx + my * my + C1) * (vx + vy + C2));
      }
    }
  }
  return total / (3 * outW * outH);
}

/** Horizontal pass of the Gaussian over one row of channel `c`, valid positions only. */
function filterRow(
  a: Uint8Array,
  b: Uint8Array,
  width: number,
  row: number,
  c: number,
  outW: number,
  out: Float64Array,
): void {
  const base = row * width * 3 + c;
  for (let j = 0; j < outW; j++) {
    let sx = 0;
    let sy = 0;
    let sxx = 0;
    let syy = 0;
    let sxy = 0;
    for (let k = 0; k < WINDOW; k++) {
      const w = GAUSS[k]!;
      const i = base + 3 * (j + k);
      const x = a[i]!;
      const y = b[i]!;
      sx += w * x;
      sy += w * y;
      sxx += w * x * x;
      syy += w * y * y;
      sxy += w * x * y;
    }
    out[j] = sx;
    out[outW + j] = sy;
    out[2 * outW + j] = sxx;
    out[3 * outW + j] = syy;
    out[4 * outW + j] = sxy;
  }
}

export interface ImageMetrics {
  readonly psnr: number;
  readonly ssim: number;
}

export interface ReconstructionMetrics extends ImageMetrics {
  /** Per image, in input order; the top-level values are their means (as the evaluator reports). */
  readonly images: readonly ImageMetrics[];
}

/** PSNR and SSIM per image pair and their means over the images (docs/model-spec.md §6.1: the mean of per-image PSNR, not the PSNR of the mean MSE). */
export function reconstructionMetrics(
  references: readonly RgbImage[],
  reconstructions: readonly RgbImage[],
): ReconstructionMetrics {
  if (references.length !== reconstructions.length || references.length === 0) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `Need the same non-zero number of references and reconstructions, got ${references.length} and ${reconstructions.length}.`,
    );
  }
  const images = references.map((ref, i) => ({
    psnr: psnr(ref, reconstructions[i]!),
    ssim: ssim(ref, reconstructions[i]!),
  }));
  const mean = (pick: (m: ImageMetrics) => number) => images.reduce((s, m) => s + pick(m), 0) / images.length;
  return { psnr: mean((m) => m.psnr), ssim: mean((m) => m.ssim), images };
}
