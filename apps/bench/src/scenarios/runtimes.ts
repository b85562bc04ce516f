import { createRng } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import type { RunnerInfo, WebGpuProbe } from '../../browser/runner.js';
import type { ChromiumHost, ChromiumPage, TensorSet } from '../chromium.js';
import { launchChromium, messageOf } from '../chromium.js';
import type { BenchCase, Figure, Scenario, Skipped } from '../scenario.js';
import { fixtureFolder } from './soak.js';

/**
 * The same model and input on every runtime dcae has, side by side in one run: onnxruntime-node
 * (CPU), onnxruntime-web's wasm backend inside Node, and onnxruntime-web in headless Chromium
 * (wasm with 1 and with 2 threads, each in its own page since the thread count is fixed per page,
 * and WebGPU where the browser has an adapter). Every case's time is its own encode or decode
 * call (the Chromium ones are timed inside the page); ratios are against onnxruntime-node.
 */

const MODEL = 'tiny-sana-f32';
const MODEL_FILES = ['config.json', 'diffusion_pytorch_model.safetensors'];
const THREADS = 2;
const NODE = 'ORT-node';
const WEB_NODE = `ORT-web wasm (Node, ${THREADS}T)`;
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
    const [height, width] = context.quick ? QUICK_SIZE : FULL_SIZE;
    const folder = fixtureFolder(MODEL);
    const imageOf = (h: number, w: number): HostTensor<'float32'> => ({
      dtype: 'float32',
      shape: [1, 3, h, w],
      data: createRng(5).fillUniform(new Float32Array(3 * h * w), -1, 1),
    });
    const image = imageOf(height, width);
    const node = createNodeRuntime({ threads: THREADS });
    const web = await createWebRuntime({ devices: ['wasm'], threads: THREADS });
    const load = (runtime: RuntimeV1) => loadAutoencoder(folder, { runtime, tiling: 'never' });
    const models = { node: await load(node), web: await load(web) };
    let host: ChromiumHost | undefined;
    const pages: ChromiumPage[] = [];
    try {
      const latent = await models.node.encode(image);
      const decoded = await models.node.decode(latent);
      const figures: Figure[] = [
        {
          name: `${WEB_NODE}: max abs diff vs ORT-node, latent`,
          value: maxAbsDiff(await models.web.encode(image), latent),
          unit: '',
        },
        {
          name: `${WEB_NODE}: max abs diff vs ORT-node, image`,
          value: maxAbsDiff(await models.web.decode(latent), decoded),
          unit: '',
        },
      ];
      const cases: BenchCase[] = [
        ...both(NODE, { encode: () => models.node.encode(image), decode: () => models.node.decode(latent) }),
        ...both(WEB_NODE, {
          encode: () => models.web.encode(image),
          decode: () => models.web.decode(latent),
        }),
      ];
      const ratios: { of: string; to: string }[] = [];
      const versus = (label: string, reference = NODE): void => {
        for (const op of ['encode', 'decode'])
          ratios.push({ of: `${label} ${op}`, to: `${reference} ${op}` });
      };
      versus(WEB_NODE);
      const skipped: Skipped[] = [];
      const notes: string[] = [];
      const params: Record<string, string | number> = {
        model: MODEL,
        height,
        width,
        threads: THREADS,
        node: node.name,
        web: web.name,
      };
      const skipBoth = (label: string, reason: string): void => {
        for (const op of ['encode', 'decode']) skipped.push({ name: `${label} ${op}`, reason });
      };

      const tensors: Record<string, TensorSet> = { main: { image, latent, decoded } };
      if (!context.quick) {
        // For a fallback WebGPU adapter, which runs only at the quick size.
        const small = imageOf(...QUICK_SIZE);
        const smallLatent = await models.node.encode(small);
        tensors.small = { image: small, latent: smallLatent, decoded: await models.node.decode(smallLatent) };
      }
      const launched = await launchChromium({ modelFolder: folder, modelFiles: MODEL_FILES, tensors });
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
        }
        context.log('WebGPU: asking a page for an adapter');
        const probe = await host.probeWebGpu();
        params.webgpuAdapter = adapterName(probe);
        const plan = webGpuPlan(probe, context.quick);
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
            "shared with other work (and with Chromium's own processes) it can be slower; the tiny model's " +
            'many small operators also leave little to split between threads.',
        );
      if (params.webgpuAdapter?.toString().endsWith('(fallback)'))
        notes.push(
          "The WebGPU adapter is Chromium's SwiftShader fallback adapter: Vulkan emulated on the CPU, so its times " +
            'measure the emulation, not a GPU (onnxruntime-web runs WebGPU on it correctly, ~100× slower than wasm).',
        );
      const series = await context.compare(cases);
      return { params, series, ratios, figures, notes, skipped };
    } finally {
      for (const page of pages) await page.close();
      await host?.close();
      await models.node.dispose();
      await models.web.dispose();
      await node.dispose();
      await web.dispose();
    }
  },
};
