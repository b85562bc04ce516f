import type { Hash } from 'node:crypto';
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { DcaeError } from '@dcae/core';
import type { HubDigest } from '../response.js';
import type { HttpOptions, HttpRequest } from './hub-http.js';
import { openHttp, TransientError, withRetries } from './hub-http.js';

/** Progress of one file's download. */
export interface DownloadProgress {
  /** `org/name/file` or the URL (no query string). */
  readonly file: string;
  /** Bytes in the file so far, resumed bytes included. */
  readonly loaded: number;
  /** Bytes in all, when known. */
  readonly total: number | undefined;
  /** Average speed of this download so far. */
  readonly bytesPerSecond: number;
  /** Seconds left at that speed, when the total is known. */
  readonly etaSeconds: number | undefined;
}

export interface TransferOptions extends HttpOptions {
  /** Called at most every 100 ms while bytes arrive, and once at the end. */
  readonly onProgress?: (progress: DownloadProgress) => void;
}

/** What the bytes must be; either may be unknown (a plain URL). */
export interface ExpectedContent {
  readonly size: number | undefined;
  readonly digest: HubDigest;
}

export interface TransferResult {
  readonly size: number;
  /** sha256 of the bytes, lowercase hex. */
  readonly sha256: string;
  /** The temp file held bytes from an earlier, interrupted download that were kept. */
  readonly resumed: boolean;
}

const PROGRESS_INTERVAL_MS = 100;
const READ_CHUNK = 1 << 20;

/**
 * Downloads `request.url` into `temp`, continuing after the bytes `temp` already holds (an
 * interrupted earlier try) with `Range`, and hashing as it goes. A dropped or stalled connection is
 * resumed from the bytes received; a server that answers a Range request with the whole file (200)
 * restarts the file from 0. At the end the file is flushed to disk and its size and digest are
 * checked: a mismatch is INTEGRITY. The caller removes `temp` on failure and renames it on success.
 */
export async function transferToFile(
  request: Omit<HttpRequest, 'method'>,
  temp: string,
  expected: ExpectedContent,
  options: TransferOptions,
): Promise<TransferResult> {
  const source = request.context.source;
  const handle = await open(temp, constants.O_RDWR | constants.O_CREAT, 0o644);
  try {
    let have = (await handle.stat()).size;
    if (expected.size !== undefined && have > expected.size) {
      await handle.truncate(0);
      have = 0;
    }
    const resumedFrom = have;
    let hashes = newHashes(expected);
    await hashPrefix(handle, have, hashes);

    const restart = async (): Promise<void> => {
      await handle.truncate(0);
      have = 0;
      hashes = newHashes(expected);
    };

    const started = Date.now();
    let lastReport = 0;
    const report = (force: boolean): void => {
      const now = Date.now();
      if (options.onProgress === undefined || (!force && now - lastReport < PROGRESS_INTERVAL_MS)) return;
      lastReport = now;
      const bytesPerSecond = Math.max(0, have - resumedFrom) / Math.max(0.001, (now - started) / 1000);
      const total = expected.size;
      options.onProgress({
        file: source,
        loaded: have,
        total,
        bytesPerSecond,
        etaSeconds: total === undefined || bytesPerSecond === 0 ? undefined : (total - have) / bytesPerSecond,
      });
    };
    report(true);

    await withRetries(options, async () => {
      if (expected.size !== undefined && have === expected.size) return;
      const headers: Record<string, string> = { ...request.headers };
      if (have > 0) headers.range = `bytes=${have}-`;
      const answer = await openHttp({ ...request, method: 'GET', headers }, options).catch(
        (error: unknown) => {
          if (have > 0 && DcaeError.is(error, 'HTTP_STATUS') && error.detail?.status === 416) {
            throw integrityError(
              source,
              `the server has nothing after byte ${have}, short of the announced ${expected.size}`,
            );
          }
          throw error;
        },
      );
      try {
        const status = answer.response.status;
        if (have > 0 && status === 200) {
          await restart();
        } else if (status === 206) {
          const start = /^bytes (\d+)-/.exec(answer.response.headers.get('content-range') ?? '')?.[1];
          if (Number(start) !== have) {
            await restart();
            throw new TransientError(
              new DcaeError('NETWORK', `${source}: the server sent a different range than asked for.`, {
                source,
              }),
            );
          }
        } else if (status !== 200) {
          throw new DcaeError('HTTP_STATUS', `${source}: unexpected HTTP ${status} for a download.`, {
            source,
            detail: { status },
          });
        }
        for (let chunk = await answer.read(); chunk !== undefined; chunk = await answer.read()) {
          if (expected.size !== undefined && have + chunk.byteLength > expected.size) {
            throw integrityError(source, `more than the expected ${expected.size} bytes arrived`);
          }
          await writeAll(handle, chunk, have);
          for (const hash of hashes.all) hash.update(chunk);
          have += chunk.byteLength;
          report(false);
        }
        if (expected.size !== undefined && have < expected.size) {
          throw new TransientError(
            new DcaeError(
              'NETWORK',
              `${source}: the connection closed after ${have} of ${expected.size} bytes; check the connection and retry.`,
              { source },
            ),
          );
        }
      } finally {
        await answer.close();
      }
    });
    report(true);
    await handle.sync();

    const sha256 = hashes.sha256.digest('hex');
    if (expected.size !== undefined && have !== expected.size) {
      throw integrityError(source, `received ${have} bytes, expected ${expected.size}`);
    }
    if (expected.digest !== undefined) {
      const actual = expected.digest.algorithm === 'sha256' ? sha256 : hashes.gitSha1!.digest('hex');
      if (actual !== expected.digest.hex) {
        throw integrityError(
          source,
          `${expected.digest.algorithm} is ${actual}, expected ${expected.digest.hex}`,
          {
            resumed: resumedFrom > 0,
          },
        );
      }
    }
    return { size: have, sha256, resumed: resumedFrom > 0 };
  } finally {
    await handle.close();
  }
}

interface Hashes {
  readonly sha256: Hash;
  readonly gitSha1: Hash | undefined;
  readonly all: readonly Hash[];
}

/** sha256 always; the git blob sha1 (`sha1("blob <size>\0" + bytes)`) when the etag is one. */
function newHashes(expected: ExpectedContent): Hashes {
  const sha256 = createHash('sha256');
  const gitSha1 =
    expected.digest?.algorithm === 'git-sha1' && expected.size !== undefined
      ? createHash('sha1').update(`blob ${expected.size}\0`)
      : undefined;
  return { sha256, gitSha1, all: gitSha1 === undefined ? [sha256] : [sha256, gitSha1] };
}

async function hashPrefix(handle: FileHandle, length: number, hashes: Hashes): Promise<void> {
  const buffer = new Uint8Array(Math.min(READ_CHUNK, Math.max(1, length)));
  for (let offset = 0; offset < length;) {
    const { bytesRead } = await handle.read(buffer, 0, Math.min(buffer.byteLength, length - offset), offset);
    if (bytesRead === 0) break;
    for (const hash of hashes.all) hash.update(buffer.subarray(0, bytesRead));
    offset += bytesRead;
  }
}

async function writeAll(handle: FileHandle, chunk: Uint8Array, position: number): Promise<void> {
  for (let written = 0; written < chunk.byteLength;) {
    const { bytesWritten } = await handle.write(
      chunk,
      written,
      chunk.byteLength - written,
      position + written,
    );
    written += bytesWritten;
  }
}

function integrityError(source: string, what: string, detail: Record<string, unknown> = {}): DcaeError {
  return new DcaeError(
    'INTEGRITY',
    `${source}: the downloaded bytes are not the file the server announced (${what}); nothing was stored. Retry; if it persists, the server or a proxy is corrupting the file.`,
    { source, detail },
  );
}
