import { DcaeError } from '@dcae/core';
import type { Emit } from '../autodiff/grad.js';
import type { OptimizerSpec } from '../step/types.js';

/**
 * Optimizers as graph nodes (docs/training.md, "Optimizers"): the step graph takes the weights,
 * their state and scalar hyper-parameters as inputs and returns the new weights and state, so a
 * plain inference session runs a whole training step. The update follows PyTorch's `AdamW` and
 * `SGD` (no momentum) exactly, including global-norm clipping as `clip_grad_norm_` does it.
 */

export interface OptimizerParam {
  /** Checkpoint key (also the graph input name of the weight). */
  readonly key: string;
  readonly weight: string;
  readonly grad: string;
}

export interface OptimizerGraph {
  /** Scalar float32 graph inputs the runner feeds each step, by name. */
  readonly scalarInputs: readonly string[];
  /** State tensors per weight (graph input name → key prefix), e.g. `exp_avg.<key>`. */
  readonly statePrefixes: readonly string[];
  /** key → new weight value. */
  readonly newWeights: ReadonlyMap<string, string>;
  /** `<prefix><key>` → new state value. */
  readonly newState: ReadonlyMap<string, string>;
  /** Global gradient norm before clipping. */
  readonly gradNorm: string;
}

export const ADAM_STATE = ['exp_avg.', 'exp_avg_sq.'] as const;

export function checkOptimizerSpec(spec: OptimizerSpec): void {
  const bad = (what: string): never => {
    throw new DcaeError('INVALID_ARGUMENT', `Optimizer ${spec.kind}: ${what}.`);
  };
  if (spec.kind !== 'adamw' && spec.kind !== 'sgd')
    bad(`unknown kind "${String(spec.kind)}"; expected adamw or sgd`);
  const [b1, b2] = spec.betas ?? [0.9, 0.999];
  if (!(b1 >= 0 && b1 < 1 && b2 >= 0 && b2 < 1)) bad(`betas must lie in [0, 1); got ${b1},${b2}`);
  if (spec.eps !== undefined && !(spec.eps > 0)) bad(`eps must be > 0; got ${spec.eps}`);
  if (spec.weightDecay !== undefined && !(spec.weightDecay >= 0))
    bad(`weight decay must be ≥ 0; got ${spec.weightDecay}`);
  if (spec.clipGradNorm !== undefined && !(spec.clipGradNorm > 0))
    bad(`clipGradNorm must be > 0; got ${spec.clipGradNorm}`);
}

/**
 * Emits the update. Graph inputs it declares: `lr` (both); for AdamW also `bias_correction1` =
 * 1 − β₁ᵗ and `bias_correction2` = 1 − β₂ᵗ (t = the step being taken, computed on the host in
 * float64), and the state `exp_avg.<key>`, `exp_avg_sq.<key>` per weight.
 */
export function emitOptimizer(
  e: Emit,
  spec: OptimizerSpec,
  params: readonly OptimizerParam[],
): OptimizerGraph {
  checkOptimizerSpec(spec);
  const g = e.g;
  const lr = g.addInput('lr', 'float32', []);
  const scalarInputs = ['lr'];
  // Global norm (before clipping).
  const squares = params.map((p) =>
    e.reduceSum(
      e.mul(p.grad, p.grad),
      e.shape(p.grad).map((_, i) => i),
      false,
    ),
  );
  const gradNorm = g.op1('Sqrt', [e.sum(squares)]);
  let grads = params.map((p) => p.grad);
  if (spec.clipGradNorm !== undefined) {
    const coef = g.op1('Min', [e.div(e.f32(spec.clipGradNorm), e.add(gradNorm, e.f32(1e-6))), e.f32(1)]);
    grads = grads.map((d) => e.mul(d, coef));
  }
  const wd = spec.weightDecay ?? 0;
  const newWeights = new Map<string, string>();
  const newState = new Map<string, string>();
  // Decoupled weight decay: w ← w · (1 − lr·wd), applied before the gradient step.
  const decay = wd > 0 ? e.sub(e.f32(1), e.scale(lr, wd)) : undefined;
  if (spec.kind === 'sgd') {
    params.forEach((p, i) => {
      const w = decay ? e.mul(p.weight, decay) : p.weight;
      newWeights.set(p.key, e.sub(w, e.mul(lr, grads[i]!)));
    });
    return { scalarInputs, statePrefixes: [], newWeights, newState, gradNorm };
  }
  const [b1, b2] = spec.betas ?? [0.9, 0.999];
  const eps = spec.eps ?? 1e-8;
  const bc1 = g.addInput('bias_correction1', 'float32', []);
  const bc2 = g.addInput('bias_correction2', 'float32', []);
  scalarInputs.push('bias_correction1', 'bias_correction2');
  const stepSize = e.div(lr, bc1);
  const bc2Sqrt = g.op1('Sqrt', [bc2]);
  params.forEach((p, i) => {
    const d = grads[i]!;
    const shape = e.shape(p.weight);
    const m = g.addInput(`${ADAM_STATE[0]}${p.key}`, 'float32', shape);
    const v = g.addInput(`${ADAM_STATE[1]}${p.key}`, 'float32', shape);
    const m1 = e.add(e.scale(m, b1), e.scale(d, 1 - b1));
    const v1 = e.add(e.scale(v, b2), e.scale(e.mul(d, d), 1 - b2));
    const denom = e.add(e.div(g.op1('Sqrt', [v1]), bc2Sqrt), e.f32(eps));
    const w = decay ? e.mul(p.weight, decay) : p.weight;
    newWeights.set(p.key, e.sub(w, e.mul(stepSize, e.div(m1, denom))));
    newState.set(`${ADAM_STATE[0]}${p.key}`, m1);
    newState.set(`${ADAM_STATE[1]}${p.key}`, v1);
  });
  return { scalarInputs, statePrefixes: [...ADAM_STATE], newWeights, newState, gradNorm };
}
