/**
 * Every op helper of @dcae/core/onnx, run on onnxruntime-node CPU and compared with the float64
 * references in onnx-reference.ts. Each test runs with graph optimisations off and fully on, so
 * both the plain kernels and onnxruntime's fusions (GELU, LayerNorm, constant folding) are checked.
 */
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { InitializerData } from '@dcae/core/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import {
  Nd,
  binary,
  concat,
  conv2d,
  depthToSpaceDcr,
  erf,
  gather,
  gemm,
  layerNorm,
  matMul,
  pad,
  pixelShuffle,
  pixelUnshuffle,
  reduce,
  resizeNearest,
  slice,
  softmax,
  spaceToDepth,
  tile,
  transpose,
} from './onnx-reference.js';
import type { ConvParams } from './onnx-reference.js';
import { LEVELS, expectClose, f32, fromOrt, i64, randomF32, runOps, toOrt } from './onnx-support.js';

const nd = Nd.of;

describe.each(LEVELS)('op helpers (graph optimisation %s)', (level) => {
  describe('conv', () => {
    const cases: { name: string; x: number[]; w: number[]; bias: boolean; p: ConvParams }[] = [
      { name: 'plain 3×3', x: [1, 3, 6, 5], w: [4, 3, 3, 3], bias: false, p: {} },
      { name: 'with bias', x: [2, 3, 5, 5], w: [4, 3, 3, 3], bias: true, p: { pads: [1, 1, 1, 1] } },
      {
        name: 'stride 2',
        x: [1, 2, 7, 8],
        w: [3, 2, 3, 3],
        bias: true,
        p: { strides: [2, 2], pads: [1, 1, 1, 1] },
      },
      { name: 'asymmetric pads', x: [1, 2, 5, 6], w: [2, 2, 3, 2], bias: false, p: { pads: [0, 2, 1, 0] } },
      { name: 'grouped', x: [1, 4, 5, 5], w: [6, 2, 3, 3], bias: true, p: { group: 2, pads: [1, 1, 1, 1] } },
      {
        name: 'depthwise',
        x: [1, 5, 6, 6],
        w: [5, 1, 3, 3],
        bias: true,
        p: { group: 5, pads: [1, 1, 1, 1] },
      },
      {
        name: 'dilation 2',
        x: [1, 3, 9, 8],
        w: [2, 3, 3, 3],
        bias: false,
        p: { dilations: [2, 2], pads: [2, 2, 2, 2] },
      },
      { name: '1×1', x: [2, 6, 3, 4], w: [3, 6, 1, 1], bias: true, p: {} },
    ];
    it.each(cases)('$name', async ({ x: xs, w: ws, bias, p }) => {
      const x = randomF32(xs, 1);
      const w = randomF32(ws, 2);
      const b = randomF32([ws[0]!], 3);
      const [y] = await runOps(
        { x },
        (m, { x: xv }, g) => {
          const wv = g.initializer('w', { kind: 'inline', tensor: w });
          const bv = bias ? g.initializer('b', { kind: 'inline', tensor: b }) : undefined;
          return m.conv(xv!, wv, bv, p);
        },
        { level },
      );
      expectClose(y!, conv2d(nd(x), nd(w), bias ? nd(b) : undefined, p));
    });
  });

  it('matMul: batched and broadcast', async () => {
    const a = randomF32([2, 3, 4, 5], 1);
    const b = randomF32([2, 3, 5, 6], 2);
    const c = randomF32([5, 2], 3);
    const [ab, ac] = await runOps({ a, b, c }, (m, v) => [m.matMul(v.a!, v.b!), m.matMul(v.a!, v.c!)], {
      level,
    });
    expectClose(ab!, matMul(nd(a), nd(b)));
    expectClose(ac!, matMul(nd(a), nd(c)));
  });

  it('gemm: transA, transB, alpha, beta, broadcast C', async () => {
    const a = randomF32([4, 3], 1);
    const b = randomF32([5, 4], 2);
    const c = randomF32([5], 3);
    const at = randomF32([3, 4], 4);
    const [y1, y2] = await runOps(
      { a, b, c, at },
      (m, v) => [
        m.gemm(v.a!, v.b!, v.c, { transA: true, transB: true, alpha: 0.5, beta: 2 }),
        m.gemm(v.at!, v.b!, undefined, { transB: true }),
      ],
      { level },
    );
    expectClose(y1!, gemm(nd(a), nd(b), nd(c), { transA: true, transB: true, alpha: 0.5, beta: 2 }));
    expectClose(y2!, gemm(nd(at), nd(b), undefined, { transB: true }));
  });

  describe('elementwise binary (with broadcasting)', () => {
    const a = randomF32([2, 3, 4], 1, 0.5, 2);
    const b = randomF32([3, 1], 2, 0.5, 2);
    const ops = {
      add: (x: number, y: number) => x + y,
      sub: (x: number, y: number) => x - y,
      mul: (x: number, y: number) => x * y,
      div: (x: number, y: number) => x / y,
      pow: (x: number, y: number) => x ** y,
    } as const;
    it.each(Object.keys(ops) as (keyof typeof ops)[])('%s', async (name) => {
      const [y] = await runOps({ a, b }, (m, v) => m[name](v.a!, v.b!), { level });
      expectClose(y!, binary(nd(a), nd(b), ops[name]));
    });
    it('pow with a negative base and an integer exponent', async () => {
      const x = f32([5], [-2, -1.5, 0, 1.5, 3]);
      const [y] = await runOps({ x }, (m, v) => m.pow(v.x!, m.constant(3)), { level });
      expectClose(
        y!,
        nd(x).map((t) => t ** 3),
      );
    });
  });

  describe('elementwise unary', () => {
    const x = randomF32([2, 3, 5], 7, -3, 3);
    const pos = randomF32([2, 3, 5], 8, 0.1, 4);
    const sigmoid = (t: number): number => 1 / (1 + Math.exp(-t));
    const ops = {
      sqrt: [pos, Math.sqrt],
      reciprocal: [pos, (t: number) => 1 / t],
      neg: [x, (t: number) => -t],
      exp: [x, Math.exp],
      abs: [x, Math.abs],
      relu: [x, (t: number) => Math.max(t, 0)],
      sigmoid: [x, sigmoid],
      tanh: [x, Math.tanh],
      erf: [x, erf],
      silu: [x, (t: number) => t * sigmoid(t)],
      identity: [x, (t: number) => t],
    } as const;
    it.each(Object.keys(ops) as (keyof typeof ops)[])('%s', async (name) => {
      const [input, ref] = ops[name];
      const [y] = await runOps({ x: input }, (m, v) => m[name](v.x!), { level });
      expectClose(y!, nd(input).map(ref));
    });

    it("gelu 'none' = x·Φ(x) = ½x(1 + erf(x/√2))", async () => {
      const [y] = await runOps({ x }, (m, v) => m.gelu(v.x!, 'none'), { level });
      expectClose(
        y!,
        nd(x).map((t) => 0.5 * t * (1 + erf(t / Math.SQRT2))),
      );
    });

    it("gelu 'tanh' = ½x(1 + tanh(√(2/π)(x + 0.044715x³)))", async () => {
      const [y] = await runOps({ x }, (m, v) => m.gelu(v.x!, 'tanh'), { level });
      const ref = (t: number): number =>
        0.5 * t * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (t + 0.044715 * t ** 3)));
      expectClose(y!, nd(x).map(ref));
      // The two GELU forms differ by up to ~5e-4 here: the test would notice a swapped formula.
      const exact = nd(x).map((t) => 0.5 * t * (1 + erf(t / Math.SQRT2)));
      expect(Math.max(...exact.values.map((e, i) => Math.abs(e - y!.values[i]!)))).toBeGreaterThan(1e-4);
    });
  });

  it('softmax over the last axis and over axis 1', async () => {
    const x = randomF32([2, 3, 4], 3, -4, 4);
    const [y1, y2] = await runOps({ x }, (m, v) => [m.softmax(v.x!), m.softmax(v.x!, 1)], { level });
    expectClose(y1!, softmax(nd(x), -1));
    expectClose(y2!, softmax(nd(x), 1));
  });

  it.each([true, false])('reduceMean / reduceSum (keepdims %s)', async (keepdims) => {
    const x = randomF32([2, 3, 4, 5], 4);
    const [mean, sum, last] = await runOps(
      { x },
      (m, v) => [
        m.reduceMean(v.x!, [1, 3], keepdims),
        m.reduceSum(v.x!, [1, 3], keepdims),
        m.reduceMean(v.x!, [-1], keepdims),
      ],
      { level },
    );
    expectClose(mean!, reduce(nd(x), [1, 3], keepdims, true));
    expectClose(sum!, reduce(nd(x), [1, 3], keepdims, false));
    expectClose(last!, reduce(nd(x), [-1], keepdims, true));
    expect(mean!.shape).toEqual(keepdims ? [2, 1, 4, 1] : [2, 4]);
  });

  it('layerNorm over the last axis (scale + bias) and the last two (scale only)', async () => {
    const x = randomF32([2, 3, 8], 5, -2, 3);
    const scale = randomF32([8], 6);
    const bias = randomF32([8], 7);
    const scale2 = randomF32([3, 8], 8);
    const [y1, y2] = await runOps(
      { x, scale, bias, scale2 },
      (m, v) => [
        m.layerNorm(v.x!, v.scale!, v.bias, { epsilon: 1e-6 }),
        m.layerNorm(v.x!, v.scale2!, undefined, { axis: 1, epsilon: 1e-3 }),
      ],
      { level },
    );
    expectClose(y1!, layerNorm(nd(x), nd(scale), nd(bias), -1, 1e-6), { atol: 2e-5 });
    expectClose(y2!, layerNorm(nd(x), nd(scale2), undefined, 1, 1e-3), { atol: 2e-5 });
  });

  describe('shapes and layout', () => {
    const x = randomF32([2, 3, 4, 5], 9);

    it('reshape with 0 (copy) and -1 (infer)', async () => {
      const [a, b] = await runOps(
        { x },
        (m, v) => [m.reshape(v.x!, [0, -1]), m.reshape(v.x!, [-1, 0, 5, 2])],
        { level },
      );
      expectClose(a!, nd(x).reshape([2, 60]), { atol: 0, rtol: 0 });
      expectClose(b!, nd(x).reshape([4, 3, 5, 2]), { atol: 0, rtol: 0 });
    });

    it('reshape to a shape computed from shape() + concat', async () => {
      // [B, C, H, W] -> [B, C, H·W], the way attention flattens spatial dims.
      const [y] = await runOps(
        { x },
        (m, v) => m.reshape(v.x!, m.concat([m.shape(v.x!, 0, 2), m.constant([-1], 'int64')], 0)),
        { level, shapes: { x: ['b', 'c', 'h', 'w'] } },
      );
      expectClose(y!, nd(x).reshape([2, 3, 20]), { atol: 0, rtol: 0 });
    });

    it('shape(start, end), including negative bounds', async () => {
      const [all, mid, tail] = await runOps(
        { x },
        (m, v) => [m.shape(v.x!), m.shape(v.x!, 1, 3), m.shape(v.x!, -2)],
        { level, shapes: { x: ['b', 3, 'h', 'w'] } },
      );
      expect(all).toEqual({ dtype: 'int64', shape: [4], values: [2, 3, 4, 5] });
      expect(mid).toEqual({ dtype: 'int64', shape: [2], values: [3, 4] });
      expect(tail).toEqual({ dtype: 'int64', shape: [2], values: [4, 5] });
    });

    it('transpose', async () => {
      const [y] = await runOps({ x }, (m, v) => m.transpose(v.x!, [0, 2, 3, 1]), { level });
      expectClose(y!, transpose(nd(x), [0, 2, 3, 1]), { atol: 0, rtol: 0 });
    });

    it('concat and split', async () => {
      const a = randomF32([2, 1, 4], 1);
      const b = randomF32([2, 3, 4], 2);
      const [cat, s0, s1, s2] = await runOps(
        { a, b },
        (m, v) => {
          const c = m.concat([v.a!, v.b!, v.a!], 1);
          return [c, ...m.split(c, 1, [2, 1, 2])];
        },
        { level },
      );
      const ref = concat([nd(a), nd(b), nd(a)], 1);
      expectClose(cat!, ref, { atol: 0, rtol: 0 });
      expectClose(s0!, slice(ref, [0], [2], [1], [1]), { atol: 0, rtol: 0 });
      expectClose(s1!, slice(ref, [2], [3], [1], [1]), { atol: 0, rtol: 0 });
      expectClose(s2!, slice(ref, [3], [5], [1], [1]), { atol: 0, rtol: 0 });
    });

    it('slice with steps, negative indices and out-of-range ends', async () => {
      const [a, b, c] = await runOps(
        { x },
        (m, v) => [
          m.slice(v.x!, [1, 4], [5, 0], [3, 2], [2, -1]),
          m.slice(v.x!, [-3], [1_000_000], [1]),
          m.slice(v.x!, [0, 1], [-1, 3]),
        ],
        { level },
      );
      expectClose(a!, slice(nd(x), [1, 4], [5, 0], [3, 2], [2, -1]), { atol: 0, rtol: 0 });
      expect(a!.shape).toEqual([2, 3, 3, 2]);
      expectClose(b!, slice(nd(x), [-3], [1_000_000], [1], [1]), { atol: 0, rtol: 0 });
      expectClose(c!, slice(nd(x), [0, 1], [-1, 3], [0, 1], [1, 1]), { atol: 0, rtol: 0 });
    });

    it('pad with a constant', async () => {
      const [p0, p1] = await runOps(
        { x },
        (m, v) => [m.pad(v.x!, [0, 0, 1, 2, 0, 0, 2, 1]), m.pad(v.x!, [0, 1, 0, 0, 1, 0, 0, 3], -0.5)],
        { level },
      );
      expectClose(p0!, pad(nd(x), [0, 0, 1, 2, 0, 0, 2, 1], 0), { atol: 0, rtol: 0 });
      expectClose(p1!, pad(nd(x), [0, 1, 0, 0, 1, 0, 0, 3], -0.5), { atol: 0, rtol: 0 });
    });

    it('expand (static and computed shape) and tile', async () => {
      const small = randomF32([3, 1], 3);
      const [e1, e2, t] = await runOps(
        { small, x },
        (m, v) => [
          m.expand(v.small!, [2, 3, 4]),
          m.expand(v.small!, m.shape(v.x!, 0, 3)),
          m.tile(v.small!, [2, 3]),
        ],
        { level },
      );
      expectClose(
        e1!,
        Nd.fromFn([2, 3, 4], (i) => nd(small).at(i)),
        { atol: 0, rtol: 0 },
      );
      expectClose(
        e2!,
        Nd.fromFn([2, 3, 4], (i) => nd(small).at(i)),
        { atol: 0, rtol: 0 },
      );
      expectClose(t!, tile(nd(small), [2, 3]), { atol: 0, rtol: 0 });
    });

    it('unsqueeze and squeeze', async () => {
      const v3 = randomF32([3, 1, 4], 4);
      const [u, s] = await runOps({ v3 }, (m, v) => [m.unsqueeze(v.v3!, [0, -1]), m.squeeze(v.v3!, [1])], {
        level,
      });
      expectClose(u!, nd(v3).reshape([1, 3, 1, 4, 1]), { atol: 0, rtol: 0 });
      expectClose(s!, nd(v3).reshape([3, 4]), { atol: 0, rtol: 0 });
    });

    it('gather along axis 0 and 1, with a negative index', async () => {
      const table = randomF32([5, 3], 5);
      const rows = i64([2, 2], [0, 4, -1, 2]);
      const cols = i64([2], [2, 0]);
      const [g0, g1] = await runOps(
        { table, rows, cols },
        (m, v) => [m.gather(v.table!, v.rows!), m.gather(v.table!, v.cols!, 1)],
        { level },
      );
      expectClose(g0!, gather(nd(table), nd(rows), 0), { atol: 0, rtol: 0 });
      expect(g0!.shape).toEqual([2, 2, 3]);
      expectClose(g1!, gather(nd(table), nd(cols), 1), { atol: 0, rtol: 0 });
    });

    it('depthToSpace CRD equals torch pixel_shuffle; DCR follows the ONNX DCR formula', async () => {
      const d = randomF32([2, 12, 3, 2], 6);
      const [crd, dcr] = await runOps(
        { d },
        (m, v) => [m.depthToSpace(v.d!, 2), m.depthToSpace(v.d!, 2, 'DCR')],
        { level },
      );
      // pixel_shuffle: out[b, c, 2y+i, 2x+j] = in[b, c·4 + i·2 + j, y, x]
      expectClose(crd!, pixelShuffle(nd(d), 2), { atol: 0, rtol: 0 });
      expectClose(dcr!, depthToSpaceDcr(nd(d), 2), { atol: 0, rtol: 0 });
      expect(crd!.values).not.toEqual(dcr!.values);
    });

    it('spaceToDepth uses the DCR order (not torch pixel_unshuffle) and inverts depthToSpace DCR', async () => {
      const s = randomF32([1, 3, 4, 6], 7);
      const [y, roundTrip] = await runOps(
        { s },
        (m, v) => {
          const packed = m.spaceToDepth(v.s!, 2);
          return [packed, m.depthToSpace(packed, 2, 'DCR')];
        },
        { level },
      );
      // out[b, (i·2 + j)·C + c, y, x] = in[b, c, 2y+i, 2x+j]
      expectClose(y!, spaceToDepth(nd(s), 2), { atol: 0, rtol: 0 });
      expect(y!.values).not.toEqual(pixelUnshuffle(nd(s), 2).values);
      expectClose(roundTrip!, nd(s), { atol: 0, rtol: 0 });
    });

    it('resize nearest, asymmetric, floor, ×2', async () => {
      const r = randomF32([1, 2, 3, 4], 8);
      const [y] = await runOps(
        { r },
        (m, v) =>
          m.resize(v.r!, {
            scales: [1, 1, 2, 2],
            mode: 'nearest',
            coordinateTransformationMode: 'asymmetric',
            nearestMode: 'floor',
          }),
        { level },
      );
      expectClose(y!, resizeNearest(nd(r), [1, 1, 2, 2]), { atol: 0, rtol: 0 });
      expect(y!.shape).toEqual([1, 2, 6, 8]);
    });
  });

  describe('cast', () => {
    const x = f32([8], [-2.7, -1, -0.5, 0, 0.5, 1.5, 3.9, 100.2]);
    const unsigned = f32([6], [0, 0.5, 1.5, 3.9, 100.2, 254.9]);
    const trunc = (t: number): number => Math.trunc(t) + 0; // + 0 turns −0 into 0
    it.each([
      ['int32', x, trunc],
      ['int64', x, trunc],
      ['uint8', unsigned, trunc],
      ['bool', x, (t: number) => (t !== 0 ? 1 : 0)],
    ] as const)('float32 → %s → float32', async (dtype, input, ref) => {
      const [cast, back] = await runOps(
        { x: input },
        (m, v) => {
          const c = m.cast(v.x!, dtype);
          expect(c.dtype).toBe(dtype);
          return [c, m.cast(c, 'float32')];
        },
        { level },
      );
      expect(cast!.dtype).toBe(dtype);
      expect(cast!.values).toEqual(Array.from(input.data, ref));
      expect(back!.dtype).toBe('float32');
      expect(back!.values).toEqual(Array.from(input.data, ref));
    });
  });

  it('where, equal, greater', async () => {
    const a = f32([6], [1, -2, 3, 0.5, 7, -1]);
    const b = f32([6], [1, 2, -3, 0.5, 8, -2]);
    const [eq, gt, max] = await runOps(
      { a, b },
      (m, v) => {
        const greater = m.greater(v.a!, v.b!);
        expect(greater.dtype).toBe('bool');
        return [m.equal(v.a!, v.b!), greater, m.where(greater, v.a!, v.b!)];
      },
      { level },
    );
    expect(eq).toEqual({ dtype: 'bool', shape: [6], values: [1, 0, 0, 1, 0, 0] });
    expect(gt).toEqual({ dtype: 'bool', shape: [6], values: [0, 0, 1, 0, 0, 1] });
    expectClose(max!, binary(nd(a), nd(b), Math.max), { atol: 0, rtol: 0 });
  });

  it('constant (scalar, list, HostTensor, non-float dtypes) and the op() escape hatch', async () => {
    const x = randomF32([2, 3], 9);
    const table: HostTensor = { dtype: 'float32', shape: [2, 1], data: Float32Array.from([10, -10]) };
    const [y, i32, u8, b, mx] = await runOps(
      { x },
      (m, v) => [
        m.add(m.mul(v.x!, m.constant(2)), m.add(m.constant([1, 2, 3]), m.constant(table))),
        m.constant([7, -8], 'int32'),
        m.constant([0, 255], 'uint8'),
        m.constant([1, 0, 1], 'bool'),
        m.op('Max', [v.x!, m.constant(0.25), m.constant([-1, 0.5, 2])])[0]!,
      ],
      { level },
    );
    expectClose(
      y!,
      binary(
        binary(nd(x), new Nd([3], [1, 2, 3]), (p, q) => 2 * p + q),
        nd(table),
        (p, q) => p + q,
      ),
    );
    expect(i32).toEqual({ dtype: 'int32', shape: [2], values: [7, -8] });
    expect(u8).toEqual({ dtype: 'uint8', shape: [2], values: [0, 255] });
    expect(b).toEqual({ dtype: 'bool', shape: [3], values: [1, 0, 1] });
    expectClose(
      mx!,
      binary(nd(x), new Nd([3], [-1, 0.5, 2]), (p, q) => Math.max(p, 0.25, q)),
    );
  });

  it('param() binds checkpoint keys through the resolver, once per key', async () => {
    const weights: Record<string, HostTensor> = {
      'block.proj.weight': randomF32([4, 3], 1),
      'block.proj.bias': randomF32([4], 2),
    };
    const asked: string[] = [];
    const params = (key: string, shape: readonly number[]): InitializerData => {
      asked.push(`${key} [${shape.join(',')}]`);
      return { kind: 'inline', tensor: weights[key]! };
    };
    const g = new GraphBuilder({ name: 'params', params });
    const x = g.input('x', 'float32', [2, 3]);
    const proj = g.root.child('block').child('proj');
    const weight = proj.param('weight', [4, 3]);
    const y = proj.gemm(x, weight, proj.param('bias', [4]), { transB: true });
    expect(proj.param('weight', [4, 3])).toBe(weight);
    g.output(y, 'y', [2, 4]);
    expect(asked).toEqual(['block.proj.weight [4,3]', 'block.proj.bias [4]']);
    const model = g.build();
    expect(model.graph.initializers.map((i) => i.name)).toEqual(['block.proj.weight', 'block.proj.bias']);
    const input = randomF32([2, 3], 3);
    const session = await ort.InferenceSession.create(serializeModel(model), {
      graphOptimizationLevel: level,
    });
    const out = fromOrt((await session.run({ x: toOrt(input) })).y!);
    await session.release();
    expectClose(
      out,
      gemm(nd(input), nd(weights['block.proj.weight']!), nd(weights['block.proj.bias']!), { transB: true }),
    );
  });

  it('if: the branch follows a runtime shape; branches read outer values and initializers', async () => {
    const scale = randomF32([1, 2, 1, 1], 11);
    const g = new GraphBuilder({ name: 'if_test' });
    const x = g.input('x', 'float32', [1, 2, 'h', 'w']);
    const m = g.root.child('blk');
    const w = g.initializer('blk.scale', { kind: 'inline', tensor: scale });
    const squared = m.mul(x, x); // outer value read by both branches
    const tall = m.greater(m.shape(x, 2, 3), m.constant([4], 'int64'));
    const [y, passthrough] = m.if(
      tall,
      (t) => [t.mul(squared, w), x], // x itself: the builder must wrap it in an Identity
      (e) => [e.sub(squared, e.constant(1)), e.neg(x)],
    );
    g.output(y!, 'y', undefined);
    g.output(passthrough!, 'p', undefined);
    const bytes = serializeModel(g.build());
    const session = await ort.InferenceSession.create(bytes, { graphOptimizationLevel: level });
    try {
      for (const [h, branch] of [
        [6, 'then'],
        [3, 'else'],
      ] as const) {
        const input = randomF32([1, 2, h, 3], h);
        const out = await session.run({ x: toOrt(input) });
        const sq = nd(input).map((t) => t * t);
        if (branch === 'then') {
          expectClose(
            fromOrt(out.y!),
            binary(sq, nd(scale), (p, q) => p * q),
          );
          expectClose(fromOrt(out.p!), nd(input), { atol: 0, rtol: 0 });
        } else {
          expectClose(
            fromOrt(out.y!),
            sq.map((t) => t - 1),
          );
          expectClose(
            fromOrt(out.p!),
            nd(input).map((t) => -t),
            { atol: 0, rtol: 0 },
          );
        }
      }
    } finally {
      await session.release();
    }
  });

  it('dynamic dims: one session runs several batch and spatial sizes', async () => {
    const w = randomF32([4, 3, 3, 3], 1);
    const b = randomF32([4], 2);
    const g = new GraphBuilder({ name: 'dynamic' });
    const x = g.input('x', 'float32', ['batch', 3, 'height', 'width']);
    const m = g.root.child('net');
    const conv = m.conv(
      x,
      g.initializer('w', { kind: 'inline', tensor: w }),
      g.initializer('b', { kind: 'inline', tensor: b }),
      {
        pads: [1, 1, 1, 1],
        strides: [2, 2],
      },
    );
    const flat = m.reshape(conv, m.concat([m.shape(conv, 0, 2), m.constant([-1], 'int64')], 0));
    g.output(flat, 'y', ['batch', 4, 'hw']);
    const session = await ort.InferenceSession.create(serializeModel(g.build()), {
      graphOptimizationLevel: level,
    });
    try {
      for (const shape of [
        [1, 3, 4, 4],
        [2, 3, 7, 5],
        [3, 3, 2, 9],
      ]) {
        const input = randomF32(shape, shape[2]!);
        const out = fromOrt((await session.run({ x: toOrt(input) })).y!);
        const ref = conv2d(nd(input), nd(w), nd(b), { pads: [1, 1, 1, 1], strides: [2, 2] });
        expectClose(out, ref.reshape([shape[0]!, 4, ref.shape[2]! * ref.shape[3]!]));
      }
    } finally {
      await session.release();
    }
  });
});
