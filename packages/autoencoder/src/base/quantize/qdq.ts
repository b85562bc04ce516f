import { DcaeError, invariant, numel } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { OnnxGraph, OnnxInitializer, OnnxModel, OnnxNode } from '@dcae/core/onnx';

/**
 * Static int8 quantization of a built float32 graph as QuantizeLinear / DequantizeLinear (QDQ)
 * pairs, the form onnxruntime's graph optimiser turns into integer kernels (QLinearConv on the CPU
 * and in wasm). See docs/quantization.md.
 *
 * - Weights: per output channel, symmetric int8 (zero point 0, scale max|w_c| / 127), stored as
 *   int8 initializers. The float weights leave the graph.
 * - Activations: the input and the output of every quantized Conv, asymmetric uint8 over the
 *   calibrated [min, max] (widened to hold 0).
 * - Bias: int32 with scale s_x · s_w,c, as onnxruntime's QLinearConv fusion expects.
 * - Everything that is not a Conv stays float32: RMSNorm, the ReLU linear-attention core (MatMul
 *   inside `If`), activations, residual adds, resampling. Convs whose module `keepFloat` names
 *   stay float32 too (by default the image and latent projections).
 */

/** The calibrated range of one activation tensor. */
export interface TensorRange {
  readonly min: number;
  readonly max: number;
}

/** Ranges by tensor name (the names of the float graph the ranges were calibrated on). */
export type ActivationRanges = Readonly<Record<string, TensorRange>>;

export interface QdqOptions {
  readonly ranges: ActivationRanges;
  /** Modules (dotted checkpoint paths, e.g. `encoder.conv_out`) whose Conv stays float32. */
  readonly keepFloat?: readonly string[];
}

/** A Conv the pass can quantize: a constant float32 weight, found through Reshape / Concat. */
export interface ConvSite {
  readonly node: OnnxNode;
  /** Dotted module path from the node name, e.g. `decoder.up_blocks.3.0.attn.to_out`. */
  readonly module: string;
  readonly input: string;
  readonly output: string;
  readonly weight: HostTensor<'float32'>;
  readonly bias: HostTensor<'float32'> | undefined;
}

/** The projections between pixels, latents and the first/last stage: kept float32 by default. */
export const DEFAULT_KEEP_FLOAT: readonly string[] = [
  'encoder.conv_in',
  'encoder.conv_out',
  'decoder.conv_in',
  'decoder.conv_out',
];

const UINT8_MAX = 255;
const INT8_MAX = 127;
const INT32_MAX = 2 ** 31 - 1;

/** `/decoder/up_blocks/3/0/attn/to_out/Conv_2` → `decoder.up_blocks.3.0.attn.to_out`. */
export function moduleOfNode(name: string): string {
  const segments = name.split('/').filter((s) => s !== '');
  segments.pop();
  return segments.join('.');
}

function keptFloat(module: string, keep: readonly string[]): boolean {
  return keep.some((k) => module === k || module.startsWith(`${k}.`));
}

/**
 * The Convs of the main graph (not inside `If` branches) whose weight and bias are constants:
 * inline float32 initializers, possibly reshaped or concatenated along axis 0.
 */
export function findConvSites(
  model: OnnxModel,
  keepFloat: readonly string[] = DEFAULT_KEEP_FLOAT,
): ConvSite[] {
  const graph = model.graph;
  const initializers = new Map(graph.initializers.map((i) => [i.name, i]));
  const producers = new Map<string, OnnxNode>();
  for (const node of graph.nodes) for (const out of node.outputs) producers.set(out, node);
  const constant = (name: string): HostTensor | undefined => evaluate(name, initializers, producers, 0);
  const sites: ConvSite[] = [];
  for (const node of graph.nodes) {
    if (node.opType !== 'Conv') continue;
    const module = moduleOfNode(node.name);
    if (keptFloat(module, keepFloat)) continue;
    const [input, weightName, biasName] = node.inputs;
    const weight = weightName === undefined ? undefined : constant(weightName);
    const bias = biasName ? constant(biasName) : undefined;
    if (weight?.dtype !== 'float32' || (biasName && bias?.dtype !== 'float32')) continue;
    sites.push({
      node,
      module,
      input: input!,
      output: node.outputs[0]!,
      weight: weight as HostTensor<'float32'>,
      bias: bias as HostTensor<'float32'> | undefined,
    });
  }
  return sites;
}

/** The value of `name` when it is a constant the pass can fold (Reshape, Concat on axis 0, Identity). */
function evaluate(
  name: string,
  initializers: ReadonlyMap<string, OnnxInitializer>,
  producers: ReadonlyMap<string, OnnxNode>,
  depth: number,
): HostTensor | undefined {
  if (depth > 8) return undefined;
  const init = initializers.get(name);
  if (init) return init.data.kind === 'inline' ? init.data.tensor : undefined;
  const node = producers.get(name);
  if (!node) return undefined;
  const arg = (i: number): HostTensor | undefined =>
    node.inputs[i] ? evaluate(node.inputs[i], initializers, producers, depth + 1) : undefined;
  switch (node.opType) {
    case 'Identity':
      return arg(0);
    case 'Reshape': {
      const x = arg(0);
      const shape = arg(1);
      if (!x || shape?.dtype !== 'int64') return undefined;
      const dims = [...(shape.data as BigInt64Array)].map(Number);
      const resolved = dims.map((d, i) => (d === 0 ? x.shape[i]! : d));
      const known = resolved.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      const out = resolved.map((d) => (d === -1 ? numel(x.shape) / known : d));
      return numel(out) === numel(x.shape) ? { ...x, shape: out } : undefined;
    }
    case 'Concat': {
      const axis = node.attributes.axis;
      if (axis?.kind !== 'int' || axis.value !== 0) return undefined;
      const parts = node.inputs.map((_, i) => arg(i));
      if (parts.some((p) => p?.dtype !== 'float32')) return undefined;
      const tensors = parts as HostTensor<'float32'>[];
      const data = new Float32Array(tensors.reduce((n, t) => n + t.data.length, 0));
      let offset = 0;
      for (const t of tensors) {
        data.set(t.data, offset);
        offset += t.data.length;
      }
      const rows = tensors.reduce((n, t) => n + t.shape[0]!, 0);
      return { dtype: 'float32', shape: [rows, ...tensors[0]!.shape.slice(1)], data };
    }
    default:
      return undefined;
  }
}

/** The tensors whose ranges `quantizeGraph` needs: every quantized Conv's input and output, once. */
export function calibrationTensors(sites: readonly ConvSite[]): string[] {
  return [...new Set(sites.flatMap((s) => [s.input, s.output]))];
}

/** `model` with every tensor of `names` also a graph output (through an Identity named `calibrate/<i>`). */
export function withCalibrationOutputs(model: OnnxModel, names: readonly string[]): OnnxModel {
  const nodes: OnnxNode[] = names.map((name, i) => ({
    name: `/calibrate/Identity_${i}`,
    opType: 'Identity',
    inputs: [name],
    outputs: [calibrationOutput(i)],
    attributes: {},
  }));
  const outputs = names.map((_, i) => ({
    name: calibrationOutput(i),
    dtype: 'float32' as const,
    shape: undefined,
  }));
  return {
    ...model,
    graph: {
      ...model.graph,
      nodes: [...model.graph.nodes, ...nodes],
      outputs: [...model.graph.outputs, ...outputs],
    },
  };
}

export const calibrationOutput = (i: number): string => `calibrate/${i}`;

/** Activation quantization parameters: uint8, asymmetric over [min, max] widened to hold 0. */
export function activationParams(range: TensorRange): { scale: number; zeroPoint: number } {
  const lo = Math.min(0, range.min);
  const hi = Math.max(0, range.max);
  const scale = Math.max(hi - lo, 1e-8) / UINT8_MAX;
  const zeroPoint = Math.min(UINT8_MAX, Math.max(0, Math.round(-lo / scale)));
  return { scale: Math.fround(scale), zeroPoint };
}

/** Per-output-channel symmetric int8 weights: `q[c] = round(w[c] / s_c)`, `s_c = max|w_c| / 127`. */
export function quantizeWeight(w: HostTensor<'float32'>): { q: Int8Array; scales: Float32Array } {
  const channels = w.shape[0]!;
  const per = w.data.length / channels;
  const q = new Int8Array(w.data.length);
  const scales = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    let max = 0;
    for (let i = c * per; i < (c + 1) * per; i++) max = Math.max(max, Math.abs(w.data[i]!));
    const s = max > 0 ? max / INT8_MAX : 1;
    scales[c] = s;
    const sf = scales[c]!;
    for (let i = c * per; i < (c + 1) * per; i++) {
      q[i] = Math.max(-INT8_MAX, Math.min(INT8_MAX, Math.round(w.data[i]! / sf)));
    }
  }
  return { q, scales };
}

/**
 * Rewrites every quantizable Conv of `model` (see `findConvSites`) as DQ(x) · DQ(w_int8) + DQ(b_int32)
 * → Conv → Q → DQ. Throws QUANTIZATION_INVALID when a needed range is missing or not finite.
 */
export function quantizeGraph(model: OnnxModel, options: QdqOptions): OnnxModel {
  const sites = findConvSites(model, options.keepFloat ?? DEFAULT_KEEP_FLOAT);
  const graph = model.graph;
  const added: OnnxInitializer[] = [];
  const names = new Set<string>([
    ...graph.initializers.map((i) => i.name),
    ...graph.nodes.flatMap((n) => [n.name, ...n.outputs]),
  ]);
  const unique = (base: string): string => {
    let name = base;
    for (let i = 1; names.has(name); i++) name = `${base}_${i}`;
    names.add(name);
    return name;
  };
  const constant = (base: string, tensor: HostTensor): string => {
    const name = unique(base);
    added.push({ name, data: { kind: 'inline', tensor } });
    return name;
  };
  const range = (tensor: string): { scale: number; zeroPoint: number } => {
    const r = options.ranges[tensor];
    if (!r || !Number.isFinite(r.min) || !Number.isFinite(r.max) || r.min > r.max) {
      throw new DcaeError(
        'QUANTIZATION_INVALID',
        `Quantizing ${graph.name}: no valid calibrated range for tensor "${tensor}" (got ${JSON.stringify(r)}). ` +
          'The ranges must come from calibrating this model and dcae version; run `dcae quantize` again.',
        { detail: { tensor } },
      );
    }
    return activationParams(r);
  };

  // One Q → DQ pair per activation tensor; `dequantized` maps a tensor to its DQ output.
  const dequantized = new Map<string, string>();
  const extra = new Map<OnnxNode, OnnxNode[]>(); // nodes to insert after a node (or at the start: key undefined)
  const before: OnnxNode[] = [];
  const renamedOutputs = new Map<OnnxNode, string>();
  const qdqNodes = (tensor: string, source: string, target: string): OnnxNode[] => {
    const { scale, zeroPoint } = range(tensor);
    const s = constant(`${tensor}/scale`, { dtype: 'float32', shape: [], data: Float32Array.of(scale) });
    const z = constant(`${tensor}/zero_point`, { dtype: 'uint8', shape: [], data: Uint8Array.of(zeroPoint) });
    const q = unique(`${tensor}/quantized`);
    return [
      {
        name: unique(`${tensor}/QuantizeLinear`),
        opType: 'QuantizeLinear',
        inputs: [source, s, z],
        outputs: [q],
        attributes: {},
      },
      {
        name: unique(`${tensor}/DequantizeLinear`),
        opType: 'DequantizeLinear',
        inputs: [q, s, z],
        outputs: [target],
        attributes: {},
      },
    ];
  };
  const producers = new Map<string, OnnxNode>();
  for (const node of graph.nodes) for (const out of node.outputs) producers.set(out, node);
  const siteOutputs = new Set(sites.map((s) => s.output));

  // Conv outputs: the Conv writes `<y>/float`, Q → DQ writes `y` for every consumer.
  for (const site of sites) {
    const raw = unique(`${site.output}/float`);
    renamedOutputs.set(site.node, raw);
    extra.set(site.node, qdqNodes(site.output, raw, site.output));
    dequantized.set(site.output, site.output);
  }
  // Conv inputs that no quantized Conv produced: a Q → DQ pair read by the quantized Convs only.
  for (const site of sites) {
    if (dequantized.has(site.input) || siteOutputs.has(site.input)) continue;
    const target = unique(`${site.input}/dequantized`);
    const pair = qdqNodes(site.input, site.input, target);
    const producer = producers.get(site.input);
    if (producer) extra.set(producer, [...(extra.get(producer) ?? []), ...pair]);
    else before.push(...pair);
    dequantized.set(site.input, target);
  }

  const rewritten = new Map<OnnxNode, OnnxNode[]>();
  for (const site of sites) {
    const x = dequantized.get(site.input)!;
    const xScale = range(site.input).scale;
    const { q, scales } = quantizeWeight(site.weight);
    const channels = scales.length;
    const base = `/${site.module.replaceAll('.', '/')}`;
    const wq = constant(`${base}/weight_int8`, { dtype: 'int8', shape: site.weight.shape, data: q });
    const ws = constant(`${base}/weight_scale`, { dtype: 'float32', shape: [channels], data: scales });
    const wz = constant(`${base}/weight_zero_point`, {
      dtype: 'int8',
      shape: [channels],
      data: new Int8Array(channels),
    });
    const w = unique(`${base}/weight_dequantized`);
    const nodes: OnnxNode[] = [
      {
        name: unique(`${base}/weight/DequantizeLinear`),
        opType: 'DequantizeLinear',
        inputs: [wq, ws, wz],
        outputs: [w],
        attributes: { axis: { kind: 'int', value: 0 } },
      },
    ];
    const inputs = [x, w];
    if (site.bias) {
      const bs = new Float32Array(channels);
      const bq = new Int32Array(channels);
      for (let c = 0; c < channels; c++) {
        bs[c] = xScale * scales[c]!;
        bq[c] = Math.max(-INT32_MAX, Math.min(INT32_MAX, Math.round(site.bias.data[c]! / bs[c]!)));
      }
      const bqName = constant(`${base}/bias_int32`, { dtype: 'int32', shape: [channels], data: bq });
      const bsName = constant(`${base}/bias_scale`, { dtype: 'float32', shape: [channels], data: bs });
      const bzName = constant(`${base}/bias_zero_point`, {
        dtype: 'int32',
        shape: [channels],
        data: new Int32Array(channels),
      });
      const b = unique(`${base}/bias_dequantized`);
      nodes.push({
        name: unique(`${base}/bias/DequantizeLinear`),
        opType: 'DequantizeLinear',
        inputs: [bqName, bsName, bzName],
        outputs: [b],
        attributes: { axis: { kind: 'int', value: 0 } },
      });
      inputs.push(b);
    }
    nodes.push({ ...site.node, inputs, outputs: [renamedOutputs.get(site.node)!] });
    rewritten.set(site.node, nodes);
  }

  const nodes: OnnxNode[] = [...before];
  for (const node of graph.nodes) {
    nodes.push(...(rewritten.get(node) ?? [node]));
    nodes.push(...(extra.get(node) ?? []));
  }
  const pruned = pruneDead({ ...graph, nodes, initializers: [...graph.initializers, ...added] });
  return { ...model, graph: pruned, metadata: { ...model.metadata, dtype: 'int8' } };
}

/** Drops nodes whose outputs nothing reads (subgraphs and graph outputs count) and unread initializers. */
export function pruneDead(graph: OnnxGraph): OnnxGraph {
  let nodes = [...graph.nodes];
  for (;;) {
    const read = new Set(graph.outputs.map((o) => o.name));
    for (const node of nodes) collectReads(node, read);
    const kept = nodes.filter((n) => n.outputs.some((o) => read.has(o)));
    if (kept.length === nodes.length) {
      const initializers = graph.initializers.filter((i) => read.has(i.name));
      invariant(kept.length > 0, () => `graph ${graph.name} has no live node left`);
      return { ...graph, nodes: kept, initializers };
    }
    nodes = kept;
  }
}

function collectReads(node: OnnxNode, read: Set<string>): void {
  for (const input of node.inputs) if (input) read.add(input);
  for (const attr of Object.values(node.attributes)) {
    if (attr.kind !== 'graph') continue;
    for (const inner of attr.value.nodes) collectReads(inner, read);
    for (const out of attr.value.outputs) read.add(out.name);
  }
}
