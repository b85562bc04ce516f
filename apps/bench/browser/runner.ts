/**
 * The page side of the `runtimes` scenario's Chromium cases: loads a model folder served by the
 * bench over HTTP into memory, runs it through `createWebRuntime()` and times encode and decode
 * inside the page, so the round trip from Node is not in the figures. Bundled for the browser by
 * tsup (`dist/browser/runner.js`); `onnxruntime-web` stays external and the page maps it to the
 * package's own files with an import map.
 */
import type { Autoencoder, DcAeConfig, QuantizationSpec, RunPlan } from '@dcae/autoencoder';
import { loadAutoencoder, memoryModelFiles } from '@dcae/autoencoder';
import type { HostTensor } from '@dcae/core';
import type { WebDevice, WebGpuAdapterInfo, WebRuntime } from '@dcae/runtime-adapters/web';
import { createWebRuntime, probeWebDevices } from '@dcae/runtime-adapters/web';

/** What Node asks the page to set up. Every URL is on the page's own origin. */
export interface RunnerSpec {
  readonly device: WebDevice;
  readonly threads: number;
  /** onnxruntime-web's files (`ort-wasm-simd-threaded.jsep.{mjs,wasm}`), a folder URL ending in `/`. */
  readonly wasmPaths: string;
  /** The model folder's URL (ending in `/`) and the files to fetch from it. */
  readonly modelUrl: string;
  readonly modelFiles: readonly string[];
  /** A DC-AE architecture for a folder without config.json (the bench's random-weight models). */
  readonly config?: DcAeConfig;
  /**
   * `'never'` (the tiny fixture: always whole) or `'auto'`, the library's default, which on wasm
   * tiles above `wasmMemoryBudget` (see docs/benchmarks.md, full-size models in the browser).
   */
  readonly tiling: 'never' | 'auto';
  /** int8: the calibration (`calibrateAutoencoder`) the page's model quantizes with; float32 when absent. */
  readonly quantization?: QuantizationSpec;
  /** Raw little-endian float32 tensors: the encode input and its reference latent, the decode reference. */
  readonly image: TensorRef;
  readonly latent: TensorRef;
  readonly decoded: TensorRef;
}

export interface TensorRef {
  readonly url: string;
  readonly shape: readonly number[];
}

/** What the page found, for the report. */
export interface RunnerInfo {
  readonly userAgent: string;
  readonly crossOriginIsolated: boolean;
  readonly device: WebDevice;
  readonly threads: number | undefined;
  readonly threadsReason: string;
  readonly gpu: WebGpuAdapterInfo | undefined;
  /** Fetch, load, first encode and first decode (sessions included). */
  readonly setupMs: number;
  /** Largest |page output − Node reference| of the first encode and decode. */
  readonly maxDiff: { readonly encode: number; readonly decode: number };
  /** How the library runs this page's encode and decode (tiles or whole, estimated bytes). */
  readonly plans: { readonly encode: RunPlan; readonly decode: RunPlan };
}

/** The page's memory as the page itself sees it. */
export interface RunnerMemory {
  /**
   * The largest WebAssembly memory the page created (onnxruntime-web's heap: weights, activations
   * and arena), in bytes. A wasm memory only grows, so this is the heap's peak so far.
   */
  readonly wasmHeapBytes: number | undefined;
  /** `performance.measureUserAgentSpecificMemory()` (page and its workers), when it answers in time. */
  readonly userAgentBytes: number | undefined;
}

/** The page's WebGPU adapter, if any, and what `probeWebDevices` says about it. */
export interface WebGpuProbe {
  readonly gpu: WebGpuAdapterInfo | undefined;
  readonly reason: string;
}

export interface Runner {
  /** Asks for a WebGPU adapter; no onnxruntime code runs. */
  probe(): Promise<WebGpuProbe>;
  setup(spec: RunnerSpec): Promise<RunnerInfo>;
  /** One encode or decode of the spec's input; resolves to its milliseconds. */
  run(operation: 'encode' | 'decode'): Promise<number>;
  memory(): Promise<RunnerMemory>;
  dispose(): Promise<void>;
}

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`GET ${url}: ${response.status} ${response.statusText}`);
  return new Uint8Array(await response.arrayBuffer());
}

async function fetchTensor(ref: TensorRef): Promise<HostTensor<'float32'>> {
  const bytes = await fetchBytes(ref.url);
  const data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  const numel = ref.shape.reduce((a, b) => a * b, 1);
  if (data.length !== numel) throw new Error(`${ref.url}: ${data.length} values, expected ${numel}`);
  return { dtype: 'float32', shape: ref.shape, data };
}

function maxAbsDiff(a: HostTensor<'float32'>, b: HostTensor<'float32'>): number {
  if (a.shape.join() !== b.shape.join())
    throw new Error(`output ${a.shape.join('×')}, expected ${b.shape.join('×')}`);
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Math.abs(a.data[i]! - b.data[i]!));
  if (!Number.isFinite(max)) throw new Error('output has non-finite values');
  return max;
}

/**
 * Every WebAssembly.Memory created in this page (onnxruntime-web's threaded build creates its heap
 * from JS), so the page can report the heap size: onnxruntime-web does not expose its module.
 */
const memories: WebAssembly.Memory[] = [];
const NativeMemory = WebAssembly.Memory;
WebAssembly.Memory = new Proxy(NativeMemory, {
  construct(target, args: [WebAssembly.MemoryDescriptor]) {
    const memory = new target(...args);
    memories.push(memory);
    return memory;
  },
});

const MEASURE_MEMORY_TIMEOUT_MS = 30_000;

async function userAgentBytes(): Promise<number | undefined> {
  const measure = (
    performance as { measureUserAgentSpecificMemory?: () => Promise<{ bytes: number }> }
  ).measureUserAgentSpecificMemory?.bind(performance);
  if (measure === undefined || !crossOriginIsolated) return undefined;
  const timeout = new Promise<undefined>((resolve) => setTimeout(resolve, MEASURE_MEMORY_TIMEOUT_MS));
  const result = await Promise.race([measure().catch(() => undefined), timeout]);
  return result?.bytes;
}

let state:
  | { runtime: WebRuntime; model: Autoencoder; image: HostTensor<'float32'>; latent: HostTensor<'float32'> }
  | undefined;

const runner: Runner = {
  async probe() {
    const { statuses, gpu } = await probeWebDevices();
    return { gpu, reason: statuses.find((s) => s.device === 'webgpu')?.reason ?? '' };
  },
  async setup(spec) {
    const t0 = performance.now();
    const files: Record<string, Uint8Array> = {};
    for (const file of spec.modelFiles) files[file] = await fetchBytes(new URL(file, spec.modelUrl).href);
    const [image, latent, decoded] = await Promise.all([
      fetchTensor(spec.image),
      fetchTensor(spec.latent),
      fetchTensor(spec.decoded),
    ]);
    const runtime = await createWebRuntime({
      devices: [spec.device],
      threads: spec.threads,
      wasmPaths: spec.wasmPaths,
    });
    const model = await loadAutoencoder(memoryModelFiles(spec.modelUrl, files), {
      runtime,
      tiling: spec.tiling,
      config: spec.config,
      ...(spec.quantization === undefined ? {} : { dtype: 'int8' as const, quantization: spec.quantization }),
    });
    state = { runtime, model, image, latent };
    const maxDiff = {
      encode: maxAbsDiff(await model.encode(image), latent),
      decode: maxAbsDiff(await model.decode(latent), decoded),
    };
    return {
      userAgent: navigator.userAgent,
      crossOriginIsolated,
      device: spec.device,
      threads: runtime.threads.count,
      threadsReason: runtime.threads.reason,
      gpu: runtime.gpu,
      setupMs: performance.now() - t0,
      maxDiff,
      plans: { encode: model.planRun('encode', image.shape), decode: model.planRun('decode', latent.shape) },
    };
  },
  async run(operation) {
    if (state === undefined) throw new Error('setup() first');
    const start = performance.now();
    if (operation === 'encode') await state.model.encode(state.image);
    else await state.model.decode(state.latent);
    return performance.now() - start;
  },
  async memory() {
    const sizes = memories.map((m) => m.buffer.byteLength);
    return {
      wasmHeapBytes: sizes.length > 0 ? Math.max(...sizes) : undefined,
      userAgentBytes: await userAgentBytes(),
    };
  },
  async dispose() {
    await state?.model.dispose();
    await state?.runtime.dispose();
    state = undefined;
  },
};

(globalThis as { dcaeBench?: Runner }).dcaeBench = runner;
