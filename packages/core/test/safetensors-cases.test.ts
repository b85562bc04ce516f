import { describe, expect, it } from 'vitest';
import { DcaeError, parseSafetensors } from '../src/index.js';
import type { DcaeErrorCode } from '../src/index.js';
import { craft, entry } from './helpers/craft.js';

/**
 * docs/reliability.md Appendix B: the 42 crafted files of experiment E1, with the verdict of the Rust
 * reference (safetensors@24b0b28) and ours. Ours is the reference's, except where `deliberate`
 * says why we are stricter.
 */
type ReferenceVerdict =
  | 'accept'
  | 'InvalidOffset'
  | 'TensorInvalidInfo'
  | 'MetadataIncompleteBuffer'
  | 'JSON error'
  | 'HeaderTooSmall'
  | 'InvalidHeaderLength'
  | 'HeaderTooLarge'
  | 'ValidationOverflow'
  | 'MisalignedSlice'
  | 'InvalidHeader';

interface Case {
  name: string;
  file: Uint8Array;
  reference: ReferenceVerdict;
  ours: DcaeErrorCode | 'accept';
  deliberate?: string;
}

/** Our codes that correspond to each reference error. */
const MATCHING_CODES: Record<Exclude<ReferenceVerdict, 'accept'>, DcaeErrorCode[]> = {
  InvalidOffset: ['OFFSETS_NOT_CONTIGUOUS'],
  TensorInvalidInfo: ['SIZE_MISMATCH'],
  MetadataIncompleteBuffer: ['TRAILING_BYTES', 'TRUNCATED_DATA'],
  'JSON error': [
    'HEADER_NOT_JSON',
    'HEADER_NOT_OBJECT',
    'DUPLICATE_KEY',
    'METADATA_NOT_STRING_MAP',
    'UNKNOWN_DTYPE',
    'BAD_TENSOR_ENTRY',
    'BAD_INTEGER',
  ],
  HeaderTooSmall: ['HEADER_TOO_SMALL'],
  InvalidHeaderLength: ['HEADER_LENGTH_EXCEEDS_FILE'],
  HeaderTooLarge: ['HEADER_TOO_LARGE'],
  ValidationOverflow: ['OVERFLOW'],
  MisalignedSlice: ['MISALIGNED_SUBBYTE'],
  InvalidHeader: ['HEADER_NOT_UTF8'],
};

const F32_1 = entry('F32', '[1]', '[0,4]');

const CASES: Case[] = [
  {
    name: 'valid',
    file: craft(`{"a":${entry('F32', '[2,2]', '[0,16]')}}`, { dataLength: 16 }),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'valid_bf16_f8',
    file: craft(`{"a":${entry('BF16', '[2]', '[0,4]')},"b":${entry('F8_E4M3', '[4]', '[4,8]')}}`, {
      dataLength: 8,
    }),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'zero_sized',
    file: craft(`{"a":${entry('F32', '[2,0]', '[0,0]')}}`),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'scalar_rank0',
    file: craft(`{"a":${entry('F32', '[]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'overlap_10x',
    file: craft(
      `{${Array.from({ length: 10 }, (_, i) => `"w${i}":${entry('F32', '[2,2]', '[0,16]')}`).join(',')}}`,
      { dataLength: 16 },
    ),
    reference: 'InvalidOffset',
    ours: 'OFFSETS_NOT_CONTIGUOUS',
  },
  {
    name: 'shape_mismatch',
    file: craft(`{"a":${entry('I32', '[2,2]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'TensorInvalidInfo',
    ours: 'SIZE_MISMATCH',
  },
  {
    name: 'trailing_polyglot',
    file: craft(`{"a":${F32_1}}`, { dataLength: 4 + 4096 }),
    reference: 'MetadataIncompleteBuffer',
    ours: 'TRAILING_BYTES',
  },
  {
    name: 'truncated_data',
    file: craft(`{"a":${entry('F32', '[4]', '[0,16]')}}`, { dataLength: 14 }),
    reference: 'MetadataIncompleteBuffer',
    ours: 'TRUNCATED_DATA',
  },
  {
    name: 'gap_between',
    file: craft(`{"a":${F32_1},"b":${entry('F32', '[1]', '[8,12]')}}`, { dataLength: 12 }),
    reference: 'InvalidOffset',
    ours: 'OFFSETS_NOT_CONTIGUOUS',
  },
  {
    name: 'out_of_order_ok',
    file: craft(`{"b":${entry('F32', '[1]', '[4,8]')},"a":${F32_1}}`, { dataLength: 8 }),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'end_before_start',
    file: craft(`{"a":${entry('F32', '[1]', '[4,0]')}}`, { dataLength: 4 }),
    reference: 'InvalidOffset',
    ours: 'OFFSETS_NOT_CONTIGUOUS',
  },
  {
    name: 'duplicate_key',
    file: craft(`{"a":${F32_1},"a":${entry('F64', '[1]', '[0,8]')}}`, { dataLength: 8 }),
    reference: 'accept',
    ours: 'DUPLICATE_KEY',
    deliberate: 'the README says duplicates are disallowed; last-wins hides tensors from reviewers',
  },
  {
    name: 'duplicate_metadata',
    file: craft(`{"__metadata__":{"a":"1"},"__metadata__":{"b":"2"},"a":${F32_1}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'DUPLICATE_KEY',
  },
  {
    name: 'unknown_dtype',
    file: craft(`{"a":${entry('Q7_EVIL', '[1]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'UNKNOWN_DTYPE',
  },
  {
    name: 'lowercase_dtype',
    file: craft(`{"a":${entry('float32', '[1]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'UNKNOWN_DTYPE',
  },
  {
    name: 'extra_field',
    file: craft('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"evil":1}}', { dataLength: 4 }),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'missing_field',
    file: craft('{"a":{"dtype":"F32","shape":[1]}}', { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'BAD_TENSOR_ENTRY',
  },
  {
    name: 'metadata_nested',
    file: craft(`{"__metadata__":{"x":{"nested":[1,2]}},"a":${F32_1}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'METADATA_NOT_STRING_MAP',
  },
  {
    name: 'metadata_number',
    file: craft(`{"__metadata__":{"x":1},"a":${F32_1}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'METADATA_NOT_STRING_MAP',
  },
  {
    name: 'proto_key',
    file: craft(`{"__proto__":${F32_1}}`, { dataLength: 4 }),
    reference: 'accept',
    ours: 'accept',
  },
  { name: 'header_null', file: craft('null'), reference: 'JSON error', ours: 'HEADER_NOT_OBJECT' },
  { name: 'header_array', file: craft('[]'), reference: 'JSON error', ours: 'HEADER_NOT_OBJECT' },
  { name: 'header_number', file: craft('1'), reference: 'JSON error', ours: 'HEADER_NOT_OBJECT' },
  { name: 'header_empty_obj', file: craft('{}'), reference: 'accept', ours: 'accept' },
  { name: 'header_len_zero', file: craft(''), reference: 'JSON error', ours: 'HEADER_NOT_JSON' },
  {
    name: 'file_lt_8_bytes',
    file: new Uint8Array([1, 2, 3]),
    reference: 'HeaderTooSmall',
    ours: 'HEADER_TOO_SMALL',
  },
  {
    name: 'header_len_past_eof',
    file: craft('{}', { headerLength: 1000n }),
    reference: 'InvalidHeaderLength',
    ours: 'HEADER_LENGTH_EXCEEDS_FILE',
  },
  {
    name: 'header_len_over_100MB',
    file: craft('{}', { headerLength: 100_000_001n }),
    reference: 'HeaderTooLarge',
    ours: 'HEADER_TOO_LARGE',
  },
  {
    name: 'header_len_u64max',
    file: craft('{}', { headerLength: (1n << 64n) - 1n }),
    reference: 'HeaderTooLarge',
    ours: 'HEADER_TOO_LARGE',
  },
  {
    name: 'offsets_2p64',
    file: craft(`{"a":${entry('F32', '[1]', '[0,18446744073709551616]')}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'INTEGER_OUT_OF_RANGE',
    deliberate: 'integers above 2^53 - 1 cannot be represented exactly in JS',
  },
  {
    name: 'shape_overflow',
    file: craft(`{"a":${entry('F32', '[4294967296,4294967296]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'ValidationOverflow',
    ours: 'OVERFLOW',
  },
  {
    name: 'shape_x_dtype_overflow',
    file: craft(`{"a":${entry('I32', '[2,9223372036854775807]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'ValidationOverflow',
    ours: 'INTEGER_OUT_OF_RANGE',
    deliberate: 'integers above 2^53 - 1 cannot be represented exactly in JS',
  },
  {
    name: 'f4_odd_count',
    file: craft(`{"a":${entry('F4', '[3]', '[0,2]')}}`, { dataLength: 2 }),
    reference: 'MisalignedSlice',
    ours: 'MISALIGNED_SUBBYTE',
  },
  {
    name: 'leading_ws',
    file: craft(`  \n{"a":${F32_1}}`, { dataLength: 4 }),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'trailing_ws_pad',
    file: craft(`{"a":${F32_1}}    `, { dataLength: 4 }),
    reference: 'accept',
    ours: 'accept',
  },
  {
    name: 'trailing_nul_pad',
    file: craft(`{"a":${F32_1}}\0\0`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'HEADER_NOT_JSON',
  },
  {
    name: 'bom_prefix',
    file: craft('', {
      rawHeader: new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode(`{"a":${F32_1}}`)]),
      dataLength: 4,
    }),
    reference: 'JSON error',
    ours: 'HEADER_NOT_JSON',
  },
  {
    name: 'neg_offset',
    file: craft(`{"a":${entry('F32', '[1]', '[-4,0]')}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'BAD_INTEGER',
  },
  {
    name: 'float_dim',
    file: craft(`{"a":${entry('F32', '[1.5]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'BAD_INTEGER',
  },
  {
    name: 'exp_notation_dim',
    file: craft(`{"a":${entry('F32', '[1e0]', '[0,4]')}}`, { dataLength: 4 }),
    reference: 'JSON error',
    ours: 'BAD_INTEGER',
  },
  {
    name: 'deep_nesting_meta',
    file: craft(`{"__metadata__":${'['.repeat(5000)}${']'.repeat(5000)}}`),
    reference: 'JSON error',
    ours: 'METADATA_NOT_STRING_MAP',
  },
  {
    name: 'invalid_utf8',
    file: craft('', {
      rawHeader: new Uint8Array([
        ...new TextEncoder().encode('{"a'),
        0xff,
        ...new TextEncoder().encode(`":${F32_1}}`),
      ]),
      dataLength: 4,
    }),
    reference: 'InvalidHeader',
    ours: 'HEADER_NOT_UTF8',
  },
];

function verdict(file: Uint8Array): DcaeErrorCode | 'accept' {
  try {
    parseSafetensors(file);
    return 'accept';
  } catch (error) {
    if (!DcaeError.is(error)) throw error;
    return error.code;
  }
}

describe('E1 case table (docs/reliability.md Appendix B)', () => {
  it('has all 42 cases', () => {
    expect(CASES).toHaveLength(42);
    expect(new Set(CASES.map(({ name }) => name)).size).toBe(42);
  });

  it.each(CASES)('$name → $ours (reference: $reference)', ({ file, reference, ours, deliberate }) => {
    expect(verdict(file)).toBe(ours);
    if (deliberate !== undefined) {
      // A deliberate difference must really differ from the reference's verdict.
      expect(
        reference === 'accept'
          ? ours !== 'accept'
          : !MATCHING_CODES[reference].includes(ours as DcaeErrorCode),
      ).toBe(true);
    } else if (reference === 'accept') {
      expect(ours).toBe('accept');
    } else {
      expect(MATCHING_CODES[reference]).toContain(ours);
    }
  });
});
