import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readImageHeader } from '../src/image/index.js';
import type { RgbImage } from '../src/image/index.js';
import { decodeImage, encodeImage, imageFormatFromPath, readImage, writeImage } from '../src/node/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dcae-image-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function gradient(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    const x = i % width;
    const y = Math.floor(i / width);
    data.set([(x * 255) / (width - 1), (y * 255) / (height - 1), (x * 7 + y * 13) % 256], 3 * i);
  }
  return { width, height, channels: 3, data };
}

/** Encodes raw pixels with sharp directly (independent of the code under test). */
function raw(data: Uint8Array | Uint16Array, width: number, height: number, channels: 1 | 2 | 3 | 4) {
  return sharp(data, { raw: { width, height, channels } });
}

async function file(name: string, bytes: Uint8Array | Buffer): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, bytes);
  return path;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (DcaeError.is(error)) return error.code;
    throw error;
  }
  return 'no error';
}

describe('readImage', () => {
  it('reads PNG and lossless WebP pixels exactly, JPEG closely', async () => {
    const img = gradient(37, 21);
    const sharpRaw = () => raw(img.data, 37, 21, 3);
    for (const [name, bytes] of [
      ['a.png', await sharpRaw().png().toBuffer()],
      ['a.webp', await sharpRaw().webp({ lossless: true }).toBuffer()],
    ] as const) {
      const read = await readImage(await file(name, bytes));
      expect([read.width, read.height, read.channels]).toEqual([37, 21, 3]);
      expect(read.data).toEqual(img.data);
    }
    const jpeg = await readImage(
      await file('a.jpg', await sharpRaw().jpeg({ quality: 100, chromaSubsampling: '4:4:4' }).toBuffer()),
    );
    const maxDiff = jpeg.data.reduce((m, v, i) => Math.max(m, Math.abs(v - img.data[i]!)), 0);
    expect(maxDiff).toBeLessThan(12);
  });

  it('agrees with the header parser on files sharp wrote', async () => {
    const pipe = () => raw(gradient(45, 17).data, 45, 17, 3);
    for (const bytes of [
      await pipe().png().toBuffer(),
      await pipe().jpeg().toBuffer(),
      await pipe().jpeg({ progressive: true }).toBuffer(),
      await pipe().webp().toBuffer(),
      await pipe().webp({ lossless: true }).toBuffer(),
    ]) {
      expect(readImageHeader(bytes)).toMatchObject({ width: 45, height: 17 });
    }
    const alpha = await raw(new Uint8Array(45 * 17 * 4).fill(9), 45, 17, 4)
      .webp()
      .toBuffer();
    expect(readImageHeader(alpha)).toMatchObject({ format: 'webp', width: 45, height: 17 });
  });

  it('turns greyscale into R = G = B', async () => {
    const path = await file(
      'grey.png',
      await raw(new Uint8Array([0, 100, 200, 255]), 2, 2, 1)
        .png()
        .toBuffer(),
    );
    expect([...(await readImage(path)).data]).toEqual([0, 0, 0, 100, 100, 100, 200, 200, 200, 255, 255, 255]);
  });

  it('drops alpha without compositing (the colour under a transparent pixel stays)', async () => {
    const rgba = new Uint8Array([255, 0, 0, 0, 0, 255, 0, 128, 10, 20, 30, 255, 1, 2, 3, 40]);
    const path = await file('alpha.png', await raw(rgba, 2, 2, 4).png().toBuffer());
    expect([...(await readImage(path)).data]).toEqual([255, 0, 0, 0, 255, 0, 10, 20, 30, 1, 2, 3]);
  });

  it('reduces 16-bit samples to 8 bits (greyscale + alpha, 16-bit)', async () => {
    const ga16 = new Uint16Array([0, 65535, 65535, 65535, 32896, 0, 257 * 7, 65535]);
    const bytes = await raw(ga16, 2, 2, 2).toColourspace('grey16').png().toBuffer();
    expect((await sharp(bytes).metadata()).depth).toBe('ushort');
    const read = await readImage(await file('ga16.png', bytes));
    expect([...read.data]).toEqual([0, 0, 0, 255, 255, 255, 128, 128, 128, 7, 7, 7]);
  });

  it('applies the EXIF orientation', async () => {
    // 2×1 red|green stored with orientation 6 (rotate 90° clockwise to display) → 1×2, red on top
    const bytes = await raw(new Uint8Array([255, 0, 0, 0, 255, 0]), 2, 1, 3)
      .png()
      .withMetadata({ orientation: 6 })
      .toBuffer();
    const read = await readImage(await file('rotated.png', bytes));
    expect([read.width, read.height]).toEqual([1, 2]);
    expect([...read.data]).toEqual([255, 0, 0, 0, 255, 0]);
  });

  it('enforces maxPixels from the header, before decoding', async () => {
    const path = await file('big.png', await raw(gradient(40, 30).data, 40, 30, 3).png().toBuffer());
    expect(await codeOf(readImage(path, { maxPixels: 1199 }))).toBe('DIMENSIONS_TOO_LARGE');
    expect((await readImage(path, { maxPixels: 1200 })).width).toBe(40);
  });

  it('refuses formats other than PNG, JPEG and WebP whatever the file is called', async () => {
    const gif = await raw(gradient(4, 4).data, 4, 4, 3).gif().toBuffer();
    const tiff = await raw(gradient(4, 4).data, 4, 4, 3).tiff().toBuffer();
    const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>');
    expect(await codeOf(readImage(await file('gif.png', gif)))).toBe('UNSUPPORTED_FORMAT');
    expect(await codeOf(readImage(await file('tiff.jpg', tiff)))).toBe('UNSUPPORTED_FORMAT');
    expect(await codeOf(readImage(await file('svg.png', svg)))).toBe('UNSUPPORTED_FORMAT');
    expect(await codeOf(readImage(await file('empty.png', new Uint8Array(0))))).toBe('UNSUPPORTED_FORMAT');
  });

  it('reports truncated and damaged files as IMAGE_CORRUPT, never a partial image', async () => {
    const png = await raw(gradient(64, 64).data, 64, 64, 3).png({ compressionLevel: 0 }).toBuffer();
    const jpg = await raw(gradient(64, 64).data, 64, 64, 3).jpeg().toBuffer();
    const badCrc = Buffer.from(png);
    badCrc[29] = badCrc[29]! ^ 0xff; // IHDR CRC
    const flipped = Buffer.from(png);
    flipped[png.length - 200] = flipped[png.length - 200]! ^ 0x55; // inside IDAT data
    expect(await codeOf(readImage(await file('trunc.png', png.subarray(0, png.length / 2))))).toBe(
      'IMAGE_CORRUPT',
    );
    expect(await codeOf(readImage(await file('trunc.jpg', jpg.subarray(0, jpg.length - 100))))).toBe(
      'IMAGE_CORRUPT',
    );
    expect(await codeOf(readImage(await file('crc.png', badCrc)))).toBe('IMAGE_CORRUPT');
    expect(await codeOf(readImage(await file('flip.png', flipped)))).toBe('IMAGE_CORRUPT');
  });

  it('names missing files and directories', async () => {
    expect(await codeOf(readImage(join(dir, 'nope.png')))).toBe('FILE_NOT_FOUND');
    expect(await codeOf(readImage(dir))).toBe('FILE_READ');
  });

  it('decodeImage works on bytes', async () => {
    const bytes = await raw(gradient(5, 3).data, 5, 3, 3).png().toBuffer();
    expect((await decodeImage(bytes)).data).toEqual(gradient(5, 3).data);
  });
});

describe('writeImage', () => {
  it('writes PNG, WebP (both lossless) and JPEG by extension, readable by sharp', async () => {
    const img = gradient(33, 19);
    for (const name of ['out.png', 'out.WEBP']) {
      const path = join(dir, name);
      await writeImage(path, img);
      const { data, info } = await sharp(path).raw().toBuffer({ resolveWithObject: true });
      expect([info.width, info.height, info.channels]).toEqual([33, 19, 3]);
      expect(new Uint8Array(data)).toEqual(img.data);
    }
    for (const name of ['out.jpg', 'out.jpeg']) {
      await writeImage(join(dir, name), img);
      expect((await sharp(join(dir, name)).metadata()).format).toBe('jpeg');
    }
  });

  it('refuses unknown extensions without creating a file', async () => {
    expect(() => imageFormatFromPath('x.gif')).toThrow(DcaeError);
    expect(await codeOf(writeImage(join(dir, 'out.bmp'), gradient(2, 2)))).toBe('UNSUPPORTED_FORMAT');
    expect(await codeOf(writeImage(join(dir, 'noext'), gradient(2, 2)))).toBe('UNSUPPORTED_FORMAT');
    const names = await readdir(dir);
    expect(names.filter((n) => n.startsWith('out.bmp') || n.includes('noext') || n.endsWith('.tmp'))).toEqual(
      [],
    );
  });

  it('refuses an existing file unless overwrite is set, then replaces it without leaving a temporary file', async () => {
    const path = join(dir, 'replace.png');
    await writeFile(path, 'old');
    expect(await codeOf(writeImage(path, gradient(4, 4)))).toBe('OUTPUT_EXISTS');
    expect((await readFile(path)).toString()).toBe('old');
    await writeImage(path, gradient(4, 4), { overwrite: true });
    expect((await readFile(path)).subarray(1, 4).toString()).toBe('PNG');
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  it('fails with a typed error in a missing directory', async () => {
    expect(await codeOf(writeImage(join(dir, 'missing', 'x.png'), gradient(2, 2)))).toBe('OUTPUT_UNWRITABLE');
  });

  it('encodeImage round-trips through decodeImage', async () => {
    const img = gradient(16, 9);
    expect((await decodeImage(await encodeImage(img, 'png'))).data).toEqual(img.data);
  });
});
