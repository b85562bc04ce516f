import type { HostTensor } from '@dcae/core';
import { createRng } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { grad } from '../autodiff/grad.js';
import type { IrGraph } from '../ir/graph.js';
import { downstream, evaluate, neededNodes, runReference } from './interpreter.js';
import type { RefTensor } from './tensor.js';
import { fromHost } from './tensor.js';

/**
 * Gradient check: the float32 gradients of the emitted ONNX graph (run by a real runtime) against
 * central finite differences of the float64 reference interpreter on the same forward graph
 * (docs/training.md, "Checking gradients").
 */

/** Relative errors above this are re-measured with a 10× smaller step (kink crossings). */
const RETRY_ABOVE = 1e-3;

export interface TensorCheck {
  readonly name: string;
  readonly coords: number;
  /** max over the checked coordinates of |ort − fd| / max(|fd|, floor), floor = 1e-2 · rms(this gradient) + 1e-4 · max rms(any checked gradient) (× √n along a direction). */
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
  /** @defaultValue 1e-6 (absolute, in float64) */
  readonly epsilon?: number;
  readonly seed?: number;
  /** 'coords': `coords` random coordinates per tensor; 'direction': one random direction per tensor. @defaultValue 'coords' */
  readonly mode?: 'coords' | 'direction';
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
  const order = neededNodes(g, [loss]);
  const baseEnv = evaluate(g, base, order);
  const referenceLoss = baseEnv.get(loss)?.data[0] ?? runReference(g, base, [loss]).get(loss)!.data[0]!;
  const rng = createRng(options.seed ?? 1234);
  const eps = options.epsilon ?? 1e-6;
  const count = options.coords ?? 3;
  const tensors: TensorCheck[] = [];
  const rmsOf = (p: string): number => {
    const a = out[`grad:${p}`]!.data as Float32Array;
    let sum = 0;
    for (const v of a) sum += v * v;
    return Math.sqrt(sum / Math.max(1, a.length));
  };
  // Gradients that are ~0 compared with the rest of the model (e.g. LiteMLA q/k at a 1×1 token
  // grid) are float32 noise in any implementation: judged against 1e-4 of the largest RMS gradient.
  const maxRms = Math.max(...params.map(rmsOf));
  for (const p of params) {
    const analytic = out[`grad:${p}`]!.data as Float32Array;
    const original = base.get(p)!;
    const affected = downstream(g, p, order);
    // L(w + δ) in float64, re-evaluating only the nodes downstream of w.
    const lossWith = (data: Float64Array): number => {
      const feeds = new Map(base);
      feeds.set(p, { shape: original.shape, data });
      const env = evaluate(g, feeds, affected, baseEnv);
      return (env.get(loss) ?? baseEnv.get(loss))!.data[0]!;
    };
    const floor = 1e-2 * rmsOf(p) + 1e-4 * maxRms + 1e-12;
    let worstRelative = 0;
    let worstAbsolute = 0;
    let checked = 0;
    if (options.mode === 'direction') {
      // Directional derivative along a random unit-variance direction: checks every coordinate at once.
      const dir = rng.fillNormal(new Float64Array(original.data.length));
      const fdAt = (h: number): number =>
        (lossWith(original.data.map((w, i) => w + h * dir[i]!)) -
          lossWith(original.data.map((w, i) => w - h * dir[i]!))) /
        (2 * h);
      let a = 0;
      for (let i = 0; i < dir.length; i++) a += analytic[i]! * dir[i]!;
      const errAt = (fd: number): [number, number] => [
        Math.abs(a - fd),
        Math.abs(a - fd) / Math.max(Math.abs(fd), floor * Math.sqrt(dir.length)),
      ];
      [worstAbsolute, worstRelative] = errAt(fdAt(eps));
      // A ReLU/Abs kink inside ±ε spoils one difference; a second, smaller step tells the two apart.
      if (worstRelative > RETRY_ABOVE) {
        const second = errAt(fdAt(eps / 10));
        if (second[1] < worstRelative) [worstAbsolute, worstRelative] = second;
      }
      checked = dir.length;
    } else {
      const picks = new Set<number>();
      while (picks.size < Math.min(count, original.data.length))
        picks.add(Math.floor(rng.uniform() * original.data.length));
      for (const idx of picks) {
        const at = (delta: number): number => {
          const data = Float64Array.from(original.data);
          data[idx] = data[idx]! + delta;
          return lossWith(data);
        };
        const errAt = (h: number): [number, number] => {
          const fd = (at(h) - at(-h)) / (2 * h);
          const abs = Math.abs(analytic[idx]! - fd);
          return [abs, abs / Math.max(Math.abs(fd), floor)];
        };
        let [abs, rel] = errAt(eps);
        if (rel > RETRY_ABOVE) {
          const second = errAt(eps / 10);
          if (second[1] < rel) [abs, rel] = second;
        }
        worstAbsolute = Math.max(worstAbsolute, abs);
        worstRelative = Math.max(worstRelative, rel);
      }
      checked = picks.size;
    }
    tensors.push({ name: p, coords: checked, worstRelative, worstAbsolute });
  }
  return {
    loss: (out.loss!.data as Float32Array)[0]!,
    referenceLoss,
    tensors,
    worst: tensors.reduce((m, t) => Math.max(m, t.worstRelative), 0),
  };
}
