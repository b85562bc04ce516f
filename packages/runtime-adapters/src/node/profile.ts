import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import { checkModel } from '@dcae/core/onnx';
import type { HostTensor } from '@dcae/core';
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
}

interface TraceEvent {
  readonly cat?: string;
  readonly name?: string;
  readonly dur?: number;
  readonly args?: { readonly op_name?: string; readonly provider?: string };
}

/** Profiles `model` on onnxruntime-node's CPU provider (same checks as `createSession`). */
export async function profileModel(
  model: Uint8Array,
  feeds: Readonly<Record<string, HostTensor>>,
  options: ProfileOptions = {},
): Promise<ModelProfile> {
  const runs = options.runs ?? 1;
  const externalData = await Promise.all(
    (options.externalData ?? []).map(async ({ location, data }) => ({
      path: location,
      data: typeof data === 'string' ? new Uint8Array(await readFile(data)) : data,
    })),
  );
  checkModel(model, {
    externalData: externalData.map((e) => ({ location: e.path, size: e.data.byteLength })),
  });
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
    });
    const ortFeeds: Record<string, OrtTensor> = {};
    for (const [name, t] of Object.entries(feeds)) {
      ortFeeds[name] = new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, [...t.shape]);
    }
    try {
      for (let i = 0; i <= runs; i++) await session.run(ortFeeds);
      session.endProfiling();
    } finally {
      await session.release();
    }
    const [file] = (await readdir(folder)).filter((f) => f.endsWith('.json'));
    if (file === undefined) throw new DcaeError('RUN_FAILED', 'onnxruntime wrote no profile.');
    const events = JSON.parse(await readFile(join(folder, file), 'utf8')) as TraceEvent[];
    return summarize(events, runs);
  } finally {
    await rm(folder, { recursive: true, force: true });
  }
}

/** Sums the kernel events of the last `runs` runs (the first run is the warm-up). */
function summarize(events: readonly TraceEvent[], runs: number): ModelProfile {
  const runEvents = events.filter((e) => e.cat === 'Session' && e.name === 'model_run');
  const kernels = events.filter((e) => e.cat === 'Node' && e.name?.endsWith('_kernel_time'));
  // Kernel events come in run order; skip the warm-up run's share.
  const perRun = runEvents.length > 0 ? Math.round(kernels.length / runEvents.length) : kernels.length;
  const measured = kernels.slice(kernels.length - perRun * runs);
  const nodes = new Map<string, { name: string; opType: string; provider: string; durationUs: number }>();
  for (const e of measured) {
    const name = e.name!.slice(0, -'_kernel_time'.length);
    const node = nodes.get(name) ?? {
      name,
      opType: e.args?.op_name ?? '?',
      provider: e.args?.provider ?? '?',
      durationUs: 0,
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
  };
}
