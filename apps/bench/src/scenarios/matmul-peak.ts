import { createRng } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { Module, Value } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { compareCases } from '../measure.js';
import type { CompareOptions } from '../measure.js';
import type { BenchCase, Scenario, Series } from '../scenario.js';

export interface PeakOptions {
  /** MatMul of [n, n] × [n, n]. @defaultValue 2048 */
  readonly matmulSize?: number;
  /** Conv 3×3, `channels` → `channels`, over [1, channels, spatial, spatial]. @defaultValue 256, 64 */
  readonly convChannels?: number;
  readonly convSpatial?: number;
  /** @defaultValue 2 warm-up, 5 samples */
  readonly compare?: CompareOptions;
}

export interface PeakResult {
  /** The best GFLOP/s of either op: the roofline's compute ceiling for this runtime and device. */
  readonly peakGflops: number;
  readonly matmulGflops: { readonly median: number; readonly best: number };
  readonly convGflops: { readonly median: number; readonly best: number };
  readonly series: readonly Series[];
  readonly device: string;
  readonly runtime: string;
}

function randomTensor(shape: readonly number[], seed: number): HostTensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: createRng(seed).fillUniform(new Float32Array(n), -1, 1) };
}

/** A one-op model whose weight is an initializer (so the runtime may pre-pack it, as for real weights). */
function oneOp(
  name: string,
  input: HostTensor,
  weight: HostTensor,
  op: (m: Module, x: Value, w: Value) => Value,
): Uint8Array {
  const g = new GraphBuilder({ name });
  const x = g.input('x', 'float32', input.shape);
  const w = g.initializer('w', { kind: 'inline', tensor: weight });
  g.output(op(g.root, x, w), 'y', undefined);
  return serializeModel(g.build());
}

/** One of the peak graphs: a one-op model, its input and its FLOPs per run. */
export interface PeakModel {
  readonly name: string;
  readonly kind: 'matmul' | 'conv';
  readonly model: Uint8Array;
  readonly input: HostTensor<'float32'>;
  readonly outputShape: readonly number[];
  readonly flop: number;
}

/** The MatMul and the 3×3 Conv `measurePeakGflops` times, for runtimes it cannot hold (a wasm child process). */
export function peakModels(options: PeakOptions = {}): [PeakModel, PeakModel] {
  const n = options.matmulSize ?? 2048;
  const c = options.convChannels ?? 256;
  const s = options.convSpatial ?? 64;
  const a = randomTensor([n, n], 1);
  const image = randomTensor([1, c, s, s], 3);
  return [
    {
      name: `MatMul ${n}×${n}×${n}`,
      kind: 'matmul',
      model: oneOp('matmul', a, randomTensor([n, n], 2), (m, x, w) => m.matMul(x, w)),
      input: a,
      outputShape: [n, n],
      flop: 2 * n ** 3,
    },
    {
      name: `Conv 3×3 ${c}→${c} @ ${s}×${s}`,
      kind: 'conv',
      model: oneOp('conv', image, randomTensor([c, c, 3, 3], 4), (m, x, w) =>
        m.conv(x, w, undefined, { pads: [1, 1, 1, 1] }),
      ),
      input: image,
      outputShape: [1, c, s, s],
      flop: 2 * c * c * 9 * s * s,
    },
  ];
}

/**
 * Measures the float32 GFLOP/s `runtime` reaches on a large MatMul and a large 3×3 Conv (the
 * two ops DC-AE spends its time in) and returns the better as the peak, for roofline ratios
 * (achieved GFLOP/s ÷ peak) in other scenarios.
 */
export async function measurePeakGflops(runtime: RuntimeV1, options: PeakOptions = {}): Promise<PeakResult> {
  const compare = options.compare ?? { warmup: 2, samples: 5 };
  const [mm, cv] = peakModels(options);
  const a = mm.input;
  const image = cv.input;
  const matmul = await runtime.createSession(mm.model);
  const conv = await runtime.createSession(cv.model);
  try {
    const expectShape = (out: Record<string, HostTensor>, shape: readonly number[]): void => {
      const y = out.y;
      if (!y || y.shape.join() !== shape.join())
        throw new Error(`unexpected output shape ${y?.shape.join('×')}`);
    };
    const [matmulName, convName] = [mm.name, cv.name];
    const cases: BenchCase[] = [
      {
        name: matmulName,
        work: { amount: mm.flop / 1e9, unit: 'GFLOP' },
        run: async () => expectShape(await matmul.run({ x: a }), mm.outputShape),
      },
      {
        name: convName,
        work: { amount: cv.flop / 1e9, unit: 'GFLOP' },
        run: async () => expectShape(await conv.run({ x: image }), cv.outputShape),
      },
    ];
    const series = await compareCases(cases, compare);
    const gflops = (name: string) => {
      const t = series.find((x) => x.name === name)!.throughput!;
      return { median: t.median, best: t.best };
    };
    const matmulGflops = gflops(matmulName);
    const convGflops = gflops(convName);
    return {
      peakGflops: Math.max(matmulGflops.best, convGflops.best),
      matmulGflops,
      convGflops,
      series,
      device: matmul.device,
      runtime: runtime.name,
    };
  } finally {
    await matmul.dispose();
    await conv.dispose();
  }
}

/**
 * The roofline ceiling of the model scenarios (ae-latency, diffusion-tokens): a 2048³ MatMul and a
 * 3×3 Conv 512→512 at 64×64 (19 GFLOP, the shape of the models' widest convs), best of 5 runs.
 */
export const ROOFLINE_PEAK: PeakOptions = {
  matmulSize: 2048,
  convChannels: 512,
  convSpatial: 64,
  compare: { warmup: 2, samples: 5 },
};
/** {@link ROOFLINE_PEAK} for quick (smoke) runs. */
export const QUICK_ROOFLINE_PEAK: PeakOptions = {
  matmulSize: 256,
  convChannels: 32,
  convSpatial: 16,
  compare: { warmup: 1, samples: 2 },
};

/** The peaks a scenario measured so far, in order, and how to measure the next. */
export interface PeakRecorder {
  readonly runs: readonly PeakResult[];
  /** Measures the peak once more (and logs it); call it before and after the cases. */
  readonly measure: () => Promise<void>;
}

/**
 * Measures the peak with `options` each time `measure` is called: a scenario measures it before and
 * after its cases and takes the higher (a busy machine only lowers it).
 */
export function peakRecorder(
  runtime: RuntimeV1,
  options: PeakOptions,
  log: (message: string) => void,
): PeakRecorder {
  const runs: PeakResult[] = [];
  return {
    runs,
    measure: async () => {
      runs.push(await measurePeakGflops(runtime, options));
      log(`peak ${runs.at(-1)!.peakGflops.toFixed(1)} GFLOP/s (best of MatMul and Conv)`);
    },
  };
}

export const matmulPeak: Scenario = {
  name: 'matmul-peak',
  title: 'Peak float32 GFLOP/s of onnxruntime-node (MatMul, Conv)',
  description:
    'Runs one large MatMul and one large 3×3 Conv (weights as initializers) through `createNodeRuntime()` ' +
    '(CPU, default threads, graph optimisation "all") and reports GFLOP/s (2·M·N·K, 2·Cout·Cin·9·H·W). ' +
    'The peak (best run of either op) is the compute ceiling other scenarios divide by (`measurePeakGflops`).',
  async run(context) {
    const runtime = await context.runtime();
    const sizes = context.quick
      ? { matmulSize: 256, convChannels: 32, convSpatial: 16 }
      : { matmulSize: 2048, convChannels: 256, convSpatial: 64 };
    const result = await measurePeakGflops(runtime, {
      ...sizes,
      compare: context.sampling,
    });
    return {
      params: { ...sizes, device: result.device },
      series: result.series,
      figures: [
        { name: 'peak (best run)', value: result.peakGflops, unit: 'GFLOP/s' },
        { name: 'MatMul (median)', value: result.matmulGflops.median, unit: 'GFLOP/s' },
        { name: 'Conv (median)', value: result.convGflops.median, unit: 'GFLOP/s' },
      ],
    };
  },
};
