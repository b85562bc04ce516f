import { createRng } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import { calibrateAutoencoder } from '@dcae/autoencoder';
import type { DcAeConfig, QuantizationSpec, RunPlan } from '@dcae/autoencoder';
import { directoryModelFiles } from '@dcae/autoencoder/node';
import type { RunnerInfo, WebGpuProbe } from '../../browser/runner.js';
import type { ChromiumHost, ChromiumPage, TensorSet } from '../chromium.js';
import { launchChromium, messageOf } from '../chromium.js';
import { benchModel } from '../random-weights.js';
import type { BenchCase, Figure, Scenario, ScenarioContext, Skipped } from '../scenario.js';
import { photos } from './int8.js';
import { fixtureFolder } from './soak.js';

/**
 * The same model and input on every runtime dcae has, side by side in one run: onnxruntime-node
 * (CPU), onnxruntime-web's wasm backend inside Node, and onnxruntime-web in headless Chromium
 * (wasm with 1 and with 2 threads, each in its own page since the thread count is fixed per page,
 * and WebGPU where the browser has an adapter). Every case's time is its own encode or decode
 * call (the Chromium ones are timed inside the page); ratios are against onnxruntime-node.
 *
 * With `--arch f32c32-in` the model is the full-width dc-ae-f32c32-in-1.0 with random weights
 * (1.3 GB of float32, the bench's random-weights writer) at `--sizes`' first size (default 256²),
 * on the library's default tiling (`'auto'`: on wasm it tiles above `wasmMemoryBudget`), with the
 * pages' wasm heap and Chromium's RSS recorded (docs/benchmarks.md, full-size models in the browser).
 */

const MODEL = 'tiny-sana-f32';
const MODEL_FILES = ['config.json', 'diffusion_pytorch_model.safetensors'];
/** The full-width architecture `--arch` selects, and its size when `--sizes` gives none. */
const FULL_WIDTH = 'f32c32-in';
const FULL_WIDTH_SIZE = 256;
const MB = 2 ** 20;
/** How often the memory sampler reads RSS during the run (ms). */
const SAMPLE_EVERY_MS = 500;
/**
 * Threads of every in-process onnxruntime-web runtime in the bench: it is one instance per process
 * whose thread count its first session fixes, so scenarios sharing a run must agree on it.
 */
export const WEB_THREADS = 2;
const THREADS = WEB_THREADS;
const NODE = 'ORT-node';
const WEB_NODE = `ORT-web wasm (Node, ${THREADS}T)`;
/** With `--dtype int8`: onnxruntime-node on the float32 model, the reference int8 is measured against. */
const NODE_FP32 = 'ORT-node fp32';
const chromiumWasm = (threads: number): string => `Chromium wasm ${threads}T`;
/** SwiftShader's fallback adapter is Vulkan emulated on the CPU: about 100× slower than wasm. */
const WEBGPU_SOFTWARE = 'Chromium WebGPU on SwiftShader (CPU emulation)';
const WEBGPU_HARDWARE = 'Chromium WebGPU';
/**
 * WebGPU on a fallback adapter runs once per round at the quick size only (96×64 of the tiny
 * model takes seconds there); on a real adapter it runs at the scenario's size like the others.
 */
const QUICK_SIZE: readonly [number, number] = [96, 64];
const FULL_SIZE: readonly [number, number] = [256, 256];

interface Operations {
  encode(): Promise<unknown>;
  decode(): Promise<unknown>;
}

const both = (label: string, ops: Operations): BenchCase[] => [
  { name: `${label} encode`, run: () => ops.encode() },
  { name: `${label} decode`, run: () => ops.decode() },
];

const inPage = (label: string, page: ChromiumPage): BenchCase[] =>
  (['encode', 'decode'] as const).map((operation) => ({
    name: `${label} ${operation}`,
    timesItself: true,
    run: () => page.run(operation),
  }));

const adapterName = ({ gpu }: WebGpuProbe): string =>
  gpu === undefined
    ? 'none'
    : `${[gpu.vendor, gpu.architecture].filter(Boolean).join(' ') || 'unnamed adapter'}${gpu.isFallbackAdapter ? ' (fallback)' : ''}`;

/**
 * Where the WebGPU cases run (the tensor set, and their label), or why they do not: a hardware
 * adapter at the scenario's size; a fallback adapter at the quick size in a full run only.
 */
function webGpuPlan(
  probe: WebGpuProbe,
  quick: boolean,
):
  | { readonly label: string; readonly set: 'main' | 'small' }
  | { readonly label: string; readonly skip: string } {
  if (probe.gpu === undefined) return { label: WEBGPU_HARDWARE, skip: `no WebGPU adapter: ${probe.reason}` };
  const adapter = adapterName(probe);
  if (!probe.gpu.isFallbackAdapter) return { label: `${WEBGPU_HARDWARE} (${adapter})`, set: 'main' };
  if (quick) {
    return {
      label: WEBGPU_SOFTWARE,
      skip:
        `the only adapter is ${adapter}, Vulkan emulated on the CPU: setting its sessions up took 1–3 minutes ` +
        'on the 2-core development VM (shader compilation), too long for --quick; the full run measures it at ' +
        `${QUICK_SIZE.join('×')}`,
    };
  }
  return { label: `${WEBGPU_SOFTWARE} ${QUICK_SIZE.join('×')}`, set: 'small' };
}

const pageFigures = (label: string, info: RunnerInfo): Figure[] => [
  { name: `${label}: page setup (fetch, load, first encode and decode)`, value: info.setupMs, unit: 'ms' },
  { name: `${label}: max abs diff vs ORT-node, latent`, value: info.maxDiff.encode, unit: '' },
  { name: `${label}: max abs diff vs ORT-node, image`, value: info.maxDiff.decode, unit: '' },
];

const planText = (plan: RunPlan): string =>
  plan.tiles === undefined
    ? `whole (estimate ${(plan.estimatedBytes / MB).toFixed(0)} MB)`
    : `${plan.tiles.rows}×${plan.tiles.columns} tiles of ${plan.tiles.tileSize}² (estimate ${(plan.estimatedBytes / MB).toFixed(0)} MB per tile)`;

/**
 * Peak resident memory while the scenario runs: this Node process (onnxruntime-node's sessions)
 * and every Chromium process (`ChromiumHost.rssBytes`), read every SAMPLE_EVERY_MS.
 */
function memorySampler(host: () => ChromiumHost | undefined) {
  let node = 0;
  let chromium = 0;
  let busy = false;
  const sample = async (): Promise<void> => {
    if (busy) return;
    busy = true;
    try {
      node = Math.max(node, process.memoryUsage().rss);
      const bytes = await host()?.rssBytes();
      if (bytes !== undefined) chromium = Math.max(chromium, bytes);
    } finally {
      busy = false;
    }
  };
  const timer = setInterval(() => void sample(), SAMPLE_EVERY_MS);
  return {
    /** Peaks since the last reset (after a last sample), and starts again from zero. */
    async take(): Promise<{ node: number; chromium: number }> {
      while (busy) await new Promise((resolve) => setTimeout(resolve, 20));
      await sample();
      const peaks = { node, chromium };
      node = 0;
      chromium = 0;
      return peaks;
    },
    stop: () => clearInterval(timer),
  };
}

/** The model the scenario runs: the tiny fixture, or the full-width f32c32-in with random weights. */
async function pickModel(context: ScenarioContext): Promise<{
  label: string;
  folder: string;
  files: string[];
  config: DcAeConfig | undefined;
  fullWidth: boolean;
  size: readonly [number, number];
  weightBytes: number | undefined;
}> {
  if (!(context.matrix.architectures?.includes(FULL_WIDTH) ?? false)) {
    const folder = fixtureFolder(MODEL);
    const size = context.quick ? QUICK_SIZE : FULL_SIZE;
    return {
      label: MODEL,
      folder,
      files: MODEL_FILES,
      config: undefined,
      fullWidth: false,
      size,
      weightBytes: undefined,
    };
  }
  const model = await benchModel(context.cacheDir, FULL_WIDTH, {
    tiny: context.quick,
    log: (m) => context.log(m),
  });
  const side = context.quick ? undefined : (context.matrix.sizes?.[0] ?? FULL_WIDTH_SIZE);
  if (side !== undefined && side % model.f !== 0)
    throw new Error(`--sizes ${side}: ${model.label} needs a multiple of ${model.f}`);
  return {
    label: `${model.label} (random weights)`,
    folder: model.folder,
    files: ['diffusion_pytorch_model.safetensors'],
    config: model.config,
    fullWidth: true,
    size: side === undefined ? QUICK_SIZE : [side, side],
    weightBytes: model.weightBytes,
  };
}

function maxAbsDiff(a: HostTensor<'float32'>, b: HostTensor<'float32'>): number {
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  return max;
}

export const runtimes: Scenario = {
  name: 'runtimes',
  title:
    'Same model, same input: onnxruntime-node vs onnxruntime-web (Node) vs Chromium (wasm 1/2 threads, WebGPU)',
  description:
    `Encodes and decodes with the ${MODEL} fixture (the sana architecture's real graph structure at tiny widths) ` +
    `at 256² (quick: 96×64) through \`createNodeRuntime({ threads: ${THREADS} })\` (CPU), \`createWebRuntime({ devices: ` +
    `["wasm"], threads: ${THREADS} })\` in the same Node process, and \`createWebRuntime\` in headless Chromium ` +
    '(playwright-core, the system Chromium or CHROMIUM_PATH) on a cross-origin isolated page served from ' +
    '127.0.0.1 (COOP/COEP), with wasm at 1 and at 2 threads (one page each) and WebGPU when `navigator.gpu` ' +
    'gives an adapter. Every runtime gets the same checkpoint file and the same input bytes; the decode input ' +
    "is onnxruntime-node's latent. Chromium times its calls inside the page. Cases run interleaved in rounds; " +
    'ratios are each case ÷ ORT-node (median times). A fallback (software) WebGPU adapter runs only at 96×64, ' +
    'against an ORT-node case at that size.',
  async run(context) {
    const picked = await pickModel(context);
    const { folder, fullWidth } = picked;
    const [height, width] = picked.size;
    const imageOf = (h: number, w: number): HostTensor<'float32'> => ({
      dtype: 'float32',
      shape: [1, 3, h, w],
      data: createRng(5).fillUniform(new Float32Array(3 * h * w), -1, 1),
    });
    const image = imageOf(height, width);
    const node = createNodeRuntime({ threads: THREADS });
    const web = await createWebRuntime({ devices: ['wasm'], threads: THREADS });
    // The tiny fixture always runs whole; the full-width model on the library's default ('auto').
    const tiling = fullWidth ? 'auto' : 'never';
    const int8 = context.matrix.dtypes?.includes('int8') ?? false;
    if (int8 && !fullWidth)
      throw new Error('--dtype int8 needs --arch f32c32-in (the tiny fixture runs float32 only)');
    let quantization: QuantizationSpec | undefined;
    if (int8) {
      // Calibrated once, in Node, on the repository's calibration photos; every runtime uses this spec.
      context.log('int8: calibrating on fixtures/photos/calibration-*');
      const calibration = await photos('calibration', context.quick ? 64 : 256);
      quantization = await calibrateAutoencoder(directoryModelFiles(folder), {
        runtime: node,
        config: picked.config,
        images: calibration.images,
        imageNames: calibration.files,
      });
    }
    const load = (runtime: RuntimeV1, dtype: 'fp32' | 'int8' = int8 ? 'int8' : 'fp32') =>
      loadAutoencoder(folder, {
        runtime,
        config: picked.config,
        tiling,
        ...(dtype === 'int8' ? { dtype, quantization } : {}),
      });
    let host: ChromiumHost | undefined;
    const sampler = memorySampler(() => host);
    const models = {
      node: await load(node),
      web: fullWidth ? undefined : await load(web),
      nodeFp32: int8 ? await load(node, 'fp32') : undefined,
    };
    const pages: ChromiumPage[] = [];
    try {
      const latent = await models.node.encode(image);
      const decoded = await models.node.decode(latent);
      const figures: Figure[] = [];
      const cases: BenchCase[] = [
        ...both(NODE, { encode: () => models.node.encode(image), decode: () => models.node.decode(latent) }),
      ];
      const ratios: { of: string; to: string }[] = [];
      const nodeFp32 = models.nodeFp32;
      const versus = (label: string, reference = NODE): void => {
        for (const op of ['encode', 'decode']) {
          ratios.push({ of: `${label} ${op}`, to: `${reference} ${op}` });
          if (nodeFp32 !== undefined && reference === NODE)
            ratios.push({ of: `${label} ${op}`, to: `${NODE_FP32} ${op}` });
        }
      };
      const skipped: Skipped[] = [];
      const notes: string[] = [];
      if (nodeFp32 !== undefined) {
        notes.push(
          `--dtype int8: "${NODE}" and every Chromium case run dcae's int8 (QDQ) model, calibrated on ` +
            `fixtures/photos/calibration-*; "${NODE_FP32}" is the float32 model on onnxruntime-node, the ` +
            'second reference of the ratios.',
        );
        const fp32Latent = await nodeFp32.encode(image);
        cases.push(
          ...both(NODE_FP32, {
            encode: () => nodeFp32.encode(image),
            decode: () => nodeFp32.decode(fp32Latent),
          }),
        );
      }
      const params: Record<string, string | number> = {
        model: picked.label,
        height,
        width,
        threads: THREADS,
        node: node.name,
        web: web.name,
        dtype: int8 ? 'int8 (every runtime; ORT-node fp32 as a second reference)' : 'fp32',
      };
      const skipBoth = (label: string, reason: string): void => {
        for (const op of ['encode', 'decode']) skipped.push({ name: `${label} ${op}`, reason });
      };
      const webModel = models.web;
      if (webModel === undefined) {
        skipBoth(
          WEB_NODE,
          'full-width mode (--arch f32c32-in): a second wasm heap with the whole model in the bench process; the Chromium pages run the same wasm backend',
        );
      } else {
        figures.push(
          {
            name: `${WEB_NODE}: max abs diff vs ORT-node, latent`,
            value: maxAbsDiff(await webModel.encode(image), latent),
            unit: '',
          },
          {
            name: `${WEB_NODE}: max abs diff vs ORT-node, image`,
            value: maxAbsDiff(await webModel.decode(latent), decoded),
            unit: '',
          },
        );
        cases.push(
          ...both(WEB_NODE, { encode: () => webModel.encode(image), decode: () => webModel.decode(latent) }),
        );
        versus(WEB_NODE);
      }
      if (fullWidth) {
        params.weightsMB = Math.round((picked.weightBytes ?? 0) / MB);
        params.tiling = tiling;
        params.nodeEncodePlan = planText(models.node.planRun('encode', image.shape));
        params.nodeDecodePlan = planText(models.node.planRun('decode', latent.shape));
        figures.push({
          name: `${NODE}: peak RSS of the bench process (load, first encode and decode)`,
          value: (await sampler.take()).node / MB,
          unit: 'MB',
        });
      }

      const tensors: Record<string, TensorSet> = { main: { image, latent, decoded } };
      if (!context.quick && !fullWidth) {
        // For a fallback WebGPU adapter, which runs only at the quick size.
        const small = imageOf(...QUICK_SIZE);
        const smallLatent = await models.node.encode(small);
        tensors.small = { image: small, latent: smallLatent, decoded: await models.node.decode(smallLatent) };
      }
      const launched = await launchChromium({
        modelFolder: folder,
        modelFiles: picked.files,
        config: picked.config,
        tiling,
        tensors,
        ...(quantization === undefined ? {} : { quantization }),
      });
      if ('skipped' in launched) {
        params.chromium = 'skipped';
        for (const threads of [1, 2]) skipBoth(chromiumWasm(threads), launched.skipped);
        skipBoth('Chromium WebGPU', launched.skipped);
      } else {
        host = launched;
        params.chromium = host.version;
        context.log(`${host.version}: opening a page per configuration`);
        for (const threads of [1, 2]) {
          const label = chromiumWasm(threads);
          const page = await host.open('wasm', threads, 'main');
          pages.push(page);
          const { info } = page;
          if (info.threads !== threads)
            notes.push(
              `${label}: onnxruntime-web runs ${String(info.threads)} thread(s): ${info.threadsReason}`,
            );
          cases.push(...inPage(label, page));
          versus(label);
          figures.push(...pageFigures(label, info));
          params.crossOriginIsolated = String(info.crossOriginIsolated);
          if (fullWidth) {
            const memory = await page.memory();
            const peaks = await sampler.take();
            params[`${label} encode plan`] = planText(info.plans.encode);
            params[`${label} decode plan`] = planText(info.plans.decode);
            figures.push({
              name: `${label}: peak Chromium PSS, all processes (page setup, pages before it still open)`,
              value: peaks.chromium / MB,
              unit: 'MB',
            });
            if (memory.wasmHeapBytes !== undefined)
              figures.push({
                name: `${label}: wasm heap after setup (first encode and decode)`,
                value: memory.wasmHeapBytes / MB,
                unit: 'MB',
              });
            if (memory.userAgentBytes !== undefined)
              figures.push({
                name: `${label}: measureUserAgentSpecificMemory after setup`,
                value: memory.userAgentBytes / MB,
                unit: 'MB',
              });
          }
        }
        context.log('WebGPU: asking a page for an adapter');
        const probe = await host.probeWebGpu();
        params.webgpuAdapter = adapterName(probe);
        const plan: ReturnType<typeof webGpuPlan> =
          fullWidth && probe.gpu?.isFallbackAdapter === true
            ? {
                label: WEBGPU_SOFTWARE,
                skip: 'full-width mode (--arch f32c32-in) on a fallback adapter (Vulkan emulated on the CPU, ~100× slower than wasm)',
              }
            : webGpuPlan(probe, context.quick);
        if ('skip' in plan) skipBoth(plan.label, plan.skip);
        else {
          let reference = NODE;
          if (plan.set === 'small') {
            const { image: small, latent: smallLatent } = tensors.small!;
            reference = `${NODE} ${QUICK_SIZE.join('×')}`;
            cases.push(
              ...both(reference, {
                encode: () => models.node.encode(small),
                decode: () => models.node.decode(smallLatent),
              }),
            );
          }
          context.log(`WebGPU: setting up ${plan.label}`);
          try {
            const gpuPage = await host.open('webgpu', 1, plan.set);
            pages.push(gpuPage);
            cases.push(...inPage(plan.label, gpuPage));
            versus(plan.label, reference);
            figures.push(...pageFigures(plan.label, gpuPage.info));
          } catch (error) {
            skipBoth(plan.label, `the WebGPU page failed: ${messageOf(error).split('\n')[0]}`);
          }
        }
      }

      if (host !== undefined)
        notes.push(
          'Chromium wasm 2T against 1T: the second thread only helps when a core is free. On a 2-core machine ' +
            "shared with other work (and with Chromium's own processes) it can be slower" +
            (fullWidth
              ? '.'
              : "; the tiny model's many small operators also leave little to split between threads."),
        );
      if (params.webgpuAdapter?.toString().endsWith('(fallback)'))
        notes.push(
          "The WebGPU adapter is Chromium's SwiftShader fallback adapter: Vulkan emulated on the CPU, so its times " +
            'measure the emulation, not a GPU (onnxruntime-web runs WebGPU on it correctly, ~100× slower than wasm).',
        );
      const series = await context.compare(cases);
      if (fullWidth) {
        const peaks = await sampler.take();
        figures.push(
          {
            name: 'peak Chromium PSS, all processes (measured rounds)',
            value: peaks.chromium / MB,
            unit: 'MB',
          },
          {
            name: `${NODE}: peak RSS of the bench process (measured rounds)`,
            value: peaks.node / MB,
            unit: 'MB',
          },
        );
        for (const page of pages) {
          const { wasmHeapBytes } = await page.memory();
          if (wasmHeapBytes !== undefined)
            figures.push({
              name: `${page.info.device} ${page.info.threads ?? '?'}T: wasm heap after the measured rounds`,
              value: wasmHeapBytes / MB,
              unit: 'MB',
            });
        }
        notes.push(
          "The wasm heap is the largest WebAssembly.Memory the page created (onnxruntime-web's heap; a wasm memory " +
            'never shrinks, so it is the peak so far). Chromium PSS sums the proportional set size of every Chromium process (browser, renderers, ' +
            'GPU, utility; shared pages split between them); the pages also hold the fetched checkpoint bytes.',
        );
      }
      return { params, series, ratios, figures, notes, skipped };
    } finally {
      sampler.stop();
      for (const page of pages) await page.close();
      await host?.close();
      await models.node.dispose();
      await models.web?.dispose();
      await models.nodeFp32?.dispose();
      await node.dispose();
      await web.dispose();
    }
  },
};
