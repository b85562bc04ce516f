/**
 * An independent protobuf reader for the ONNX tests: a generic wire-format walker plus the few
 * onnx.proto message layouts dcae writes (field numbers copied from onnx/onnx.proto), decoding
 * into plain objects that tests compare with hand-written expectations.
 */

export interface WireField {
  readonly field: number;
  readonly wire: 0 | 1 | 2 | 5;
  /** varint: the raw unsigned value; fixed64/fixed32/length-delimited: the bytes. */
  readonly value: bigint | Uint8Array;
}

function readVarint(bytes: Uint8Array, at: number): [bigint, number] {
  let result = 0n;
  let shift = 0n;
  for (let i = at; i < bytes.length; i++) {
    const byte = bytes[i]!;
    result |= BigInt(byte & 0x7f) << shift;
    if ((byte & 0x80) === 0) return [result, i + 1];
    shift += 7n;
    if (shift > 63n) throw new Error(`varint longer than 10 bytes at ${at}`);
  }
  throw new Error(`truncated varint at ${at}`);
}

/** Splits one message into its fields, in order. Throws on malformed input. */
export function walk(bytes: Uint8Array): WireField[] {
  const fields: WireField[] = [];
  let at = 0;
  while (at < bytes.length) {
    const [tag, next] = readVarint(bytes, at);
    at = next;
    const field = Number(tag >> 3n);
    const wire = Number(tag & 7n);
    if (field === 0) throw new Error('field number 0');
    switch (wire) {
      case 0: {
        const [value, after] = readVarint(bytes, at);
        fields.push({ field, wire, value });
        at = after;
        break;
      }
      case 1:
      case 5: {
        const size = wire === 1 ? 8 : 4;
        if (at + size > bytes.length) throw new Error(`truncated fixed${size * 8} at ${at}`);
        fields.push({ field, wire, value: bytes.subarray(at, at + size) });
        at += size;
        break;
      }
      case 2: {
        const [length, after] = readVarint(bytes, at);
        const end = after + Number(length);
        if (end > bytes.length) throw new Error(`length ${length} at ${after} runs past the end`);
        fields.push({ field, wire, value: bytes.subarray(after, end) });
        at = end;
        break;
      }
      default:
        throw new Error(`unsupported wire type ${wire} at ${at}`);
    }
  }
  return fields;
}

type Kind = 'int64' | 'string' | 'bytes' | 'float' | 'int64s' | 'floats' | Schema;
interface Schema {
  readonly [field: number]: readonly [name: string, kind: Kind, repeated?: 'repeated'];
}

const text = new TextDecoder('utf-8', { fatal: true });

function scalar(kind: Kind, f: WireField): unknown {
  const expectWire = (wire: number): void => {
    if (f.wire !== wire) throw new Error(`field ${f.field}: wire type ${f.wire}, expected ${wire}`);
  };
  switch (kind) {
    case 'int64':
      expectWire(0);
      return BigInt.asIntN(64, f.value as bigint);
    case 'float':
      expectWire(5);
      return new DataView((f.value as Uint8Array).slice().buffer).getFloat32(0, true);
    case 'string':
      expectWire(2);
      return text.decode(f.value as Uint8Array);
    case 'bytes':
      expectWire(2);
      return (f.value as Uint8Array).slice();
    default:
      expectWire(2);
      return decode(f.value as Uint8Array, kind as Schema);
  }
}

/** Repeated numbers, accepting both packed (one length-delimited field) and unpacked encodings. */
function numbers(kind: 'int64s' | 'floats', fs: readonly WireField[]): number[] {
  const out: number[] = [];
  for (const f of fs) {
    if (f.wire === 2) {
      const b = f.value as Uint8Array;
      if (kind === 'floats') {
        const view = new DataView(b.slice().buffer);
        for (let i = 0; i < b.length; i += 4) out.push(view.getFloat32(i, true));
      } else {
        for (let at = 0; at < b.length;) {
          const [v, next] = readVarint(b, at);
          out.push(Number(BigInt.asIntN(64, v)));
          at = next;
        }
      }
    } else {
      out.push(Number(scalar(kind === 'floats' ? 'float' : 'int64', f)));
    }
  }
  return out;
}

/** Decodes a message by schema; unknown fields are an error (dcae writes only what it declares). */
export function decode(bytes: Uint8Array, schema: Schema): Record<string, unknown> {
  const fields = walk(bytes);
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (!schema[f.field]) throw new Error(`unexpected field ${f.field} (wire ${f.wire})`);
  }
  for (const [number, [name, kind, repeated]] of Object.entries(schema)) {
    const matching = fields.filter((f) => f.field === Number(number));
    if (kind === 'int64s' || kind === 'floats') {
      if (matching.length) out[name] = numbers(kind, matching);
    } else if (repeated) {
      if (matching.length) out[name] = matching.map((f) => scalar(kind, f));
    } else if (matching.length) {
      if (matching.length > 1) throw new Error(`field ${name} (${number}) appears ${matching.length} times`);
      out[name] = scalar(kind, matching[0]!);
    }
  }
  return out;
}

// onnx.proto layouts (only the fields dcae emits).
const Dimension: Schema = { 1: ['dim_value', 'int64'], 2: ['dim_param', 'string'] };
const TensorShape: Schema = { 1: ['dim', Dimension, 'repeated'] };
const TensorType: Schema = { 1: ['elem_type', 'int64'], 2: ['shape', TensorShape] };
const Type: Schema = { 1: ['tensor_type', TensorType] };
const ValueInfo: Schema = { 1: ['name', 'string'], 2: ['type', Type] };
const StringString: Schema = { 1: ['key', 'string'], 2: ['value', 'string'] };
const Tensor: Schema = {
  1: ['dims', 'int64s'],
  2: ['data_type', 'int64'],
  8: ['name', 'string'],
  9: ['raw_data', 'bytes'],
  13: ['external_data', StringString, 'repeated'],
  14: ['data_location', 'int64'],
};
const Graph: Record<number, readonly [string, Kind, 'repeated'?]> = {};
const Attribute: Schema = {
  1: ['name', 'string'],
  2: ['f', 'float'],
  3: ['i', 'int64'],
  4: ['s', 'string'],
  6: ['g', Graph],
  7: ['floats', 'floats'],
  8: ['ints', 'int64s'],
  20: ['type', 'int64'],
};
const Node: Schema = {
  1: ['input', 'string', 'repeated'],
  2: ['output', 'string', 'repeated'],
  3: ['name', 'string'],
  4: ['op_type', 'string'],
  5: ['attribute', Attribute, 'repeated'],
};
Object.assign(Graph, {
  1: ['node', Node, 'repeated'],
  2: ['name', 'string'],
  5: ['initializer', Tensor, 'repeated'],
  11: ['input', ValueInfo, 'repeated'],
  12: ['output', ValueInfo, 'repeated'],
});
const OperatorSetId: Schema = { 1: ['domain', 'string'], 2: ['version', 'int64'] };
export const ModelSchema: Schema = {
  1: ['ir_version', 'int64'],
  2: ['producer_name', 'string'],
  7: ['graph', Graph],
  8: ['opset_import', OperatorSetId, 'repeated'],
  14: ['metadata_props', StringString, 'repeated'],
};

export function decodeModel(bytes: Uint8Array): Record<string, unknown> {
  return decode(bytes, ModelSchema);
}
