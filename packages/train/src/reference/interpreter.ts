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
  const env = new Map<string, RefTensor>();
  const get = (name: string): RefTensor | undefined => {
    if (name === '') return undefined;
    const hit = env.get(name) ?? feeds.get(name);
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
  };
  // Only the nodes the outputs depend on.
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
  for (let i = 0; i < g.nodes.length; i++) {
    if (!needed.has(i)) continue;
    const n = g.nodes[i]!;
    const results = evalOp(n.op, n.inputs.map(get), n.attrs);
    n.outputs.forEach((o, k) => env.set(o, results[k]!));
  }
  return new Map(outputs.map((o) => [o, get(o)!]));
}
