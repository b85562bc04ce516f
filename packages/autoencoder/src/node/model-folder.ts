import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, rmdir, stat } from 'node:fs/promises';
import { realpathSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { DcaeError } from '@dcae/core';
import { fileSource, writeFileAtomic } from '@dcae/core/node';
import type { LoadAutoencoderOptions } from '../dc-ae/autoencoder.js';
import type { Autoencoder } from '../loader.js';
import { loadAutoencoder as loadFromFiles } from '../loader.js';
import type { OnnxExportOptions } from '../dc-ae/onnx-export.js';
import type { ModelFiles } from '../model-files.js';
import type { ResolveModelOptions } from './resolve-model.js';
import { autoencoderLoadDefaults, resolveModel } from './resolve-model.js';

/** Largest config file read as text. */
const MAX_TEXT_BYTES = 10_000_000;

/** A local model folder (a Hugging Face snapshot folder works: symlinked files are followed). */
export function directoryModelFiles(directory: string): ModelFiles {
  const root = resolve(directory);
  return {
    name: directory,
    list: async () => {
      try {
        const entries = await readdir(root, { withFileTypes: true });
        return entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => e.name);
      } catch (cause) {
        throw new DcaeError('MODEL_NOT_FOUND', `${directory}: not a readable model folder.`, {
          source: directory,
          cause,
        });
      }
    },
    readText: async (file) => {
      const path = join(root, file);
      const { size } = await stat(path);
      if (size > MAX_TEXT_BYTES) {
        throw new DcaeError('CONFIG_TOO_LARGE', `${path} is ${size} bytes; a model config is a few kB.`, {
          source: path,
        });
      }
      return readFile(path, 'utf8');
    },
    byteSource: (file) => fileSource(join(root, file)),
    // The real path, so that onnxruntime memory-maps the checkpoint itself, not a link to it.
    externalDataLocation: (file) => realpathSync(join(root, file)),
  };
}

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

/** An autoencoder loaded from local files, which can also write its ONNX graphs to a folder. */
export type NodeAutoencoder = Autoencoder & {
  exportOnnx(directory: string, options?: ExportOnnxOptions): Promise<ExportOnnxResult>;
};

export interface NodeLoadAutoencoderOptions extends LoadAutoencoderOptions {
  /** Hub and URL downloads (endpoint, cache, token, offline, progress); defaults from the environment. */
  readonly hub?: ResolveModelOptions;
}

/**
 * Loads a DC-AE model from a local folder, a Hub id `org/name[@revision]`, an https URL (see
 * `resolveModel`), or any `ModelFiles`; see the main entry's `loadAutoencoder`. A released
 * diffusion checkpoint loads its autoencoder (architecture and `autoencoder.` key prefix implied).
 */
export async function loadAutoencoder(
  model: string | ModelFiles,
  options: NodeLoadAutoencoderOptions,
): Promise<NodeAutoencoder> {
  const resolved =
    typeof model === 'string'
      ? await resolveModel(model, { signal: options.signal, ...options.hub })
      : undefined;
  const files =
    resolved === undefined
      ? (model as ModelFiles)
      : { ...directoryModelFiles(resolved.directory), name: resolved.name };
  const implied = resolved === undefined ? {} : autoencoderLoadDefaults(resolved);
  const autoencoder = await loadFromFiles(files, {
    ...options,
    config: options.config ?? implied.config,
    keyPrefix: options.keyPrefix ?? implied.keyPrefix,
  });
  return Object.assign(autoencoder, {
    exportOnnx: (directory: string, exportOptions?: ExportOnnxOptions) =>
      exportOnnx(autoencoder, directory, exportOptions),
  });
}
