import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Autoencoder } from '../src/index.js';
import { checkTileGeometry, planRun } from '../src/index.js';
import { loadAutoencoder } from '../src/node/index.js';
import { fixturePath, maxAbs } from './helpers.js';

/**
 * `tiling: { style: 'diffusers' }` against an independent float64 reference of diffusers
 * `AutoencoderDC.tiled_encode` / `tiled_decode` (docs/tiling.md): the reference cuts the tiles
 * itself, runs each one whole through the same model, and blends them in float64 as a list of
 * tiles with in-place blends, exactly as the Python code does, then concatenates and crops.
 * Geometry: 112 px tiles with 48 px overlap (stride 64) on the tiny f32 model, so that encoder
 * edge tiles are padded (112 → 128), latent blends are 1 cell wide (⌊112/32⌋ − 64/32), and the
 * last row and column are cut short.
 */

const runtime = createNodeRuntime({ threads: 1 });
const GEOMETRY = { tileSize: 112, overlap: 48, style: 'diffusers' } as const;
const [HEIGHT, WIDTH] = [160, 224];
const F = 32;

let ae: Autoencoder;
beforeAll(async () => {
  ae = await loadAutoencoder(fixturePath('tiny-sana-f32'), { runtime });
});
afterAll(async () => {
  await ae?.dispose();
  await runtime.dispose();
});

function image(batch: number, height: number, width: number): HostTensor<'float32'> {
  const data = new Float32Array(batch * 3 * height * width);
  let i = 0;
  for (let b = 0; b < batch; b++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++)
          data[i++] = 0.9 * Math.sin(0.07 * (c + 1) * y + 0.05 * x + b) * Math.cos(0.031 * x * (2 - c));
  return { dtype: 'float32', shape: [batch, 3, height, width], data };
}

/** float64 NCHW array with its shape. */
interface T64 {
  shape: [number, number, number, number];
  data: Float64Array;
}
const to64 = (t: HostTensor<'float32'>): T64 => ({
  shape: [...t.shape] as T64['shape'],
  data: Float64Array.from(t.data),
});
const at = (t: T64, n: number, c: number, y: number, x: number): number =>
  ((n * t.shape[1] + c) * t.shape[2] + y) * t.shape[3] + x;

/** x[:, :, y0:y1, x0:x1] (clipped like a Python slice). */
function slice(
  t: HostTensor<'float32'>,
  y0: number,
  y1: number,
  x0: number,
  x1: number,
): HostTensor<'float32'> {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  const [ye, xe] = [Math.min(y1, h), Math.min(x1, w)];
  const out = new Float32Array(n * c * (ye - y0) * (xe - x0));
  let i = 0;
  for (let b = 0; b < n; b++)
    for (let k = 0; k < c; k++)
      for (let y = y0; y < ye; y++)
        for (let x = x0; x < xe; x++) out[i++] = t.data[((b * c + k) * h + y) * w + x]!;
  return { dtype: 'float32', shape: [n, c, ye - y0, xe - x0], data: out };
}

/** F.pad(tile, (0, padW, 0, padH)): zeros at the bottom and right. */
function padZeros(t: HostTensor<'float32'>, padH: number, padW: number): HostTensor<'float32'> {
  const [n, c, h, w] = t.shape as [number, number, number, number];
  const out = new Float32Array(n * c * (h + padH) * (w + padW));
  for (let p = 0; p < n * c; p++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) out[(p * (h + padH) + y) * (w + padW) + x] = t.data[(p * h + y) * w + x]!;
  return { dtype: 'float32', shape: [n, c, h + padH, w + padW], data: out };
}

/** blend_v: b's first rows take a's last rows, in place. */
function blendV(a: T64, b: T64, extent: number): void {
  const e = Math.min(a.shape[2], b.shape[2], extent);
  for (let y = 0; y < e; y++)
    for (let n = 0; n < b.shape[0]; n++)
      for (let c = 0; c < b.shape[1]; c++)
        for (let x = 0; x < b.shape[3]; x++)
          b.data[at(b, n, c, y, x)] =
            a.data[at(a, n, c, a.shape[2] - e + y, x)]! * (1 - y / e) + b.data[at(b, n, c, y, x)]! * (y / e);
}

/** blend_h: b's first columns take a's last columns, in place. */
function blendH(a: T64, b: T64, extent: number): void {
  const e = Math.min(a.shape[3], b.shape[3], extent);
  for (let x = 0; x < e; x++)
    for (let n = 0; n < b.shape[0]; n++)
      for (let c = 0; c < b.shape[1]; c++)
        for (let y = 0; y < b.shape[2]; y++)
          b.data[at(b, n, c, y, x)] =
            a.data[at(a, n, c, y, a.shape[3] - e + x)]! * (1 - x / e) + b.data[at(b, n, c, y, x)]! * (x / e);
}

/** Blends the grid in row-major order, keeps [:keep, :keep] of each tile, concatenates, crops to outH × outW. */
function assemble(rows: T64[][], blend: number, keep: number, outH: number, outW: number): T64 {
  const [n, c] = rows[0]![0]!.shape;
  const pieces: T64[][] = rows.map((row, i) =>
    row.map((tile, j) => {
      if (i > 0) blendV(rows[i - 1]![j]!, tile, blend);
      if (j > 0) blendH(row[j - 1]!, tile, blend);
      return tile;
    }),
  );
  const out: T64 = { shape: [n, c, outH, outW], data: new Float64Array(n * c * outH * outW).fill(NaN) };
  let top = 0;
  for (const row of pieces) {
    let left = 0;
    let rowHeight = 0;
    for (const tile of row) {
      const kh = Math.min(keep, tile.shape[2]);
      const kw = Math.min(keep, tile.shape[3]);
      for (let b = 0; b < n; b++)
        for (let k = 0; k < c; k++)
          for (let y = 0; y < kh; y++)
            for (let x = 0; x < kw; x++)
              if (top + y < outH && left + x < outW)
                out.data[at(out, b, k, top + y, left + x)] = tile.data[at(tile, b, k, y, x)]!;
      left += kw;
      rowHeight = kh;
    }
    top += rowHeight;
  }
  return out;
}

/** diffusers tiled_encode with `run` as the encoder. */
async function referenceEncode(x: HostTensor<'float32'>, tileSize: number, overlap: number): Promise<T64> {
  const stride = tileSize - overlap;
  const [, , h, w] = x.shape as [number, number, number, number];
  const rows: T64[][] = [];
  for (let i = 0; i < h; i += stride) {
    const row: T64[] = [];
    for (let j = 0; j < w; j += stride) {
      let tile = slice(x, i, i + tileSize, j, j + tileSize);
      const [th, tw] = [tile.shape[2]!, tile.shape[3]!];
      if (th % F !== 0 || tw % F !== 0) tile = padZeros(tile, (F - (th % F)) % F, (F - (tw % F)) % F);
      row.push(to64(await ae.encode(tile, { tiling: 'never' })));
    }
    rows.push(row);
  }
  const blend = Math.floor(tileSize / F) - Math.floor(stride / F);
  return assemble(rows, blend, Math.floor(stride / F), Math.floor(h / F), Math.floor(w / F));
}

/** diffusers tiled_decode with `run` as the decoder. */
async function referenceDecode(z: HostTensor<'float32'>, tileSize: number, overlap: number): Promise<T64> {
  const stride = tileSize - overlap;
  const [tileLatent, strideLatent] = [Math.floor(tileSize / F), Math.floor(stride / F)];
  const [, , h, w] = z.shape as [number, number, number, number];
  const rows: T64[][] = [];
  for (let i = 0; i < h; i += strideLatent) {
    const row: T64[] = [];
    for (let j = 0; j < w; j += strideLatent)
      row.push(to64(await ae.decode(slice(z, i, i + tileLatent, j, j + tileLatent), { tiling: 'never' })));
    rows.push(row);
  }
  return assemble(rows, tileSize - stride, stride, h * F, w * F);
}

function maxDiff(actual: HostTensor<'float32'>, expected: T64): number {
  expect(actual.shape).toEqual(expected.shape);
  let max = 0;
  for (let i = 0; i < expected.data.length; i++)
    max = Math.max(max, Math.abs(actual.data[i]! - expected.data[i]!));
  return max;
}

const tolerance = (expected: T64): number =>
  1e-4 *
  Math.max(
    1,
    expected.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
  );

describe("tiling style 'diffusers' (tiny-sana-f32, 224×160, 112 px tiles, overlap 48)", () => {
  it('plans diffusers grid: tiles every stride from 0, the last ones short', () => {
    const plan = ae.planRun('encode', [1, 3, HEIGHT, WIDTH], { tiling: GEOMETRY });
    expect(plan.tiles).toEqual({
      tileSize: 112,
      stride: 64,
      overlap: 48,
      rows: 3,
      columns: 4,
      style: 'diffusers',
    });
    expect(ae.planRun('decode', [1, 8, HEIGHT / F, WIDTH / F], { tiling: GEOMETRY }).tiles).toMatchObject({
      rows: 3,
      columns: 4,
    });
    // diffusers tiles both axes once either side exceeds a tile: 96 px of height still gives 2 rows.
    expect(ae.planRun('encode', [1, 3, 96, 224], { tiling: GEOMETRY }).tiles).toMatchObject({
      rows: 2,
      columns: 4,
    });
  });

  it('encode equals the float64 reference of tiled_encode (padding, 1-cell blends, short edge tiles), batch of 2', async () => {
    const x = image(2, HEIGHT, WIDTH);
    const actual = await ae.encode(x, { tiling: GEOMETRY, batchSize: 1 });
    const expected = await referenceEncode(x, 112, 48);
    expect(maxDiff(actual, expected)).toBeLessThanOrEqual(tolerance(expected));
    // Not the aligned style, nor the whole frame.
    const aligned = await ae.encode(x, { tiling: { tileSize: 128, overlap: 64 }, batchSize: 1 });
    expect(maxDiff(aligned, expected)).toBeGreaterThan(10 * tolerance(expected));
  });

  it('decode equals the float64 reference of tiled_decode', async () => {
    const z = await ae.encode(image(1, HEIGHT, WIDTH), { tiling: 'never' });
    const actual = await ae.decode(z, { tiling: GEOMETRY });
    const expected = await referenceDecode(z, 112, 48);
    expect(maxDiff(actual, expected)).toBeLessThanOrEqual(tolerance(expected));
    expect(maxAbs(actual)).toBeGreaterThan(0);
  });
});

describe('tile geometry checks and defaults', () => {
  const config = () => {
    if (ae.architecture !== 'dc-ae') throw new Error('DC-AE fixture expected');
    return ae.config;
  };

  it('clamps the default overlap to the tile: a tile size alone always works', () => {
    expect(checkTileGeometry({ tileSize: 64 }, 32)).toEqual({ tileSize: 64, overlap: 32, style: 'aligned' });
    expect(checkTileGeometry({ tileSize: 32 }, 32)).toEqual({ tileSize: 32, overlap: 0, style: 'aligned' });
    expect(checkTileGeometry({}, 32)).toEqual({ tileSize: 512, overlap: 64, style: 'aligned' });
    expect(planRun(config(), 'encode', [1, 3, 160, 224], { tiling: { tileSize: 64 } }).tiles).toMatchObject({
      tileSize: 64,
      stride: 32,
    });
  });

  it('library errors name options; their CLI wording names flags', () => {
    let error: unknown;
    try {
      checkTileGeometry({ tileSize: 64, overlap: 64 }, 32);
    } catch (e) {
      error = e;
    }
    expect(DcaeError.is(error, 'INVALID_ARGUMENT')).toBe(true);
    const e = error as DcaeError;
    expect(e.message).toMatch(/^tiling\.overlap must be .* tiling\.tileSize − 1 \(63\); got 64\./);
    expect(e.cliMessage).toMatch(/^--tile-overlap must be .* --tile-size − 1 \(63\); got 64\./);
    expect(e.cliMessage).not.toMatch(/tiling\./);
  });

  it("refuses a diffusers stride that is not a multiple of f (diffusers' own output would have the wrong size)", () => {
    expect(() => checkTileGeometry({ tileSize: 512, overlap: 64, style: 'diffusers' }, 128)).toThrow(
      /stride, 448 px\) must be a multiple of the compression ratio 128.*overlap of 128/,
    );
    expect(checkTileGeometry({ tileSize: 500, overlap: 52, style: 'diffusers' }, 32)).toEqual({
      tileSize: 500,
      overlap: 52,
      style: 'diffusers',
    });
  });
});
