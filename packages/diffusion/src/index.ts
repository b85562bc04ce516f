// Models: configs, presets, graphs, loading
export { hasNullClass, latentShape, parseDiffusionConfig } from './config.js';
export type { BackboneConfig, DiffusionModelConfig, DitConfig, Prediction, UvitConfig } from './config.js';
export { DIFFUSION_PRESETS, isDiffusionPresetName } from './presets.js';
export type { DiffusionPreset, DiffusionPresetName } from './presets.js';
export { DIFFUSION_MODELS, DIFFUSION_ORG, MODEL_CATALOG } from './catalog.js';
export { buildDiffusionGraph, CONFIG_FILE, loadDiffusionModel, WEIGHTS_FILE } from './model.js';
export type {
  BuildDiffusionGraphOptions,
  CheckpointFiles,
  DiffusionModel,
  LoadDiffusionModelOptions,
} from './model.js';
export type { AttentionKernel } from './graph/layers.js';
export { hasTensorsUnder, loadGenerator } from './generator.js';
export type { Generator, LoadGeneratorOptions } from './generator.js';
export { timestepEmbedding } from './graph/timestep-embedding.js';

// Generation
export { compatibleSamplers, DEFAULT_GUIDANCE, DEFAULT_STEPS, generate } from './pipeline.js';
export type {
  GenerateOptions,
  GenerateProgress,
  GenerateResult,
  InjectedNoise,
  LatentDecoder,
} from './pipeline.js';
export { ditGuidedPrediction, usitGuidedVelocity, uvitGuidedNoise } from './guidance.js';
export type { Conditioning } from './guidance.js';

// Samplers and their schedules (pure functions; generate() composes them)
export { SAMPLER_NAMES } from './samplers/types.js';
export type { SamplerName, SamplerRun, SamplerStep } from './samplers/types.js';
export { ddpmStep, sampleDdpm } from './samplers/ddpm.js';
export type { DdpmModel, DdpmPrediction, DdpmSamplerOptions, DdpmStepResult } from './samplers/ddpm.js';
export { dpmSolverOrders, dpmSolverPlan, dpmSolverStep, sampleDpmSolver } from './samplers/dpm-solver.js';
export type {
  DpmSolverPlan,
  DpmSolverSamplerOptions,
  DpmSolverStepPlan,
  NoisePrediction,
} from './samplers/dpm-solver.js';
export { flowDenoised, heunStep, sampleHeun } from './samplers/heun.js';
export type { HeunSamplerOptions, VelocityModel } from './samplers/heun.js';
export { sampleDopri5 } from './samplers/dopri5.js';
export type { Dopri5SamplerOptions, Dopri5Tolerances } from './samplers/dopri5.js';
export {
  DDPM_TRAIN_STEPS,
  ddpmSchedule,
  linearBetas,
  spaceTimesteps,
} from './schedules/gaussian-diffusion.js';
export type { DdpmSchedule } from './schedules/gaussian-diffusion.js';
export {
  discreteNoiseSchedule,
  inverseLambda,
  marginalAlpha,
  marginalLambda,
  marginalLogMeanCoeff,
  marginalStd,
  uvitBetas,
} from './schedules/noise-schedule-vp.js';
export type { NoiseScheduleVP } from './schedules/noise-schedule-vp.js';
