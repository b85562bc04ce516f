import { DcaeError } from '@dcae/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { psnr, reconstructionMetrics, ssim } from '../src/image/index.js';
import type { RgbImage } from '../src/image/index.js';

function image(width: number, height: number, pixel: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = Math.min(255, Math.max(0, pixel(x, y, c)));
  return { width, height, channels: 3, data };
}

/**
 * Independent reference: SSIM straight from its definition, one 11×11 window at a time, with the
 * 2-D Gaussian weights w(i, j) = g(i)·g(j) (σ = 1.5, normalised over the window), over every window
 * that lies fully inside the image, per channel, then the plain mean.
 */
function naiveSsim(a: RgbImage, b: RgbImage): number {
  const r = 5;
  const g: number[] = [];
  for (let k = -r; k <= r; k++) g.push(Math.exp(-(k * k) / (2 * 1.5 * 1.5)));
  const sum = g.reduce((s, v) => s + v, 0);
  const w = g.map((v) => v / sum);
  const c1 = (0.01 * 255) ** 2;
  const c2 = (0.03 * 255) ** 2;
  let total = 0;
  let count = 0;
  for (let c = 0; c < 3; c++)
    for (let cy = r; cy < a.height - r; cy++)
      for (let cx = r; cx < a.width - r; cx++) {
        let mx = 0;
        let my = 0;
        for (let i = -r; i <= r; i++)
          for (let j = -r; j <= r; j++) {
            const k = ((cy + i) * a.width + cx + j) * 3 + c;
            mx += w[i + r]! * w[j + r]! * a.data[k]!;
            my += w[i + r]! * w[j + r]! * b.data[k]!;
          }
        let vx = 0;
        let vy = 0;
        let cov = 0;
        for (let i = -r; i <= r; i++)
          for (let j = -r; j <= r; j++) {
            const k = ((cy + i) * a.width + cx + j) * 3 + c;
            const wt = w[i + r]! * w[j + r]!;
            vx += wt * (a.data[k]! - mx) ** 2;
            vy += wt * (b.data[k]! - my) ** 2;
            cov += wt * (a.data[k]! - mx) * (b.data[k]! - my);
          }
        total += ((2 * mx * my + c1) * (2 * cov + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2));
        count++;
      }
  return total / count;
}

// The pair used for the torchmetrics cross-check below.
const H = 24;
const W = 19;
const refPattern = (x: number, y: number, c: number) => (y * 37 + x * 91 + c * 53 + ((y * x) % 17) * 7) % 256;
const testPattern = (x: number, y: number, c: number) =>
  refPattern(x, y, c) + ((y * 7 + x * 3 + c * 5) % 61) - 30;

describe('psnr', () => {
  it('is 10·log10(255²/MSE) with MSE over all 3·H·W values', () => {
    const a = image(4, 3, () => 10);
    const b = image(4, 3, (x) => (x === 0 ? 13 : 10)); // column 0: 3 rows × 3 channels differ by 3, out of 36 values
    expect(psnr(a, b)).toBeCloseTo(10 * Math.log10((255 * 255) / ((9 * 9) / 36)), 10);
    expect(
      psnr(
        a,
        image(4, 3, () => 12),
      ),
    ).toBeCloseTo(10 * Math.log10(65025 / 4), 10);
  });

  it('is Infinity for identical images and symmetric', () => {
    const a = image(8, 8, (x, y, c) => x * 30 + y + c);
    expect(psnr(a, a)).toBe(Infinity);
    const b = image(8, 8, (x, y, c) => x * 30 + y + c + ((x + y) % 3));
    expect(psnr(a, b)).toBe(psnr(b, a));
  });

  it('matches a value computed with numpy for the cross-check pair', () => {
    // numpy: mse = ((ref - clip(test, 0, 255))**2).mean() = 295.969298245614 → 23.418336980997058 dB
    expect(psnr(image(W, H, refPattern), image(W, H, testPattern))).toBeCloseTo(23.418336980997058, 10);
  });

  it('rejects images of different sizes', () => {
    expect(() =>
      psnr(
        image(4, 4, () => 0),
        image(4, 5, () => 0),
      ),
    ).toThrow(DcaeError);
  });
});

describe('ssim', () => {
  it('is 1 for identical images', () => {
    const a = image(23, 17, (x, y, c) => (x * 13 + y * 29 + c * 71) % 256);
    expect(ssim(a, a)).toBeCloseTo(1, 12);
    const flat = image(11, 11, () => 200);
    expect(ssim(flat, flat)).toBe(1);
  });

  it('agrees with a direct per-window implementation on random images', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 11, max: 20 }),
        fc.integer({ min: 11, max: 20 }),
        fc.integer({ min: 0, max: 2 ** 31 - 1 }),
        fc.integer({ min: 0, max: 80 }),
        (width, height, seed, noise) => {
          let s = seed;
          const rand = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) >>> 8) / 2 ** 24;
          const a = image(width, height, () => Math.floor(rand() * 256));
          const b = image(
            width,
            height,
            (x, y, c) => a.data[(y * width + x) * 3 + c]! + Math.round((rand() - 0.5) * noise),
          );
          expect(Math.abs(ssim(a, b) - naiveSsim(a, b))).toBeLessThan(1e-10);
        },
      ),
      { seed: 11, numRuns: 25 },
    );
  });

  it("matches a numpy transcription of torchmetrics' algorithm (reflect pad, conv, crop)", () => {
    // float64 numpy of torchmetrics._ssim_update with data_range=(0, 255): 0.9771497215873637
    // (the same in float32, as torchmetrics runs it: 0.9771496057510376)
    expect(ssim(image(W, H, refPattern), image(W, H, testPattern))).toBeCloseTo(0.9771497215873637, 10);
  });

  it('falls as the distortion grows and is symmetric', () => {
    const a = image(32, 32, (x, y) => 128 + Math.round(60 * Math.sin(x / 3) * Math.cos(y / 4)));
    const noisy = (amp: number) =>
      image(32, 32, (x, y, c) => a.data[(y * 32 + x) * 3 + c]! + (((x * 7 + y * 13) % 5) - 2) * amp);
    const s1 = ssim(a, noisy(2));
    const s2 = ssim(a, noisy(8));
    expect(s1).toBeLessThan(1);
    expect(s2).toBeLessThan(s1);
    expect(ssim(noisy(8), a)).toBeCloseTo(s2, 14);
  });

  it('needs at least 11×11 pixels', () => {
    const small = image(10, 30, () => 0);
    try {
      ssim(small, small);
      expect.unreachable();
    } catch (error) {
      expect(DcaeError.is(error, 'INPUT_SIZE')).toBe(true);
    }
  });
});

describe('reconstructionMetrics', () => {
  it('reports per-image values and their means (mean of PSNRs, not PSNR of the mean MSE)', () => {
    const a = image(12, 12, (x, y) => x * 20 + y);
    const b1 = image(12, 12, (x, y) => x * 20 + y + 1);
    const b2 = image(12, 12, (x, y) => x * 20 + y + 4);
    const m = reconstructionMetrics([a, a], [b1, b2]);
    expect(m.images.map((i) => i.psnr)).toEqual([psnr(a, b1), psnr(a, b2)]);
    expect(m.psnr).toBeCloseTo((10 * Math.log10(65025 / 1) + 10 * Math.log10(65025 / 16)) / 2, 10);
    expect(m.ssim).toBeCloseTo((ssim(a, b1) + ssim(a, b2)) / 2, 14);
  });

  it('rejects mismatched lists', () => {
    expect(() => reconstructionMetrics([], [])).toThrow(DcaeError);
  });
});
