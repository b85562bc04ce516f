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
  /** Flat float32 state inputs (one vector over every trainable tensor, in `layout` order), e.g. `exp_avg`. */
  readonly stateInputs: readonly string[];
  /** Where each trainable tensor sits in the flat state vectors. */
  readonly layout: readonly StateSlot[];
  /** Length of the flat state vectors. */
  readonly stateLength: number;
  /** key → new weight value. */
  readonly newWeights: ReadonlyMap<string, string>;
  /** state input name → its new value. */
  readonly newState: ReadonlyMap<string, string>;
  /** Global gradient norm before clipping. */
  readonly gradNorm: string;
}

export interface StateSlot {
  readonly key: string;
  readonly offset: number;
  readonly shape: readonly number[];
  readonly size: number;
}

/** AdamW's state vectors; per tensor they are named `exp_avg.<key>` and `exp_avg_sq.<key>` (as in PyTorch's state_dict). */
export const ADAM_STATE = ['exp_avg', 'exp_avg_sq'] as const;

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
 * Emits the update over one flat vector of every trainable tensor (a "multi-tensor" update: about
 * 3 nodes per tensor plus a constant number, instead of ~16 per tensor). Graph inputs it declares:
 * `lr` (both); for AdamW also `bias_correction1` = 1 − β₁ᵗ and `bias_correction2` = 1 − β₂ᵗ (t = the
 * step being taken, computed on the host in float64) and the flat state `exp_avg`, `exp_avg_sq`.
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
  const layout: StateSlot[] = [];
  let stateLength = 0;
  for (const p of params) {
    const shape = e.shape(p.weight);
    const size = shape.reduce((a, b) => a * b, 1);
    layout.push({ key: p.key, offset: stateLength, shape, size });
    stateLength += size;
  }
  const flat = (values: readonly string[]): string => {
    const parts = values.map((v) => e.reshape(v, [e.shape(v).reduce((a, b) => a * b, 1)]));
    return parts.length === 1 ? parts[0]! : g.op1('Concat', parts, { axis: { kind: 'int', value: 0 } });
  };
  let grad = flat(params.map((p) => p.grad));
  const weights = flat(params.map((p) => p.weight));
  // Global norm (before clipping).
  const gradNorm = g.op1('Sqrt', [e.reduceSum(e.mul(grad, grad), [0], false)]);
  if (spec.clipGradNorm !== undefined) {
    const coef = g.op1('Min', [e.div(e.f32(spec.clipGradNorm), e.add(gradNorm, e.f32(1e-6))), e.f32(1)]);
    grad = e.mul(grad, coef);
  }
  const wd = spec.weightDecay ?? 0;
  // Decoupled weight decay: w ← w · (1 − lr·wd), applied before the gradient step.
  const decayed = wd > 0 ? e.mul(weights, e.sub(e.f32(1), e.scale(lr, wd))) : weights;
  const newState = new Map<string, string>();
  let updated: string;
  if (spec.kind === 'sgd') {
    updated = e.sub(decayed, e.mul(lr, grad));
  } else {
    const [b1, b2] = spec.betas ?? [0.9, 0.999];
    const eps = spec.eps ?? 1e-8;
    const bc1 = g.addInput('bias_correction1', 'float32', []);
    const bc2 = g.addInput('bias_correction2', 'float32', []);
    scalarInputs.push('bias_correction1', 'bias_correction2');
    const m = g.addInput(ADAM_STATE[0], 'float32', [stateLength]);
    const v = g.addInput(ADAM_STATE[1], 'float32', [stateLength]);
    const m1 = e.add(e.scale(m, b1), e.scale(grad, 1 - b1));
    const v1 = e.add(e.scale(v, b2), e.scale(e.mul(grad, grad), 1 - b2));
    const denom = e.add(e.div(g.op1('Sqrt', [v1]), g.op1('Sqrt', [bc2])), e.f32(eps));
    updated = e.sub(decayed, e.mul(e.div(lr, bc1), e.div(m1, denom)));
    newState.set(ADAM_STATE[0], m1);
    newState.set(ADAM_STATE[1], v1);
  }
  // One Slice per tensor rather than one Split with an output per tensor: onnxruntime's WebGPU EP
  // binds every output of a node as a storage buffer of one shader, and adapters allow only 8–12
  // per stage (docs/training.md, "Conformance: CPU vs WebGPU").
  const newWeights = new Map<string, string>();
  for (const slot of layout) {
    const piece =
      params.length === 1 ? updated : e.slice(updated, [slot.offset], [slot.offset + slot.size], [0]);
    newWeights.set(slot.key, e.reshape(piece, slot.shape));
  }
  return {
    scalarInputs,
    stateInputs: spec.kind === 'sgd' ? [] : [...ADAM_STATE],
    layout,
    stateLength,
    newWeights,
    newState,
    gradNorm,
  };
}
