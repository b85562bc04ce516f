export { decodeImage, encodeImage, imageFormatFromPath, readImage, writeImage } from './image.js';
export type { ReadImageOptions, WriteImageOptions } from './image.js';
export { exportOnnx, openAutoencoder } from './model-folder.js';
export type {
  ExportOnnxOptions,
  ExportOnnxResult,
  NodeAutoencoder,
  NodeLoadAutoencoderOptions,
  OpenAutoencoderOptions,
} from './model-folder.js';
/** @deprecated Since 0.1: use `openAutoencoder` (same arguments; write ONNX with the free `exportOnnx`). */
export { openAutoencoder as loadAutoencoder } from './model-folder.js';
export { autoencoderLoadDefaults } from './load-defaults.js';
/** @deprecated Since 0.1: import model sources from `@dcae/hub/node`; these re-exports go in 0.2. */
export { directoryModelFiles, parseModelSource, resolveModel } from '@dcae/hub/node';
/** @deprecated Since 0.1: import these types from `@dcae/hub/node`. */
export type { ModelSource, ResolvedModel, ResolveModelOptions } from '@dcae/hub/node';
