import { resolve } from 'node:path';
import { DcaeError } from '@dcae/core';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import type { LatentPlan } from '@dcae/latents';
import {
  enqueuePlan,
  finalize,
  isS3Url,
  makePlan,
  openStore,
  queueCounts,
  readPlan,
  resolvePartition,
  runShards,
  startWorker,
  verify,
  writePlan,
} from '@dcae/latents/node';
import type { ShardModel } from '@dcae/latents/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type { DeviceChoice } from '../options.js';
import { Reporter } from '../reporter.js';
import type { CommandContext } from './shared.js';

/** Options of every `dcae latents` verb. */
interface Flags {
  readonly json?: boolean;
  readonly quiet?: boolean;
  readonly debug?: boolean;
}

export interface LatentsPlanOptions extends Flags {
  readonly model: string;
  readonly input: string;
  readonly output: string;
  readonly size?: number;
  readonly shardSize?: number;
  readonly dtype?: 'fp32' | 'fp16';
  readonly layout?: 'wds' | 'npy-tree';
  readonly scale?: boolean;
  readonly batch?: number;
  readonly planOut?: string;
}

const reporter = (opts: Flags, ctx: CommandContext): Reporter =>
  new Reporter(ctx.io, { json: opts.json === true, quiet: opts.quiet === true });

function defaultPlanPath(output: string, planOut: string | undefined): string {
  if (planOut !== undefined) return resolve(planOut);
  if (isS3Url(output)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      'An s3:// output needs --plan-out <local path> for the plan file (workers read it from there).',
    );
  }
  return resolve(output, 'plan.json');
}

async function writeNewPlan(plan: LatentPlan, path: string): Promise<void> {
  await writePlan(path, plan);
  // The dataset describes itself: a copy of the plan lives next to the shards.
  if (isS3Url(plan.output))
    await openStore(plan.output).putDerived(
      'plan.json',
      new TextEncoder().encode(`${JSON.stringify(plan)}\n`),
    );
}

/** `dcae latents plan` (and the planning half of `dcae decode-shards`). */
export async function runLatentsPlan(
  opts: LatentsPlanOptions,
  ctx: CommandContext,
  kind: 'encode' | 'decode' = 'encode',
): Promise<string> {
  const rep = reporter(opts, ctx);
  const plan = await makePlan({
    kind,
    model: opts.model,
    input: opts.input,
    output: opts.output,
    ...(opts.size !== undefined ? { size: opts.size } : {}),
    ...(opts.shardSize !== undefined ? { shardSize: opts.shardSize } : {}),
    ...(opts.dtype ? { dtype: opts.dtype } : {}),
    ...(opts.layout ? { layout: opts.layout } : {}),
    ...(opts.scale !== undefined ? { scale: opts.scale } : {}),
    ...(opts.batch !== undefined ? { batchSize: opts.batch } : {}),
  });
  const path = defaultPlanPath(opts.output, opts.planOut);
  await writeNewPlan(plan, path);
  const samples = plan.shards.reduce(
    (a, s) =>
      a +
      (s.source.kind === 'files' ? s.source.files.length : s.source.kind === 'parquet' ? s.source.rows : 0),
    0,
  );
  if (kind === 'encode') {
    rep.result(
      `wrote ${path}: run ${plan.runId}, ${plan.shards.length} shards (${plan.input.kind}${samples ? `, ${samples} ${plan.input.kind === 'img2dataset-parquet' ? 'rows' : 'images'}` : ''}), ${plan.size}² ${plan.dtype}, layout ${plan.layout}`,
      {
        command: 'latents plan',
        plan: path,
        runId: plan.runId,
        shards: plan.shards.length,
        samples,
        input: plan.input.kind,
      },
    );
  }
  return path;
}

/** The model a shard runs: loaded lazily, once per process. */
function modelOpener(
  plan: LatentPlan,
  device: DeviceChoice,
  threads: number | undefined,
  worker: 'process' | false,
  signal?: AbortSignal,
) {
  let opened: Promise<ShardModel & { close(): Promise<void> }> | undefined;
  const open = async () => {
    const runtime = createNodeRuntime({ devices: device === 'auto' ? 'auto' : [device], threads, worker });
    try {
      const ae = await loadAutoencoder(plan.model.source, {
        runtime,
        ...(signal ? { signal } : {}),
        parts: plan.kind === 'encode' ? ['encoder'] : ['decoder'],
      });
      return {
        name: ae.name,
        scalingFactor: ae.scalingFactor,
        dtype: ae.dtype,
        encode: (x: Parameters<ShardModel['encode']>[0], o?: { signal?: AbortSignal }) =>
          ae.encode(x, o?.signal ? { signal: o.signal } : {}),
        decode: (x: Parameters<ShardModel['decode']>[0], o?: { signal?: AbortSignal }) =>
          ae.decode(x, o?.signal ? { signal: o.signal } : {}),
        close: async () => {
          await ae.dispose();
          await runtime.dispose();
        },
      };
    } catch (error) {
      await runtime.dispose();
      throw error;
    }
  };
  return {
    model: () => (opened ??= open()),
    close: async () => {
      if (opened) await (await opened.catch(() => undefined))?.close();
    },
  };
}

export interface LatentsRunOptions extends Flags {
  readonly plan: string;
  readonly index?: number;
  readonly rank?: number;
  readonly world?: number;
  readonly device: DeviceChoice;
  readonly threads?: number;
}

/** `dcae latents run`: static partitioning, or every shard on this machine. */
export async function runLatentsRun(opts: LatentsRunOptions, ctx: CommandContext): Promise<void> {
  const rep = reporter(opts, ctx);
  const plan = await readPlan(opts.plan);
  const partition = resolvePartition(plan.shards.length, {
    ...(opts.index !== undefined ? { index: opts.index } : {}),
    ...(opts.rank !== undefined ? { rank: opts.rank } : {}),
    ...(opts.world !== undefined ? { world: opts.world } : {}),
  });
  const store = openStore(plan.output);
  const opener = modelOpener(plan, opts.device, opts.threads, 'process', ctx.signal);
  const started = performance.now();
  const counts = { done: 0, committed: 0, lost: 0, samples: 0, skipped: 0 };
  rep.progress(`run ${plan.runId}: ${partition.description} of ${plan.shards.length}`);
  try {
    const { finalized } = await runShards(plan, partition.shards, {
      store,
      model: opener.model,
      signal: ctx.signal,
      onProgress: (index, done, total) => rep.bar(`shard ${index}`, done, total ?? 0),
      onShard: (index, result) => {
        counts[result.status]++;
        counts.samples += result.record.nsamples;
        counts.skipped += result.record.skipped.length;
        const finished = counts.done + counts.committed + counts.lost;
        const rate = counts.samples / ((performance.now() - started) / 1000);
        rep.bar('shards', finished, partition.shards.length, 'steps', `${rate.toFixed(1)} samples/s`);
        if (result.record.skipped.length > 0)
          rep.progress(
            `shard ${index}: ${result.record.skipped.length} inputs skipped (see its commit record)`,
          );
      },
    });
    const seconds = (performance.now() - started) / 1000;
    rep.result(
      [
        `run ${plan.runId}: ${counts.done} shards written, ${counts.committed} already committed, ${counts.lost} lost to another attempt; ${counts.samples} samples, ${counts.skipped} skipped, ${seconds.toFixed(1)} s`,
        finalized
          ? `all ${finalized.shards} shards committed: wrote manifest.jsonl${plan.layout === 'wds' ? ' and wids-meta.json' : ''}`
          : 'not all shards of the plan are committed yet (other indexes?)',
      ].join('\n'),
      {
        command: 'latents run',
        runId: plan.runId,
        shards: partition.shards,
        ...counts,
        seconds,
        finalized: finalized ?? null,
      },
    );
  } finally {
    await opener.close();
  }
}

export interface LatentsEnqueueOptions extends Flags {
  readonly plan: string;
  readonly redis: string;
  readonly attempts?: number;
}

export async function runLatentsEnqueue(opts: LatentsEnqueueOptions, ctx: CommandContext): Promise<void> {
  const planPath = resolve(opts.plan);
  const plan = await readPlan(planPath);
  const result = await enqueuePlan(
    planPath,
    plan,
    opts.redis,
    opts.attempts !== undefined ? { attempts: opts.attempts } : {},
  );
  reporter(opts, ctx).result(
    `run ${plan.runId}: ${result.added} jobs added, ${result.jobs - result.added} already queued`,
    {
      command: 'latents enqueue',
      runId: plan.runId,
      ...result,
    },
  );
}

export interface LatentsWorkerOptions extends Flags {
  readonly plan: string;
  readonly redis: string;
  readonly concurrency?: number;
  readonly device: DeviceChoice;
  readonly threads?: number;
  readonly lockDuration?: number;
  readonly exitWhenDone?: boolean;
}

/** `dcae latents worker`: a BullMQ worker; each shard runs in a sandboxed child process. */
export async function runLatentsWorker(opts: LatentsWorkerOptions, ctx: CommandContext): Promise<void> {
  const rep = reporter(opts, ctx);
  const planPath = resolve(opts.plan);
  const plan = await readPlan(planPath);
  const store = openStore(plan.output);
  // The sandboxed children inherit the environment: device and threads travel that way.
  process.env.DCAE_LATENTS_DEVICE = opts.device;
  if (opts.threads !== undefined) process.env.DCAE_LATENTS_THREADS = String(opts.threads);
  const processorFile = new URL('./latents-processor.js', import.meta.url);
  const lockMs = (opts.lockDuration ?? 60) * 1000;
  const worker = startWorker({
    plan,
    redis: opts.redis,
    processorFile,
    concurrency: opts.concurrency ?? 1,
    lockDurationMs: lockMs,
    onEvent: (event) => {
      if (event.type === 'completed')
        rep.progress(`shard ${event.index}: ${event.status} (attempt ${event.attemptsMade})`);
      else if (event.type === 'failed')
        rep.progress(`shard ${event.index ?? '?'} failed (attempt ${event.attemptsMade}): ${event.reason}`);
      else rep.progress(`worker: ${event.reason}`);
    },
  });
  rep.progress(
    `worker for run ${plan.runId} (concurrency ${opts.concurrency ?? 1}, device ${opts.device}, lock ${lockMs / 1000} s)`,
  );
  const stop = new Promise<string>((resolveStop) => {
    ctx.signal.addEventListener('abort', () => resolveStop('signal'), { once: true });
    if (opts.exitWhenDone === true) {
      let drainedChecks = 0;
      const tick = async (): Promise<void> => {
        try {
          if ((await store.countCommits()) === plan.shards.length) return resolveStop('done');
          const c = await queueCounts(plan, opts.redis);
          drainedChecks = c.waiting + c.active + c.delayed === 0 ? drainedChecks + 1 : 0;
          if (drainedChecks >= 3) return resolveStop('drained');
        } catch {
          // Redis restarting: try again.
        }
        setTimeout(() => void tick(), 500);
      };
      void tick();
    }
  });
  const why = await stop;
  // Graceful: stop fetching, let running shards finish (SIGTERM), or abandon them on a second signal.
  await worker.close(why === 'signal' ? false : true);
  if (why === 'done') await finalize(plan, store);
  if (why === 'signal') return;
  const committed = await store.countCommits();
  if (committed !== plan.shards.length) {
    throw new DcaeError(
      'RUN_FAILED',
      `The queue is drained but ${plan.shards.length - committed} of ${plan.shards.length} shards have no commit record (failed jobs); see \`dcae latents status\` and rerun enqueue or run.`,
    );
  }
  rep.result(`run ${plan.runId}: all ${plan.shards.length} shards committed`, {
    command: 'latents worker',
    runId: plan.runId,
    shards: plan.shards.length,
  });
}

export interface LatentsStatusOptions extends Flags {
  readonly plan: string;
  readonly redis?: string;
}

export async function runLatentsStatus(opts: LatentsStatusOptions, ctx: CommandContext): Promise<void> {
  const plan = await readPlan(opts.plan);
  const store = openStore(plan.output);
  const records = (await store.listCommits()).filter((r) => r.runId === plan.runId);
  const samples = records.reduce((a, r) => a + r.nsamples, 0);
  const skipped = records.reduce((a, r) => a + r.skipped.length, 0);
  const times = records.map((r) => Date.parse(r.committedAt)).sort((a, b) => a - b);
  const spanS = times.length >= 2 ? (times.at(-1)! - times[0]!) / 1000 : 0;
  const avgShardS =
    records.length > 0 ? records.reduce((a, r) => a + r.elapsedMs, 0) / records.length / 1000 : 0;
  const shardsPerS = spanS > 0 ? (records.length - 1) / spanS : avgShardS > 0 ? 1 / avgShardS : 0;
  const remaining = plan.shards.length - records.length;
  const etaS = shardsPerS > 0 ? remaining / shardsPerS : null;
  const queue = opts.redis ? await queueCounts(plan, opts.redis) : undefined;
  const width = 30;
  const filled = Math.round((records.length / Math.max(1, plan.shards.length)) * width);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}]`;
  const lines = [
    `run ${plan.runId} ${bar} ${records.length}/${plan.shards.length} shards committed, ${samples} samples, ${skipped} skipped`,
    `throughput ${shardsPerS > 0 ? `${(shardsPerS * 60).toFixed(2)} shards/min` : '–'}, ${samples > 0 && spanS > 0 ? `${(samples / spanS).toFixed(1)} samples/s` : '–'}; ETA ${etaS === null ? '–' : `${Math.ceil(etaS)} s`}`,
    ...(queue
      ? [
          `queue: ${queue.waiting} waiting, ${queue.active} active, ${queue.delayed} delayed (retry backoff), ${queue.completed} completed, ${queue.failed} failed`,
        ]
      : []),
  ];
  reporter(opts, ctx).result(lines.join('\n'), {
    command: 'latents status',
    runId: plan.runId,
    shards: plan.shards.length,
    committed: records.length,
    samples,
    skipped,
    shardsPerSecond: shardsPerS,
    etaSeconds: etaS,
    queue: queue ?? null,
  });
}

export interface LatentsVerifyOptions extends Flags {
  readonly plan: string;
}

export async function runLatentsVerify(opts: LatentsVerifyOptions, ctx: CommandContext): Promise<void> {
  const plan = await readPlan(opts.plan);
  const report = await verify(plan, openStore(plan.output));
  const text = [
    `run ${plan.runId}: ${report.present}/${report.shards} shards present, ${report.samples} samples, ${report.skipped} inputs skipped`,
    `missing ${report.missing.length}, sha mismatches ${report.shaMismatch.length}, corrupt ${report.corrupt.length}, duplicate keys ${report.duplicateKeys.length}, temp files ${report.tempFiles.length}, index problems ${report.index.length}`,
    ...report.corrupt.slice(0, 10).map((c) => `  corrupt shard ${c.shard}: ${c.reason}`),
    ...report.index.map((i) => `  ${i}`),
  ].join('\n');
  if (!report.ok) {
    ctx.io.stderr.write(`${text}\n`);
    if (opts.json === true)
      ctx.io.stdout.write(`${JSON.stringify({ command: 'latents verify', ...report })}\n`);
    throw new DcaeError('INTEGRITY', `verify failed for run ${plan.runId}: see the counts above.`, {
      detail: { ...report },
    });
  }
  reporter(opts, ctx).result(text, { command: 'latents verify', ...report });
}

export async function runLatentsFinalize(opts: LatentsVerifyOptions, ctx: CommandContext): Promise<void> {
  const plan = await readPlan(opts.plan);
  const result = await finalize(plan, openStore(plan.output));
  reporter(opts, ctx).result(
    `run ${plan.runId}: ${result.committed}/${result.shards} shards committed; wrote manifest.jsonl${plan.layout === 'wds' ? ' and wids-meta.json' : ''}${result.complete ? '' : ' (partial)'}`,
    { command: 'latents finalize', ...result },
  );
}

export interface DecodeShardsOptions extends Flags {
  readonly model: string;
  readonly input: string;
  readonly output: string;
  readonly batch?: number;
  readonly planOut?: string;
  readonly planOnly?: boolean;
  readonly device: DeviceChoice;
  readonly threads?: number;
}

/** `dcae decode-shards`: latent shards → PNG image shards (shard i → shard i), then run locally unless --plan-only. */
export async function runDecodeShards(opts: DecodeShardsOptions, ctx: CommandContext): Promise<void> {
  const planPath = await runLatentsPlan(
    { ...opts, ...(opts.batch !== undefined ? { batch: opts.batch } : {}) },
    ctx,
    'decode',
  );
  if (opts.planOnly === true) {
    reporter(opts, ctx).result(`wrote ${planPath}; run it with dcae latents run|enqueue --plan ${planPath}`, {
      command: 'decode-shards',
      plan: planPath,
    });
    return;
  }
  await runLatentsRun({ ...opts, plan: planPath }, ctx);
}
