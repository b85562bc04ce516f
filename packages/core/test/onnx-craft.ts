/**
 * Hand-crafted ONNX models for the loader tests (docs/reliability.md Appendix B): any field value,
 * including the ones serializeModel() would never write (duplicate keys, custom domains, negative
 * dims, wrong data sizes). Field numbers from onnx/onnx.proto.
 */
import { ProtoWriter } from '../src/onnx/proto.js';

export interface CraftTensor {
  readonly name: string;
  /** TensorProto.DataType. @defaultValue 1 (float) */
  readonly dataType?: number;
  readonly dims: readonly (number | bigint)[];
  readonly raw?: Uint8Array;
  readonly floatData?: readonly number[];
  /** external_data entries, written in order (duplicates kept); sets data_location = EXTERNAL. */
  readonly external?: readonly (readonly [string, string])[];
}

export interface CraftNode {
  readonly opType: string;
  readonly domain?: string;
  readonly name?: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  /** Graph-valued attributes (If branches, Loop bodies). */
  readonly graphs?: Readonly<Record<string, CraftGraph>>;
}

export interface CraftValue {
  readonly name: string;
  readonly dims?: readonly (number | string)[];
  readonly elemType?: number;
}

export interface CraftGraph {
  readonly name?: string;
  readonly nodes: readonly CraftNode[];
  readonly initializers?: readonly CraftTensor[];
  readonly inputs?: readonly CraftValue[];
  readonly outputs: readonly CraftValue[];
}

export interface CraftModel {
  readonly graph: CraftGraph;
  readonly opsets?: readonly (readonly [domain: string, version: number])[];
  readonly functions?: readonly { domain: string; name: string; nodes: readonly CraftNode[] }[];
}

export function tensorProto(t: CraftTensor): ProtoWriter {
  const w = new ProtoWriter();
  if (t.dims.length > 0) w.packedInts(1, t.dims);
  w.int(2, t.dataType ?? 1);
  w.string(8, t.name);
  if (t.raw) w.bytes(9, t.raw);
  if (t.floatData) w.packedFloats(4, t.floatData);
  if (t.external) {
    for (const [key, value] of t.external) w.message(13, new ProtoWriter().string(1, key).string(2, value));
    w.int(14, 1);
  }
  return w;
}

function nodeProto(n: CraftNode): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name ?? `${n.opType}_node`);
  w.string(4, n.opType);
  for (const [name, graph] of Object.entries(n.graphs ?? {}))
    w.message(5, new ProtoWriter().string(1, name).message(6, graphProto(graph)).int(20, 5));
  if (n.domain !== undefined) w.string(7, n.domain);
  return w;
}

function valueInfo(v: CraftValue): ProtoWriter {
  const tensorType = new ProtoWriter().int(1, v.elemType ?? 1);
  if (v.dims) {
    const shape = new ProtoWriter();
    for (const d of v.dims)
      shape.message(1, typeof d === 'number' ? new ProtoWriter().int(1, d) : new ProtoWriter().string(2, d));
    tensorType.message(2, shape);
  }
  return new ProtoWriter().string(1, v.name).message(2, new ProtoWriter().message(1, tensorType));
}

export function graphProto(g: CraftGraph): ProtoWriter {
  const w = new ProtoWriter();
  for (const n of g.nodes) w.message(1, nodeProto(n));
  w.string(2, g.name ?? 'g');
  for (const t of g.initializers ?? []) w.message(5, tensorProto(t));
  for (const v of g.inputs ?? []) w.message(11, valueInfo(v));
  for (const v of g.outputs) w.message(12, valueInfo(v));
  return w;
}

export function craftModel(m: CraftModel): Uint8Array {
  const w = new ProtoWriter().int(1, 8).string(2, 'craft');
  w.message(7, graphProto(m.graph));
  for (const [domain, version] of m.opsets ?? [['', 13]])
    w.message(8, new ProtoWriter().string(1, domain).int(2, version));
  for (const f of m.functions ?? []) {
    const fw = new ProtoWriter().string(1, f.name);
    for (const n of f.nodes) fw.message(7, nodeProto(n));
    fw.string(10, f.domain);
    w.message(25, fw);
  }
  return w.finish();
}

/** The one-node `Identity(W) → Y` model of Appendix B, with W as given. */
export function identityModel(w: CraftTensor): Uint8Array {
  return craftModel({
    graph: {
      nodes: [{ opType: 'Identity', inputs: [w.name], outputs: ['Y'] }],
      initializers: [w],
      outputs: [{ name: 'Y', dims: w.dims.map(Number), elemType: w.dataType ?? 1 }],
    },
  });
}

/** float32 little-endian bytes. */
export function f32Bytes(values: readonly number[]): Uint8Array {
  return new Uint8Array(Float32Array.from(values).buffer);
}

/** W = float[4] stored in `location` at `offset` with `length` (16 unless given). */
export function externalIdentity(location: string, extra: Partial<Record<'offset' | 'length', string>> = {}) {
  return identityModel({
    name: 'W',
    dims: [4],
    external: [
      ['location', location],
      ['offset', extra.offset ?? '0'],
      ['length', extra.length ?? '16'],
    ],
  });
}
