import { bytesSource, DcaeError } from '@dcae/core';
import type { ByteSource } from '@dcae/core';

/**
 * The files of one model folder, wherever they live (local folder, URL, memory). The node subpath
 * wraps a directory (`@dcae/autoencoder/node`); `memoryModelFiles` wraps bytes.
 */
export interface ModelFiles {
  /** Where the model is, for messages: a folder path, a URL or a name. */
  readonly name: string;
  /** Names of the files at the top level of the folder. */
  list(): Promise<readonly string[]>;
  /** A small text file (config.json). */
  readText(file: string): Promise<string>;
  /** Random access to a (large) file, read tensor by tensor. */
  byteSource(file: string): Promise<ByteSource>;
  /**
   * What the runtime gets as the file's ONNX external data: a local path (node: memory-mapped), a
   * URL (web) or the bytes.
   */
  externalDataLocation(file: string): string | Uint8Array;
}

/** Model files held in memory, e.g. fetched or picked in a browser. */
export function memoryModelFiles(name: string, files: Readonly<Record<string, Uint8Array>>): ModelFiles {
  const get = (file: string): Uint8Array => {
    const bytes = Object.hasOwn(files, file) ? files[file] : undefined;
    if (bytes === undefined)
      throw new DcaeError('FILE_NOT_FOUND', `${name}: no file ${file}.`, { source: `${name}/${file}` });
    return bytes;
  };
  return {
    name,
    list: async () => Object.keys(files),
    readText: async (file) => new TextDecoder().decode(get(file)),
    byteSource: async (file) => bytesSource(get(file), `${name}/${file}`),
    externalDataLocation: get,
  };
}

/** The config file of a model folder. */
export const CONFIG_FILE = 'config.json';

/** The weights file of each checkpoint format: diffusers, or the original efficientvit layout. */
export const WEIGHTS_FILE: Readonly<Record<'diffusers' | 'original', string>> = {
  diffusers: 'diffusion_pytorch_model.safetensors',
  original: 'model.safetensors',
};
