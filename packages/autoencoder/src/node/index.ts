export { decodeImage, encodeImage, imageFormatFromPath, readImage, writeImage } from './image.js';
export type { ReadImageOptions, WriteImageOptions } from './image.js';
export { directoryModelFiles, exportOnnx, loadAutoencoder } from './model-folder.js';
export type {
  ExportOnnxOptions,
  ExportOnnxResult,
  NodeAutoencoder,
  NodeLoadAutoencoderOptions,
} from './model-folder.js';
export { autoencoderLoadDefaults, parseModelSource, resolveModel } from './resolve-model.js';
export type { ModelSource, ResolvedModel, ResolveModelOptions } from './resolve-model.js';
