/**
 * DC-AE 1.5 (full and adaptive channels, DC-Gen key layout) and TAESANA (read from its .pth files
 * by the safe reader) in headless Chromium on onnxruntime-web's wasm backend: the same parity as
 * the Node tests (dcae15.test.ts, taesana.test.ts), through the browser's byte sources.
 */
import { parseJsonConfig, parseSafetensors, toFloat32 } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { WebRuntime } from '@dcae/runtime-adapters/web';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { commands } from 'vitest/browser';
import { loadAutoencoder, memoryModelFiles, parseDcAeConfig, TAESANA_LATENT_SCALE } from '../src/index.js';
import { fixtureTolerance, maxAbsDiff } from './tolerance.js';

const DCAE15 = '../../fixtures/family2/dcae15-tiny-f32';
const TAESANA = '../../fixtures/family2/taesana-randinit';

async function bytes(path: string): Promise<Uint8Array> {
  const base64 = await commands.readFile(path, 'base64');
  return Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
}

async function tensors(path: string): Promise<Map<string, HostTensor<'float32'>>> {
  const st = parseSafetensors(await bytes(path), { name: path });
  return new Map([...st.header.tensors.keys()].map((key) => [key, toFloat32(st.tensor(key))]));
}

const expectClose = (actual: HostTensor<'float32'>, reference: HostTensor<'float32'>): void => {
  expect(actual.shape).toEqual(reference.shape);
  expect(maxAbsDiff(actual, reference)).toBeLessThanOrEqual(fixtureTolerance(reference));
};

const map = (t: HostTensor<'float32'>, f: (v: number) => number): HostTensor<'float32'> => ({
  dtype: 'float32',
  shape: t.shape,
  data: t.data.map(f),
});

const SLOW_MS = 120_000;
let runtime: WebRuntime;
beforeAll(async () => {
  runtime = await createWebRuntime({ devices: ['wasm'], threads: 2 });
});
afterAll(() => runtime?.dispose());

describe('dcae15-tiny-f32 (DC-Gen layout) in Chromium', () => {
  it(
    'full and adaptive (N = 16, 8) encode and decode match DC-Gen',
    async () => {
      const config = parseDcAeConfig(parseJsonConfig(await bytes(`${DCAE15}/config.json`)));
      const files = memoryModelFiles('dcae15', {
        'model.safetensors': await bytes(`${DCAE15}/dcgen_model.safetensors`),
      });
      const [input, expected] = await Promise.all([
        tensors(`${DCAE15}/input.safetensors`),
        tensors(`${DCAE15}/expected.safetensors`),
      ]);
      const ae = await loadAutoencoder(files, { runtime, config });
      try {
        expect(ae.format).toBe('original');
        const sample = input.get('sample')!;
        expectClose(await ae.encode(sample), expected.get('latent')!);
        expectClose(await ae.decode(input.get('latent')!), expected.get('decoded')!);
        expectClose(await ae.encode(sample, { latentChannels: 16 }), expected.get('latent_c16')!);
        const z = input.get('latent')!;
        const first8 = { dtype: 'float32' as const, shape: [1, 8, 2, 3], data: z.data.slice(0, 8 * 6) };
        expectClose(await ae.decode(first8), expected.get('decoded_c8')!);
      } finally {
        await ae.dispose();
      }
    },
    SLOW_MS,
  );
});

describe('taesana-randinit from its .pth files in Chromium', () => {
  it(
    'encode and decode match upstream',
    async () => {
      const names = ['taesana_encoder.pth', 'taesana_decoder.pth'];
      const files = memoryModelFiles(
        'taesana',
        Object.fromEntries(await Promise.all(names.map(async (n) => [n, await bytes(`${TAESANA}/${n}`)]))),
      );
      const [input, expected] = await Promise.all([
        tensors(`${TAESANA}/input.safetensors`),
        tensors(`${TAESANA}/expected.safetensors`),
      ]);
      const ae = await loadAutoencoder(files, { runtime });
      try {
        expect(ae.architecture).toBe('taesana');
        const latent = await ae.encode(map(input.get('image')!, (v) => 2 * v - 1));
        expectClose(
          map(latent, (v) => v * TAESANA_LATENT_SCALE),
          expected.get('latent')!,
        );
        const decoded = await ae.decode(map(input.get('latent')!, (v) => v / TAESANA_LATENT_SCALE));
        expectClose(
          map(decoded, (v) => (v + 1) / 2),
          expected.get('decoded')!,
        );
      } finally {
        await ae.dispose();
      }
    },
    SLOW_MS,
  );
});
