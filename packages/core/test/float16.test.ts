import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bfloat16ArrayToFloat32,
  bfloat16ToFloat32,
  float16ArrayToFloat32,
  float16BitsToFloat32Bits,
  float16ToFloat32,
  float32ArrayToBfloat16,
  float32ArrayToFloat16,
  float32BitsToBfloat16,
  float32BitsToFloat16,
  float32ToBfloat16,
  float32ToFloat16,
} from '../src/index.js';

const RUNS = { seed: 20260516, numRuns: 20_000 };

// Independent references: values from the format definitions with exact powers of two, and
// rounding by searching the sorted list of representable values and comparing both neighbours.

/** fp16 value from the definition: (-1)^s × 2^(e-15) × 1.m, or 2^-14 × 0.m for e = 0. */
function halfValue(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

function bfloat16Value(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits << 16);
  return view.getFloat32(0);
}

/**
 * Round `x` to the format whose non-negative bit patterns `0 .. infBits` increase with the value,
 * treating `infBits` as the next power of two past the largest finite value: nearest, ties to the
 * even pattern, anything at or past that power is Inf.
 */
function roundByNeighbours(
  x: number,
  valueOf: (bits: number) => number,
  infBits: number,
  overflowAt: number,
): number {
  const sign = x < 0 || Object.is(x, -0) ? 0x8000 : 0;
  const magnitude = Math.abs(x);
  const value = (bits: number) => (bits === infBits ? overflowAt : valueOf(bits));
  if (magnitude >= overflowAt) return sign | infBits;
  let lo = 0;
  let hi = infBits;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (value(mid) <= magnitude) lo = mid;
    else hi = mid - 1;
  }
  if (value(lo) === magnitude) return sign | lo;
  const below = magnitude - value(lo);
  const above = value(lo + 1) - magnitude;
  const pick = below < above ? lo : above < below ? lo + 1 : lo % 2 === 0 ? lo : lo + 1;
  return sign | pick;
}

const isHalfNaN = (bits: number) => (bits & 0x7c00) === 0x7c00 && (bits & 0x3ff) !== 0;
const isBfloat16NaN = (bits: number) => (bits & 0x7f80) === 0x7f80 && (bits & 0x7f) !== 0;

function float32FromBits(bits: number): number {
  const view = new DataView(new ArrayBuffer(4));
  view.setUint32(0, bits);
  return view.getFloat32(0);
}

const allPatterns = Array.from({ length: 0x10000 }, (_, bits) => bits);

/** Any float32, drawn uniformly over bit patterns so every exponent (and NaN, Inf, subnormals) shows up. */
const anyFloat32Bits = fc.integer({ min: 0, max: 0xffffffff });

describe('float16', () => {
  it('decodes all 65536 fp16 patterns to the value of the definition', () => {
    const wrong = allPatterns.filter((bits) => {
      const value = float16ToFloat32(bits);
      return isHalfNaN(bits) ? !Number.isNaN(value) : !Object.is(value, halfValue(bits));
    });
    expect(wrong).toEqual([]);
  });

  it('round-trips all 65536 fp16 patterns fp16 → fp32 → fp16 (NaN stays NaN; quiet NaN payloads kept)', () => {
    const wrong = allPatterns.filter((bits) => {
      const back = float32ToFloat16(float16ToFloat32(bits));
      const backFromBits = float32BitsToFloat16(float16BitsToFloat32Bits(bits));
      if (isHalfNaN(bits)) return !isHalfNaN(back) || backFromBits !== (bits | 0x200);
      return back !== bits || backFromBits !== bits;
    });
    expect(wrong).toEqual([]);
  });

  it('rounds random float32 values to the nearest fp16, ties to even (compared with a neighbour search)', () => {
    fc.assert(
      fc.property(anyFloat32Bits, (bits) => {
        const x = float32FromBits(bits);
        const actual = float32ToFloat16(x);
        if (Number.isNaN(x)) return isHalfNaN(actual) && (actual & 0x8000) === ((bits >>> 16) & 0x8000);
        return actual === roundByNeighbours(x, halfValue, 0x7c00, 65536);
      }),
      RUNS,
    );
  });

  it('rounds values near fp16 boundaries (ties, subnormals, overflow) like the neighbour search', () => {
    const near = fc
      .integer({ min: 0, max: 0x7c00 })
      .chain((bits) => fc.tuple(fc.constant(bits), fc.integer({ min: -3, max: 3 }), fc.boolean()));
    fc.assert(
      fc.property(near, ([bits, step, negative]) => {
        // Midpoints between neighbours (±a few float32 ulps) are where rounding mistakes hide.
        const lower = bits === 0x7c00 ? 65504 : halfValue(bits);
        const upper = bits === 0x7c00 ? 65536 : bits === 0x7bff ? 65536 : halfValue(bits + 1);
        const midpoint = Math.fround((lower + upper) / 2);
        const view = new DataView(new ArrayBuffer(4));
        view.setFloat32(0, midpoint);
        const x = float32FromBits(view.getUint32(0) + step) * (negative ? -1 : 1);
        return float32ToFloat16(x) === roundByNeighbours(x, halfValue, 0x7c00, 65536);
      }),
      RUNS,
    );
  });

  it('matches known encodings from IEEE 754 binary16', () => {
    expect(float32ToFloat16(1)).toBe(0x3c00);
    expect(float32ToFloat16(-2)).toBe(0xc000);
    expect(float32ToFloat16(65504)).toBe(0x7bff); // largest finite
    expect(float32ToFloat16(65519.99)).toBe(0x7bff);
    expect(float32ToFloat16(65520)).toBe(0x7c00); // halfway to 2^16 rounds to even: Inf
    expect(float32ToFloat16(2 ** -14)).toBe(0x0400); // smallest normal
    expect(float32ToFloat16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(float32ToFloat16(2 ** -25)).toBe(0x0000); // tie with 0 goes to even
    expect(float32ToFloat16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(float32ToFloat16(-0)).toBe(0x8000);
    expect(float32ToFloat16(1 / 3)).toBe(0x3555);
    expect(float32ToFloat16(-Infinity)).toBe(0xfc00);
    expect(isHalfNaN(float32ToFloat16(NaN))).toBe(true);
  });

  it('rounds a float64 argument to float32 first', () => {
    fc.assert(
      fc.property(fc.double(), (x) => float32ToFloat16(x) === float32ToFloat16(Math.fround(x))),
      { seed: 7, numRuns: 2000 },
    );
  });

  it('array conversions agree with the scalar ones', () => {
    fc.assert(
      fc.property(fc.array(anyFloat32Bits, { maxLength: 64 }), (patterns) => {
        const values = new Float32Array(new Uint32Array(patterns).buffer);
        const halves = float32ArrayToFloat16(values);
        const widened = float16ArrayToFloat32(halves);
        return patterns.every(
          (bits, i) =>
            halves[i] === float32BitsToFloat16(bits) &&
            new Uint32Array(widened.buffer)[i] === float16BitsToFloat32Bits(halves[i]),
        );
      }),
      { seed: 11, numRuns: 500 },
    );
    const offsetView = new Float32Array(new Float32Array([9, 1.5, -2]).buffer, 4, 2);
    expect([...float32ArrayToFloat16(offsetView)]).toEqual([0x3e00, 0xc000]);
  });
});

describe('bfloat16', () => {
  it('round-trips all 65536 bfloat16 patterns bf16 → fp32 → bf16 (NaN stays NaN)', () => {
    const wrong = allPatterns.filter((bits) => {
      const value = bfloat16ToFloat32(bits);
      const back = float32ToBfloat16(value);
      if (isBfloat16NaN(bits)) {
        return (
          !Number.isNaN(value) ||
          !isBfloat16NaN(back) ||
          float32BitsToBfloat16((bits << 16) >>> 0) !== (bits | 0x40)
        );
      }
      return !Object.is(value, bfloat16Value(bits)) || back !== bits;
    });
    expect(wrong).toEqual([]);
  });

  it('rounds random float32 values to the nearest bfloat16, ties to even (compared with a neighbour search)', () => {
    fc.assert(
      fc.property(anyFloat32Bits, (bits) => {
        const x = float32FromBits(bits);
        const actual = float32ToBfloat16(x);
        if (Number.isNaN(x)) return isBfloat16NaN(actual) && (actual & 0x8000) === ((bits >>> 16) & 0x8000);
        return actual === roundByNeighbours(x, bfloat16Value, 0x7f80, 2 ** 128);
      }),
      RUNS,
    );
  });

  it('matches known encodings', () => {
    expect(float32ToBfloat16(1)).toBe(0x3f80);
    expect(float32ToBfloat16(Math.PI)).toBe(0x4049);
    expect(float32ToBfloat16(1 / 3)).toBe(0x3eab);
    expect(float32ToBfloat16(-0)).toBe(0x8000);
    expect(float32ToBfloat16(3.4028234663852886e38)).toBe(0x7f80); // float32 max rounds up to Inf
    expect(float32ToBfloat16(1 + 2 ** -8)).toBe(0x3f80); // tie, even stays
    expect(float32ToBfloat16(1 + 3 * 2 ** -8)).toBe(0x3f82); // tie, odd rounds up
  });

  it('array conversions agree with the scalar ones', () => {
    fc.assert(
      fc.property(fc.array(anyFloat32Bits, { maxLength: 64 }), (patterns) => {
        const values = new Float32Array(new Uint32Array(patterns).buffer);
        const halves = float32ArrayToBfloat16(values);
        const widened = bfloat16ArrayToFloat32(halves);
        return patterns.every(
          (bits, i) =>
            halves[i] === float32BitsToBfloat16(bits) &&
            new Uint32Array(widened.buffer)[i] === (halves[i] << 16) >>> 0,
        );
      }),
      { seed: 13, numRuns: 500 },
    );
  });
});
