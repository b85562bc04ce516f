import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { DcaeError } from '@dcae/core';
import { writeFileAtomic } from '@dcae/core/node';
import type { Sharp, SharpOptions } from 'sharp';
import { DEFAULT_MAX_PIXELS, readImageHeader } from '../image/header.js';
import type { ImageFormat } from '../image/header.js';
import { checkRgbImage } from '../image/rgb-image.js';
import type { RgbImage } from '../image/rgb-image.js';

/**
 * Image files ↔ RgbImage through sharp (an optional peer dependency, loaded on first use).
 * Only PNG, JPEG and WebP are read or written; every decoder error becomes a DcaeError.
 */

export interface ReadImageOptions {
  /** Largest accepted width·height, checked from the file header before decoding. @defaultValue `DEFAULT_MAX_PIXELS` (8192²) */
  readonly maxPixels?: number;
  readonly signal?: AbortSignal;
}

type SharpFactory = (input: Uint8Array, options?: SharpOptions) => Sharp;
let sharpModule: Promise<SharpFactory> | undefined;

function loadSharp(): Promise<SharpFactory> {
  sharpModule ??= import('sharp').then(
    (m) => m.default as unknown as SharpFactory,
    (cause: unknown) => {
      sharpModule = undefined;
      throw new DcaeError(
        'UNSUPPORTED',
        'Reading and writing image files needs the optional dependency "sharp"; install it with `npm install sharp`.',
        { cause },
      );
    },
  );
  return sharpModule;
}

/**
 * Decodes PNG, JPEG or WebP bytes to 8-bit RGB:
 * - the format comes from the magic bytes, never from a file name; others → UNSUPPORTED_FORMAT;
 * - the header's size is checked against `maxPixels` before any decoder runs (DIMENSIONS_TOO_LARGE,
 *   ZERO_DIMENSION), and sharp gets the same cap;
 * - EXIF orientation is applied (the result is upright, as viewers show it);
 * - an alpha channel is dropped, not composited: the colour under a transparent pixel is kept, as
 *   PIL's `convert("RGB")` in the reference data loaders does;
 * - greyscale becomes RGB (R = G = B), 16-bit samples become 8-bit (libvips keeps the high byte),
 *   CMYK and embedded ICC profiles are converted to sRGB; only the first frame of an animation is read;
 * - truncated or damaged data → IMAGE_CORRUPT (sharp's `failOn: 'warning'`: never a partial image).
 */
export async function decodeImage(
  bytes: Uint8Array,
  options: ReadImageOptions & { readonly source?: string } = {},
): Promise<RgbImage> {
  const source = options.source ?? 'image';
  const maxPixels = options.maxPixels ?? DEFAULT_MAX_PIXELS;
  readImageHeader(bytes, maxPixels, source);
  const sharp = await loadSharp();
  try {
    const { data, info } = await sharp(bytes, {
      failOn: 'warning',
      limitInputPixels: maxPixels,
      autoOrient: true,
      pages: 1,
    })
      .removeAlpha()
      .toColourspace('srgb')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) {
      throw new DcaeError('IMAGE_CORRUPT', `${source}: decoded to ${info.channels} channels instead of 3.`, {
        source,
      });
    }
    return {
      width: info.width,
      height: info.height,
      channels: 3,
      data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength),
    };
  } catch (cause) {
    if (DcaeError.is(cause)) throw cause;
    const reason = cause instanceof Error ? cause.message.trim() : String(cause);
    throw new DcaeError('IMAGE_CORRUPT', `${source}: cannot decode the image (${reason}).`, {
      source,
      cause,
    });
  }
}

/** Reads and decodes an image file; see {@link decodeImage} for what is accepted and how it is normalised. */
export async function readImage(path: string, options: ReadImageOptions = {}): Promise<RgbImage> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path, { signal: options.signal });
  } catch (cause) {
    throw fileReadError(path, cause);
  }
  const image = await decodeImage(bytes, { ...options, source: path });
  options.signal?.throwIfAborted();
  return image;
}

function fileReadError(path: string, cause: unknown): DcaeError {
  const code = (cause as { code?: string }).code;
  if (code === 'ABORT_ERR')
    return new DcaeError('ABORTED', `Reading ${path} was aborted.`, { source: path, cause });
  if (code === 'ENOENT')
    return new DcaeError('FILE_NOT_FOUND', `${path} does not exist.`, { source: path, cause });
  const reason =
    code === 'EISDIR' ? 'it is a directory' : cause instanceof Error ? cause.message : String(cause);
  return new DcaeError('FILE_READ', `Cannot read ${path}: ${reason}.`, { source: path, cause });
}

const EXTENSIONS: Readonly<Record<string, ImageFormat>> = {
  '.png': 'png',
  '.jpg': 'jpeg',
  '.jpeg': 'jpeg',
  '.webp': 'webp',
};

/** The format a file name asks for (`.png`, `.jpg`/`.jpeg`, `.webp`, any case), else UNSUPPORTED_FORMAT. */
export function imageFormatFromPath(path: string): ImageFormat {
  const ext = extname(path).toLowerCase();
  const format = EXTENSIONS[ext];
  if (format === undefined) {
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      `Cannot write an image to ${path}: unknown extension "${ext}"; use .png, .jpg, .jpeg or .webp.`,
      { source: path },
    );
  }
  return format;
}

/**
 * Encodes an RgbImage. PNG is lossless; WebP is written lossless too (a reconstruction should not
 * pick up a second codec's artefacts); JPEG uses quality 95 without chroma subsampling (4:4:4).
 */
export async function encodeImage(image: RgbImage, format: ImageFormat): Promise<Uint8Array> {
  checkRgbImage(image);
  const sharp = await loadSharp();
  const pipeline = sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } });
  const encoded =
    format === 'png'
      ? pipeline.png()
      : format === 'jpeg'
        ? pipeline.jpeg({ quality: 95, chromaSubsampling: '4:4:4' })
        : pipeline.webp({ lossless: true });
  const data = await encoded.toBuffer();
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

export interface WriteImageOptions {
  /** Replace an existing file instead of failing with OUTPUT_EXISTS. @defaultValue false */
  readonly overwrite?: boolean;
}

/**
 * Writes `image` to `path` in the format its extension names (see {@link imageFormatFromPath})
 * with core's `writeFileAtomic`: a temporary file in the same directory, flushed and renamed over
 * `path`, so a failure never leaves a partial file.
 */
export async function writeImage(
  path: string,
  image: RgbImage,
  options: WriteImageOptions = {},
): Promise<void> {
  const bytes = await encodeImage(image, imageFormatFromPath(path));
  await writeFileAtomic(path, bytes, { overwrite: options.overwrite === true });
}
