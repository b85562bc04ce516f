import { readFileSync } from 'node:fs';
import { parseJsonConfig, parseSafetensors, serializeSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import type { DcAeConfig } from '../src/index.js';
import { dcAeCheckpointLayout, loadAutoencoder, memoryModelFiles, parseDcAeConfig } from '../src/index.js';
import { FIXTURE_NAMES, fixturePath, maxAbsDiff, readFixtureTensors } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await runtime.dispose();
});

/**
 * The fixture's weights under their original efficientvit names: each diffusers key goes back to
 * its original module path, to_q/to_k/to_v are stacked into the fused qkv 1×1 conv and Linear
 * weights become [O, I, 1, 1].
 */
function toOriginalFormat(config: DcAeConfig, diffusers: Uint8Array): Uint8Array {
  const file = parseSafetensors(diffusers);
  const out = new Map<string, HostTensor>();
  const { params } = dcAeCheckpointLayout(config);
  for (const p of params) {
    if (out.has(p.original)) continue;
    const parts = params.filter((q) => q.original === p.original);
    const tensors = parts.map((q) => file.tensor(q.key));
    if (tensors.length === 3) {
      const data = new Float32Array(tensors.reduce((n, t) => n + t.data.length, 0));
      tensors.forEach((t, i) => data.set(t.data as Float32Array, i * t.data.length));
      out.set(p.original, { dtype: 'float32', shape: [3 * p.shape[0]!, p.shape[1]!, 1, 1], data });
    } else {
      const t = tensors[0]!;
      out.set(p.original, p.shape.length === 2 ? { ...t, shape: [...t.shape, 1, 1] } : t);
    }
  }
  return serializeSafetensors(out);
}

describe.each(FIXTURE_NAMES)('%s converted to the original efficientvit format', (name) => {
  const configText = readFileSync(fixturePath(name, 'config.json'), 'utf8');
  const config = parseDcAeConfig(parseJsonConfig(configText));
  const diffusersBytes = readFileSync(fixturePath(name, 'diffusion_pytorch_model.safetensors'));
  const originalBytes = toOriginalFormat(config, diffusersBytes);
  const meta = JSON.parse(readFileSync(fixturePath(name, 'meta.json'), 'utf8'));
  const input = readFixtureTensors(name, 'input.safetensors');

  it('has the original key count of the fixture generator', () => {
    expect(parseSafetensors(originalBytes).header.tensors.size).toBe(
      meta.efficientvit_crosscheck['original keys'],
    );
  });

  it('gives bit-identical latents and images to the diffusers checkpoint', async () => {
    const original = await loadAutoencoder(
      memoryModelFiles(`${name}-original`, {
        'config.json': new TextEncoder().encode(JSON.stringify({ model_name: name })),
        'model.safetensors': originalBytes,
      }),
      { runtime, config },
    );
    const diffusers = await loadAutoencoder(
      memoryModelFiles(name, {
        'config.json': new TextEncoder().encode(configText),
        'diffusion_pytorch_model.safetensors': diffusersBytes,
      }),
      { runtime },
    );
    try {
      expect(original.format).toBe('original');
      expect(diffusers.format).toBe('diffusers');
      expect(original.summary().keys).toEqual({
        ...diffusers.summary().keys,
        checkpoint: meta.efficientvit_crosscheck['original keys'],
      });
      const sample = input.get('sample')!;
      const latent = input.get('latent')!;
      expect(maxAbsDiff(await original.encode(sample), await diffusers.encode(sample))).toBe(0);
      expect(maxAbsDiff(await original.decode(latent), await diffusers.decode(latent))).toBe(0);
    } finally {
      await Promise.all([original.dispose(), diffusers.dispose()]);
    }
  });

  it('needs a config for a model_name that is not a released preset', async () => {
    const files = memoryModelFiles(name, {
      'config.json': new TextEncoder().encode(JSON.stringify({ model_name: name })),
      'model.safetensors': originalBytes,
    });
    await expect(loadAutoencoder(files, { runtime })).rejects.toMatchObject({ code: 'CONFIG_UNKNOWN_MODEL' });
  });
});
