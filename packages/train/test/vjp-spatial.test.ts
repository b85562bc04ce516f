import type { HostTensor } from '@dcae/core';
import type { AttributeValue } from '@dcae/core/onnx';
import { serializeModel } from '@dcae/core/onnx';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { grad } from '../src/autodiff/grad.js';
import { IrGraph } from '../src/ir/graph.js';
import { gradCheck } from '../src/reference/gradcheck.js';
import { runReference } from '../src/reference/interpreter.js';
import { randomTensor } from './helpers.js';

/**
 * VJP rules of ConvTranspose, AveragePool, MaxPool, Gather and strided/reversed Slice
 * (docs/training.md, "VJP rules and the forms chosen"). Each case is checked twice:
 * 1. the float32 gradient onnxruntime computes from the emitted backward graph against central
 *    finite differences of the float64 reference forward (bound 2e-3 relative, as the other rules);
 * 2. the emitted backward graph run by onnxruntime against the same backward graph run by the
 *    float64 reference interpreter (max |Δ| ≤ 1e-4 · max(1, max|ref|), the fp32 fixture bound).
 */

const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

const ints = (value: number[]): AttributeValue => ({ kind: 'ints', value });
const int = (value: number): AttributeValue => ({ kind: 'int', value });

type Build = (g: IrGraph) => { y: string; params: string[]; feeds?: Map<string, HostTensor> };

function withLoss(g: IrGraph, y: string, seed: number): string {
  const r = g.constant(randomTensor(g.shape(y), seed));
  return g.op1('ReduceSum', [g.op1('Mul', [y, r]), g.constant([], 'int64')], { keepdims: int(0) });
}

/** Runs the emitted backward graph in onnxruntime and in the float64 interpreter. */
async function backwardBoth(build: Build): Promise<{ ort: Float32Array[]; ref: Float64Array[] }> {
  const g = new IrGraph();
  const { y, params, feeds = new Map() } = build(g);
  const loss = withLoss(g, y, 99);
  const { grads } = grad(g, loss, params);
  const outs = params.map((p) => grads.get(p)!);
  const model = g.toModel({ name: 'backward', outputs: outs, outputNames: params.map((p) => `grad:${p}`) });
  const session = await runtime.createSession(serializeModel(model));
  const result = await session.run(Object.fromEntries(session.inputNames.map((n) => [n, feeds.get(n)!])));
  await session.dispose();
  const refFeeds = new Map(
    [...feeds].map(([k, t]) => [
      k,
      {
        shape: t.shape,
        data: Float64Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v)),
      },
    ]),
  );
  const ref = runReference(g, refFeeds, outs);
  return {
    ort: params.map((p) => result[`grad:${p}`]!.data as Float32Array),
    ref: outs.map((o) => ref.get(o)!.data),
  };
}

async function check(build: Build, bound = 2e-3): Promise<void> {
  const g = new IrGraph();
  const { y, params, feeds = new Map() } = build(g);
  const loss = withLoss(g, y, 99);
  const fd = await gradCheck(runtime, g, loss, params, feeds, { coords: 6 });
  expect(Math.abs(fd.loss - fd.referenceLoss)).toBeLessThan(1e-3 * Math.max(1, Math.abs(fd.referenceLoss)));
  console.info(
    `${expect.getState().currentTestName}: worst relative error ${fd.worst.toExponential(2)} (${fd.tensors.map((t) => t.name).join(', ')})`,
  );
  for (const t of fd.tensors) expect(t.worstRelative, `finite differences, ${t.name}`).toBeLessThan(bound);

  const { ort, ref } = await backwardBoth(build);
  ort.forEach((o, i) => {
    const r = ref[i]!;
    let scale = 1;
    let worst = 0;
    for (let k = 0; k < r.length; k++) {
      scale = Math.max(scale, Math.abs(r[k]!));
      worst = Math.max(worst, Math.abs(o[k]! - r[k]!));
    }
    expect(o.length).toBe(r.length);
    expect(worst, `ORT vs float64 backward, ${paramNames(build)[i]}`).toBeLessThanOrEqual(1e-4 * scale);
  });
}

const paramNames = (build: Build): string[] => build(new IrGraph()).params;

describe('ConvTranspose as a forward op', () => {
  const cases: [string, number[], number[], { s: number[]; p: number[]; op: number[]; g: number }][] = [
    ['3x3 s2 p1 op1', [2, 4, 3, 3], [4, 3, 3, 3], { s: [2, 2], p: [1, 1, 1, 1], op: [1, 1], g: 1 }],
    [
      'grouped 3x3 s2, asymmetric pads',
      [1, 4, 4, 5],
      [4, 2, 3, 3],
      { s: [2, 2], p: [1, 0, 1, 1], op: [1, 0], g: 2 },
    ],
    ['2x2 s1 p0', [1, 3, 4, 4], [3, 2, 2, 2], { s: [1, 1], p: [0, 0, 0, 0], op: [0, 0], g: 1 }],
    [
      '4x4 s2 p1 (the usual 2× upsampler)',
      [1, 2, 3, 4],
      [2, 3, 4, 4],
      { s: [2, 2], p: [1, 1, 1, 1], op: [0, 0], g: 1 },
    ],
  ];
  for (const [label, xs, ws, a] of cases)
    it(label, async () => {
      await check((g) => {
        const x = g.addWeight('x', randomTensor(xs, 1));
        const w = g.addWeight('w', randomTensor(ws, 2, 0.3));
        const b = g.addWeight('b', randomTensor([ws[1]! * a.g], 3));
        const y = g.op1('ConvTranspose', [x, w, b], {
          dilations: ints([1, 1]),
          group: int(a.g),
          kernel_shape: ints(ws.slice(2)),
          output_padding: ints(a.op),
          pads: ints(a.p),
          strides: ints(a.s),
        });
        return { y, params: [x, w, b] };
      });
    });
});

describe('AveragePool and MaxPool', () => {
  const pools: [string, number[], { k: number[]; s: number[]; p: number[]; include?: number }][] = [
    ['3x3 s2 p1, count_include_pad 0', [1, 2, 7, 6], { k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], include: 0 }],
    ['3x3 s2 p1, count_include_pad 1', [1, 2, 7, 6], { k: [3, 3], s: [2, 2], p: [1, 1, 1, 1], include: 1 }],
    ['2x2 s2, odd size (floor drops a row)', [2, 3, 5, 5], { k: [2, 2], s: [2, 2], p: [0, 0, 0, 0] }],
    ['3x2 s1, asymmetric pads', [1, 2, 4, 5], { k: [3, 2], s: [1, 1], p: [1, 0, 0, 1], include: 0 }],
  ];
  for (const op of ['AveragePool', 'MaxPool'])
    for (const [label, xs, a] of pools) {
      if (op === 'MaxPool' && a.include === 1) continue;
      it(`${op} ${op === 'MaxPool' ? label.replace(/, count_include_pad \d/, '') : label}`, async () => {
        await check((g) => {
          const x = g.addWeight('x', randomTensor(xs, 4));
          const attrs: Record<string, AttributeValue> = {
            kernel_shape: ints(a.k),
            pads: ints(a.p),
            strides: ints(a.s),
          };
          if (op === 'AveragePool' && a.include !== undefined) attrs.count_include_pad = int(a.include);
          // Tanh first, so that the input gradient reaches the pool through another rule.
          return { y: g.op1(op, [g.op1('Tanh', [x])], attrs), params: [x] };
        });
      });
    }

  it('MaxPool routes a tied window to its first maximum (row-major), like PyTorch', async () => {
    // Every window of this input has ties (values from {0, 1, 2}); the rule must send dY to the
    // first maximum in scan order. Expected routing computed here by plain loops.
    const [n, c, h, w] = [1, 2, 5, 6];
    const data = Float32Array.from({ length: n * c * h * w }, (_, i) => (i * 7) % 3);
    const [k, s] = [3, 2];
    const ho = Math.floor((h - k) / s) + 1;
    const wo = Math.floor((w - k) / s) + 1;
    const { ort } = await backwardBoth((g) => {
      const x = g.addWeight('x', { dtype: 'float32', shape: [n, c, h, w], data });
      const y = g.op1('MaxPool', [x], { kernel_shape: ints([k, k]), strides: ints([s, s]) });
      return { y, params: [x] };
    });
    const r = randomTensor([n, c, ho, wo], 99).data;
    const expected = new Float32Array(data.length);
    for (let b = 0; b < n * c; b++)
      for (let oy = 0; oy < ho; oy++)
        for (let ox = 0; ox < wo; ox++) {
          let best = -Infinity;
          let at = -1;
          for (let i = 0; i < k; i++)
            for (let j = 0; j < k; j++) {
              const idx = (b * h + oy * s + i) * w + ox * s + j;
              if (data[idx]! > best) [best, at] = [data[idx]!, idx];
            }
          expected[at] = expected[at]! + r[(b * ho + oy) * wo + ox]!;
        }
    expect(Array.from(ort[0]!)).toEqual(Array.from(expected));
  });
});

describe('Gather', () => {
  it('axis 0 with repeated and negative constant indices (duplicates sum)', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([5, 4], 5));
      const idx = g.constant([1, -1, 1, 0, 1], 'int64');
      return { y: g.op1('Gather', [x, idx], { axis: int(0) }), params: [x] };
    });
  });

  it('axis 1 with 2-D constant indices', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([2, 5, 3], 6));
      const idx = g.constant(
        { dtype: 'int64', shape: [2, 2], data: BigInt64Array.from([0n, 4n, 4n, 2n]) },
        'int64',
      );
      return { y: g.op1('Gather', [x, idx], { axis: int(1) }), params: [x] };
    });
  });

  it('axis -1 with indices fed at run time (Equal one-hot)', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([3, 4], 7));
      const idx = g.addInput('idx', 'int64', [3]);
      const feeds = new Map<string, HostTensor>([
        ['idx', { dtype: 'int64', shape: [3], data: BigInt64Array.from([3n, -4n, 3n]) }],
      ]);
      return { y: g.op1('Gather', [x, idx], { axis: int(-1) }), params: [x], feeds };
    });
  });
});

describe('strided and reversed Slice', () => {
  const slice = (
    g: IrGraph,
    x: string,
    starts: number[],
    ends: number[],
    axes: number[],
    steps: number[],
  ): string =>
    g.op1('Slice', [
      x,
      g.constant(starts, 'int64'),
      g.constant(ends, 'int64'),
      g.constant(axes, 'int64'),
      g.constant(steps, 'int64'),
    ]);

  it('step 2 and step −2 (from the end) on two axes', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([3, 7, 6], 8));
      return { y: slice(g, x, [1, -1], [7, -100], [1, 2], [2, -2]), params: [x] };
    });
  });

  it('full reversal (step −1), step 3 with a remainder, partial reversed range', async () => {
    await check((g) => {
      const x = g.addWeight('x', randomTensor([4, 8, 5], 9));
      const a = slice(g, x, [-1, 0, 3], [-100, 8, 0], [0, 1, 2], [-1, 3, -1]);
      // Two slices of the same input: their gradients add.
      const b = slice(g, x, [0, 6, 4], [4, 0, -100], [0, 1, 2], [1, -3, -2]);
      return {
        y: g.op1('Add', [
          g.op1('ReduceSum', [a, g.constant([1], 'int64')], { keepdims: int(1) }),
          g.op1('ReduceSum', [b, g.constant([1], 'int64')], { keepdims: int(1) }),
        ]),
        params: [x],
      };
    });
  });
});
