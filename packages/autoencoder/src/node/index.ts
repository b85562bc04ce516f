export { decodeImage, encodeImage, imageFormatFromPath, readImage, writeImage } from './image.js';
export type { ReadImageOptions, WriteImageOptions } from './image.js';
export { directoryModelFiles, exportOnnx, openAutoencoder } from './model-folder.js';
export type {
  ExportOnnxOptions,
  ExportOnnxResult,
  NodeAutoencoder,
  NodeLoadAutoencoderOptions,
  OpenAutoencoderOptions,
} from './model-folder.js';
/** @deprecated Since 0.1: use `openAutoencoder` (same arguments; write ONNX with the free `exportOnnx`). */
export { openAutoencoder as loadAutoencoder } from './model-folder.js';
export { autoencoderLoadDefaults, parseModelSource, resolveModel } from './resolve-model.js';
export type { ModelSource, ResolvedModel, ResolveModelOptions } from './resolve-model.js';
