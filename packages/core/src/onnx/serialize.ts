import { DcaeError } from '../errors.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type {
  AttributeValue,
  Dim,
  OnnxGraph,
  OnnxInitializer,
  OnnxModel,
  OnnxNode,
  ValueInfo,
} from './model.js';
import { MICROSOFT_DOMAIN, MICROSOFT_OPSET, nodeDomains, ONNX_DATA_TYPE } from './model.js';
import { ProtoWriter } from './proto.js';

/** The largest model a single protobuf may hold; bigger models need external data. */
export const MAX_PROTOBUF_BYTES = 2 ** 31 - 1;

const ATTRIBUTE_TYPE = { float: 1, int: 2, string: 3, graph: 5, floats: 6, ints: 7 } as const;

/**
 * Encodes a model as ONNX protobuf bytes. Identical models give byte-identical output.
 * Throws MODEL_TOO_LARGE when the result would pass the 2 GB protobuf limit.
 */
export function serializeModel(model: OnnxModel): Uint8Array {
  const w = new ProtoWriter();
  w.int(1, model.irVersion);
  w.string(2, model.producer);
  w.message(7, graphProto(model.graph));
  w.message(8, new ProtoWriter().string(1, '').int(2, model.opset));
  for (const domain of nodeDomains(model.graph)) {
    if (domain !== MICROSOFT_DOMAIN) {
      throw new DcaeError(
        'GRAPH_INVALID',
        `ONNX model "${model.graph.name}" has a node in domain "${domain}"; dcae writes only the default domain and ` +
          `"${MICROSOFT_DOMAIN}" (onnxruntime's contrib ops).`,
        { detail: { domain } },
      );
    }
    w.message(8, new ProtoWriter().string(1, domain).int(2, MICROSOFT_OPSET));
  }
  for (const [key, value] of Object.entries(model.metadata).sort(([a], [b]) =>
    a < b ? -1 : a > b ? 1 : 0,
  )) {
    w.message(14, new ProtoWriter().string(1, key).string(2, value));
  }
  if (w.length > MAX_PROTOBUF_BYTES) {
    throw new DcaeError(
      'MODEL_TOO_LARGE',
      `ONNX model "${model.graph.name}" would be ${w.length} bytes, over the 2 GB protobuf limit. ` +
        'Keep weights as external data (initializers of kind "external") instead of inline.',
      { detail: { bytes: w.length, limit: MAX_PROTOBUF_BYTES } },
    );
  }
  return w.finish();
}

function graphProto(graph: OnnxGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const node of graph.nodes) w.message(1, nodeProto(node));
  w.string(2, graph.name);
  for (const init of graph.initializers) w.message(5, tensorProto(init));
  for (const input of graph.inputs) w.message(11, valueInfoProto(input));
  for (const output of graph.outputs) w.message(12, valueInfoProto(output));
  return w;
}

function nodeProto(node: OnnxNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const input of node.inputs) w.string(1, input);
  for (const output of node.outputs) w.string(2, output);
  w.string(3, node.name);
  w.string(4, node.opType);
  for (const [name, attr] of Object.entries(node.attributes)) w.message(5, attributeProto(name, attr));
  if (node.domain) w.string(7, node.domain);
  return w;
}

function attributeProto(name: string, attr: AttributeValue): ProtoWriter {
  const w = new ProtoWriter().string(1, name);
  switch (attr.kind) {
    case 'float':
      w.float(2, attr.value);
      break;
    case 'int':
      w.int(3, attr.value);
      break;
    case 'string':
      w.string(4, attr.value);
      break;
    case 'graph':
      w.message(6, graphProto(attr.value));
      break;
    case 'floats':
      w.packedFloats(7, attr.value);
      break;
    case 'ints':
      w.packedInts(8, attr.value);
      break;
  }
  return w.int(20, ATTRIBUTE_TYPE[attr.kind]);
}

function tensorProto({ name, data }: OnnxInitializer): ProtoWriter {
  const w = new ProtoWriter();
  const shape = data.kind === 'inline' ? data.tensor.shape : data.shape;
  const dtype = data.kind === 'inline' ? data.tensor.dtype : data.dtype;
  if (shape.length > 0) w.packedInts(1, shape);
  w.int(2, ONNX_DATA_TYPE[dtype]);
  w.string(8, name);
  if (data.kind === 'inline') {
    w.bytes(9, rawBytes(data.tensor));
  } else {
    w.message(13, new ProtoWriter().string(1, 'location').string(2, data.location));
    w.message(13, new ProtoWriter().string(1, 'offset').string(2, String(data.offset)));
    w.message(13, new ProtoWriter().string(1, 'length').string(2, String(data.length)));
    w.int(14, 1); // data_location = EXTERNAL
  }
  return w;
}

/** Little-endian bytes of a tensor, as ONNX `raw_data` expects (no copy on little-endian hosts). */
export function rawBytes(tensor: HostTensor): Uint8Array {
  const { data } = tensor;
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function valueInfoProto(info: ValueInfo): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, ONNX_DATA_TYPE[info.dtype]);
  if (info.shape !== undefined) tensorType.message(2, shapeProto(info.shape));
  return new ProtoWriter().string(1, info.name).message(2, new ProtoWriter().message(1, tensorType));
}

function shapeProto(shape: readonly Dim[]): ProtoWriter {
  const w = new ProtoWriter();
  for (const dim of shape) {
    const d = new ProtoWriter();
    if (typeof dim === 'number') d.int(1, dim);
    else d.string(2, dim);
    w.message(1, d);
  }
  return w;
}
