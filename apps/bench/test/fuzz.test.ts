import { describe, expect, it } from 'vitest';
import { fuzzInput, MAX_INPUT_BYTES } from '../src/fuzz/mutate.js';
import type { Corpus } from '../src/fuzz/mutate.js';
import { FUZZ_TARGET_NAMES, FUZZ_TARGETS } from '../src/fuzz/targets.js';

const FIXTURES = new URL('../../../fixtures/', import.meta.url);

const corpus: Corpus = {
  seeds: [Uint8Array.from({ length: 40 }, (_, i) => i), new TextEncoder().encode('{"a":[1,2,3]}')],
  dictionary: [new TextEncoder().encode('null')],
};
const inputs = (seed: number, count: number): Uint8Array[] =>
  Array.from({ length: count }, (_, i) => fuzzInput(corpus, seed, i));

describe('fuzz mutation engine', () => {
  it('makes the same inputs from the same seed, and different ones from another seed', () => {
    const first = inputs(1, 200);
    expect(inputs(1, 200)).toEqual(first);
    // Any single iteration can be made again on its own (how findings are saved).
    expect(fuzzInput(corpus, 1, 137)).toEqual(first[137]);
    const other = inputs(2, 200);
    expect(other.filter((input, i) => !sameBytes(input, first[i]!)).length).toBeGreaterThan(150);
  });

  it('mutates copies: the seeds stay as they were, and most inputs differ from every seed', () => {
    const before = corpus.seeds.map((seed) => seed.slice());
    const made = inputs(3, 300);
    expect(corpus.seeds).toEqual(before);
    const unchanged = made.filter((input) => corpus.seeds.some((seed) => sameBytes(seed, input)));
    expect(unchanged.length).toBeLessThan(30);
    expect(new Set(made.map((input) => input.length)).size).toBeGreaterThan(10);
  });

  it('never makes an input above MAX_INPUT_BYTES', () => {
    const big: Corpus = { seeds: [new Uint8Array(MAX_INPUT_BYTES - 4)], dictionary: [] };
    for (let i = 0; i < 20; i++) expect(fuzzInput(big, 4, i).length).toBeLessThanOrEqual(MAX_INPUT_BYTES);
  });
});

describe('fuzz targets', () => {
  it.each(FUZZ_TARGET_NAMES)('%s: every seed of the corpus parses', async (name) => {
    const target = FUZZ_TARGETS[name];
    const { seeds } = await target.corpus(FIXTURES);
    expect(seeds.length).toBeGreaterThan(1);
    for (const seed of seeds) await target.run(seed);
  });
});

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
