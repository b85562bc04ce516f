import type { IrGraph } from '../ir/graph.js';
import { evalOp } from './ops.js';
import type { RefTensor } from './tensor.js';
import { fromHost } from './tensor.js';

/**
 * Runs an IR graph's nodes in float64. `feeds` may override any input, weight or constant by
 * name (finite differences perturb weights this way). Returns the requested values.
 */
export function runReference(
  g: IrGraph,
  feeds: ReadonlyMap<string, RefTensor>,
  outputs: readonly string[],
): Map<string, RefTensor> {
  const env = evaluate(g, feeds, neededNodes(g, outputs, feeds));
  return new Map(outputs.map((o) => [o, lookup(g, env, feeds, o)!]));
}

function lookup(
  g: IrGraph,
  env: Map<string, RefTensor>,
  feeds: ReadonlyMap<string, RefTensor>,
  name: string,
): RefTensor | undefined {
  if (name === '') return undefined;
  const hit = feeds.get(name) ?? env.get(name);
  if (hit) return hit;
  const c = g.constValue(name);
  if (c) return c;
  const w = g.weights.get(name);
  if (w) {
    const r = fromHost(w);
    env.set(name, r);
    return r;
  }
  throw new Error(`reference: no value for ${name}`);
}

/** Indices of the nodes `outputs` depend on (stopping at fed values). */
export function neededNodes(
  g: IrGraph,
  outputs: readonly string[],
  feeds: ReadonlyMap<string, RefTensor> = new Map(),
): number[] {
  const producer = new Map<string, number>();
  g.nodes.forEach((n, i) => n.outputs.forEach((o) => producer.set(o, i)));
  const needed = new Set<number>();
  const stack = [...outputs];
  const seen = new Set<string>();
  while (stack.length) {
    const v = stack.pop()!;
    if (seen.has(v) || feeds.has(v)) continue;
    seen.add(v);
    const i = producer.get(v);
    if (i !== undefined && !needed.has(i)) {
      needed.add(i);
      stack.push(...g.nodes[i]!.inputs.filter((x) => x !== ''));
    }
  }
  return [...needed].sort((a, b) => a - b);
}

/** Evaluates the nodes `indices` (ascending) on top of `base` values; returns the full environment. */
export function evaluate(
  g: IrGraph,
  feeds: ReadonlyMap<string, RefTensor>,
  indices: readonly number[],
  base?: ReadonlyMap<string, RefTensor>,
): Map<string, RefTensor> {
  const env = new Map<string, RefTensor>(base);
  for (const i of indices) {
    const n = g.nodes[i]!;
    const results = evalOp(
      n.op,
      n.inputs.map((x) => lookup(g, env, feeds, x)),
      n.attrs,
    );
    n.outputs.forEach((o, k) => env.set(o, results[k]!));
  }
  return env;
}

/** Nodes among `indices` that depend on `source` (forward reachability). */
export function downstream(g: IrGraph, source: string, indices: readonly number[]): number[] {
  const reached = new Set([source]);
  const out: number[] = [];
  for (const i of indices) {
    const n = g.nodes[i]!;
    if (n.inputs.some((x) => reached.has(x))) {
      out.push(i);
      for (const o of n.outputs) reached.add(o);
    }
  }
  return out;
}
