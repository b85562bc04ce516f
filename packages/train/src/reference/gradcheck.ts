import type { HostTensor } from '@dcae/core';
import { createRng } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { grad } from '../autodiff/grad.js';
import type { IrGraph } from '../ir/graph.js';
import { runReference } from './interpreter.js';
import type { RefTensor } from './tensor.js';
import { fromHost } from './tensor.js';

/**
 * Gradient check: the float32 gradients of the emitted ONNX graph (run by a real runtime) against
 * central finite differences of the float64 reference interpreter on the same forward graph
 * (docs/training.md, "Checking gradients").
 */

export interface TensorCheck {
  readonly name: string;
  readonly coords: number;
  /** max over the checked coordinates of |ort − fd| / max(|fd|, floor), floor = 1e-2 · rms(ort gradient) + 1e-9. */
  readonly worstRelative: number;
  readonly worstAbsolute: number;
}

export interface GradCheckResult {
  readonly loss: number;
  readonly referenceLoss: number;
  readonly tensors: readonly TensorCheck[];
  readonly worst: number;
}

export interface GradCheckOptions {
  /** Coordinates checked per tensor (random, seeded). @defaultValue 3 */
  readonly coords?: number;
  /** @defaultValue 1e-5 (absolute, in float64) */
  readonly epsilon?: number;
  readonly seed?: number;
}

/**
 * Appends the backward pass of `loss` w.r.t. `params` (weights of `g` or inputs) to `g`, runs it
 * with `runtime`, and compares each gradient with finite differences. `feeds` holds every graph
 * input (float32).
 */
export async function gradCheck(
  runtime: RuntimeV1,
  g: IrGraph,
  loss: string,
  params: readonly string[],
  feeds: ReadonlyMap<string, HostTensor>,
  options: GradCheckOptions = {},
): Promise<GradCheckResult> {
  const { grads } = grad(g, loss, params);
  const paramSet = new Set(params);
  const names = params.map((p) => `grad:${p}`);
  const model = g.toModel({
    name: 'gradcheck',
    outputs: [loss, ...params.map((p) => grads.get(p)!)],
    outputNames: ['loss', ...names],
    inputWeights: new Set(params.filter((p) => g.weights.has(p))),
  });
  const session = await runtime.createSession(serializeModel(model));
  const host = new Map<string, HostTensor>(feeds);
  for (const p of params) if (g.weights.has(p)) host.set(p, g.weights.get(p)!);
  const sessionFeeds: Record<string, HostTensor> = {};
  for (const name of session.inputNames) sessionFeeds[name] = host.get(name)!;
  const out = await session.run(sessionFeeds);
  await session.dispose();

  const base = new Map<string, RefTensor>();
  for (const [name, t] of host) base.set(name, fromHost(t));
  const lossAt = (over: Map<string, RefTensor>): number => runReference(g, over, [loss]).get(loss)!.data[0]!;
  const referenceLoss = lossAt(base);
  const rng = createRng(options.seed ?? 1234);
  const eps = options.epsilon ?? 1e-5;
  const count = options.coords ?? 3;
  const tensors: TensorCheck[] = [];
  for (const p of params) {
    const analytic = out[`grad:${p}`]!.data as Float32Array;
    let rms = 0;
    for (const v of analytic) rms += v * v;
    rms = Math.sqrt(rms / Math.max(1, analytic.length));
    const floor = 1e-2 * rms + 1e-9;
    const original = base.get(p)!;
    let worstRelative = 0;
    let worstAbsolute = 0;
    const picks = new Set<number>();
    while (picks.size < Math.min(count, original.data.length)) picks.add(Math.floor(rng.uniform() * original.data.length));
    for (const idx of picks) {
      const at = (delta: number): number => {
        const data = Float64Array.from(original.data);
        data[idx] = data[idx]! + delta;
        const over = new Map(base);
        over.set(p, { shape: original.shape, data });
        return lossAt(over);
      };
      const fd = (at(eps) - at(-eps)) / (2 * eps);
      const a = analytic[idx]!;
      const abs = Math.abs(a - fd);
      worstAbsolute = Math.max(worstAbsolute, abs);
      worstRelative = Math.max(worstRelative, abs / Math.max(Math.abs(fd), floor));
    }
    void paramSet;
    tensors.push({ name: p, coords: picks.size, worstRelative, worstAbsolute });
  }
  return {
    loss: (out.loss!.data as Float32Array)[0]!,
    referenceLoss,
    tensors,
    worst: tensors.reduce((m, t) => Math.max(m, t.worstRelative), 0),
  };
}
