export { loadAutoencoder } from './loader.js';
export type { Autoencoder } from './loader.js';
export type {
  Autoencoder as DcAeAutoencoder,
  AutoencoderDType,
  AutoencoderPart,
  AutoencoderProgress,
  AutoencoderSummary,
  BuildGraphOptions,
  ExecutionOptions,
  LoadAutoencoderOptions,
  ProgressStage,
  RunCallOptions,
} from './dc-ae/autoencoder.js';
export {
  axisTiles,
  DEFAULT_MEMORY_BUDGET_BYTES,
  defaultTileGeometry,
  estimateActivationBytes,
  planRun,
} from './dc-ae/tiling.js';
export type { AxisTile, PlanOptions, RunPlan, TileGeometry, TilingOption } from './dc-ae/tiling.js';
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
export type { CheckpointFormat, WeightDType } from './dc-ae/weights.js';
export { buildDecoderGraph, buildEncoderGraph, DECODER_IO, ENCODER_IO } from './dc-ae/graph.js';
export type { DcAeGraphOptions, GraphDType } from './dc-ae/graph.js';
export type { OnnxExportFile, OnnxExportOptions, OnnxWeightsMode } from './dc-ae/onnx-export.js';
export * from './image/index.js';
export { COMBINED_AUTOENCODER_PREFIX, findKnownModel, KNOWN_MODELS, listKnownModels } from './registry.js';
export type { KnownModel, KnownModelKind, ModelLayout } from './registry.js';
export { countMacs } from './dc-ae/macs.js';
export type { MacCount } from './dc-ae/macs.js';
export {
  isSdVaeConfigJson,
  parseSdVaeConfig,
  SD15_VAE_CONFIG,
  SD_VAE_CONFIG_LIMITS,
  sdVaeCompressionRatio,
  validateSdVaeConfig,
} from './sd-vae/config.js';
export type { SdVaeConfig } from './sd-vae/config.js';
export type { SdVaeAutoencoder } from './sd-vae/autoencoder.js';
export { bindSdVaeWeights, countSdVaeParameters, sdVaeCheckpointLayout, sdVaeKey } from './sd-vae/weights.js';
export type { SdVaeParam } from './sd-vae/weights.js';
export { buildSdVaeDecoderGraph, buildSdVaeEncoderGraph } from './sd-vae/graph.js';
export type { SdVaeGraphOptions } from './sd-vae/graph.js';
export { countSdVaeMacs } from './sd-vae/macs.js';
export { calibrateAutoencoder } from './quantize/calibrate.js';
export type { CalibrateOptions } from './quantize/calibrate.js';
export {
  activationParams,
  calibrationTensors,
  DEFAULT_KEEP_FLOAT,
  findConvSites,
  quantizeGraph,
  quantizeWeight,
} from './quantize/qdq.js';
export type { ActivationRanges, ConvSite, QdqOptions, TensorRange } from './quantize/qdq.js';
export {
  formatQuantizationSpec,
  parseQuantizationSpec,
  QUANTIZATION_FILE,
  QUANTIZATION_FORMAT,
  QUANTIZATION_GRAPH_VERSION,
} from './quantize/spec.js';
export type { QuantizationPart, QuantizationSpec } from './quantize/spec.js';
export { isWasmRuntime, WASM32_MEMORY_BYTES, WASM_HEADROOM_BYTES, wasmMemoryBudget } from './wasm-memory.js';
