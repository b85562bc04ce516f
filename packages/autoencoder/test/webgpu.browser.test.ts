/**
 * The tiny DC-AE fixture on WebGPU in headless Chromium: SwiftShader's fallback adapter (float32
 * only, no shader-f16), through onnxruntime-web with no wasm fallback. The fixture's own 96×64
 * image, once per part. Slow: a part's first run compiles every kernel's WebGPU pipeline on the
 * CPU (the decoder has 330 nodes): on 2 cores about 45 s for the encoder and 10 s for the decoder
 * when the machine is quiet, up to ~100 s per part when it is busy; a second run takes ~3 s.
 */
import { parseSafetensors, toFloat32 } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { WebRuntime } from '@dcae/runtime-adapters/web';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import type { Autoencoder } from '../src/index.js';
import { loadAutoencoder, memoryModelFiles } from '../src/index.js';
import { fixtureTolerance, maxAbsDiff } from './tolerance.js';

const FIXTURE = '../../fixtures/dcae/tiny-sana-f32';

/** A fixture file's bytes, read by the test server (paths are relative to the package). */
async function fixtureBytes(file: string): Promise<Uint8Array> {
  const base64 = await commands.readFile(`${FIXTURE}/${file}`, 'base64');
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

async function fixtureTensors(file: string): Promise<Map<string, HostTensor<'float32'>>> {
  const st = parseSafetensors(await fixtureBytes(file), { name: file });
  return new Map([...st.header.tensors.keys()].map((key) => [key, toFloat32(st.tensor(key))]));
}

/** A first run on SwiftShader: pipeline compilation, not the arithmetic, takes the time. */
const FIRST_RUN_MS = 300_000;

describe('tiny-sana-f32 on WebGPU (SwiftShader)', () => {
  let runtime: WebRuntime;
  let files: ReturnType<typeof memoryModelFiles>;
  let input: Map<string, HostTensor<'float32'>>;
  let expected: Map<string, HostTensor<'float32'>>;
  let model: Autoencoder;

  beforeAll(async () => {
    const names = ['config.json', 'diffusion_pytorch_model.safetensors'];
    const bytes = await Promise.all(names.map(fixtureBytes));
    files = memoryModelFiles('tiny-sana-f32', Object.fromEntries(names.map((n, i) => [n, bytes[i]!])));
    [input, expected] = await Promise.all([
      fixtureTensors('input.safetensors'),
      fixtureTensors('expected.safetensors'),
    ]);
    runtime = await createWebRuntime({ devices: ['webgpu'] });
    model = await loadAutoencoder(files, { runtime });
  });
  afterAll(async () => {
    await model?.dispose();
    await runtime?.dispose();
  });

  const expectClose = (actual: HostTensor<'float32'>, reference: HostTensor<'float32'>): void => {
    expect(actual.shape).toEqual(reference.shape);
    expect(maxAbsDiff(actual, reference)).toBeLessThanOrEqual(fixtureTolerance(reference));
  };

  it('runs on the fallback adapter only', () => {
    expect(runtime.devices).toEqual(['webgpu']);
    expect(runtime.gpu).toMatchObject({ isFallbackAdapter: true, shaderF16: false });
  });

  it(
    'encode(sample) matches the diffusers latent',
    async () => {
      expectClose(await model.encode(input.get('sample')!), expected.get('latent')!);
    },
    FIRST_RUN_MS,
  );

  it(
    'decode(latent) matches the diffusers image',
    async () => {
      expectClose(await model.decode(input.get('latent')!), expected.get('decoded')!);
    },
    FIRST_RUN_MS,
  );

  it('refuses fp16 on an adapter without shader-f16, with a typed error', async () => {
    const half = await loadAutoencoder(files, { runtime, dtype: 'fp16', parts: ['decoder'] });
    try {
      await expect(half.decode(input.get('latent')!)).rejects.toMatchObject({
        name: 'DcaeError',
        code: 'DEVICE_UNAVAILABLE',
        message: expect.stringMatching(/float16.*shader-f16/),
      });
    } finally {
      await half.dispose();
    }
  });
});
