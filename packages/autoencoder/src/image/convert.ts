import { DcaeError, formatShape } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { checkRgbImage } from './rgb-image.js';
import type { RgbImage } from './rgb-image.js';

const f32 = Math.fround;

/**
 * The model input for one image: float32 `[1, 3, H, W]` with x = pixel/127.5 − 1 ∈ [−1, 1]
 * (docs/model-spec.md §7.4). Computed with torchvision's float32 steps, ToTensor (p/255) then
 * Normalize(0.5, 0.5) ((v − 0.5)/0.5), so the values match the reference pipelines bit for bit
 * (the correctly rounded p/127.5 − 1 differs from them by one ulp for half of the byte values).
 */
export function imageToTensor(image: RgbImage): HostTensor<'float32'> {
  checkRgbImage(image);
  const { width, height, data } = image;
  const byteToUnit = new Float32Array(256);
  for (let p = 0; p < 256; p++) byteToUnit[p] = f32(f32(f32(p / 255) - 0.5) / 0.5);
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    out[i] = byteToUnit[data[3 * i]!]!;
    out[plane + i] = byteToUnit[data[3 * i + 1]!]!;
    out[2 * plane + i] = byteToUnit[data[3 * i + 2]!]!;
  }
  return { dtype: 'float32', shape: [1, 3, height, width], data: out };
}

/**
 * Quantises one model output value to a byte, round half up (docs/model-spec.md §6.1):
 * q(x) = clamp(⌊255·(x + 1)/2 + 0.5⌋, 0, 255), evaluated in float32 as torchvision's
 * `save_image(x·0.5 + 0.5)` does. The caller rejects non-finite values first.
 */
export function quantizeToByte(x: number): number {
  const v = f32(f32(f32(f32(x * 0.5) + 0.5) * 255) + 0.5);
  return v <= 0 ? 0 : v >= 255 ? 255 : Math.floor(v);
}

/**
 * Model output `[N, 3, H, W]` (float32 in about [−1, 1], not clamped) → N RGB images quantised
 * with {@link quantizeToByte}. Throws NON_FINITE_OUTPUT on NaN or ±Infinity rather than writing
 * an image that hides them.
 */
export function tensorToImages(tensor: HostTensor<'float32'>): RgbImage[] {
  const { shape, data } = tensor;
  if (tensor.dtype !== 'float32' || shape.length !== 4 || shape[1] !== 3) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `Expected a float32 image tensor [N, 3, H, W], got ${tensor.dtype} ${formatShape(shape)}.`,
    );
  }
  const [n, , height, width] = shape as [number, number, number, number];
  const plane = width * height;
  const images: RgbImage[] = [];
  for (let b = 0; b < n; b++) {
    const base = b * 3 * plane;
    const bytes = new Uint8Array(3 * plane);
    for (let c = 0; c < 3; c++) {
      for (let i = 0; i < plane; i++) {
        const x = data[base + c * plane + i]!;
        if (!Number.isFinite(x)) {
          const y = Math.floor(i / width);
          throw new DcaeError(
            'NON_FINITE_OUTPUT',
            `Image tensor holds ${x} at [${b}, ${c}, ${y}, ${i - y * width}]; refusing to quantise a non-finite value to a pixel.`,
          );
        }
        bytes[3 * i + c] = quantizeToByte(x);
      }
    }
    images.push({ width, height, channels: 3, data: bytes });
  }
  return images;
}
