export {
  cropDraw,
  cropRegion,
  epochPermutation,
  evalRegion,
  heldOutSplit,
  SampleOrder,
} from './data/plan.js';
export type { CropDraw, CropOptions } from './data/plan.js';
export { resampleRegion } from './data/resample.js';
export type { Region } from './data/resample.js';
export type { TrainData } from './data/types.js';
export {
  PHASE_PRESETS,
  parseLossSpec,
  parseTrainConfigJson,
  resolveTrainConfig,
  validateTrainConfig,
} from './phases/presets.js';
export type { PhaseNumber, TrainConfig, TrainConfigOverrides } from './phases/presets.js';
export { learningRate } from './trainer/schedule.js';
export { matchTrainable as matchTrainableGlobs } from './trainer/globs.js';
export { evaluate, runTrainLoop } from './trainer/loop.js';
export type { EvalResult, LoopOptions, LoopResult, StepRecord } from './trainer/loop.js';
export { previewGrid } from './trainer/preview.js';
export { randomDcAeWeights } from './checkpoint/init.js';
export { dcAeConfigToDiffusersJson } from './checkpoint/diffusers-config.js';
