import { serializeModel } from '@dcae/core/onnx';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeAutoencoder } from '../src/node/index.js';
import { loadAutoencoder } from '../src/node/index.js';
import { FIXTURE_NAMES, fixturePath, fixtureTolerance, maxAbsDiff, readFixtureTensors } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });

describe.each(FIXTURE_NAMES)('%s golden fixture', (name) => {
  let ae: NodeAutoencoder;
  const input = readFixtureTensors(name, 'input.safetensors');
  const expected = readFixtureTensors(name, 'expected.safetensors');
  const intermediates = readFixtureTensors(name, 'intermediates.safetensors');

  beforeAll(async () => {
    ae = await loadAutoencoder(fixturePath(name), { runtime });
  });
  afterAll(async () => {
    await ae?.dispose();
  });

  const expectClose = (actual: HostTensor<'float32'>, reference: HostTensor<'float32'>): void => {
    expect(actual.shape).toEqual(reference.shape);
    expect(maxAbsDiff(actual, reference)).toBeLessThanOrEqual(fixtureTolerance(reference));
  };

  it('encode(sample) matches the diffusers latent', async () => {
    expectClose(await ae.encode(input.get('sample')!), expected.get('latent')!);
  });

  it('decode(latent) matches the diffusers image', async () => {
    expectClose(await ae.decode(input.get('latent')!), expected.get('decoded')!);
  });

  it('decode(encode(sample)) matches the diffusers reconstruction', async () => {
    expectClose(await ae.decode(await ae.encode(input.get('sample')!)), expected.get('reconstruction')!);
  });

  it.each(['encoder', 'decoder'] as const)(
    'every %s stage output matches the fixture intermediates',
    async (part) => {
      const model = await ae.buildGraph(part, { intermediates: true });
      const weights = 'diffusion_pytorch_model.safetensors';
      const session = await runtime.createSession(serializeModel(model), {
        externalData: [{ location: weights, data: fixturePath(name, weights) }],
      });
      try {
        const feed: Record<string, HostTensor> =
          part === 'encoder' ? { sample: input.get('sample')! } : { latent_sample: input.get('latent')! };
        const outputs = await session.run(feed);
        const prefix = part === 'encoder' ? 'encode/' : 'decode/';
        const compared = [...intermediates.keys()].filter((k) => k.startsWith(prefix));
        expect(compared.length).toBeGreaterThan(4);
        for (const key of compared) {
          const produced = outputs[key.slice(prefix.length)] as HostTensor<'float32'> | undefined;
          expect(produced, key).toBeDefined();
          expect(maxAbsDiff(produced!, intermediates.get(key)!), key).toBeLessThanOrEqual(
            fixtureTolerance(intermediates.get(key)!),
          );
        }
      } finally {
        await session.dispose();
      }
    },
  );
});

afterAll(async () => {
  await runtime.dispose();
});
