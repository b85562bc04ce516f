import type { LatentPlan } from '../plan-types.js';
import { finalize } from './finalize.js';
import type { FinalizeResult } from './finalize.js';
import { processShard } from './shard.js';
import type { ShardModel, ShardResult } from './shard.js';
import type { ShardStore } from './store.js';

export interface RunShardsOptions {
  readonly store: ShardStore;
  readonly model: () => Promise<ShardModel>;
  readonly signal?: AbortSignal;
  /** After each shard (done, committed earlier, or lost). */
  readonly onShard?: (index: number, result: ShardResult) => void;
  readonly onProgress?: (index: number, done: number, total: number | undefined) => void;
}

/**
 * Runs the given shards one after another in this process (`dcae latents run`: one machine, or
 * one index of a static partition), then derives the index files when every shard of the plan is
 * committed. Committed shards are skipped, so an interrupted run resumes where it stopped.
 */
export async function runShards(
  plan: LatentPlan,
  shards: readonly number[],
  options: RunShardsOptions,
): Promise<{ results: ShardResult[]; finalized: FinalizeResult | undefined }> {
  const results: ShardResult[] = [];
  for (const index of shards) {
    options.signal?.throwIfAborted();
    const result = await processShard(plan, index, {
      store: options.store,
      model: options.model,
      ...(options.signal ? { signal: options.signal } : {}),
      onProgress: (done, total) => options.onProgress?.(index, done, total),
    });
    results.push(result);
    options.onShard?.(index, result);
  }
  const committed = await options.store.countCommits();
  const finalized = committed === plan.shards.length ? await finalize(plan, options.store) : undefined;
  return { results, finalized };
}
