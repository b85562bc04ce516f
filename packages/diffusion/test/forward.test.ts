import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { JsonValue } from '@dcae/core';
import { openSafetensors } from '@dcae/core';
import { fileSource } from '@dcae/core/node';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import { buildDiffusionGraph, parseDiffusionConfig, timestepEmbedding } from '../src/index.js';
import {
  fixturePath,
  float32,
  int64,
  loadFixtureModel,
  maxAbs,
  maxAbsDiff,
  readJson,
  readTensors,
} from './fixtures.js';

let runtime: RuntimeV1;
beforeAll(() => {
  runtime = createNodeRuntime({ threads: 1 });
});
afterAll(async () => {
  await runtime.dispose();
});

describe.each(['tiny-dit', 'tiny-uvit'] as const)('%s', (name) => {
  it('forward matches upstream forward_without_cfg within 1e-4·max(1, max|expected|), also per sample', async () => {
    const tensors = await readTensors(`${name}/forward.safetensors`);
    const model = await loadFixtureModel(name, runtime);
    try {
      const [x, t, y] = [float32(tensors, 'x'), float32(tensors, 't').data, int64(tensors, 'y')];
      const expected = float32(tensors, 'out');
      const tolerance = 1e-4 * Math.max(1, maxAbs(expected.data));
      const out = await model.forward(x, t, y);
      expect(out.shape).toEqual(expected.shape);
      expect(maxAbsDiff(out.data, expected.data)).toBeLessThanOrEqual(tolerance);

      // Dynamic batch: samples 1–2 alone give the same rows.
      const [perIn, perOut] = [x.data.length / 4, out.data.length / 4];
      const pair = await model.forward(
        { dtype: 'float32', shape: [2, ...x.shape.slice(1)], data: x.data.slice(perIn, 3 * perIn) },
        t.slice(1, 3),
        y.slice(1, 3),
      );
      expect(maxAbsDiff(pair.data, expected.data.subarray(perOut, 3 * perOut))).toBeLessThanOrEqual(
        tolerance,
      );
    } finally {
      await model.dispose();
    }
  });

  it('the standard-op fallback matches the fixture too, and only the default graph uses the fused kernels', async () => {
    const tensors = await readTensors(`${name}/forward.safetensors`);
    const expected = float32(tensors, 'out');
    const tolerance = 1e-4 * Math.max(1, maxAbs(expected.data));
    const model = await loadFixtureModel(name, runtime, {}, 'standard');
    try {
      const out = await model.forward(float32(tensors, 'x'), float32(tensors, 't').data, int64(tensors, 'y'));
      expect(maxAbsDiff(out.data, expected.data)).toBeLessThanOrEqual(tolerance);
    } finally {
      await model.dispose();
    }
    const config = parseDiffusionConfig((await readJson(`${name}/config.json`)) as JsonValue);
    const inline = (_key: string, shape: readonly number[]) =>
      ({
        kind: 'external',
        dtype: 'float32',
        shape,
        location: 'model.safetensors',
        offset: 0,
        length: 4 * shape.reduce((a, b) => a * b, 1),
      }) as const;
    const contrib = (attention: 'fused' | 'standard') =>
      buildDiffusionGraph(config.backbone, inline, { attention })
        .graph.nodes.filter((n) => n.domain === 'com.microsoft')
        .map((n) => n.opType);
    const blocks = config.backbone.depth + (config.backbone.family === 'uvit' ? 1 : 0);
    const fused = contrib('fused');
    expect(fused.filter((op) => op === 'MultiHeadAttention')).toHaveLength(blocks);
    // DiT's tanh GELU is FastGelu; UViT's erf GELU stays standard ops (onnxruntime fuses that pattern).
    expect(fused.filter((op) => op === 'FastGelu')).toHaveLength(
      config.backbone.family === 'dit' ? blocks : 0,
    );
    expect(contrib('standard')).toEqual([]);
  });

  it("the fused kernels run on onnxruntime-web's wasm backend too, within the fixture tolerance", async () => {
    const tensors = await readTensors(`${name}/forward.safetensors`);
    const expected = float32(tensors, 'out');
    const web = await createWebRuntime({ devices: ['wasm'], threads: 1 });
    try {
      const model = await loadFixtureModel(name, web);
      const out = await model.forward(float32(tensors, 'x'), float32(tensors, 't').data, int64(tensors, 'y'));
      await model.dispose();
      expect(maxAbsDiff(out.data, expected.data)).toBeLessThanOrEqual(
        1e-4 * Math.max(1, maxAbs(expected.data)),
      );
    } finally {
      await web.dispose();
    }
  });

  it('the host timestep sinusoid matches upstream (up to torch float32 exp, amplified by t ≤ 1000)', async () => {
    const [tensors, intermediates] = [
      await readTensors(`${name}/forward.safetensors`),
      await readTensors(`${name}/intermediates.safetensors`),
    ];
    const key = name === 'tiny-dit' ? 't_freq' : 'time_token';
    const expected = float32(intermediates, key);
    const embedding = timestepEmbedding(float32(tensors, 't').data, expected.shape[1]!);
    expect(maxAbsDiff(embedding, expected.data)).toBeLessThan(1e-4);
  });

  it('the graph binds every checkpoint tensor exactly once, in place (external data)', async () => {
    const config = parseDiffusionConfig((await readJson(`${name}/config.json`)) as JsonValue);
    const file = await openSafetensors(await fileSource(fixturePath(`${name}/model.safetensors`)));
    await file.close();
    const requested: string[] = [];
    const graph = buildDiffusionGraph(config.backbone, (key, shape) => {
      requested.push(config.backbone.keyPrefix + key);
      const info = file.tensorInfo(config.backbone.keyPrefix + key);
      return {
        kind: 'external',
        dtype: 'float32',
        shape,
        location: 'model.safetensors',
        offset: file.header.dataStart + info.begin,
        length: info.end - info.begin,
      };
    });
    expect(requested.sort()).toEqual([...file.header.tensors.keys()].sort());
    const external = graph.graph.initializers.filter((init) => init.data.kind === 'external');
    expect(external).toHaveLength(file.header.tensors.size);
    expect(graph.graph.inputs.map((input) => [input.name, input.shape])).toEqual(
      name === 'tiny-dit'
        ? [
            ['x', ['batch', 8, 4, 4]],
            ['y', ['batch']],
            ['t_freq', ['batch', 256]],
          ]
        : [
            ['x', ['batch', 8, 4, 4]],
            ['y', ['batch']],
            ['time_token', ['batch', 64]],
          ],
    );
  });
});

it('graph structure (op histogram) of tiny-dit and tiny-uvit', async () => {
  const histogram = async (name: string) => {
    const config = parseDiffusionConfig((await readJson(`${name}/config.json`)) as JsonValue);
    const graph = buildDiffusionGraph(config.backbone, (_, shape) => ({
      kind: 'external',
      dtype: 'float32',
      shape,
      location: 'model.safetensors',
      offset: 0,
      length: 4 * shape.reduce((a, b) => a * b, 1),
    }));
    const counts: Record<string, number> = {};
    for (const node of graph.graph.nodes) counts[node.opType] = (counts[node.opType] ?? 0) + 1;
    return Object.fromEntries(Object.entries(counts).sort());
  };
  expect(await histogram('tiny-dit')).toMatchInlineSnapshot(`
    {
      "Add": 16,
      "Conv": 1,
      "FastGelu": 2,
      "Gather": 1,
      "Gemm": 14,
      "Identity": 1,
      "LayerNormalization": 5,
      "Mul": 11,
      "MultiHeadAttention": 2,
      "Reshape": 28,
      "Sigmoid": 2,
      "Split": 5,
      "Transpose": 2,
      "Unsqueeze": 3,
    }
  `);
  expect(await histogram('tiny-uvit')).toMatchInlineSnapshot(`
    {
      "Add": 16,
      "Concat": 3,
      "Conv": 1,
      "Div": 5,
      "Erf": 5,
      "Gather": 1,
      "Gemm": 23,
      "Identity": 1,
      "LayerNormalization": 11,
      "Mul": 10,
      "MultiHeadAttention": 5,
      "Reshape": 18,
      "Slice": 1,
      "Split": 5,
      "Transpose": 2,
      "Unsqueeze": 2,
    }
  `);
});
