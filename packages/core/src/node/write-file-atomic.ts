import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { lstat, open, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DcaeError } from '../errors.js';
import { systemErrorCode } from './system-error.js';

export type FileContents = Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

export interface WriteFileAtomicOptions {
  /** Replace an existing file instead of failing with OUTPUT_EXISTS. @defaultValue false */
  overwrite?: boolean;
}

/**
 * Writes `contents` so that `path` either keeps its old state or holds the complete new file,
 * never a partial one: the data goes to a uniquely named temp file in the same directory, is
 * flushed to disk, and is renamed over `path`. On any failure the temp file is removed.
 * Without `overwrite` an existing `path` is an error (checked before writing and again before
 * the rename; a file created in between by another process is replaced).
 */
export async function writeFileAtomic(
  path: string,
  contents: FileContents,
  options: WriteFileAtomicOptions = {},
): Promise<void> {
  const target = resolve(path);
  if (!options.overwrite) await refuseExisting(target);
  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle: FileHandle | undefined;
  try {
    handle = await open(temp, 'wx');
    for await (const chunk of contents instanceof Uint8Array ? [contents] : contents) {
      await writeAll(handle, chunk);
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (!options.overwrite) await refuseExisting(target);
    await rename(temp, target);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await rm(temp, { force: true }).catch(() => undefined);
    throw outputError(error, target);
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  for (let written = 0; written < chunk.byteLength;) {
    const { bytesWritten } = await handle.write(chunk, written, chunk.byteLength - written);
    written += bytesWritten;
  }
}

async function refuseExisting(target: string): Promise<void> {
  const existing = await lstat(target).catch(() => undefined);
  if (existing !== undefined) {
    throw new DcaeError('OUTPUT_EXISTS', `${target} already exists.`, {
      source: target,
      hint: {
        library: 'Pass { overwrite: true } to replace it.',
        cli: 'pass --force to overwrite it, or choose another output path',
      },
    });
  }
}

const DISK_FULL_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** File-system failures become DISK_FULL or OUTPUT_UNWRITABLE; other errors (e.g. from `contents`) pass through. */
export function outputError(error: unknown, target: string): unknown {
  const code = systemErrorCode(error);
  if (code === undefined) return error;
  if (DISK_FULL_CODES.has(code)) {
    return new DcaeError(
      'DISK_FULL',
      `${target}: the disk is full (${code}); nothing was written. Free some space and retry.`,
      { source: target, cause: error },
    );
  }
  const reason =
    code === 'ENOENT' || code === 'ENOTDIR'
      ? 'its directory does not exist'
      : code === 'EISDIR'
        ? 'it is a directory'
        : code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
          ? 'permission denied or read-only file system'
          : 'the file system refused';
  return new DcaeError(
    'OUTPUT_UNWRITABLE',
    `${target}: cannot write (${reason}; ${code}); nothing was written.`,
    { source: target, cause: error },
  );
}
