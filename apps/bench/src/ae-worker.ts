import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { DcAeConfig } from '@dcae/autoencoder';
import type { NodeDevice } from '@dcae/runtime-adapters/node';
import type { CompareOptions } from './measure.js';
import { formatMs, summarize } from './measure.js';
import type { Series, Work } from './scenario.js';

/**
 * An autoencoder loaded in its own child process, run on request. Each model's process has its own
 * memory figures: before every run the peak RSS (VmHWM) is reset through `/proc/self/clear_refs`,
 * so a run's peak is that run's alone (model weights included). Several workers may be alive at
 * once; only one runs at a time, so their cases can be measured side by side in rounds.
 */

export interface WorkerModel {
  /** A diffusers-format folder. */
  readonly folder: string;
  /** The DC-AE architecture (the folder then needs no config.json); undefined: config.json decides. */
  readonly config?: DcAeConfig;
  readonly parts?: readonly ('encoder' | 'decoder')[];
  readonly dtype?: 'fp32' | 'fp16';
}

/** One encode or decode of a random input of `shape` (NCHW: images for encode, latents for decode). */
export interface WorkerRun {
  readonly operation: 'encode' | 'decode';
  readonly shape: readonly number[];
}

export interface Memory {
  /** Bytes: resident set and its high-water mark (since the last reset). */
  readonly rss: number;
  readonly hwm: number;
}

export interface RunResult {
  readonly ms: number;
  readonly memory: Memory;
  /** Whether the peak was reset before the run (false where /proc/self/clear_refs is not writable). */
  readonly peakReset: boolean;
}

/**
 * The child: loads the model, answers `{ id, operation, shape }` lines with `{ id, ms, memory }`
 * (the input is random, fixed per shape; the output's shape and finiteness are checked). Plain
 * JavaScript, written next to the cache and given the packages' resolved URLs.
 */
const CHILD = String.raw`
import { readFileSync, writeFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
const spec = JSON.parse(process.argv[2]);
const { loadAutoencoder } = await import(spec.urls.autoencoder);
const { createNodeRuntime } = await import(spec.urls.runtime);
const { createRng } = await import(spec.urls.core);
const memory = () => {
  const status = readFileSync('/proc/self/status', 'utf8');
  const kB = (key) => Number(new RegExp(key + ':\\s+(\\d+) kB').exec(status)[1]) * 1024;
  return { rss: kB('VmRSS'), hwm: kB('VmHWM') };
};
const resetPeak = () => {
  try { writeFileSync('/proc/self/clear_refs', '5'); return true; } catch { return false; }
};
const send = (message) => process.stdout.write(JSON.stringify(message) + '\n');
const runtime = createNodeRuntime(spec.runtime);
const t0 = performance.now();
const ae = await loadAutoencoder(spec.model.folder, {
  runtime, config: spec.model.config, parts: spec.model.parts, dtype: spec.model.dtype,
});
send({ ready: true, loadMs: performance.now() - t0, memory: memory(), f: ae.spatialCompressionRatio, latentChannels: ae.latentChannels });
const inputs = new Map();
const input = (operation, shape) => {
  const key = operation + shape.join();
  if (!inputs.has(key)) {
    const rng = createRng(7);
    const x = rng.randn(shape);
    if (operation === 'encode') for (let i = 0; i < x.data.length; i++) x.data[i] = Math.tanh(x.data[i]);
    inputs.set(key, x);
  }
  return inputs.get(key);
};
for await (const line of createInterface({ input: process.stdin })) {
  const { id, operation, shape } = JSON.parse(line);
  if (operation === 'exit') break;
  try {
    const x = input(operation, shape);
    const f = ae.spatialCompressionRatio;
    const options = { tiling: 'never', batchSize: shape[0] };
    const peakReset = resetPeak();
    const start = performance.now();
    const y = operation === 'encode' ? await ae.encode(x, options) : await ae.decode(x, options);
    const ms = performance.now() - start;
    const want = operation === 'encode'
      ? [shape[0], ae.latentChannels, shape[2] / f, shape[3] / f]
      : [shape[0], 3, shape[2] * f, shape[3] * f];
    if (y.shape.join() !== want.join()) throw new Error(operation + ' gave ' + y.shape.join('×') + ', expected ' + want.join('×'));
    if (!y.data.every(Number.isFinite)) throw new Error(operation + ' output has non-finite values');
    send({ id, ms, memory: memory(), peakReset });
  } catch (error) {
    send({ id, error: String(error?.stack ?? error) });
  }
}
await ae.dispose();
await runtime.dispose();
`;

export interface ModelWorker {
  /** Time to load (config, weights binding; no session yet) and the memory right after. */
  readonly loadMs: number;
  readonly afterLoad: Memory;
  /** The model's spatial compression and latent channels. */
  readonly f: number;
  readonly latentChannels: number;
  run(run: WorkerRun): Promise<RunResult>;
  close(): Promise<void>;
}

/** How the worker's process and runtime are set up. */
export interface WorkerOptions {
  /** `createNodeRuntime` settings, e.g. `{ devices: ['webgpu'] }`. @defaultValue the CPU */
  readonly runtime?: { readonly devices?: readonly NodeDevice[]; readonly threads?: number };
  /** Extra environment variables of the child (e.g. `VK_ICD_FILENAMES`). */
  readonly env?: Readonly<Record<string, string>>;
}

/** Starts a worker for `model` (its script is written into `cacheDir`). */
export async function startWorker(
  cacheDir: string,
  model: WorkerModel,
  options: WorkerOptions = {},
): Promise<ModelWorker> {
  const script = join(cacheDir, 'ae-worker-child.mjs');
  await writeFile(script, CHILD);
  const urls = {
    autoencoder: import.meta.resolve('@dcae/autoencoder/node'),
    runtime: import.meta.resolve('@dcae/runtime-adapters/node'),
    core: import.meta.resolve('@dcae/core'),
  };
  const child: ChildProcessWithoutNullStreams = spawn(
    process.execPath,
    [script, JSON.stringify({ urls, model, runtime: options.runtime })],
    {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, ...options.env },
    },
  );
  // A write to a child that died fails with EPIPE; its 'close' reports the death with its stderr.
  child.stdin.on('error', () => undefined);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const waiting = new Map<
    number,
    { resolve: (m: Record<string, unknown>) => void; reject: (e: Error) => void }
  >();
  let ready: ((m: Record<string, unknown>) => void) | undefined;
  let failed: Error | undefined;
  const fail = (error: Error): void => {
    failed ??= error;
    for (const w of waiting.values()) w.reject(error);
    waiting.clear();
  };
  const started = new Promise<Record<string, unknown>>((resolve, reject) => {
    ready = resolve;
    child.on('close', (code) => {
      const error = new Error(`model worker (${model.folder}) exited with ${code}: ${stderr.trim()}`);
      reject(error);
      fail(error);
    });
    child.on('error', reject);
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (!line.startsWith('{')) return;
    const message = JSON.parse(line) as Record<string, unknown>;
    if (message.ready === true) return ready?.(message);
    const pending = waiting.get(message.id as number);
    waiting.delete(message.id as number);
    if (typeof message.error === 'string')
      pending?.reject(new Error(`model worker (${model.folder}): ${message.error}`));
    else pending?.resolve(message);
  });
  const hello = await started;
  let next = 0;
  return {
    loadMs: hello.loadMs as number,
    afterLoad: hello.memory as Memory,
    f: hello.f as number,
    latentChannels: hello.latentChannels as number,
    run: (run) => {
      if (failed) return Promise.reject(failed);
      const id = next++;
      return new Promise<RunResult>((resolve, reject) => {
        waiting.set(id, { resolve: (m) => resolve(m as unknown as RunResult), reject });
        child.stdin.write(`${JSON.stringify({ id, ...run })}\n`);
      });
    },
    close: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('close', resolve));
      child.stdin.end(`${JSON.stringify({ operation: 'exit' })}\n`);
      await exited;
    },
  };
}

/** One case: a run of one worker, with its work (for GFLOP/s) and its images (for images/s). */
export interface WorkerCase {
  readonly name: string;
  readonly worker: ModelWorker;
  readonly run: WorkerRun;
  readonly work?: Work;
  readonly images: number;
}

export interface MeasuredCase {
  readonly case: WorkerCase;
  readonly series: Series;
  /** VmHWM during the first run (bytes): weights and session memory plus this case's activations. */
  readonly peakRss: number;
  readonly peakReset: boolean;
}

/** Session setup of one worker's part: graph build and session creation, on a minimal input. */
export interface SetupResult {
  readonly worker: ModelWorker;
  readonly operation: 'encode' | 'decode';
  /** Build, session and one run on [1, C, f, f] pixels or [1, c, 1, 1] latents. */
  readonly ms: number;
  /** VmHWM during it (bytes). */
  readonly peakRss: number;
}

/**
 * Measures worker cases side by side, as `compareCases` does, in three steps:
 * 1. each worker's sessions are set up on a minimal input (one latent cell), so that set-up memory
 *    and time stay out of the cases;
 * 2. every case runs once, each worker's cases in ascending order of work, with the peak RSS reset
 *    before each: onnxruntime's arena keeps the buffers of earlier runs, so in ascending order a
 *    case's peak is the resident model plus its own activations (counted as the first warm-up);
 * 3. the remaining warm-up rounds, then `samples` rounds that each run every case once, starting
 *    with a different case each round.
 * Times are the workers' own (the encode or decode call), not the message round trip.
 */
export async function compareWorkerCases(
  cases: readonly WorkerCase[],
  options: CompareOptions,
): Promise<{ cases: MeasuredCase[]; setup: SetupResult[] }> {
  const setup: SetupResult[] = [];
  for (const c of cases) {
    const { worker, run } = c;
    if (setup.some((s) => s.worker === worker && s.operation === run.operation)) continue;
    const minimal =
      run.operation === 'encode' ? [1, run.shape[1]!, worker.f, worker.f] : [1, run.shape[1]!, 1, 1];
    const result = await worker.run({ operation: run.operation, shape: minimal });
    setup.push({ worker, operation: run.operation, ms: result.ms, peakRss: result.memory.hwm });
  }
  const work = (c: WorkerCase): number => c.work?.amount ?? c.run.shape.reduce((a, b) => a * b, 1);
  const first = new Map<WorkerCase, RunResult>();
  for (const c of [...cases].sort((a, b) => work(a) - work(b))) first.set(c, await c.worker.run(c.run));
  for (let round = 1; round < options.warmup; round++) for (const c of cases) await c.worker.run(c.run);

  const times = cases.map((): number[] => []);
  for (let round = 0; round < options.samples; round++) {
    for (let k = 0; k < cases.length; k++) {
      const index = (round + k) % cases.length;
      times[index]!.push((await cases[index]!.worker.run(cases[index]!.run)).ms);
    }
    options.log?.(
      `round ${round + 1}/${options.samples}: ` +
        cases.map((c, i) => `${c.name} ${formatMs(times[i]!.at(-1)!)}`).join(', '),
    );
  }
  const measured = cases.map((c, i) => {
    const firstRun = first.get(c)!;
    return {
      case: c,
      series: summarize(c.name, times[i]!, c.work),
      peakRss: firstRun.memory.hwm,
      peakReset: firstRun.peakReset,
    };
  });
  return { cases: measured, setup };
}
