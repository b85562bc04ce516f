import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { link, mkdir, open, readdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname, join, resolve, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { DcaeError } from '@dcae/core';
import type { CommitRecord } from '../plan-types.js';

/**
 * Where shards go, and the effectively-once publish (docs/latents.md, "Commit protocol"): every
 * attempt writes to an attempt-unique temp, flushes and fsyncs it, then publishes it under the
 * shard's deterministic name so that the FIRST writer wins and every later one learns it lost.
 * The object under a canonical name never changes once published. One commit record per shard,
 * also first-writer-wins, describes the canonical bytes (their sha256).
 */
export interface ShardStore {
  /** `/abs/folder` or `s3://bucket/prefix`. */
  readonly url: string;
  /**
   * Checks (once per store object) that the store can publish first-writer-wins, before a shard
   * spends work; throws a typed error when it cannot (an S3 store that ignores or rejects
   * `If-None-Match: *`). Absent: nothing to check (POSIX `link()` always refuses an existing name).
   */
  checkWritable?(): Promise<void>;
  /** A new attempt-unique local temp file for `name` (`shard-000001.tar`); on POSIX inside the store. */
  createTemp(name: string, attemptId: string): Promise<TempFile>;
  /** Publishes a closed, fsynced temp at `name`, first writer wins; removes the temp either way. */
  publish(temp: TempFile, name: string): Promise<PublishResult>;
  /** Writes the commit record unless one exists; returns the record that holds (ours or the earlier one). */
  commit(record: CommitRecord): Promise<{ readonly won: boolean; readonly record: CommitRecord }>;
  readCommit(shardName: string): Promise<CommitRecord | undefined>;
  listCommits(): Promise<CommitRecord[]>;
  /** How many commit records exist (a listing only, no reads: cheap enough to call after every shard). */
  countCommits(): Promise<number>;
  /** Streams an object, or undefined when it does not exist. */
  openObject(name: string): Promise<Readable | undefined>;
  /** sha256 and size of an object, or undefined. */
  hashObject(name: string): Promise<{ sha256: string; bytes: number } | undefined>;
  readObject(name: string): Promise<Uint8Array | undefined>;
  /** Replaces a derived file (index, manifest, plan copy) atomically. */
  putDerived(name: string, bytes: Uint8Array): Promise<void>;
  /** Leftover temps (files, unfinished uploads); `shardName` limits them to one shard. */
  listTemps(shardName?: string): Promise<string[]>;
  /** Removes the leftover temps of a committed shard (a late zombie then loses its publish). */
  sweepTemps(shardName: string): Promise<number>;
}

export interface TempFile {
  readonly path: string;
  readonly handle: FileHandle;
}

export interface PublishResult {
  readonly won: boolean;
  /** sha256 and size of the canonical object (ours when we won, the winner's otherwise). */
  readonly sha256: string;
  readonly bytes: number;
}

/** `host-pid-random`, no dots (it becomes part of temp file names). */
export function newAttemptId(): string {
  const host = hostname()
    .replace(/[^A-Za-z0-9-]/g, '-')
    .slice(0, 40);
  return `${host}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

export function isS3Url(url: string): boolean {
  return url.startsWith('s3://');
}

/** ENOSPC/EDQUOT → DISK_FULL, other write errors → OUTPUT_UNWRITABLE (with the path). */
export function writeError(cause: unknown, path: string): DcaeError {
  if (DcaeError.is(cause)) return cause;
  const code = (cause as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DcaeError(
      'DISK_FULL',
      `No space left writing ${path}; free space on that volume and rerun (committed shards are kept).`,
      {
        source: path,
        cause,
      },
    );
  }
  return new DcaeError('OUTPUT_UNWRITABLE', `Cannot write ${path}: ${(cause as Error).message}.`, {
    source: path,
    cause,
  });
}

export async function sha256File(path: string): Promise<{ sha256: string; bytes: number }> {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of createReadStream(path) as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
  }
  return { sha256: hash.digest('hex'), bytes };
}

export function sha256Bytes(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

const TEMP_DIR = '.tmp';
const COMMIT_DIR = 'commits';

/** A POSIX folder (local disk, NFS, a mounted volume): publish = link(temp, final). */
export class PosixStore implements ShardStore {
  readonly url: string;
  readonly root: string;

  constructor(root: string) {
    this.root = resolve(root);
    this.url = this.root;
  }

  #path(name: string): string {
    const full = resolve(this.root, name);
    if (!full.startsWith(this.root + sep)) {
      throw new DcaeError('UNSAFE_PATH', `${name} leaves the output folder ${this.root}.`, { source: name });
    }
    return full;
  }

  async createTemp(name: string, attemptId: string): Promise<TempFile> {
    const dir = join(this.root, TEMP_DIR);
    const base = name.replace(/\//g, '~');
    const path = join(dir, `${base}.${attemptId}.tmp`);
    try {
      await mkdir(dir, { recursive: true });
      return { path, handle: await open(path, 'wx') };
    } catch (cause) {
      throw writeError(cause, path);
    }
  }

  async publish(temp: TempFile, name: string): Promise<PublishResult> {
    const final = this.#path(name);
    try {
      await mkdir(dirname(final), { recursive: true });
      try {
        await link(temp.path, final);
        await syncDir(dirname(final));
        const own = await stat(final);
        const { sha256 } = await sha256File(final);
        return { won: true, sha256, bytes: own.size };
      } catch (cause) {
        if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') throw cause;
        return { won: false, ...(await sha256File(final)) };
      }
    } catch (cause) {
      // ENOENT: our temp was swept because another attempt committed this shard first.
      if ((cause as NodeJS.ErrnoException).code === 'ENOENT') {
        const existing = await this.hashObject(name);
        if (existing) return { won: false, ...existing };
      }
      throw writeError(cause, final);
    } finally {
      await unlink(temp.path).catch(() => undefined);
    }
  }

  async commit(record: CommitRecord): Promise<{ won: boolean; record: CommitRecord }> {
    const bytes = new TextEncoder().encode(`${JSON.stringify(record, null, 1)}\n`);
    const temp = await this.createTemp(`${record.name}.commit`, record.attemptId);
    try {
      await temp.handle.writeFile(bytes);
      await temp.handle.sync();
    } catch (cause) {
      await temp.handle.close().catch(() => undefined);
      await unlink(temp.path).catch(() => undefined);
      throw writeError(cause, temp.path);
    }
    await temp.handle.close();
    const result = await this.publish(temp, `${COMMIT_DIR}/${record.name}.json`);
    if (result.won) return { won: true, record };
    const existing = await this.readCommit(record.name);
    if (!existing)
      throw new DcaeError('FILE_READ', `Commit record of ${record.name} vanished while reading it.`);
    return { won: false, record: existing };
  }

  async readCommit(shardName: string): Promise<CommitRecord | undefined> {
    const path = join(this.root, COMMIT_DIR, `${shardName}.json`);
    const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return undefined;
      throw error;
    });
    return text === undefined ? undefined : parseCommit(text, path);
  }

  async listCommits(): Promise<CommitRecord[]> {
    const dir = join(this.root, COMMIT_DIR);
    const names = await readdir(dir).catch(() => [] as string[]);
    const records: CommitRecord[] = [];
    for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
      records.push(parseCommit(await readFile(join(dir, name), 'utf8'), join(dir, name)));
    }
    return records;
  }

  async countCommits(): Promise<number> {
    const names = await readdir(join(this.root, COMMIT_DIR)).catch(() => [] as string[]);
    return names.filter((n) => n.endsWith('.json')).length;
  }

  async openObject(name: string): Promise<Readable | undefined> {
    const path = this.#path(name);
    try {
      await stat(path);
    } catch {
      return undefined;
    }
    return createReadStream(path);
  }

  async hashObject(name: string): Promise<{ sha256: string; bytes: number } | undefined> {
    try {
      return await sha256File(this.#path(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async readObject(name: string): Promise<Uint8Array | undefined> {
    try {
      return await readFile(this.#path(name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
  }

  async putDerived(name: string, bytes: Uint8Array): Promise<void> {
    const final = this.#path(name);
    const tmp = join(this.root, TEMP_DIR, `${name.replace(/\//g, '~')}.${newAttemptId()}.tmp`);
    try {
      await mkdir(dirname(tmp), { recursive: true });
      const handle = await open(tmp, 'wx');
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, final);
      await syncDir(dirname(final));
    } catch (cause) {
      await unlink(tmp).catch(() => undefined);
      throw writeError(cause, final);
    }
  }

  async listTemps(shardName?: string): Promise<string[]> {
    const dir = join(this.root, TEMP_DIR);
    const names = await readdir(dir).catch(() => [] as string[]);
    return names
      .filter(
        (n) => shardName === undefined || n.startsWith(`${shardName}.`) || n.startsWith(`${shardName}~`),
      )
      .map((n) => join(dir, n));
  }

  async sweepTemps(shardName: string): Promise<number> {
    let removed = 0;
    for (const path of await this.listTemps(shardName)) {
      await unlink(path).then(
        () => removed++,
        () => undefined,
      );
    }
    return removed;
  }
}

async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch {
    // Some file systems refuse fsync on a directory; the link itself is still atomic.
  } finally {
    await handle.close();
  }
}

export function parseCommit(text: string, source: string): CommitRecord {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new DcaeError(
      'CONFIG_NOT_JSON',
      `Commit record ${source} is not JSON; it is damaged (delete it to redo that shard).`,
      {
        source,
        cause,
      },
    );
  }
  const record = value as Partial<CommitRecord>;
  if (
    typeof record !== 'object' ||
    record === null ||
    record.version !== 1 ||
    typeof record.sha256 !== 'string' ||
    typeof record.shard !== 'number' ||
    !Array.isArray(record.keys)
  ) {
    throw new DcaeError(
      'CONFIG_VALUE',
      `Commit record ${source} lacks version 1, shard, sha256 or keys; it is damaged.`,
      { source },
    );
  }
  return record as CommitRecord;
}
