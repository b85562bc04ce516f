import { join } from 'node:path';
import { createRng } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { externalLocations, serializeModel } from '@dcae/core/onnx';
import { DECODER_IO, ENCODER_IO } from '@dcae/autoencoder';
import { calibrateAutoencoder } from '@dcae/autoencoder';
import { directoryModelFiles, loadAutoencoder } from '@dcae/autoencoder/node';
import { createNodeRuntime, profileModel, profileWasmModel } from '@dcae/runtime-adapters/node';
import type { ModelProfile, ProfiledNode } from '@dcae/runtime-adapters/node';
import { summarize } from '../measure.js';
import { benchModel } from '../random-weights.js';
import type { Figure, Scenario, Series } from '../scenario.js';
import { photos } from './int8.js';
import { measurePeakGflops, peakModels } from './matmul-peak.js';
import type { PeakOptions } from './matmul-peak.js';

/**
 * Where onnxruntime-web's wasm backend spends a full-width DC-AE's time, next to onnxruntime-node
 * on the same model and input: both profiled with onnxruntime's own profiler at one thread (so the
 * ratios compare one core's code, not thread scaling), kernels grouped by what they compute.
 * The wasm run is onnxruntime-web's wasm build in a child Node process (`profileWasmModel`): the
 * same wasm binary and SIMD kernels a browser runs, on Node's V8.
 */

const ARCH = 'f32c32-in';
const FULL_SIZE = 256;
const QUICK_SIZE = 64;
const NODE = 'ORT-node 1T';
const WASM = 'ORT-web wasm 1T';

/** What a kernel computes, for grouping: convolutions by kernel size and grouping, the rest by op type. */
export function kernelClass(node: Pick<ProfiledNode, 'opType' | 'inputShapes'>): string {
  const { opType, inputShapes } = node;
  if (opType === 'Conv' || opType === 'FusedConv' || opType === 'NchwcConv') {
    const [x, w] = inputShapes;
    if (x === undefined || w === undefined || w.length !== 4) return opType;
    const [, perGroup, kh, kw] = w as [number, number, number, number];
    // NCHWc inputs are blocked [N, C/8…, H, W, 8…]: the channel count is the block count × block.
    const channels = x.length === 5 ? x[1]! * x[4]! : x[1]!;
    const groups = Math.round(channels / perGroup);
    const size = `${kh}×${kw}`;
    if (groups === 1) return `Conv ${size}`;
    if (perGroup === 1) return `depthwise Conv ${size}`;
    return `grouped Conv ${size}`;
  }
  if (opType === 'Gemm' || opType === 'FusedMatMul') return 'MatMul';
  return opType;
}

interface ClassRow {
  readonly name: string;
  readonly count: number;
  readonly nodeUs: number;
  readonly wasmUs: number;
}

/** Both profiles' kernel time per class, largest wasm time first. */
export function compareProfiles(native: ModelProfile, wasm: ModelProfile): ClassRow[] {
  const rows = new Map<string, { name: string; count: number; nodeUs: number; wasmUs: number }>();
  const add = (profile: ModelProfile, key: 'nodeUs' | 'wasmUs'): void => {
    for (const node of profile.nodes) {
      const name = kernelClass(node);
      const row = rows.get(name) ?? { name, count: 0, nodeUs: 0, wasmUs: 0 };
      if (key === 'wasmUs') row.count += 1;
      row[key] += node.durationUs / profile.runs;
      rows.set(name, row);
    }
  };
  add(native, 'nodeUs');
  add(wasm, 'wasmUs');
  return [...rows.values()].sort((a, b) => b.wasmUs - a.wasmUs);
}

function randomTensor(shape: readonly number[], seed: number, scale = 1): HostTensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: createRng(seed).fillUniform(new Float32Array(n), -scale, scale) };
}

/**
 * The MatMul and Conv peaks on onnxruntime-web's wasm backend, 1 thread, timed in a child process:
 * onnxruntime-web is one instance per process whose thread count the first session fixes, and
 * other scenarios in the same bench run may have started it with another.
 */
async function wasmPeak(options: PeakOptions): Promise<{
  matmulGflops: { best: number };
  convGflops: { best: number };
}> {
  const samples = options.compare?.samples ?? 3;
  const best = async (peak: ReturnType<typeof peakModels>[number]): Promise<number> => {
    const { runMs } = await profileWasmModel(peak.model, { x: peak.input }, { threads: 1, runs: samples });
    return peak.flop / 1e9 / (Math.min(...runMs) / 1000);
  };
  const [matmul, conv] = peakModels(options);
  return { matmulGflops: { best: await best(matmul) }, convGflops: { best: await best(conv) } };
}

export const wasmOps: Scenario = {
  name: 'wasm-ops',
  title:
    'Where wasm time goes: onnxruntime-web wasm vs onnxruntime-node per kernel class (full-width f32c32-in)',
  description:
    "Full-width dc-ae-f32c32-in-1.0 with random weights (the bench writer) at `--sizes`' first size (default " +
    `${FULL_SIZE}²; quick: the tiny widths at ${QUICK_SIZE}²), batch 1, float32: the encoder and decoder graphs dcae ` +
    "builds, each profiled with onnxruntime's profiler on onnxruntime-node's CPU provider and on onnxruntime-web's " +
    'wasm backend (a child Node process running the wasm build, whose trace comes on stdout), both at 1 thread, ' +
    'after one warm-up run. Kernel times are grouped by class (convolutions by kernel size and grouping, the rest ' +
    'by op type after graph optimisation) and compared: the wasm ÷ node ratio per class shows which ops fall ' +
    "furthest behind, the share shows which dominate. Each runtime's MatMul and 3×3 Conv peak (matmul-peak's " +
    'graphs, 1 thread; wasm: the best of the profiled runs in the child process) is measured in the same run: ' +
    'the ratio of the peaks is the gap no graph change can close. Then the same model in int8 (calibrated on the ' +
    "repository's calibration photos) on both runtimes: how close int8 in wasm comes to float32 on onnxruntime-node.",
  async run(context) {
    const model = await benchModel(context.cacheDir, ARCH, {
      tiny: context.quick,
      log: (m) => context.log(m),
    });
    const side = context.quick ? QUICK_SIZE : (context.matrix.sizes?.[0] ?? FULL_SIZE);
    if (side % model.f !== 0)
      throw new Error(`--sizes ${side}: ${model.label} needs a multiple of ${model.f}`);
    const runs = context.quick ? 1 : Math.max(1, Math.min(3, context.sampling.samples));
    const node = createNodeRuntime({ threads: 1 });
    const ae = await loadAutoencoder(model.folder, { runtime: node, config: model.config });
    const series: Series[] = [];
    const figures: Figure[] = [];
    const notes: string[] = [];
    const ratios: { of: string; to: string }[] = [];
    try {
      context.log('peaks: MatMul and 3×3 Conv on each runtime, 1 thread');
      const peakOptions = context.quick
        ? { matmulSize: 256, convChannels: 32, convSpatial: 32, compare: { warmup: 1, samples: 2 } }
        : { compare: { warmup: 1, samples: 3 } };
      const peaks = {
        node: await measurePeakGflops(node, peakOptions),
        wasm: await wasmPeak(peakOptions),
      };
      for (const [label, peak] of [
        [NODE, peaks.node],
        [WASM, peaks.wasm],
      ] as const) {
        figures.push(
          { name: `${label}: MatMul peak (best)`, value: peak.matmulGflops.best, unit: 'GFLOP/s' },
          { name: `${label}: Conv 3×3 peak (best)`, value: peak.convGflops.best, unit: 'GFLOP/s' },
        );
      }
      figures.push(
        {
          name: 'MatMul peak, node ÷ wasm',
          value: peaks.node.matmulGflops.best / peaks.wasm.matmulGflops.best,
          unit: '×',
        },
        {
          name: 'Conv 3×3 peak, node ÷ wasm',
          value: peaks.node.convGflops.best / peaks.wasm.convGflops.best,
          unit: '×',
        },
      );

      const latentSide = side / model.f;
      const inputs = {
        encoder: { [ENCODER_IO.input]: randomTensor([1, 3, side, side], 5) },
        decoder: {
          [DECODER_IO.input]: randomTensor([1, model.latentChannels, latentSide, latentSide], 6, 2),
        },
      };
      const feedsOf = (part: 'encoder' | 'decoder'): Record<string, HostTensor> => inputs[part];
      /** A part's graph as profilers take it: bytes, and its external weights in the model folder. */
      const partModel = async (from: typeof ae, part: 'encoder' | 'decoder') => {
        const graph = await from.buildGraph(part);
        const externalData = externalLocations(graph).map((location) => ({
          location,
          data: join(model.folder, location),
        }));
        return { bytes: serializeModel(graph), externalData };
      };
      for (const part of ['encoder', 'decoder'] as const) {
        const { bytes, externalData } = await partModel(ae, part);
        const feeds = feedsOf(part);
        context.log(`${part}: profiling on onnxruntime-node (1 thread, ${runs} run(s) after a warm-up)`);
        const native = await profileModel(bytes, feeds, { threads: 1, runs, externalData });
        context.log(`${part}: profiling on onnxruntime-web wasm (1 thread, ${runs} run(s) after a warm-up)`);
        const wasm = await profileWasmModel(bytes, feeds, { threads: 1, runs, externalData });
        const [nodeName, wasmName] = [`${part} ${side}² ${NODE}`, `${part} ${side}² ${WASM}`];
        series.push(summarize(nodeName, native.runMs), summarize(wasmName, wasm.runMs));
        ratios.push({ of: wasmName, to: nodeName });
        const rows = compareProfiles(native, wasm);
        const wasmTotal = wasm.totalUs / wasm.runs;
        figures.push({
          name: `${part}: kernel time, wasm ÷ node (all kernels)`,
          value: wasmTotal / (native.totalUs / native.runs),
          unit: '×',
        });
        for (const row of rows.slice(0, 10)) {
          figures.push(
            {
              name: `${part}: ${row.name} ×${row.count}, share of wasm kernel time`,
              value: (100 * row.wasmUs) / wasmTotal,
              unit: '%',
            },
            {
              name: `${part}: ${row.name}, wasm ÷ node kernel time`,
              value: row.nodeUs > 0 ? row.wasmUs / row.nodeUs : Number.NaN,
              unit: '×',
            },
          );
        }
        notes.push(
          `${part}, kernel ms per run (node → wasm): ` +
            rows
              .slice(0, 12)
              .map(
                (r) =>
                  `${r.name} ×${r.count} ${(r.nodeUs / 1000).toFixed(1)} → ${(r.wasmUs / 1000).toFixed(1)}`,
              )
              .join('; '),
        );
      }
      // int8 (calibrated QDQ, as `--dtype int8` runs it): the wasm build has QLinearConv too.
      context.log('int8: calibrating on the calibration photos, then profiling both runtimes');
      const calibration = await photos('calibration', side);
      const spec = await calibrateAutoencoder(directoryModelFiles(model.folder), {
        runtime: node,
        config: model.config,
        images: calibration.images,
        imageNames: calibration.files,
      });
      const int8 = await loadAutoencoder(model.folder, {
        runtime: node,
        config: model.config,
        dtype: 'int8',
        quantization: spec,
      });
      try {
        for (const part of ['encoder', 'decoder'] as const) {
          const { bytes, externalData } = await partModel(int8, part);
          const native = await profileModel(bytes, feedsOf(part), { threads: 1, runs, externalData });
          const wasm = await profileWasmModel(bytes, feedsOf(part), { threads: 1, runs, externalData });
          const [nodeName, wasmName] = [`${part} ${side}² ${NODE} int8`, `${part} ${side}² ${WASM} int8`];
          series.push(summarize(nodeName, native.runMs), summarize(wasmName, wasm.runMs));
          ratios.push(
            { of: wasmName, to: `${part} ${side}² ${NODE}` },
            { of: `${part} ${side}² ${WASM}`, to: wasmName },
            { of: `${part} ${side}² ${NODE}`, to: nodeName },
          );
        }
      } finally {
        await int8.dispose();
      }
      notes.push(
        'int8 rows: the same model calibrated on fixtures/photos/calibration-* (`calibrateAutoencoder`) and run as ' +
          "dcae's QDQ graph (QLinearConv on both runtimes). Ratios: wasm int8 ÷ node fp32 (how close the browser " +
          'gets), wasm fp32 ÷ wasm int8 and node fp32 ÷ node int8 (what int8 gains on each).',
      );
      notes.push(
        'onnxruntime-node rewrites many Convs into its NCHWc layout (op NchwcConv, AVX-512/AVX2 blocked kernels) ' +
          'and fuses activations into them; the wasm build has no NCHWc kernels and runs Conv as im2col + ' +
          "128-bit SIMD GEMM (or its depthwise path). Classes are counted after each runtime's graph " +
          "optimisation, so a class can have a different node count on the two sides; the count shown is wasm's.",
      );
      return {
        params: {
          model: model.label,
          size: `${side}×${side}`,
          threads: 1,
          runs,
          node: node.name,
          web: 'onnxruntime-web wasm (child process)',
        },
        series,
        ratios,
        figures,
        notes,
      };
    } finally {
      await ae.dispose();
      await node.dispose();
    }
  },
};
