import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DcaeError } from '@dcae/core';
import tar from 'tar-stream';

/**
 * Tar shards through tar-stream. Written tars are deterministic (docs/latents.md, "Formats"):
 * entries in the caller's order, mtime 0, mode 0644, uid/gid 0, empty user and group names, so
 * the same samples always give the same bytes and the same sha256.
 */

export interface TarEntry {
  readonly name: string;
  readonly data: Uint8Array;
}

const FIXED = {
  mode: 0o644,
  uid: 0,
  gid: 0,
  uname: '',
  gname: '',
  mtime: new Date(0),
  type: 'file',
} as const;

export interface TarWriteResult {
  readonly sha256: string;
  readonly bytes: number;
}

/**
 * Streams a deterministic tar into an open file (the caller fsyncs and closes it) and hashes it on
 * the way. `entries` is consumed once; a failed write (ENOSPC…) rejects, and the caller removes
 * the file.
 */
export async function writeTar(file: FileHandle, entries: AsyncIterable<TarEntry>): Promise<TarWriteResult> {
  const pack = tar.pack();
  const hash = createHash('sha256');
  let bytes = 0;
  const sink = (async () => {
    for await (const chunk of pack as AsyncIterable<Buffer>) {
      hash.update(chunk);
      let off = 0;
      while (off < chunk.length) off += (await file.write(chunk, off, chunk.length - off)).bytesWritten;
      bytes += chunk.length;
    }
  })();
  // If the sink fails (disk full), stop producing at once.
  let sinkError: unknown;
  sink.catch((error: unknown) => {
    sinkError = error;
  });
  try {
    for await (const entry of entries) {
      if (sinkError !== undefined) break;
      await new Promise<void>((resolve, reject) => {
        pack.entry(
          { ...FIXED, name: entry.name, size: entry.data.length },
          Buffer.from(entry.data.buffer, entry.data.byteOffset, entry.data.byteLength),
          (error) => (error ? reject(error) : resolve()),
        );
      });
    }
    pack.finalize();
  } catch (error) {
    pack.destroy(error as Error);
    await sink.catch(() => undefined);
    throw error;
  }
  await sink;
  return { sha256: hash.digest('hex'), bytes };
}

/** Reads tar members one by one (regular files only; directories and PAX headers are skipped). */
export async function* readTar(input: Readable, source: string): AsyncGenerator<TarEntry> {
  const extract = tar.extract();
  input.on('error', (error) => extract.destroy(error));
  input.pipe(extract);
  try {
    for await (const entry of extract) {
      const chunks: Buffer[] = [];
      for await (const chunk of entry as AsyncIterable<Buffer>) chunks.push(chunk);
      if (entry.header.type !== 'file' && entry.header.type !== 'contiguous-file') continue;
      const data = Buffer.concat(chunks);
      yield { name: entry.header.name, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    }
  } catch (cause) {
    if (DcaeError.is(cause)) throw cause;
    throw new DcaeError(
      'TRUNCATED_DATA',
      `${source}: the tar archive is damaged or truncated (${(cause as Error).message}); re-create or re-download it.`,
      { source, cause },
    );
  } finally {
    input.unpipe(extract);
    if ('destroy' in input) input.destroy();
  }
}

/** Reads a tar file from disk. */
export function readTarFile(path: string): AsyncGenerator<TarEntry> {
  return readTar(createReadStream(path), path);
}

/** The part of a member name before the first dot of its base name, and the rest ("npy", "json"…). */
export function splitMemberName(name: string): { key: string; ext: string } {
  const slash = name.lastIndexOf('/');
  const dot = name.indexOf('.', slash + 1);
  return dot < 0 ? { key: name, ext: '' } : { key: name.slice(0, dot), ext: name.slice(dot + 1) };
}

export interface TarSample {
  readonly key: string;
  /** Members by extension (`jpg`, `json`, `cls`, `npy`…). */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

/** Groups consecutive members with the same key into samples, as WebDataset does. */
export async function* groupSamples(entries: AsyncIterable<TarEntry>): AsyncGenerator<TarSample> {
  let current: { key: string; files: Map<string, Uint8Array> } | undefined;
  for await (const entry of entries) {
    const { key, ext } = splitMemberName(entry.name);
    if (current && current.key !== key) {
      yield current;
      current = undefined;
    }
    current ??= { key, files: new Map() };
    current.files.set(ext, entry.data);
  }
  if (current) yield current;
}
