import { Queue, Worker } from 'bullmq';
import type { Job } from 'bullmq';
import { DcaeError } from '@dcae/core';
import type { LatentPlan } from '../plan-types.js';
import { finalize } from './finalize.js';
import { readPlan } from './plan.js';
import { openStore } from './s3-store.js';
import { processShard } from './shard.js';
import type { ShardModel } from './shard.js';
import type { ShardStore } from './store.js';

/**
 * BullMQ on Redis (docs/latents.md, "BullMQ"): one job per shard, job id `r<runId>-s<index>` (an
 * idempotent add), `attempts` with exponential backoff, and a queue prefix `{dcae-<runId>}` (a
 * Redis Cluster hash tag, so one run's keys share a slot; runs never mix). The job carries a
 * reference (plan path + index), never the file list. Processors are ALWAYS sandboxed in a child
 * process: onnxruntime-node's run() blocks the event loop, which would stop lock renewal.
 */
export const QUEUE_NAME = 'dcae-latents';

export const queuePrefix = (plan: LatentPlan): string => `{dcae-${plan.runId}}`;
export const jobId = (plan: LatentPlan, index: number): string => `r${plan.runId}-s${index}`;

export interface ShardJobData {
  readonly plan: string;
  readonly index: number;
}

export interface QueueConnection {
  readonly redis: string;
}

function connection(redis: string) {
  if (!/^rediss?:\/\//.test(redis)) {
    throw new DcaeError('INVALID_ARGUMENT', `--redis must be a redis:// or rediss:// URL, got ${redis}.`);
  }
  return { url: redis, maxRetriesPerRequest: null };
}

export function openQueue(plan: LatentPlan, redis: string): Queue<ShardJobData> {
  return new Queue<ShardJobData>(QUEUE_NAME, { connection: connection(redis), prefix: queuePrefix(plan) });
}

export interface EnqueueOptions {
  readonly attempts?: number;
  readonly backoffMs?: number;
}

/** Adds one job per shard; re-running it adds nothing (the job ids exist). */
export async function enqueuePlan(
  planPath: string,
  plan: LatentPlan,
  redis: string,
  options: EnqueueOptions = {},
): Promise<{ readonly jobs: number; readonly added: number }> {
  const queue = openQueue(plan, redis);
  try {
    let added = 0;
    for (let start = 0; start < plan.shards.length; start += 1000) {
      const chunk = plan.shards.slice(start, start + 1000);
      const before = await queue.count();
      await queue.addBulk(
        chunk.map((s) => ({
          name: 'shard',
          data: { plan: planPath, index: s.index },
          opts: {
            jobId: jobId(plan, s.index),
            attempts: options.attempts ?? 5,
            backoff: { type: 'exponential', delay: options.backoffMs ?? 1000 },
            removeOnFail: false,
            removeOnComplete: false,
          },
        })),
      );
      added += Math.max(0, (await queue.count()) - before);
    }
    return { jobs: plan.shards.length, added };
  } finally {
    await queue.close();
  }
}

export interface QueueCounts {
  readonly waiting: number;
  readonly active: number;
  readonly delayed: number;
  readonly completed: number;
  readonly failed: number;
}

export async function queueCounts(plan: LatentPlan, redis: string): Promise<QueueCounts> {
  const queue = openQueue(plan, redis);
  try {
    const c = await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed', 'prioritized');
    return {
      waiting: (c.waiting ?? 0) + (c.prioritized ?? 0),
      active: c.active ?? 0,
      delayed: c.delayed ?? 0,
      completed: c.completed ?? 0,
      failed: c.failed ?? 0,
    };
  } finally {
    await queue.close();
  }
}

export interface StartWorkerOptions {
  readonly plan: LatentPlan;
  readonly redis: string;
  /** The sandboxed processor module (a file exporting `createShardProcessor(...)`'s result as default). */
  readonly processorFile: string | URL;
  /** Shards at once (one child process each). @defaultValue 1 */
  readonly concurrency?: number;
  /** @defaultValue 60 000 (GPU shards take long; the child process keeps the parent's event loop free) */
  readonly lockDurationMs?: number;
  readonly stalledIntervalMs?: number;
  readonly maxStalledCount?: number;
  readonly onEvent?: (event: WorkerEvent) => void;
}

export type WorkerEvent =
  | {
      readonly type: 'completed';
      readonly index: number;
      readonly status: string;
      readonly attemptsMade: number;
    }
  | {
      readonly type: 'failed';
      readonly index: number | undefined;
      readonly reason: string;
      readonly attemptsMade: number;
    }
  | { readonly type: 'error'; readonly reason: string };

/**
 * A BullMQ worker whose processor runs in child processes (never in this process: see the module
 * note). There is no in-process option on purpose (docs/latents.md "BullMQ on Redis": an in-process processor running
 * onnxruntime lost its locks and 4 of 6 finished shards ended "failed").
 */
export function startWorker(options: StartWorkerOptions): Worker<ShardJobData> {
  const { plan } = options;
  const worker = new Worker<ShardJobData>(QUEUE_NAME, options.processorFile, {
    connection: connection(options.redis),
    prefix: queuePrefix(plan),
    concurrency: options.concurrency ?? 1,
    useWorkerThreads: false,
    lockDuration: options.lockDurationMs ?? 60_000,
    stalledInterval:
      options.stalledIntervalMs ?? Math.max(1000, Math.floor((options.lockDurationMs ?? 60_000) / 2)),
    maxStalledCount: options.maxStalledCount ?? 2,
  });
  worker.on('completed', (job: Job<ShardJobData>, result: { status?: string } | undefined) =>
    options.onEvent?.({
      type: 'completed',
      index: job.data.index,
      status: result?.status ?? '?',
      attemptsMade: job.attemptsMade,
    }),
  );
  worker.on('failed', (job: Job<ShardJobData> | undefined, error: Error) =>
    options.onEvent?.({
      type: 'failed',
      index: job?.data.index,
      reason: error.message,
      attemptsMade: job?.attemptsMade ?? 0,
    }),
  );
  worker.on('error', (error: Error) => options.onEvent?.({ type: 'error', reason: error.message }));
  return worker;
}

export interface ProcessorModel extends ShardModel {
  close?(): Promise<void>;
}

/** What a sandboxed processor receives (a subset of BullMQ's SandboxedJob). */
export interface ShardJob {
  readonly data: ShardJobData;
  updateProgress(progress: number): unknown;
}

export type ShardProcessor = (job: ShardJob) => Promise<unknown>;

/**
 * The body of a sandboxed processor file: `export default createShardProcessor(openModel)`. The
 * child process keeps the plan, store and model open between jobs (BullMQ reuses children), so a
 * model loads once per child.
 */
export function createShardProcessor(
  openModel: (plan: LatentPlan) => Promise<ProcessorModel>,
): ShardProcessor {
  const plans = new Map<string, Promise<LatentPlan>>();
  const stores = new Map<string, ShardStore>();
  const models = new Map<string, Promise<ProcessorModel>>();
  return async (job) => {
    const { plan: planPath, index } = job.data;
    let planPromise = plans.get(planPath);
    if (!planPromise) plans.set(planPath, (planPromise = readPlan(planPath)));
    const plan = await planPromise;
    let store = stores.get(plan.output);
    if (!store) stores.set(plan.output, (store = openStore(plan.output)));
    const result = await processShard(plan, index, {
      store,
      model: () => {
        let m = models.get(plan.model.source);
        if (!m) {
          m = openModel(plan);
          m.catch(() => models.delete(plan.model.source));
          models.set(plan.model.source, m);
        }
        return m;
      },
      onProgress: (done) => void job.updateProgress(done),
    });
    // The last shard to commit writes the index (a cheap count first; finalize reads the records).
    if ((await store.countCommits()) === plan.shards.length) await finalize(plan, store);
    const { keys: _keys, skipped, files: _files, ...summary } = result.record;
    return { status: result.status, ...summary, skipped: skipped.length };
  };
}
