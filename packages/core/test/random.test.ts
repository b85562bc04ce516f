import { describe, expect, it } from 'vitest';
import { createRng } from '../src/index.js';

// An independent model of the generator in BigInt: SplitMix64 seeding, then xoshiro128**.
const MASK64 = (1n << 64n) - 1n;
const MASK32 = (1n << 32n) - 1n;

function referenceSplitMix64(seed: bigint): () => bigint {
  let state = seed & MASK64;
  return () => {
    state = (state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  };
}

function referenceStream(seed: bigint, count: number): number[] {
  const splitMix = referenceSplitMix64(seed);
  const a = splitMix();
  const b = splitMix();
  let [s0, s1, s2, s3] = [a & MASK32, a >> 32n, b & MASK32, b >> 32n] as [bigint, bigint, bigint, bigint];
  const rotl = (x: bigint, k: bigint) => ((x << k) | (x >> (32n - k))) & MASK32;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    out.push(Number((rotl((s1 * 5n) & MASK32, 7n) * 9n) & MASK32));
    const t = (s1 << 9n) & MASK32;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = rotl(s3, 11n);
  }
  return out;
}

describe('createRng', () => {
  it('the BigInt reference reproduces the published SplitMix64 outputs for seed 0', () => {
    const splitMix = referenceSplitMix64(0n);
    expect([splitMix(), splitMix(), splitMix()]).toEqual([
      0xe220a8397b1dcdafn,
      0x6e789e6aa1b965f4n,
      0x06c45d188009454fn,
    ]);
  });

  it('nextUint32 matches the BigInt model of xoshiro128** for several seeds (1000 values each)', () => {
    for (const seed of [0n, 1n, 42n, 2001n, (1n << 64n) - 1n, 0x123456789abcdefn]) {
      const rng = createRng(seed);
      const actual = Array.from({ length: 1000 }, () => rng.nextUint32());
      expect(actual).toEqual(referenceStream(seed, 1000));
    }
  });

  it('takes seeds modulo 2^64: 5 and 5n agree, -1 equals 2^64 - 1', () => {
    const first = (seed: number | bigint) => createRng(seed).nextUint32();
    expect(first(5)).toBe(first(5n));
    expect(first(-1)).toBe(first((1n << 64n) - 1n));
    expect(first(1n << 64n)).toBe(first(0));
    expect(first(1)).not.toBe(first(2));
  });

  it('rejects a non-integer seed with INVALID_ARGUMENT', () => {
    for (const seed of [1.5, NaN, Infinity, 2 ** 60]) {
      expect(() => createRng(seed)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
  });

  it('uniform() is built from 27 + 26 bits of two consecutive integers', () => {
    const rng = createRng(7);
    const stream = referenceStream(7n, 200);
    for (let i = 0; i < 100; i++) {
      const expected = ((stream[2 * i]! >>> 5) * 2 ** 26 + (stream[2 * i + 1]! >>> 6)) / 2 ** 53;
      expect(rng.uniform()).toBe(expected);
    }
  });

  it('normal() is Box–Muller over the uniform stream, yielding cos then sin', () => {
    const rng = createRng(3);
    const uniforms = createRng(3);
    for (let i = 0; i < 50; i++) {
      const radius = Math.sqrt(-2 * Math.log(1 - uniforms.uniform()));
      const angle = 2 * Math.PI * uniforms.uniform();
      expect(rng.normal()).toBe(radius * Math.cos(angle));
      expect(rng.normal()).toBe(radius * Math.sin(angle));
    }
  });

  it('normal values have mean ≈ 0 and variance ≈ 1 over 20000 draws (|Δ| < 0.03)', () => {
    const values = createRng(123).fillNormal(new Float64Array(20_000));
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    const variance = values.reduce((a, b) => a + (b - mean) ** 2, 0) / values.length;
    expect(Math.abs(mean)).toBeLessThan(0.03);
    expect(Math.abs(variance - 1)).toBeLessThan(0.03);
  });

  it('fillUniform scales to [lo, hi) and fillNormal to mean + std × z, drawing the same stream', () => {
    const uniform = createRng(9).fillUniform(new Float64Array(1000), -2, 6);
    expect(Math.min(...uniform)).toBeGreaterThanOrEqual(-2);
    expect(Math.max(...uniform)).toBeLessThan(6);
    const reference = createRng(9);
    expect(uniform[0]).toBe(-2 + 8 * reference.uniform());

    const scaled = createRng(4).fillNormal(new Float32Array(8), 10, 0.5);
    const standard = createRng(4);
    for (const value of scaled) expect(value).toBe(Math.fround(10 + 0.5 * standard.normal()));
  });

  it('randn([2, 3, 4]) fills a float32 tensor in row-major order from normal()', () => {
    const tensor = createRng(2001).randn([2, 3, 4]);
    expect(tensor.dtype).toBe('float32');
    expect(tensor.shape).toEqual([2, 3, 4]);
    const reference = createRng(2001);
    expect([...tensor.data]).toEqual(Array.from({ length: 24 }, () => Math.fround(reference.normal())));
  });

  it('the same seed gives the same sequence; generators are independent', () => {
    const a = createRng(99);
    const b = createRng(99);
    a.uniform();
    const c = createRng(99);
    expect(b.uniform()).toBe(c.uniform());
    expect(a.uniform()).toBe(b.uniform());
  });
});
