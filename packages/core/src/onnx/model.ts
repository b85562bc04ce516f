import type { DType } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';

/**
 * Plain-object form of the ONNX models dcae builds. `GraphBuilder.build()` produces it,
 * `serializeModel()` encodes it and `describeModel()` prints it.
 */

/** opset 18 (ai.onnx), IR version 8: supported by onnxruntime-node and onnxruntime-web 1.30. */
export const ONNX_OPSET = 18;
export const ONNX_IR_VERSION = 8;
/** Version of onnxruntime's contrib domain `com.microsoft` imported when a node uses it. */
export const MICROSOFT_DOMAIN = 'com.microsoft';
export const MICROSOFT_OPSET = 1;

/** ONNX TensorProto.DataType values for the dtypes dcae uses. */
export const ONNX_DATA_TYPE: Readonly<Record<DType, number>> = {
  float32: 1,
  uint8: 2,
  int8: 3,
  int32: 6,
  int64: 7,
  bool: 9,
  float16: 10,
  bfloat16: 16,
};

/** A dimension: a size, or a symbolic name for a dynamic axis. */
export type Dim = number | string;

export interface ValueInfo {
  readonly name: string;
  readonly dtype: DType;
  /** `undefined` = unknown rank (used for subgraph outputs). */
  readonly shape: readonly Dim[] | undefined;
}

export type AttributeValue =
  | { readonly kind: 'int'; readonly value: number }
  | { readonly kind: 'float'; readonly value: number }
  | { readonly kind: 'string'; readonly value: string }
  | { readonly kind: 'ints'; readonly value: readonly number[] }
  | { readonly kind: 'floats'; readonly value: readonly number[] }
  | { readonly kind: 'graph'; readonly value: OnnxGraph };

export interface OnnxNode {
  readonly name: string;
  readonly opType: string;
  /** The op's domain; absent or `''` is the default ONNX domain (`com.microsoft`: onnxruntime's contrib ops). */
  readonly domain?: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attributes: Readonly<Record<string, AttributeValue>>;
}

/** Initializer bytes: stored in the model, or referenced in an external file (ONNX external data). */
export type InitializerData =
  | { readonly kind: 'inline'; readonly tensor: HostTensor }
  | {
      readonly kind: 'external';
      readonly dtype: DType;
      readonly shape: readonly number[];
      /** File name relative to the model, e.g. `diffusion_pytorch_model.safetensors`. */
      readonly location: string;
      /** Absolute byte offset in that file. */
      readonly offset: number;
      readonly length: number;
    };

export interface OnnxInitializer {
  readonly name: string;
  readonly data: InitializerData;
}

export interface OnnxGraph {
  readonly name: string;
  readonly nodes: readonly OnnxNode[];
  readonly initializers: readonly OnnxInitializer[];
  readonly inputs: readonly ValueInfo[];
  readonly outputs: readonly ValueInfo[];
}

export interface OnnxModel {
  readonly graph: OnnxGraph;
  readonly opset: number;
  readonly irVersion: number;
  readonly producer: string;
  readonly metadata: Readonly<Record<string, string>>;
}

export function initializerShape(data: InitializerData): readonly number[] {
  return data.kind === 'inline' ? data.tensor.shape : data.shape;
}

export function initializerDType(data: InitializerData): DType {
  return data.kind === 'inline' ? data.tensor.dtype : data.dtype;
}

/** The non-default domains the nodes of `graph` (and its subgraphs) use, sorted. */
export function nodeDomains(graph: OnnxGraph): string[] {
  const found = new Set<string>();
  const visit = (g: OnnxGraph): void => {
    for (const node of g.nodes) {
      if (node.domain) found.add(node.domain);
      for (const attr of Object.values(node.attributes)) if (attr.kind === 'graph') visit(attr.value);
    }
  };
  visit(graph);
  return [...found].sort();
}

/** Every external file an ONNX model's initializers point into (sorted, unique). */
export function externalLocations(model: OnnxModel): string[] {
  const found = new Set<string>();
  const visit = (graph: OnnxGraph): void => {
    for (const init of graph.initializers) if (init.data.kind === 'external') found.add(init.data.location);
    for (const node of graph.nodes)
      for (const attr of Object.values(node.attributes)) if (attr.kind === 'graph') visit(attr.value);
  };
  visit(model.graph);
  return [...found].sort();
}
