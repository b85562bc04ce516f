import { DcaeError } from '@dcae/core';
import { checkRgbImage, cropImage } from './rgb-image.js';
import type { RgbImage } from './rgb-image.js';

/**
 * How to make an image's sides multiples of the model's spatial compression ratio:
 * - `'crop'`: keep the top-left ⌊W/f⌋·f × ⌊H/f⌋·f region (what efficientvit's demos do, docs/model-spec.md §7.5);
 * - `'pad'`: extend the bottom and right edges up to ⌈W/f⌉·f × ⌈H/f⌉·f by repeating the last
 *   column and row (edge replication: no artificial border for the model to reproduce), then crop
 *   the reconstruction back to the original size with `cropImage`;
 * - `'error'`: throw INPUT_SIZE naming both alternatives.
 */
export type FitMode = 'crop' | 'pad' | 'error';

export const FIT_MODES: readonly FitMode[] = ['crop', 'pad', 'error'];

export interface Size {
  readonly width: number;
  readonly height: number;
}

export interface FittedImage {
  /** The image to encode; both sides are multiples of the requested multiple. */
  readonly image: RgbImage;
  /** The input's size: `'pad'` callers crop the reconstruction back to it. */
  readonly original: Size;
  /** What was done: `'none'` when the input already fitted. */
  readonly applied: 'none' | 'crop' | 'pad';
}

/** The sizes `'crop'` and `'pad'` would produce; `crop` is undefined when a side is smaller than `multiple`. */
export function fittedSizes(width: number, height: number, multiple: number): { crop?: Size; pad: Size } {
  const cropW = Math.floor(width / multiple) * multiple;
  const cropH = Math.floor(height / multiple) * multiple;
  const pad = {
    width: Math.ceil(width / multiple) * multiple,
    height: Math.ceil(height / multiple) * multiple,
  };
  return cropW > 0 && cropH > 0 ? { crop: { width: cropW, height: cropH }, pad } : { pad };
}

/** Makes both sides of `image` multiples of `multiple` (the model's spatial compression ratio) as `mode` says. */
export function fitToMultiple(image: RgbImage, multiple: number, mode: FitMode): FittedImage {
  checkRgbImage(image);
  if (!Number.isInteger(multiple) || multiple < 1) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `fitToMultiple needs a positive integer multiple, got ${multiple}.`,
    );
  }
  if (!FIT_MODES.includes(mode)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Unknown fit mode "${String(mode)}"; use one of ${FIT_MODES.join(', ')}.`,
    );
  }
  const { width, height } = image;
  const original = { width, height };
  if (width % multiple === 0 && height % multiple === 0) return { image, original, applied: 'none' };

  const sizes = fittedSizes(width, height, multiple);
  // The same sentence for both surfaces, naming the library's mode or the CLI's --fit flag.
  const say = (fit: (mode: 'crop' | 'pad') => string): string => {
    const cropText = sizes.crop
      ? `${sizes.crop.width}×${sizes.crop.height} (${fit('crop')}: keep the top-left region)`
      : `no crop (a side is smaller than ${multiple})`;
    const padText = `${sizes.pad.width}×${sizes.pad.height} (${fit('pad')}: extend the bottom/right edges, crop the result back to ${width}×${height})`;
    return (
      `Image is ${width}×${height} (W×H), but this model needs both sides to be multiples of ${multiple} ` +
      `(its spatial compression ratio). Nearest valid sizes: ${cropText} or ${padText}.`
    );
  };
  if (mode === 'error' || (mode === 'crop' && !sizes.crop)) {
    throw new DcaeError(
      'INPUT_SIZE',
      say((m) => `fit '${m}'`),
      {
        detail: { width, height, multiple, crop: sizes.crop, pad: sizes.pad },
        cliMessage: say((m) => `--fit ${m}`),
      },
    );
  }
  if (mode === 'crop') {
    const { width: w, height: h } = sizes.crop!;
    return { image: cropImage(image, w, h), original, applied: 'crop' };
  }
  return { image: padEdges(image, sizes.pad.width, sizes.pad.height), original, applied: 'pad' };
}

/** Pads the bottom and right by repeating the last column and then the last row. */
function padEdges(image: RgbImage, width: number, height: number): RgbImage {
  const src = image.data;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(y, image.height - 1);
    const row = y * width * 3;
    data.set(src.subarray(sy * image.width * 3, (sy + 1) * image.width * 3), row);
    const last = (sy * image.width + image.width - 1) * 3;
    for (let x = image.width; x < width; x++) {
      data[row + 3 * x] = src[last]!;
      data[row + 3 * x + 1] = src[last + 1]!;
      data[row + 3 * x + 2] = src[last + 2]!;
    }
  }
  return { width, height, channels: 3, data };
}
