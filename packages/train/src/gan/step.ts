import type { HostTensor } from '@dcae/core';
import type { OnnxModel } from '@dcae/core/onnx';
import { Emit, grad } from '../autodiff/grad.js';
import { IrGraph } from '../ir/graph.js';
import { emitOptimizer } from '../optim/index.js';
import type { StateSlot } from '../optim/index.js';
import type { OptimizerSpec } from '../step/types.js';
import type { DiscriminatorSpec } from './discriminator.js';
import { checkDiscriminatorInput, discriminatorForward, hingeDiscriminatorLoss } from './discriminator.js';

/**
 * The discriminator's training-step graph (docs/training.md, "The GAN term"): inputs `real` and
 * `fake` [B, C, H, W] (the generator step's reconstruction, a constant here), the discriminator's
 * weights (trainable) and its AdamW state; outputs the hinge loss, mean logits, the gradient norm,
 * the new weights and the new state. Real and fake go through the discriminator as one batch of 2B
 * (no batch-dependent layer, so this equals two passes).
 */

export const DISCRIMINATOR_OUTPUTS = {
  loss: 'd_loss',
  real: 'd_real',
  fake: 'd_fake',
  gradNorm: 'd_grad_norm',
} as const;

export interface DiscriminatorStepOptions {
  readonly spec: DiscriminatorSpec;
  readonly weights: ReadonlyMap<string, HostTensor>;
  readonly batch: number;
  readonly channels: number;
  readonly height: number;
  readonly width: number;
  readonly optimizer: OptimizerSpec;
}

export interface DiscriminatorStepGraph {
  readonly g: IrGraph;
  readonly model: OnnxModel;
  readonly keys: readonly string[];
  /** IR value per model output name. */
  readonly outputs: ReadonlyMap<string, string>;
  readonly stateInputs: readonly string[];
  readonly stateLayout: readonly StateSlot[];
  readonly stateLength: number;
}

export function buildDiscriminatorStep(options: DiscriminatorStepOptions): DiscriminatorStepGraph {
  const { batch, channels, height, width, spec } = options;
  checkDiscriminatorInput(spec, height, width);
  const g = new IrGraph();
  const shape = [batch, channels, height, width];
  const real = g.addInput('real', 'float32', shape);
  const fake = g.addInput('fake', 'float32', shape);
  const e = new Emit(g);
  const both = g.op1('Concat', [real, fake], { axis: { kind: 'int', value: 0 } });
  const logits = discriminatorForward(g, both, spec, options.weights);
  const half = (from: number): string => e.slice(logits, [from], [from + batch], [0]);
  const hinge = hingeDiscriminatorLoss(e, half(0), half(batch));
  const keys = [...options.weights.keys()];
  const { grads } = grad(g, hinge.loss, keys);
  const opt = emitOptimizer(
    e,
    options.optimizer,
    keys.map((key) => ({ key, weight: key, grad: grads.get(key)! })),
  );
  const outputs: [string, string][] = [
    [DISCRIMINATOR_OUTPUTS.loss, hinge.loss],
    [DISCRIMINATOR_OUTPUTS.real, hinge.real],
    [DISCRIMINATOR_OUTPUTS.fake, hinge.fake],
    [DISCRIMINATOR_OUTPUTS.gradNorm, opt.gradNorm],
    ...keys.map((key): [string, string] => [`new.${key}`, opt.newWeights.get(key)!]),
    ...opt.stateInputs.map((name): [string, string] => [`new.${name}`, opt.newState.get(name)!]),
  ];
  const model = g.toModel({
    name: 'dcae_discriminator_step',
    outputs: outputs.map(([, v]) => v),
    outputNames: outputs.map(([n]) => n),
    inputWeights: new Set(keys),
  });
  return {
    g,
    model,
    keys,
    outputs: new Map(outputs),
    stateInputs: opt.stateInputs,
    stateLayout: opt.layout,
    stateLength: opt.stateLength,
  };
}
