/**
 * A read-only walk over ONNX protobuf bytes that finds the two facts the web adapter must know
 * before onnxruntime-web sees a model: whether it computes in float16 (WebGPU without
 * `shader-f16` then returns wrong numbers without an error), and which external data files its
 * tensors name. Weight payloads are skipped, never decoded.
 */
import { DcaeError } from '@dcae/core';

export interface ModelScan {
  /** A float16 tensor, value type or cast target appears anywhere in the model. */
  readonly usesFloat16: boolean;
  /** The `location` of every tensor stored as external data, in order of first use. */
  readonly externalLocations: readonly string[];
}

const FLOAT16 = 10;
/** Attributes that name an element type (Cast.to, RandomNormal.dtype, …). */
const TYPE_ATTRIBUTES = new Set(['to', 'dtype', 'output_dtype']);

// Field numbers from onnx.proto3.
const MODEL = { graph: 7, functions: 25 };
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12, valueInfo: 13 };
const NODE = { attribute: 5 };
const FUNCTION = { node: 7 };
const ATTRIBUTE = { name: 1, i: 3, t: 5, g: 6, tensors: 10, graphs: 11 };
const TENSOR = { dataType: 2, externalData: 13 };
const ENTRY = { key: 1, value: 2 };
const VALUE_INFO = { type: 2 };
const TYPE = { tensor: 1, sequence: 4, map: 5, optional: 9, sparseTensor: 8 };
const TENSOR_TYPE = { elemType: 1 };

/** Scans a serialized ModelProto; throws SESSION_FAILED when the bytes are not valid protobuf. */
export function scanModel(model: Uint8Array): ModelScan {
  const found = { usesFloat16: false, externalLocations: new Set<string>() };
  try {
    for (const [field, value] of fields(model)) {
      if (field === MODEL.graph && value instanceof Uint8Array) scanGraph(value, found);
      else if (field === MODEL.functions && value instanceof Uint8Array) {
        for (const [f, node] of fields(value))
          if (f === FUNCTION.node && node instanceof Uint8Array) scanNode(node, found);
      }
    }
  } catch (cause) {
    if (!(cause instanceof ProtobufError)) throw cause;
    throw new DcaeError(
      'SESSION_FAILED',
      `The model bytes are not a valid ONNX protobuf: ${cause.message}. Pass the bytes of an .onnx file or of serializeModel().`,
      { cause },
    );
  }
  return { usesFloat16: found.usesFloat16, externalLocations: [...found.externalLocations] };
}

interface Found {
  usesFloat16: boolean;
  externalLocations: Set<string>;
}

function scanGraph(graph: Uint8Array, found: Found): void {
  for (const [field, value] of fields(graph)) {
    if (!(value instanceof Uint8Array)) continue;
    if (field === GRAPH.node) scanNode(value, found);
    else if (field === GRAPH.initializer) scanTensor(value, found);
    else if (field === GRAPH.input || field === GRAPH.output || field === GRAPH.valueInfo) {
      for (const [f, type] of fields(value))
        if (f === VALUE_INFO.type && type instanceof Uint8Array) scanType(type, found);
    }
  }
}

function scanNode(node: Uint8Array, found: Found): void {
  for (const [field, value] of fields(node))
    if (field === NODE.attribute && value instanceof Uint8Array) scanAttribute(value, found);
}

function scanAttribute(attribute: Uint8Array, found: Found): void {
  let name = '';
  let int: number | undefined;
  for (const [field, value] of fields(attribute)) {
    if (field === ATTRIBUTE.name && value instanceof Uint8Array) name = new TextDecoder().decode(value);
    else if (field === ATTRIBUTE.i && typeof value === 'number') int = value;
    else if ((field === ATTRIBUTE.t || field === ATTRIBUTE.tensors) && value instanceof Uint8Array)
      scanTensor(value, found);
    else if ((field === ATTRIBUTE.g || field === ATTRIBUTE.graphs) && value instanceof Uint8Array)
      scanGraph(value, found);
  }
  if (TYPE_ATTRIBUTES.has(name) && int === FLOAT16) found.usesFloat16 = true;
}

function scanTensor(tensor: Uint8Array, found: Found): void {
  for (const [field, value] of fields(tensor)) {
    if (field === TENSOR.dataType && value === FLOAT16) found.usesFloat16 = true;
    else if (field === TENSOR.externalData && value instanceof Uint8Array) {
      let key = '';
      let text = '';
      for (const [f, v] of fields(value)) {
        if (!(v instanceof Uint8Array)) continue;
        if (f === ENTRY.key) key = new TextDecoder().decode(v);
        else if (f === ENTRY.value) text = new TextDecoder().decode(v);
      }
      if (key === 'location') found.externalLocations.add(text);
    }
  }
}

function scanType(type: Uint8Array, found: Found): void {
  for (const [field, value] of fields(type)) {
    if (!(value instanceof Uint8Array)) continue;
    if (field === TYPE.tensor || field === TYPE.sparseTensor) {
      for (const [f, v] of fields(value))
        if (f === TENSOR_TYPE.elemType && v === FLOAT16) found.usesFloat16 = true;
    } else if (field === TYPE.sequence || field === TYPE.optional) {
      // Sequence and Optional hold one TypeProto (field 1).
      for (const [f, v] of fields(value)) if (f === 1 && v instanceof Uint8Array) scanType(v, found);
    } else if (field === TYPE.map) {
      // Map: key_type (1, an element type), value_type (2, a TypeProto).
      for (const [f, v] of fields(value)) if (f === 2 && v instanceof Uint8Array) scanType(v, found);
    }
  }
}

class ProtobufError extends Error {}

/**
 * The fields of one message: varints as numbers (exact up to 2^53, enough for field values the
 * scan reads), length-delimited fields as subarrays, fixed-width fields skipped (yielded as null).
 */
function* fields(bytes: Uint8Array): Generator<[number, number | Uint8Array | null]> {
  let pos = 0;
  const varint = (): number => {
    let value = 0;
    let scale = 1;
    for (let shift = 0; shift < 70; shift += 7) {
      if (pos >= bytes.length) throw new ProtobufError(`a varint runs past the end at byte ${pos}`);
      const byte = bytes[pos++]!;
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
      scale *= 128;
    }
    throw new ProtobufError(`a varint is longer than 10 bytes at byte ${pos}`);
  };
  while (pos < bytes.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wire = tag % 8;
    if (field === 0) throw new ProtobufError(`field number 0 at byte ${pos}`);
    if (wire === 0) yield [field, varint()];
    else if (wire === 2) {
      const length = varint();
      if (pos + length > bytes.length)
        throw new ProtobufError(
          `field ${field} claims ${length} bytes at byte ${pos} but the message ends at ${bytes.length}`,
        );
      yield [field, bytes.subarray(pos, pos + length)];
      pos += length;
    } else if (wire === 1 || wire === 5) {
      pos += wire === 1 ? 8 : 4;
      if (pos > bytes.length) throw new ProtobufError(`a fixed-width field runs past the end`);
      yield [field, null];
    } else throw new ProtobufError(`unsupported wire type ${wire} at byte ${pos}`);
  }
}
