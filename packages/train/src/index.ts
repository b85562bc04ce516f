/** @dcae/train: training and adaptation of DC-AE models (see README.md and docs/training.md). */
export const TRAIN_PACKAGE = '@dcae/train';

export type {
  DiscriminatorState,
  DiscriminatorStepResult,
  LossName,
  LossWeights,
  OptimizerSpec,
  OptimizerState,
  StepResult,
  TrainStepOptions,
  TrainStepRunner,
} from './step/types.js';
export { biasCorrections, buildTrainStep, createTrainStepRunner } from './step/runner.js';
export type { TrainGraphStats, TrainStepGraph, TrainStepRunnerWithStats } from './step/runner.js';
export { IrGraph, importModel } from './ir/graph.js';
export type { ImportOptions, IrNode, IrValue } from './ir/graph.js';
export { inferNode } from './ir/shapes.js';
export { buildDcAeForward, checkForwardShape, globToRegExp, matchTrainable } from './ir/dcae.js';
export type { DcAeForward, ForwardShape } from './ir/dcae.js';
export { DIFFERENTIABLE_OPS, Emit, grad, requiresGrad } from './autodiff/grad.js';
export type { GradResult } from './autodiff/grad.js';
export { ADAM_STATE, checkOptimizerSpec, emitOptimizer } from './optim/index.js';
export type { OptimizerGraph, OptimizerParam, StateSlot } from './optim/index.js';
export { buildLoss, frequencyLoss, gradientLoss, LOSS_NAMES, msssimLoss, ssimLoss } from './losses/index.js';
export type { LossGraph } from './losses/index.js';
export {
  checkDiscriminatorInput,
  checkDiscriminatorWeights,
  DEFAULT_DISCRIMINATOR,
  discriminatorForward,
  discriminatorLayers,
  discriminatorOutputSize,
  hingeDiscriminatorLoss,
  hingeGeneratorTerm,
  initDiscriminatorWeights,
  resolveDiscriminatorSpec,
} from './gan/discriminator.js';
export type { DiscriminatorLayer, DiscriminatorSpec, HingeDiscriminatorLoss } from './gan/discriminator.js';
export { buildDiscriminatorStep, DISCRIMINATOR_OUTPUTS } from './gan/step.js';
export type { DiscriminatorStepGraph, DiscriminatorStepOptions } from './gan/step.js';
export { checkPerceptualWeights, perceptualLoss, perceptualWeightShapes } from './losses/perceptual.js';
export type { PerceptualOptions } from './losses/perceptual.js';
export { evalOp } from './reference/ops.js';
export { runReference } from './reference/interpreter.js';
export { gradCheck } from './reference/gradcheck.js';
export type { GradCheckOptions, GradCheckResult, TensorCheck } from './reference/gradcheck.js';
export type { RefTensor } from './reference/tensor.js';
// Loop, data plans, phases and checkpoint helpers (platform-neutral; docs/training-loop.md).
export * from './loop-exports.js';
