import type { DType, HostTensor } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import type { AttributeValue, OnnxGraph, OnnxInitializer, OnnxModel, OnnxNode } from '@dcae/core/onnx';
import { ONNX_IR_VERSION, ONNX_OPSET } from '@dcae/core/onnx';
import { evalOp } from '../reference/ops.js';
import type { RefTensor } from '../reference/tensor.js';
import { fromHost, size, toHost } from '../reference/tensor.js';
import type { KnownValue } from './shapes.js';
import { inferNode } from './shapes.js';

/**
 * The static training IR: a plain ONNX node list where every value has a concrete shape and dtype.
 * Built from our `OnnxModel`s (`importModel`) with a fixed input shape, so `Shape` arithmetic is
 * folded into constants and `If` nodes with a known condition are inlined. Small constant
 * sub-expressions are folded as nodes are added; weights are kept apart (`weights`) and are never
 * folded, so any of them can later become a graph input (trainable) or stay an initializer.
 */

export interface IrValue {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface IrNode {
  readonly name: string;
  readonly op: string;
  readonly inputs: readonly string[];
  readonly outputs: readonly string[];
  readonly attrs: Readonly<Record<string, AttributeValue>>;
}

/** Constants up to this many elements are folded when all inputs of a node are constant. */
const FOLD_LIMIT = 4096;

export class IrGraph {
  readonly values = new Map<string, IrValue>();
  /** Constant tensors (inline initializers), by value name. */
  readonly consts = new Map<string, HostTensor>();
  /** Model weights by checkpoint key: initializers or, when trainable, graph inputs. */
  readonly weights = new Map<string, HostTensor>();
  readonly nodes: IrNode[] = [];
  readonly inputs: string[] = [];
  readonly outputs: string[] = [];
  readonly #used = new Set<string>();
  readonly #next = new Map<string, number>();
  readonly #refCache = new Map<string, RefTensor>();
  /** Small constants by dtype, shape and values: each distinct one is stored once. */
  readonly #constCache = new Map<string, string>();

  /** `base`, or `base_1`, `base_2`… (unique across values and nodes). */
  fresh(base: string): string {
    let name = base;
    let i = this.#next.get(base) ?? 1;
    while (this.#used.has(name)) name = `${base}_${i++}`;
    this.#next.set(base, i);
    this.#used.add(name);
    return name;
  }

  value(name: string): IrValue {
    const v = this.values.get(name);
    if (!v) throw new DcaeError('GRAPH_INVALID', `Training graph has no value "${name}".`);
    return v;
  }

  shape(name: string): readonly number[] {
    return this.value(name).shape;
  }

  addInput(name: string, dtype: DType, shape: readonly number[]): string {
    if (this.#used.has(name))
      throw new DcaeError('GRAPH_INVALID', `Training graph already has a value "${name}".`);
    this.#used.add(name);
    this.values.set(name, { name, dtype, shape: [...shape] });
    this.inputs.push(name);
    return name;
  }

  addWeight(name: string, tensor: HostTensor): string {
    if (this.#used.has(name))
      throw new DcaeError('GRAPH_INVALID', `Training graph already has a value "${name}".`);
    this.#used.add(name);
    this.values.set(name, { name, dtype: tensor.dtype, shape: [...tensor.shape] });
    this.weights.set(name, tensor);
    return name;
  }

  /** A constant; numbers are float32 unless `dtype` says otherwise. */
  constant(
    value: HostTensor | number | readonly number[],
    dtype: DType = 'float32',
    base = '/train/Constant',
  ): string {
    let tensor: HostTensor;
    if (typeof value === 'number' || Array.isArray(value)) {
      const list = typeof value === 'number' ? [value] : (value as readonly number[]);
      const shape = typeof value === 'number' ? [] : [list.length];
      tensor = toHost({ shape, data: Float64Array.from(list) }, dtype);
    } else tensor = value as HostTensor;
    let key: string | undefined;
    if (tensor.data.length <= 16) {
      key = `${tensor.dtype}|${tensor.shape.join(',')}|${Array.from(tensor.data as ArrayLike<number | bigint>, String).join(',')}`;
      const hit = this.#constCache.get(key);
      if (hit) return hit;
    }
    const name = this.fresh(base);
    if (key) this.#constCache.set(key, name);
    this.values.set(name, { name, dtype: tensor.dtype, shape: [...tensor.shape] });
    this.consts.set(name, tensor);
    return name;
  }

  /** The constant value of `name` as float64, if it is a constant. */
  constValue(name: string): RefTensor | undefined {
    const cached = this.#refCache.get(name);
    if (cached) return cached;
    const t = this.consts.get(name);
    if (!t) return undefined;
    const r = fromHost(t);
    this.#refCache.set(name, r);
    return r;
  }

  /** Adds a node (or folds it into a constant) and returns its output names. */
  op(
    op: string,
    inputs: readonly (string | undefined)[],
    attrs: Record<string, AttributeValue> = {},
    outputs = 1,
    base?: string,
  ): string[] {
    const known: (KnownValue | undefined)[] = inputs.map((name) => {
      if (!name) return undefined;
      const v = this.value(name);
      const value = this.constValue(name);
      return value ? { shape: v.shape, dtype: v.dtype, value } : { shape: v.shape, dtype: v.dtype };
    });
    const inferred = inferNode(op, known, attrs, outputs);
    const prefix = base ?? `/train/${op}`;
    const foldable =
      (op === 'Shape' || op === 'Size' || inputs.every((n) => !n || this.consts.has(n))) &&
      inferred.every((v) => size(v.shape) <= FOLD_LIMIT) &&
      op !== 'Resize';
    if (foldable) {
      const refs =
        op === 'Shape' || op === 'Size'
          ? [{ shape: known[0]!.shape, data: new Float64Array(size(known[0]!.shape)) }]
          : known.map((k) => k?.value);
      const results = evalOp(op, refs, attrs);
      return results.map((r, i) =>
        this.constant(toHost(r, inferred[i]!.dtype), inferred[i]!.dtype, `${prefix}_folded`),
      );
    }
    const name = this.fresh(prefix);
    const outs = inferred.map((v, i) => {
      const out = this.fresh(`${name}_output_${i}`);
      this.values.set(out, { name: out, dtype: v.dtype, shape: v.shape });
      return out;
    });
    this.nodes.push({ name, op, inputs: inputs.map((n) => n ?? ''), outputs: outs, attrs });
    return outs;
  }

  /** `op` with a single output. */
  op1(
    op: string,
    inputs: readonly (string | undefined)[],
    attrs: Record<string, AttributeValue> = {},
    base?: string,
  ): string {
    return this.op(op, inputs, attrs, 1, base)[0]!;
  }

  /**
   * An `OnnxModel` of this graph with the given outputs. Weights named in `inputWeights` become
   * graph inputs; every other weight used becomes an inline initializer. Nodes that do not feed an
   * output are dropped.
   */
  toModel(options: {
    name: string;
    outputs: readonly string[];
    outputNames?: readonly string[];
    inputWeights?: ReadonlySet<string>;
    metadata?: Record<string, string>;
  }): OnnxModel {
    const producer = new Map<string, IrNode>();
    for (const n of this.nodes) for (const o of n.outputs) producer.set(o, n);
    const live = new Set<string>();
    const liveNodes = new Set<IrNode>();
    const stack = [...options.outputs];
    while (stack.length) {
      const v = stack.pop()!;
      if (!v || live.has(v)) continue;
      live.add(v);
      const n = producer.get(v);
      if (n && !liveNodes.has(n)) {
        liveNodes.add(n);
        stack.push(...n.inputs);
      }
    }
    // Outputs are named by renaming their producer's output (no Identity copy); a value that is an
    // input, a weight or a constant, or that is requested twice, goes through an Identity.
    const outputNames = options.outputNames ?? options.outputs;
    const rename = new Map<string, string>();
    const extra: OnnxNode[] = [];
    const outputs = options.outputs.map((v, i) => {
      const wanted = outputNames[i]!;
      const info = this.value(v);
      const renamed = rename.get(v);
      if (v !== wanted && renamed === undefined && producer.has(v) && !this.values.has(wanted))
        rename.set(v, wanted);
      else if (v !== wanted || renamed !== undefined || !producer.has(v))
        extra.push({
          name: `/output/${wanted}/Identity`,
          opType: 'Identity',
          inputs: [renamed ?? v],
          outputs: [wanted],
          attributes: {},
        });
      return { name: wanted, dtype: info.dtype, shape: info.shape };
    });
    const r = (name: string): string => rename.get(name) ?? name;
    const nodes: OnnxNode[] = this.nodes
      .filter((n) => liveNodes.has(n))
      .map((n) => ({
        name: n.name,
        opType: n.op,
        inputs: n.inputs.map(r),
        outputs: n.outputs.map(r),
        attributes: n.attrs,
      }));
    nodes.push(...extra);
    const initializers: OnnxInitializer[] = [];
    const graphInputs = this.inputs.filter((n) => live.has(n)).map((n) => this.value(n));
    for (const [name, tensor] of this.consts)
      if (live.has(name)) initializers.push({ name, data: { kind: 'inline', tensor } });
    for (const [name, tensor] of this.weights) {
      if (!live.has(name)) continue;
      if (options.inputWeights?.has(name)) graphInputs.push(this.value(name));
      else initializers.push({ name, data: { kind: 'inline', tensor } });
    }
    const graph: OnnxGraph = {
      name: options.name,
      nodes,
      initializers,
      inputs: graphInputs.map((v) => ({ name: v.name, dtype: v.dtype, shape: v.shape })),
      outputs,
    };
    return {
      graph,
      opset: ONNX_OPSET,
      irVersion: ONNX_IR_VERSION,
      producer: 'dcae-train',
      metadata: { ...options.metadata },
    };
  }
}

export interface ImportOptions {
  /** Graph input name → IR value feeding it (created by the caller with a static shape). */
  readonly inputs: ReadonlyMap<string, string>;
  /** Initializer names that are model weights (checkpoint keys). */
  readonly isWeight: (name: string) => boolean;
  /**
   * Rewrites a node before it is added; return the output value names to use instead, or
   * undefined to add the node as it is. Inputs are already resolved to IR names.
   */
  readonly rewrite?: (node: OnnxNode, inputs: readonly string[], g: IrGraph) => string[] | undefined;
  /**
   * Rewrite the fused normalisations (LayerNormalization, InstanceNormalization, eval-mode
   * BatchNormalization) and Gemm into primitive ops, so that autodiff covers them with the
   * elementwise and reduction rules. @defaultValue true
   */
  readonly decompose?: boolean;
}

const attrNumber = (node: OnnxNode, name: string, fallback: number): number => {
  const a = node.attributes[name];
  return a && (a.kind === 'int' || a.kind === 'float') ? a.value : fallback;
};

/** (x − mean) / √(var + ε) over `axes` (keepdims), in primitive ops. */
function normalise(g: IrGraph, x: string, axes: readonly number[], eps: number, base: string): string {
  const ax = g.constant(axes, 'int64');
  const keep = { keepdims: { kind: 'int' as const, value: 1 } };
  const centred = g.op1(
    'Sub',
    [x, g.op1('ReduceMean', [x, ax], keep, `${base}/ReduceMean`)],
    {},
    `${base}/Sub`,
  );
  const variance = g.op1(
    'ReduceMean',
    [g.op1('Mul', [centred, centred], {}, `${base}/Mul`), ax],
    keep,
    `${base}/ReduceMean`,
  );
  const std = g.op1(
    'Sqrt',
    [g.op1('Add', [variance, g.constant(eps)], {}, `${base}/Add`)],
    {},
    `${base}/Sqrt`,
  );
  return g.op1('Div', [centred, std], {}, `${base}/Div`);
}

/** Primitive-op form of fused ops that have no VJP rule of their own (see `ImportOptions.decompose`). */
function decompose(node: OnnxNode, inputs: readonly string[], g: IrGraph): string[] | undefined {
  const base = node.name;
  const rank = (v: string): number => g.shape(v).length;
  const perChannel = (v: string, r: number): string =>
    g.op1(
      'Reshape',
      [v, g.constant([g.shape(v)[0]!, ...Array.from({ length: r - 2 }, () => 1)], 'int64')],
      {},
      `${base}/Reshape`,
    );
  switch (node.opType) {
    case 'LayerNormalization': {
      const [x, scale, bias] = inputs as [string, string, string | undefined];
      const r = rank(x);
      const raw = attrNumber(node, 'axis', -1);
      const axis = raw < 0 ? raw + r : raw;
      const axes = Array.from({ length: r - axis }, (_, i) => axis + i);
      let y = g.op1(
        'Mul',
        [normalise(g, x, axes, attrNumber(node, 'epsilon', 1e-5), base), scale],
        {},
        `${base}/Scale`,
      );
      if (bias) y = g.op1('Add', [y, bias], {}, `${base}/Shift`);
      return [y];
    }
    case 'InstanceNormalization': {
      const [x, scale, bias] = inputs as [string, string, string];
      const r = rank(x);
      const y = normalise(
        g,
        x,
        Array.from({ length: r - 2 }, (_, i) => i + 2),
        attrNumber(node, 'epsilon', 1e-5),
        base,
      );
      return [
        g.op1(
          'Add',
          [g.op1('Mul', [y, perChannel(scale, r)], {}, `${base}/Scale`), perChannel(bias, r)],
          {},
          `${base}/Shift`,
        ),
      ];
    }
    case 'BatchNormalization': {
      if (attrNumber(node, 'training_mode', 0) !== 0) return undefined;
      const [x, scale, bias, mean, variance] = inputs as [string, string, string, string, string];
      const r = rank(x);
      const inv = g.op1('Reciprocal', [
        g.op1('Sqrt', [g.op1('Add', [variance, g.constant(attrNumber(node, 'epsilon', 1e-5))])]),
      ]);
      const centred = g.op1('Sub', [x, perChannel(mean, r)], {}, `${base}/Sub`);
      const scaled = g.op1('Mul', [centred, perChannel(g.op1('Mul', [scale, inv]), r)], {}, `${base}/Scale`);
      return [g.op1('Add', [scaled, perChannel(bias, r)], {}, `${base}/Shift`)];
    }
    case 'Gemm': {
      const [a, b, c] = inputs as [string, string, string | undefined];
      const t = (v: string, flag: string): string =>
        attrNumber(node, flag, 0)
          ? g.op1('Transpose', [v], { perm: { kind: 'ints', value: [1, 0] } }, `${base}/Transpose`)
          : v;
      let y = g.op1('MatMul', [t(a, 'transA'), t(b, 'transB')], {}, `${base}/MatMul`);
      const alpha = attrNumber(node, 'alpha', 1);
      if (alpha !== 1) y = g.op1('Mul', [y, g.constant(alpha)]);
      if (c) {
        const beta = attrNumber(node, 'beta', 1);
        y = g.op1('Add', [y, beta === 1 ? c : g.op1('Mul', [c, g.constant(beta)])], {}, `${base}/Add`);
      }
      return [y];
    }
    default:
      return undefined;
  }
}

/**
 * Adds `model`'s nodes to `g`, specialised to the static input shapes: returns graph output name →
 * IR value. Initializers that are weights are added once under their own name (shared between
 * imports); other initializers become constants.
 */
export function importModel(g: IrGraph, model: OnnxModel, options: ImportOptions): Map<string, string> {
  const alias = new Map<string, string>(options.inputs);
  for (const init of model.graph.initializers) {
    if (init.data.kind !== 'inline')
      throw new DcaeError(
        'GRAPH_INVALID',
        `Training graphs need inline weights; ${init.name} is external data.`,
      );
    if (options.isWeight(init.name)) {
      if (!g.weights.has(init.name)) g.addWeight(init.name, init.data.tensor);
      alias.set(init.name, init.name);
    } else alias.set(init.name, g.constant(init.data.tensor, init.data.tensor.dtype, init.name));
  }
  const resolve = (name: string): string => {
    if (name === '') return '';
    const r = alias.get(name);
    if (r === undefined)
      throw new DcaeError(
        'GRAPH_INVALID',
        `Import of ${model.graph.name}: value "${name}" is used before it is defined.`,
      );
    return r;
  };
  const visit = (nodes: readonly OnnxNode[]): void => {
    for (const node of nodes) {
      const inputs = node.inputs.map(resolve);
      if (node.opType === 'If') {
        const cond = g.constValue(inputs[0]!);
        if (!cond)
          throw new DcaeError(
            'GRAPH_INVALID',
            `${node.name}: an If whose condition depends on data cannot be trained (static graphs only).`,
          );
        const branch = node.attributes[cond.data[0] ? 'then_branch' : 'else_branch'];
        if (branch?.kind !== 'graph')
          throw new DcaeError('GRAPH_INVALID', `${node.name}: If without branch graph.`);
        visit(branch.value.nodes);
        node.outputs.forEach((o, i) => alias.set(o, resolve(branch.value.outputs[i]!.name)));
        continue;
      }
      if (node.opType === 'Identity') {
        alias.set(node.outputs[0]!, inputs[0]!);
        continue;
      }
      if (
        node.opType === 'Cast' &&
        g.value(inputs[0]!).dtype === 'float32' &&
        node.attributes.to?.kind === 'int' &&
        node.attributes.to.value === 1
      ) {
        alias.set(node.outputs[0]!, inputs[0]!);
        continue;
      }
      const rewritten =
        options.rewrite?.(node, inputs, g) ??
        (options.decompose === false ? undefined : decompose(node, inputs, g));
      const outs =
        rewritten ?? g.op(node.opType, inputs, { ...node.attributes }, node.outputs.length, node.name);
      node.outputs.forEach((o, i) => alias.set(o, outs[i]!));
    }
  };
  visit(model.graph.nodes);
  return new Map(model.graph.outputs.map((o) => [o.name, resolve(o.name)]));
}
