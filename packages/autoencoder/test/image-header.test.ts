import { DcaeError } from '@dcae/core';
import { describe, expect, it } from 'vitest';
import { DEFAULT_MAX_PIXELS, readImageHeader, sniffImageFormat } from '../src/image/index.js';

/** Hand-built headers (docs/reliability.md §4): only the bytes a header parser may look at. */
function png(width: number, height: number): Uint8Array {
  const b = new Uint8Array(33);
  b.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const v = new DataView(b.buffer);
  v.setUint32(16, width);
  v.setUint32(20, height);
  b.set([8, 2, 0, 0, 0], 24); // bit depth 8, colour type RGB
  return b;
}

function jpeg(width: number, height: number, sof = 0xc0): Uint8Array {
  // SOI, APP0 (JFIF, 16 bytes), DQT-like filler segment, SOFn
  const app0 = [0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0];
  const sofSeg = [0xff, sof, 0, 17, 8, height >> 8, height & 0xff, width >> 8, width & 0xff, 3];
  return new Uint8Array([0xff, 0xd8, ...app0, 0xff, 0xff, ...sofSeg, ...new Array<number>(9).fill(0)]);
}

function riff(chunk: string, payload: number[]): Uint8Array {
  const b = new Uint8Array(20 + Math.max(payload.length, 10));
  b.set([...'RIFF'].map((c) => c.charCodeAt(0)));
  b.set(
    [...'WEBP'].map((c) => c.charCodeAt(0)),
    8,
  );
  b.set(
    [...chunk].map((c) => c.charCodeAt(0)),
    12,
  );
  b.set(payload, 20);
  return b;
}

const webpLossless = (w: number, h: number) => {
  const bits = (w - 1) | ((h - 1) << 14);
  return riff('VP8L', [0x2f, bits & 0xff, (bits >>> 8) & 0xff, (bits >>> 16) & 0xff, (bits >>> 24) & 0xff]);
};
const webpLossy = (w: number, h: number) =>
  riff('VP8 ', [0, 0, 0, 0x9d, 0x01, 0x2a, w & 0xff, w >> 8, h & 0xff, h >> 8]);
const webpExtended = (w: number, h: number) =>
  riff('VP8X', [
    0,
    0,
    0,
    0,
    (w - 1) & 0xff,
    ((w - 1) >> 8) & 0xff,
    (w - 1) >> 16,
    (h - 1) & 0xff,
    ((h - 1) >> 8) & 0xff,
    (h - 1) >> 16,
  ]);

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (DcaeError.is(error)) return error.code;
    throw error;
  }
  return 'no error';
}

describe('readImageHeader', () => {
  it('reads the stored size of PNG, JPEG (baseline and progressive) and WebP (VP8, VP8L, VP8X)', () => {
    expect(readImageHeader(png(640, 480))).toEqual({ format: 'png', width: 640, height: 480 });
    expect(readImageHeader(jpeg(300, 200))).toEqual({ format: 'jpeg', width: 300, height: 200 });
    expect(readImageHeader(jpeg(300, 200, 0xc2))).toEqual({ format: 'jpeg', width: 300, height: 200 });
    expect(readImageHeader(webpLossy(123, 45))).toEqual({ format: 'webp', width: 123, height: 45 });
    expect(readImageHeader(webpLossless(16383, 7))).toEqual({ format: 'webp', width: 16383, height: 7 });
    expect(readImageHeader(webpExtended(70000, 3))).toEqual({ format: 'webp', width: 70000, height: 3 });
  });

  it.each([
    ['PNG IHDR 2³¹−1 × 1', png(2 ** 31 - 1, 1)],
    ['PNG IHDR 100000²', png(100000, 100000)],
    ['PNG 12000² (the decompression bomb size)', png(12000, 12000)],
    ['JPEG SOF 65000²', jpeg(65000, 65000)],
    ['lossless WebP 16383²', webpLossless(16383, 16383)],
  ])('%s → DIMENSIONS_TOO_LARGE before any decoder runs', (_name, bytes) => {
    expect(codeOf(() => readImageHeader(bytes))).toBe('DIMENSIONS_TOO_LARGE');
  });

  it('applies the caller’s pixel cap', () => {
    expect(readImageHeader(png(100, 100), 10_000).width).toBe(100);
    expect(codeOf(() => readImageHeader(png(100, 101), 10_000))).toBe('DIMENSIONS_TOO_LARGE');
    expect(DEFAULT_MAX_PIXELS).toBe(8192 * 8192);
  });

  it('rejects zero-sized images', () => {
    expect(codeOf(() => readImageHeader(png(0, 0)))).toBe('ZERO_DIMENSION');
    expect(codeOf(() => readImageHeader(jpeg(10, 0)))).toBe('ZERO_DIMENSION');
  });

  it.each([
    ['empty', new Uint8Array(0)],
    ['SVG', new TextEncoder().encode('<svg xmlns="http://www.w3.org/2000/svg"/>')],
    ['GIF', new TextEncoder().encode('GIF89a\x01\x00\x01\x00')],
    ['TIFF', new Uint8Array([0x49, 0x49, 0x2a, 0, 8, 0, 0, 0])],
    ['RIFF that is not WebP', new TextEncoder().encode('RIFF\x00\x00\x00\x00WAVEfmt ')],
  ])('%s → UNSUPPORTED_FORMAT', (_name, bytes) => {
    expect(sniffImageFormat(bytes)).toBeUndefined();
    expect(codeOf(() => readImageHeader(bytes))).toBe('UNSUPPORTED_FORMAT');
  });

  it.each([
    ['PNG cut inside IHDR', png(10, 10).subarray(0, 20)],
    [
      'PNG whose first chunk is not IHDR',
      (() => {
        const b = png(10, 10);
        b[12] = 0x61;
        return b;
      })(),
    ],
    ['JPEG with no SOF before the data', new Uint8Array([0xff, 0xd8, 0xff, 0xda, 0, 2])],
    ['JPEG cut inside a segment', jpeg(10, 10).subarray(0, 22)],
    ['JPEG with garbage after SOI', new Uint8Array([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0x12])],
    ['WebP with an unknown chunk', riff('ABCD', [])],
    ['WebP VP8 without start code', riff('VP8 ', [0, 0, 0, 1, 2, 3, 4, 0, 4, 0])],
  ])('%s → IMAGE_CORRUPT', (_name, bytes) => {
    expect(codeOf(() => readImageHeader(bytes))).toBe('IMAGE_CORRUPT');
  });
});
