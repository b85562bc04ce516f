export { decodeImage, encodeImage, imageFormatFromPath, readImage, writeImage } from './image.js';
export type { ReadImageOptions, WriteImageOptions } from './image.js';
export { directoryModelFiles, exportOnnx, loadAutoencoder } from './model-folder.js';
export type { ExportOnnxOptions, ExportOnnxResult, NodeAutoencoder } from './model-folder.js';
