/**
 * `inspectModel()`: a read-only pre-scan of serialized ONNX ModelProto bytes. It reads the facts a
 * loader must check before onnxruntime sees an untrusted model (opsets, inputs and outputs, every
 * node with its op and where it sits, every tensor with its dtype, shape and where its bytes are)
 * without decoding weight payloads. Field numbers follow onnx/onnx.proto.
 */
import { DcaeError } from '../errors.js';
import { MAX_PROTOBUF_BYTES } from './serialize.js';
import type { WireContext, WireField } from './wire.js';
import {
  countValues,
  parseError,
  readInt,
  readInts,
  readMessage,
  readString,
  WIRE,
  wireFields,
} from './wire.js';

/** ONNX TensorProto.DataType → name and bits per element (0: variable size, e.g. strings). */
export const ONNX_DTYPES: Readonly<Record<number, { readonly name: string; readonly bits: number }>> = {
  1: { name: 'float32', bits: 32 },
  2: { name: 'uint8', bits: 8 },
  3: { name: 'int8', bits: 8 },
  4: { name: 'uint16', bits: 16 },
  5: { name: 'int16', bits: 16 },
  6: { name: 'int32', bits: 32 },
  7: { name: 'int64', bits: 64 },
  8: { name: 'string', bits: 0 },
  9: { name: 'bool', bits: 8 },
  10: { name: 'float16', bits: 16 },
  11: { name: 'float64', bits: 64 },
  12: { name: 'uint32', bits: 32 },
  13: { name: 'uint64', bits: 64 },
  14: { name: 'complex64', bits: 64 },
  15: { name: 'complex128', bits: 128 },
  16: { name: 'bfloat16', bits: 16 },
  17: { name: 'float8e4m3fn', bits: 8 },
  18: { name: 'float8e4m3fnuz', bits: 8 },
  19: { name: 'float8e5m2', bits: 8 },
  20: { name: 'float8e5m2fnuz', bits: 8 },
  21: { name: 'uint4', bits: 4 },
  22: { name: 'int4', bits: 4 },
  23: { name: 'float4e2m1', bits: 4 },
  24: { name: 'float8e8m0', bits: 8 },
  25: { name: 'uint2', bits: 2 },
  26: { name: 'int2', bits: 2 },
};

const FLOAT16 = 10;

export interface InspectLimits {
  /** Largest model accepted (MODEL_TOO_LARGE above it). @defaultValue 2^31 − 1, the protobuf limit */
  readonly maxModelBytes?: number;
  /** Deepest message nesting accepted (PROTOBUF_PARSE beyond it), as protobuf's own default. @defaultValue 100 */
  readonly maxDepth?: number;
  /** Names the model in messages, e.g. its path. */
  readonly source?: string;
}

export interface OnnxOpsetImport {
  readonly domain: string;
  readonly version: number;
}

/** A graph input or output. Dims: a size, a symbolic name, or null when unknown. */
export interface OnnxValueSummary {
  readonly name: string;
  /** Element type name (`float32`, …), `'non-tensor'` for sequences/maps, or `'unknown'`. */
  readonly dtype: string;
  /** undefined when the rank is unknown. */
  readonly dims: readonly (number | string | null)[] | undefined;
}

export interface OnnxNodeSummary {
  /** Position in the graph (or function) that holds the node. */
  readonly index: number;
  /** Where the node sits, e.g. `graph.node[3]` or `graph.node[3](If).then_branch.node[0]`. */
  readonly path: string;
  readonly name: string;
  readonly opType: string;
  /** `''` is the default ONNX domain. */
  readonly domain: string;
}

export type OnnxTensorStorage =
  | {
      readonly kind: 'inline';
      /** The field holding the values (`raw_data`, `float_data`, …), or undefined when none is set. */
      readonly field: string | undefined;
      /** raw_data: its byte length; typed fields: how many values they hold. */
      readonly count: number;
    }
  | {
      readonly kind: 'external';
      /** Every `external_data` entry, in order, duplicates included. */
      readonly entries: readonly (readonly [key: string, value: string])[];
      readonly location: string | undefined;
      /** Parsed `offset` (0 when absent; NaN when not a decimal integer). */
      readonly offset: number;
      /** Parsed `length` (undefined when absent: to the end of the file; NaN when not a decimal integer). */
      readonly length: number | undefined;
    };

export interface OnnxTensorSummary {
  readonly name: string;
  /** Where the tensor sits, e.g. `graph.initializer[2]` or `graph.node[0](Constant).attribute(value)`. */
  readonly path: string;
  readonly dataType: number;
  /** Element type name, or `unknown(<n>)`. */
  readonly dtype: string;
  readonly dims: readonly number[];
  readonly storage: OnnxTensorStorage;
}

export interface ModelInspection {
  readonly byteLength: number;
  readonly irVersion: number | undefined;
  readonly producer: string;
  readonly opsetImports: readonly OnnxOpsetImport[];
  /** Inputs of the main graph that are not initializers. */
  readonly inputs: readonly OnnxValueSummary[];
  readonly outputs: readonly OnnxValueSummary[];
  /** Every node: the main graph, subgraphs (If/Loop/Scan bodies) and model-local functions. */
  readonly nodes: readonly OnnxNodeSummary[];
  /** Every tensor: initializers of all graphs, sparse initializers' parts and tensor attributes. */
  readonly tensors: readonly OnnxTensorSummary[];
  /** Model-local functions, as `domain` + `name` (a node calls one by these). */
  readonly functions: readonly { readonly domain: string; readonly name: string }[];
  /** A float16 tensor, value type or cast target appears anywhere in the model. */
  readonly usesFloat16: boolean;
  /** The `location` of every external tensor, in order of first use. */
  readonly externalLocations: readonly string[];
}

/**
 * Reads the structure of serialized ModelProto bytes. Throws MODEL_TOO_LARGE past
 * `limits.maxModelBytes` and PROTOBUF_PARSE on anything that is not well-formed protobuf with
 * ONNX's field types (truncation, bad varints, lengths past the end, wrong wire types, nesting
 * deeper than `limits.maxDepth`, invalid UTF-8). Weight payloads are never copied or decoded.
 */
export function inspectModel(model: Uint8Array, limits: InspectLimits = {}): ModelInspection {
  const { maxModelBytes = MAX_PROTOBUF_BYTES, maxDepth = 100, source } = limits;
  if (!(model instanceof Uint8Array)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `inspectModel() takes ONNX bytes as a Uint8Array; got ${String(model)}.`,
    );
  }
  if (model.byteLength > maxModelBytes) throw modelTooLarge(model.byteLength, maxModelBytes, source);
  const scan = new Scan({ base: model.byteOffset, source }, maxDepth);
  let irVersion: number | undefined;
  let producer = '';
  const opsetImports: OnnxOpsetImport[] = [];
  let main:
    { inputs: OnnxValueSummary[]; outputs: OnnxValueSummary[]; initializers: Set<string> } | undefined;
  for (const f of scan.fields(model, 'model', 0)) {
    if (f.field === 1) irVersion = readInt(f, scan.context, 'model.ir_version');
    else if (f.field === 2) producer = readString(f, scan.context, 'model.producer_name');
    else if (f.field === 7) main = scan.graph(readMessage(f, scan.context, 'model.graph'), 'graph', 1);
    else if (f.field === 8)
      opsetImports.push(scan.opset(readMessage(f, scan.context, 'model.opset_import'), 1));
    else if (f.field === 20) scan.trainingInfo(readMessage(f, scan.context, 'model.training_info'), 1);
    else if (f.field === 25) scan.function(readMessage(f, scan.context, 'model.functions'), 1);
  }
  if (main === undefined) throw parseError(scan.context, 'model', 0, 'the model has no graph (field 7)');
  const initializers = main.initializers;
  return {
    byteLength: model.byteLength,
    irVersion,
    producer,
    opsetImports,
    inputs: main.inputs.filter((i) => !initializers.has(i.name)),
    outputs: main.outputs,
    nodes: scan.nodes,
    tensors: scan.tensors,
    functions: scan.functions,
    usesFloat16: scan.usesFloat16,
    externalLocations: [...scan.locations],
  };
}

export function modelTooLarge(bytes: number, limit: number, source: string | undefined): DcaeError {
  return new DcaeError(
    'MODEL_TOO_LARGE',
    `${source ?? 'ONNX model'}: ${bytes} bytes, over the limit of ${limit} bytes for one ONNX protobuf. ` +
      'Export it with its weights as external data, or raise the limit if the runtime allows it.',
    { source, detail: { bytes, limit } },
  );
}

/** Attributes that name an element type (Cast.to, RandomNormal.dtype, …). */
const TYPE_ATTRIBUTES = new Set(['to', 'dtype', 'output_dtype']);

/** TensorProto value fields: name and the width of one packed value (0: varint, -1: strings). */
const TENSOR_VALUES: Readonly<Record<number, readonly [string, 0 | 4 | 8 | -1]>> = {
  4: ['float_data', 4],
  5: ['int32_data', 0],
  6: ['string_data', -1],
  7: ['int64_data', 0],
  10: ['double_data', 8],
  11: ['uint64_data', 0],
};

class Scan {
  readonly nodes: OnnxNodeSummary[] = [];
  readonly tensors: OnnxTensorSummary[] = [];
  readonly functions: { domain: string; name: string }[] = [];
  readonly locations = new Set<string>();
  usesFloat16 = false;

  constructor(
    readonly context: WireContext,
    readonly maxDepth: number,
  ) {}

  /** The fields of a message nested `depth` levels deep. */
  fields(bytes: Uint8Array, path: string, depth: number): Generator<WireField> {
    if (depth > this.maxDepth) {
      throw parseError(
        this.context,
        path,
        bytes.byteOffset - this.context.base,
        `messages are nested more than ${this.maxDepth} levels deep`,
      );
    }
    return wireFields(bytes, this.context, path);
  }

  opset(bytes: Uint8Array, depth: number): OnnxOpsetImport {
    let domain = '';
    let version = 0;
    for (const f of this.fields(bytes, 'opset_import', depth)) {
      if (f.field === 1) domain = readString(f, this.context, 'opset_import.domain');
      else if (f.field === 2) version = readInt(f, this.context, 'opset_import.version');
    }
    return { domain, version };
  }

  graph(
    bytes: Uint8Array,
    path: string,
    depth: number,
  ): { inputs: OnnxValueSummary[]; outputs: OnnxValueSummary[]; initializers: Set<string> } {
    const inputs: OnnxValueSummary[] = [];
    const outputs: OnnxValueSummary[] = [];
    const initializers = new Set<string>();
    let nodeIndex = 0;
    let initIndex = 0;
    let sparseIndex = 0;
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 1) {
        const index = nodeIndex++;
        this.node(readMessage(f, this.context, path), `${path}.node[${index}]`, index, depth + 1);
      } else if (f.field === 5) {
        const at = `${path}.initializer[${initIndex++}]`;
        initializers.add(this.tensor(readMessage(f, this.context, at), at, depth + 1).name);
      } else if (f.field === 15) {
        const at = `${path}.sparse_initializer[${sparseIndex++}]`;
        this.sparseTensor(readMessage(f, this.context, at), at, depth + 1);
      } else if (f.field === 11)
        inputs.push(this.valueInfo(readMessage(f, this.context, path), `${path}.input`, depth + 1));
      else if (f.field === 12)
        outputs.push(this.valueInfo(readMessage(f, this.context, path), `${path}.output`, depth + 1));
      else if (f.field === 13)
        this.valueInfo(readMessage(f, this.context, path), `${path}.value_info`, depth + 1);
    }
    return { inputs, outputs, initializers };
  }

  node(bytes: Uint8Array, path: string, index: number, depth: number): void {
    let name = '';
    let opType = '';
    let domain = '';
    const attributes: Uint8Array[] = [];
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 3) name = readString(f, this.context, `${path}.name`);
      else if (f.field === 4) opType = readString(f, this.context, `${path}.op_type`);
      else if (f.field === 7) domain = readString(f, this.context, `${path}.domain`);
      else if (f.field === 5) attributes.push(readMessage(f, this.context, `${path}.attribute`));
    }
    this.nodes.push({ index, path, name, opType, domain });
    for (const attribute of attributes) this.attribute(attribute, `${path}(${opType})`, depth + 1);
  }

  attribute(bytes: Uint8Array, nodePath: string, depth: number): void {
    let name = '';
    let int: number | undefined;
    const tensors: Uint8Array[] = [];
    const sparse: Uint8Array[] = [];
    const graphs: Uint8Array[] = [];
    for (const f of this.fields(bytes, `${nodePath}.attribute`, depth)) {
      const at = `${nodePath}.attribute`;
      if (f.field === 1) name = readString(f, this.context, `${at}.name`);
      else if (f.field === 3) int = readInt(f, this.context, `${at}.i`);
      else if (f.field === 5 || f.field === 10) tensors.push(readMessage(f, this.context, at));
      else if (f.field === 22 || f.field === 23) sparse.push(readMessage(f, this.context, at));
      else if (f.field === 6 || f.field === 11) graphs.push(readMessage(f, this.context, at));
      else if (f.field === 14 || f.field === 15) this.type(readMessage(f, this.context, at), at, depth + 1);
    }
    const at = `${nodePath}.${name || 'attribute'}`;
    if (TYPE_ATTRIBUTES.has(name) && int === FLOAT16) this.usesFloat16 = true;
    tensors.forEach((t, i) => this.tensor(t, tensors.length > 1 ? `${at}[${i}]` : at, depth + 1));
    sparse.forEach((t, i) => this.sparseTensor(t, sparse.length > 1 ? `${at}[${i}]` : at, depth + 1));
    graphs.forEach((g, i) => this.graph(g, graphs.length > 1 ? `${at}[${i}]` : at, depth + 1));
  }

  function(bytes: Uint8Array, depth: number): void {
    let name = '';
    let domain = '';
    const nodes: Uint8Array[] = [];
    for (const f of this.fields(bytes, 'functions', depth)) {
      if (f.field === 1) name = readString(f, this.context, 'function.name');
      else if (f.field === 10) domain = readString(f, this.context, 'function.domain');
      else if (f.field === 7) nodes.push(readMessage(f, this.context, 'function.node'));
      else if (f.field === 12)
        this.valueInfo(readMessage(f, this.context, 'function'), 'function.value_info', depth + 1);
    }
    this.functions.push({ domain, name });
    const path = `function(${domain ? `${domain}.` : ''}${name})`;
    nodes.forEach((node, index) => this.node(node, `${path}.node[${index}]`, index, depth + 1));
  }

  trainingInfo(bytes: Uint8Array, depth: number): void {
    for (const f of this.fields(bytes, 'training_info', depth)) {
      if (f.field === 1)
        this.graph(readMessage(f, this.context, 'training_info'), 'training_info.initialization', depth + 1);
      else if (f.field === 2)
        this.graph(readMessage(f, this.context, 'training_info'), 'training_info.algorithm', depth + 1);
    }
  }

  tensor(bytes: Uint8Array, path: string, depth: number): OnnxTensorSummary {
    const dims: number[] = [];
    let dataType = 0;
    let name = '';
    let rawLength: number | undefined;
    let valueField: string | undefined;
    let valueCount = 0;
    let external = false;
    const entries: (readonly [string, string])[] = [];
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 1) readInts(f, this.context, `${path}.dims`, dims);
      else if (f.field === 2) dataType = readInt(f, this.context, `${path}.data_type`);
      else if (f.field === 8) name = readString(f, this.context, `${path}.name`);
      else if (f.field === 9) {
        rawLength = readMessage(f, this.context, `${path}.raw_data`).length;
      } else if (f.field === 13)
        entries.push(this.entry(readMessage(f, this.context, path), `${path}.external_data`, depth + 1));
      else if (f.field === 14) external = readInt(f, this.context, `${path}.data_location`) === 1;
      else if (TENSOR_VALUES[f.field] !== undefined) {
        const [field, width] = TENSOR_VALUES[f.field]!;
        valueField = field;
        if (width === -1) {
          readMessage(f, this.context, `${path}.${field}`);
          valueCount += 1;
        } else {
          if (
            f.wire !== WIRE.bytes &&
            f.wire !== (width === 0 ? WIRE.varint : width === 4 ? WIRE.fixed32 : WIRE.fixed64)
          )
            throw parseError(
              this.context,
              `${path}.${field}`,
              f.at,
              `field ${f.field} has wire type ${f.wire}`,
            );
          valueCount += countValues(f, width, this.context, `${path}.${field}`);
        }
      }
    }
    if (dataType === FLOAT16) this.usesFloat16 = true;
    let storage: OnnxTensorStorage;
    if (external || entries.length > 0) {
      const value = (key: string): string | undefined => entries.find(([k]) => k === key)?.[1];
      const location = value('location');
      if (location !== undefined) this.locations.add(location);
      const offset = value('offset');
      const length = value('length');
      storage = {
        kind: 'external',
        entries,
        location,
        offset: offset === undefined ? 0 : decimal(offset),
        length: length === undefined ? undefined : decimal(length),
      };
    } else if (rawLength !== undefined) storage = { kind: 'inline', field: 'raw_data', count: rawLength };
    else storage = { kind: 'inline', field: valueField, count: valueCount };
    const summary: OnnxTensorSummary = {
      name,
      path: name ? `${path} "${name}"` : path,
      dataType,
      dtype: ONNX_DTYPES[dataType]?.name ?? `unknown(${dataType})`,
      dims,
      storage,
    };
    this.tensors.push(summary);
    return summary;
  }

  sparseTensor(bytes: Uint8Array, path: string, depth: number): void {
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 1) this.tensor(readMessage(f, this.context, path), `${path}.values`, depth + 1);
      else if (f.field === 2) this.tensor(readMessage(f, this.context, path), `${path}.indices`, depth + 1);
      else if (f.field === 3) readInts(f, this.context, `${path}.dims`, []);
    }
  }

  entry(bytes: Uint8Array, path: string, depth: number): readonly [string, string] {
    let key = '';
    let value = '';
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 1) key = readString(f, this.context, `${path}.key`);
      else if (f.field === 2) value = readString(f, this.context, `${path}.value`);
    }
    return [key, value];
  }

  valueInfo(bytes: Uint8Array, path: string, depth: number): OnnxValueSummary {
    let name = '';
    let type: { dtype: string; dims: (number | string | null)[] | undefined } = {
      dtype: 'unknown',
      dims: undefined,
    };
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 1) name = readString(f, this.context, `${path}.name`);
      else if (f.field === 2) type = this.type(readMessage(f, this.context, path), `${path}.type`, depth + 1);
    }
    return { name, ...type };
  }

  /** A TypeProto: the tensor element type and shape, or 'non-tensor' for sequences, maps and optionals. */
  type(
    bytes: Uint8Array,
    path: string,
    depth: number,
  ): { dtype: string; dims: (number | string | null)[] | undefined } {
    let result: { dtype: string; dims: (number | string | null)[] | undefined } = {
      dtype: 'unknown',
      dims: undefined,
    };
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 1 || f.field === 8)
        result = this.tensorType(readMessage(f, this.context, path), path, depth + 1);
      else if (f.field === 4 || f.field === 9 || f.field === 5) {
        // Sequence/Optional hold a TypeProto in field 1; Map holds its value TypeProto in field 2.
        const inner = f.field === 5 ? 2 : 1;
        for (const g of this.fields(readMessage(f, this.context, path), path, depth + 1))
          if (g.field === inner) this.type(readMessage(g, this.context, path), path, depth + 2);
        result = { dtype: 'non-tensor', dims: undefined };
      }
    }
    return result;
  }

  tensorType(
    bytes: Uint8Array,
    path: string,
    depth: number,
  ): { dtype: string; dims: (number | string | null)[] | undefined } {
    let elemType = 0;
    let dims: (number | string | null)[] | undefined;
    for (const f of this.fields(bytes, path, depth)) {
      if (f.field === 1) elemType = readInt(f, this.context, `${path}.elem_type`);
      else if (f.field === 2) {
        dims = [];
        for (const d of this.fields(readMessage(f, this.context, path), `${path}.shape`, depth + 1)) {
          if (d.field !== 1) continue;
          let dim: number | string | null = null;
          for (const g of this.fields(readMessage(d, this.context, path), `${path}.shape.dim`, depth + 2)) {
            if (g.field === 1) dim = readInt(g, this.context, `${path}.shape.dim_value`);
            else if (g.field === 2) dim = readString(g, this.context, `${path}.shape.dim_param`);
          }
          dims.push(dim);
        }
      }
    }
    if (elemType === FLOAT16) this.usesFloat16 = true;
    return { dtype: ONNX_DTYPES[elemType]?.name ?? 'unknown', dims };
  }
}

/** A non-negative decimal integer string as a number; NaN for anything else or past 2^53. */
function decimal(text: string): number {
  if (!/^\d{1,16}$/.test(text)) return NaN;
  const value = Number(text);
  return Number.isSafeInteger(value) ? value : NaN;
}
