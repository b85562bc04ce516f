import { DcaeError, formatShape, invariant } from '../errors.js';
import { float32ToBfloat16 } from '../tensor/bfloat16.js';
import type { DType } from '../tensor/dtype.js';
import { float32ToFloat16 } from '../tensor/float16.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type {
  AttributeValue,
  Dim,
  InitializerData,
  OnnxGraph,
  OnnxInitializer,
  OnnxModel,
  OnnxNode,
  ValueInfo,
} from './model.js';
import { initializerDType, MICROSOFT_DOMAIN, ONNX_DATA_TYPE, ONNX_IR_VERSION, ONNX_OPSET } from './model.js';

/** A named tensor in a graph under construction. */
export class Value {
  constructor(
    readonly name: string,
    readonly dtype: DType,
  ) {}
}

/** Resolves a checkpoint key (a module path plus a parameter name) to initializer data. */
export type ParamResolver = (key: string, expectedShape: readonly number[]) => InitializerData;

export interface GraphBuilderOptions {
  readonly name: string;
  /** Where `Module.param()` finds weights. */
  readonly params?: ParamResolver;
  /** Stored as ONNX `metadata_props`. */
  readonly metadata?: Readonly<Record<string, string>>;
  readonly producer?: string;
}

type Attrs = Record<string, AttributeValue>;

/** Nodes of one graph body (the main graph or an `If` branch). */
interface Body {
  readonly nodes: OnnxNode[];
}

/**
 * Builds an ONNX graph in code. Ops are added through `Module`s whose path mirrors the checkpoint's
 * module path: `g.root.child('encoder').child('conv_in').param('weight', …)` binds the weight
 * `encoder.conv_in.weight`, and the node it feeds is named `/encoder/conv_in/Conv`.
 */
export class GraphBuilder {
  readonly root: Module;
  readonly #options: GraphBuilderOptions;
  readonly #main: Body = { nodes: [] };
  readonly #initializers = new Map<string, OnnxInitializer>();
  readonly #params = new Map<string, Value>();
  readonly #inputs: ValueInfo[] = [];
  readonly #outputs: ValueInfo[] = [];
  readonly #used = new Set<string>();

  constructor(options: GraphBuilderOptions) {
    this.#options = options;
    this.root = new Module(this, this.#main, []);
  }

  /** Declares a graph input. Strings in `shape` are dynamic (symbolic) axes. */
  input(name: string, dtype: DType, shape: readonly Dim[]): Value {
    this.#claim(name);
    this.#inputs.push({ name, dtype, shape });
    return new Value(name, dtype);
  }

  /** Declares a graph output under `name` (an Identity is inserted when the value has another name). */
  output(value: Value, name: string, shape: readonly Dim[] | undefined): void {
    let named = value;
    if (value.name !== name) {
      this.#claim(name);
      this.#main.nodes.push({
        name: this.unique(`/${name}/Identity`),
        opType: 'Identity',
        inputs: [value.name],
        outputs: [name],
        attributes: {},
      });
      named = new Value(name, value.dtype);
    }
    this.#outputs.push({ name: named.name, dtype: named.dtype, shape });
  }

  /** Adds an initializer under an exact name. */
  initializer(name: string, data: InitializerData): Value {
    this.#claim(name);
    this.#initializers.set(name, { name, data });
    return new Value(name, initializerDType(data));
  }

  /** Adds an initializer named `base` (or `base_1`, … when taken). */
  uniqueInitializer(base: string, data: InitializerData): Value {
    const name = this.unique(base);
    this.#initializers.set(name, { name, data });
    return new Value(name, initializerDType(data));
  }

  /** Binds a checkpoint parameter once; later calls with the same key return the same value. */
  param(key: string, expectedShape: readonly number[]): Value {
    const existing = this.#params.get(key);
    if (existing) return existing;
    const resolve = this.#options.params;
    if (!resolve) {
      throw new DcaeError(
        'GRAPH_INVALID',
        `Graph "${this.#options.name}" needs parameter "${key}" ${formatShape(expectedShape)} but was built without a parameter resolver.`,
      );
    }
    const value = this.initializer(key, resolve(key, expectedShape));
    this.#params.set(key, value);
    return value;
  }

  /** Returns `base`, or `base_1`, `base_2`… so that every node and value name is unique. */
  unique(base: string): string {
    let name = base;
    for (let i = 1; this.#used.has(name); i++) name = `${base}_${i}`;
    this.#used.add(name);
    return name;
  }

  #claim(name: string): void {
    if (this.#used.has(name)) {
      throw new DcaeError(
        'GRAPH_INVALID',
        `Graph "${this.#options.name}" already has a value named "${name}".`,
      );
    }
    this.#used.add(name);
  }

  build(): OnnxModel {
    invariant(this.#outputs.length > 0, () => `graph "${this.#options.name}" has no outputs`);
    return {
      graph: {
        name: this.#options.name,
        nodes: [...this.#main.nodes],
        initializers: [...this.#initializers.values()],
        inputs: [...this.#inputs],
        outputs: [...this.#outputs],
      },
      opset: ONNX_OPSET,
      irVersion: ONNX_IR_VERSION,
      producer: this.#options.producer ?? 'dcae',
      metadata: { ...this.#options.metadata },
    };
  }
}

const int = (value: number): AttributeValue => ({ kind: 'int', value });
const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });
const float = (value: number): AttributeValue => ({ kind: 'float', value });
const str = (value: string): AttributeValue => ({ kind: 'string', value });

export interface ConvOptions {
  readonly strides?: readonly number[];
  /** [top, left, bottom, right] for 2-D. */
  readonly pads?: readonly number[];
  readonly dilations?: readonly number[];
  readonly group?: number;
}

export interface ResizeOptions {
  readonly scales: readonly number[];
  readonly mode?: 'nearest' | 'linear' | 'cubic';
  readonly coordinateTransformationMode?:
    'asymmetric' | 'half_pixel' | 'align_corners' | 'pytorch_half_pixel';
  readonly nearestMode?: 'floor' | 'round_prefer_floor' | 'round_prefer_ceil' | 'ceil';
}

/**
 * A position in the module tree. Every op helper adds one node named after this module's path;
 * `param()` binds `<path>.<name>` from the checkpoint.
 */
export class Module {
  constructor(
    readonly graph: GraphBuilder,
    readonly body: Body,
    readonly segments: readonly string[],
  ) {}

  /** Dotted checkpoint path, e.g. `decoder.up_blocks.3.0.attn`. */
  get path(): string {
    return this.segments.join('.');
  }

  child(name: string | number): Module {
    return new Module(this.graph, this.body, [...this.segments, String(name)]);
  }

  /** The checkpoint tensor `<path>.<name>`, checked against `shape`. */
  param(name: string, shape: readonly number[]): Value {
    return this.graph.param(this.segments.length ? `${this.path}.${name}` : name, shape);
  }

  /** A constant initializer named after this module; numbers are rounded to float16/bfloat16 for those dtypes. */
  constant(value: HostTensor | number | readonly number[], dtype: DType = 'float32'): Value {
    const tensor = typeof value === 'number' || Array.isArray(value) ? constantTensor(value, dtype) : value;
    return this.graph.uniqueInitializer(`${this.#prefix()}Constant`, {
      kind: 'inline',
      tensor: tensor as HostTensor,
    });
  }

  #prefix(): string {
    return `/${this.segments.join('/')}${this.segments.length ? '/' : ''}`;
  }

  /** Escape hatch: adds any op. The output dtype defaults to the first input's. */
  op(
    opType: string,
    inputs: readonly (Value | undefined)[],
    attributes: Attrs = {},
    options: { outputs?: number; dtype?: DType; domain?: string } = {},
  ): Value[] {
    const name = this.graph.unique(`${this.#prefix()}${opType}`);
    const count = options.outputs ?? 1;
    const dtype = options.dtype ?? inputs.find((v) => v !== undefined)?.dtype ?? 'float32';
    const outputs = Array.from({ length: count }, (_, i) => new Value(`${name}_output_${i}`, dtype));
    this.body.nodes.push({
      name,
      opType,
      inputs: inputs.map((v) => v?.name ?? ''),
      outputs: outputs.map((v) => v.name),
      attributes,
      ...(options.domain ? { domain: options.domain } : {}),
    });
    return outputs;
  }

  #one(opType: string, inputs: readonly (Value | undefined)[], attributes: Attrs = {}, dtype?: DType): Value {
    return this.op(opType, inputs, attributes, dtype ? { dtype } : {})[0]!;
  }

  #ints(values: readonly number[] | Value): Value {
    return values instanceof Value ? values : this.constant(values, 'int64');
  }

  // Convolution and linear algebra

  /**
   * 2-D convolution (pass `strides`/`dilations` for other ranks). Strides and dilations are
   * always written out: onnxruntime-web's WebGPU Conv rejects nodes that leave them to the
   * ONNX defaults.
   */
  conv(x: Value, weight: Value, bias?: Value, options: ConvOptions = {}): Value {
    const attrs: Attrs = {};
    attrs.dilations = ints(options.dilations ?? [1, 1]);
    attrs.group = int(options.group ?? 1);
    if (options.pads) attrs.pads = ints(options.pads);
    attrs.strides = ints(options.strides ?? [1, 1]);
    return this.#one('Conv', bias ? [x, weight, bias] : [x, weight], attrs);
  }

  matMul(a: Value, b: Value): Value {
    return this.#one('MatMul', [a, b]);
  }

  gemm(
    a: Value,
    b: Value,
    c?: Value,
    options: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {},
  ): Value {
    const attrs: Attrs = {
      alpha: float(options.alpha ?? 1),
      beta: float(options.beta ?? 1),
      transA: int(options.transA ? 1 : 0),
      transB: int(options.transB ? 1 : 0),
    };
    return this.#one('Gemm', c ? [a, b, c] : [a, b], attrs);
  }

  // Elementwise

  add(a: Value, b: Value): Value {
    return this.#one('Add', [a, b]);
  }
  sub(a: Value, b: Value): Value {
    return this.#one('Sub', [a, b]);
  }
  mul(a: Value, b: Value): Value {
    return this.#one('Mul', [a, b]);
  }
  div(a: Value, b: Value): Value {
    return this.#one('Div', [a, b]);
  }
  pow(a: Value, b: Value): Value {
    return this.#one('Pow', [a, b]);
  }
  sqrt(x: Value): Value {
    return this.#one('Sqrt', [x]);
  }
  reciprocal(x: Value): Value {
    return this.#one('Reciprocal', [x]);
  }
  neg(x: Value): Value {
    return this.#one('Neg', [x]);
  }
  exp(x: Value): Value {
    return this.#one('Exp', [x]);
  }
  abs(x: Value): Value {
    return this.#one('Abs', [x]);
  }
  relu(x: Value): Value {
    return this.#one('Relu', [x]);
  }
  sigmoid(x: Value): Value {
    return this.#one('Sigmoid', [x]);
  }
  tanh(x: Value): Value {
    return this.#one('Tanh', [x]);
  }
  erf(x: Value): Value {
    return this.#one('Erf', [x]);
  }

  /** SiLU(x) = x · σ(x). */
  silu(x: Value): Value {
    return this.mul(x, this.sigmoid(x));
  }

  /**
   * GELU, exact (`'none'`: x·Φ(x) via erf) or the tanh approximation (`'tanh'`), written with
   * opset-18 primitives. The exact form is x·0.5·(erf(x/√2) + 1) with a Div, the pattern
   * onnxruntime's CPU optimiser fuses into one `Gelu` kernel (with x·(1/√2) it does not); it fuses no
   * tanh form on the CPU, so `fastGelu()` is the fused kernel for that one.
   */
  gelu(x: Value, approximate: 'none' | 'tanh' = 'none'): Value {
    const half = this.constant(0.5, x.dtype);
    const one = this.constant(1, x.dtype);
    if (approximate === 'none') {
      const erf = this.erf(this.div(x, this.constant(Math.SQRT2, x.dtype)));
      return this.mul(this.mul(x, half), this.add(erf, one));
    }
    const cube = this.mul(this.mul(x, x), x);
    const poly = this.add(x, this.mul(cube, this.constant(0.044715, x.dtype)));
    const inner = this.tanh(this.mul(poly, this.constant(Math.sqrt(2 / Math.PI), x.dtype)));
    return this.mul(this.mul(x, half), this.add(one, inner));
  }

  /**
   * onnxruntime's `FastGelu` (com.microsoft; CPU, wasm and WebGPU providers): the tanh
   * approximation of GELU, x·0.5·(1 + tanh(√(2/π)·(x + 0.044715·x³))), as one kernel.
   */
  fastGelu(x: Value): Value {
    return this.op('FastGelu', [x], {}, { domain: MICROSOFT_DOMAIN })[0]!;
  }

  /**
   * onnxruntime's fused attention (`com.microsoft` `MultiHeadAttention`, CPU and WebGPU providers):
   * q, k, v [B, L, heads·headDim] with the heads concatenated along the last axis →
   * softmax(scale·q·kᵀ)·v per head, heads concatenated, [B, L, heads·headDim]. `scale` defaults to
   * 1/√headDim.
   */
  multiHeadAttention(q: Value, k: Value, v: Value, options: { heads: number; scale?: number }): Value {
    const attrs: Attrs = { num_heads: int(options.heads) };
    if (options.scale !== undefined) attrs.scale = float(options.scale);
    return this.op('MultiHeadAttention', [q, k, v], attrs, { domain: MICROSOFT_DOMAIN })[0]!;
  }

  softmax(x: Value, axis = -1): Value {
    return this.#one('Softmax', [x], { axis: int(axis) });
  }

  where(condition: Value, a: Value, b: Value): Value {
    return this.#one('Where', [condition, a, b], {}, a.dtype);
  }
  equal(a: Value, b: Value): Value {
    return this.#one('Equal', [a, b], {}, 'bool');
  }
  greater(a: Value, b: Value): Value {
    return this.#one('Greater', [a, b], {}, 'bool');
  }
  cast(x: Value, to: DType): Value {
    return this.#one('Cast', [x], { to: int(ONNX_DATA_TYPE[to]) }, to);
  }

  // Reductions and normalisation

  reduceMean(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.#one('ReduceMean', [x, this.#ints(axes)], { keepdims: int(keepdims ? 1 : 0) });
  }
  reduceSum(x: Value, axes: readonly number[], keepdims = true): Value {
    return this.#one('ReduceSum', [x, this.#ints(axes)], { keepdims: int(keepdims ? 1 : 0) });
  }

  layerNorm(x: Value, scale: Value, bias?: Value, options: { axis?: number; epsilon?: number } = {}): Value {
    const attrs: Attrs = { axis: int(options.axis ?? -1), epsilon: float(options.epsilon ?? 1e-5) };
    return this.#one('LayerNormalization', bias ? [x, scale, bias] : [x, scale], attrs);
  }

  // Shapes and layout

  /** `shape[start:end]` of `x` as an int64 vector. */
  shape(x: Value, start?: number, end?: number): Value {
    const attrs: Attrs = {};
    if (end !== undefined) attrs.end = int(end);
    if (start !== undefined) attrs.start = int(start);
    return this.#one('Shape', [x], attrs, 'int64');
  }

  /** Reshape; a number list may use 0 (copy the input dim) and -1 (infer). */
  reshape(x: Value, shape: readonly number[] | Value): Value {
    return this.#one('Reshape', [x, this.#ints(shape)]);
  }
  transpose(x: Value, perm: readonly number[]): Value {
    return this.#one('Transpose', [x], { perm: ints(perm) });
  }
  concat(values: readonly Value[], axis: number): Value {
    return this.#one('Concat', values, { axis: int(axis) });
  }
  split(x: Value, axis: number, sizes: readonly number[]): Value[] {
    return this.op('Split', [x, this.#ints(sizes)], { axis: int(axis) }, { outputs: sizes.length });
  }
  slice(
    x: Value,
    starts: readonly number[],
    ends: readonly number[],
    axes?: readonly number[],
    steps?: readonly number[],
  ): Value {
    const inputs = [x, this.#ints(starts), this.#ints(ends)];
    if (axes) inputs.push(this.#ints(axes));
    if (steps) inputs.push(this.#ints(steps));
    return this.#one('Slice', inputs);
  }
  /** Constant padding; `pads` = [x1_begin, x2_begin, …, x1_end, x2_end, …]. */
  pad(x: Value, pads: readonly number[], value = 0): Value {
    return this.#one('Pad', [x, this.#ints(pads), this.constant(value, x.dtype)], { mode: str('constant') });
  }
  expand(x: Value, shape: readonly number[] | Value): Value {
    return this.#one('Expand', [x, this.#ints(shape)]);
  }
  tile(x: Value, repeats: readonly number[] | Value): Value {
    return this.#one('Tile', [x, this.#ints(repeats)]);
  }
  unsqueeze(x: Value, axes: readonly number[]): Value {
    return this.#one('Unsqueeze', [x, this.#ints(axes)]);
  }
  squeeze(x: Value, axes: readonly number[]): Value {
    return this.#one('Squeeze', [x, this.#ints(axes)]);
  }
  gather(x: Value, indices: Value, axis = 0): Value {
    return this.#one('Gather', [x, indices], { axis: int(axis) });
  }
  identity(x: Value): Value {
    return this.#one('Identity', [x]);
  }

  /** CRD mode equals torch `pixel_shuffle`. */
  depthToSpace(x: Value, blocksize: number, mode: 'CRD' | 'DCR' = 'CRD'): Value {
    return this.#one('DepthToSpace', [x], { blocksize: int(blocksize), mode: str(mode) });
  }
  /** ONNX SpaceToDepth: output channel (i·b + j)·C + c — not torch's `pixel_unshuffle` order. */
  spaceToDepth(x: Value, blocksize: number): Value {
    return this.#one('SpaceToDepth', [x], { blocksize: int(blocksize) });
  }

  resize(x: Value, options: ResizeOptions): Value {
    const attrs: Attrs = {
      coordinate_transformation_mode: str(options.coordinateTransformationMode ?? 'asymmetric'),
      mode: str(options.mode ?? 'nearest'),
      nearest_mode: str(options.nearestMode ?? 'floor'),
    };
    return this.#one('Resize', [x, undefined, this.constant([...options.scales], 'float32')], attrs);
  }

  /**
   * ONNX `If`: both branches are built now; the runtime evaluates the one `condition` selects.
   * Branches may read any value of the enclosing graph and must return the same number of values.
   */
  if(condition: Value, thenBranch: (m: Module) => Value[], elseBranch: (m: Module) => Value[]): Value[] {
    const thenGraph = this.#branch('then_branch', thenBranch);
    const elseGraph = this.#branch('else_branch', elseBranch);
    invariant(
      thenGraph.outputs.length === elseGraph.outputs.length,
      () =>
        `If at "${this.path}": branches return ${thenGraph.outputs.length} and ${elseGraph.outputs.length} values`,
    );
    const outputs = this.op(
      'If',
      [condition],
      { else_branch: { kind: 'graph', value: elseGraph }, then_branch: { kind: 'graph', value: thenGraph } },
      { outputs: thenGraph.outputs.length, dtype: thenGraph.outputs[0]?.dtype ?? 'float32' },
    );
    return outputs.map((v, i) => new Value(v.name, thenGraph.outputs[i]!.dtype));
  }

  #branch(label: string, build: (m: Module) => Value[]): OnnxGraph {
    const body: Body = { nodes: [] };
    const inner = new Module(this.graph, body, [...this.segments, label]);
    const outputs = build(inner).map((v) => {
      // A branch output must be produced inside the branch.
      const produced = body.nodes.some((n) => n.outputs.includes(v.name));
      return produced ? v : inner.identity(v);
    });
    return {
      name: this.graph.unique(`${this.path || 'graph'}.${label}`),
      nodes: body.nodes,
      initializers: [],
      inputs: [],
      outputs: outputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: undefined })),
    };
  }
}

function constantTensor(value: number | readonly number[], dtype: DType): HostTensor {
  const values = typeof value === 'number' ? [value] : value;
  const shape = typeof value === 'number' ? [] : [values.length];
  switch (dtype) {
    case 'float32':
      return { dtype, shape, data: Float32Array.from(values) };
    case 'int64':
      return { dtype, shape, data: BigInt64Array.from(values, (v) => BigInt(v)) };
    case 'int32':
      return { dtype, shape, data: Int32Array.from(values) };
    case 'int8':
      return { dtype, shape, data: Int8Array.from(values) };
    case 'uint8':
    case 'bool':
      return { dtype, shape, data: Uint8Array.from(values) };
    case 'float16':
      return { dtype, shape, data: Uint16Array.from(values, float32ToFloat16) };
    case 'bfloat16':
      return { dtype, shape, data: Uint16Array.from(values, float32ToBfloat16) };
  }
}
