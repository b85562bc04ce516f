import type { HostTensor } from '@dcae/core';
import { createRng } from '@dcae/core';

export function randomTensor(shape: readonly number[], seed: number, scale = 1): HostTensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = createRng(seed).fillNormal(new Float32Array(n), 0, scale);
  return { dtype: 'float32', shape: [...shape], data };
}

import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseSafetensors } from '@dcae/core';
import type { DcAeConfig } from '@dcae/autoencoder';
import { parseDcAeConfig } from '@dcae/autoencoder';

export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));

export interface Fixture {
  readonly config: DcAeConfig;
  readonly weights: Map<string, HostTensor>;
  /** The fixture's `sample` input, when the folder has input.safetensors. */
  readonly sample: HostTensor | undefined;
}

/** A bundled fixture folder (diffusers layout) with its weights as host tensors. */
export function loadFixture(dir: string): Fixture {
  const base = `${repoRoot}${dir}/`;
  const config = parseDcAeConfig(JSON.parse(readFileSync(`${base}config.json`, 'utf8')));
  const file = parseSafetensors(new Uint8Array(readFileSync(`${base}diffusion_pytorch_model.safetensors`)));
  const weights = new Map<string, HostTensor>();
  for (const name of file.header.tensors.keys()) weights.set(name, file.tensor(name));
  const inputPath = `${base}input.safetensors`;
  const sample = existsSync(inputPath)
    ? parseSafetensors(new Uint8Array(readFileSync(inputPath))).tensor('sample')
    : undefined;
  return { config, weights, sample };
}

/** A deterministic batch in [-1, 1] (smooth colour ramps plus noise, like a photo crop). */
export function imageBatch(
  shape: readonly [number, number, number, number],
  seed: number,
): HostTensor<'float32'> {
  const [b, c, h, w] = shape;
  const rng = createRng(seed);
  const data = new Float32Array(b * c * h * w);
  for (let n = 0; n < b; n++)
    for (let ch = 0; ch < c; ch++) {
      const fx = rng.uniform() * 4;
      const fy = rng.uniform() * 4;
      const ph = rng.uniform() * 6;
      for (let y = 0; y < h; y++)
        for (let x = 0; x < w; x++) {
          const v =
            0.7 * Math.sin(((fx * x) / w) * Math.PI + ((fy * y) / h) * Math.PI + ph) + 0.2 * rng.normal();
          data[((n * c + ch) * h + y) * w + x] = Math.max(-1, Math.min(1, v));
        }
    }
  return { dtype: 'float32', shape: [...shape], data };
}
