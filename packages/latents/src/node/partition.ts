import { DcaeError } from '@dcae/core';

/**
 * Static partitioning with no broker (docs/latents.md, "Static partitioning"): which shards this
 * process runs, from flags or the launcher's environment:
 * - `--index I` / `JOB_COMPLETION_INDEX` (Kubernetes Indexed Job) / `SLURM_ARRAY_TASK_ID`: shard I
 *   alone, or with a world size W (`--world`, `SLURM_ARRAY_TASK_COUNT`) shards I, I+W, I+2W…;
 * - `--rank R --world W` / `RANK` + `WORLD_SIZE` (torchrun style): shards R, R+W, R+2W…;
 * - nothing: every shard (one machine).
 * Rerunning any index is safe: committed shards are skipped.
 */
export interface PartitionOptions {
  readonly index?: number;
  readonly rank?: number;
  readonly world?: number;
}

export interface Partition {
  readonly shards: number[];
  readonly description: string;
}

function envInt(env: NodeJS.ProcessEnv, name: string): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    throw new DcaeError('INVALID_ARGUMENT', `${name}=${raw} is not a non-negative integer.`);
  }
  return n;
}

export function resolvePartition(
  count: number,
  options: PartitionOptions,
  env: NodeJS.ProcessEnv = process.env,
): Partition {
  const index = options.index ?? envInt(env, 'JOB_COMPLETION_INDEX') ?? envInt(env, 'SLURM_ARRAY_TASK_ID');
  const rank = options.rank ?? (index === undefined ? envInt(env, 'RANK') : undefined);
  const world =
    options.world ??
    (index !== undefined
      ? envInt(env, 'SLURM_ARRAY_TASK_COUNT')
      : rank !== undefined
        ? envInt(env, 'WORLD_SIZE')
        : undefined);
  const all = Array.from({ length: count }, (_, i) => i);
  if (index === undefined && rank === undefined) {
    if (world !== undefined) throw new DcaeError('INVALID_ARGUMENT', '--world needs --rank or --index.');
    return { shards: all, description: `all ${count} shards` };
  }
  const who = index ?? rank!;
  if (world !== undefined && (world < 1 || who >= world)) {
    throw new DcaeError('INVALID_ARGUMENT', `Index/rank ${who} is outside world size ${world}.`);
  }
  if (world === undefined) {
    if (who >= count) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `Index ${who} is past the plan's ${count} shards (0..${count - 1}); give --world to stride.`,
      );
    }
    return { shards: [who], description: `shard ${who}` };
  }
  return {
    shards: all.filter((i) => i % world === who),
    description: `shards ${who}, ${who}+${world}, … (rank ${who} of ${world})`,
  };
}
