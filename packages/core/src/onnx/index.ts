export { GraphBuilder, Module, Value } from './graph-builder.js';
export type { ConvOptions, GraphBuilderOptions, ParamResolver, ResizeOptions } from './graph-builder.js';
export { describeModel } from './describe.js';
export {
  externalLocations,
  initializerDType,
  initializerShape,
  MICROSOFT_DOMAIN,
  MICROSOFT_OPSET,
  nodeDomains,
  ONNX_DATA_TYPE,
  ONNX_IR_VERSION,
  ONNX_OPSET,
} from './model.js';
export type {
  AttributeValue,
  Dim,
  InitializerData,
  OnnxGraph,
  OnnxInitializer,
  OnnxModel,
  OnnxNode,
  ValueInfo,
} from './model.js';
export { MAX_PROTOBUF_BYTES, rawBytes, serializeModel } from './serialize.js';
export { inspectModel, ONNX_DTYPES } from './inspect.js';
export type {
  InspectLimits,
  ModelInspection,
  OnnxNodeSummary,
  OnnxOpsetImport,
  OnnxTensorStorage,
  OnnxTensorSummary,
  OnnxValueSummary,
} from './inspect.js';
export {
  checkExternalLocation,
  checkInspection,
  checkModel,
  DEFAULT_ALLOWED_CONTRIB_OPS,
  DEFAULT_ALLOWED_OPS,
  DEFAULT_MAX_TENSOR_ELEMENTS,
} from './check.js';
export type { CheckModelOptions, ExternalFileInfo } from './check.js';
