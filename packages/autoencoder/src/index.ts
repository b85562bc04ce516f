// The generic layer (base/) every family builds on.
export { loadAutoencoder } from './loader.js';
export type { Autoencoder, LoadAutoencoderOptions } from './loader.js';
export type {
  AutoencoderDType,
  AutoencoderPart,
  AutoencoderProgress,
  AutoencoderSummary,
  BaseAutoencoder,
  BaseLoadOptions,
  BuildGraphOptions,
  CheckpointFormat,
  ExecutionOptions,
  MacCount,
  ParamCounts,
  ProgressStage,
  RunCallOptions,
  WeightsFormat,
} from './base/types.js';
export { PartModel } from './base/autoencoder.js';
export { padChannels as padLatentChannels, takeChannels as takeLatentChannels } from './base/runner.js';
export type { FacadeOptions, FamilyModel } from './base/autoencoder.js';
export type { FamilyGraphOptions, ModelWeights, PartGraphBuilder, PartWeights } from './base/part-graph.js';
export {
  axisTiles,
  checkTileGeometry,
  CLI_TILE_FLAGS,
  DEFAULT_MEMORY_BUDGET_BYTES,
  defaultOverlap,
  defaultTileGeometry,
  planTiledRun,
  TILE_STYLES,
} from './base/tiling.js';
export type {
  AxisTile,
  PlanModel,
  PlanOptions,
  ResolvedTileGeometry,
  RunPlan,
  TileGeometry,
  TileOptionNames,
  TileStyle,
  TilingOption,
} from './base/tiling.js';
export {
  formatLatentMetadata,
  LATENT_FORMAT_VERSION,
  LATENT_METADATA_KEYS,
  latentForDecoder,
  modelIdentity,
  parseLatentMetadata,
  sameModel,
} from './latent-metadata.js';
export type {
  DecoderLatent,
  LatentDecoderModel,
  LatentForDecoderOptions,
  LatentMetadata,
  LatentSpace,
} from './latent-metadata.js';
export { CONFIG_FILE, openWeights, WEIGHTS_FILE } from './base/checkpoint.js';
export { DECODER_IO, ENCODER_IO } from './base/io.js';
export type { GraphDType } from './base/io.js';
export type { Activation } from './base/layers.js';
export type { OnnxExportFile, OnnxExportOptions, OnnxWeightsMode } from './base/onnx-export.js';
export type { BoundTensor, WeightBinding, WeightDType } from './base/weights.js';
/** @deprecated Since 0.1: import from `@dcae/hub`; these re-exports go in 0.2. */
export { memoryModelFiles } from '@dcae/hub';
/** @deprecated Since 0.1: import from `@dcae/hub`. */
export type { ModelFiles } from '@dcae/hub';
// DC-AE
export { adaptiveChannelsRefusal, loadDcAe } from './dc-ae/load.js';
export type { DcAeAutoencoder, LoadDcAeOptions } from './dc-ae/load.js';
export { estimateActivationBytes, planRun } from './dc-ae/plan.js';
export { detectModel } from './dc-ae/detect.js';
export type { DetectedModel } from './dc-ae/detect.js';
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
  ParamRole,
} from './dc-ae/weights-map.js';
export { buildDecoderGraph, buildEncoderGraph } from './dc-ae/graph.js';
/** torch `pixel_shuffle` / `pixel_unshuffle` (factor 2) as ONNX subgraphs, for graphs built with `@dcae/core/onnx`. */
export { pixelShuffle, pixelUnshuffle } from './dc-ae/blocks.js';
export type { DcAeGraphOptions } from './dc-ae/graph.js';
export * from './image/index.js';
/** @deprecated Since 0.1: import from `@dcae/hub`; this re-export goes in 0.2. */
export { COMBINED_AUTOENCODER_PREFIX } from '@dcae/hub';
export { findKnownModel, KNOWN_MODELS, listKnownModels } from './deprecated-catalog.js';
/** @deprecated Since 0.1: import from `@dcae/hub`. */
export type { KnownModel, KnownModelKind, ModelLayout } from '@dcae/hub';
export { countMacs } from './dc-ae/macs.js';
export {
  isSdVaeConfigJson,
  parseSdVaeConfig,
  SD15_VAE_CONFIG,
  SD_VAE_CONFIG_LIMITS,
  sdVaeCompressionRatio,
  validateSdVaeConfig,
} from './sd-vae/config.js';
export type { SdVaeConfig } from './sd-vae/config.js';
export { loadSdVae } from './sd-vae/autoencoder.js';
export type { SdVaeAutoencoder } from './sd-vae/autoencoder.js';
export { bindSdVaeWeights, countSdVaeParameters, sdVaeCheckpointLayout, sdVaeKey } from './sd-vae/weights.js';
export type { SdVaeParam } from './sd-vae/weights.js';
export { buildSdVaeDecoderGraph, buildSdVaeEncoderGraph } from './sd-vae/graph.js';
export type { SdVaeGraphOptions } from './sd-vae/graph.js';
export { countSdVaeMacs } from './sd-vae/macs.js';
export { isTaesanaFolder, loadTaesana, TAESANA_CONFIG } from './taesana/autoencoder.js';
export type { TaesanaAutoencoder, TaesanaConfig } from './taesana/autoencoder.js';
export {
  TAESANA_DECODER,
  TAESANA_ENCODER,
  TAESANA_FILES,
  TAESANA_LATENT_SCALE,
  taesanaParameters,
  taesanaStateDict,
} from './taesana/layers.js';
export type { TaesanaLayer } from './taesana/layers.js';
export { buildTaesanaDecoderGraph, buildTaesanaEncoderGraph } from './taesana/graph.js';
export type { TaesanaGraphOptions } from './taesana/graph.js';
export { calibrateAutoencoder } from './dc-ae/calibrate.js';
export type { CalibrateOptions } from './dc-ae/calibrate.js';
export {
  activationParams,
  calibrationTensors,
  DEFAULT_KEEP_FLOAT,
  findConvSites,
  quantizeGraph,
  quantizeWeight,
} from './base/quantize/qdq.js';
export type { ActivationRanges, ConvSite, QdqOptions, TensorRange } from './base/quantize/qdq.js';
export {
  formatQuantizationSpec,
  parseQuantizationSpec,
  QUANTIZATION_FILE,
  QUANTIZATION_FORMAT,
  QUANTIZATION_GRAPH_VERSION,
} from './base/quantize/spec.js';
export type { QuantizationPart, QuantizationSpec } from './base/quantize/spec.js';
export {
  isWasmRuntime,
  WASM32_MEMORY_BYTES,
  WASM_HEADROOM_BYTES,
  wasmMemoryBudget,
} from './base/wasm-memory.js';
