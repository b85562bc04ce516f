import { buildSdVaeDecoderGraph, SD15_VAE_CONFIG } from '@dcae/autoencoder';
import type { AttributeValue } from '@dcae/core/onnx';
import { GraphBuilder } from '@dcae/core/onnx';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { Emit } from '../src/autodiff/grad.js';
import { IrGraph, importModel } from '../src/ir/graph.js';
import { gradCheck } from '../src/reference/gradcheck.js';
import { randomTensor } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

const ints = (value: number[]): AttributeValue => ({ kind: 'ints', value });
const int = (value: number): AttributeValue => ({ kind: 'int', value });

/** loss = Σ y · r with a fixed random r: every output element gets a distinct gradient. */
function withLoss(g: IrGraph, y: string, seed: number): string {
  const r = g.constant(randomTensor(g.shape(y), seed));
  return g.op1('ReduceSum', [g.op1('Mul', [y, r]), g.constant([], 'int64')], { keepdims: int(0) });
}

async function check(build: (g: IrGraph) => { y: string; params: string[] }, bound = 2e-3) {
  const g = new IrGraph();
  const { y, params } = build(g);
  const loss = withLoss(g, y, 99);
  const result = await gradCheck(runtime, g, loss, params, new Map(), { coords: 4 });
  expect(Math.abs(result.loss - result.referenceLoss)).toBeLessThan(
    1e-3 * Math.max(1, Math.abs(result.referenceLoss)),
  );
  for (const t of result.tensors) expect(t.worstRelative, t.name).toBeLessThan(bound);
  return result;
}

describe('VJP rules vs float64 finite differences', () => {
  const convCases: [string, number[], number[], { s: number; g: number; p: number }][] = [
    ['3x3 s1', [2, 4, 6, 6], [5, 4, 3, 3], { s: 1, g: 1, p: 1 }],
    ['3x3 s2', [2, 4, 6, 6], [5, 4, 3, 3], { s: 2, g: 1, p: 1 }],
    ['1x1', [1, 6, 4, 4], [3, 6, 1, 1], { s: 1, g: 1, p: 0 }],
    ['depthwise 5x5', [1, 6, 7, 7], [6, 1, 5, 5], { s: 1, g: 6, p: 2 }],
    ['grouped 1x1', [2, 6, 4, 4], [6, 2, 1, 1], { s: 1, g: 3, p: 0 }],
    ['grouped 3x3 s2 odd', [1, 4, 7, 5], [4, 2, 3, 3], { s: 2, g: 2, p: 1 }],
  ];
  for (const [label, xs, ws, a] of convCases)
    it(`Conv ${label}`, async () => {
      await check((g) => {
        const x = g.addWeight('x', randomTensor(xs, 1));
        const w = g.addWeight('w', randomTensor(ws, 2, 0.3));
        const b = g.addWeight('b', randomTensor([ws[0]!], 3));
        const y = g.op1('Conv', [x, w, b], {
          dilations: ints([1, 1]),
          group: int(a.g),
          pads: ints([a.p, a.p, a.p, a.p]),
          strides: ints([a.s, a.s]),
        });
        return { y, params: [x, w, b] };
      });
    });

  it('elementwise with broadcasting and Mul(x, x)', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([2, 3, 4], 1));
      const y = g.addWeight('y', randomTensor([3, 1], 2));
      const z = g.addWeight('z', { dtype: 'float32', shape: [4], data: Float32Array.from([1.5, 2, 0.7, 3]) });
      const sq = g.op1('Mul', [x, x]);
      const a = g.op1('Add', [sq, y]);
      const b = g.op1('Div', [g.op1('Sub', [a, g.op1('Neg', [y])]), z]);
      const c = g.op1('Sqrt', [g.op1('Add', [g.op1('Mul', [b, b]), z])]);
      const d = g.op1('Mul', [g.op1('Reciprocal', [z]), g.op1('Pow', [c, g.constant(1.5)])]);
      return { y: g.op1('Abs', [g.op1('Sub', [d, g.op1('Tanh', [x])])]), params: [x, y, z] };
    });
  });

  it('activations: Relu, Sigmoid/SiLU, GELU (erf), Softplus, Exp, Log', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([2, 3, 5], 4));
      const silu = g.op1('Mul', [x, g.op1('Sigmoid', [x])]);
      const gelu = g.op1('Mul', [
        g.op1('Mul', [x, g.constant(0.5)]),
        g.op1('Add', [g.constant(1), g.op1('Erf', [g.op1('Mul', [x, g.constant(Math.SQRT1_2)])])]),
      ]);
      const sp = g.op1('Softplus', [x]);
      const e = g.op1('Log', [g.op1('Add', [g.op1('Exp', [x]), g.constant(1)])]);
      const r = g.op1('Relu', [x]);
      return {
        y: g.op1('Add', [g.op1('Add', [g.op1('Add', [silu, gelu]), g.op1('Mul', [sp, e])]), r]),
        params: [x],
      };
    });
  });

  it('MatMul with broadcasting, Softmax, Transpose', async () => {
    await check((g) => {
      const a = g.addWeight('a', randomTensor([2, 3, 4, 5], 5));
      const b = g.addWeight('b', randomTensor([3, 5, 2], 6));
      const m = g.op1('MatMul', [a, b]);
      const s = g.op1('Softmax', [m], { axis: int(2) });
      return { y: g.op1('Transpose', [s], { perm: ints([0, 3, 1, 2]) }), params: [a, b] };
    });
  });

  it('reductions, Reshape, Expand, Unsqueeze, Squeeze', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([2, 6, 3, 3], 7));
      const mean = g.op1(
        'ReduceMean',
        [g.op1('Reshape', [x, g.constant([2, 3, 2, 3, 3], 'int64')]), g.constant([2], 'int64')],
        { keepdims: int(0) },
      );
      const sum = g.op1('ReduceSum', [x, g.constant([1], 'int64')], { keepdims: int(1) });
      const e = g.op1('Expand', [
        g.op1('Unsqueeze', [mean, g.constant([2], 'int64')]),
        g.constant([1, 1, 2, 1, 1], 'int64'),
      ]);
      const r = g.op1('Reshape', [e, g.constant([2, 6, 3, 3], 'int64')]);
      const s = g.op1('Squeeze', [
        g.op1('Unsqueeze', [sum, g.constant([0], 'int64')]),
        g.constant([0], 'int64'),
      ]);
      return { y: g.op1('Mul', [r, s]), params: [x] };
    });
  });

  it('Pad, Slice, Concat, Split', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([1, 4, 5, 3], 8));
      const p = g.op1('Pad', [x, g.constant([0, 1, 0, 0, 0, 0, 2, 1], 'int64'), g.constant(1)], {
        mode: { kind: 'string', value: 'constant' },
      });
      const s = g.op1('Slice', [
        p,
        g.constant([1, 2], 'int64'),
        g.constant([4, 6], 'int64'),
        g.constant([1, 2], 'int64'),
      ]);
      const [a, b] = g.op('Split', [x, g.constant([1, 3], 'int64')], { axis: int(1) }, 2) as [string, string];
      const c = g.op1('Concat', [b, a, g.op1('Mul', [a, a])], { axis: int(1) });
      return {
        y: g.op1('Add', [
          g.op1('ReduceSum', [s, g.constant([1, 2], 'int64')], { keepdims: int(1) }),
          g.op1('Slice', [
            c,
            g.constant([0, 1], 'int64'),
            g.constant([1, 2], 'int64'),
            g.constant([2, 3], 'int64'),
          ]),
        ]),
        params: [x],
      };
    });
  });

  it('DepthToSpace CRD/DCR, SpaceToDepth, Resize nearest ×2, Where', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([1, 8, 3, 3], 9));
      const crd = g.op1('DepthToSpace', [x], { blocksize: int(2), mode: { kind: 'string', value: 'CRD' } });
      const dcr = g.op1('DepthToSpace', [x], { blocksize: int(2), mode: { kind: 'string', value: 'DCR' } });
      const back = g.op1('SpaceToDepth', [g.op1('Mul', [crd, dcr])], { blocksize: int(2) });
      const up = g.op1('Resize', [back, '', g.constant([1, 1, 2, 2])], {
        coordinate_transformation_mode: { kind: 'string', value: 'asymmetric' },
        mode: { kind: 'string', value: 'nearest' },
        nearest_mode: { kind: 'string', value: 'floor' },
      });
      const w = g.op1('Where', [
        g.op1('Greater', [up, g.constant(0.1)]),
        up,
        g.op1('Mul', [up, g.constant(3)]),
      ]);
      return { y: w, params: [x] };
    });
  });
});

describe('fused ops decomposed at import, and the SD-VAE graphs', () => {
  it('LayerNormalization, InstanceNormalization (GroupNorm), BatchNormalization, Gemm, Sin/Cos, Max/Min, Tile', async () => {
    const gb = new GraphBuilder({ name: 'fused' });
    const m = gb.root;
    const x = gb.input('x', 'float32', [2, 6, 4]);
    const w = (name: string, shape: number[], seed: number, scale = 1) =>
      gb.initializer(name, { kind: 'inline', tensor: randomTensor(shape, seed, scale) });
    const ln = m.layerNorm(x, w('ln.weight', [4], 1), w('ln.bias', [4], 2));
    const [inorm] = m.op(
      'InstanceNormalization',
      [m.reshape(ln, [2, 3, 8]), w('in.weight', [3], 3), w('in.bias', [3], 4)],
      { epsilon: { kind: 'float', value: 1e-6 } },
    );
    const [bn] = m.op(
      'BatchNormalization',
      [
        m.reshape(inorm!, [2, 3, 2, 4]),
        w('bn.weight', [3], 5),
        w('bn.bias', [3], 6),
        w('bn.mean', [3], 7, 0.1),
        gb.initializer('bn.var', {
          kind: 'inline',
          tensor: { dtype: 'float32', shape: [3], data: Float32Array.from([0.5, 1, 2]) },
        }),
      ],
      {
        epsilon: { kind: 'float', value: 1e-5 },
      },
    );
    const flat = m.reshape(bn!, [6, 8]);
    const gemm = m.gemm(flat, w('gemm.weight', [5, 8], 8, 0.3), w('gemm.bias', [5], 9), {
      transB: true,
      alpha: 0.7,
      beta: 1.3,
    });
    const trig = m.add(m.op('Sin', [gemm])[0]!, m.op('Cos', [m.mul(gemm, gemm)])[0]!);
    const mm = m.op('Max', [trig, m.op('Min', [gemm, w('clip', [5], 10)])[0]!])[0]!;
    const y = m.tile(mm, [2, 1]);
    gb.output(y, 'y', [12, 5]);
    const g = new IrGraph();
    const input = g.addInput('x', 'float32', [2, 6, 4]);
    const outs = importModel(g, gb.build(), {
      inputs: new Map([['x', input]]),
      isWeight: (n) => !n.startsWith('/'),
    });
    expect(
      g.nodes.some((n) =>
        ['LayerNormalization', 'InstanceNormalization', 'BatchNormalization', 'Gemm'].includes(n.op),
      ),
    ).toBe(false);
    const loss = withLoss(g, outs.get('y')!, 5);
    const params = [...g.weights.keys()].filter((k) => k !== 'bn.mean' && k !== 'bn.var');
    const result = await gradCheck(
      runtime,
      g,
      loss,
      [...params, input],
      new Map([['x', randomTensor([2, 6, 4], 11)]]),
      { coords: 4 },
    );
    for (const t of result.tensors) expect(t.worstRelative, t.name).toBeLessThan(2e-3);
  });

  it('SD-VAE (GroupNorm, mid-block softmax attention, nearest ×2) decoder gradients', async () => {
    const config = {
      ...SD15_VAE_CONFIG,
      blockOutChannels: SD15_VAE_CONFIG.blockOutChannels.map((c) => c / 16),
      layersPerBlock: 1,
      normNumGroups: 4,
    };
    let seed = 100;
    const weights = new Map<string, ReturnType<typeof randomTensor>>();
    const model = buildSdVaeDecoderGraph(config, {
      params: (key, shape) => {
        const fan = shape.length > 1 ? shape.slice(1).reduce((a, b) => a * b, 1) : 0;
        const t = fan ? randomTensor(shape, seed++, 1 / Math.sqrt(fan)) : randomTensor(shape, seed++, 0.1);
        if (!fan && key.endsWith('weight'))
          for (let i = 0; i < t.data.length; i++) t.data[i] = t.data[i]! + 1;
        weights.set(key, t);
        return { kind: 'inline', tensor: t };
      },
    });
    const g = new IrGraph();
    const z = g.addInput('latent_sample', 'float32', [1, config.latentChannels, 4, 4]);
    const outs = importModel(g, model, {
      inputs: new Map([['latent_sample', z]]),
      isWeight: (n) => weights.has(n),
    });
    const e = new Emit(g);
    const target = g.constant(randomTensor(g.shape(outs.get('sample')!), 3));
    const d = e.sub(outs.get('sample')!, target);
    const loss = e.reduceMean(e.mul(d, d), [0, 1, 2, 3], false);
    const keys = [...weights.keys()].filter((_, i) => i % 5 === 0);
    if (!keys.includes('decoder.up_blocks.0.resnets.0.norm1.weight'))
      keys.push('decoder.up_blocks.0.resnets.0.norm1.weight');
    const result = await gradCheck(
      runtime,
      g,
      loss,
      keys,
      new Map([['latent_sample', randomTensor([1, config.latentChannels, 4, 4], 4)]]),
      { mode: 'direction' },
    );
    expect(Math.abs(result.loss - result.referenceLoss)).toBeLessThan(1e-4);
    for (const t of result.tensors) expect(t.worstRelative, t.name).toBeLessThan(1e-2);
  });
});
