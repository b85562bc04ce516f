import { DcaeError } from '@dcae/core';

/**
 * NumPy `.npy` format version 1.0, the subset trainers read with `np.load`: little-endian float32
 * (`<f4`) or float16 (`<f2`), C order. The header (magic, version, length, Python dict literal,
 * space padding, newline) is padded so that the data starts at a multiple of 64 bytes, as NumPy
 * itself writes it (docs/latents.md, "Formats").
 */

export type NpyDType = 'float32' | 'float16';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY
const DESCR: Record<NpyDType, string> = { float32: '<f4', float16: '<f2' };
const BYTES: Record<NpyDType, number> = { float32: 4, float16: 2 };

/** The header bytes of a v1.0 `.npy` for `shape` and `dtype` (length a multiple of 64). */
export function npyHeader(dtype: NpyDType, shape: readonly number[]): Uint8Array {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  const dict = `{'descr': '${DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const unpadded = 10 + dict.length + 1; // magic(6) + version(2) + length(2) + dict + '\n'
  const total = Math.ceil(unpadded / 64) * 64;
  const headerLength = total - 10;
  if (headerLength > 0xffff) {
    throw new DcaeError('INVALID_ARGUMENT', `.npy v1.0 header of ${headerLength} bytes is over 65535.`);
  }
  const out = new Uint8Array(total);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  out[8] = headerLength & 0xff;
  out[9] = headerLength >> 8;
  const text = dict + ' '.repeat(total - unpadded) + '\n';
  for (let i = 0; i < text.length; i++) out[10 + i] = text.charCodeAt(i);
  return out;
}

/** A whole `.npy` file: header + the raw little-endian values (float16 values given as their bits). */
export function encodeNpy(
  dtype: NpyDType,
  shape: readonly number[],
  data: Float32Array | Uint16Array,
): Uint8Array {
  const count = shape.reduce((a, b) => a * b, 1);
  if (data.length !== count) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `.npy data has ${data.length} values; shape [${shape.join(', ')}] needs ${count}.`,
    );
  }
  if ((dtype === 'float32') !== data instanceof Float32Array) {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `.npy ${dtype} needs ${dtype === 'float32' ? 'Float32Array' : 'Uint16Array'} data.`,
    );
  }
  const header = npyHeader(dtype, shape);
  const out = new Uint8Array(header.length + count * BYTES[dtype]);
  out.set(header, 0);
  const view = new DataView(out.buffer, header.length);
  if (data instanceof Float32Array) for (let i = 0; i < count; i++) view.setFloat32(i * 4, data[i]!, true);
  else for (let i = 0; i < count; i++) view.setUint16(i * 2, data[i]!, true);
  return out;
}

export interface ParsedNpy {
  readonly dtype: NpyDType;
  readonly shape: readonly number[];
  /** float32 values, or float16 bits. */
  readonly data: Float32Array | Uint16Array;
}

/** Reads a `.npy` this module writes (v1.0/2.0, `<f4`/`<f2`, C order); anything else → a typed error. */
export function parseNpy(bytes: Uint8Array, source = '.npy'): ParsedNpy {
  const bad = (why: string): DcaeError =>
    new DcaeError('UNSUPPORTED_FORMAT', `${source}: not a float32/float16 .npy (${why}).`, { source });
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) throw bad('no \\x93NUMPY magic');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [headerStart, headerLength] =
    major === 1 ? [10, view.getUint16(8, true)] : major === 2 ? [12, view.getUint32(8, true)] : [0, -1];
  if (headerLength < 0) throw bad(`version ${major}`);
  if (headerStart + headerLength > bytes.length) throw bad('header past the end');
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  const dtype = descr === '<f4' ? 'float32' : descr === '<f2' ? 'float16' : undefined;
  if (dtype === undefined) throw bad(`descr ${descr ?? 'missing'}`);
  if (fortran !== 'False') throw bad('fortran_order is not False');
  if (shapeText === undefined) throw bad('no shape');
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) throw bad(`shape (${shapeText})`);
  const count = shape.reduce((a, b) => a * b, 1);
  const start = headerStart + headerLength;
  if (bytes.length - start !== count * BYTES[dtype]) {
    throw new DcaeError(
      'TRUNCATED_DATA',
      `${source}: ${bytes.length - start} data bytes; shape (${shapeText}) ${descr} needs ${count * BYTES[dtype]}.`,
      { source },
    );
  }
  const data = dtype === 'float32' ? new Float32Array(count) : new Uint16Array(count);
  const dv = new DataView(bytes.buffer, bytes.byteOffset + start, count * BYTES[dtype]);
  if (data instanceof Float32Array) for (let i = 0; i < count; i++) data[i] = dv.getFloat32(i * 4, true);
  else for (let i = 0; i < count; i++) data[i] = dv.getUint16(i * 2, true);
  return { dtype, shape, data };
}
