import type { JsonValueKind } from '../config/json-scanner.js';
import { JsonScanner, JsonSyntaxError, readJsonValue } from '../config/json-scanner.js';
import type { DcaeErrorCode, DcaeErrorHint } from '../errors.js';
import { DcaeError, formatShape } from '../errors.js';
import type { SafetensorsDType } from './dtype.js';
import { SAFETENSORS_DTYPE_BITS, isSafetensorsDType } from './dtype.js';

export interface SafetensorsTensorInfo {
  readonly dtype: SafetensorsDType;
  readonly shape: readonly number[];
  /** Byte range of the tensor's data, relative to `dataStart`. */
  readonly begin: number;
  readonly end: number;
}

export interface SafetensorsHeader {
  /** Every tensor, in data order (by `begin`). Names are arbitrary strings, `__proto__` and `""` included. */
  readonly tensors: ReadonlyMap<string, SafetensorsTensorInfo>;
  /** The `__metadata__` string map (empty when absent). */
  readonly metadata: ReadonlyMap<string, string>;
  /** Absolute offset of the data section: 8 + the header length. */
  readonly dataStart: number;
  /** Bytes of tensor data; `dataStart + dataLength` is the file size. */
  readonly dataLength: number;
}

/** Policy limits, stricter than the format where the format allows costly files (docs/reliability.md §2.2). */
export interface SafetensorsOptions {
  /** Largest accepted header, in bytes. @defaultValue 100_000_000 (the reference reader's cap) */
  maxHeaderBytes?: number;
  /** Most tensors accepted in one file. @defaultValue 100_000 */
  maxTensors?: number;
  /** Longest accepted tensor name, in UTF-8 bytes. @defaultValue 1024 */
  maxNameBytes?: number;
}

const DEFAULT_LIMITS: Required<SafetensorsOptions> = {
  maxHeaderBytes: 100_000_000,
  maxTensors: 100_000,
  maxNameBytes: 1024,
};

/** Deepest JSON nesting accepted anywhere in a header (unknown tensor fields are read and ignored). */
const MAX_DEPTH = 64;

const METADATA_KEY = '__metadata__';

const UINT64_MAX = (1n << 64n) - 1n;

export function withDefaultLimits(options: SafetensorsOptions): Required<SafetensorsOptions> {
  const limits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof SafetensorsOptions)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `Option ${key} is ${value}; it must be a non-negative integer.`,
      );
    }
    limits[key] = value;
  }
  return limits;
}

function fail(
  code: DcaeErrorCode,
  source: string,
  message: string,
  detail?: Record<string, unknown>,
  hint?: DcaeErrorHint,
): never {
  throw new DcaeError(code, `${source}: ${message}`, { source, detail, hint });
}

/** The header length N from the file's first 8 bytes (u64 little-endian), checked against the cap and the file size. */
export function readHeaderLength(
  prefix: Uint8Array,
  fileSize: number,
  source: string,
  limits: Required<SafetensorsOptions>,
): number {
  if (fileSize < 8 || prefix.byteLength < 8) {
    fail(
      'HEADER_TOO_SMALL',
      source,
      `file is ${fileSize} bytes; a safetensors file starts with an 8-byte header length.`,
    );
  }
  const length = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (length > BigInt(limits.maxHeaderBytes)) {
    fail(
      'HEADER_TOO_LARGE',
      source,
      `header length is ${length} bytes, over the limit of ${limits.maxHeaderBytes}.`,
      { headerLength: length.toString(), maxHeaderBytes: limits.maxHeaderBytes },
      {
        library: 'If the file is trusted and really has such a header, raise maxHeaderBytes.',
        cli: 'the file is damaged or not a safetensors file (real headers are a few MB at most); download or export it again',
      },
    );
  }
  if (8n + length > BigInt(fileSize)) {
    fail(
      'HEADER_LENGTH_EXCEEDS_FILE',
      source,
      `header length is ${length} bytes but the file has only ${fileSize - 8} bytes after the length field; the file is truncated or not safetensors.`,
    );
  }
  return Number(length);
}

/** Parses and validates the header JSON (bytes `8 .. 8 + N` of a `fileSize`-byte file) by the reference rules (docs/reliability.md §2.1). */
export function parseHeader(
  headerBytes: Uint8Array,
  fileSize: number,
  source: string,
  limits: Required<SafetensorsOptions>,
): SafetensorsHeader {
  const text = decodeUtf8(headerBytes, source);
  const { tensors, metadata } = parseHeaderJson(text, source, limits);
  const ordered = checkLayout(tensors, source);
  const dataStart = 8 + headerBytes.byteLength;
  const dataLength = ordered.at(-1)?.[1].end ?? 0;
  const expectedSize = dataStart + dataLength;
  if (fileSize > expectedSize) {
    fail(
      'TRAILING_BYTES',
      source,
      `file has ${fileSize - expectedSize} bytes after the last tensor (expected ${expectedSize} bytes in all); extra data is not allowed.`,
    );
  }
  if (fileSize < expectedSize) {
    fail(
      'TRUNCATED_DATA',
      source,
      `file is ${fileSize} bytes but its header describes ${expectedSize}; the file is truncated (an interrupted download?).`,
    );
  }
  return { tensors: new Map(ordered), metadata, dataStart, dataLength };
}

function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    // fatal: no U+FFFD substitution; ignoreBOM: keep a BOM so the JSON parser rejects it, as the reference does.
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new DcaeError('HEADER_NOT_UTF8', `${source}: header is not valid UTF-8.`, { source, cause });
  }
}

interface ParsedHeaderJson {
  tensors: Map<string, SafetensorsTensorInfo>;
  metadata: Map<string, string>;
}

function parseHeaderJson(
  text: string,
  source: string,
  limits: Required<SafetensorsOptions>,
): ParsedHeaderJson {
  const scanner = new JsonScanner(text);
  const tensors = new Map<string, SafetensorsTensorInfo>();
  let metadata: Map<string, string> | undefined;
  /**
   * Fails with `code` unless the next value is a `kind`; a syntax error there is reported as such.
   * The message is built only on failure: this runs for every value of headers with 10^5 tensors.
   */
  const expectKind = (kind: JsonValueKind, code: DcaeErrorCode, what: () => string): void => {
    const next = scanner.peekKind();
    if (next === kind) return;
    if (next === 'invalid' || next === 'end of input') scanner.readLiteral();
    fail(code, source, `${what()} but is ${article(next)}.`);
  };

  /** `"__metadata__": {"key": "value", ...}` */
  const readMetadata = (): Map<string, string> => {
    expectKind('object', 'METADATA_NOT_STRING_MAP', () => `"${METADATA_KEY}" must be an object of strings`);
    const entries = new Map<string, string>();
    scanner.readObject((key) => {
      if (entries.has(key)) fail('DUPLICATE_KEY', source, `"${METADATA_KEY}" has key ${quote(key)} twice.`);
      expectKind(
        'string',
        'METADATA_NOT_STRING_MAP',
        () => `"${METADATA_KEY}" entry ${quote(key)} must be a string`,
      );
      entries.set(key, scanner.readString());
    });
    return entries;
  };

  /** `[1, 2, 3]`: exact non-negative integers up to 2^53 - 1. */
  const readIntegers = (name: string, field: string): number[] => {
    const where = () => `"${field}" of tensor ${quote(name)}`;
    expectKind('array', 'BAD_TENSOR_ENTRY', () => `${where()} must be a list of integers`);
    const values: number[] = [];
    scanner.readArray(() => {
      expectKind('number', 'BAD_TENSOR_ENTRY', () => `each entry of ${where()} must be an integer`);
      values.push(parseInteger(scanner.readNumber(), where, source));
    });
    return values;
  };

  /** `{"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}`; other fields are read and ignored, as the reference does. */
  const readTensorInfo = (name: string): SafetensorsTensorInfo => {
    expectKind(
      'object',
      'BAD_TENSOR_ENTRY',
      () => `tensor ${quote(name)} must be an object with "dtype", "shape" and "data_offsets"`,
    );
    const fields = new Set<string>();
    let dtype: SafetensorsDType | undefined;
    let shape: number[] | undefined;
    let offsets: number[] | undefined;
    scanner.readObject((field) => {
      if (fields.has(field)) {
        fail('DUPLICATE_KEY', source, `tensor ${quote(name)} has field ${quote(field)} twice.`);
      }
      fields.add(field);
      if (field === 'dtype') dtype = readDType(name);
      else if (field === 'shape') shape = readIntegers(name, field);
      else if (field === 'data_offsets') offsets = readIntegers(name, field);
      else readJsonValue(scanner, MAX_DEPTH - 2);
    });
    const missing = ['dtype', 'shape', 'data_offsets'].filter((field) => !fields.has(field));
    if (dtype === undefined || shape === undefined || offsets === undefined) {
      fail('BAD_TENSOR_ENTRY', source, `tensor ${quote(name)} lacks ${missing.map(quote).join(' and ')}.`);
    }
    if (offsets.length !== 2) {
      fail(
        'BAD_TENSOR_ENTRY',
        source,
        `"data_offsets" of tensor ${quote(name)} must be [begin, end] but has ${offsets.length} entries.`,
      );
    }
    return { dtype, shape, begin: offsets[0]!, end: offsets[1]! };
  };

  const readDType = (name: string): SafetensorsDType => {
    expectKind('string', 'BAD_TENSOR_ENTRY', () => `"dtype" of tensor ${quote(name)} must be a string`);
    const dtype = scanner.readString();
    if (!isSafetensorsDType(dtype)) {
      fail(
        'UNKNOWN_DTYPE',
        source,
        `tensor ${quote(name)} has dtype ${quote(dtype)}; known dtypes (case-sensitive) are ${Object.keys(SAFETENSORS_DTYPE_BITS).join(' ')}.`,
      );
    }
    return dtype;
  };

  try {
    if (scanner.peekKind() !== 'object') {
      const kind = scanner.peekKind();
      readJsonValue(scanner, MAX_DEPTH);
      if (!scanner.atEnd()) scanner.fail(`unexpected ${scanner.describeNext()} after the JSON value`);
      fail('HEADER_NOT_OBJECT', source, `header must be a JSON object of tensors but is ${article(kind)}.`);
    }
    scanner.readObject((name) => {
      if (name === METADATA_KEY ? metadata !== undefined : tensors.has(name)) {
        fail('DUPLICATE_KEY', source, `header has key ${quote(name)} twice; names must be unique.`);
      }
      if (name === METADATA_KEY) {
        metadata = readMetadata();
        return;
      }
      // A UTF-16 code unit is at most 3 UTF-8 bytes, so short names need no counting.
      const nameBytes = name.length * 3 > limits.maxNameBytes ? utf8Length(name) : 0;
      if (nameBytes > limits.maxNameBytes) {
        fail(
          'NAME_TOO_LONG',
          source,
          `a tensor name is ${nameBytes} bytes long, over the limit of ${limits.maxNameBytes} (it starts ${quote(name.slice(0, 40))}).`,
        );
      }
      if (tensors.size >= limits.maxTensors) {
        fail(
          'TOO_MANY_TENSORS',
          source,
          `header lists more than ${limits.maxTensors} tensors. If the file is trusted, raise maxTensors.`,
        );
      }
      tensors.set(name, readTensorInfo(name));
    });
    if (!scanner.atEnd()) scanner.fail(`unexpected ${scanner.describeNext()} after the header object`);
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    const code = error.reason === 'duplicate-key' ? 'DUPLICATE_KEY' : 'HEADER_NOT_JSON';
    throw new DcaeError(
      code,
      `${source}: header is not valid JSON: ${error.message} (character ${error.position} of the header).`,
      {
        source,
        cause: error,
        detail: { position: error.position },
      },
    );
  }
  return { tensors, metadata: metadata ?? new Map<string, string>() };
}

function parseInteger(literal: string, where: () => string, source: string): number {
  if (literal.startsWith('-') || /[.eE]/.test(literal)) {
    fail(
      'BAD_INTEGER',
      source,
      `${where()} holds ${literal}; offsets and dims must be non-negative integers written without a fraction or exponent.`,
    );
  }
  const value = Number(literal);
  if (value > Number.MAX_SAFE_INTEGER) {
    fail(
      'INTEGER_OUT_OF_RANGE',
      source,
      `${where()} holds ${literal}, above 2^53 - 1, the largest integer JavaScript represents exactly.`,
    );
  }
  return value;
}

/**
 * Sorts tensors by offsets and checks them as the reference does: the data ranges tile the data
 * section from 0 with no gap or overlap, and each range holds exactly `numel × bits / 8` bytes.
 */
function checkLayout(
  tensors: ReadonlyMap<string, SafetensorsTensorInfo>,
  source: string,
): [string, SafetensorsTensorInfo][] {
  const ordered = [...tensors].sort(([, a], [, b]) => a.begin - b.begin || a.end - b.end);
  let previous: string | undefined;
  let expectedBegin = 0;
  for (const [name, info] of ordered) {
    const { begin, end } = info;
    if (end < begin) {
      fail(
        'OFFSETS_NOT_CONTIGUOUS',
        source,
        `tensor ${quote(name)} has data_offsets [${begin}, ${end}], ending before it begins.`,
      );
    }
    if (begin !== expectedBegin) {
      const after =
        previous === undefined
          ? 'the data section starts at 0'
          : `the previous tensor ${quote(previous)} ends at ${expectedBegin}`;
      const problem = begin < expectedBegin ? 'overlaps' : 'leaves a gap';
      fail(
        'OFFSETS_NOT_CONTIGUOUS',
        source,
        `tensor ${quote(name)} has data_offsets [${begin}, ${end}] but ${after}: it ${problem}. Tensors must tile the data section exactly.`,
      );
    }
    checkSize(name, info, source);
    expectedBegin = end;
    previous = name;
  }
  return ordered;
}

/** `end - begin` must be `numel × bits / 8`, with every product checked against u64 overflow. */
function checkSize(name: string, { dtype, shape, begin, end }: SafetensorsTensorInfo, source: string): void {
  const described = () => `tensor ${quote(name)} (${dtype} ${formatShape(shape)})`;
  let count = 1n;
  for (const dim of shape) {
    count *= BigInt(dim);
    if (count > UINT64_MAX) fail('OVERFLOW', source, `${described()} has more than 2^64 elements.`);
  }
  const bits = count * BigInt(SAFETENSORS_DTYPE_BITS[dtype]);
  if (bits > UINT64_MAX) fail('OVERFLOW', source, `${described()} has more than 2^64 bits of data.`);
  if (bits % 8n !== 0n) {
    fail('MISALIGNED_SUBBYTE', source, `${described()} is ${bits} bits, not a whole number of bytes.`);
  }
  if (bits / 8n !== BigInt(end - begin)) {
    fail(
      'SIZE_MISMATCH',
      source,
      `${described()} needs ${bits / 8n} bytes but its data_offsets [${begin}, ${end}] span ${end - begin}.`,
      { expected: Number(bits / 8n), actual: end - begin },
    );
  }
}

/** UTF-8 length of well-formed text: a surrogate pair (4 bytes) counts 2 per code unit. */
function utf8Length(text: string): number {
  let length = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    length += unit < 0x80 ? 1 : unit < 0x800 || (unit >= 0xd800 && unit <= 0xdfff) ? 2 : 3;
  }
  return length;
}

function quote(text: string): string {
  return JSON.stringify(text);
}

function article(kind: JsonValueKind): string {
  if (kind === 'null') return 'null';
  return kind === 'object' || kind === 'array' ? `an ${kind}` : `a ${kind}`;
}
