import type { HostTensor } from '@dcae/core';
import { createRng } from '@dcae/core';

export function randomTensor(shape: readonly number[], seed: number, scale = 1): HostTensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = createRng(seed).fillNormal(new Float32Array(n), 0, scale);
  return { dtype: 'float32', shape: [...shape], data };
}
