import { createRng } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { Module, Value } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import { pixelShuffle, pixelUnshuffle } from '@dcae/autoencoder';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import type { BenchCase, Figure, Scenario } from '../scenario.js';
import { WEB_THREADS } from './runtimes.js';

/**
 * The DC-AE pixel (un)shuffle as dcae writes it (two one-axis Transposes, `@dcae/autoencoder`'s
 * `pixelShuffle` / `pixelUnshuffle`) against the forms it replaced: one Transpose that moves two
 * axes (unshuffle) and `DepthToSpace` CRD (shuffle). Pure data movement, so the outputs must be
 * bit-identical; the question is only what each costs on each runtime (docs/benchmarks.md).
 */

const FULL_SHAPES: readonly (readonly [number, number])[] = [
  [128, 256], // dc-ae-f32c32-in's first stage at 256²
  [32, 512], // the default model's second stage at 512²
];
const QUICK_SHAPES: readonly (readonly [number, number])[] = [[16, 64]];

type Form = (m: Module, x: Value, channels: number, side: number) => Value;

/** Each form on [1, C, S, S] (unshuffle) or [1, C, S, S] read as 4·(C/4) channels (shuffle). */
const FORMS: Readonly<Record<string, { readonly op: 'unshuffle' | 'shuffle'; readonly build: Form }>> = {
  'unshuffle, one Transpose (before)': {
    op: 'unshuffle',
    build: (m, x, c, s) =>
      m.reshape(m.transpose(m.reshape(x, [1, c, s / 2, 2, s / 2, 2]), [0, 1, 3, 5, 2, 4]), [
        1,
        4 * c,
        s / 2,
        s / 2,
      ]),
  },
  'unshuffle, two one-axis Transposes (dcae)': {
    op: 'unshuffle',
    build: (m, x, c) => pixelUnshuffle(m, x, c),
  },
  'shuffle, DepthToSpace CRD (before)': { op: 'shuffle', build: (m, x) => m.depthToSpace(x, 2, 'CRD') },
  'shuffle, two one-axis Transposes (dcae)': { op: 'shuffle', build: (m, x, c) => pixelShuffle(m, x, c) },
  'one elementwise pass (Relu, for scale)': { op: 'unshuffle', build: (m, x) => m.relu(x) },
};

function model(name: string, channels: number, side: number, build: Form): Uint8Array {
  const g = new GraphBuilder({ name });
  const x = g.input('x', 'float32', [1, channels, side, side]);
  g.output(build(g.root, x, channels, side), 'y', undefined);
  return serializeModel(g.build());
}

export const pixelShuffleScenario: Scenario = {
  name: 'pixel-shuffle',
  title: 'DC-AE pixel (un)shuffle: two one-axis Transposes vs one Transpose / DepthToSpace',
  description:
    "Times dcae's pixel unshuffle and pixel shuffle (factor 2: two Transposes that each move one axis, with a " +
    'Reshape between them) against the forms they replaced (one Transpose that moves two axes; DepthToSpace CRD) ' +
    'as one-op models on [1, C, S, S] float32, on onnxruntime-node at 2 and 1 threads and onnxruntime-web wasm ' +
    '(2 threads, in Node), side by side. Each model returns its result, so every case includes writing one fresh ' +
    'output tensor; the Relu case (one elementwise pass over the same tensor) shows that fixed part. The outputs ' +
    'of the old and new forms are compared bit for bit.',
  async run(context) {
    const shapes = context.quick ? QUICK_SHAPES : FULL_SHAPES;
    const runtimes: [string, RuntimeV1][] = [
      ['ORT-node 2T', createNodeRuntime({ threads: 2 })],
      ['ORT-node 1T', createNodeRuntime({ threads: 1 })],
      // onnxruntime-web is one instance per process, its thread count fixed by the first session:
      // every in-process web runtime of the bench uses WEB_THREADS, so scenarios can share a run.
      [`ORT-web wasm ${WEB_THREADS}T`, await createWebRuntime({ devices: ['wasm'], threads: WEB_THREADS })],
    ];
    const sessions: SessionV1[] = [];
    const cases: BenchCase[] = [];
    const ratios: { of: string; to: string }[] = [];
    const figures: Figure[] = [];
    try {
      for (const [channels, side] of shapes) {
        const x: HostTensor<'float32'> = createRng(channels + side).randn([1, channels, side, side]);
        for (const [label, runtime] of runtimes) {
          const outputs = new Map<string, HostTensor>();
          for (const [form, { build }] of Object.entries(FORMS)) {
            const session = await runtime.createSession(
              model(form.replace(/\W+/g, '_'), channels, side, build),
            );
            sessions.push(session);
            outputs.set(form, (await session.run({ x })).y!);
            cases.push({ name: `${label} [${channels}, ${side}²] ${form}`, run: () => session.run({ x }) });
          }
          for (const op of ['unshuffle', 'shuffle'] as const) {
            const [before, after] = Object.keys(FORMS).filter((f) => f.startsWith(op));
            const a = outputs.get(before!)!.data;
            const b = outputs.get(after!)!.data;
            let diff = a.length === b.length ? 0 : Number.POSITIVE_INFINITY;
            for (let i = 0; i < a.length && diff === 0; i++)
              if (a[i] !== b[i]) diff = Math.abs(Number(a[i]) - Number(b[i]));
            figures.push({
              name: `${label} [${channels}, ${side}²] ${op}: max |dcae − before|`,
              value: diff,
              unit: '',
            });
            if (diff !== 0) throw new Error(`${label}: the ${op} forms disagree (max diff ${diff})`);
            ratios.push({
              of: `${label} [${channels}, ${side}²] ${before}`,
              to: `${label} [${channels}, ${side}²] ${after}`,
            });
          }
        }
      }
      const series = await context.compare(cases);
      return {
        params: {
          shapes: shapes.map(([c, s]) => `[1, ${c}, ${s}, ${s}]`).join(', '),
          runtimes: runtimes.map(([l, r]) => `${l} (${r.name})`).join(', '),
        },
        series,
        ratios,
        figures,
        notes: [
          'Ratios are before ÷ dcae (median times): above 1 the two-Transpose form is faster. The shuffle input is the ' +
            "same [1, C, S, S] tensor read as C/4 output channels, so it writes [1, C/4, 2S, 2S]. onnxruntime's Transpose " +
            'moves whole rows (or does one interleave) when a permutation moves a single axis; a permutation that moves ' +
            'two, and DepthToSpace, go element by element.',
        ],
      };
    } finally {
      for (const session of sessions) await session.dispose();
      for (const [, runtime] of runtimes) await runtime.dispose();
    }
  },
};
