import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rm, stat, utimes } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DcaeError } from '@dcae/core';
import { systemErrorCode } from '@dcae/core/node';

export interface LockOptions {
  /**
   * A lock whose file was not refreshed for this long is stale (its holder died or hung) and is
   * taken over. The holder refreshes it every `staleMs / 4`. A lock of a process that no longer
   * runs on this host is taken over at once. @defaultValue 30000
   */
  readonly staleMs?: number;
  /** Longest wait for a live holder before LOCK_TIMEOUT. @defaultValue 1800000 (30 min) */
  readonly timeoutMs?: number;
  /** @defaultValue 200 */
  readonly pollMs?: number;
}

export interface HeldLock {
  /** Removes the lock file if it is still ours. */
  release(): Promise<void>;
}

interface LockOwner {
  readonly pid: number;
  readonly host: string;
  readonly token: string;
}

/**
 * Takes the lock file `path` (created with O_EXCL, holding pid, host and a random token). The lock
 * only saves a second process from downloading the same bytes; correctness never depends on it
 * (each process writes its own temp file and renames it into place). File-system errors pass
 * through for the caller to map.
 */
export async function acquireLock(
  path: string,
  options: LockOptions & { signal?: AbortSignal; onWarning?: (message: string) => void } = {},
): Promise<HeldLock> {
  const staleMs = options.staleMs ?? 30_000;
  const timeoutMs = options.timeoutMs ?? 30 * 60_000;
  const pollMs = options.pollMs ?? 200;
  const owner: LockOwner = { pid: process.pid, host: hostname(), token: randomBytes(8).toString('hex') };
  const started = Date.now();
  await mkdir(dirname(path), { recursive: true });
  for (;;) {
    try {
      const handle = await open(path, 'wx', 0o664);
      try {
        await handle.writeFile(JSON.stringify(owner));
      } finally {
        await handle.close();
      }
      return holdLock(path, owner, staleMs);
    } catch (error) {
      if (systemErrorCode(error) !== 'EEXIST') throw error;
    }
    const stale = await staleReason(path, staleMs);
    if (stale !== undefined) {
      options.onWarning?.(`taking over the stale lock ${path} (${stale}).`);
      await rm(path, { force: true });
      continue;
    }
    if (Date.now() - started > timeoutMs) {
      const holder = await readOwner(path);
      throw new DcaeError(
        'LOCK_TIMEOUT',
        `${path}: another process (${holder === undefined ? 'unknown' : `pid ${holder.pid} on ${holder.host}`}) ` +
          `has been downloading this file for over ${Math.round(timeoutMs / 1000)} s. ` +
          'If no download is running, delete the lock file and retry.',
        { source: path, detail: { holder } },
      );
    }
    try {
      await sleep(pollMs, undefined, { signal: options.signal });
    } catch (cause) {
      throw new DcaeError('ABORTED', `${path}: cancelled while waiting for another download.`, {
        source: path,
        cause,
      });
    }
  }
}

function holdLock(path: string, owner: LockOwner, staleMs: number): HeldLock {
  const refresh = setInterval(
    () => {
      const now = new Date();
      utimes(path, now, now).catch(() => undefined);
    },
    Math.max(10, staleMs / 4),
  );
  refresh.unref();
  return {
    release: async () => {
      clearInterval(refresh);
      const current = await readOwner(path);
      if (current?.token === owner.token) await rm(path, { force: true });
    },
  };
}

/** Why the lock at `path` is stale, or undefined while its holder looks alive (or it is gone). */
async function staleReason(path: string, staleMs: number): Promise<string | undefined> {
  const [info, holder] = await Promise.all([stat(path).catch(() => undefined), readOwner(path)]);
  if (info === undefined) return undefined;
  const age = Date.now() - info.mtimeMs;
  if (holder !== undefined && holder.host === hostname() && !processRuns(holder.pid)) {
    return `process ${holder.pid} no longer runs`;
  }
  if (age > staleMs) return `not refreshed for ${Math.round(age / 1000)} s`;
  return undefined;
}

async function readOwner(path: string): Promise<LockOwner | undefined> {
  try {
    const value: unknown = JSON.parse(await readFile(path, 'utf8'));
    if (typeof value !== 'object' || value === null) return undefined;
    const { pid, host, token } = value as Record<string, unknown>;
    return Number.isSafeInteger(pid) && typeof host === 'string' && typeof token === 'string'
      ? { pid: pid as number, host, token }
      : undefined;
  } catch {
    return undefined;
  }
}

function processRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return systemErrorCode(error) === 'EPERM';
  }
}
