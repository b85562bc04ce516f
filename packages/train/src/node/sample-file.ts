import { readFile } from 'node:fs/promises';
import { DcaeError, formatShape, parseSafetensors, toFloat32 } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { tensorToImages } from '@dcae/autoencoder';
import type { TrainData } from '../data/types.js';

/** Reads the float tensor `sample` [N, 3, H, W] of a .safetensors file as float32. */
export async function readSampleTensor(path: string): Promise<HostTensor<'float32'>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    throw new DcaeError(
      code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_READ',
      code === 'ENOENT' ? `--data ${path} does not exist.` : `Cannot read --data ${path}: ${String(cause)}.`,
      { source: path, cause },
    );
  }
  const file = parseSafetensors(bytes, { name: path });
  const info = file.tensorInfo('sample');
  if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${path}: "sample" is ${info.dtype}; expected F32, F16 or BF16.`,
      {
        source: path,
      },
    );
  }
  if (info.shape.length !== 4 || info.shape[1] !== 3 || info.shape.some((d) => d === 0)) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${path}: "sample" has shape ${formatShape(info.shape)}; expected a non-empty [N, 3, H, W] in [-1, 1].`,
      { source: path },
    );
  }
  return toFloat32(file.tensor('sample'));
}

/**
 * A `.safetensors` tensor `sample` [N, 3, H, W] in [−1, 1] as training data: used as is, in order,
 * no augmentation; batch `step` holds samples (step·B + i) mod N. The held-out set is a second
 * sample file (`evalData`) when given, else the first (up to 8) training samples, marked as such.
 */
export async function openSampleFile(
  path: string,
  options: { readonly batch: number; readonly evalData?: string },
): Promise<TrainData> {
  const sample = await readSampleTensor(path);
  const [n, , h, w] = sample.shape as [number, number, number, number];
  const evalTensor = options.evalData !== undefined ? await readSampleTensor(options.evalData) : undefined;
  const plane = 3 * h * w;
  return {
    description: `sample file ${path} (${n} × 3 × ${h} × ${w}, in order, no augmentation)`,
    count: n,
    heldOutIsSeparate: evalTensor !== undefined,
    skipped: 0,
    batch(step) {
      const { batch } = options;
      const out = new Float32Array(batch * plane);
      for (let i = 0; i < batch; i++) {
        const j = (step * batch + i) % n;
        out.set(sample.data.subarray(j * plane, (j + 1) * plane), i * plane);
      }
      return Promise.resolve({ dtype: 'float32', shape: [batch, 3, h, w], data: out });
    },
    evalImages() {
      if (evalTensor !== undefined) return Promise.resolve(tensorToImages(evalTensor));
      const k = Math.min(n, 8);
      return Promise.resolve(
        tensorToImages({ dtype: 'float32', shape: [k, 3, h, w], data: sample.data.subarray(0, k * plane) }),
      );
    },
    close: () => Promise.resolve(),
  };
}
