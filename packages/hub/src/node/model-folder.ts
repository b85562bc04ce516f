import { realpathSync } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DcaeError } from '@dcae/core';
import { fileSource } from '@dcae/core/node';
import type { ModelFiles } from '../model-files.js';

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
