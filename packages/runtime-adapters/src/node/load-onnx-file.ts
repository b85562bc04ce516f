/**
 * Loading a third-party `.onnx` file safely: the size is checked before a byte is read, the model
 * is inspected and checked (`checkModel` rules) before onnxruntime sees it, and every external data
 * file must resolve inside the model's folder (symlinks followed; the Hugging Face cache layout
 * allowed) — docs/reliability.md §9 B1–B13.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { DcaeError } from '@dcae/core';
import type { CheckModelOptions, ExternalFileInfo, ModelInspection } from '@dcae/core/onnx';
import { checkExternalLocation, checkInspection, inspectModel, MAX_PROTOBUF_BYTES } from '@dcae/core/onnx';
import type { ExternalDataFile, RuntimeV1, SessionOptions, SessionV1 } from '@dcae/core/runtime';
import { checkKnownKeys } from '../_shared/session-options.js';
import { resolveInside } from './external-data.js';

const LOAD_OPTION_KEYS = [
  'graphOptimization',
  'signal',
  'maxInputElements',
  'maxModelBytes',
  'maxTotalBytes',
  'maxTensorElements',
  'allowedOps',
  'allowedContribOps',
  'maxDepth',
] as const;

/** Limits and the op allow-list of the model check (see `checkModel`). */
export type OnnxFileCheckOptions = Pick<
  CheckModelOptions,
  'maxModelBytes' | 'maxTotalBytes' | 'maxTensorElements' | 'allowedOps' | 'allowedContribOps' | 'maxDepth'
>;

export interface InspectedOnnxFile {
  readonly inspection: ModelInspection;
  /** The model bytes. */
  readonly bytes: Uint8Array;
  /** Each external location mapped to the real path of its file, inside the model's folder. */
  readonly externalData: readonly ExternalDataFile[];
  /** The size of each external file. */
  readonly externalFiles: readonly ExternalFileInfo[];
}

/**
 * Reads, inspects and checks an `.onnx` file and resolves its external data relative to its
 * folder. Throws FILE_NOT_FOUND/FILE_READ, MODEL_TOO_LARGE (before reading), or the code of the
 * first rule the model breaks.
 */
export async function inspectOnnxFile(
  path: string,
  options: OnnxFileCheckOptions = {},
): Promise<InspectedOnnxFile> {
  const maxModelBytes = options.maxModelBytes ?? MAX_PROTOBUF_BYTES;
  const info = await stat(path).catch((cause: NodeJS.ErrnoException) => {
    throw new DcaeError(
      cause.code === 'ENOENT' ? 'FILE_NOT_FOUND' : 'FILE_READ',
      `${path}: cannot open the ONNX model (${cause.code ?? cause.message}).`,
      { source: path, cause },
    );
  });
  if (!info.isFile()) throw new DcaeError('FILE_READ', `${path} is not a file.`, { source: path });
  if (info.size > maxModelBytes) {
    throw new DcaeError(
      'MODEL_TOO_LARGE',
      `${path}: ${info.size} bytes, over the limit of ${maxModelBytes} bytes for one ONNX protobuf; it was not read. ` +
        'Use an export that keeps its weights as external data.',
      { source: path, detail: { bytes: info.size, limit: maxModelBytes } },
    );
  }
  const bytes = new Uint8Array(await readFile(path));
  const inspection = inspectModel(bytes, { ...options, source: path });
  const folder = dirname(resolve(path));
  const externalData: ExternalDataFile[] = [];
  const externalFiles: ExternalFileInfo[] = [];
  for (const location of inspection.externalLocations) {
    checkExternalLocation(location, path, path);
    const { real, size } = await resolveInside(join(folder, location), folder, location);
    externalData.push({ location, data: real });
    externalFiles.push({ location, size });
  }
  checkInspection(inspection, { ...options, source: path, externalData: externalFiles });
  return { inspection, bytes, externalData, externalFiles };
}

/**
 * Creates a session from a third-party `.onnx` file on disk after `inspectOnnxFile()` accepted it;
 * its external data files are read from the model's folder.
 */
export async function loadOnnxFile(
  runtime: RuntimeV1,
  path: string,
  options: Omit<SessionOptions, 'externalData'> & OnnxFileCheckOptions = {},
): Promise<SessionV1> {
  checkKnownKeys(options, LOAD_OPTION_KEYS, 'options');
  const { graphOptimization, signal, maxInputElements, ...limits } = options;
  const { bytes, externalData } = await inspectOnnxFile(path, limits);
  return runtime.createSession(bytes, {
    ...(graphOptimization === undefined ? {} : { graphOptimization }),
    ...(signal === undefined ? {} : { signal }),
    ...(maxInputElements === undefined ? {} : { maxInputElements }),
    externalData,
  });
}
