import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseJsonConfig, parseSafetensors, serializeSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DcAeConfig } from '../src/index.js';
import { dcAeCheckpointLayout, parseDcAeConfig } from '../src/index.js';
import { loadAutoencoder } from '../src/node/index.js';
import { fixturePath, maxAbsDiff, readFixtureTensors } from './helpers.js';

/**
 * `keyPrefix`: the released diffusion checkpoints hold the DC-AE (original efficientvit keys) under
 * `autoencoder.` and the backbone under `diffusion_model.` in one model.safetensors. A tiny one is
 * built here from the tiny-sana-f32 fixture and the tiny-uvit diffusion fixture.
 */

const NAME = 'tiny-sana-f32';
const PREFIX = 'autoencoder.';
const runtime = createNodeRuntime({ threads: 1 });
const config: DcAeConfig = parseDcAeConfig(
  parseJsonConfig(readFileSync(fixturePath(NAME, 'config.json'), 'utf8')),
);

/** The fixture's diffusers tensors under their original names (fused qkv, Linear as 1×1 conv), with `prefix`. */
function originalTensors(prefix: string): Map<string, HostTensor> {
  const file = parseSafetensors(readFileSync(fixturePath(NAME, 'diffusion_pytorch_model.safetensors')));
  const { params } = dcAeCheckpointLayout(config);
  const out = new Map<string, HostTensor>();
  for (const p of params) {
    const name = prefix + p.original;
    if (out.has(name)) continue;
    const parts = params.filter((q) => q.original === p.original).map((q) => file.tensor(q.key));
    const data = new Float32Array(parts.reduce((n, t) => n + t.data.length, 0));
    parts.forEach((t, i) => data.set(t.data as Float32Array, i * t.data.length));
    const shape =
      p.shape.length === 2 ? [parts.length * p.shape[0]!, p.shape[1]!, 1, 1] : [...parts[0]!.shape];
    out.set(name, { dtype: 'float32', shape, data });
  }
  return out;
}

const diffusionTensors = (): Map<string, HostTensor> => {
  const file = parseSafetensors(
    readFileSync(resolve(import.meta.dirname, '../../../fixtures/diffusion/tiny-uvit/model.safetensors')),
  );
  return new Map([...file.header.tensors.keys()].map((key) => [key, file.tensor(key)]));
};

const dirs: string[] = [];
/** A model folder like the released ones: config.json {"model_name"} + one combined model.safetensors. */
async function combinedFolder(tensors: Map<string, HostTensor>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dcae-combined-'));
  dirs.push(dir);
  await writeFile(join(dir, 'config.json'), JSON.stringify({ model_name: 'tiny-combined' }));
  await writeFile(join(dir, 'model.safetensors'), serializeSafetensors(tensors));
  return dir;
}

afterAll(async () => {
  await runtime.dispose();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('loadAutoencoder({ keyPrefix }) on a combined diffusion checkpoint', () => {
  let combined: string;
  let aeKeys: number;
  beforeAll(async () => {
    const ae = originalTensors(PREFIX);
    aeKeys = ae.size;
    combined = await combinedFolder(new Map([...diffusionTensors(), ...ae]));
  });

  it('encodes and decodes exactly like the plain diffusers fixture', async () => {
    const input = readFixtureTensors(NAME, 'input.safetensors');
    const fromCombined = await loadAutoencoder(combined, { runtime, config, keyPrefix: PREFIX });
    const plain = await loadAutoencoder(fixturePath(NAME), { runtime });
    try {
      expect(fromCombined.format).toBe('original');
      expect(fromCombined.summary().keys).toEqual({ ...plain.summary().keys, checkpoint: aeKeys });
      const sample = input.get('sample')!;
      const latent = input.get('latent')!;
      expect(maxAbsDiff(await fromCombined.encode(sample), await plain.encode(sample))).toBe(0);
      expect(maxAbsDiff(await fromCombined.decode(latent), await plain.decode(latent))).toBe(0);
    } finally {
      await Promise.all([fromCombined.dispose(), plain.dispose()]);
    }
  });

  it('without the prefix, the file does not bind', async () => {
    await expect(loadAutoencoder(combined, { runtime, config })).rejects.toMatchObject({
      code: 'WEIGHTS_MISMATCH',
    });
  });

  it('a prefix no tensor has is refused by name', async () => {
    const error = loadAutoencoder(combined, { runtime, config, keyPrefix: 'vae.' });
    await expect(error).rejects.toMatchObject({ code: 'WEIGHTS_MISMATCH' });
    await expect(error).rejects.toThrow(/no tensor under "vae\."/);
  });

  it('stays strict under the prefix and names the file keys; other prefixes are not reported', async () => {
    const tensors = new Map([...diffusionTensors(), ...originalTensors(PREFIX)]);
    const dropped = dcAeCheckpointLayout(config)
      .params.filter((p) => p.role === 'weight')
      .at(-1)!.original;
    expect(tensors.delete(PREFIX + dropped)).toBe(true);
    tensors.set(`${PREFIX}extra.weight`, { dtype: 'float32', shape: [2], data: new Float32Array(2) });
    const dir = await combinedFolder(tensors);
    const error = await loadAutoencoder(dir, { runtime, config, keyPrefix: PREFIX }).then(
      () => undefined,
      (e: unknown) => e as { code: string; message: string },
    );
    expect(error?.code).toBe('WEIGHTS_MISMATCH');
    expect(error?.message).toMatch(/1 missing, 1 unused/);
    expect(error?.message).toContain(`missing ${dropped}`);
    expect(error?.message).toContain('unused  extra.weight');
    expect(error?.message).toContain(`(tensors under "${PREFIX}")`);
    expect(error?.message).not.toContain('diffusion_model.');
  });
});
