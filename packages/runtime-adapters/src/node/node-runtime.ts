/**
 * `createNodeRuntime()`: onnxruntime-node behind RuntimeV1. Sessions live on the calling thread or
 * in the runtime's worker (see worker-host.ts); either way every onnxruntime call goes through
 * ort-engine.js, and only HostTensors and DcaeErrors come out.
 */
import type { HostTensor } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import { checkInspection, checkModel } from '@dcae/core/onnx';
import type {
  GraphOptimizationLevel,
  RunOptions,
  RuntimeV1,
  SessionOptions,
  SessionV1,
} from '@dcae/core/runtime';
import type { TensorSpec } from '../_shared/tensor-bridge.js';
import { checkKnownKeys, checkOptimizationLevel, checkSessionOptions } from '../_shared/session-options.js';
import { checkDeviceList, decideDevices } from '../_shared/device-choice.js';
import { firstDeviceThatAccepts } from '../_shared/first-device.js';
import { checkModelBytes, messageOf, runtimeDisposed, sessionDisposed } from '../_shared/session-errors.js';
import { checkSessionSpecs, outputTensor, prepareFeeds } from '../_shared/tensor-bridge.js';
import type { NodeDevice, NodeDeviceStatus } from './devices.js';
import { listNodeDevices, locateOnnxruntimeNode, NODE_DEVICES } from './devices.js';
import { planExternalData } from './external-data.js';
import type { CreateRequest, PlainTensor, SessionInfo } from './ort-engine.js';
import { OrtEngine } from './ort-engine.js';
import type { WorkerKind } from './worker-host.js';
import { abortedError, WorkerHost } from './worker-host.js';

export interface NodeRuntimeSettings {
  /**
   * Devices to try, best first, or `'auto'`: cuda, webgpu, cpu, skipping those this machine lacks
   * (see `deviceReport`). A device listed explicitly must be installed, or the factory throws
   * DEVICE_UNAVAILABLE. @defaultValue `['cpu']`
   */
  readonly devices?: readonly NodeDevice[] | 'auto';
  /** Intra-op threads of each session. @defaultValue onnxruntime's choice, one per physical core */
  readonly threads?: number;
  /** @defaultValue `'all'` */
  readonly graphOptimization?: GraphOptimizationLevel;
  /**
   * Where sessions run. `false`: on the calling thread, where `run()` blocks the event loop.
   * `true` or `'thread'`: in a worker thread owned by the runtime. `'process'`: in a child process
   * owned by the runtime, so aborting a run stops it at once (tensors are copied over IPC).
   * @defaultValue `false`
   */
  readonly worker?: boolean | WorkerKind;
}

/** Whether the runtime tries a device, and why. */
export interface NodeDeviceDecision {
  readonly device: NodeDevice;
  readonly selected: boolean;
  readonly reason: string;
}

export interface NodeSession extends SessionV1 {
  readonly device: NodeDevice;
}

export interface NodeRuntime extends RuntimeV1 {
  /** Devices sessions are created on, best first: the first that accepts the model wins. */
  readonly devices: readonly NodeDevice[];
  /** One entry per device considered; a device that failed to start a session is deselected with the error. */
  readonly deviceReport: readonly NodeDeviceDecision[];
  /** Where sessions run (see `NodeRuntimeSettings.worker`). */
  readonly worker: WorkerKind | false;
  createSession(model: Uint8Array, options?: SessionOptions): Promise<NodeSession>;
}

const SETTINGS_KEYS = ['devices', 'threads', 'graphOptimization', 'worker'] as const;

/**
 * onnxruntime-node behind the RuntimeV1 spec. Cheap: it checks the settings and which devices are
 * installed; onnxruntime-node itself loads with the first session.
 */
export function createNodeRuntime(settings: NodeRuntimeSettings = {}): NodeRuntime {
  checkKnownKeys(settings, SETTINGS_KEYS, 'settings');
  const { devices = ['cpu'], threads, graphOptimization = 'all', worker = false } = settings;
  checkSettings(devices, threads, graphOptimization, worker);
  const installation = locateOnnxruntimeNode();
  const decisions = chooseDevices(devices, listNodeDevices());
  // onnxruntime ≥ 1.29 on Linux sends usage telemetry and writes ~/.cache/Microsoft/DeveloperTools
  // unless this is set before its first session; an explicit value from the user wins.
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const kind = worker === true ? 'thread' : worker;
  const backend =
    kind === false
      ? new InProcessBackend()
      : new WorkerBackend(new WorkerHost(kind, new URL('./ort-host.js', import.meta.url)));
  return new OrtNodeRuntime(
    `onnxruntime-node@${installation.version}`,
    decisions,
    { threads, graphOptimization },
    kind,
    backend,
  );
}

function checkSettings(
  devices: unknown,
  threads: unknown,
  graphOptimization: unknown,
  worker: unknown,
): void {
  checkDeviceList(devices, NODE_DEVICES);
  if (
    threads !== undefined &&
    !(Number.isSafeInteger(threads) && (threads as number) >= 1 && (threads as number) <= 1024)
  ) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `settings.threads must be an integer from 1 to 1024; got ${JSON.stringify(threads)}.`,
    );
  }
  checkOptimizationLevel(graphOptimization, 'settings.graphOptimization');
  if (![true, false, 'thread', 'process'].includes(worker as boolean)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `settings.worker must be true, false, 'thread' or 'process'; got ${String(worker)}.`,
    );
  }
}

/** The devices to try; with 'auto', at least one must be usable. */
function chooseDevices(
  requested: readonly NodeDevice[] | 'auto',
  found: readonly NodeDeviceStatus[],
): NodeDeviceDecision[] {
  const decisions = decideDevices(requested, found);
  if (!decisions.some((d) => d.selected)) {
    throw new DcaeError(
      'RUNTIME_UNAVAILABLE',
      `onnxruntime-node cannot run on this machine: ${found.find((s) => s.device === 'cpu')!.reason}`,
    );
  }
  return decisions;
}

/** Where sessions live: this thread, or a worker. Keys name sessions across the boundary. */
interface Backend {
  create(key: number, request: CreateRequest, signal: AbortSignal | undefined): Promise<SessionInfo>;
  run(
    key: number,
    feeds: Record<string, PlainTensor>,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, PlainTensor>>;
  release(key: number): Promise<void>;
  dispose(): Promise<void>;
}

/** Sessions on the calling thread: a run cannot be interrupted, so an abort is seen only after it. */
class InProcessBackend implements Backend {
  #engine: Promise<OrtEngine> | undefined;

  async create(key: number, request: CreateRequest): Promise<SessionInfo> {
    return (await this.#load()).create(key, request);
  }

  async run(key: number, feeds: Record<string, PlainTensor>): Promise<Record<string, PlainTensor>> {
    return (await this.#load()).run(key, feeds);
  }

  async release(key: number): Promise<void> {
    await (await this.#load()).release(key);
  }

  async dispose(): Promise<void> {}

  #load(): Promise<OrtEngine> {
    return (this.#engine ??= OrtEngine.load());
  }
}

/**
 * Sessions in the runtime's worker. Each keeps its create request, so when the worker is
 * restarted (a 'process' worker killed to abort a run) its next run re-creates it there first.
 */
class WorkerBackend implements Backend {
  readonly #host: WorkerHost;
  readonly #sessions = new Map<number, { request: CreateRequest; generation: number }>();

  constructor(host: WorkerHost) {
    this.#host = host;
  }

  create(key: number, request: CreateRequest, signal: AbortSignal | undefined): Promise<SessionInfo> {
    const sent = {
      ...request,
      model: ownBuffer(request.model),
      externalBytes: request.externalBytes.map((e) => ({ ...e, data: ownBuffer(e.data) })),
    };
    return this.#host.schedule(
      async ({ connection, generation }) => {
        const info = (await connection.call({ op: 'create', key, request: sent })) as SessionInfo;
        this.#sessions.set(key, { request: sent, generation });
        return info;
      },
      signal,
      'Creating the session',
    );
  }

  run(
    key: number,
    feeds: Record<string, PlainTensor>,
    signal: AbortSignal | undefined,
  ): Promise<Record<string, PlainTensor>> {
    const sent = Object.fromEntries(
      Object.entries(feeds).map(([name, t]) => [name, { ...t, data: ownBuffer(t.data) }]),
    );
    return this.#host.schedule(
      async ({ connection, generation }) => {
        const session = this.#sessions.get(key)!;
        if (session.generation !== generation) {
          await connection.call({ op: 'create', key, request: session.request });
          session.generation = generation;
        }
        return (await connection.call({ op: 'run', key, feeds: sent })) as Record<string, PlainTensor>;
      },
      signal,
      'The run',
    );
  }

  async release(key: number): Promise<void> {
    const session = this.#sessions.get(key);
    this.#sessions.delete(key);
    if (session === undefined || this.#host.disposed) return;
    await this.#host.schedule(async ({ connection, generation }) => {
      if (session.generation === generation) await connection.call({ op: 'release', key });
    });
  }

  dispose(): Promise<void> {
    return this.#host.dispose();
  }
}

/**
 * A view that owns its whole buffer, so posting it to the worker copies only its bytes (structured
 * clone copies a view's entire ArrayBuffer). The caller's data is never transferred or detached.
 */
function ownBuffer<T extends PlainTensor['data']>(data: T): T {
  return data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : (data.slice() as T);
}

class OrtNodeRuntime implements NodeRuntime {
  readonly specificationVersion = 'v1';
  readonly name: string;
  readonly worker: WorkerKind | false;
  readonly #decisions: NodeDeviceDecision[];
  readonly #defaults: { threads: number | undefined; graphOptimization: GraphOptimizationLevel };
  readonly #backend: Backend;
  readonly #sessions = new Set<OrtNodeSession>();
  #nextKey = 1;
  #disposal: Promise<void> | undefined;

  constructor(
    name: string,
    decisions: NodeDeviceDecision[],
    defaults: { threads: number | undefined; graphOptimization: GraphOptimizationLevel },
    worker: WorkerKind | false,
    backend: Backend,
  ) {
    this.name = name;
    this.#decisions = decisions;
    this.#defaults = defaults;
    this.worker = worker;
    this.#backend = backend;
  }

  get devices(): readonly NodeDevice[] {
    return this.#decisions.filter((d) => d.selected).map((d) => d.device);
  }

  get deviceReport(): readonly NodeDeviceDecision[] {
    return this.#decisions.map((d) => ({ ...d }));
  }

  /**
   * Creates a session. Before onnxruntime sees the model, checks the options strictly and the
   * model with `checkModel()` (size, protobuf, external data paths and ranges, data sizes, dims, op
   * allow-list); an external data path must resolve inside the folder it names.
   */
  async createSession(model: Uint8Array, options: SessionOptions = {}): Promise<NodeSession> {
    if (this.#disposal !== undefined) throw runtimeDisposed();
    const checked = checkSessionOptions(options, 'a file path');
    const { signal, maxInputElements } = checked;
    if (signal?.aborted) throw abortedError('Creating the session', signal);
    checkModelBytes(model);
    const graphOptimization = checked.graphOptimization ?? this.#defaults.graphOptimization;
    // The model's own rules (paths included) first, then the files' sizes once the paths are resolved.
    const inspection = checkModel(model, {
      externalData: checked.externalData?.map(({ location }) => ({ location })),
    });
    const { plan: externalData, sizes } = await planExternalData(checked.externalData ?? []);
    checkInspection(inspection, { externalData: sizes });

    const outcome = await firstDeviceThatAccepts<NodeDevice, { key: number; info: SessionInfo }>({
      devices: this.devices,
      create: async (device) => {
        const key = this.#nextKey++;
        const request: CreateRequest = {
          model,
          device,
          graphOptimization,
          threads: this.#defaults.threads,
          ...externalData,
        };
        const info = await this.#backend.create(key, request, signal);
        // From here on the error is not the device's: release the session and stop.
        if (signal?.aborted) {
          await this.#backend.release(key);
          throw abortedError('Creating the session', signal);
        }
        try {
          checkSessionSpecs(info.inputs, info.outputs);
        } catch (error) {
          await this.#backend.release(key);
          throw error;
        }
        return { key, info };
      },
      fatal: (error) =>
        error instanceof Error && error.name === 'RuntimeUnavailable'
          ? new DcaeError('RUNTIME_UNAVAILABLE', `${error.message}. Reinstall onnxruntime-node.`, {
              cause: error,
            })
          : undefined,
    });
    const { failures } = outcome;
    if (outcome.session !== undefined) {
      const { key, info } = outcome.session;
      // The model starts here, so the devices before failed for their own reasons: skip them from now on.
      for (const failure of failures)
        this.#deselect(failure.device, `Session creation failed: ${messageOf(failure.error)}`);
      const session = new OrtNodeSession(key, outcome.device, info, maxInputElements, this.#backend, (s) =>
        this.#sessions.delete(s),
      );
      this.#sessions.add(session);
      return session;
    }
    const tried = failures.map((f) => `[${f.device}] ${messageOf(f.error)}`).join('; ');
    throw new DcaeError(
      'SESSION_FAILED',
      `${this.name} could not create a session from the model (${model.byteLength} bytes): ${tried}`,
      {
        cause: failures.at(-1)?.error,
        detail: { devices: failures.map((f) => f.device) },
      },
    );
  }

  /** Disposes every session of this runtime, then stops its worker once running work has finished. */
  dispose(): Promise<void> {
    return (this.#disposal ??= (async () => {
      await Promise.all([...this.#sessions].map((s) => s.dispose()));
      await this.#backend.dispose();
    })());
  }

  #deselect(device: NodeDevice, reason: string): void {
    const index = this.#decisions.findIndex((d) => d.device === device);
    this.#decisions[index] = { device, selected: false, reason };
  }
}

class OrtNodeSession implements NodeSession {
  readonly inputNames: readonly string[];
  readonly outputNames: readonly string[];
  readonly device: NodeDevice;
  readonly #key: number;
  readonly #inputs: readonly TensorSpec[];
  readonly #maxInputElements: number;
  readonly #backend: Backend;
  readonly #onDispose: (session: OrtNodeSession) => void;
  readonly #running = new Set<Promise<unknown>>();
  #disposal: Promise<void> | undefined;

  constructor(
    key: number,
    device: NodeDevice,
    info: SessionInfo,
    maxInputElements: number,
    backend: Backend,
    onDispose: (session: OrtNodeSession) => void,
  ) {
    this.#key = key;
    this.#maxInputElements = maxInputElements;
    this.device = device;
    this.#inputs = info.inputs;
    this.inputNames = Object.freeze(info.inputs.map((s) => s.name));
    this.outputNames = Object.freeze(info.outputs.map((s) => s.name));
    this.#backend = backend;
    this.#onDispose = onDispose;
  }

  /**
   * Runs the model. On the calling thread (worker: false) onnxruntime cannot be interrupted: an
   * abort during the run is reported when it returns, and its outputs are dropped.
   */
  async run(
    feeds: Readonly<Record<string, HostTensor>>,
    options: RunOptions = {},
  ): Promise<Record<string, HostTensor>> {
    if (this.#disposal !== undefined) throw sessionDisposed();
    const { signal } = options;
    if (signal?.aborted) throw abortedError('The run', signal);
    const prepared = prepareFeeds(feeds, this.#inputs, this.#maxInputElements);
    const plain: Record<string, PlainTensor> = {};
    for (const [name, t] of Object.entries(prepared))
      plain[name] = { type: t.dtype, dims: [...t.shape], data: t.data };

    const running = this.#backend.run(this.#key, plain, signal);
    this.#running.add(running);
    let outputs: Record<string, PlainTensor>;
    try {
      outputs = await running;
    } catch (error) {
      if (DcaeError.is(error)) throw error;
      throw new DcaeError(
        'RUN_FAILED',
        `onnxruntime-node failed to run the session on ${this.device}: ${messageOf(error)}`,
        { cause: error },
      );
    } finally {
      this.#running.delete(running);
    }
    if (signal?.aborted) throw abortedError('The run', signal);
    const result: Record<string, HostTensor> = {};
    for (const name of this.outputNames) {
      const { type, dims, data } = outputs[name]!;
      result[name] = outputTensor(name, type, dims, data);
    }
    return result;
  }

  /** Waits for runs already started, then releases the onnxruntime session. Idempotent. */
  dispose(): Promise<void> {
    return (this.#disposal ??= (async () => {
      this.#onDispose(this);
      await Promise.allSettled(this.#running);
      await this.#backend.release(this.#key);
    })());
  }
}
