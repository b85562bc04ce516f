import type { RgbImage } from '@dcae/autoencoder';
import { describe, expect, it } from 'vitest';
import { channelGrid, errorHeatmap, heatColor, pcaPicture, percentile, stats } from '../src/visualize.js';

const rgb = (width: number, height: number, value: (i: number) => number): RgbImage => ({
  width,
  height,
  channels: 3,
  data: Uint8Array.from({ length: width * height * 3 }, (_, i) => value(i)),
});

describe('pcaPicture', () => {
  it('finds the one direction of a rank-1 latent and maps it to red, increasing with the pattern', () => {
    const [c, h, w] = [6, 4, 5];
    const loading = [0.5, -1, 2, 0, 0.25, -0.75];
    const pattern = Array.from({ length: h * w }, (_, i) => Math.sin(i) * 3 + i / 10);
    const latent = Float32Array.from(
      { length: c * h * w },
      (_, k) => loading[Math.floor(k / (h * w))]! * pattern[k % (h * w)]! + 1,
    );
    const { picture, explained } = pcaPicture(latent, c, h, w);
    expect(explained).toBeCloseTo(1, 6);
    expect([picture.width, picture.height]).toEqual([w, h]);
    // The largest loading (2) is positive, so red rises with the pattern.
    const red = Array.from({ length: h * w }, (_, i) => picture.rgba[4 * i]!);
    const order = (values: number[]) => values.map((_, i) => i).sort((a, b) => values[a]! - values[b]!);
    expect(red[order(pattern)[0]!]).toBe(0);
    expect(red[order(pattern).at(-1)!]).toBe(255);
    expect(picture.rgba.filter((_, i) => i % 4 === 3).every((a) => a === 255)).toBe(true);
  });

  it('splits the variance of three independent channels in order', () => {
    const [c, h, w] = [3, 8, 8];
    const scales = [1, 4, 2];
    const latent = Float32Array.from({ length: c * h * w }, (_, k) => {
      const [ch, i] = [Math.floor(k / (h * w)), k % (h * w)];
      return scales[ch]! * Math.sin(i * (ch + 1.3) + ch);
    });
    expect(pcaPicture(latent, c, h, w).explained).toBeCloseTo(1, 6);
  });
});

describe('errorHeatmap', () => {
  it('is black with zero error for identical images', () => {
    const a = rgb(4, 3, (i) => (i * 37) % 256);
    const { picture, meanAbsError, scale } = errorHeatmap(a, a);
    expect(meanAbsError).toBe(0);
    expect(scale).toBe(1);
    expect(Array.from(picture.rgba.subarray(0, 4))).toEqual([...heatColor(0), 255]);
  });

  it('averages |Δ| over R, G and B and maps the largest error to the brightest colour', () => {
    const a = rgb(2, 1, () => 100);
    const b: RgbImage = { ...a, data: Uint8Array.of(100, 100, 100, 130, 100, 70) };
    const { picture, meanAbsError, scale } = errorHeatmap(a, b);
    expect(meanAbsError).toBe(10);
    expect(scale).toBe(20);
    expect(Array.from(picture.rgba.subarray(4, 8))).toEqual([...heatColor(1), 255]);
  });
});

describe('channelGrid', () => {
  it('tiles every channel with 1-pixel gaps in a near-square grid', () => {
    const [c, h, w] = [8, 2, 3];
    const latent = Float32Array.from({ length: c * h * w }, (_, k) => k % (h * w));
    const grid = channelGrid(latent, c, h, w);
    // ⌈√(8·2/3)⌉ = 3 columns, 3 rows.
    expect([grid.width, grid.height]).toEqual([3 * 4 - 1, 3 * 3 - 1]);
    // Channel 0's first pixel is its minimum (black), its last its maximum (white).
    expect(grid.rgba[0]).toBe(0);
    expect(grid.rgba[4 * (1 * grid.width + 2)]).toBe(255);
  });
});

describe('helpers', () => {
  it('percentile and stats', () => {
    expect(percentile([5, 1, 3, 2, 4], 0)).toBe(1);
    expect(percentile([5, 1, 3, 2, 4], 0.5)).toBe(3);
    expect(percentile([5, 1, 3, 2, 4], 1)).toBe(5);
    expect(stats(Float32Array.of(1, 3))).toEqual({ min: 1, max: 3, mean: 2, std: 1 });
  });
});
