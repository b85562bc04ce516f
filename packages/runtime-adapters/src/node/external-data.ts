/**
 * How a session's external data files reach onnxruntime-node. Its `externalData` option takes only
 * bytes, so a file path is served one of two ways:
 * - every entry is a path whose real file name equals its `location`, all in one folder: onnxruntime
 *   reads them itself from that folder (session config `model_external_initializers_file_folder_path`),
 *   which memory-maps where it can and needs no copy in JavaScript;
 * - otherwise each file is read into memory (onnxruntime then copies the bytes it needs).
 * onnxruntime takes either an in-memory table or a folder for one session, never both.
 */
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import type { ExternalDataFile } from '@dcae/core/runtime';
import { DcaeError } from '@dcae/core';

export interface ExternalDataPlan {
  readonly externalBytes: { location: string; data: Uint8Array }[];
  /** Files to read into memory. */
  readonly externalFiles: { location: string; path: string }[];
  /** The folder onnxruntime reads every external file from, when the fast path applies. */
  readonly externalFolder: string | undefined;
}

export async function planExternalData(files: readonly ExternalDataFile[] = []): Promise<ExternalDataPlan> {
  const list: unknown = files;
  if (!Array.isArray(list)) {
    throw new DcaeError('INVALID_ARGUMENT', 'externalData must be an array of { location, data } entries.');
  }
  const seen = new Set<string>();
  const externalBytes: ExternalDataPlan['externalBytes'] = [];
  const paths: { location: string; path: string; real: string }[] = [];
  for (const [index, file] of files.entries()) {
    const location = (file as Partial<ExternalDataFile> | null)?.location;
    if (typeof location !== 'string' || location === '') {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `externalData[${index}].location must be the non-empty location string the model's initializers use.`,
      );
    }
    if (seen.has(location)) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `externalData lists location "${location}" twice; give each file once.`,
        { source: location },
      );
    }
    seen.add(location);
    if (file.data instanceof Uint8Array) externalBytes.push({ location, data: file.data });
    else if (typeof file.data === 'string')
      paths.push({ location, path: file.data, real: await realFile(file.data, location) });
    else {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `externalData "${location}": data must be a file path or a Uint8Array; got ${describe(file.data)}.`,
        { source: location },
      );
    }
  }
  const folder = paths[0] === undefined ? undefined : dirname(paths[0].real);
  const fastPath =
    externalBytes.length === 0 &&
    folder !== undefined &&
    paths.every(({ location, real }) => dirname(real) === folder && basename(real) === location);
  return fastPath
    ? { externalBytes, externalFiles: [], externalFolder: folder }
    : {
        externalBytes,
        externalFiles: paths.map(({ location, path }) => ({ location, path })),
        externalFolder: undefined,
      };
}

async function realFile(path: string, location: string): Promise<string> {
  try {
    const real = await realpath(path);
    if (!(await stat(real)).isFile())
      throw new DcaeError('FILE_READ', `externalData "${location}": ${path} is not a file.`, {
        source: path,
      });
    return real;
  } catch (cause) {
    if (DcaeError.is(cause)) throw cause;
    const code = (cause as NodeJS.ErrnoException).code;
    throw new DcaeError(
      code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_READ',
      `externalData "${location}": cannot open ${path} (${code ?? (cause as Error).message}).`,
      { source: path, cause },
    );
  }
}

function describe(value: unknown): string {
  if (typeof value === 'object' && value !== null) return `a ${value.constructor.name}`;
  return String(value);
}
