import { createRng } from '@dcae/core';
import type { Region } from './resample.js';

/**
 * The data order and augmentation of a run as pure functions of (seed, sample position): sample
 * position p = step·batch + slot runs through one seeded permutation of the training set per
 * epoch, and every random choice for p comes from its own generator. Resuming at any step therefore
 * continues exactly the data an uninterrupted run would have seen; no RNG state needs saving.
 */

/** The uniform draws that decide one training crop (each in [0, 1)). */
export interface CropDraw {
  readonly scale: number;
  readonly x: number;
  readonly y: number;
  readonly flip: boolean;
}

export interface CropOptions {
  readonly size: number;
  readonly augment: boolean;
  readonly multiScale: boolean;
}

/** `seed` and a stream tag mixed into one 64-bit generator seed. */
function streamSeed(seed: number, tag: number, index: number): bigint {
  return (BigInt(seed) << 24n) ^ (BigInt(tag) << 56n) ^ BigInt(index);
}

/** The permutation of `n` items for `epoch` (Fisher–Yates on the seeded stream). */
export function epochPermutation(n: number, seed: number, epoch: number): Uint32Array {
  const rng = createRng(streamSeed(seed, 1, epoch));
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rng.uniform() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return order;
}

/** The crop draws of sample position `p`. */
export function cropDraw(seed: number, p: number): CropDraw {
  const rng = createRng(streamSeed(seed, 2, p));
  return { scale: rng.uniform(), x: rng.uniform(), y: rng.uniform(), flip: rng.uniform() < 0.5 };
}

/**
 * The source region of a crop of an image `width`×`height`:
 * - augment off: the centre square of side `size` (the whole centre square, downscaled, when
 *   the image is smaller than that), no flip;
 * - augment on: a random position and a left–right flip half of the time; with `multiScale`, the
 *   region's side is `size · short / T` for a log-uniform target short side T in [size, short], so
 *   the crop sees anything from the whole image (downscaled) to native pixels.
 */
export function cropRegion(width: number, height: number, draw: CropDraw, options: CropOptions): Region {
  const { size } = options;
  const short = Math.min(width, height);
  let side = Math.min(size, short);
  if (options.augment && options.multiScale && short > size) {
    const target = Math.exp(Math.log(size) + draw.scale * (Math.log(short) - Math.log(size)));
    side = Math.min(short, (size * short) / target);
  }
  if (!options.augment) {
    return { x: (width - side) / 2, y: (height - side) / 2, side, size, flip: false };
  }
  const x = Math.min(width - side, Math.floor(draw.x * (width - side + 1)));
  const y = Math.min(height - side, Math.floor(draw.y * (height - side + 1)));
  return { x, y, side, size, flip: draw.flip };
}

/** The evaluation crop: the image's centre square, resized to `size`. */
export function evalRegion(width: number, height: number, size: number): Region {
  const side = Math.min(width, height);
  return { x: (width - side) / 2, y: (height - side) / 2, side, size, flip: false };
}

/** The held-out split of `count` items: `heldOut` indices chosen by the seed, and the rest, both sorted. */
export function heldOutSplit(
  count: number,
  heldOut: number,
  seed: number,
): { train: number[]; heldOut: number[] } {
  const order = epochPermutation(count, seed, 0x7fffffff);
  const held = new Set(Array.from(order.subarray(0, Math.min(heldOut, count))));
  const train: number[] = [];
  const out: number[] = [];
  for (let i = 0; i < count; i++) (held.has(i) ? out : train).push(i);
  return { train, heldOut: out };
}

/** Which training item sample position `p` uses; `epochCache` keeps the current permutation. */
export class SampleOrder {
  readonly #n: number;
  readonly #seed: number;
  #epoch = -1;
  #perm: Uint32Array = new Uint32Array(0);

  constructor(n: number, seed: number) {
    this.#n = n;
    this.#seed = seed;
  }

  /** The item index at position p, or, with `skip` k > 0, the k-th item after it in the same epoch (wrapping). */
  item(p: number, skip = 0): number {
    const epoch = Math.floor(p / this.#n);
    if (epoch !== this.#epoch) {
      this.#perm = epochPermutation(this.#n, this.#seed, epoch);
      this.#epoch = epoch;
    }
    return this.#perm[(p + skip) % this.#n]!;
  }
}
