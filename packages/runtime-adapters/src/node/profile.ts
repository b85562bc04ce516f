import { fork } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import { checkModel } from '@dcae/core/onnx';
import type { HostTensor } from '@dcae/core';
import { planExternalData } from './external-data.js';
import type { ExternalDataFile, GraphOptimizationLevel } from '@dcae/core/runtime';
import type * as OrtNode from 'onnxruntime-node';

type OrtModule = typeof OrtNode;
type OrtTensor = OrtNode.Tensor;

/**
 * onnxruntime's per-kernel profile of a model, for benchmarks and for tests that check which
 * kernels onnxruntime picked (e.g. that a QDQ graph runs QLinearConv, not dequantized float Convs).
 * Profiling writes a JSON trace; it goes to a private temporary folder that is deleted before
 * this returns, so nothing of it reaches the caller's disk (session options that name files stay
 * refused in `createSession`).
 */

export interface ProfileOptions {
  /** Runs after a warm-up run; the profile sums their kernel times. @defaultValue 1 */
  readonly runs?: number;
  /** Intra-op threads. @defaultValue onnxruntime's default */
  readonly threads?: number;
  /** @defaultValue 'all' */
  readonly graphOptimization?: GraphOptimizationLevel;
  /** External data as bytes or file paths (read into memory). */
  readonly externalData?: readonly ExternalDataFile[];
}

/** One kernel of the optimised graph as onnxruntime ran it. */
export interface ProfiledNode {
  readonly name: string;
  /** The kernel's op type after graph optimisation, e.g. `QLinearConv`, `FusedConv`, `MatMul`. */
  readonly opType: string;
  readonly provider: string;
  /** Summed over the profiled runs, microseconds. */
  readonly durationUs: number;
  /** The shapes of its inputs in the first profiled run (e.g. a Conv's weight tells 3×3 from depthwise). */
  readonly inputShapes: readonly (readonly number[])[];
}

export interface ModelProfile {
  readonly nodes: readonly ProfiledNode[];
  /** Kernel time per op type, largest first. */
  readonly byOpType: readonly {
    readonly opType: string;
    readonly count: number;
    readonly durationUs: number;
  }[];
  /** Sum of all kernel times over the profiled runs, microseconds. */
  readonly totalUs: number;
  readonly runs: number;
  /** Wall time of each profiled run (the warm-up run left out), ms. */
  readonly runMs: readonly number[];
}

interface TraceEvent {
  readonly cat?: string;
  readonly name?: string;
  readonly dur?: number;
  readonly args?: {
    readonly op_name?: string;
    readonly provider?: string;
    readonly input_type_shape?: readonly Readonly<Record<string, readonly number[]>>[];
  };
}

export interface WasmProfileOptions extends ProfileOptions {
  /** Intra-op threads of the wasm backend. @defaultValue 1 */
  readonly threads?: number;
}

/** Profiles `model` on onnxruntime-node's CPU provider (same checks as `createSession`). */
export async function profileModel(
  model: Uint8Array,
  feeds: Readonly<Record<string, HostTensor>>,
  options: ProfileOptions = {},
): Promise<ModelProfile> {
  const runs = options.runs ?? 1;
  // Files go to onnxruntime the way sessions get them (external-data.ts): from their folder when
  // they allow it (a DiT-XL's 2.7 GB does not fit one JavaScript buffer), else read into memory.
  const { plan, sizes } = await planExternalData(options.externalData ?? []);
  checkModel(model, { externalData: sizes });
  const externalData = [
    ...plan.externalBytes.map(({ location, data }) => ({ path: location, data })),
    ...(await Promise.all(
      plan.externalFiles.map(async ({ location, path }) => ({
        path: location,
        data: new Uint8Array(await readFile(path)),
      })),
    )),
  ];
  let ort: OrtModule;
  try {
    const module = (await import('onnxruntime-node')) as OrtModule & { default?: OrtModule };
    ort = module.default ?? module;
  } catch (cause) {
    throw new DcaeError('RUNTIME_UNAVAILABLE', 'onnxruntime-node failed to load; profiling needs it.', {
      cause,
    });
  }
  process.env.ORT_DISABLE_TELEMETRY ??= '1';
  const folder = await mkdtemp(join(tmpdir(), 'dcae-profile-'));
  try {
    const session = await ort.InferenceSession.create(model, {
      executionProviders: ['cpu'],
      graphOptimizationLevel: options.graphOptimization ?? 'all',
      executionMode: 'sequential',
      logSeverityLevel: 3,
      enableProfiling: true,
      profileFilePrefix: join(folder, 'profile'),
      ...(options.threads === undefined ? {} : { intraOpNumThreads: options.threads }),
      ...(externalData.length === 0 ? {} : { externalData }),
      ...(plan.externalFolder === undefined
        ? {}
        : { extra: { session: { model_external_initializers_file_folder_path: plan.externalFolder } } }),
    });
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.shape]);
    }
    const runMs: number[] = [];
    try {
      for (let i = 0; i <= runs; i++) {
        const start = performance.now();
        await session.run(ortFeeds);
        if (i > 0) runMs.push(performance.now() - start);
      }
      session.endProfiling();
    } finally {
      await session.release();
    }
    const [file] = (await readdir(folder)).filter((f) => f.endsWith('.json'));
    if (file === undefined) throw new DcaeError('RUN_FAILED', 'onnxruntime wrote no profile.');
    const events = JSON.parse(await readFile(join(folder, file), 'utf8')) as TraceEvent[];
    return summarize(events, runs, runMs);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/**
 * Profiles `model` on onnxruntime-web's wasm backend: the kernels and the SIMD code a browser runs
 * (docs/benchmarks.md, "Full-size models in the browser"), here in a child Node process, because
 * the wasm build prints its trace on standard output instead of writing a file
 * (`wasm-profile-host.js`). Same checks as `profileModel`; the model and any external data in
 * memory go through a private temporary folder, deleted before this returns. Needs
 * onnxruntime-web (an optional peer dependency).
 */
export async function profileWasmModel(
  model: Uint8Array,
  feeds: Readonly<Record<string, HostTensor>>,
  options: WasmProfileOptions = {},
): Promise<ModelProfile> {
  const runs = options.runs ?? 1;
  const { plan, sizes } = await planExternalData(options.externalData ?? []);
  checkModel(model, { externalData: sizes });
  const folder = await mkdtemp(join(tmpdir(), 'dcae-wasm-profile-'));
  try {
    const modelPath = join(folder, 'model.onnx');
    await writeFile(modelPath, model);
    const externalData = [
      ...plan.externalFiles,
      ...(plan.externalFolder === undefined
        ? []
        : sizes.map(({ location }) => ({ location, path: join(plan.externalFolder!, location) }))),
    ];
    for (const [i, { location, data }] of plan.externalBytes.entries()) {
      const path = join(folder, `external-${i}`);
      await writeFile(path, data);
      externalData.push({ location, path });
    }
    const { stdout, runMs } = await runWasmHost({
      modelPath,
      externalData,
      feeds: Object.fromEntries(
        Object.entries(feeds).map(([name, t]) => [name, { type: t.dtype, dims: [...t.shape], data: t.data }]),
      ),
      runs,
      threads: options.threads ?? 1,
      graphOptimization: options.graphOptimization ?? 'all',
    });
    const events: TraceEvent[] = [];
    for (const line of stdout.split('\n')) {
      const text = line.trim().replace(/,$/, '');
      if (!text.startsWith('{')) continue;
      try {
        events.push(JSON.parse(text) as TraceEvent);
      } catch {
        // Not a trace event (some other line on stdout).
      }
    }
    if (!events.some((e) => e.cat === 'Node'))
      throw new DcaeError(
        'RUN_FAILED',
        'onnxruntime-web printed no profile (is profiling compiled into this build?).',
      );
    return summarize(events, runs, runMs);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

interface WasmHostAnswer {
  readonly ok: boolean;
  readonly runMs?: number[];
  readonly message?: string;
}

/** Starts `wasm-profile-host.js`, sends it the request, and returns its stdout and run times. */
function runWasmHost(request: Record<string, unknown>): Promise<{ stdout: string; runMs: number[] }> {
  return new Promise((resolve, reject) => {
    const child = fork(new URL('./wasm-profile-host.js', import.meta.url), [], {
      serialization: 'advanced',
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
      execArgv: [],
    });
    const out: string[] = [];
    const err: string[] = [];
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => out.push(chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => err.push(chunk));
    let answer: WasmHostAnswer | undefined;
    child.once('message', (message) => {
      answer = message as WasmHostAnswer;
    });
    child.once('error', (cause) =>
      reject(new DcaeError('RUNTIME_UNAVAILABLE', 'The wasm profiling process did not start.', { cause })),
    );
    child.once('close', (code, signal) => {
      if (answer?.ok === true) resolve({ stdout: out.join(''), runMs: answer.runMs ?? [] });
      else
        reject(
          new DcaeError(
            'RUN_FAILED',
            answer?.message !== undefined
              ? `onnxruntime-web (wasm) failed to profile the model: ${answer.message}`
              : `The wasm profiling process ended (${signal ?? `exit code ${String(code)}`}) without an answer: ${err.join('').slice(-500)}`,
          ),
        );
    });
    child.send(request);
  });
}

/** Sums the kernel events of the last `runs` runs (the first run is the warm-up). */
function summarize(events: readonly TraceEvent[], runs: number, runMs: readonly number[]): ModelProfile {
  const runEvents = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const kernels = events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time'));
  // Kernel events come in run order; skip the warm-up run's share.
  const perRun = runEvents.length > 0 ? Math.round(kernels.length / runEvents.length) : kernels.length;
  const measured = kernels.slice(kernels.length - perRun * runs);
  const nodes = new Map<string, { -readonly [K in keyof ProfiledNode]: ProfiledNode[K] }>();
  for (const e of measured) {
    const name = e.name!.slice(0, -'_kernel_time'.length);
    const node = nodes.get(name) ?? {
      name,
      opType: e.args?.op_name ?? '?',
      provider: e.args?.provider ?? '?',
      durationUs: 0,
      inputShapes: (e.args?.input_type_shape ?? []).map((typed) => [...(Object.values(typed)[0] ?? [])]),
    };
    node.durationUs += e.dur ?? 0;
    nodes.set(name, node);
  }
  const byOp = new Map<string, { opType: string; count: number; durationUs: number }>();
  for (const n of nodes.values()) {
    const op = byOp.get(n.opType) ?? { opType: n.opType, count: 0, durationUs: 0 };
    op.count += 1;
    op.durationUs += n.durationUs;
    byOp.set(n.opType, op);
  }
  const list = [...nodes.values()];
  return {
    nodes: list,
    byOpType: [...byOp.values()].sort((a, b) => b.durationUs - a.durationUs),
    totalUs: list.reduce((s, n) => s + n.durationUs, 0),
    runs,
    runMs,
  };
}
