import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSafetensors } from '@dcae/core';
import { fileSource } from '@dcae/core/node';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import {
  ensureRandomCheckpoint,
  ensureRandomSafetensors,
  sdVaeConfigJson,
  sdVaeRandomTensors,
  TINY_SD_VAE,
} from '../src/random-weights.js';

const folder = mkdtempSync(join(tmpdir(), 'dcae-bench-weights-'));
const runtime = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await runtime.dispose();
  rmSync(folder, { recursive: true, force: true });
});

describe('ensureRandomCheckpoint', () => {
  it('writes a checkpoint loadAutoencoder binds and runs, once', async () => {
    const tensors = sdVaeRandomTensors(TINY_SD_VAE, ['encoder', 'decoder']);
    const options = { configJson: sdVaeConfigJson(TINY_SD_VAE) };
    const written = await ensureRandomCheckpoint(folder, tensors, options);
    const path = join(folder, 'diffusion_pytorch_model.safetensors');
    const file = await openSafetensors(await fileSource(path));
    try {
      expect(file.header.tensors.size).toBe(tensors.length);
      const weight = await file.readTensor('decoder.conv_out.weight');
      const data = weight.data as Float32Array;
      const bound = 1 / Math.sqrt(8 * 9); // fan-in of a 3×3 conv from 8 channels
      expect(Math.max(...data.map(Math.abs))).toBeLessThanOrEqual(bound);
      expect(new Set(data).size).toBeGreaterThan(data.length / 2);
    } finally {
      await file.close();
    }
    expect(written.bytes).toBe(tensors.reduce((sum, t) => sum + 4 * t.shape.reduce((a, b) => a * b, 1), 0));

    const mtime = statSync(path).mtimeMs;
    await ensureRandomCheckpoint(folder, tensors, options);
    expect(statSync(path).mtimeMs).toBe(mtime);

    const ae = await loadAutoencoder(folder, { runtime });
    try {
      expect(ae.architecture).toBe('sd-vae');
      const images = {
        dtype: 'float32' as const,
        shape: [1, 3, 16, 16],
        data: new Float32Array(768).fill(0.5),
      };
      expect((await ae.encode(images)).shape).toEqual([1, 4, 2, 2]);
    } finally {
      await ae.dispose();
    }
  });
});

describe('ensureRandomSafetensors', () => {
  it('reports the byte ranges the reader finds, draws within each range, and rewrites only on a new header', async () => {
    const path = join(folder, 'generic', 'tensors.safetensors');
    const tensors = [
      { key: 'a', shape: [3, 5], range: [-1, 1] as const },
      { key: 'b.num_batches_tracked', shape: [], range: 'counter' as const },
      { key: 'c', shape: [7], range: [2, 3] as const },
    ];
    const written = await ensureRandomSafetensors(path, tensors, { seed: 3 });
    expect(written.bytes).toBe(15 * 4 + 8 + 7 * 4);
    const file = await openSafetensors(await fileSource(path));
    try {
      for (const t of tensors) {
        const [begin, end] = written.ranges.get(t.key)!;
        expect(file.fileOffset(t.key)).toBe(begin);
        expect(end - begin).toBe(t.range === 'counter' ? 8 : 4 * t.shape.reduce((x, y) => x * y, 1));
      }
      const c = (await file.readTensor('c')).data as Float32Array;
      expect(Math.min(...c)).toBeGreaterThanOrEqual(2);
      expect(Math.max(...c)).toBeLessThanOrEqual(3);
    } finally {
      await file.close();
    }

    const mtime = statSync(path).mtimeMs;
    await ensureRandomSafetensors(path, tensors, { seed: 3 });
    expect(statSync(path).mtimeMs).toBe(mtime);
    // Same size, other header (a key renamed): written again.
    const renamed = [{ ...tensors[0]!, key: 'z' }, tensors[1]!, tensors[2]!];
    const again = await ensureRandomSafetensors(path, renamed, { seed: 3 });
    expect([...again.ranges.keys()]).toEqual(['z', 'b.num_batches_tracked', 'c']);
    const reread = await openSafetensors(await fileSource(path));
    expect([...reread.header.tensors.keys()]).toContain('z');
    await reread.close();
    expect(readdirSync(join(folder, 'generic'))).toEqual(['tensors.safetensors']);
  });
});
