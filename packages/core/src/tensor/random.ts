import { DcaeError } from '../errors.js';
import type { HostTensor } from './host-tensor.js';
import { numel } from './shape.js';

/**
 * A seeded random number generator. The integer stream (xoshiro128**, seeded through SplitMix64)
 * and `uniform()` are bit-identical in every JS engine. `normal()` uses Box–Muller with `Math.log`
 * and `Math.cos`/`Math.sin`, which the language lets engines round differently in the last bit;
 * V8 (Node, Chrome) and SpiderMonkey both use fdlibm ports and agree.
 */
export interface Rng {
  /** The next 32-bit unsigned integer of the stream. */
  nextUint32(): number;
  /** Uniform in [0, 1), with 53 random bits (two integers of the stream). */
  uniform(): number;
  /** Standard normal. Each Box–Muller step yields two values; the second is kept for the next call. */
  normal(): number;
  /** Fills `values` with uniform values in [lo, hi) and returns it. @defaultValue lo 0, hi 1 */
  fillUniform<T extends Float32Array | Float64Array>(values: T, lo?: number, hi?: number): T;
  /** Fills `values` with normal values and returns it. @defaultValue mean 0, std 1 */
  fillNormal<T extends Float32Array | Float64Array>(values: T, mean?: number, std?: number): T;
  /** A float32 tensor of standard normal values, filled in row-major order. */
  randn(shape: readonly number[]): HostTensor<'float32'>;
}

const UINT64_MASK = (1n << 64n) - 1n;

/** `seed` may be any safe integer or bigint; both are taken modulo 2^64. */
export function createRng(seed: number | bigint): Rng {
  if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Random seed ${seed} is not an integer; pass a safe integer or a bigint.`,
    );
  }
  let [s0, s1, s2, s3] = seedState(BigInt(seed));
  let spareNormal: number | undefined;

  // xoshiro128** by Blackman and Vigna (prng.di.unimi.it), on int32 words.
  const nextUint32 = (): number => {
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11);
    return result;
  };

  const uniform = (): number => {
    const high = nextUint32() >>> 5; // 27 bits
    const low = nextUint32() >>> 6; // 26 bits
    return (high * 2 ** 26 + low) / 2 ** 53;
  };

  const normal = (): number => {
    if (spareNormal !== undefined) {
      const value = spareNormal;
      spareNormal = undefined;
      return value;
    }
    const radius = Math.sqrt(-2 * Math.log(1 - uniform())); // 1 - u lies in (0, 1], so log is finite
    const angle = 2 * Math.PI * uniform();
    spareNormal = radius * Math.sin(angle);
    return radius * Math.cos(angle);
  };

  return {
    nextUint32,
    uniform,
    normal,
    fillUniform(values, lo = 0, hi = 1) {
      for (let i = 0; i < values.length; i++) values[i] = lo + (hi - lo) * uniform();
      return values;
    },
    fillNormal(values, mean = 0, std = 1) {
      for (let i = 0; i < values.length; i++) values[i] = mean + std * normal();
      return values;
    },
    randn(shape) {
      const data = new Float32Array(numel(shape));
      for (let i = 0; i < data.length; i++) data[i] = normal();
      return { dtype: 'float32', shape: Object.freeze([...shape]), data };
    },
  };
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** Four int32 state words from two SplitMix64 outputs (low word first), as the xoshiro authors recommend. */
function seedState(seed: bigint): [number, number, number, number] {
  let state = BigInt.asUintN(64, seed);
  const splitMix64 = (): bigint => {
    state = (state + 0x9e3779b97f4a7c15n) & UINT64_MASK;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & UINT64_MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & UINT64_MASK;
    return z ^ (z >> 31n);
  };
  const first = splitMix64();
  const second = splitMix64();
  return [low32(first), high32(first), low32(second), high32(second)];
}

function low32(x: bigint): number {
  return Number(BigInt.asIntN(32, x));
}

function high32(x: bigint): number {
  return Number(BigInt.asIntN(32, x >> 32n));
}
