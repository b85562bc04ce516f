import { mkdtemp, mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createRng } from '@dcae/core';
import type { RgbImage } from '@dcae/autoencoder';
import { encodeImage } from '@dcae/autoencoder/node';

export const FIXTURE = resolve(import.meta.dirname, '../../../fixtures/dcae/tiny-in-f32');

export function tempDir(prefix = 'dcae-train-'): Promise<string> {
  return mkdtemp(join(tmpdir(), prefix));
}

/** A smooth random image (a few colour blobs), deterministic per seed. */
export function syntheticImage(width: number, height: number, seed: number): RgbImage {
  const rng = createRng(seed);
  const blobs = Array.from({ length: 4 }, () => ({
    x: rng.uniform() * width,
    y: rng.uniform() * height,
    r: 8 + rng.uniform() * 24,
    c: [rng.uniform() * 255, rng.uniform() * 255, rng.uniform() * 255],
  }));
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      for (let ch = 0; ch < 3; ch++) {
        let v = 40 + (ch * 60 * x) / width;
        for (const b of blobs)
          v += b.c[ch]! * Math.exp(-((x - b.x) ** 2 + (y - b.y) ** 2) / (2 * b.r * b.r)) * 0.6;
        data[(y * width + x) * 3 + ch] = Math.max(0, Math.min(255, Math.round(v)));
      }
    }
  }
  return { width, height, channels: 3, data };
}

/** A folder of `count` PNG/JPEG/WebP images (some in a subfolder), plus optional corrupt files. */
export async function imageFolder(count: number, options: { corrupt?: number } = {}): Promise<string> {
  const dir = await tempDir('dcae-train-data-');
  await mkdir(join(dir, 'sub'));
  const formats = ['png', 'jpeg', 'webp'] as const;
  for (let i = 0; i < count; i++) {
    const format = formats[i % 3]!;
    const ext = format === 'jpeg' ? 'jpg' : format;
    const bytes = await encodeImage(syntheticImage(72 + 8 * (i % 3), 64 + 4 * (i % 2), i + 1), format);
    await writeFile(join(dir, i % 2 === 0 ? '' : 'sub', `img-${i}.${ext}`), bytes);
  }
  for (let i = 0; i < (options.corrupt ?? 0); i++) {
    const bytes = await encodeImage(syntheticImage(64, 64, 100 + i), 'png');
    await writeFile(join(dir, `corrupt-${i}.png`), bytes.subarray(0, Math.floor(bytes.length / 2)));
  }
  await writeFile(join(dir, 'notes.txt'), 'not an image');
  return dir;
}
