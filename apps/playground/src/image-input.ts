/**
 * Images from the user: checked by their header before any decoder runs (format and pixel count,
 * docs/reliability.md §4), decoded by the browser, scaled down to a chosen longest side and fitted to
 * the model's spatial compression ratio, with a note that says what was done.
 */
import type { FitMode, RgbImage } from '@dcae/autoencoder';
import { DEFAULT_MAX_PIXELS, fitToMultiple, readImageHeader } from '@dcae/autoencoder';

/** Enough of the file to reach a JPEG's frame header behind large EXIF blocks. */
const HEADER_BYTES = 1 << 20;

/**
 * The file's pixels as RGB, and the share of its pixels that were not fully opaque: the alpha
 * channel is dropped (the model sees RGB only), and the page says so when there was any.
 */
export async function decodeImageFile(
  file: Blob,
  name: string,
): Promise<{ image: RgbImage; transparent: number }> {
  const head = new Uint8Array(await file.slice(0, HEADER_BYTES).arrayBuffer());
  readImageHeader(head, DEFAULT_MAX_PIXELS, name);
  const bitmap = await createImageBitmap(file, { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  try {
    const { transparent, ...image } = rgbFromCanvas(bitmap, bitmap.width, bitmap.height);
    return { image, transparent: transparent / (image.width * image.height) };
  } finally {
    bitmap.close();
  }
}

/** Scales `image` so its longest side is at most `maxSide` (high-quality resampling); never enlarges. */
export function limitSize(image: RgbImage, maxSide: number): RgbImage {
  const scale = Math.min(1, maxSide / Math.max(image.width, image.height));
  if (scale === 1) return image;
  const width = Math.max(1, Math.round(image.width * scale));
  const height = Math.max(1, Math.round(image.height * scale));
  const source = new OffscreenCanvas(image.width, image.height);
  source.getContext('2d')!.putImageData(rgbaImageData(image), 0, 0);
  const { data } = rgbFromCanvas(source, width, height);
  return { width, height, channels: 3, data };
}

/** The image the model gets and a sentence on how it was made. */
export function prepareImage(
  image: RgbImage,
  options: { maxSide: number; ratio: number; fit: FitMode },
): { image: RgbImage; note: string } {
  const steps: string[] = [`${image.width}×${image.height}`];
  const limited = limitSize(image, options.maxSide);
  if (limited !== image)
    steps.push(`scaled to ${limited.width}×${limited.height} (longest side ≤ ${options.maxSide})`);
  const fitted = fitToMultiple(limited, options.ratio, options.fit);
  if (fitted.applied === 'crop')
    steps.push(
      `cropped to ${fitted.image.width}×${fitted.image.height} (top-left; multiples of ${options.ratio})`,
    );
  if (fitted.applied === 'pad')
    steps.push(
      `padded to ${fitted.image.width}×${fitted.image.height} (edges repeated; multiples of ${options.ratio})`,
    );
  if (fitted.applied === 'none') steps.push(`already a multiple of ${options.ratio}`);
  return { image: fitted.image, note: steps.join(' → ') };
}

/** RGB pixels drawn from `source`, with the number of pixels whose alpha was below 255. */
function rgbFromCanvas(
  source: CanvasImageSource,
  width: number,
  height: number,
): RgbImage & { readonly transparent: number } {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true })!;
  context.imageSmoothingEnabled = true;
  context.imageSmoothingQuality = 'high';
  context.drawImage(source, 0, 0, width, height);
  const rgba = context.getImageData(0, 0, width, height).data;
  const data = new Uint8Array(width * height * 3);
  let transparent = 0;
  for (let i = 0; i < width * height; i++) {
    data[3 * i] = rgba[4 * i]!;
    data[3 * i + 1] = rgba[4 * i + 1]!;
    data[3 * i + 2] = rgba[4 * i + 2]!;
    if (rgba[4 * i + 3]! < 255) transparent++;
  }
  return { width, height, channels: 3, data, transparent };
}

export function rgbaImageData(image: RgbImage): ImageData {
  const rgba = new Uint8ClampedArray(image.width * image.height * 4);
  for (let i = 0; i < image.width * image.height; i++) {
    rgba[4 * i] = image.data[3 * i]!;
    rgba[4 * i + 1] = image.data[3 * i + 1]!;
    rgba[4 * i + 2] = image.data[3 * i + 2]!;
    rgba[4 * i + 3] = 255;
  }
  return new ImageData(rgba, image.width, image.height);
}
