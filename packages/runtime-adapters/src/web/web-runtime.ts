/**
 * `createWebRuntime()`: onnxruntime-web behind RuntimeV1, in browsers (WebGPU, WebNN, wasm) and in
 * Node (wasm). onnxruntime-web is one global per page or worker, so every call into it goes
 * through one queue (see ort-web.ts) and the wasm settings of the first runtime hold for all.
 */
import type { HostTensor } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import { checkModel } from '@dcae/core/onnx';
import type {
  ExternalDataFile,
  GraphOptimizationLevel,
  RunOptions,
  RuntimeV1,
  SessionOptions,
  SessionV1,
} from '@dcae/core/runtime';
import type * as Ort from 'onnxruntime-web';
import type { TensorSpec } from '../_shared/tensor-bridge.js';
import { checkKnownKeys, checkOptimizationLevel, checkSessionOptions } from '../_shared/session-options.js';
import { checkDeviceList, decideDevices } from '../_shared/device-choice.js';
import { firstDeviceThatAccepts } from '../_shared/first-device.js';
import { checkModelBytes, messageOf, runtimeDisposed, sessionDisposed } from '../_shared/session-errors.js';
import { checkSessionSpecs, outputTensor, prepareFeeds } from '../_shared/tensor-bridge.js';
import type { WebDevice, WebGpuAdapterInfo } from './devices.js';
import { probeWebDevices, threadSupport, WEB_DEVICES } from './devices.js';
import type { DeviceLoss, OrtWebState, WasmPaths } from './ort-web.js';
import { abortSignalError, loadOrtWeb } from './ort-web.js';

export interface WebRuntimeSettings {
  /**
   * Devices to try, best first, or `'auto'`: webgpu, webnn, wasm, skipping those this environment
   * lacks and software WebGPU adapters (see `deviceReport`). A device listed explicitly must be
   * available, or the factory throws DEVICE_UNAVAILABLE. @defaultValue `'auto'`
   */
  readonly devices?: readonly WebDevice[] | 'auto';
  /**
   * wasm threads. More than one needs a cross-origin isolated page (COOP + COEP headers); without
   * it the runtime uses one thread and says why in `threads.reason`.
   * @defaultValue onnxruntime-web's choice, min(4, ⌈cores / 2⌉), when threads are possible; else 1
   */
  readonly threads?: number;
  /**
   * Where onnxruntime-web's `ort-wasm-simd-threaded.jsep.{mjs,wasm}` are served: a folder URL
   * ending in `/`, or both file URLs. Never a CDN by default: in a browser app, serve these files
   * from your own origin (a bundled production build with threads needs this). Not needed in Node.
   */
  readonly wasmPaths?: WasmPaths;
  /** Run onnxruntime-web in its wasm proxy worker so the page stays responsive (wasm only). @defaultValue false */
  readonly proxy?: boolean;
  /**
   * How long onnxruntime-web may take to start (load and compile its wasm, start threads) before
   * SESSION_INIT_TIMEOUT. A missing file or a worker script blocked by COEP otherwise hangs silently.
   * @defaultValue 30000
   */
  readonly initTimeoutMs?: number;
  /** @defaultValue `'all'` */
  readonly graphOptimization?: GraphOptimizationLevel;
}

/** Whether the runtime tries a device, and why. */
export interface WebDeviceDecision {
  readonly device: WebDevice;
  readonly selected: boolean;
  readonly reason: string;
}

/** wasm threads: how many, and why. */
export interface WebThreads {
  /** The thread count; undefined until the first session when onnxruntime-web chooses it. */
  readonly count: number | undefined;
  readonly reason: string;
}

export interface WebSession extends SessionV1 {
  readonly device: WebDevice;
  /** Devices before `device` that were passed over for this model, and why. */
  readonly skipped: readonly { readonly device: WebDevice; readonly reason: string }[];
}

export interface WebRuntime extends RuntimeV1 {
  readonly devices: readonly WebDevice[];
  /** One entry per device considered; a device that failed a session or lost its GPU is deselected with the reason. */
  readonly deviceReport: readonly WebDeviceDecision[];
  readonly threads: WebThreads;
  /** The WebGPU adapter found, if any. */
  readonly gpu: WebGpuAdapterInfo | undefined;
  createSession(model: Uint8Array, options?: SessionOptions): Promise<WebSession>;
}

const DEFAULT_INIT_TIMEOUT_MS = 30_000;
/** wasm32 addresses 4 GiB: a model and its external data together must fit. */
const MAX_TOTAL_BYTES = 2 ** 32;
const SETTINGS_KEYS = [
  'devices',
  'threads',
  'wasmPaths',
  'proxy',
  'initTimeoutMs',
  'graphOptimization',
] as const;

/**
 * onnxruntime-web behind the RuntimeV1 spec. Imports onnxruntime-web, checks which devices this
 * environment has (a WebGPU adapter, WebNN, wasm threads) and fixes the wasm settings; the wasm
 * backend itself starts with the first session.
 */
export async function createWebRuntime(settings: WebRuntimeSettings = {}): Promise<WebRuntime> {
  checkSettings(settings);
  const {
    devices = 'auto',
    threads,
    wasmPaths,
    proxy = false,
    initTimeoutMs = DEFAULT_INIT_TIMEOUT_MS,
    graphOptimization = 'all',
  } = settings;
  const state = await loadOrtWeb();
  const plan = planThreads(threads);
  state.configure({ threads: plan.count, proxy, wasmPaths, initTimeoutMs });
  const probe = await probeWebDevices({ timeoutMs: initTimeoutMs, proxy });
  const decisions = decideDevices(devices, probe.statuses);
  return new OrtWebRuntime(state, decisions, plan, probe.gpu, graphOptimization);
}

function checkSettings(settings: WebRuntimeSettings): void {
  checkKnownKeys(settings, SETTINGS_KEYS, 'settings');
  const {
    devices = 'auto',
    threads,
    wasmPaths,
    proxy = false,
    initTimeoutMs,
    graphOptimization = 'all',
  } = settings;
  checkDeviceList(devices, WEB_DEVICES);
  if (threads !== undefined && !(Number.isSafeInteger(threads) && threads >= 1 && threads <= 64)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `settings.threads must be an integer from 1 to 64; got ${JSON.stringify(threads)}.`,
    );
  }
  const pathsValid =
    wasmPaths === undefined ||
    (typeof wasmPaths === 'string' && wasmPaths.endsWith('/')) ||
    (typeof wasmPaths === 'object' &&
      wasmPaths !== null &&
      typeof wasmPaths.mjs === 'string' &&
      typeof wasmPaths.wasm === 'string');
  if (!pathsValid) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `settings.wasmPaths must be a folder URL ending in "/" or { mjs, wasm } file URLs; got ${JSON.stringify(wasmPaths)}.`,
    );
  }
  if (typeof proxy !== 'boolean') {
    throw new DcaeError('INVALID_ARGUMENT', `settings.proxy must be true or false; got ${String(proxy)}.`);
  }
  if (
    initTimeoutMs !== undefined &&
    !(Number.isSafeInteger(initTimeoutMs) && initTimeoutMs >= 1 && initTimeoutMs <= 3_600_000)
  ) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `settings.initTimeoutMs must be an integer number of milliseconds from 1 to 3600000; got ${JSON.stringify(initTimeoutMs)}.`,
    );
  }
  checkOptimizationLevel(graphOptimization, 'settings.graphOptimization');
}

/** The thread count to ask onnxruntime-web for, falling back to 1 where threads cannot work. */
function planThreads(requested: number | undefined): WebThreads {
  const support = threadSupport();
  if (requested === undefined) {
    return support.possible
      ? { count: undefined, reason: `onnxruntime-web's default, min(4, ⌈cores / 2⌉): ${support.reason}.` }
      : { count: 1, reason: `1 thread: ${support.reason}.` };
  }
  if (requested > 1 && !support.possible) {
    return {
      count: 1,
      reason: `${requested} threads were asked for, but ${support.reason}; using 1 thread.`,
    };
  }
  return { count: requested, reason: requested === 1 ? 'as asked.' : `as asked: ${support.reason}.` };
}

class OrtWebRuntime implements WebRuntime {
  readonly specificationVersion = 'v1';
  readonly name: string;
  readonly gpu: WebGpuAdapterInfo | undefined;
  readonly #state: OrtWebState;
  readonly #decisions: WebDeviceDecision[];
  readonly #threads: WebThreads;
  readonly #graphOptimization: GraphOptimizationLevel;
  readonly #sessions = new Set<OrtWebSession>();
  readonly #stopWatching: () => void;
  #disposal: Promise<void> | undefined;

  constructor(
    state: OrtWebState,
    decisions: WebDeviceDecision[],
    threads: WebThreads,
    gpu: WebGpuAdapterInfo | undefined,
    graphOptimization: GraphOptimizationLevel,
  ) {
    this.#state = state;
    this.name = `onnxruntime-web@${state.version}`;
    this.#decisions = decisions;
    this.#threads = threads;
    this.gpu = gpu;
    this.#graphOptimization = graphOptimization;
    this.#stopWatching = state.onDeviceLost((loss) => this.#deviceLost(loss));
  }

  get devices(): readonly WebDevice[] {
    return this.#decisions.filter((d) => d.selected).map((d) => d.device);
  }

  get deviceReport(): readonly WebDeviceDecision[] {
    return this.#decisions.map((d) => ({ ...d }));
  }

  get threads(): WebThreads {
    const { count, reason } = this.#threads;
    // Once the backend started, env.wasm.numThreads holds what onnxruntime-web actually uses.
    return this.#state.started
      ? { count: this.#state.ort.env.wasm.numThreads ?? count, reason }
      : { count, reason };
  }

  /**
   * Creates a session. Before onnxruntime-web sees the model, checks the options strictly and the
   * model with `checkModel()` (size up to 4 GB with its external data, protobuf, external data
   * paths and ranges, data sizes, dims, op allow-list): onnxruntime-web itself does not check
   * external data paths.
   */
  async createSession(model: Uint8Array, options: SessionOptions = {}): Promise<WebSession> {
    if (this.#disposal !== undefined) throw runtimeDisposed();
    const checked = checkSessionOptions(options, 'a URL (in Node: a file path)');
    const { signal, maxInputElements } = checked;
    if (signal?.aborted) throw abortSignalError(signal, 'Creating the session');
    checkModelBytes(model);
    const graphOptimization = checked.graphOptimization ?? this.#graphOptimization;
    const externalData = checked.externalData ?? [];
    const scan = checkModel(model, {
      externalData: checked.externalData?.map(({ location, data }) =>
        data instanceof Uint8Array ? { location, size: data.byteLength } : { location },
      ),
      maxTotalBytes: MAX_TOTAL_BYTES,
    });

    const outcome = await firstDeviceThatAccepts<
      WebDevice,
      { session: Ort.InferenceSession; inputs: TensorSpec[]; outputs: TensorSpec[] }
    >({
      devices: this.devices,
      skip: (device) =>
        device === 'webgpu' && scan.usesFloat16 && this.gpu?.shaderF16 !== true
          ? F16_WITHOUT_SHADER_F16
          : undefined,
      create: async (device) => {
        const created = this.#state.enqueue(
          () => this.#create(model, device, graphOptimization, externalData, scan.usesFloat16),
          signal,
        );
        const session = await abortable(created, signal, 'Creating the session', (late) =>
          this.#release(late),
        );
        // From here on the error is not the device's: release the session and stop.
        const inputs = describe(session.inputMetadata);
        const outputs = describe(session.outputMetadata);
        try {
          checkSessionSpecs(inputs, outputs);
        } catch (error) {
          await this.#release(session);
          throw error;
        }
        return { session, inputs, outputs };
      },
      fatal: (error) => startupError(error, this.#state),
    });
    const { failures } = outcome;
    const skipped = [...outcome.skipped];
    if (outcome.session !== undefined) {
      const { session, inputs, outputs } = outcome.session;
      // The model starts here, so the devices before failed for their own reasons: skip them from now on.
      for (const failure of failures)
        this.#deselect(failure.device, `Session creation failed: ${messageOf(failure.error)}`);
      skipped.push(...failures.map((f) => ({ device: f.device, reason: messageOf(f.error) })));
      const webSession = new OrtWebSession(
        this.#state,
        session,
        outcome.device,
        { inputs, outputs, maxInputElements },
        skipped,
        (s) => this.#sessions.delete(s),
      );
      this.#sessions.add(webSession);
      return webSession;
    }
    const tried = [
      ...skipped.map((s) => `[${s.device}] ${s.reason}`),
      ...failures.map((f) => `[${f.device}] ${messageOf(f.error)}`),
    ].join('; ');
    if (failures.length === 0) {
      throw new DcaeError(
        'DEVICE_UNAVAILABLE',
        `No device of ${this.name} can run this model: ${tried || 'no device is selected'}. Add 'wasm' to settings.devices.`,
        { detail: { skipped } },
      );
    }
    throw new DcaeError(
      'SESSION_FAILED',
      `${this.name} could not create a session from the model (${model.byteLength} bytes): ${tried}`,
      { cause: failures.at(-1)?.error, detail: { devices: failures.map((f) => f.device) } },
    );
  }

  /** Disposes every session of this runtime. onnxruntime-web itself stays loaded for the page. */
  dispose(): Promise<void> {
    return (this.#disposal ??= (async () => {
      this.#stopWatching();
      await Promise.all([...this.#sessions].map((s) => s.dispose()));
    })());
  }

  /** Runs inside the queue. */
  async #create(
    model: Uint8Array,
    device: WebDevice,
    graphOptimization: GraphOptimizationLevel,
    externalData: readonly ExternalDataFile[],
    usesFloat16: boolean,
  ): Promise<Ort.InferenceSession> {
    const { ort, applied } = this.#state;
    const proxied = applied?.proxy === true;
    const session = await ort.InferenceSession.create(proxied ? model.slice() : model, {
      executionProviders: [device],
      graphOptimizationLevel: graphOptimization,
      executionMode: 'sequential',
      // Errors reach the caller as exceptions; warnings about fallback kernels would only be noise.
      logSeverityLevel: 3,
      enableProfiling: false,
      ...(externalData.length === 0
        ? {}
        : { externalData: externalData.map(({ location, data }) => ({ path: location, data })) }),
    });
    this.#state.started = true;
    if (device === 'webgpu') {
      const gpuDevice = await this.#state.watchDevice();
      if (usesFloat16 && !gpuDevice.features.has('shader-f16')) {
        await session.release();
        throw new Error(F16_WITHOUT_SHADER_F16);
      }
    }
    return session;
  }

  #release(session: Ort.InferenceSession): Promise<void> {
    return this.#state.enqueue(() => session.release()).catch(() => undefined);
  }

  #deselect(device: WebDevice, reason: string): void {
    const index = this.#decisions.findIndex((d) => d.device === device);
    this.#decisions[index] = { device, selected: false, reason };
  }

  #deviceLost(loss: DeviceLoss): void {
    if (this.#decisions.some((d) => d.device === 'webgpu' && d.selected))
      this.#deselect('webgpu', `The WebGPU device was lost (${loss.reason}: ${loss.message}).`);
    for (const session of this.#sessions) if (session.device === 'webgpu') session.deviceLost(loss);
  }
}

const F16_WITHOUT_SHADER_F16 =
  "The model computes in float16 but the WebGPU adapter lacks the 'shader-f16' feature; onnxruntime-web would " +
  'return wrong numbers there without an error, so WebGPU is not used for it. Use a float32 model, or wasm.';

/**
 * onnxruntime-web failures that concern its backend, not one device: the wasm backend underlies
 * every device, so no fallback can help, and onnxruntime-web does not retry in the same page.
 */
function startupError(error: unknown, state: OrtWebState): DcaeError | undefined {
  const message = messageOf(error);
  if (/initializing failed due to timeout/i.test(message)) {
    const ms = state.applied?.initTimeoutMs;
    return new DcaeError(
      'SESSION_INIT_TIMEOUT',
      `onnxruntime-web did not start its WebAssembly backend within ${ms} ms (settings.initTimeoutMs). ` +
        'Usual causes: its .wasm/.mjs files are not served where wasmPaths says (see the network panel), or the page is ' +
        'cross-origin isolated but those scripts lack the Cross-Origin-Embedder-Policy header, so its threads never start. ' +
        'onnxruntime-web does not retry in the same page: reload it (or use a new worker).',
      { cause: error, detail: { timeoutMs: ms } },
    );
  }
  if (/\[wasm\]/.test(message) && /no available backend/i.test(message)) {
    return new DcaeError(
      'RUNTIME_UNAVAILABLE',
      `onnxruntime-web could not start its WebAssembly backend: ${message}. Check that ort-wasm-simd-threaded.jsep.{mjs,wasm} ` +
        "are served from wasmPaths and that a Content-Security-Policy allows 'wasm-unsafe-eval'; reload the page after fixing it.",
      { cause: error },
    );
  }
  return undefined;
}

class OrtWebSession implements WebSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly device: WebDevice;
  readonly skipped: readonly { readonly device: WebDevice; readonly reason: string }[];
  readonly #state: OrtWebState;
  readonly #session: Ort.InferenceSession;
  readonly #inputs: readonly TensorSpec[];
  readonly #maxInputElements: number;
  readonly #onDispose: (session: OrtWebSession) => void;
  readonly #running = new Set<Promise<unknown>>();
  #lost: DeviceLoss | undefined;
  #disposal: Promise<void> | undefined;

  constructor(
    state: OrtWebState,
    session: Ort.InferenceSession,
    device: WebDevice,
    specs: { inputs: readonly TensorSpec[]; outputs: readonly TensorSpec[]; maxInputElements: number },
    skipped: readonly { device: WebDevice; reason: string }[],
    onDispose: (session: OrtWebSession) => void,
  ) {
    const { inputs, outputs } = specs;
    this.#maxInputElements = specs.maxInputElements;
    this.#state = state;
    this.#session = session;
    this.device = device;
    this.#inputs = inputs;
    this.inputNames = Object.freeze(inputs.map((s) => s.name));
    this.outputNames = Object.freeze(outputs.map((s) => s.name));
    this.skipped = Object.freeze(skipped);
    this.#onDispose = onDispose;
  }

  /**
   * Runs the model once every earlier onnxruntime-web call has finished. An abort rejects at once;
   * a run already started inside onnxruntime-web cannot be stopped, so it finishes and its
   * outputs are dropped.
   */
  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    options: RunOptions = {},
  ): Promise<Record<string, HostTensor>> {
    if (this.#disposal !== undefined) throw this.#lost ? deviceLostError(this.#lost) : sessionDisposed();
    const { signal } = options;
    if (signal?.aborted) throw abortSignalError(signal, 'The run');
    const prepared = prepareFeeds(feeds, this.#inputs, this.#maxInputElements);

    const running = this.#state.enqueue(() => this.#run(prepared), signal);
    this.#running.add(running);
    let results: Ort.InferenceSession.ReturnType;
    try {
      results = await abortable(running, signal, 'The run');
    } catch (error) {
      if (this.#lost) throw deviceLostError(this.#lost);
      if (DcaeError.is(error)) throw error;
      throw new DcaeError(
        'RUN_FAILED',
        `onnxruntime-web failed to run the session on ${this.device}: ${messageOf(error)}`,
        {
          cause: error,
        },
      );
    } finally {
      this.#running.delete(running);
    }
    // A lost device may have handed back zeros: never return them.
    if (this.#lost) throw deviceLostError(this.#lost);
    const outputs: Record<string, HostTensor> = {};
    for (const name of this.outputNames) {
      const tensor = results[name]!;
      outputs[name] = outputTensor(name, tensor.type, tensor.dims, tensor.data as ArrayBufferView);
    }
    return outputs;
  }

  /** Runs inside the queue. */
  async #run(prepared: Record<string, HostTensor>): Promise<Ort.InferenceSession.ReturnType> {
    if (this.#lost) throw deviceLostError(this.#lost);
    const { ort, applied } = this.#state;
    // The proxy worker takes the inputs' buffers (transfers them), so it gets copies.
    const proxied = applied?.proxy === true;
    const feeds: Record<string, Ort.Tensor> = {};
    for (const [name, t] of Object.entries(prepared)) {
      const data = proxied ? t.data.slice() : t.data;
      feeds[name] = new ort.Tensor(t.dtype as 'float32', data as Float32Array, [...t.shape]);
    }
    return this.#session.run(feeds);
  }

  /** Waits for runs already started, then releases the onnxruntime-web session. Idempotent. */
  dispose(): Promise<void> {
    return (this.#disposal ??= (async () => {
      this.#onDispose(this);
      await Promise.allSettled(this.#running);
      await this.#state.enqueue(() => this.#session.release()).catch(() => undefined);
    })());
  }

  /** The WebGPU device is gone: every later or unfinished run rejects with DEVICE_LOST. */
  deviceLost(loss: DeviceLoss): void {
    this.#lost ??= loss;
    void this.dispose();
  }
}

/**
 * Waits for `promise` unless `signal` aborts first; a result that arrives after the abort is handed
 * to `discard` (e.g. a session created too late is released).
 */
function abortable<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  what: string,
  discard?: (late: T) => unknown,
): Promise<T> {
  if (signal === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => {
      reject(abortSignalError(signal, what));
      if (discard) promise.then(discard, () => undefined);
      else promise.catch(() => undefined);
    };
    if (signal.aborted) return onAbort();
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function describe(metadata: readonly Ort.InferenceSession.ValueMetadata[]): TensorSpec[] {
  return metadata.map((m) =>
    m.isTensor
      ? { name: m.name, type: m.type, shape: [...m.shape] }
      : { name: m.name, type: 'non-tensor', shape: [] },
  );
}

function deviceLostError(loss: DeviceLoss): DcaeError {
  return new DcaeError(
    'DEVICE_LOST',
    `The WebGPU device was lost (${loss.reason}${loss.message ? `: ${loss.message}` : ''}); this session's results are gone. ` +
      'Create a new session (the runtime now falls back to its next device) or a new runtime to try WebGPU again.',
    { detail: { ...loss } },
  );
}
