import { createRng } from '@dcae/core';
import type { Rng } from '@dcae/core';

/** Byte values that often sit on a parser's boundary. */
export const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xff] as const;

/** 32-bit values written over a length field (little- or big-endian). */
const INTERESTING_U32 = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff] as const;

/** Valid inputs to start from, and tokens the format gives meaning to (JSON keywords, varints…). */
export interface Corpus {
  readonly seeds: readonly Uint8Array[];
  readonly dictionary: readonly Uint8Array[];
}

type Mutation = (rng: Rng, bytes: Uint8Array, corpus: Corpus) => Uint8Array;

const below = (rng: Rng, n: number): number => (n <= 0 ? 0 : rng.nextUint32() % n);
const pick = <T>(rng: Rng, items: readonly T[]): T => items[below(rng, items.length)]!;

/** Start and end of a random chunk of `bytes`, at most `max` long. */
function chunk(rng: Rng, bytes: Uint8Array, max = 64): [number, number] {
  const start = below(rng, bytes.length);
  return [start, start + 1 + below(rng, Math.min(max, bytes.length - start))];
}

const concat = (...parts: Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
};

const MUTATIONS: readonly Mutation[] = [
  function flipBit(rng, bytes) {
    if (bytes.length > 0) bytes[below(rng, bytes.length)]! ^= 1 << below(rng, 8);
    return bytes;
  },
  function setInterestingByte(rng, bytes) {
    if (bytes.length > 0) bytes[below(rng, bytes.length)] = pick(rng, INTERESTING_BYTES);
    return bytes;
  },
  function setRandomByte(rng, bytes) {
    if (bytes.length > 0) bytes[below(rng, bytes.length)] = below(rng, 256);
    return bytes;
  },
  function truncate(rng, bytes) {
    return bytes.subarray(0, below(rng, bytes.length));
  },
  function deleteChunk(rng, bytes) {
    const [start, end] = chunk(rng, bytes);
    return concat(bytes.subarray(0, start), bytes.subarray(end));
  },
  function duplicateChunk(rng, bytes) {
    const [start, end] = chunk(rng, bytes);
    return concat(bytes.subarray(0, end), bytes.subarray(start, end), bytes.subarray(end));
  },
  function insertRandomBytes(rng, bytes) {
    const at = below(rng, bytes.length + 1);
    const inserted = Uint8Array.from({ length: 1 + below(rng, 16) }, () => below(rng, 256));
    return concat(bytes.subarray(0, at), inserted, bytes.subarray(at));
  },
  function insertToken(rng, bytes, corpus) {
    if (corpus.dictionary.length === 0) return bytes;
    const at = below(rng, bytes.length + 1);
    return concat(bytes.subarray(0, at), pick(rng, corpus.dictionary), bytes.subarray(at));
  },
  function overwriteToken(rng, bytes, corpus) {
    if (corpus.dictionary.length === 0 || bytes.length === 0) return bytes;
    const token = pick(rng, corpus.dictionary);
    const at = below(rng, bytes.length);
    return concat(bytes.subarray(0, at), token, bytes.subarray(Math.min(bytes.length, at + token.length)));
  },
  function editLengthField(rng, bytes) {
    if (bytes.length < 4) return bytes;
    const at = below(rng, bytes.length - 3);
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const littleEndian = below(rng, 2) === 0;
    const old = view.getUint32(at, littleEndian);
    const choices = [...INTERESTING_U32, old + 1, old - 1, old * 2, bytes.length, bytes.length - at];
    view.setUint32(at, pick(rng, choices) >>> 0, littleEndian);
    return bytes;
  },
  function spliceSeeds(rng, bytes, corpus) {
    const other = pick(rng, corpus.seeds);
    const cut = below(rng, bytes.length + 1);
    return concat(bytes.subarray(0, cut), other.subarray(below(rng, other.length + 1)));
  },
];

/** Largest input the engine makes; bigger mutants are cut to this size. */
export const MAX_INPUT_BYTES = 1 << 20;

/**
 * The input of fuzz iteration `iteration` under `seed`: a copy of one corpus seed with 1 to 8
 * stacked mutations, a single one half of the time (bit flips, interesting bytes, truncation,
 * chunk deletion, duplication and insertion, dictionary tokens, 32-bit length-field edits, splices
 * with another seed). Each iteration has its own random stream, so any input can be made again
 * from (seed, iteration) alone. `iteration` must be below 2^32.
 */
export function fuzzInput(corpus: Corpus, seed: number, iteration: number): Uint8Array {
  const rng = createRng((BigInt(seed) << 32n) | BigInt(iteration));
  let bytes: Uint8Array = pick(rng, corpus.seeds).slice();
  // 1 mutation half of the time, 2 a quarter…: most inputs stay close enough to a seed to get past
  // the first checks.
  let count = 1;
  while (count < 8 && below(rng, 2) === 1) count++;
  for (let i = 0; i < count; i++) {
    bytes = pick(rng, MUTATIONS)(rng, bytes, corpus);
    if (bytes.length > MAX_INPUT_BYTES) bytes = bytes.slice(0, MAX_INPUT_BYTES);
  }
  return bytes;
}
