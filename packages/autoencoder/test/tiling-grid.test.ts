import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { DC_AE_PRESETS } from '../src/index.js';
import type { DcAeConfig, RunPlan } from '../src/index.js';
import { axisTiles, runTiled } from '../src/base/tiling.js';
import { planRun } from '../src/dc-ae/plan.js';

/**
 * The tile grid and the blending of `runTiled`, with plain functions as "models": a local operator
 * must come out of tiling unchanged, and a non-local one must be blended exactly like diffusers'
 * `tiled_decode` (reimplemented here from its Python, independently of the code under test).
 */

const SANA: DcAeConfig = DC_AE_PRESETS['dc-ae-f32c32-sana-1.0'];

function thrown(f: () => unknown): DcaeError {
  try {
    f();
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a DcaeError');
}

describe('axisTiles', () => {
  it('covers the axis exactly with full-size tiles, the last one moved back to the border', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 80 }),
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 24 }),
        fc.constantFrom(1, 4, 0.25),
        (length, tile, strideSeed, scale) => {
          const stride = 1 + (strideSeed % tile);
          const tiles = axisTiles(length, tile, stride, scale);
          let covered = 0;
          for (const [k, t] of tiles.entries()) {
            expect(t.size).toBe(Math.min(tile, length));
            expect(t.start).toBeGreaterThanOrEqual(0);
            expect(t.start + t.size).toBeLessThanOrEqual(length);
            if (k > 0) expect(t.start).toBeGreaterThan(tiles[k - 1]!.start);
            if (k < tiles.length - 1) expect(t.start).toBe(k * stride);
            // Kept ranges are contiguous and inside the tile.
            expect(t.start * scale + t.keepFrom).toBeCloseTo(covered, 9);
            expect(t.keepFrom).toBeGreaterThanOrEqual(0);
            expect(t.keepTo).toBeLessThanOrEqual(t.size * scale);
            expect(t.keepTo).toBeGreaterThan(t.keepFrom);
            // The blend zone after the previous tile's stride lies inside this tile.
            if (k > 0) expect(t.keepFrom + (tile - stride) * scale).toBeLessThanOrEqual(tile * scale);
            covered = t.start * scale + t.keepTo;
          }
          expect(covered).toBeCloseTo(length * scale, 9);
          expect(tiles.at(-1)!.start + tiles.at(-1)!.size).toBe(length);
        },
      ),
    );
  });
});

describe('planRun', () => {
  it('uses diffusers geometry (512 px tiles, stride 448) and a stride that is a multiple of f for f128', () => {
    const plan = planRun(SANA, 'decode', [1, 32, 64, 64], { tiling: 'always' });
    expect(plan.tiles).toEqual({
      tileSize: 512,
      stride: 448,
      overlap: 64,
      rows: 5,
      columns: 5,
      style: 'aligned',
    });
    const f128 = planRun(DC_AE_PRESETS['dc-ae-f128c512-in-1.0'], 'decode', [1, 512, 16, 16], {
      tiling: 'always',
    });
    expect(f128.tiles).toMatchObject({ tileSize: 512, stride: 384, overlap: 128 });
    expect(f128.height).toBe(2048);
  });

  it("'auto' runs whole images within the memory budget and tiles beyond it", () => {
    const small = planRun(SANA, 'decode', [2, 32, 8, 8]);
    expect(small.tiles).toBeUndefined();
    expect([small.batchSize, small.runs]).toEqual([2, 1]);
    const budget = small.estimatedBytes / 2;
    const sliced = planRun(SANA, 'decode', [2, 32, 8, 8], { memoryBudgetBytes: budget });
    expect(sliced.tiles).toBeUndefined();
    expect([sliced.batchSize, sliced.runs]).toEqual([1, 2]);
    const tiled = planRun(SANA, 'decode', [2, 32, 8, 8], { memoryBudgetBytes: budget / 2 });
    expect(tiled.tiles).toBeUndefined(); // 256 px fits one default 512 px tile
    const big = planRun(SANA, 'decode', [1, 32, 64, 48], { memoryBudgetBytes: 2 ** 30 });
    expect(big.tiles).toMatchObject({ rows: 5, columns: 4 });
    expect(big.estimatedBytes).toBeLessThanOrEqual(2 ** 30);
  });

  it('grows the estimate with the pixel count and the batch', () => {
    const at = (side: number, batch: number) =>
      planRun(SANA, 'decode', [batch, 32, side / 32, side / 32], { tiling: 'never', batchSize: batch })
        .estimatedBytes;
    expect(at(1024, 1) / at(512, 1)).toBeCloseTo(4, 1);
    expect(at(512, 3) / at(512, 1)).toBeCloseTo(3, 5);
  });

  it('refuses bad tile geometry, budgets and batch sizes with INVALID_ARGUMENT', () => {
    const shape = [1, 32, 32, 32];
    const bad = (options: Parameters<typeof planRun>[3]): DcaeError =>
      thrown(() => planRun(SANA, 'decode', shape, options));
    expect(bad({ tiling: { tileSize: 500, overlap: 64 } }).message).toMatch(
      /multiple of the model's compression ratio 32.*Nearest valid: 512/,
    );
    expect(bad({ tiling: { tileSize: 512, overlap: 512 } }).message).toMatch(
      /0 to tiling.tileSize − 1 \(511\)/,
    );
    expect(bad({ tiling: { tileSize: 64, overlap: 40 } }).message).toMatch(/stride of 24 px.*at most 32/);
    expect(bad({ tiling: { tileSize: 64, overlap: -1 } }).code).toBe('INVALID_ARGUMENT');
    expect(bad({ tiling: 'sometimes' as 'auto' }).message).toMatch(/'auto', 'never', 'always'/);
    expect(bad({ memoryBudgetBytes: 0 }).code).toBe('INVALID_ARGUMENT');
    expect(bad({ memoryBudgetBytes: Number.NaN }).code).toBe('INVALID_ARGUMENT');
    expect(bad({ batchSize: 0 }).message).toMatch(/batchSize/);
    expect(bad({ batchSize: 1.5 }).code).toBe('INVALID_ARGUMENT');
  });

  it('rounds the stride down to a multiple of f, so the overlap is never smaller than asked', () => {
    const plan = planRun(SANA, 'decode', [1, 32, 8, 8], { tiling: { tileSize: 128, overlap: 40 } });
    expect(plan.tiles).toMatchObject({ tileSize: 128, stride: 64, overlap: 64 });
  });
});

/** NCHW tensor with values from `value(b, c, y, x)`. */
function tensor(shape: readonly number[], value: (b: number, c: number, y: number, x: number) => number) {
  const [n, ch, h, w] = shape as [number, number, number, number];
  const data = new Float32Array(n * ch * h * w);
  let i = 0;
  for (let b = 0; b < n; b++)
    for (let c = 0; c < ch; c++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) data[i++] = value(b, c, y, x);
  return { dtype: 'float32' as const, shape, data };
}

const at = (t: HostTensor<'float32'>, b: number, c: number, y: number, x: number): number => {
  const [, ch, h, w] = t.shape as [number, number, number, number];
  return t.data[((b * ch + c) * h + y) * w + x]!;
};

function tiledPlan(height: number, width: number, tileSize: number, stride: number, images = 1): RunPlan {
  const rows = axisTiles(height, tileSize, stride, 1).length;
  const columns = axisTiles(width, tileSize, stride, 1).length;
  return {
    operation: 'decode',
    height,
    width,
    tiles: { tileSize, stride, overlap: tileSize - stride, rows, columns, style: 'aligned' },
    batchSize: images,
    runs: rows * columns,
    estimatedBytes: 0,
  };
}

const noHooks = { beforeRun: () => undefined, afterRun: () => undefined };

describe('runTiled', () => {
  it('leaves a local operator unchanged: nearest ×4 upsampling (decode) and 4×4 mean pooling (encode)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 0, max: 3 }),
        async (h, w, tileCells, overlapCells) => {
          const f = 4;
          const tile = tileCells * f;
          const stride = Math.max(f, tile - overlapCells * f);
          const latent = tensor([2, 2, h, w], (b, c, y, x) => Math.sin(b + 3 * c + 1.7 * y + 0.3 * x * x));
          const upsample = async (z: HostTensor<'float32'>) =>
            tensor([z.shape[0]!, 2, z.shape[2]! * f, z.shape[3]! * f], (b, c, y, x) =>
              at(z, b, c, Math.floor(y / f), Math.floor(x / f)),
            );
          const whole = await upsample(latent);
          const decoded = await runTiled(latent, {
            plan: tiledPlan(h * f, w * f, tile, stride, 2),
            scale: f,
            run: upsample,
            ...noHooks,
          });
          expect(decoded.shape).toEqual(whole.shape);
          decoded.data.forEach((v, i) => expect(v).toBeCloseTo(whole.data[i]!, 6));

          const pool = async (x: HostTensor<'float32'>) =>
            tensor([x.shape[0]!, 2, x.shape[2]! / f, x.shape[3]! / f], (b, c, y, xx) => {
              let sum = 0;
              for (let i = 0; i < f; i++)
                for (let j = 0; j < f; j++) sum += at(x, b, c, y * f + i, xx * f + j);
              return sum / f / f;
            });
          const encoded = await runTiled(whole, {
            plan: { ...tiledPlan(h * f, w * f, tile, stride, 2), operation: 'encode' },
            scale: 1 / f,
            run: pool,
            ...noHooks,
          });
          expect(encoded.shape).toEqual(latent.shape);
          encoded.data.forEach((v, i) => expect(v).toBeCloseTo(latent.data[i]!, 5));
        },
      ),
      { numRuns: 40 },
    );
  });

  it('ramps linearly from the left tile to the right one over the overlap, as diffusers blend_h', async () => {
    // One row of two tiles (each filled with its index) over a 12-cell latent at f = 1.
    let calls = 0;
    const out = await runTiled(
      tensor([1, 1, 8, 12], () => 0),
      {
        plan: tiledPlan(8, 12, 8, 4),
        scale: 1,
        run: async (x) => {
          const k = calls++;
          return tensor(x.shape, () => k);
        },
        ...noHooks,
      },
    );
    expect(calls).toBe(2);
    // Tile 1 starts at 4 (= stride); the blend covers x = 4 … 7 with weights 0, ¼, ½, ¾ on tile 1.
    expect(Array.from({ length: 12 }, (_, x) => at(out, 0, 0, 3, x))).toEqual([
      0, 0, 0, 0, 0, 0.25, 0.5, 0.75, 1, 1, 1, 1,
    ]);
  });

  it('blends in place in diffusers order (above, then left, with already-blended neighbours)', async () => {
    const tile = 6;
    const stride = 4;
    const [height, width] = [tile + 2 * stride, tile + stride]; // 3 × 2 tiles, none moved
    const tiles: HostTensor<'float32'>[] = [];
    const out = await runTiled(
      tensor([1, 2, height, width], () => 0),
      {
        plan: tiledPlan(height, width, tile, stride),
        scale: 1,
        run: async (x) => {
          const k = tiles.length;
          const t = tensor(x.shape, (_b, c, y, xx) => Math.cos(7 * k + 3 * c + y * 1.3 + xx * 0.7));
          tiles.push({ ...t, data: t.data.slice() });
          return t;
        },
        ...noHooks,
      },
    );
    expect(out.shape).toEqual([1, 2, height, width]);
    const expected = diffusersTiledReference(tiles, 3, 2, tile, stride);
    for (let c = 0; c < 2; c++)
      for (let y = 0; y < height; y++)
        for (let x = 0; x < width; x++) expect(at(out, 0, c, y, x)).toBeCloseTo(expected[c]![y]![x]!, 6);
  });

  it('slices batches: every image once, in order, batchSize at a time', async () => {
    const seen: number[] = [];
    const input = tensor([5, 1, 2, 2], (b) => b);
    const out = await runTiled(input, {
      plan: { ...tiledPlan(2, 2, 2, 2), tiles: undefined, batchSize: 2, runs: 3 },
      scale: 1,
      run: async (x) => {
        seen.push(x.shape[0]!);
        return tensor(x.shape, (b, c, y, xx) => at(x, b, c, y, xx) * 10);
      },
      ...noHooks,
    });
    expect(seen).toEqual([2, 2, 1]);
    expect(Array.from(out.data)).toEqual(Array.from(input.data, (v) => v * 10));
  });
});

/**
 * diffusers `AutoencoderDC.tiled_decode` on already decoded tiles (row-major, all of full size),
 * transcribed loop by loop: blend_v with the tile above, blend_h with the tile to the left, both
 * in place, then crop to the stride (the last row and column kept whole, as in dcae's grid).
 */
function diffusersTiledReference(
  tiles: readonly HostTensor<'float32'>[],
  rowCount: number,
  columnCount: number,
  tile: number,
  stride: number,
): number[][][] {
  const channels = tiles[0]!.shape[1]!;
  // rows[i][j][c][y][x], as nested arrays.
  const rows = Array.from({ length: rowCount }, (_, i) =>
    Array.from({ length: columnCount }, (_, j) =>
      Array.from({ length: channels }, (_, c) =>
        Array.from({ length: tile }, (_, y) =>
          Array.from({ length: tile }, (_, x) => at(tiles[i * columnCount + j]!, 0, c, y, x)),
        ),
      ),
    ),
  );
  const extent = tile - stride;
  const blendV = (a: number[][][], b: number[][][]) => {
    for (let y = 0; y < extent; y++)
      for (let c = 0; c < channels; c++)
        for (let x = 0; x < tile; x++)
          b[c]![y]![x] = a[c]![tile - extent + y]![x]! * (1 - y / extent) + b[c]![y]![x]! * (y / extent);
  };
  const blendH = (a: number[][][], b: number[][][]) => {
    for (let x = 0; x < extent; x++)
      for (let c = 0; c < channels; c++)
        for (let y = 0; y < tile; y++)
          b[c]![y]![x] = a[c]![y]![tile - extent + x]! * (1 - x / extent) + b[c]![y]![x]! * (x / extent);
  };
  const height = stride * (rowCount - 1) + tile;
  const width = stride * (columnCount - 1) + tile;
  const out = Array.from({ length: channels }, () =>
    Array.from({ length: height }, () => new Array<number>(width).fill(Number.NaN)),
  );
  for (let i = 0; i < rowCount; i++)
    for (let j = 0; j < columnCount; j++) {
      const t = rows[i]![j]!;
      if (i > 0) blendV(rows[i - 1]![j]!, t);
      if (j > 0) blendH(rows[i]![j - 1]!, t);
      const keepRows = i === rowCount - 1 ? tile : stride;
      const keepColumns = j === columnCount - 1 ? tile : stride;
      for (let c = 0; c < channels; c++)
        for (let y = 0; y < keepRows; y++)
          for (let x = 0; x < keepColumns; x++) out[c]![i * stride + y]![j * stride + x] = t[c]![y]![x]!;
    }
  return out;
}
