import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { encodeImage } from '@dcae/autoencoder/node';
import type { RgbImage } from '@dcae/autoencoder';
import { writeTar } from '@dcae/latents/node';
import type { TarEntry } from '@dcae/latents/node';
import { afterAll } from 'vitest';

export const REPO = resolve(import.meta.dirname, '../../..');
export const TINY_MODEL = join(REPO, 'fixtures/dcae/tiny-sana-f32');

const created: string[] = [];
export async function tempDir(prefix = 'dcae-latents-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  created.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of created) await rm(dir, { recursive: true, force: true });
});

/** A deterministic test picture: gradients plus a seed-dependent pattern. */
export function picture(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      data[i] = (x * 255) / Math.max(1, width - 1);
      data[i + 1] = (y * 255) / Math.max(1, height - 1);
      data[i + 2] = ((x * 7 + y * 13 + seed * 31) * 5) & 255;
    }
  return { width, height, channels: 3, data };
}

export async function png(width: number, height: number, seed: number): Promise<Uint8Array> {
  return encodeImage(picture(width, height, seed), 'png');
}

/** A JPEG whose data is cut short: the header parses, the decoder fails. */
export async function corruptJpeg(): Promise<Uint8Array> {
  const good = await encodeImage(picture(48, 40, 9), 'jpeg');
  return good.subarray(0, Math.floor(good.length / 2));
}

/** ImageNet-style class folders: `classes` folders of `perClass` PNGs of mixed sizes. */
export async function imageFolder(root: string, classes: number, perClass: number): Promise<string[]> {
  const paths: string[] = [];
  for (let c = 0; c < classes; c++) {
    for (let i = 0; i < perClass; i++) {
      const path = join(root, `n0000${c}`, `img.${c}_${i}.png`);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, await png(70 + 3 * i, 64 + 5 * c, c * 100 + i));
      paths.push(path);
    }
  }
  return paths;
}

/** A WebDataset tar of `keys` (png + txt caption + cls label), in that order. */
export async function wdsTar(
  path: string,
  samples: readonly { key: string; image: Uint8Array; caption?: string }[],
): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const handle = await open(path, 'w');
  try {
    const entries = async function* (): AsyncGenerator<TarEntry> {
      let label = 0;
      for (const s of samples) {
        yield { name: `${s.key}.png`, data: s.image };
        yield { name: `${s.key}.txt`, data: new TextEncoder().encode(s.caption ?? `caption of ${s.key}`) };
        yield { name: `${s.key}.cls`, data: new TextEncoder().encode(String(label++)) };
      }
    };
    await writeTar(handle, entries());
  } finally {
    await handle.close();
  }
}

/** Whether `python3 -c 'import numpy'` works here (the Python interop checks need it). */
export function hasNumpy(): boolean {
  try {
    execFileSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
