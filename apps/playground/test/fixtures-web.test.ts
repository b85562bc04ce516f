/**
 * The DC-AE golden fixtures on onnxruntime-web's wasm backend under Node: what the playground runs
 * in the browser, checked against the diffusers reference (fixtures/README.md tolerance).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { parseSafetensors } from '@dcae/core';
import type { Autoencoder } from '@dcae/autoencoder';
import { loadAutoencoder, memoryModelFiles } from '@dcae/autoencoder';
import type { WebRuntime } from '@dcae/runtime-adapters/web';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FIXTURES = resolve(import.meta.dirname, '../../../fixtures/dcae');

function tensors(name: string, file: string): Map<string, HostTensor<'float32'>> {
  const st = parseSafetensors(readFileSync(join(FIXTURES, name, file)), { name: file });
  return new Map([...st.header.tensors.keys()].map((k) => [k, st.tensor(k) as HostTensor<'float32'>]));
}

function expectClose(actual: HostTensor<'float32'>, expected: HostTensor<'float32'>): void {
  expect(actual.shape).toEqual(expected.shape);
  let worst = 0;
  let scale = 1;
  for (let i = 0; i < expected.data.length; i++) {
    worst = Math.max(worst, Math.abs(actual.data[i]! - expected.data[i]!));
    scale = Math.max(scale, Math.abs(expected.data[i]!));
  }
  expect(worst).toBeLessThanOrEqual(1e-4 * scale);
}

let runtime: WebRuntime;
beforeAll(async () => {
  runtime = await createWebRuntime({ devices: ['wasm'], threads: 2 });
});
afterAll(() => runtime?.dispose());

describe.each(['tiny-in-f32', 'tiny-sana-f32'])('%s on onnxruntime-web (wasm, Node)', (name) => {
  let ae: Autoencoder;
  const input = tensors(name, 'input.safetensors');
  const expected = tensors(name, 'expected.safetensors');

  beforeAll(async () => {
    const folder = join(FIXTURES, name);
    const files = Object.fromEntries(
      readdirSync(folder)
        .filter((f) => f === 'config.json' || f === 'diffusion_pytorch_model.safetensors')
        .map((f) => [f, new Uint8Array(readFileSync(join(folder, f)))]),
    );
    ae = await loadAutoencoder(memoryModelFiles(name, files), { runtime });
  });
  afterAll(() => ae?.dispose());

  it('encode(sample) matches the reference latent', async () => {
    expectClose(await ae.encode(input.get('sample')!), expected.get('latent')!);
  });

  it('decode(latent) matches the reference image', async () => {
    expectClose(await ae.decode(input.get('latent')!), expected.get('decoded')!);
  });

  it('decode(encode(sample)) matches the reference reconstruction', async () => {
    expectClose(await ae.decode(await ae.encode(input.get('sample')!)), expected.get('reconstruction')!);
  });
});
