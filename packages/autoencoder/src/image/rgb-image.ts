import { DcaeError } from '@dcae/core';

/**
 * An 8-bit RGB image in host memory: `height` rows of `width` pixels, each pixel three bytes
 * R, G, B (interleaved, row-major, no padding between rows).
 */
export interface RgbImage {
  readonly width: number;
  readonly height: number;
  readonly channels: 3;
  readonly data: Uint8Array;
}

/** Throws INVALID_ARGUMENT unless `image` is a well-formed RgbImage (positive integer size, 3 channels, matching data length). */
export function checkRgbImage(image: RgbImage, what = 'image'): void {
  const { width, height, channels, data } = image;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${what} has size ${width}×${height}; width and height must be positive integers.`,
    );
  }
  if (channels !== 3) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${what} has ${String(channels)} channels; an RgbImage has exactly 3 (R, G, B).`,
    );
  }
  if (!(data instanceof Uint8Array) || data.length !== width * height * 3) {
    const actual = data instanceof Uint8Array ? `${data.length} bytes` : 'no Uint8Array';
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${what} is ${width}×${height}×3 and needs ${width * height * 3} bytes of data, found ${actual}.`,
    );
  }
}

/** The top-left `width`×`height` region of `image` (a copy). */
export function cropImage(image: RgbImage, width: number, height: number): RgbImage {
  checkRgbImage(image);
  if (
    !Number.isInteger(width) ||
    !Number.isInteger(height) ||
    width < 1 ||
    height < 1 ||
    width > image.width ||
    height > image.height
  ) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Cannot crop a ${image.width}×${image.height} image to ${width}×${height}; the crop must be a positive size inside the image.`,
    );
  }
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = y * image.width * 3;
    data.set(image.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { width, height, channels: 3, data };
}
