/**
 * `proxy: true` in Chromium: onnxruntime-web runs in its proxy worker, so the page's main thread
 * stays free during a run. Its own file: the proxy setting holds for the page's onnxruntime-web.
 */
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import { expect, it } from 'vitest';
import { createWebRuntime } from '../src/web/index.js';

it('runs in the proxy worker: wasm only, feeds intact, main thread free during the run', async () => {
  const runtime = await createWebRuntime({ proxy: true, threads: 1 });
  try {
    expect(runtime.devices).toEqual(['wasm']);
    expect(runtime.deviceReport.find((d) => d.device === 'webgpu')?.reason).toMatch(/proxy worker/);
    const n = 512;
    const weight: HostTensor<'float32'> = {
      dtype: 'float32',
      shape: [n, n],
      data: Float32Array.from({ length: n * n }, (_, i) => ((i % 7) - 3) / (4 * n)),
    };
    const g = new GraphBuilder({ name: 'proxy' });
    let x = g.input('x', 'float32', [n, n]);
    const w = g.root.constant(weight);
    for (let i = 0; i < 12; i++) x = g.root.matMul(x, w);
    g.output(x, 'y', [n, n]);
    const session = await runtime.createSession(serializeModel(g.build()));
    const input: HostTensor<'float32'> = {
      dtype: 'float32',
      shape: [n, n],
      data: new Float32Array(n * n).fill(1),
    };
    await session.run({ x: input }); // warm-up

    let ticks = 0;
    const timer = setInterval(() => ticks++, 2);
    const started = performance.now();
    const { y } = await session.run({ x: input });
    const elapsed = performance.now() - started;
    clearInterval(timer);
    expect(y!.shape).toEqual([n, n]);
    expect(input.data.length).toBe(n * n);
    expect(input.data[0]).toBe(1);
    // 3 GFLOP: long enough to see whether the main thread is free while the worker computes.
    expect(elapsed).toBeGreaterThan(40);
    expect(ticks, `${ticks} ticks in ${elapsed.toFixed(0)} ms`).toBeGreaterThanOrEqual(5);
    await session.dispose();
  } finally {
    await runtime.dispose();
  }
});
