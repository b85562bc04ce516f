/**
 * onnxruntime-web is one global per JavaScript realm (page or worker): one `env`, one WebAssembly
 * instance whose thread count, file paths and proxy mode are fixed by the first session, one
 * WebGPU device. This module holds that shared state: the lazily imported module, the wasm
 * settings once applied, the queue every onnxruntime call goes through (onnxruntime-web cannot run
 * two sessions at the same time), and the WebGPU device watch.
 */
import { DcaeError } from '@dcae/core';
import type * as Ort from 'onnxruntime-web';

export type OrtWeb = typeof Ort;

/** The wasm settings onnxruntime-web reads once, when its backend initializes. */
export interface WasmConfig {
  /** Threads to ask for; undefined leaves onnxruntime-web's default (min(4, ⌈cores/2⌉)). */
  readonly threads: number | undefined;
  readonly proxy: boolean;
  readonly wasmPaths: WasmPaths | undefined;
  readonly initTimeoutMs: number;
}

/** A folder URL ending in `/`, or the URLs of the two files. */
export type WasmPaths = string | { readonly mjs: string; readonly wasm: string };

/** How a WebGPU device was lost (GPUDeviceLostInfo). */
export interface DeviceLoss {
  readonly reason: string;
  readonly message: string;
}

interface GpuDeviceLike {
  readonly lost: Promise<{ reason: string; message: string }>;
  readonly features: { has(feature: string): boolean };
}

export class OrtWebState {
  readonly ort: OrtWeb;
  readonly version: string;
  /** The settings of the first session in this realm; later ones must agree. */
  applied: WasmConfig | undefined;
  /** Whether a session was created, so the wasm backend has started (and `env.wasm.numThreads` is final). */
  started = false;
  #tail: Promise<unknown> = Promise.resolve();
  #device: GpuDeviceLike | undefined;
  readonly #lossListeners = new Set<(loss: DeviceLoss) => void>();

  constructor(ort: OrtWeb) {
    this.ort = ort;
    this.version = ort.env.versions.web ?? ort.env.versions.common;
  }

  /** Sets `env` until the first session starts the backend; afterwards it only checks that `config` agrees. */
  configure(config: WasmConfig): void {
    if (this.started && this.applied !== undefined) {
      checkSameConfig(this.applied, config);
      return;
    }
    const { wasm } = this.ort.env;
    // 0: onnxruntime-web chooses.
    wasm.numThreads = config.threads ?? 0;
    wasm.proxy = config.proxy;
    wasm.initTimeout = config.initTimeoutMs;
    wasm.wasmPaths = config.wasmPaths;
    this.ort.env.logLevel = 'error';
    this.applied = config;
  }

  /**
   * Runs `task` after every task queued before it. A task whose signal aborts while it waits is
   * skipped; one that has started is awaited by the queue even when its caller stops waiting.
   */
  enqueue<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const result = this.#tail.then(() => {
      if (signal?.aborted) throw abortSignalError(signal);
      return task();
    });
    this.#tail = result.catch(() => undefined);
    return result;
  }

  /** Starts watching the WebGPU device onnxruntime-web uses (once it has one) for loss. */
  async watchDevice(): Promise<GpuDeviceLike> {
    const device = (await this.ort.env.webgpu.device) as GpuDeviceLike;
    if (device !== this.#device) {
      this.#device = device;
      void device.lost.then((info) => {
        if (this.#device === device) this.#device = undefined;
        for (const listener of [...this.#lossListeners])
          listener({ reason: info.reason, message: info.message });
      });
    }
    return device;
  }

  onDeviceLost(listener: (loss: DeviceLoss) => void): () => void {
    this.#lossListeners.add(listener);
    return () => this.#lossListeners.delete(listener);
  }
}

let loading: Promise<OrtWebState> | undefined;

/** Imports onnxruntime-web once per realm; RUNTIME_UNAVAILABLE when it is not installed. */
export function loadOrtWeb(): Promise<OrtWebState> {
  loading ??= import('onnxruntime-web').then(
    (module: OrtWeb & { default?: OrtWeb }) => new OrtWebState(module.default ?? module),
    (cause: unknown) => {
      loading = undefined;
      throw new DcaeError(
        'RUNTIME_UNAVAILABLE',
        `onnxruntime-web failed to load: ${cause instanceof Error ? cause.message : String(cause)}. ` +
          '@dcae/runtime-adapters/web needs it (an optional peer dependency): `pnpm add onnxruntime-web@^1.30.0`.',
        { cause },
      );
    },
  );
  return loading;
}

function checkSameConfig(applied: WasmConfig, wanted: WasmConfig): void {
  const differences: string[] = [];
  if (wanted.threads !== undefined && wanted.threads !== applied.threads)
    differences.push(`threads ${String(applied.threads ?? 'default')} (asked ${wanted.threads})`);
  if (wanted.proxy !== applied.proxy) differences.push(`proxy ${applied.proxy} (asked ${wanted.proxy})`);
  if (
    wanted.wasmPaths !== undefined &&
    JSON.stringify(wanted.wasmPaths) !== JSON.stringify(applied.wasmPaths)
  )
    differences.push(
      `wasmPaths ${JSON.stringify(applied.wasmPaths)} (asked ${JSON.stringify(wanted.wasmPaths)})`,
    );
  if (differences.length > 0) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `onnxruntime-web is already initialized in this page or worker with ${differences.join(', ')}; ` +
        'its wasm settings cannot change after the first session. Use the same settings, or create the runtime in a new worker (or reload the page).',
      { detail: { applied, wanted } },
    );
  }
}

export function abortSignalError(signal: AbortSignal, what = 'The call'): DcaeError {
  return new DcaeError('ABORTED', `${what} was aborted.`, { cause: signal.reason });
}
