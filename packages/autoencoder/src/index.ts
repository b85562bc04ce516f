export { loadAutoencoder } from './dc-ae/autoencoder.js';
export type {
  Autoencoder,
  AutoencoderPart,
  AutoencoderSummary,
  LoadAutoencoderOptions,
  LoadProgress,
  RunCallOptions,
} from './dc-ae/autoencoder.js';
export { memoryModelFiles, detectModel } from './model-files.js';
export type { DetectedModel, ModelFiles } from './model-files.js';
export {
  DC_AE_CONFIG_LIMITS,
  parseDcAeConfig,
  spatialCompressionRatio,
  validateDcAeConfig,
} from './dc-ae/config.js';
export type {
  DcAeActivation,
  DcAeBlockType,
  DcAeConfig,
  DcAeDecoderConfig,
  DcAeEncoderConfig,
  DcAeNormType,
  DcAeStagesConfig,
} from './dc-ae/config.js';
export { DC_AE_PRESET_NAMES, DC_AE_PRESETS, isDcAePresetName, presetConfig } from './dc-ae/presets.js';
export type { DcAePresetName } from './dc-ae/presets.js';
export {
  countParameters,
  dcAeCheckpointLayout,
  originalKeyFlags,
  originalToDiffusersKey,
} from './dc-ae/weights-map.js';
export type {
  BatchNormFold,
  CheckpointParam,
  DcAeCheckpointLayout,
  MappedKey,
  OriginalKeyFlags,
  ParamCounts,
  ParamRole,
} from './dc-ae/weights-map.js';
export type { CheckpointFormat } from './dc-ae/weights.js';
export { buildDecoderGraph, buildEncoderGraph, DECODER_IO, ENCODER_IO } from './dc-ae/graph.js';
export type { DcAeGraphOptions } from './dc-ae/graph.js';
export type { OnnxExportFile, OnnxExportOptions, OnnxWeightsMode } from './dc-ae/onnx-export.js';
export * from './image/index.js';
