import type { HostTensor } from '../tensor/host-tensor.js';

/**
 * The runtime spec: the only contract between dcae models and an inference engine. Adapters
 * (`@dcae/runtime-adapters/node`, `/web`) implement it; no onnxruntime type appears here.
 * Changing this interface is a breaking change.
 */
export type Device = 'cpu' | 'cuda' | 'webgpu' | 'webnn' | 'wasm';

export type GraphOptimizationLevel = 'disabled' | 'basic' | 'extended' | 'all';

/** One weights file a model refers to as ONNX external data (e.g. the original `.safetensors`). */
export interface ExternalDataFile {
  /** The `location` string the graph's initializers use. */
  readonly location: string;
  /** Where the bytes are: a local file path (node), a URL (web) or the bytes themselves. */
  readonly data: string | Uint8Array;
}

export interface SessionOptions {
  /** @defaultValue `'all'` */
  readonly graphOptimization?: GraphOptimizationLevel;
  /** Files the model's initializers point into. */
  readonly externalData?: readonly ExternalDataFile[];
  readonly signal?: AbortSignal;
  /**
   * `run()` refuses an input with more elements than this (INPUT_SHAPE_LIMIT) before the runtime
   * sees it: a huge value for a dynamic dim would make every intermediate huge. @defaultValue 2^31
   */
  readonly maxInputElements?: number;
}

export interface RunOptions {
  /** Rejects with code ABORTED before the run starts or when it is aborted while running. */
  readonly signal?: AbortSignal;
}

export interface SessionV1 {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  /** The device the session actually runs on. */
  readonly device: Device;
  run(feeds: Readonly<Record<string, HostTensor>>, options?: RunOptions): Promise<Record<string, HostTensor>>;
  /** Releases native resources; later `run()` calls reject with SESSION_DISPOSED. Idempotent. */
  dispose(): Promise<void>;
}

export interface RuntimeV1 {
  readonly specificationVersion: 'v1';
  /** For logs and reports, e.g. `onnxruntime-node@1.30.0`. */
  readonly name: string;
  /** Devices this runtime will try, best first. */
  readonly devices: readonly Device[];
  /** Builds a session from ONNX bytes. */
  createSession(model: Uint8Array, options?: SessionOptions): Promise<SessionV1>;
  /** Releases runtime-wide resources (worker threads). Idempotent. */
  dispose(): Promise<void>;
}
