import type { RuntimeV1 } from '@dcae/core/runtime';
import { describe, expect, it } from 'vitest';
import {
  estimateActivationBytes,
  presetConfig,
  WASM32_MEMORY_BYTES,
  WASM_HEADROOM_BYTES,
  wasmMemoryBudget,
} from '../src/index.js';
import { loadAutoencoder } from '../src/node/index.js';
import { fixturePath } from './helpers.js';

/** A runtime that is never asked for a session: planRun only reads its devices. */
const fakeRuntime = (device: 'wasm' | 'cpu'): RuntimeV1 => ({
  specificationVersion: 'v1',
  name: `fake ${device}`,
  devices: [device],
  createSession: () => Promise.reject(new Error('no sessions here')),
  dispose: () => Promise.resolve(),
});

describe('wasm memory budget', () => {
  it('is 4 GiB minus the weights and the headroom, never below 64 MiB', () => {
    expect(wasmMemoryBudget(1e9)).toBe(WASM32_MEMORY_BYTES - 1e9 - WASM_HEADROOM_BYTES);
    expect(wasmMemoryBudget(5e9)).toBe(64 * 2 ** 20);
  });

  it('lets full-width f32c32 (1.3 GB of weights) decode up to 1024² whole on wasm, and tiles 2048²', () => {
    const config = presetConfig('dc-ae-f32c32-in-1.0');
    const budget = wasmMemoryBudget(1.294e9);
    for (const side of [256, 512, 1024])
      expect(estimateActivationBytes(config, 'decoder', side, side)).toBeLessThan(budget);
    expect(estimateActivationBytes(config, 'decoder', 2048, 2048)).toBeGreaterThan(budget);
  });

  it('is the default of a model loaded on a wasm runtime, an explicit budget still wins', async () => {
    const wasm = await loadAutoencoder(fixturePath('tiny-sana-f32'), { runtime: fakeRuntime('wasm') });
    const cpu = await loadAutoencoder(fixturePath('tiny-sana-f32'), { runtime: fakeRuntime('cpu') });
    try {
      const weights = 3_173_428 - 2_000; // about the file's size minus its header
      // A latent size whose whole-image estimate lies between the wasm budget and the 4 GiB default.
      if (wasm.architecture !== 'dc-ae') throw new Error('tiny-sana-f32 is a DC-AE');
      const config = wasm.config;
      const fits = (side: number) => estimateActivationBytes(config, 'decoder', side * 32, side * 32);
      let side = 8;
      while (fits(side) <= wasmMemoryBudget(weights) - 1e7) side += 1;
      expect(fits(side)).toBeLessThan(4 * 2 ** 30);
      const shape = [1, 8, side, side];
      const onWasm = wasm.planRun('decode', shape);
      const expected = cpu.planRun('decode', shape, { memoryBudgetBytes: wasmMemoryBudget(weights) });
      expect(onWasm.tiles).toEqual(expected.tiles);
      expect(onWasm.tiles).toBeDefined();
      expect(cpu.planRun('decode', shape).tiles).toBeUndefined();
      expect(wasm.planRun('decode', shape, { memoryBudgetBytes: 2 ** 40 }).tiles).toBeUndefined();
    } finally {
      await Promise.all([wasm.dispose(), cpu.dispose()]);
    }
  });
});
