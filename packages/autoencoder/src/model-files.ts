import { bytesSource, ConfigReader, DcaeError, openSafetensors, parseJsonConfig } from '@dcae/core';
import type { ByteSource, JsonValue, SafetensorsFile, SafetensorsTensorInfo } from '@dcae/core';
import type { DcAeConfig } from './dc-ae/config.js';
import { parseDcAeConfig, validateDcAeConfig } from './dc-ae/config.js';
import { presetConfig } from './dc-ae/presets.js';
import type { CheckpointFormat } from './dc-ae/weights.js';

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

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE: Readonly<Record<CheckpointFormat, string>> = {
  diffusers: 'diffusion_pytorch_model.safetensors',
  original: 'model.safetensors',
};

/** What a model folder holds, once its config is read. */
export interface DetectedModel {
  readonly format: CheckpointFormat;
  readonly weightsFile: string;
  readonly config: DcAeConfig;
  /** The original `model_name`, else the folder name. */
  readonly name: string;
}

/**
 * Reads a model folder's config and decides its format: diffusers (`config.json` of an
 * `AutoencoderDC` + `diffusion_pytorch_model.safetensors`) or original efficientvit
 * (`{"model_name": …}` + `model.safetensors`, architecture from the preset table). A `config`
 * given by the caller replaces the file's; config.json is then optional and the weights file name
 * alone decides the key format.
 */
export async function detectModel(files: ModelFiles, override?: DcAeConfig): Promise<DetectedModel> {
  const names = new Set(await files.list());
  const has = (format: CheckpointFormat): boolean => names.has(WEIGHTS_FILE[format]);
  const source = `${files.name}/${CONFIG_FILE}`;
  const json = names.has(CONFIG_FILE)
    ? parseJsonConfig(await files.readText(CONFIG_FILE), { source })
    : undefined;
  const modelName =
    json !== undefined &&
    typeof json === 'object' &&
    json !== null &&
    !Array.isArray(json) &&
    'model_name' in json
      ? originalModelName(json, source)
      : undefined;

  let format: CheckpointFormat;
  if (modelName !== undefined) format = 'original';
  else if (json !== undefined || (has('diffusers') && !has('original'))) format = 'diffusers';
  else if (has('original') && !has('diffusers')) format = 'original';
  else if (has('original')) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${files.name} holds both ${WEIGHTS_FILE.diffusers} and ${WEIGHTS_FILE.original} and no ${CONFIG_FILE} to choose; keep one.`,
      { source: files.name },
    );
  } else throw missingWeights(files.name, names, 'diffusers or original');
  if (!has(format)) throw missingWeights(files.name, names, format);

  let config: DcAeConfig;
  if (override !== undefined) {
    validateDcAeConfig(override, { source: 'options.config' });
    config = override;
  } else if (modelName !== undefined) config = presetConfig(modelName, { source });
  else if (json !== undefined) config = parseDcAeConfig(json, { source });
  else {
    throw new DcaeError('MODEL_NOT_FOUND', `${files.name} has no ${CONFIG_FILE}.`, {
      source: files.name,
      hint: {
        library: "Add the model's config.json or pass { config } to loadAutoencoder.",
        cli: "--model must be a folder with the model's config.json next to its .safetensors weights",
      },
    });
  }
  return { format, weightsFile: WEIGHTS_FILE[format], config, name: modelName ?? files.name };
}

/** The `model_name` of an original-format config.json (`_`-prefixed fields are allowed). */
function originalModelName(json: JsonValue, source: string): string {
  const r = new ConfigReader(json, source);
  const name = r.string('model_name');
  r.finish({ ignorePrefix: '_' });
  return name;
}

function missingWeights(name: string, present: ReadonlySet<string>, format: string): DcaeError {
  const sharded = [...present].some((f) => f.endsWith('.safetensors.index.json'));
  const wanted =
    format === 'diffusers or original'
      ? `${WEIGHTS_FILE.diffusers} or ${WEIGHTS_FILE.original}`
      : WEIGHTS_FILE[format as CheckpointFormat];
  return new DcaeError(
    'MODEL_NOT_FOUND',
    `${name} has no ${wanted} (${format} format); found: ${[...present].sort().join(', ') || 'nothing'}.` +
      (sharded ? ' Sharded checkpoints are not supported; merge the shards into one file.' : ''),
    { source: name },
  );
}

/**
 * Opens a weights file. With `keyPrefix`, only the tensors whose names start with it are seen,
 * named without it: the released diffusion checkpoints hold the DC-AE under `autoencoder.` and
 * the backbone under `diffusion_model.` in one `model.safetensors`, and the backbone's tensors are
 * no concern of the autoencoder (nor unused weights of it). Byte offsets stay those of the file.
 */
export async function openWeights(
  files: ModelFiles,
  weightsFile: string,
  keyPrefix = '',
): Promise<SafetensorsFile> {
  const file = await openSafetensors(await files.byteSource(weightsFile));
  if (keyPrefix === '') return file;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, info] of file.header.tensors) {
    if (name.startsWith(keyPrefix)) tensors.set(name.slice(keyPrefix.length), info);
  }
  if (tensors.size === 0) {
    await file.close();
    const source = `${files.name}/${weightsFile}`;
    const some = [...file.header.tensors.keys()].slice(0, 3).map((name) => JSON.stringify(name));
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `${source} has no tensor under "${keyPrefix}" (it holds ${file.header.tensors.size}${some.length > 0 ? `, e.g. ${some.join(', ')}` : ''}); ` +
        'check keyPrefix, or whether this file holds autoencoder weights at all.',
      { source, detail: { keyPrefix } },
    );
  }
  const full = (name: string): string => keyPrefix + name;
  return {
    source: file.source,
    header: { ...file.header, tensors },
    tensorInfo: (name) => file.tensorInfo(full(name)),
    fileOffset: (name) => file.fileOffset(full(name)),
    readBytes: (name) => file.readBytes(full(name)),
    readTensor: (name) => file.readTensor(full(name)),
    close: () => file.close(),
  };
}
