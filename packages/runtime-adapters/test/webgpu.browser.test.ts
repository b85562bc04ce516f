/**
 * WebGPU in headless Chromium: SwiftShader's fallback adapter (no shader-f16). Its own file, so its
 * page has its own onnxruntime-web (the last test destroys the GPU device).
 */
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { Module } from '@dcae/core/onnx';
import * as ort from 'onnxruntime-web';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebRuntime } from '../src/web/index.js';
import { createWebRuntime } from '../src/web/index.js';

function buildModel(build: (g: GraphBuilder, m: Module) => void): Uint8Array {
  const g = new GraphBuilder({ name: 'webgpu-test' });
  build(g, g.root);
  return serializeModel(g.build());
}

const f32 = (shape: number[], values: number[]): HostTensor<'float32'> => ({
  dtype: 'float32',
  shape,
  data: Float32Array.from(values),
});

/**
 * y = conv3x3(x) + 1 on [1, 2, 4, 4]: enough ops to run real WebGPU kernels. onnxruntime-web 1.30's
 * WebGPU Conv kernel fails ("dilations should be 2D", "strides should be 2D") unless both
 * attributes are explicit, though ONNX defines their defaults.
 */
const convModel = buildModel((g, m) => {
  const weight = f32(
    [2, 2, 3, 3],
    Array.from({ length: 36 }, (_, i) => ((i % 5) - 2) / 4),
  );
  const x = g.input('x', 'float32', [1, 2, 4, 4]);
  g.output(
    m.add(
      m.conv(x, m.constant(weight), undefined, { pads: [1, 1, 1, 1], dilations: [1, 1], strides: [1, 1] }),
      m.constant(1),
    ),
    'y',
    [1, 2, 4, 4],
  );
});
const convInput = f32(
  [1, 2, 4, 4],
  Array.from({ length: 32 }, (_, i) => Math.sin(i)),
);
/** float16 arithmetic: the graph SwiftShader would get silently wrong. */
const halfModel = buildModel((g, m) =>
  g.output(
    m.cast(
      m.mul(m.cast(g.input('x', 'float32', [4]), 'float16'), m.constant([2, 2, 2, 2], 'float16')),
      'float32',
    ),
    'y',
    [4],
  ),
);

describe('WebGPU (SwiftShader fallback adapter)', () => {
  let gpu: WebRuntime;
  let wasm: WebRuntime;
  beforeAll(async () => {
    gpu = await createWebRuntime({ devices: ['webgpu', 'wasm'], threads: 2 });
    wasm = await createWebRuntime({ devices: ['wasm'] });
  });
  afterAll(async () => {
    await gpu?.dispose();
    await wasm?.dispose();
  });

  it("finds the adapter, and 'auto' skips it because it is a fallback adapter", async () => {
    expect(gpu.gpu).toMatchObject({ isFallbackAdapter: true, shaderF16: false });
    const auto = await createWebRuntime();
    try {
      const webgpu = auto.deviceReport.find((d) => d.device === 'webgpu')!;
      expect(webgpu).toMatchObject({ selected: false, reason: expect.stringMatching(/fallback.*100×/) });
      expect(auto.devices).toEqual(['wasm']);
    } finally {
      await auto.dispose();
    }
  });

  it('runs a float32 conv on WebGPU with the same result as wasm (|Δ| ≤ 1e-5)', async () => {
    const onGpu = await gpu.createSession(convModel);
    const onCpu = await wasm.createSession(convModel);
    try {
      expect(onGpu.device).toBe('webgpu');
      const a = (await onGpu.run({ x: convInput })).y!;
      const b = (await onCpu.run({ x: convInput })).y!;
      expect(a.shape).toEqual([1, 2, 4, 4]);
      const worst = Math.max(...[...a.data].map((v, i) => Math.abs((v as number) - (b.data[i] as number))));
      expect(worst).toBeLessThanOrEqual(1e-5);
      expect(new Set(a.data as Float32Array).size).toBeGreaterThan(4);
    } finally {
      await onGpu.dispose();
      await onCpu.dispose();
    }
  });

  it('never runs a float16 model on an adapter without shader-f16: falls back to wasm, or refuses', async () => {
    const session = await gpu.createSession(halfModel);
    try {
      expect(session.device).toBe('wasm');
      expect(session.skipped).toEqual([
        { device: 'webgpu', reason: expect.stringMatching(/float16.*shader-f16/) },
      ]);
      const { y } = await session.run({ x: f32([4], [1, -2, 0.5, 3]) });
      expect([...y!.data]).toEqual([2, -4, 1, 6]);
    } finally {
      await session.dispose();
    }
    const only = await createWebRuntime({ devices: ['webgpu'] });
    try {
      await expect(only.createSession(halfModel)).rejects.toMatchObject({
        code: 'DEVICE_UNAVAILABLE',
        message: expect.stringMatching(/\[webgpu\] The model computes in float16.*'shader-f16'/),
      });
      // The refusal concerns the model, not the device.
      expect(only.devices).toEqual(['webgpu']);
    } finally {
      await only.dispose();
    }
  });

  it('turns a lost GPU device into DEVICE_LOST, drops the session and falls back to wasm', async () => {
    const session = await gpu.createSession(convModel);
    expect(session.device).toBe('webgpu');
    await session.run({ x: convInput });
    // The WebGPU types are not in TypeScript's DOM library; only these two members are used.
    const device = (await ort.env.webgpu.device) as { destroy(): void; lost: Promise<unknown> };
    device.destroy();
    await device.lost;
    await expect(session.run({ x: convInput })).rejects.toMatchObject({
      code: 'DEVICE_LOST',
      message: expect.stringMatching(/WebGPU device was lost \(destroyed/),
    });
    expect(gpu.deviceReport.find((d) => d.device === 'webgpu')).toMatchObject({
      selected: false,
      reason: expect.stringMatching(/lost/),
    });
    const next = await gpu.createSession(convModel);
    try {
      expect(next.device).toBe('wasm');
      expect((await next.run({ x: convInput })).y!.shape).toEqual([1, 2, 4, 4]);
    } finally {
      await next.dispose();
    }
  });
});
