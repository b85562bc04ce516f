/**
 * The web adapter's own behaviour under Node (onnxruntime-web's wasm build): settings, device
 * decisions, thread fallback, the model inspection that guards external data and float16, the shared
 * queue. Browser-only behaviour (WebGPU, cross-origin isolation, the weights cache) is in
 * web.browser.test.ts.
 */
import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, inspectModel, serializeModel } from '@dcae/core/onnx';
import type { Module } from '@dcae/core/onnx';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { WebRuntime } from '../src/web/index.js';
import { createWebRuntime } from '../src/web/index.js';

function buildModel(build: (g: GraphBuilder, m: Module) => void): Uint8Array {
  const g = new GraphBuilder({ name: 'web-runtime-test' });
  build(g, g.root);
  return serializeModel(g.build());
}

async function rejection(promise: Promise<unknown>): Promise<DcaeError> {
  try {
    await promise;
  } catch (error) {
    expect(DcaeError.is(error), String(error)).toBe(true);
    return error as DcaeError;
  }
  return expect.fail('expected a rejection');
}

describe('createWebRuntime in Node', () => {
  let runtime: WebRuntime;
  beforeAll(async () => {
    runtime = await createWebRuntime({ threads: 2 });
  });
  afterAll(() => runtime.dispose());

  it("'auto' selects wasm only and says why WebGPU and WebNN are skipped", () => {
    expect(runtime.name).toBe('onnxruntime-web@1.30.0');
    expect(runtime.devices).toEqual(['wasm']);
    const report = Object.fromEntries(runtime.deviceReport.map((d) => [d.device, d]));
    expect(report.webgpu).toMatchObject({
      selected: false,
      reason: expect.stringMatching(/no WebGPU in Node/),
    });
    expect(report.webnn).toMatchObject({ selected: false, reason: expect.stringMatching(/navigator\.ml/) });
    expect(report.wasm).toMatchObject({ selected: true, reason: expect.stringMatching(/threads possible/) });
    expect(runtime.gpu).toBeUndefined();
  });

  it('runs with the 2 wasm threads asked for', async () => {
    const session = await runtime.createSession(
      buildModel((g, m) => g.output(m.neg(g.input('x', 'float32', [2])), 'y', [2])),
    );
    try {
      expect(session.device).toBe('wasm');
      expect(session.skipped).toEqual([]);
      expect(runtime.threads.count).toBe(2);
      const { y } = await session.run({ x: { dtype: 'float32', shape: [2], data: Float32Array.of(1, -2) } });
      expect([...y!.data]).toEqual([-1, 2]);
    } finally {
      await session.dispose();
    }
  });

  it('refuses a second runtime with other wasm settings, naming the ones in force', async () => {
    const error = await rejection(createWebRuntime({ threads: 1 }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/already initialized .* threads 2 \(asked 1\)/);
    // Same settings, or none: fine.
    await (await createWebRuntime({ threads: 2 })).dispose();
    await (await createWebRuntime()).dispose();
  });

  it('throws DEVICE_UNAVAILABLE for an explicitly listed device this environment lacks', async () => {
    const error = await rejection(createWebRuntime({ devices: ['webgpu', 'wasm'] }));
    expect(error.code).toBe('DEVICE_UNAVAILABLE');
    expect(error.message).toMatch(/'webgpu' is unavailable: .*Node/);
  });

  it.each([
    [{ threads: 0 }, /threads must be an integer from 1 to 64/],
    [{ threads: 2.5 }, /threads/],
    [{ devices: ['wasm', 'wasm'] }, /distinct devices/],
    [{ devices: ['cpu'] }, /webgpu, webnn, wasm/],
    [{ wasmPaths: '/ort' }, /ending in "\/"/],
    [{ wasmPaths: { mjs: '/a.mjs' } }, /\{ mjs, wasm \}/],
    [{ initTimeoutMs: 0 }, /initTimeoutMs/],
    [{ proxy: 'yes' }, /proxy must be true or false/],
    [{ graphOptimization: 'max' }, /graphOptimization must be one of/],
  ])('rejects settings %j with INVALID_ARGUMENT', async (settings, message) => {
    const error = await rejection(createWebRuntime(settings as never));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(message);
  });

  it('names the external data files the model needs but the caller did not give (EXTERNAL_DATA_PATH)', async () => {
    const model = buildModel((g, m) => {
      const w = g.initializer('w', {
        kind: 'external',
        dtype: 'float32',
        shape: [2],
        location: 'weights.safetensors',
        offset: 0,
        length: 8,
      });
      g.output(m.add(g.input('x', 'float32', [2]), w), 'y', [2]);
    });
    const error = await rejection(
      runtime.createSession(model, { externalData: [{ location: 'other.bin', data: new Uint8Array(8) }] }),
    );
    expect(error.code).toBe('EXTERNAL_DATA_PATH');
    expect(error.message).toMatch(
      /"weights\.safetensors" but options\.externalData has no entry for it \(given: \["other\.bin"\]\)/,
    );
  });

  it('skips a queued run whose signal aborts while an earlier run holds onnxruntime-web', async () => {
    // y = x·W repeated: long enough that the second run is still queued when the abort comes.
    const n = 256;
    const weight: HostTensor<'float32'> = {
      dtype: 'float32',
      shape: [n, n],
      data: Float32Array.from({ length: n * n }, (_, i) => ((i % 7) - 3) / (4 * n)),
    };
    const model = buildModel((g, m) => {
      let x = g.input('x', 'float32', [n, n]);
      const w = m.constant(weight);
      for (let i = 0; i < 8; i++) x = m.matMul(x, w);
      g.output(x, 'y', [n, n]);
    });
    const session = await runtime.createSession(model);
    try {
      const x: HostTensor<'float32'> = {
        dtype: 'float32',
        shape: [n, n],
        data: new Float32Array(n * n).fill(1),
      };
      const first = session.run({ x });
      const controller = new AbortController();
      const second = session.run({ x }, { signal: controller.signal });
      controller.abort(new Error('changed my mind'));
      const error = await rejection(second);
      expect(error.code).toBe('ABORTED');
      expect(error.cause).toEqual(new Error('changed my mind'));
      const { y } = await first;
      expect(y!.shape).toEqual([n, n]);
      expect(y!.data.every(Number.isFinite)).toBe(true);
      // The queue is free again.
      const again = await session.run({ x });
      expect([...again.y!.data.subarray(0, 8)]).toEqual([...y!.data.subarray(0, 8)]);
    } finally {
      await session.dispose();
    }
  });
});

describe('inspectModel: the facts the web adapter checks', () => {
  const f32Model = buildModel((g, m) => g.output(m.relu(g.input('x', 'float32', [2])), 'y', [2]));

  it('finds no float16 and no external data in a float32 model', () => {
    const { usesFloat16, externalLocations } = inspectModel(f32Model);
    expect({ usesFloat16, externalLocations }).toEqual({ usesFloat16: false, externalLocations: [] });
  });

  it.each([
    [
      'a float16 input',
      (g: GraphBuilder, m: Module) => g.output(m.cast(g.input('x', 'float16', [2]), 'float32'), 'y', [2]),
    ],
    [
      'a Cast to float16',
      (g: GraphBuilder, m: Module) =>
        g.output(m.cast(m.cast(g.input('x', 'float32', [2]), 'float16'), 'float32'), 'y', [2]),
    ],
    [
      'a float16 initializer',
      (g: GraphBuilder, m: Module) =>
        g.output(
          m.add(g.input('x', 'float32', [2]), m.cast(m.constant([1, 2], 'float16'), 'float32')),
          'y',
          [2],
        ),
    ],
    [
      'a float16 constant inside an If branch',
      (g: GraphBuilder, m: Module) => {
        const x = g.input('x', 'float32', [2]);
        const [y] = m.if(
          m.constant({ dtype: 'bool', shape: [], data: Uint8Array.of(1) }),
          (b) => [b.add(x, b.cast(b.constant([1, 2], 'float16'), 'float32'))],
          (b) => [b.identity(x)],
        );
        g.output(y!, 'y', [2]);
      },
    ],
  ])('finds float16 in %s', (_, build) => {
    expect(inspectModel(buildModel(build)).usesFloat16).toBe(true);
  });

  it('lists external data locations once each, in order of use', () => {
    const model = buildModel((g, m) => {
      const at = (name: string, location: string, offset: number) =>
        g.initializer(name, { kind: 'external', dtype: 'float32', shape: [2], location, offset, length: 8 });
      const x = g.input('x', 'float32', [2]);
      g.output(
        m.add(m.add(m.add(x, at('a', 'b.bin', 0)), at('b', 'a.bin', 0)), at('c', 'b.bin', 8)),
        'y',
        [2],
      );
    });
    expect(inspectModel(model).externalLocations).toEqual(['b.bin', 'a.bin']);
  });

  it('rejects bytes that are not protobuf with PROTOBUF_PARSE', () => {
    for (const bytes of [
      Uint8Array.of(1, 2, 3, 4, 5),
      Uint8Array.of(0x3a, 0x10, 1),
      f32Model.subarray(0, f32Model.length - 3),
    ]) {
      expect(() => inspectModel(bytes)).toThrow(expect.objectContaining({ code: 'PROTOBUF_PARSE' }));
    }
  });
});

describe('the web entry', () => {
  it('stays browser-safe: no node: imports in src/web or the shared bridge', () => {
    const root = join(import.meta.dirname, '../src');
    for (const folder of ['web', '_shared']) {
      for (const file of readdirSync(join(root, folder))) {
        const text = readFileSync(join(root, folder, file), 'utf8');
        expect(text, `${folder}/${file}`).not.toMatch(/from ['"]node:|import\(['"]node:|require\(/);
      }
    }
  });
});
