/**
 * How a session's external data files reach onnxruntime-node. Its `externalData` option takes only
 * bytes, so a file path is served one of two ways:
 * - every entry is a path whose real file name equals its `location`, all in one folder: onnxruntime
 *   reads them itself from that folder (session config `model_external_initializers_file_folder_path`),
 *   which memory-maps where it can and needs no copy in JavaScript;
 * - otherwise each file is read into memory (onnxruntime then copies the bytes it needs).
 * onnxruntime takes either an in-memory table or a folder for one session, never both.
 *
 * Every path must resolve (symlinks followed) to a file inside the folder it names (docs/reliability.md
 * §9 B6; loadOnnxFile() checks against the model's folder). The one exception is the Hugging
 * Face cache, where `snapshots/<rev>/<file>` links to `../../blobs/<hash>` of the same repo.
 */
import { realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import type { ExternalDataFile } from '@dcae/core/runtime';
import type { ExternalFileInfo } from '@dcae/core/onnx';
import { DcaeError } from '@dcae/core';

export interface ExternalDataPlan {
  readonly externalBytes: { location: string; data: Uint8Array }[];
  /** Files to read into memory (their resolved paths). */
  readonly externalFiles: { location: string; path: string }[];
  /** The folder onnxruntime reads every external file from, when the fast path applies. */
  readonly externalFolder: string | undefined;
}

/**
 * Resolves and checks the files of a (validated) external data list: each path must stay inside
 * the folder it names. Returns the plan and each file's size.
 */
export async function planExternalData(
  files: readonly ExternalDataFile[],
): Promise<{ plan: ExternalDataPlan; sizes: ExternalFileInfo[] }> {
  const externalBytes: ExternalDataPlan['externalBytes'] = [];
  const paths: { location: string; real: string }[] = [];
  const sizes: ExternalFileInfo[] = [];
  for (const { location, data } of files) {
    if (data instanceof Uint8Array) {
      externalBytes.push({ location, data });
      sizes.push({ location, size: data.byteLength });
    } else {
      const { real, size } = await resolveInside(data, dirname(data), location);
      paths.push({ location, real });
      sizes.push({ location, size });
    }
  }
  const folder = paths[0] === undefined ? undefined : dirname(paths[0].real);
  const fastPath =
    externalBytes.length === 0 &&
    folder !== undefined &&
    paths.every(({ location, real }) => dirname(real) === folder && basename(real) === location);
  const plan: ExternalDataPlan = fastPath
    ? { externalBytes, externalFiles: [], externalFolder: folder }
    : {
        externalBytes,
        externalFiles: paths.map(({ location, real }) => ({ location, path: real })),
        externalFolder: undefined,
      };
  return { plan, sizes };
}

/**
 * The real path and size of the file `path`, which must resolve inside `folder` (or, for a folder
 * in a Hugging Face cache snapshot, inside that repo's `blobs/`). Throws EXTERNAL_DATA_PATH when
 * it escapes, FILE_NOT_FOUND / FILE_READ when it cannot be opened.
 */
export async function resolveInside(
  path: string,
  folder: string,
  location: string,
): Promise<{ real: string; size: number }> {
  const realFolder = await real(folder, location);
  const realFile = await real(path, location);
  if (!isInside(realFile, realFolder) && !isHubBlob(realFile, realFolder)) {
    throw new DcaeError(
      'EXTERNAL_DATA_PATH',
      `External data "${location}": ${path} resolves to ${realFile}, outside the model folder ${realFolder}. ` +
        'A symlink in the model folder points elsewhere; copy the file into the folder if you trust it.',
      { source: path, detail: { location, path, real: realFile, folder: realFolder } },
    );
  }
  const info = await stat(realFile);
  if (!info.isFile()) {
    throw new DcaeError('FILE_READ', `externalData "${location}": ${path} is not a file.`, { source: path });
  }
  return { real: realFile, size: info.size };
}

function isInside(file: string, folder: string): boolean {
  return file.startsWith(folder.endsWith(sep) ? folder : folder + sep);
}

/** `<repo>/snapshots/<rev>[/sub…]` → the file lies directly in `<repo>/blobs/`. */
function isHubBlob(file: string, folder: string): boolean {
  const parts = folder.split(sep);
  const at = parts.lastIndexOf('snapshots');
  if (at < 1 || at > parts.length - 2) return false;
  const repo = parts.slice(0, at).join(sep) || sep;
  return dirname(file) === join(repo, 'blobs');
}

async function real(path: string, location: string): Promise<string> {
  try {
    return await realpath(resolve(path));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new DcaeError(
      code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_READ',
      `externalData "${location}": cannot open ${path} (${code ?? (cause as Error).message}).`,
      { source: path, cause },
    );
  }
}
