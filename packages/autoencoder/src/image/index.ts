export { checkRgbImage, cropImage } from './rgb-image.js';
export type { RgbImage } from './rgb-image.js';
export { imageToTensor, quantizeToByte, tensorToImages } from './convert.js';
export { FIT_MODES, fitToMultiple, fittedSizes } from './fit.js';
export type { FitMode, FittedImage, Size } from './fit.js';
export { psnr, reconstructionMetrics, ssim, SSIM_MIN_SIDE } from './metrics.js';
export type { ImageMetrics, ReconstructionMetrics } from './metrics.js';
export { DEFAULT_MAX_PIXELS, readImageHeader, sniffImageFormat } from './header.js';
export type { ImageFormat, ImageHeader } from './header.js';
