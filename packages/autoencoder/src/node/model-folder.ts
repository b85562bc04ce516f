import { randomBytes } from 'node:crypto';
import { mkdir, readdir, rename, rm, rmdir, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DcaeError } from '@dcae/core';
import { writeFileAtomic } from '@dcae/core/node';
import { directoryModelFiles, resolveModel } from '@dcae/hub/node';
import type { ResolveModelOptions } from '@dcae/hub/node';
import type { Autoencoder, LoadAutoencoderOptions } from '../loader.js';
import { loadAutoencoder } from '../loader.js';
import type { OnnxExportOptions } from '../base/onnx-export.js';
import type { ModelFiles } from '@dcae/hub';
import { autoencoderLoadDefaults } from './load-defaults.js';

export interface ExportOnnxOptions extends OnnxExportOptions {
  /** Replace `encoder.onnx` etc. in an existing folder. @defaultValue false */
  readonly overwrite?: boolean;
}

export interface ExportOnnxResult {
  readonly directory: string;
  readonly files: readonly { readonly name: string; readonly size: number }[];
}

/**
 * Writes `encoder.onnx` and `decoder.onnx` (plus `*.onnx_data` for large parts) into `directory`,
 * loadable by onnxruntime without dcae. All files are written into a temporary sibling folder
 * first, so a failure leaves no partial output; a new folder appears in one rename.
 */
export async function exportOnnx(
  autoencoder: Autoencoder,
  directory: string,
  options: ExportOnnxOptions = {},
): Promise<ExportOnnxResult> {
  const target = resolve(directory);
  const files = await autoencoder.onnxFiles(options);
  const existing = await folderState(target);
  if (existing === 'file') {
    throw new DcaeError('OUTPUT_EXISTS', `${directory} is a file; exportOnnx needs a folder path.`, {
      source: directory,
    });
  }
  if (existing !== undefined && !options.overwrite) {
    const clashes = files.map((f) => f.name).filter((name) => existing.includes(name));
    if (clashes.length > 0) {
      throw new DcaeError('OUTPUT_EXISTS', `${directory} already has ${clashes.join(', ')}.`, {
        source: directory,
        hint: {
          library: 'Pass { overwrite: true } to replace them.',
          cli: 'pass --force to replace them, or choose another output folder',
        },
      });
    }
  }

  const temp = join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await mkdir(temp);
    for (const file of files) await writeFileAtomic(join(temp, file.name), file.chunks());
    if (existing === undefined) {
      await rename(temp, target);
    } else {
      for (const file of files) await rename(join(temp, file.name), join(target, file.name));
      await rmdir(temp);
    }
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    if (DcaeError.is(error)) throw error;
    throw new DcaeError(
      'OUTPUT_UNWRITABLE',
      `${directory}: cannot write the ONNX files (${String(error)}).`,
      {
        source: directory,
        cause: error,
      },
    );
  }
  return { directory: target, files: files.map(({ name, size }) => ({ name, size })) };
}

/** The folder's file names, `'file'` when the path is not a folder, `undefined` when it does not exist. */
async function folderState(path: string): Promise<readonly string[] | 'file' | undefined> {
  try {
    if (!(await stat(path)).isDirectory()) return 'file';
    return await readdir(path);
  } catch (error) {
    if ((error as { code?: string }).code === 'ENOENT') return undefined;
    throw new DcaeError('OUTPUT_UNWRITABLE', `${path}: cannot inspect the output folder.`, {
      source: path,
      cause: error,
    });
  }
}

/** @deprecated Since 0.1: `openAutoencoder` returns a plain `Autoencoder`; write ONNX files with `exportOnnx(autoencoder, directory)`. */
export type NodeAutoencoder = Autoencoder;

/** Options of `openAutoencoder`. */
export interface OpenAutoencoderOptions extends LoadAutoencoderOptions {
  /** Hub and URL downloads (endpoint, cache, token, offline, progress); defaults from the environment. */
  readonly hub?: ResolveModelOptions;
}

/** @deprecated Since 0.1: renamed `OpenAutoencoderOptions`. */
export type NodeLoadAutoencoderOptions = OpenAutoencoderOptions;

/**
 * Opens an autoencoder from a local folder, a Hub id `org/name[@revision]`, an https URL (see
 * `resolveModel`), or any `ModelFiles`, and loads it with the main entry's `loadAutoencoder`.
 * A released diffusion checkpoint loads its autoencoder (architecture and `autoencoder.` key
 * prefix implied).
 */
export async function openAutoencoder(
  source: string | ModelFiles,
  options: OpenAutoencoderOptions,
): Promise<Autoencoder> {
  const resolved =
    typeof source === 'string'
      ? await resolveModel(source, { signal: options.signal, ...options.hub })
      : undefined;
  const files =
    resolved === undefined
      ? (source as ModelFiles)
      : { ...directoryModelFiles(resolved.directory), name: resolved.name };
  const implied = resolved === undefined ? {} : autoencoderLoadDefaults(resolved);
  return loadAutoencoder(files, {
    ...options,
    config: options.config ?? implied.config,
    keyPrefix: options.keyPrefix ?? implied.keyPrefix,
  });
}
