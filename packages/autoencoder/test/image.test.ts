import { DcaeError } from '@dcae/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  cropImage,
  fitToMultiple,
  fittedSizes,
  imageToTensor,
  quantizeToByte,
  tensorToImages,
} from '../src/image/index.js';
import type { RgbImage } from '../src/image/index.js';

function image(width: number, height: number, pixel: (x: number, y: number, c: number) => number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++) data[(y * width + x) * 3 + c] = pixel(x, y, c);
  return { width, height, channels: 3, data };
}

function pixelAt(img: RgbImage, x: number, y: number): number[] {
  const i = (y * img.width + x) * 3;
  return [...img.data.subarray(i, i + 3)];
}

function expectError(fn: () => unknown, code: string): DcaeError {
  try {
    fn();
  } catch (error) {
    expect(DcaeError.is(error, code as never), String(error)).toBe(true);
    return error as DcaeError;
  }
  throw new Error(`expected DcaeError ${code}, nothing was thrown`);
}

describe('imageToTensor', () => {
  it('lays pixels out as [1, 3, H, W] planes with x = p/127.5 − 1', () => {
    const img = image(3, 2, (x, y, c) => 40 * x + 100 * y + c);
    const t = imageToTensor(img);
    expect(t.dtype).toBe('float32');
    expect(t.shape).toEqual([1, 3, 2, 3]);
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 2; y++)
        for (let x = 0; x < 3; x++) {
          const p = 40 * x + 100 * y + c;
          expect(t.data[c * 6 + y * 3 + x]).toBeCloseTo(p / 127.5 - 1, 6);
        }
  });

  it('maps every byte within one float32 ulp of p/127.5 − 1, with 0 → −1 and 255 → 1 exactly', () => {
    const img = image(256, 1, (x) => x);
    const t = imageToTensor(img);
    for (let p = 0; p < 256; p++)
      expect(Math.abs(t.data[p]! - (p / 127.5 - 1))).toBeLessThanOrEqual(2 ** -24);
    expect(t.data[0]).toBe(-1);
    expect(t.data[255]).toBe(1);
  });

  it('rejects malformed images', () => {
    expectError(
      () => imageToTensor({ width: 2, height: 2, channels: 3, data: new Uint8Array(11) }),
      'INVALID_ARGUMENT',
    );
    expectError(
      () => imageToTensor({ width: 0, height: 2, channels: 3, data: new Uint8Array(0) }),
      'INVALID_ARGUMENT',
    );
  });
});

describe('tensorToImages / quantizeToByte', () => {
  it('rounds half up and clamps: q(x) = clamp(⌊255·(x+1)/2 + 0.5⌋, 0, 255)', () => {
    // hand-computed: 255·(x+1)/2 + 0.5 for x = −1, 1, 0, −1.5, 2, and the points either side of 0.5 steps
    expect(quantizeToByte(-1)).toBe(0);
    expect(quantizeToByte(1)).toBe(255);
    expect(quantizeToByte(0)).toBe(128); // 127.5 + 0.5 = 128: the half goes up
    expect(quantizeToByte(-1.5)).toBe(0);
    expect(quantizeToByte(2)).toBe(255);
    expect(quantizeToByte(-0.999)).toBe(0); // 0.1275 + 0.5
    expect(quantizeToByte(-0.995)).toBe(1); // 0.6375 + 0.5
    expect(quantizeToByte(-0.5)).toBe(64); // 63.75 + 0.5
    expect(quantizeToByte(0.5)).toBe(191); // 191.25 + 0.5
  });

  it('turns [N, 3, H, W] into N interleaved images', () => {
    const data = new Float32Array(2 * 3 * 1 * 2);
    // image 1, channel 2 (blue), pixel (x=1, y=0) = 1 → 255; everything else −1 → 0
    data[1 * 6 + 2 * 2 + 1] = 1;
    data.fill(-1, 0, 6);
    const images = tensorToImages({ dtype: 'float32', shape: [2, 3, 1, 2], data });
    expect(images).toHaveLength(2);
    expect(pixelAt(images[0]!, 1, 0)).toEqual([0, 0, 0]);
    expect(pixelAt(images[1]!, 1, 0)).toEqual([128, 128, 255]);
    expect(pixelAt(images[1]!, 0, 0)).toEqual([128, 128, 128]);
  });

  it('inverts imageToTensor for every byte value', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 12 }), (bytes) => {
        const img: RgbImage = { width: 2, height: 2, channels: 3, data: bytes };
        expect(tensorToImages(imageToTensor(img))[0]!.data).toEqual(bytes);
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it('refuses NaN and ±Infinity with NON_FINITE_OUTPUT naming the position', () => {
    const data = new Float32Array(6);
    data[4] = NaN;
    const err = expectError(
      () => tensorToImages({ dtype: 'float32', shape: [1, 3, 1, 2], data }),
      'NON_FINITE_OUTPUT',
    );
    expect(err.message).toContain('[0, 2, 0, 0]');
    data[4] = Infinity;
    expectError(() => tensorToImages({ dtype: 'float32', shape: [1, 3, 1, 2], data }), 'NON_FINITE_OUTPUT');
  });

  it('rejects tensors that are not [N, 3, H, W] float32', () => {
    expectError(
      () => tensorToImages({ dtype: 'float32', shape: [1, 4, 1, 1], data: new Float32Array(4) }),
      'SHAPE_MISMATCH',
    );
  });
});

describe('fitToMultiple', () => {
  const img = image(100, 70, (x, y, c) => (x * 2 + y * 3 + c) % 256);

  it('returns the image unchanged when both sides are multiples', () => {
    const ok = image(64, 32, () => 1);
    const fitted = fitToMultiple(ok, 32, 'error');
    expect(fitted.applied).toBe('none');
    expect(fitted.image).toBe(ok);
  });

  it("'crop' keeps the top-left ⌊W/f⌋·f × ⌊H/f⌋·f region", () => {
    const fitted = fitToMultiple(img, 32, 'crop');
    expect(fitted.applied).toBe('crop');
    expect([fitted.image.width, fitted.image.height]).toEqual([96, 64]);
    expect(fitted.original).toEqual({ width: 100, height: 70 });
    for (const [x, y] of [
      [0, 0],
      [95, 0],
      [0, 63],
      [95, 63],
      [50, 20],
    ] as const)
      expect(pixelAt(fitted.image, x, y)).toEqual(pixelAt(img, x, y));
  });

  it("'pad' extends bottom/right by edge replication and crops back to the original", () => {
    const fitted = fitToMultiple(img, 32, 'pad');
    expect(fitted.applied).toBe('pad');
    expect([fitted.image.width, fitted.image.height]).toEqual([128, 96]);
    expect(pixelAt(fitted.image, 99, 69)).toEqual(pixelAt(img, 99, 69));
    expect(pixelAt(fitted.image, 127, 10)).toEqual(pixelAt(img, 99, 10));
    expect(pixelAt(fitted.image, 10, 95)).toEqual(pixelAt(img, 10, 69));
    expect(pixelAt(fitted.image, 127, 95)).toEqual(pixelAt(img, 99, 69));
    const back = cropImage(fitted.image, fitted.original.width, fitted.original.height);
    expect(back.data).toEqual(img.data);
  });

  it("'error' throws INPUT_SIZE naming the size, the ratio, both nearest sizes and both modes", () => {
    const err = expectError(() => fitToMultiple(img, 32, 'error'), 'INPUT_SIZE');
    for (const part of ['100×70', '32', '96×64', '128×96', "'crop'", "'pad'"])
      expect(err.message).toContain(part);
  });

  it("'crop' of an image smaller than the ratio is an INPUT_SIZE error that offers 'pad'", () => {
    const err = expectError(
      () =>
        fitToMultiple(
          image(20, 40, () => 0),
          32,
          'crop',
        ),
      'INPUT_SIZE',
    );
    expect(err.message).toContain('32×64');
    expect(fittedSizes(20, 40, 32)).toEqual({ pad: { width: 32, height: 64 } });
  });

  it('rejects a bad multiple or mode', () => {
    expectError(() => fitToMultiple(img, 0, 'crop'), 'INVALID_ARGUMENT');
    expectError(() => fitToMultiple(img, 32, 'stretch' as never), 'INVALID_ARGUMENT');
  });
});
