/**
 * What onnxruntime-web can use in this JavaScript environment: a WebGPU adapter (and whether it
 * has `shader-f16`), WebNN, and WebAssembly threads (which need cross-origin isolation in
 * browsers). Everything here is feature detection on globals; no onnxruntime code runs.
 */

/** Devices of the web adapter, best first. */
export type WebDevice = 'webgpu' | 'webnn' | 'wasm';
export const WEB_DEVICES: readonly WebDevice[] = ['webgpu', 'webnn', 'wasm'];

/** The WebGPU adapter found, as far as dcae cares. */
export interface WebGpuAdapterInfo {
  readonly vendor: string;
  readonly architecture: string;
  /** A software or otherwise limited adapter (Chromium's SwiftShader is one). */
  readonly isFallbackAdapter: boolean;
  /** float16 arithmetic in shaders; without it float16 models give wrong numbers on WebGPU. */
  readonly shaderF16: boolean;
}

export interface WebDeviceStatus {
  readonly device: WebDevice;
  readonly available: boolean;
  /** Whether `devices: 'auto'` tries it (false for a fallback WebGPU adapter, ~100× slower than wasm). */
  readonly auto: boolean;
  readonly reason: string;
}

export interface WebDeviceProbe {
  readonly statuses: readonly WebDeviceStatus[];
  readonly gpu: WebGpuAdapterInfo | undefined;
}

interface GpuAdapterLike {
  readonly features: { has(feature: string): boolean };
  readonly info?: { vendor?: string; architecture?: string; isFallbackAdapter?: boolean };
  readonly isFallbackAdapter?: boolean;
}

interface NavigatorLike {
  readonly gpu?: { requestAdapter(): Promise<GpuAdapterLike | null> };
  readonly ml?: unknown;
  readonly hardwareConcurrency?: number;
}

function navigatorLike(): NavigatorLike | undefined {
  return (globalThis as { navigator?: NavigatorLike }).navigator;
}

/**
 * Checks WebGPU (asks for an adapter, waiting at most `timeoutMs`), WebNN and wasm. With `proxy`,
 * onnxruntime-web's proxy worker runs only wasm, so WebGPU and WebNN are unavailable.
 */
export async function probeWebDevices(
  options: { timeoutMs?: number; proxy?: boolean } = {},
): Promise<WebDeviceProbe> {
  const { timeoutMs = 10_000, proxy = false } = options;
  const { status: webgpu, gpu } = proxy
    ? {
        status: unavailable(
          'webgpu',
          'proxy: true runs onnxruntime-web in its wasm proxy worker, which has no WebGPU.',
        ),
        gpu: undefined,
      }
    : await probeWebGpu(timeoutMs);
  const webnn = proxy
    ? unavailable('webnn', 'proxy: true runs onnxruntime-web in its wasm proxy worker, which has no WebNN.')
    : probeWebNn();
  const wasm: WebDeviceStatus = {
    device: 'wasm',
    available: true,
    auto: true,
    reason: `WebAssembly with SIMD; ${describeThreadSupport()}.`,
  };
  return { statuses: [webgpu, webnn, wasm], gpu };
}

async function probeWebGpu(timeoutMs: number): Promise<{ status: WebDeviceStatus; gpu?: WebGpuAdapterInfo }> {
  const gpuApi = navigatorLike()?.gpu;
  if (gpuApi === undefined) {
    return {
      status: unavailable(
        'webgpu',
        isNode()
          ? 'onnxruntime-web has no WebGPU in Node (use @dcae/runtime-adapters/node for WebGPU there).'
          : 'This browser has no WebGPU (navigator.gpu is missing; it needs a secure context: https or localhost).',
      ),
    };
  }
  let adapter: GpuAdapterLike | null;
  try {
    adapter = await withTimeout(gpuApi.requestAdapter(), timeoutMs, 'navigator.gpu.requestAdapter()');
  } catch (error) {
    return { status: unavailable('webgpu', `Asking for a WebGPU adapter failed: ${messageOf(error)}.`) };
  }
  if (adapter === null) {
    return {
      status: unavailable(
        'webgpu',
        'navigator.gpu.requestAdapter() found no adapter (WebGPU is disabled, blocklisted for this GPU, or the browser runs without a GPU; Chromium: --enable-unsafe-webgpu).',
      ),
    };
  }
  const gpu: WebGpuAdapterInfo = {
    vendor: adapter.info?.vendor ?? '',
    architecture: adapter.info?.architecture ?? '',
    isFallbackAdapter: adapter.info?.isFallbackAdapter ?? adapter.isFallbackAdapter ?? false,
    shaderF16: adapter.features.has('shader-f16'),
  };
  const name = [gpu.vendor, gpu.architecture].filter(Boolean).join(' ') || 'unnamed adapter';
  const f16 = gpu.shaderF16 ? 'with shader-f16' : 'without shader-f16 (float16 models are refused)';
  if (gpu.isFallbackAdapter) {
    return {
      gpu,
      status: {
        device: 'webgpu',
        available: true,
        auto: false,
        reason: `WebGPU adapter ${name} is a fallback (software) adapter, about 100× slower than wasm, so 'auto' skips it; ${f16}.`,
      },
    };
  }
  return {
    gpu,
    status: { device: 'webgpu', available: true, auto: true, reason: `WebGPU adapter ${name}, ${f16}.` },
  };
}

function probeWebNn(): WebDeviceStatus {
  if (navigatorLike()?.ml === undefined) {
    return unavailable(
      'webnn',
      'This environment has no WebNN (navigator.ml is missing; Chromium ships it behind a flag).',
    );
  }
  return {
    device: 'webnn',
    available: true,
    auto: true,
    reason: 'WebNN (navigator.ml); operators it lacks run on wasm.',
  };
}

const NOT_ISOLATED =
  'the page is not cross-origin isolated (crossOriginIsolated is false), so SharedArrayBuffer is unavailable: ' +
  'serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp (or credentialless)';

/** Whether wasm threads can work here, and why not. */
export function threadSupport(): { possible: boolean; reason: string } {
  if (isBrowserLike() && globalThis.crossOriginIsolated !== true)
    return { possible: false, reason: NOT_ISOLATED };
  if (typeof SharedArrayBuffer !== 'function')
    return { possible: false, reason: 'SharedArrayBuffer is unavailable here' };
  return {
    possible: true,
    reason: isBrowserLike() ? 'the page is cross-origin isolated' : 'Node worker threads',
  };
}

function describeThreadSupport(): string {
  const { possible, reason } = threadSupport();
  return possible ? `threads possible (${reason})` : `one thread only: ${reason}`;
}

export function isNode(): boolean {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  return typeof proc?.versions?.node === 'string' && !isBrowserLike();
}

function isBrowserLike(): boolean {
  return (
    typeof (globalThis as { document?: unknown }).document !== 'undefined' ||
    typeof (globalThis as { importScripts?: unknown }).importScripts === 'function' ||
    typeof (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope !== 'undefined'
  );
}

function unavailable(device: WebDevice, reason: string): WebDeviceStatus {
  return { device, available: false, auto: false, reason };
}

async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).trim();
}
