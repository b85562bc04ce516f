import { DcaeError } from '@dcae/core';

/** The image file formats dcae reads and writes. Everything else (SVG, TIFF, GIF, HEIF, …) is refused. */
export type ImageFormat = 'png' | 'jpeg' | 'webp';

export interface ImageHeader {
  readonly format: ImageFormat;
  /** As stored, before any EXIF rotation (which never changes the pixel count). */
  readonly width: number;
  readonly height: number;
}

/** Decoders never run on more pixels than this unless the caller raises it: 8192×8192 (64 Mi pixels). */
export const DEFAULT_MAX_PIXELS = 8192 * 8192;

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function startsWith(bytes: Uint8Array, magic: readonly number[], at = 0): boolean {
  return bytes.length >= at + magic.length && magic.every((b, i) => bytes[at + i] === b);
}

function ascii(bytes: Uint8Array, at: number, length: number): string {
  return String.fromCharCode(...bytes.subarray(at, at + length));
}

/** The format the magic bytes announce: PNG `89 50 4E 47 0D 0A 1A 0A`, JPEG `FF D8 FF`, WebP `RIFF····WEBP`. */
export function sniffImageFormat(bytes: Uint8Array): ImageFormat | undefined {
  if (startsWith(bytes, PNG_MAGIC)) return 'png';
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) return 'jpeg';
  if (bytes.length >= 12 && ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') return 'webp';
  return undefined;
}

/**
 * Reads the format and the stored dimensions from the first bytes of a PNG (IHDR), JPEG (first
 * SOFn segment) or WebP (VP8, VP8L or VP8X chunk) file and enforces 1 ≤ width, height and
 * width·height ≤ `maxPixels`, so that no decoder ever sees a file that claims more (reliability §4).
 *
 * Throws UNSUPPORTED_FORMAT (other or no magic bytes), IMAGE_CORRUPT (header truncated or
 * malformed), ZERO_DIMENSION and DIMENSIONS_TOO_LARGE. `source` names the file in messages.
 */
export function readImageHeader(
  bytes: Uint8Array,
  maxPixels = DEFAULT_MAX_PIXELS,
  source = 'image',
): ImageHeader {
  const format = sniffImageFormat(bytes);
  if (format === undefined) {
    const head = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, '0').toUpperCase()).join(
      ' ',
    );
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      bytes.length === 0
        ? `${source} is empty; expected a PNG, JPEG or WebP file.`
        : `${source} is not a PNG, JPEG or WebP file (it starts with ${head}); convert it to one of those formats.`,
      { source },
    );
  }
  const size =
    format === 'png'
      ? pngSize(bytes, source)
      : format === 'jpeg'
        ? jpegSize(bytes, source)
        : webpSize(bytes, source);
  const { width, height } = size;
  if (width === 0 || height === 0) {
    throw new DcaeError(
      'ZERO_DIMENSION',
      `${source}: ${format} header declares a ${width}×${height} image.`,
      {
        source,
      },
    );
  }
  if (width * height > maxPixels) {
    throw new DcaeError(
      'DIMENSIONS_TOO_LARGE',
      `${source}: ${format} image is ${width}×${height} = ${width * height} pixels, over the limit of ${maxPixels}; ` +
        `downscale it or raise the pixel limit.`,
      { source, detail: { width, height, maxPixels } },
    );
  }
  return { format, width, height };
}

function corrupt(source: string, what: string): DcaeError {
  return new DcaeError('IMAGE_CORRUPT', `${source}: ${what}; the file is damaged or not a real image.`, {
    source,
  });
}

function view(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Signature, then the IHDR chunk: length (13), "IHDR", width and height as big-endian u32. */
function pngSize(bytes: Uint8Array, source: string): { width: number; height: number } {
  if (bytes.length < 24) throw corrupt(source, 'PNG ends before its IHDR header');
  if (ascii(bytes, 12, 4) !== 'IHDR') throw corrupt(source, 'PNG does not start with an IHDR chunk');
  const v = view(bytes);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

/** Walks the marker segments up to the first start-of-frame (SOF0–SOF15 except DHT C4, JPG C8, DAC CC). */
function jpegSize(bytes: Uint8Array, source: string): { width: number; height: number } {
  const v = view(bytes);
  let pos = 2;
  for (;;) {
    if (pos >= bytes.length) throw corrupt(source, 'JPEG ends before its frame header (SOF)');
    if (bytes[pos] !== 0xff) throw corrupt(source, `JPEG has no marker at byte ${pos}`);
    while (bytes[pos] === 0xff) pos++;
    if (pos >= bytes.length) throw corrupt(source, 'JPEG ends before its frame header (SOF)');
    const marker = bytes[pos++]!;
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue; // TEM, RSTn, SOI: no length
    if (marker === 0xd9 || marker === 0xda)
      throw corrupt(source, 'JPEG reaches its image data before a frame header (SOF)');
    if (pos + 2 > bytes.length) throw corrupt(source, 'JPEG ends inside a segment header');
    const length = v.getUint16(pos);
    if (length < 2) throw corrupt(source, `JPEG segment at byte ${pos - 2} has length ${length}`);
    const isFrame = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrame) {
      if (pos + 7 > bytes.length) throw corrupt(source, 'JPEG ends inside its frame header (SOF)');
      return { height: v.getUint16(pos + 3), width: v.getUint16(pos + 5) };
    }
    pos += length;
  }
}

/** RIFF header, then the first chunk: "VP8 " (lossy), "VP8L" (lossless) or "VP8X" (extended, canvas size). */
function webpSize(bytes: Uint8Array, source: string): { width: number; height: number } {
  if (bytes.length < 30) throw corrupt(source, 'WebP ends before its image header');
  const v = view(bytes);
  const chunk = ascii(bytes, 12, 4);
  if (chunk === 'VP8 ') {
    if (!startsWith(bytes, [0x9d, 0x01, 0x2a], 23)) throw corrupt(source, 'WebP VP8 frame has no start code');
    return { width: v.getUint16(26, true) & 0x3fff, height: v.getUint16(28, true) & 0x3fff };
  }
  if (chunk === 'VP8L') {
    if (bytes[20] !== 0x2f) throw corrupt(source, 'WebP VP8L stream has no signature byte');
    const bits = v.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
  }
  if (chunk === 'VP8X') {
    const u24 = (at: number) => bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16);
    return { width: u24(24) + 1, height: u24(27) + 1 };
  }
  throw corrupt(source, `WebP starts with an unknown chunk "${chunk}"`);
}
