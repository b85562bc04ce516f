import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';

/**
 * Tiled and batch-sliced execution (docs/model-spec.md §7.3, docs/tiling.md). An image is cut into
 * square tiles of `tileSize` pixels every `stride` pixels; each tile goes through the model on its
 * own and the results are blended with linear ramps over the overlap, in output space: pixels for
 * decode, latent cells for encode. Both styles blend like diffusers `AutoencoderDC`: tiles in
 * row-major order, each blended in place first with the tile above, then with the tile to its
 * left (both already blended themselves), b[y] ← a[−E + y]·(1 − y/E) + b[y]·(y/E) for y < E,
 * then cropped to the stride.
 *
 * - `'aligned'` (default): the stride is always a multiple of f (diffusers' 448 px is not one for
 *   f128), and the last tile of a row or column is moved back to end at the border instead of
 *   being cut short, so every tile has the full size, no padding is ever needed and blends always
 *   line up.
 * - `'diffusers'`: `enable_tiling()` exactly: tiles start every `tileSize − overlap` pixels from 0
 *   and the last ones are cut short at the border; an encoder tile whose side is not a multiple of
 *   f is zero-padded at the bottom and right; blends run over ⌊tileSize/f⌋ − ⌊stride/f⌋ latent
 *   cells (encode) or tileSize − stride pixels (decode), clipped to the shorter tile.
 */

/** How tiles are laid out (see the module comment). */
export type TileStyle = 'aligned' | 'diffusers';
export const TILE_STYLES: readonly TileStyle[] = ['aligned', 'diffusers'];

/** Tile side and overlap in pixels, and the layout style. */
export interface TileGeometry {
  /** @defaultValue 512 (4·f for f128 and above) */
  readonly tileSize?: number;
  /** @defaultValue 64, clamped to `tileSize − f` so that any valid `tileSize` alone works */
  readonly overlap?: number;
  /** @defaultValue 'aligned' */
  readonly style?: TileStyle;
}

/** A geometry with every field decided (what a plan uses). */
export interface ResolvedTileGeometry {
  readonly tileSize: number;
  readonly overlap: number;
  readonly style: TileStyle;
}

/**
 * `'auto'`: the whole image in one run when the activation estimate fits `memoryBudgetBytes`, else
 * tiles of the default geometry; `'never'` / `'always'`: force either; a geometry: tiles of that size.
 */
export type TilingOption = 'auto' | 'never' | 'always' | TileGeometry;

/** Activation memory one run may use before `'auto'` tiles (and slices batches): 4 GiB. */
export const DEFAULT_MEMORY_BUDGET_BYTES = 4 * 2 ** 30;

/** diffusers' defaults: 512 px tiles, 64 px overlap (stride 448; for f128 the stride rounds down to 384). */
export function defaultTileGeometry(f: number): { tileSize: number; overlap: number } {
  return { tileSize: Math.max(512, 4 * f), overlap: 64 };
}

/** The overlap used when none is given: 64 px, or less when the tile is too small for it. */
export function defaultOverlap(tileSize: number, f: number): number {
  return Math.max(0, Math.min(64, tileSize - f));
}

/** How one encode or decode call runs. */
export interface RunPlan {
  readonly operation: 'encode' | 'decode';
  /** Image size in pixels. */
  readonly height: number;
  readonly width: number;
  /** Tile grid, or undefined when every image runs whole. */
  readonly tiles:
    | {
        /** Pixels; `overlap` = `tileSize` − `stride`; for 'aligned', `stride` is a multiple of f. */
        readonly tileSize: number;
        readonly stride: number;
        readonly overlap: number;
        readonly rows: number;
        readonly columns: number;
        readonly style: TileStyle;
      }
    | undefined;
  /** Images per run (batch slicing). */
  readonly batchSize: number;
  /** Model runs in all: ⌈images / batchSize⌉ × rows × columns. */
  readonly runs: number;
  /** Estimated activation memory of one run, in bytes (`estimateActivationBytes`). */
  readonly estimatedBytes: number;
}

export interface PlanOptions {
  readonly tiling?: TilingOption;
  readonly memoryBudgetBytes?: number;
  /** Images per run, or `'auto'`: as many as fit `memoryBudgetBytes`. */
  readonly batchSize?: number | 'auto';
  /** Bytes per activation element: 4 for float32 graphs, 2 for float16. */
  readonly elementBytes?: number;
}

/** What planning needs of a model family: its compression ratio and activation estimate. */
export interface PlanModel {
  readonly spatialCompressionRatio: number;
  /** Estimated activation bytes of one run of `part` on one height × width image. */
  activationBytes(part: 'encoder' | 'decoder', height: number, width: number, elementBytes: number): number;
}

/**
 * Decides how to run `operation` on an NCHW input of `shape` (images for encode, latents for
 * decode): whole or in tiles, and how many images per run. Validates the options. Any family
 * whose graph is fully convolutional around its receptive field can tile this way.
 */
export function planTiledRun(
  model: PlanModel,
  operation: 'encode' | 'decode',
  shape: readonly number[],
  options: PlanOptions = {},
): RunPlan {
  const f = model.spatialCompressionRatio;
  const part = operation === 'encode' ? 'encoder' : 'decoder';
  const [images, , h, w] = shape as [number, number, number, number];
  const [height, width] = operation === 'encode' ? [h, w] : [h * f, w * f];
  const budget = checkBudget(options.memoryBudgetBytes);
  const elementBytes = options.elementBytes ?? 4;
  const estimate = (rows: number, columns: number): number =>
    model.activationBytes(part, rows, columns, elementBytes);

  const tiling = options.tiling ?? 'auto';
  let geometry: ResolvedTileGeometry | undefined;
  if (typeof tiling === 'object' && tiling !== null) geometry = checkTileGeometry(tiling, f);
  else if (tiling === 'always' || (tiling === 'auto' && estimate(height, width) > budget))
    geometry = { ...defaultTileGeometry(f), style: 'aligned' };
  else if (tiling !== 'never' && tiling !== 'auto') {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `tiling must be 'auto', 'never', 'always' or { tileSize, overlap }; got ${JSON.stringify(tiling)}.`,
    );
  }

  let tiles: RunPlan['tiles'];
  let runHeight = height;
  let runWidth = width;
  if (geometry !== undefined && geometry.style === 'diffusers') {
    // enable_tiling() tiles both axes as soon as either side exceeds a tile (in the input's units).
    const { tileSize } = geometry;
    const stride = tileSize - geometry.overlap;
    const over =
      operation === 'encode'
        ? height > tileSize || width > tileSize
        : h > Math.floor(tileSize / f) || w > Math.floor(tileSize / f);
    if (over) {
      const unit = operation === 'encode' ? stride : Math.floor(stride / f);
      const rows = Math.ceil((operation === 'encode' ? height : h) / unit);
      const columns = Math.ceil((operation === 'encode' ? width : w) / unit);
      tiles = { tileSize, stride, overlap: geometry.overlap, rows, columns, style: 'diffusers' };
      // Encoder tiles are padded up to a multiple of f.
      const run = operation === 'encode' ? Math.ceil(tileSize / f) * f : Math.floor(tileSize / f) * f;
      runHeight = Math.min(height, run);
      runWidth = Math.min(width, run);
    }
  } else if (geometry !== undefined) {
    const stride = strideOf(geometry, f);
    const rows = axisTiles(height, geometry.tileSize, stride, 1).length;
    const columns = axisTiles(width, geometry.tileSize, stride, 1).length;
    if (rows * columns > 1) {
      tiles = {
        tileSize: geometry.tileSize,
        stride,
        overlap: geometry.tileSize - stride,
        rows,
        columns,
        style: 'aligned',
      };
      runHeight = Math.min(height, geometry.tileSize);
      runWidth = Math.min(width, geometry.tileSize);
    }
  }

  const perImage = estimate(runHeight, runWidth);
  const batchSize = checkBatchSize(options.batchSize, images, Math.floor(budget / perImage));
  const runs = Math.ceil(images / batchSize) * (tiles ? tiles.rows * tiles.columns : 1);
  return { operation, height, width, tiles, batchSize, runs, estimatedBytes: perImage * batchSize };
}

function checkBudget(budget: number | undefined): number {
  if (budget === undefined) return DEFAULT_MEMORY_BUDGET_BYTES;
  if (typeof budget !== 'number' || !(budget > 0) || !Number.isFinite(budget)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `memoryBudgetBytes must be a positive number of bytes; got ${String(budget)}.`,
    );
  }
  return budget;
}

function checkBatchSize(option: number | 'auto' | undefined, images: number, fitting: number): number {
  if (option === undefined || option === 'auto') return Math.min(images, Math.max(1, fitting));
  if (!Number.isSafeInteger(option) || option < 1) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `batchSize must be 'auto' or a whole number of images ≥ 1; got ${String(option)}.`,
    );
  }
  return Math.min(images, option);
}

/** How the fields of a tile geometry are called where the error is reported. */
export interface TileOptionNames {
  readonly tileSize: string;
  readonly overlap: string;
  readonly style: string;
}

const LIBRARY_NAMES: TileOptionNames = {
  tileSize: 'tiling.tileSize',
  overlap: 'tiling.overlap',
  style: 'tiling.style',
};

/** The dcae CLI's flags for the same fields. */
export const CLI_TILE_FLAGS: TileOptionNames = {
  tileSize: '--tile-size',
  overlap: '--tile-overlap',
  style: '--tile-style',
};

/**
 * Checks a tile geometry for a model of compression ratio `f` and fills in the defaults. Errors
 * (INVALID_ARGUMENT) name the library options, and carry the CLI's wording (its flags) as
 * `cliMessage`.
 */
export function checkTileGeometry(geometry: TileGeometry, f: number): ResolvedTileGeometry {
  const fail = (say: (names: TileOptionNames) => string, detail: Record<string, unknown>): never => {
    throw new DcaeError('INVALID_ARGUMENT', say(LIBRARY_NAMES), {
      detail,
      cliMessage: say(CLI_TILE_FLAGS),
    });
  };
  const style = geometry.style ?? 'aligned';
  if (!TILE_STYLES.includes(style)) {
    fail((n) => `${n.style} must be 'aligned' or 'diffusers'; got ${JSON.stringify(style)}.`, { style });
  }
  const tileSize = geometry.tileSize ?? defaultTileGeometry(f).tileSize;
  // diffusers accepts any tile of at least f pixels (encoder tiles are padded); aligned tiles are multiples of f.
  const aligned = style === 'aligned';
  if (!Number.isSafeInteger(tileSize) || tileSize < f || (aligned && tileSize % f !== 0)) {
    const near = Number.isFinite(tileSize) ? Math.max(f, Math.round(tileSize / f) * f) : 512;
    fail(
      (n) =>
        (aligned
          ? `${n.tileSize} must be a positive multiple of the model's compression ratio ${f} px; `
          : `${n.tileSize} must be a whole number of pixels ≥ the model's compression ratio ${f}; `) +
        `got ${String(tileSize)}. Nearest valid: ${near}.`,
      { tileSize, multiple: f },
    );
  }
  const overlap = geometry.overlap ?? defaultOverlap(tileSize, f);
  if (!Number.isSafeInteger(overlap) || overlap < 0 || overlap >= tileSize) {
    fail(
      (n) =>
        `${n.overlap} must be a whole number of pixels from 0 to ${n.tileSize} − 1 (${tileSize - 1}); got ${String(overlap)}.`,
      { tileSize, overlap },
    );
  }
  const stride = tileSize - overlap;
  if (!aligned && stride % f !== 0) {
    // diffusers keeps ⌊stride/f⌋ latent cells per tile but moves stride pixels: the output would
    // have the wrong size, so this geometry is refused rather than reproduced.
    const below = Math.floor(stride / f) * f;
    fail(
      (n) =>
        `with ${n.style} 'diffusers', ${n.tileSize} − ${n.overlap} (the stride, ${stride} px) must be a multiple of the compression ratio ${f}, ` +
        `else diffusers itself returns a latent of the wrong size; use an overlap of ${tileSize - Math.max(f, below)}` +
        (below + f < tileSize ? ` or ${tileSize - below - f}` : '') +
        '.',
      { tileSize, overlap, multiple: f },
    );
  }
  if ((aligned ? strideOf({ tileSize, overlap }, f) : stride) < f) {
    fail(
      (n) =>
        `${n.overlap} ${overlap} leaves a stride of ${stride} px, under the compression ratio ${f}; ` +
        `the stride (${n.tileSize} − ${n.overlap}${aligned ? `, rounded down to a multiple of ${f}` : ''}) must be at least ${f}. ` +
        `Use an overlap of at most ${tileSize - f}.`,
      { tileSize, overlap, multiple: f },
    );
  }
  return { tileSize, overlap, style };
}

/** tileSize − overlap, rounded down to a multiple of f (so the effective overlap is never smaller than asked). */
function strideOf(geometry: { tileSize: number; overlap: number }, f: number): number {
  return Math.floor((geometry.tileSize - geometry.overlap) / f) * f;
}

/** One tile along an axis: its input range and the part of its output it contributes. */
export interface AxisTile {
  /** Input units (pixels for encode, latent cells for decode). */
  readonly start: number;
  readonly size: number;
  /** Output units, relative to the tile: rows (or columns) [keepFrom, keepTo) go to the result. */
  readonly keepFrom: number;
  readonly keepTo: number;
}

/**
 * Tiles along an axis of `length` input units: every `stride` from 0, the last one moved back to
 * end at `length`; a single tile of the whole length when it fits one. `scale` = output units per
 * input unit. Tile k keeps the output from where tile k − 1's stride ends up to where its own
 * stride ends (the last tile: to its end), so the kept ranges tile the output exactly.
 */
export function axisTiles(length: number, tile: number, stride: number, scale: number): AxisTile[] {
  if (length <= tile) return [{ start: 0, size: length, keepFrom: 0, keepTo: length * scale }];
  const count = Math.ceil((length - tile) / stride) + 1;
  const starts = Array.from({ length: count }, (_, k) => (k === count - 1 ? length - tile : k * stride));
  return starts.map((start, k) => ({
    start,
    size: tile,
    keepFrom: k === 0 ? 0 : (starts[k - 1]! + stride - start) * scale,
    keepTo: k === count - 1 ? tile * scale : stride * scale,
  }));
}

/** What `runTiled` needs besides the input. */
export interface TiledRun {
  readonly plan: RunPlan;
  /** Output units per input unit: f for decode, 1/f for encode. */
  readonly scale: number;
  /** Runs the model on one batch slice or tile. */
  run(input: HostTensor<'float32'>): Promise<HostTensor<'float32'>>;
  /** Called before each run (e.g. to throw when aborted). */
  beforeRun(): void;
  /** Called after each run with the number of runs finished. */
  afterRun(done: number): void;
}

/** Runs `input` [B, C, H, W] as `plan` says: batch slices, each whole or tile by tile, blended. */
export async function runTiled(input: HostTensor<'float32'>, job: TiledRun): Promise<HostTensor<'float32'>> {
  const { plan, scale } = job;
  const [images, , height, width] = input.shape as [number, number, number, number];
  let done = 0;
  const step = async (x: HostTensor<'float32'>): Promise<HostTensor<'float32'>> => {
    job.beforeRun();
    const y = await job.run(x);
    job.afterRun(++done);
    return y;
  };
  if (plan.tiles === undefined && plan.batchSize >= images) return step(input);

  let output: Float32Array | undefined;
  let outChannels = 0;
  const outHeight = height * scale;
  const outWidth = width * scale;
  const place: Place = (y, image0, top, left, rows, cols) => {
    const [n, c, th, tw] = y.shape as [number, number, number, number];
    if (output === undefined) {
      outChannels = c;
      output = new Float32Array(images * c * outHeight * outWidth);
    }
    for (let b = 0; b < n; b++)
      for (let k = 0; k < c; k++)
        for (let r = rows.from; r < rows.to; r++) {
          const src = ((b * c + k) * th + r) * tw;
          const dst = (((image0 + b) * c + k) * outHeight + top + r) * outWidth + left;
          output.set(y.data.subarray(src + cols.from, src + cols.to), dst + cols.from);
        }
  };

  for (let image0 = 0; image0 < images; image0 += plan.batchSize) {
    const count = Math.min(plan.batchSize, images - image0);
    if (plan.tiles === undefined) {
      const y = await step(crop(input, image0, count, { start: 0, size: height }, { start: 0, size: width }));
      place(y, image0, 0, 0, { from: 0, to: outHeight }, { from: 0, to: outWidth });
      continue;
    }
    if (plan.tiles.style === 'diffusers') {
      await runDiffusersTiles(input, image0, count, plan.tiles, scale, step, place);
      continue;
    }
    const { tileSize, stride } = plan.tiles;
    // Pixels → input units: latent cells for decode (scale f), pixels for encode.
    const unit = scale >= 1 ? scale : 1;
    const rows = axisTiles(height, tileSize / unit, stride / unit, scale);
    const cols = axisTiles(width, tileSize / unit, stride / unit, scale);
    const blend = ((tileSize - stride) / unit) * scale;
    let above: HostTensor<'float32'>[] = [];
    for (const [i, row] of rows.entries()) {
      const current: HostTensor<'float32'>[] = [];
      for (const [j, col] of cols.entries()) {
        const tile = await step(crop(input, image0, count, row, col));
        if (i > 0) blendRows(above[j]!, tile, row.keepFrom, blend);
        if (j > 0) blendColumns(current[j - 1]!, tile, col.keepFrom, blend);
        current.push(tile);
        place(
          tile,
          image0,
          row.start * scale,
          col.start * scale,
          { from: row.keepFrom, to: row.keepTo },
          { from: col.keepFrom, to: col.keepTo },
        );
      }
      above = current;
    }
  }
  return { dtype: 'float32', shape: [images, outChannels, outHeight, outWidth], data: output! };
}

interface Range {
  readonly from: number;
  readonly to: number;
}

type Place = (
  y: HostTensor<'float32'>,
  image0: number,
  top: number,
  left: number,
  rows: Range,
  cols: Range,
) => void;

/**
 * One batch slice in diffusers' layout: tiles every `stride` pixels (⌊stride/f⌋ latent cells for
 * decode) from 0, the last ones cut short; encoder tiles zero-padded to a multiple of f; each
 * blended in place with the tile above, then the one to its left; each kept up to the stride.
 */
async function runDiffusersTiles(
  input: HostTensor<'float32'>,
  image0: number,
  count: number,
  tiles: NonNullable<RunPlan['tiles']>,
  scale: number,
  step: (x: HostTensor<'float32'>) => Promise<HostTensor<'float32'>>,
  place: Place,
): Promise<void> {
  const [, , height, width] = input.shape as [number, number, number, number];
  const encode = scale < 1;
  const f = encode ? Math.round(1 / scale) : scale;
  const { tileSize, stride } = tiles;
  // Input units: pixels for encode, latent cells for decode.
  const tileIn = encode ? tileSize : Math.floor(tileSize / f);
  const strideIn = encode ? stride : stride / f;
  // Output units: latent cells for encode, pixels for decode.
  const blend = encode ? Math.floor(tileSize / f) - stride / f : tileSize - stride;
  const keep = encode ? stride / f : stride;
  const outHeight = height * scale;
  const outWidth = width * scale;
  let above: HostTensor<'float32'>[] = [];
  for (let i = 0, top = 0; top < height; i++, top += strideIn) {
    const current: HostTensor<'float32'>[] = [];
    const rows = { start: top, size: Math.min(tileIn, height - top) };
    for (let j = 0, left = 0; left < width; j++, left += strideIn) {
      const cols = { start: left, size: Math.min(tileIn, width - left) };
      let x = crop(input, image0, count, rows, cols);
      if (encode) x = padTo(x, Math.ceil(rows.size / f) * f, Math.ceil(cols.size / f) * f);
      const tile = await step(x);
      if (i > 0) {
        const a = above[j]!;
        blendRows(a, tile, 0, Math.min(a.shape[2]!, tile.shape[2]!, blend));
      }
      if (j > 0) {
        const a = current[j - 1]!;
        blendColumns(a, tile, 0, Math.min(a.shape[3]!, tile.shape[3]!, blend));
      }
      current.push(tile);
      const outTop = i * keep;
      const outLeft = j * keep;
      place(
        tile,
        image0,
        outTop,
        outLeft,
        { from: 0, to: Math.min(keep, tile.shape[2]!, outHeight - outTop) },
        { from: 0, to: Math.min(keep, tile.shape[3]!, outWidth - outLeft) },
      );
    }
    above = current;
  }
}

/** `x` zero-padded at the bottom and right to `height` × `width`. */
function padTo(x: HostTensor<'float32'>, height: number, width: number): HostTensor<'float32'> {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  if (h === height && w === width) return x;
  const data = new Float32Array(n * c * height * width);
  for (let p = 0; p < n * c; p++)
    for (let r = 0; r < h; r++)
      data.set(x.data.subarray((p * h + r) * w, (p * h + r + 1) * w), (p * height + r) * width);
  return { dtype: 'float32', shape: [n, c, height, width], data };
}

/** Images [image0, image0 + count) of `x`, rows and columns of the given ranges. */
function crop(
  x: HostTensor<'float32'>,
  image0: number,
  count: number,
  rows: { start: number; size: number },
  cols: { start: number; size: number },
): HostTensor<'float32'> {
  const [, c, h, w] = x.shape as [number, number, number, number];
  const data = new Float32Array(count * c * rows.size * cols.size);
  for (let b = 0; b < count; b++)
    for (let k = 0; k < c; k++)
      for (let r = 0; r < rows.size; r++) {
        const src = (((image0 + b) * c + k) * h + rows.start + r) * w + cols.start;
        data.set(x.data.subarray(src, src + cols.size), ((b * c + k) * rows.size + r) * cols.size);
      }
  return { dtype: 'float32', shape: [count, c, rows.size, cols.size], data };
}

/**
 * diffusers `blend_v`, in place: b's rows from `from` take a's last `extent` rows with weight
 * falling linearly from 1 (b[from + y] ← a[H − E + y]·(1 − y/E) + b[from + y]·(y/E)).
 */
function blendRows(a: HostTensor<'float32'>, b: HostTensor<'float32'>, from: number, extent: number): void {
  const [n, c, ah, w] = a.shape as [number, number, number, number];
  const bh = b.shape[2]!;
  for (let y = 0; y < extent; y++) {
    const t = y / extent;
    for (let p = 0; p < n * c; p++) {
      const ai = (p * ah + ah - extent + y) * w;
      const bi = (p * bh + from + y) * w;
      for (let x = 0; x < w; x++) b.data[bi + x] = a.data[ai + x]! * (1 - t) + b.data[bi + x]! * t;
    }
  }
}

/** diffusers `blend_h`, in place: the same ramp over columns, a = the tile to the left. */
function blendColumns(
  a: HostTensor<'float32'>,
  b: HostTensor<'float32'>,
  from: number,
  extent: number,
): void {
  const [n, c, h, aw] = a.shape as [number, number, number, number];
  const bw = b.shape[3]!;
  for (let p = 0; p < n * c * h; p++) {
    const ai = p * aw + aw - extent;
    const bi = p * bw + from;
    for (let x = 0; x < extent; x++) {
      const t = x / extent;
      b.data[bi + x] = a.data[ai + x]! * (1 - t) + b.data[bi + x]! * t;
    }
  }
}

/**
 * The plan of a family that runs whole images only (SD-VAE, TAESANA): tiling 'auto' or 'never',
 * batches sliced by `batchSize` ('auto': all images in one run; `memoryBudgetBytes` is not
 * consulted). `kind` names the model in errors ("an AutoencoderKL"); `compression` is the
 * family's spatial ratio; `imageBytes(height, width)` estimates one image's activations.
 */
export function planWholeImages(
  name: string,
  kind: string,
  operation: 'encode' | 'decode',
  shape: readonly number[],
  options: PlanOptions,
  compression: number,
  imageBytes: (height: number, width: number) => number,
): RunPlan {
  const tiling = options.tiling ?? 'auto';
  if (tiling !== 'auto' && tiling !== 'never') {
    throw new DcaeError(
      'UNSUPPORTED',
      `${name} is ${kind}, which runs whole images only; tiling ${JSON.stringify(tiling)} is not supported (use 'auto' or 'never').`,
    );
  }
  const option = options.batchSize ?? 'auto';
  if (option !== 'auto' && (!Number.isSafeInteger(option) || option < 1)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `batchSize must be 'auto' or a whole number of images ≥ 1; got ${String(option)}.`,
    );
  }
  const [images, , h, w] = shape as [number, number, number, number];
  const batchSize = option === 'auto' ? images : Math.min(images, option);
  const f = operation === 'encode' ? 1 : compression;
  return {
    operation,
    height: h * f,
    width: w * f,
    tiles: undefined,
    batchSize,
    runs: Math.ceil(images / batchSize),
    estimatedBytes: batchSize * imageBytes(h * f, w * f),
  };
}
