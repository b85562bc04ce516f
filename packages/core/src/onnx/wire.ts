/**
 * A read-only protobuf wire-format walker for untrusted bytes. It never copies payloads (length-
 * delimited fields come back as subarrays), bounds every read by the enclosing message, and turns
 * every malformation into DcaeError PROTOBUF_PARSE naming the byte offset and the message path.
 */
import { DcaeError } from '../errors.js';

export const WIRE = { varint: 0, fixed64: 1, bytes: 2, fixed32: 5 } as const;

/** One field of a message: varints as a signed int64 `number` (exact up to 2^53), payloads as views. */
export interface WireField {
  readonly field: number;
  readonly wire: number;
  /** varint: the value read as int64 (two's complement); fixed: 0. */
  readonly int: number;
  /** length-delimited and fixed-width fields: their bytes (a view, not a copy). */
  readonly bytes: Uint8Array | undefined;
  /** Byte offset of the field's payload from the start of the model. */
  readonly at: number;
}

/** The model being read: its first byte (to report absolute offsets) and its name for messages. */
export interface WireContext {
  readonly base: number;
  readonly source: string | undefined;
}

export function parseError(context: WireContext, path: string, at: number, what: string): DcaeError {
  return new DcaeError(
    'PROTOBUF_PARSE',
    `${context.source ?? 'ONNX model'}: not a valid ONNX protobuf at byte ${at} (${path}): ${what}. ` +
      'The file is truncated or is not an .onnx model; download or export it again.',
    { source: context.source, detail: { offset: at, path } },
  );
}

/**
 * Decodes the varint at `pos` as an int64 (two's complement, so negative values come back
 * negative); returns the value and the next position, or undefined when it is cut short or longer
 * than 10 bytes.
 */
function varintAt(bytes: Uint8Array, pos: number): [value: number, next: number] | undefined {
  let low = 0;
  let scale = 1;
  let big: bigint | undefined;
  for (let i = 0; i < 10 && pos < bytes.length; i++) {
    const byte = bytes[pos++]!;
    if (i < 7) low += (byte & 0x7f) * scale;
    else big = (big ?? BigInt(low)) | (BigInt(byte & 0x7f) << BigInt(7 * i));
    scale *= 128;
    if (byte < 0x80) return [big === undefined ? low : Number(BigInt.asIntN(64, big)), pos];
  }
  return undefined;
}

/** Splits one message into its fields, in order. Throws PROTOBUF_PARSE on malformed input. */
export function* wireFields(message: Uint8Array, context: WireContext, path: string): Generator<WireField> {
  const start = message.byteOffset - context.base;
  let pos = 0;
  const fail = (what: string): never => {
    throw parseError(context, path, start + pos, what);
  };
  const varint = (): number => {
    const read = varintAt(message, pos) ?? fail('a varint is cut short or longer than 10 bytes');
    pos = read[1];
    return read[0];
  };
  while (pos < message.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field <= 0 || field >= 2 ** 29) fail(`invalid field number ${field}`);
    if (wire === WIRE.varint) {
      const at = start + pos;
      yield { field, wire, int: varint(), bytes: undefined, at };
    } else if (wire === WIRE.bytes) {
      const length = varint();
      if (length < 0 || length > message.length - pos)
        fail(`field ${field} claims ${length} bytes but ${message.length - pos} remain in its message`);
      const at = start + pos;
      pos += length;
      yield { field, wire, int: 0, bytes: message.subarray(pos - length, pos), at };
    } else if (wire === WIRE.fixed64 || wire === WIRE.fixed32) {
      const size = wire === WIRE.fixed64 ? 8 : 4;
      if (size > message.length - pos) fail(`a fixed${size * 8} field runs past the end of its message`);
      const at = start + pos;
      pos += size;
      yield { field, wire, int: 0, bytes: message.subarray(pos - size, pos), at };
    } else fail(`wire type ${wire} (field ${field}) is not used by ONNX`);
  }
}

/** Reads a repeated int64 field, packed or not, appending to `out`. */
export function readInts(field: WireField, context: WireContext, path: string, out: number[]): void {
  if (field.wire === WIRE.varint) {
    out.push(field.int);
    return;
  }
  if (field.wire !== WIRE.bytes) throw wrongWire(field, 'a varint or packed varints', context, path);
  const bytes = field.bytes!;
  for (let pos = 0; pos < bytes.length;) {
    const read = varintAt(bytes, pos);
    if (read === undefined)
      throw parseError(context, path, field.at + pos, 'a packed varint is cut short or longer than 10 bytes');
    out.push(read[0]);
    pos = read[1];
  }
}

/** How many values a repeated field holds: packed varints, packed fixed-width values, or one unpacked value. */
export function countValues(field: WireField, width: 0 | 4 | 8, context: WireContext, path: string): number {
  if (field.wire !== WIRE.bytes) return 1;
  const bytes = field.bytes!;
  if (width > 0) {
    if (bytes.length % width !== 0)
      throw parseError(
        context,
        path,
        field.at,
        `a packed list of ${width}-byte values is ${bytes.length} bytes long`,
      );
    return bytes.length / width;
  }
  let count = 0;
  for (const byte of bytes) if (byte < 0x80) count++;
  if (bytes.length > 0 && bytes[bytes.length - 1]! >= 0x80)
    throw parseError(context, path, field.at + bytes.length, 'a packed varint list is cut short');
  return count;
}

export function wrongWire(field: WireField, expected: string, context: WireContext, path: string): DcaeError {
  return parseError(
    context,
    path,
    field.at,
    `field ${field.field} has wire type ${field.wire}; expected ${expected}`,
  );
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A string field; invalid UTF-8 is a parse error. */
export function readString(field: WireField, context: WireContext, path: string): string {
  if (field.wire !== WIRE.bytes) throw wrongWire(field, 'a length-delimited string', context, path);
  try {
    return utf8.decode(field.bytes);
  } catch {
    throw parseError(context, path, field.at, `field ${field.field} is not valid UTF-8`);
  }
}

/** A nested message field's bytes. */
export function readMessage(field: WireField, context: WireContext, path: string): Uint8Array {
  if (field.wire !== WIRE.bytes) throw wrongWire(field, 'a nested message', context, path);
  return field.bytes!;
}

/** A varint field (int32/int64/enum). */
export function readInt(field: WireField, context: WireContext, path: string): number {
  if (field.wire !== WIRE.varint) throw wrongWire(field, 'a varint', context, path);
  return field.int;
}
