import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  DTYPES,
  DcaeError,
  SAFETENSORS_DTYPE_BITS,
  bytesSource,
  hostTensor,
  numel,
  openSafetensors,
  parseSafetensors,
  serializeSafetensors,
} from '../src/index.js';
import type { DType, HostTensor, SafetensorsDType, SafetensorsHeader } from '../src/index.js';
import { craft } from './helpers/craft.js';

const RUNS = 1000;

function parseOrDcaeError(bytes: Uint8Array): SafetensorsHeader | DcaeError {
  try {
    return parseSafetensors(bytes).header;
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
}

// ---- generators ----

const dataFor: { [D in DType]: (length: number) => fc.Arbitrary<HostTensor<D>['data']> } = {
  float32: (n) => fc.float32Array({ minLength: n, maxLength: n }),
  float16: (n) =>
    fc
      .array(fc.integer({ min: 0, max: 0xffff }), { minLength: n, maxLength: n })
      .map((a) => Uint16Array.from(a)),
  bfloat16: (n) =>
    fc
      .array(fc.integer({ min: 0, max: 0xffff }), { minLength: n, maxLength: n })
      .map((a) => Uint16Array.from(a)),
  int64: (n) => fc.bigInt64Array({ minLength: n, maxLength: n }),
  int32: (n) => fc.int32Array({ minLength: n, maxLength: n }),
  uint8: (n) => fc.uint8Array({ minLength: n, maxLength: n }),
  int8: (n) => fc.int8Array({ minLength: n, maxLength: n }),
  bool: (n) => fc.array(fc.boolean(), { minLength: n, maxLength: n }).map((a) => Uint8Array.from(a, Number)),
};

const tensorArb: fc.Arbitrary<HostTensor> = fc
  .tuple(fc.constantFrom(...DTYPES), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }))
  .chain(([dtype, shape]) =>
    dataFor[dtype](numel(shape)).map((data) => hostTensor(dtype, shape, data as never)),
  );

const nameArb = fc
  .oneof(
    fc.string(),
    fc.string({ unit: 'grapheme' }),
    fc.constantFrom('__proto__', 'constructor', '', 'a.weight'),
  )
  .filter((name) => name !== '__metadata__');

const tensorsArb = fc
  .uniqueArray(fc.tuple(nameArb, tensorArb), { maxLength: 6, selector: ([name]) => name })
  .map((entries) => new Map(entries));
const metadataArb = fc.option(
  fc
    .uniqueArray(fc.tuple(fc.string(), fc.string()), { maxLength: 3, selector: ([key]) => key })
    .map((e) => new Map(e)),
  {
    nil: undefined,
  },
);

function bytesOf(data: HostTensor['data']): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

// ---- an independent check of a parse result against the reference rules, built on JSON.parse ----

interface RawEntry {
  dtype: SafetensorsDType;
  shape: number[];
  data_offsets: [number, number];
}

function expectConsistentWithReferenceRules(bytes: Uint8Array, header: SafetensorsHeader): void {
  const length = Number(new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(0, true));
  const json = JSON.parse(
    new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + length)),
  ) as Record<string, unknown>;
  const entries = Object.entries(json).filter(([name]) => name !== '__metadata__') as [string, RawEntry][];
  entries.sort(
    ([, a], [, b]) => a.data_offsets[0] - b.data_offsets[0] || a.data_offsets[1] - b.data_offsets[1],
  );
  let end = 0n;
  for (const [name, { dtype, shape, data_offsets }] of entries) {
    expect(BigInt(data_offsets[0])).toBe(end);
    end = BigInt(data_offsets[1]);
    const bits =
      shape.reduce((product, dim) => product * BigInt(dim), 1n) * BigInt(SAFETENSORS_DTYPE_BITS[dtype]);
    expect(bits % 8n).toBe(0n);
    expect(bits / 8n).toBe(end - BigInt(data_offsets[0]));
    expect(header.tensors.get(name)).toEqual({ dtype, shape, begin: data_offsets[0], end: data_offsets[1] });
  }
  expect(header.tensors.size).toBe(entries.length);
  expect(BigInt(8 + length) + end).toBe(BigInt(bytes.length));
}

// ---- properties ----

describe('safetensors properties (fast-check, fixed seeds)', () => {
  it('any bytes: returns a header or throws a DcaeError, nothing else', () => {
    const anyBytes = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.tuple(fc.string(), fc.nat({ max: 64 })).map(([header, dataLength]) => craft(header, { dataLength })),
      fc.tuple(fc.json(), fc.nat({ max: 64 })).map(([header, dataLength]) => craft(header, { dataLength })),
      fc
        .tuple(fc.uint8Array({ maxLength: 200 }), fc.nat({ max: 64 }))
        .map(([rawHeader, dataLength]) => craft('', { rawHeader, dataLength })),
    );
    fc.assert(
      fc.property(anyBytes, (bytes) => {
        const result = parseOrDcaeError(bytes);
        if (!(result instanceof DcaeError)) expectConsistentWithReferenceRules(bytes, result);
      }),
      { seed: 101, numRuns: RUNS },
    );
  });

  it('write(random tensors) → read gives identical dtypes, shapes, bytes and metadata', () => {
    fc.assert(
      fc.property(tensorsArb, metadataArb, (tensors, metadata) => {
        const file = parseSafetensors(serializeSafetensors(tensors, metadata));
        expect([...file.header.tensors.keys()].sort()).toEqual([...tensors.keys()].sort());
        for (const [name, tensor] of tensors) {
          const read = file.tensor(name);
          expect(read.dtype).toBe(tensor.dtype);
          expect(read.shape).toEqual(tensor.shape);
          expect(bytesOf(read.data)).toEqual(bytesOf(tensor.data));
        }
        expect(file.header.metadata).toEqual(metadata ?? new Map());
      }),
      { seed: 102, numRuns: RUNS },
    );
  });

  it('write → openSafetensors(bytesSource) → readTensor agrees with the in-memory parse', async () => {
    await fc.assert(
      fc.asyncProperty(tensorsArb, async (tensors) => {
        const bytes = serializeSafetensors(tensors);
        const file = await openSafetensors(bytesSource(bytes));
        for (const [name, tensor] of tensors)
          expect(bytesOf((await file.readTensor(name)).data)).toEqual(bytesOf(tensor.data));
      }),
      { seed: 103, numRuns: 200 },
    );
  });

  it('a valid file with one byte changed: a DcaeError, or a parse consistent with the reference rules (same header if only data changed)', () => {
    const mutated = fc
      .tuple(tensorsArb, metadataArb)
      .map(([tensors, metadata]) => serializeSafetensors(tensors, metadata))
      .chain((bytes) => {
        const headerEnd = 8 + Number(new DataView(bytes.buffer).getBigUint64(0, true));
        const position = fc.oneof(
          { weight: 4, arbitrary: fc.integer({ min: 0, max: headerEnd - 1 }) },
          { weight: 1, arbitrary: fc.integer({ min: 0, max: bytes.length - 1 }) },
        );
        return fc.tuple(fc.constant(bytes), position, fc.integer({ min: 0, max: 255 }));
      });
    fc.assert(
      fc.property(mutated, ([original, position, value]) => {
        const bytes = original.slice();
        bytes[position] = value;
        const result = parseOrDcaeError(bytes);
        if (result instanceof DcaeError) return;
        expectConsistentWithReferenceRules(bytes, result);
        const before = parseSafetensors(original).header;
        if (position >= before.dataStart) expect(result).toEqual(before);
      }),
      { seed: 104, numRuns: RUNS },
    );
  });
});
