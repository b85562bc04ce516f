import { readFile } from 'node:fs/promises';
import { extname } from 'node:path';
import { DcaeError, formatShape, parseSafetensors, toFloat32 } from '@dcae/core';
import type { HostTensor } from '@dcae/core';

/** Tensors the CLI exchanges in .safetensors files. */
export type TensorName = 'sample' | 'latent';

export function isSafetensorsPath(path: string): boolean {
  return extname(path).toLowerCase() === '.safetensors';
}

export interface TensorInput {
  /** float32 `[N, C, H, W]` (F16 and BF16 files are widened exactly). */
  readonly tensor: HostTensor<'float32'>;
  /** The file's `__metadata__`. */
  readonly metadata: ReadonlyMap<string, string>;
}

/** Reads tensor `name` from a .safetensors file and checks that it is a floating-point NCHW tensor. */
export async function readTensorFile(
  path: string,
  name: TensorName,
  signal: AbortSignal,
): Promise<TensorInput> {
  const file = parseSafetensors(await readInputFile(path, signal), { name: path });
  const info = file.tensorInfo(name);
  if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${path}: tensor "${name}" is ${info.dtype}; expected a floating-point tensor (F32, F16 or BF16).`,
      { source: path },
    );
  }
  if (info.shape.length !== 4 || info.shape.some((d) => d === 0)) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${path}: tensor "${name}" has shape ${formatShape(info.shape)}; expected a non-empty [N, C, H, W].`,
      { source: path },
    );
  }
  return { tensor: toFloat32(file.tensor(name)), metadata: file.header.metadata };
}

/** The bytes of an input file; FILE_NOT_FOUND or FILE_READ when it cannot be read. */
export async function readInputFile(path: string, signal: AbortSignal): Promise<Uint8Array> {
  try {
    return await readFile(path, { signal });
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (code === 'ABORT_ERR') throw signal.reason;
    if (code === 'ENOENT')
      throw new DcaeError('FILE_NOT_FOUND', `${path} does not exist.`, { source: path, cause });
    throw new DcaeError(
      'FILE_READ',
      `Cannot read ${path}: ${cause instanceof Error ? cause.message : String(cause)}.`,
      {
        source: path,
        cause,
      },
    );
  }
}

/** The top-left `width`×`height` region of every image of an NCHW tensor. */
export function cropTensor(
  tensor: HostTensor<'float32'>,
  width: number,
  height: number,
): HostTensor<'float32'> {
  const [n, c, h, w] = tensor.shape as [number, number, number, number];
  if (width === w && height === h) return tensor;
  if (width > w || height > h) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `Cannot crop a ${w}×${h} output to the recorded original size ${width}×${height}; the latent does not match its metadata.`,
    );
  }
  const data = new Float32Array(n * c * height * width);
  for (let plane = 0; plane < n * c; plane++)
    for (let y = 0; y < height; y++) {
      const from = (plane * h + y) * w;
      data.set(tensor.data.subarray(from, from + width), (plane * height + y) * width);
    }
  return { dtype: 'float32', shape: [n, c, height, width], data };
}
