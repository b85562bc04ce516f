import { describe, expect, it } from 'vitest';
import {
  DcaeError,
  SAFETENSORS_DTYPE_BITS,
  bytesSource,
  float32ToBfloat16,
  float32ToFloat16,
  hostTensor,
  openSafetensors,
  parseSafetensors,
  serializeSafetensors,
} from '../src/index.js';
import type { DcaeErrorCode, HostTensor, SafetensorsOptions } from '../src/index.js';
import { craft, entry } from './helpers/craft.js';

/** The error code parseSafetensors throws for `bytes`, or 'accept'. */
function verdict(bytes: Uint8Array, options?: SafetensorsOptions): DcaeErrorCode | 'accept' {
  try {
    parseSafetensors(bytes, options);
    return 'accept';
  } catch (error) {
    if (!DcaeError.is(error)) throw error;
    return error.code;
  }
}

const F32_2X2 = entry('F32', '[2,2]', '[0,16]');

describe('safetensors reader: bad inputs of docs/reliability.md §9 A', () => {
  it('A1: a file under 8 bytes is HEADER_TOO_SMALL', () => {
    expect(verdict(new Uint8Array(3))).toBe('HEADER_TOO_SMALL');
    expect(verdict(new Uint8Array(0))).toBe('HEADER_TOO_SMALL');
  });

  it('A2: N = 0 is HEADER_NOT_JSON', () => {
    expect(verdict(craft(''))).toBe('HEADER_NOT_JSON');
  });

  it('A3: N over the cap is HEADER_TOO_LARGE (100 MB by default, lower by option)', () => {
    expect(verdict(craft('{}', { headerLength: 100_000_001n }))).toBe('HEADER_TOO_LARGE');
    const file = craft(`{"a":${F32_2X2}}`, { dataLength: 16 });
    expect(verdict(file)).toBe('accept');
    expect(verdict(file, { maxHeaderBytes: 16 })).toBe('HEADER_TOO_LARGE');
    expect(() => parseSafetensors(file, { maxHeaderBytes: 16, name: 'w.safetensors' })).toThrow(
      /w\.safetensors.*limit of 16.*raise maxHeaderBytes/,
    );
  });

  it('A4: N = 2^64 - 1 is HEADER_TOO_LARGE without allocating', () => {
    expect(verdict(craft('{}', { headerLength: (1n << 64n) - 1n }))).toBe('HEADER_TOO_LARGE');
  });

  it('A5: 8 + N past the end of the file is HEADER_LENGTH_EXCEEDS_FILE', () => {
    expect(verdict(craft('{}', { headerLength: 1000n }))).toBe('HEADER_LENGTH_EXCEEDS_FILE');
    expect(verdict(craft('{}', { headerLength: 3n }))).toBe('HEADER_LENGTH_EXCEEDS_FILE');
  });

  it('A6: invalid UTF-8 in the header is HEADER_NOT_UTF8', () => {
    const rawHeader = new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x7b, 0x7d, 0x7d]); // {"\xff":{}}
    expect(verdict(craft('', { rawHeader }))).toBe('HEADER_NOT_UTF8');
    const overlong = new Uint8Array([
      ...new TextEncoder().encode('{"'),
      0xc0,
      0xaf,
      ...new TextEncoder().encode('":{}}'),
    ]);
    expect(verdict(craft('', { rawHeader: overlong }))).toBe('HEADER_NOT_UTF8');
  });

  it('A7: a UTF-8 BOM before { is HEADER_NOT_JSON', () => {
    expect(verdict(craft('\uFEFF{}'))).toBe('HEADER_NOT_JSON');
  });

  it('A8: NUL padding after } is HEADER_NOT_JSON', () => {
    expect(verdict(craft('{}\0\0'))).toBe('HEADER_NOT_JSON');
  });

  it('A9: a top level that is not an object is HEADER_NOT_OBJECT', () => {
    for (const header of ['null', '[]', '1', '"x"', 'true', ' [ {} ] ']) {
      expect(verdict(craft(header)), header).toBe('HEADER_NOT_OBJECT');
    }
    expect(verdict(craft('[1'))).toBe('HEADER_NOT_JSON');
  });

  it('A10: a duplicate tensor name is DUPLICATE_KEY (stricter than the reference, which keeps the last)', () => {
    const header = `{"a":${entry('F32', '[1]', '[0,4]')},"a":${entry('F64', '[1]', '[0,8]')}}`;
    expect(verdict(craft(header, { dataLength: 8 }))).toBe('DUPLICATE_KEY');
  });

  it('A11: a duplicate __metadata__ (or metadata key, or tensor field) is DUPLICATE_KEY', () => {
    expect(verdict(craft('{"__metadata__":{},"__metadata__":{}}'))).toBe('DUPLICATE_KEY');
    expect(verdict(craft('{"__metadata__":{"k":"1","k":"2"}}'))).toBe('DUPLICATE_KEY');
    expect(
      verdict(craft('{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', { dataLength: 1 })),
    ).toBe('DUPLICATE_KEY');
    expect(
      verdict(
        craft(`{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":{"y":1,"y":2}}}`, { dataLength: 1 }),
      ),
    ).toBe('DUPLICATE_KEY');
  });

  it('A12: __metadata__ that is not a string map is METADATA_NOT_STRING_MAP', () => {
    for (const metadata of ['{"x":1}', '{"x":{"nested":[1,2]}}', '[]', '"x"', 'null', '{"x":null}']) {
      expect(verdict(craft(`{"__metadata__":${metadata}}`)), metadata).toBe('METADATA_NOT_STRING_MAP');
    }
  });

  it('A13: an unknown or wrong-case dtype is UNKNOWN_DTYPE', () => {
    for (const dtype of ['Q7_EVIL', 'float32', 'f32', 'F32 ', 'BFLOAT16']) {
      expect(verdict(craft(`{"a":${entry(dtype, '[1]', '[0,4]')}}`, { dataLength: 4 })), dtype).toBe(
        'UNKNOWN_DTYPE',
      );
    }
  });

  it('A14: a missing dtype, shape or data_offsets (or an entry of the wrong type) is BAD_TENSOR_ENTRY', () => {
    const cases = [
      '{"a":{"shape":[1],"data_offsets":[0,4]}}',
      '{"a":{"dtype":"F32","data_offsets":[0,4]}}',
      '{"a":{"dtype":"F32","shape":[1]}}',
      '{"a":{}}',
      '{"a":[]}',
      '{"a":null}',
      '{"a":{"dtype":4,"shape":[1],"data_offsets":[0,4]}}',
      '{"a":{"dtype":"F32","shape":"1","data_offsets":[0,4]}}',
      '{"a":{"dtype":"F32","shape":[[1]],"data_offsets":[0,4]}}',
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,2,4]}}',
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[4]}}',
    ];
    for (const header of cases)
      expect(verdict(craft(header, { dataLength: 4 })), header).toBe('BAD_TENSOR_ENTRY');
    expect(() => parseSafetensors(craft(cases[2]!, { dataLength: 4 }))).toThrow(
      'tensor "a" lacks "data_offsets"',
    );
  });

  it('A15: a negative, fractional or exponent dim or offset is BAD_INTEGER', () => {
    const cases = [
      entry('F32', '[-1]', '[0,4]'),
      entry('F32', '[1.5]', '[0,4]'),
      entry('F32', '[1e0]', '[0,4]'),
      entry('F32', '[1E0]', '[0,4]'),
      entry('F32', '[1.0]', '[0,4]'),
      entry('F32', '[-0]', '[0,4]'),
      entry('F32', '[1]', '[-4,0]'),
      entry('F32', '[1]', '[0,4.0]'),
      entry('F32', '[1]', '[0,4e400]'),
    ];
    for (const tensor of cases)
      expect(verdict(craft(`{"a":${tensor}}`, { dataLength: 4 })), tensor).toBe('BAD_INTEGER');
    expect(verdict(craft(`{"a":${entry('F32', '[01]', '[0,4]')}}`, { dataLength: 4 }))).toBe(
      'HEADER_NOT_JSON',
    );
  });

  it('A16: an integer above 2^53 - 1 anywhere is INTEGER_OUT_OF_RANGE; 2^53 - 1 itself parses', () => {
    for (const big of [
      '9007199254740992',
      '9007199254740993',
      '18446744073709551616',
      '1' + '0'.repeat(400),
    ]) {
      expect(verdict(craft(`{"a":${entry('U8', `[${big}]`, '[0,1]')}}`, { dataLength: 1 })), big).toBe(
        'INTEGER_OUT_OF_RANGE',
      );
      expect(verdict(craft(`{"a":${entry('U8', '[1]', `[0,${big}]`)}}`, { dataLength: 1 })), big).toBe(
        'INTEGER_OUT_OF_RANGE',
      );
    }
    const max = '9007199254740991';
    expect(verdict(craft(`{"a":${entry('U8', `[${max}]`, `[0,${max}]`)}}`, { dataLength: 1 }))).toBe(
      'TRUNCATED_DATA',
    );
  });

  it('A17: a shape product over 2^64 is OVERFLOW', () => {
    expect(
      verdict(craft(`{"a":${entry('F32', '[4294967296,4294967296]', '[0,4]')}}`, { dataLength: 4 })),
    ).toBe('OVERFLOW');
    // The reference multiplies dims in order, so a 0 after the overflow does not save the file.
    expect(verdict(craft(`{"a":${entry('U8', '[4294967296,4294967296,0]', '[0,0]')}}`))).toBe('OVERFLOW');
    expect(verdict(craft(`{"a":${entry('U8', '[0,4294967296,4294967296]', '[0,0]')}}`))).toBe('accept');
  });

  it('A18: shape × dtype bits over 2^64 is OVERFLOW', () => {
    expect(
      verdict(craft(`{"a":${entry('I32', '[2147483648,2147483648]', '[0,4]')}}`, { dataLength: 4 })),
    ).toBe('OVERFLOW');
    expect(
      verdict(craft(`{"a":${entry('U8', '[1073741824,1073741824]', '[0,4]')}}`, { dataLength: 4 })),
    ).toBe('SIZE_MISMATCH');
  });

  it('A19: overlapping offsets (10 tensors over one range) are OFFSETS_NOT_CONTIGUOUS', () => {
    const tensors = Array.from({ length: 10 }, (_, i) => `"w${i}":${F32_2X2}`).join(',');
    expect(verdict(craft(`{${tensors}}`, { dataLength: 16 }))).toBe('OFFSETS_NOT_CONTIGUOUS');
    const partial = `{"a":${entry('U8', '[4]', '[0,4]')},"b":${entry('U8', '[4]', '[2,6]')}}`;
    expect(() => parseSafetensors(craft(partial, { dataLength: 6 }))).toThrow(
      /"b".*\[2, 6\].*"a" ends at 4: it overlaps/,
    );
  });

  it('A20: a gap between tensors, or a first begin other than 0, is OFFSETS_NOT_CONTIGUOUS', () => {
    const gap = `{"a":${entry('F32', '[1]', '[0,4]')},"b":${entry('F32', '[1]', '[8,12]')}}`;
    expect(verdict(craft(gap, { dataLength: 12 }))).toBe('OFFSETS_NOT_CONTIGUOUS');
    expect(verdict(craft(`{"a":${entry('F32', '[1]', '[4,8]')}}`, { dataLength: 8 }))).toBe(
      'OFFSETS_NOT_CONTIGUOUS',
    );
  });

  it('A21: end < begin is OFFSETS_NOT_CONTIGUOUS', () => {
    expect(verdict(craft(`{"a":${entry('F32', '[1]', '[4,0]')}}`, { dataLength: 4 }))).toBe(
      'OFFSETS_NOT_CONTIGUOUS',
    );
    expect(
      verdict(
        craft(`{"a":${entry('U8', '[0]', '[0,0]')},"b":${entry('U8', '[1]', '[1,0]')}}`, { dataLength: 1 }),
      ),
    ).toBe('OFFSETS_NOT_CONTIGUOUS');
  });

  it('A22: end - begin ≠ numel × dtype size is SIZE_MISMATCH', () => {
    expect(verdict(craft(`{"a":${entry('I32', '[2,2]', '[0,4]')}}`, { dataLength: 4 }))).toBe(
      'SIZE_MISMATCH',
    );
    expect(verdict(craft(`{"a":${entry('F32', '[0]', '[0,4]')}}`, { dataLength: 4 }))).toBe('SIZE_MISMATCH');
  });

  it('A23: a sub-byte dtype with a bit count not a multiple of 8 is MISALIGNED_SUBBYTE', () => {
    expect(verdict(craft(`{"a":${entry('F4', '[3]', '[0,2]')}}`, { dataLength: 2 }))).toBe(
      'MISALIGNED_SUBBYTE',
    );
    expect(verdict(craft(`{"a":${entry('F6_E2M3', '[2]', '[0,2]')}}`, { dataLength: 2 }))).toBe(
      'MISALIGNED_SUBBYTE',
    );
    expect(verdict(craft(`{"a":${entry('F4', '[4]', '[0,2]')}}`, { dataLength: 2 }))).toBe('accept');
    expect(verdict(craft(`{"a":${entry('F6_E3M2', '[4]', '[0,3]')}}`, { dataLength: 3 }))).toBe('accept');
  });

  it('A24: bytes after the last tensor are TRAILING_BYTES', () => {
    expect(verdict(craft(`{"a":${entry('F32', '[1]', '[0,4]')}}`, { dataLength: 4 + 4096 }))).toBe(
      'TRAILING_BYTES',
    );
    expect(verdict(craft('{}', { dataLength: 1 }))).toBe('TRAILING_BYTES');
  });

  it('A25: data shorter than the last end is TRUNCATED_DATA', () => {
    expect(verdict(craft(`{"a":${entry('F32', '[4]', '[0,16]')}}`, { dataLength: 14 }))).toBe(
      'TRUNCATED_DATA',
    );
  });

  it('A26: more tensors than the cap is TOO_MANY_TENSORS (100000 by default)', () => {
    const header = (count: number) =>
      `{${Array.from({ length: count }, (_, i) => `"t${i}":${entry('U8', '[0]', '[0,0]')}`).join(',')}}`;
    expect(verdict(craft(header(10)), { maxTensors: 10 })).toBe('accept');
    expect(verdict(craft(header(11)), { maxTensors: 10 })).toBe('TOO_MANY_TENSORS');
    expect(verdict(craft(header(100_001)))).toBe('TOO_MANY_TENSORS');
  });

  it('A27: "__proto__", "constructor" and "" are ordinary tensor names; names over the cap are NAME_TOO_LONG', () => {
    const names = ['__proto__', 'constructor', '', 'toString', 'hasOwnProperty'];
    const header = `{${names.map((name, i) => `"${name}":${entry('U8', '[1]', `[${i},${i + 1}]`)}`).join(',')}}`;
    const file = parseSafetensors(craft(header, { dataLength: names.length, fill: 7 }));
    expect([...file.header.tensors.keys()]).toEqual(names);
    expect(file.tensor('__proto__').data).toEqual(new Uint8Array([7]));
    expect(file.tensorInfo('constructor').begin).toBe(1);
    expect(({} as Record<string, unknown>).dtype).toBeUndefined();

    const named = (name: string) => craft(`{"${name}":${entry('U8', '[0]', '[0,0]')}}`);
    expect(verdict(named('x'.repeat(64 * 1024)))).toBe('NAME_TOO_LONG');
    expect(verdict(named('x'.repeat(1024)))).toBe('accept');
    expect(verdict(named('x'.repeat(1025)))).toBe('NAME_TOO_LONG');
    expect(verdict(named('é'.repeat(512)))).toBe('accept'); // 1024 UTF-8 bytes
    expect(verdict(named('é'.repeat(513)))).toBe('NAME_TOO_LONG');
    expect(verdict(named('x'.repeat(20)), { maxNameBytes: 19 })).toBe('NAME_TOO_LONG');
  });

  it('A28: a header length that is not a multiple of 8 leaves data misaligned; tensors are copied, never RangeError', async () => {
    const values = [1.5, -2.25, 3e-8];
    for (const pad of [0, 1, 2, 3, 5, 7]) {
      const header = `{"d":${entry('F64', '[3]', '[0,24]')},"f":${entry('F32', '[3]', '[24,36]')},"i":${entry('I64', '[1]', '[36,44]')}}${' '.repeat(pad)}`;
      const bytes = craft(header, { dataLength: 44 });
      const data = new DataView(bytes.buffer, 8 + header.length);
      values.forEach((value, i) => data.setFloat64(8 * i, value, true));
      values.forEach((value, i) => data.setFloat32(24 + 4 * i, value, true));
      data.setBigInt64(36, -5n, true);

      const parsed = parseSafetensors(bytes);
      expect([...parsed.tensor('f').data]).toEqual(values.map(Math.fround));
      expect([...parsed.tensor('d').data]).toEqual(values.map(Math.fround));
      expect([...parsed.tensor('i').data]).toEqual([-5n]);
      const file = await openSafetensors(bytesSource(bytes));
      expect([...(await file.readTensor('f')).data]).toEqual(values.map(Math.fround));
      expect((await file.readTensor('d')).dtype).toBe('float32');
    }
  });

  it('A29: whitespace before { and after } is accepted', () => {
    expect(verdict(craft(`  \n\t\r{"a":${F32_2X2}}`, { dataLength: 16 }))).toBe('accept');
    expect(verdict(craft(`{"a":${F32_2X2}}    \n`, { dataLength: 16 }))).toBe('accept');
    expect(
      verdict(
        craft(`{ "a" : { "dtype" : "F32" , "shape" : [ 2 , 2 ] , "data_offsets" : [ 0 , 16 ] } }`, {
          dataLength: 16,
        }),
      ),
    ).toBe('accept');
  });

  it('A30: a missing tensor is TENSOR_NOT_FOUND listing close names', async () => {
    const tensors = {
      'decoder.conv_in.weight': hostTensor('float32', [1], new Float32Array(1)),
      'decoder.conv_in.bias': hostTensor('float32', [1], new Float32Array(1)),
      'encoder.conv_out.bias': hostTensor('float32', [1], new Float32Array(1)),
    };
    const bytes = serializeSafetensors(tensors);
    expect(() =>
      parseSafetensors(bytes, { name: 'model.safetensors' }).tensor('decoder.conv_in.weights'),
    ).toThrow(
      expect.objectContaining({
        code: 'TENSOR_NOT_FOUND',
        message:
          'model.safetensors: no tensor named "decoder.conv_in.weights" among its 3 tensors. Close matches: "decoder.conv_in.weight", "decoder.conv_in.bias".',
      }),
    );
    const file = await openSafetensors(bytesSource(bytes));
    await expect(file.readTensor('nothing.like.it.at.all')).rejects.toMatchObject({
      code: 'TENSOR_NOT_FOUND',
    });
    expect(() => file.fileOffset('x')).toThrow(expect.objectContaining({ code: 'TENSOR_NOT_FOUND' }));
  });
});

describe('safetensors reader: other schema details', () => {
  it('ignores unknown fields in a tensor entry, however nested (up to the depth cap)', () => {
    const extra = `{"a":{"dtype":"U8","evil":{"x":[1,2.5,"s",null,true]},"shape":[1],"data_offsets":[0,1],"z":-1e9}}`;
    expect(verdict(craft(extra, { dataLength: 1 }))).toBe('accept');
    const deep = `{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":${'['.repeat(5000)}${']'.repeat(5000)}}}`;
    expect(verdict(craft(deep, { dataLength: 1 }))).toBe('HEADER_NOT_JSON');
  });

  it('decodes escaped names and rejects unpaired surrogate escapes', () => {
    const file = parseSafetensors(craft(`{"\\u00e9\\ud83d\\ude00\\n":${entry('U8', '[0]', '[0,0]')}}`));
    expect([...file.header.tensors.keys()]).toEqual(['é😀\n']);
    expect(verdict(craft(`{"\\ud800":${entry('U8', '[0]', '[0,0]')}}`))).toBe('HEADER_NOT_JSON');
    expect(verdict(craft(`{"\\udc00x":${entry('U8', '[0]', '[0,0]')}}`))).toBe('HEADER_NOT_JSON');
    expect(verdict(craft(`{"a\tb":${entry('U8', '[0]', '[0,0]')}}`))).toBe('HEADER_NOT_JSON');
  });

  it('reports the header as it is: tensors in data order, metadata, dataStart and file offsets', async () => {
    const header = `{"__metadata__":{"format":"pt","x":""},"b":${entry('F32', '[1]', '[4,8]')},"a":${entry('F32', '[1]', '[0,4]')}}`;
    const bytes = craft(header, { dataLength: 8 });
    const file = await openSafetensors(bytesSource(bytes, 'two.safetensors'));
    expect([...file.header.tensors.entries()]).toEqual([
      ['a', { dtype: 'F32', shape: [1], begin: 0, end: 4 }],
      ['b', { dtype: 'F32', shape: [1], begin: 4, end: 8 }],
    ]);
    expect(Object.fromEntries(file.header.metadata)).toEqual({ format: 'pt', x: '' });
    expect(file.header.dataStart).toBe(8 + header.length);
    expect(file.header.dataLength).toBe(8);
    expect(file.fileOffset('b')).toBe(8 + header.length + 4);
    expect(file.source.name).toBe('two.safetensors');
  });

  it('reads every safetensors dtype name with its bit size', () => {
    expect(Object.keys(SAFETENSORS_DTYPE_BITS)).toHaveLength(22);
    for (const [dtype, bits] of Object.entries(SAFETENSORS_DTYPE_BITS)) {
      const bytes = (8 * bits) / 8;
      const file = parseSafetensors(
        craft(`{"t":${entry(dtype, '[2,4]', `[0,${bytes}]`)}}`, { dataLength: bytes }),
      );
      expect(file.tensorBytes('t')).toHaveLength(bytes);
    }
  });

  it('tensors of dtypes dcae does not compute in are DTYPE_UNSUPPORTED, before any read; raw bytes stay readable', async () => {
    const bytes = craft(`{"q":${entry('F8_E4M3', '[4]', '[0,4]')}}`, { dataLength: 4, fill: 0x38 });
    expect(() => parseSafetensors(bytes).tensor('q')).toThrow(
      expect.objectContaining({ code: 'DTYPE_UNSUPPORTED', message: expect.stringContaining('F8_E4M3') }),
    );
    let reads = 0;
    const source = bytesSource(bytes);
    const counting = {
      ...source,
      read: (offset: number, length: number) => (reads++, source.read(offset, length)),
    };
    const file = await openSafetensors(counting);
    const readsAfterOpen = reads;
    await expect(file.readTensor('q')).rejects.toMatchObject({ code: 'DTYPE_UNSUPPORTED' });
    expect(reads).toBe(readsAfterOpen);
    expect([...(await file.readBytes('q'))]).toEqual([0x38, 0x38, 0x38, 0x38]);
  });

  it('closes the source when the header is rejected, and on close()', async () => {
    let closed = 0;
    const withClose = (bytes: Uint8Array) => ({ ...bytesSource(bytes), close: async () => void closed++ });
    await expect(openSafetensors(withClose(craft('[]')))).rejects.toMatchObject({
      code: 'HEADER_NOT_OBJECT',
    });
    expect(closed).toBe(1);
    const file = await openSafetensors(withClose(craft('{}')));
    await file.close();
    expect(closed).toBe(2);
  });

  it('limit options must be non-negative integers (INVALID_ARGUMENT)', () => {
    for (const maxHeaderBytes of [-1, 1.5, NaN]) {
      expect(() => parseSafetensors(craft('{}'), { maxHeaderBytes })).toThrow(
        expect.objectContaining({
          code: 'INVALID_ARGUMENT',
          message: expect.stringContaining('maxHeaderBytes'),
        }),
      );
    }
    expect(verdict(craft('{}'), { maxTensors: undefined })).toBe('accept');
  });

  it('source reads outside the data are INVALID_ARGUMENT', async () => {
    const source = bytesSource(new Uint8Array(4));
    await expect(source.read(2, 3)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(source.read(-1, 1)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(await source.read(4, 0)).toHaveLength(0);
  });
});

describe('safetensors writer', () => {
  const sample: Record<string, HostTensor> = {
    'z.f32': hostTensor('float32', [2, 2], new Float32Array([1, -2, 3.5, 1e-30])),
    'a.f16': hostTensor('float16', [3], Uint16Array.from([1, -0.5, 65504], float32ToFloat16)),
    'b.bf16': hostTensor('bfloat16', [1, 2], Uint16Array.from([3, -1e30], float32ToBfloat16)),
    'm.i64': hostTensor('int64', [], new BigInt64Array([-(1n << 62n)])),
    'n.i32': hostTensor('int32', [2], new Int32Array([-1, 2 ** 31 - 1])),
    'u.u8': hostTensor('uint8', [3], new Uint8Array([0, 128, 255])),
    'k.bool': hostTensor('bool', [2], new Uint8Array([1, 0])),
    'e.empty': hostTensor('float32', [0, 3], new Float32Array(0)),
  };

  it('round-trips every core dtype exactly (values, shapes, metadata)', () => {
    const file = parseSafetensors(serializeSafetensors(sample, { format: 'pt' }));
    for (const [name, tensor] of Object.entries(sample)) {
      const read = file.tensor(name);
      expect(read.dtype).toBe(tensor.dtype);
      expect(read.shape).toEqual(tensor.shape);
      expect(read.data).toEqual(tensor.data);
    }
    expect(file.header.metadata.get('format')).toBe('pt');
  });

  it('writes a header JSON.parse reads, padded with spaces so the data starts at a multiple of 8', () => {
    const bytes = serializeSafetensors(sample, new Map([['format', 'pt']]));
    const headerLength = Number(new DataView(bytes.buffer).getBigUint64(0, true));
    expect(headerLength % 8).toBe(0);
    const text = new TextDecoder().decode(bytes.subarray(8, 8 + headerLength));
    expect(text).toMatch(/^\{.*\} *$/);
    const header = JSON.parse(text) as Record<
      string,
      { dtype: string; shape: number[]; data_offsets: [number, number] }
    >;
    expect(header['z.f32']).toEqual({ dtype: 'F32', shape: [2, 2], data_offsets: [16, 32] }); // after m.i64 (8 bytes), e.empty (0) and n.i32 (8)
    expect(header['__metadata__']).toEqual({ format: 'pt' });
  });

  it('orders tensors by falling element size, then name, so every tensor is aligned', () => {
    const file = parseSafetensors(serializeSafetensors(sample));
    expect([...file.header.tensors.keys()]).toEqual([
      'm.i64',
      'e.empty',
      'n.i32',
      'z.f32',
      'a.f16',
      'b.bf16',
      'k.bool',
      'u.u8',
    ]);
    for (const [name, info] of file.header.tensors) {
      const size = { F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, U8: 1, BOOL: 1 }[info.dtype as string]!;
      expect((file.header.dataStart + info.begin) % size, name).toBe(0);
    }
  });

  it('is deterministic whatever the insertion order', () => {
    const reversed = new Map(Object.entries(sample).reverse());
    expect(serializeSafetensors(reversed)).toEqual(serializeSafetensors(sample));
  });

  it('writes an empty file as an 8-byte-aligned {}', () => {
    const bytes = serializeSafetensors({});
    expect(bytes).toHaveLength(16);
    expect(new TextDecoder().decode(bytes.subarray(8))).toBe('{}      ');
    expect(parseSafetensors(bytes).header.tensors.size).toBe(0);
  });

  it('writes names and metadata with any characters, including "__proto__" and ""', () => {
    const tensors = new Map<string, HostTensor>([
      ['__proto__', hostTensor('uint8', [1], new Uint8Array([1]))],
      ['', hostTensor('uint8', [1], new Uint8Array([2]))],
      ['q"\\\n\u0001é😀', hostTensor('uint8', [1], new Uint8Array([3]))],
    ]);
    const file = parseSafetensors(serializeSafetensors(tensors, new Map([['__proto__', '"x"']])));
    expect(file.tensor('q"\\\n\u0001é😀').data).toEqual(new Uint8Array([3]));
    expect(file.tensor('__proto__').data).toEqual(new Uint8Array([1]));
    expect(file.header.metadata.get('__proto__')).toBe('"x"');
  });

  it('rejects invalid tensors, a tensor named __metadata__, unpaired surrogates and non-string metadata', () => {
    const one = hostTensor('uint8', [1], new Uint8Array(1));
    const bad = { dtype: 'float32', shape: [2], data: new Float32Array(3) } as HostTensor;
    expect(() => serializeSafetensors({ bad })).toThrow(
      expect.objectContaining({ code: 'SHAPE_MISMATCH', message: expect.stringContaining('"bad"') }),
    );
    expect(() => serializeSafetensors({ __metadata__: one })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => serializeSafetensors({ 'a\ud800': one })).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
    expect(() => serializeSafetensors({ one }, { k: 1 } as unknown as Record<string, string>)).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});
