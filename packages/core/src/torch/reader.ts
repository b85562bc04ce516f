import { closestNames } from '../config/closest-names.js';
import { DcaeError, formatShape } from '../errors.js';
import type { ByteSource } from '../safetensors/byte-source.js';
import type { SafetensorsHeader, SafetensorsTensorInfo } from '../safetensors/header.js';
import type { SafetensorsFile } from '../safetensors/reader.js';
import { decodeTensorBytes } from '../safetensors/reader.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { PyValue, TorchDType, PthStorage } from './pickle.js';
import { PthTensorRef, PyDict, TORCH_DTYPE_BYTES, typeName, unpickleStateDict } from './pickle.js';
import type { ZipEntry, ZipLimits } from './zip.js';
import { entryDataOffset, readZipDirectory } from './zip.js';

/**
 * A safe reader of PyTorch `torch.save` checkpoints (zip format, PyTorch ≥ 1.6) holding a
 * state_dict: the zip's central directory, `data.pkl` through a restricted unpickler, then tensor
 * data read lazily from the stored `data/<key>` records, like safetensors. See docs/pth-reader.md.
 */

export interface PthOptions extends ZipLimits {
  /** Largest `data.pkl` read, in bytes. @defaultValue 256 MiB */
  readonly maxPickleBytes?: number;
  /** Most tensors accepted. @defaultValue 1_000_000 */
  readonly maxTensors?: number;
}

/** One tensor of a state_dict: a strided view of a storage record. */
export interface PthTensorInfo {
  readonly dtype: TorchDType;
  readonly shape: readonly number[];
  /** In elements. */
  readonly stride: readonly number[];
  /** The storage record's key (`<archive>/data/<key>`). */
  readonly storage: string;
  /** The view's first element in the storage. */
  readonly storageOffset: number;
  /** Row-major with no gaps: the tensor's bytes are one range of the file. */
  readonly contiguous: boolean;
}

/** An open, validated `.pth` state_dict; tensor data is read on demand. */
export interface PthFile {
  readonly source: ByteSource;
  /** Tensors by state_dict key (nested dicts joined with `.`), in the pickle's order. */
  readonly tensors: ReadonlyMap<string, PthTensorInfo>;
  /** State_dict entries that are not tensors (e.g. `epoch`), by key, with their Python type. */
  readonly skipped: ReadonlyMap<string, string>;
  /** The archive's top-level folder name (`archive` or the file's stem). */
  readonly archiveName: string;
  tensorInfo(name: string): PthTensorInfo;
  /** The tensor's elements in row-major order, as raw little-endian bytes (strided views are gathered). */
  readBytes(name: string): Promise<Uint8Array>;
  /** The tensor as a host tensor; F32, F16, BF16, I64, I32, U8 and BOOL exactly, F64 rounded to float32, others DTYPE_UNSUPPORTED. */
  readTensor(name: string): Promise<HostTensor>;
  /** Absolute byte offset of a contiguous tensor's data in the file (ONNX external data). */
  fileOffset(name: string): Promise<number>;
  /**
   * The same file seen as a safetensors file (header offsets are absolute: `dataStart` is 0), so
   * code written for safetensors weights binds `.pth` weights unchanged. Every tensor must be
   * contiguous (views of a row-major storage slice); else UNSUPPORTED names the first that is not.
   */
  asSafetensors(): Promise<SafetensorsFile>;
  close(): Promise<void>;
}

const MAX_PICKLE = 256 * 2 ** 20;

/** Opens a `.pth` checkpoint through `source` and validates its layout; closes the source if it is refused. */
export async function openPth(source: ByteSource, options: PthOptions = {}): Promise<PthFile> {
  try {
    return await open(source, options);
  } catch (error) {
    await source.close?.();
    throw error;
  }
}

async function open(source: ByteSource, options: PthOptions): Promise<PthFile> {
  const name = source.name;
  const entries = await readZipDirectory(source, options);
  const pickle = entries.filter((e) => e.name === 'data.pkl' || /^[^/]+\/data\.pkl$/.test(e.name));
  if (pickle.length !== 1) {
    throw new DcaeError(
      'PTH_NOT_STATE_DICT',
      `${name}: a torch.save archive has one <folder>/data.pkl record; found ${pickle.length} among ${entries.length} entries` +
        `${
          entries.length > 0
            ? ` (e.g. ${entries
                .slice(0, 3)
                .map((e) => JSON.stringify(e.name))
                .join(', ')})`
            : ''
        }. ` +
        'Is this a PyTorch checkpoint? (TorchScript archives and other zip files are not state_dicts.)',
      { source: name },
    );
  }
  const pkl = pickle[0]!;
  const prefix = pkl.name.slice(0, pkl.name.length - 'data.pkl'.length);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const maxPickle = options.maxPickleBytes ?? MAX_PICKLE;
  if (pkl.size > maxPickle) {
    throw new DcaeError(
      'PICKLE_CORRUPT',
      `${name}: data.pkl is ${pkl.size} bytes, over the limit of ${maxPickle}.`,
      {
        source: name,
        detail: { size: pkl.size, limit: maxPickle },
      },
    );
  }
  const byteorder = byName.get(`${prefix}byteorder`);
  if (byteorder !== undefined && byteorder.size < 16) {
    const text = new TextDecoder().decode(
      await source.read(await entryDataOffset(source, byteorder), byteorder.size),
    );
    if (text.trim() !== 'little') {
      throw new DcaeError(
        'UNSUPPORTED',
        `${name}: tensors are stored ${JSON.stringify(text.trim())}-endian; dcae reads little-endian checkpoints.`,
        {
          source: name,
        },
      );
    }
  }
  const root = unpickleStateDict(
    await source.read(await entryDataOffset(source, pkl), pkl.size),
    `${name}:${pkl.name}`,
  );
  const { tensors, skipped } = flatten(root, name, options.maxTensors ?? 1_000_000);

  // Every storage a tensor uses: a stored record of exactly numel × element size bytes.
  const records = new Map<string, { entry: ZipEntry; storage: PthStorage }>();
  for (const [key, ref] of tensors) {
    const storage = ref.storage;
    if (records.has(storage.key)) continue;
    const entry = byName.get(`${prefix}data/${storage.key}`);
    if (entry === undefined) {
      throw new DcaeError(
        'PTH_STORAGE',
        `${name}: tensor ${JSON.stringify(key)} uses storage ${JSON.stringify(storage.key)}, but the archive has no record ${prefix}data/${storage.key}.`,
        { source: name, detail: { tensor: key, storage: storage.key } },
      );
    }
    const bytes = storage.numel * TORCH_DTYPE_BYTES[storage.dtype];
    if (entry.size !== bytes) {
      throw new DcaeError(
        'PTH_STORAGE',
        `${name}: storage ${JSON.stringify(storage.key)} is declared as ${storage.numel} ${storage.dtype} elements (${bytes} bytes) ` +
          `but its record holds ${entry.size} bytes.`,
        { source: name, detail: { storage: storage.key, expected: bytes, actual: entry.size } },
      );
    }
    records.set(storage.key, { entry, storage });
  }
  const infos = new Map<string, PthTensorInfo>();
  for (const [key, ref] of tensors) infos.set(key, checkView(key, ref, name));

  const offsets = new Map<string, Promise<number>>();
  const dataOffset = (key: string): Promise<number> => {
    let offset = offsets.get(key);
    if (offset === undefined) {
      offset = entryDataOffset(source, records.get(key)!.entry);
      offsets.set(key, offset);
      offset.catch(() => offsets.delete(key));
    }
    return offset;
  };
  const tensorInfo = (key: string): PthTensorInfo => {
    const info = infos.get(key);
    if (info !== undefined) return info;
    const suggestions = closestNames(key, infos.keys());
    throw new DcaeError(
      'TENSOR_NOT_FOUND',
      `${name}: no tensor named ${JSON.stringify(key)} among its ${infos.size} tensors.` +
        (suggestions.length > 0
          ? ` Close matches: ${suggestions.map((s) => JSON.stringify(s)).join(', ')}.`
          : ''),
      { source: name, detail: { name: key, suggestions } },
    );
  };
  const readBytes = async (key: string): Promise<Uint8Array> => {
    const info = tensorInfo(key);
    const size = TORCH_DTYPE_BYTES[info.dtype];
    const start = await dataOffset(info.storage);
    const count = info.shape.reduce((a, b) => a * b, 1);
    if (info.contiguous) return source.read(start + info.storageOffset * size, count * size);
    // A strided view: read the span it touches, then gather its elements in row-major order.
    const span = viewSpan(info.shape, info.stride);
    const raw = await source.read(start + info.storageOffset * size, span * size);
    const out = new Uint8Array(count * size);
    const index = new Array<number>(info.shape.length).fill(0);
    for (let i = 0; i < count; i++) {
      let at = 0;
      for (let d = 0; d < index.length; d++) at += index[d]! * info.stride[d]!;
      out.set(raw.subarray(at * size, (at + 1) * size), i * size);
      for (let d = index.length - 1; d >= 0; d--) {
        if (++index[d]! < info.shape[d]!) break;
        index[d] = 0;
      }
    }
    return out;
  };
  const fileOffset = async (key: string): Promise<number> => {
    const info = tensorInfo(key);
    if (!info.contiguous) {
      throw new DcaeError(
        'UNSUPPORTED',
        `${name}: tensor ${JSON.stringify(key)} is a strided view; it has no single byte range.`,
        {
          source: name,
        },
      );
    }
    return (await dataOffset(info.storage)) + info.storageOffset * TORCH_DTYPE_BYTES[info.dtype];
  };
  const file: PthFile = {
    source,
    tensors: infos,
    skipped,
    archiveName: prefix.replace(/\/$/, ''),
    tensorInfo,
    readBytes,
    readTensor: async (key) =>
      decodeTensorBytes(tensorInfo(key).dtype, tensorInfo(key).shape, await readBytes(key), key, name),
    fileOffset,
    asSafetensors: async () => {
      const header = new Map<string, SafetensorsTensorInfo>();
      for (const [key, info] of infos) {
        const begin = await fileOffset(key);
        const length = info.shape.reduce((a, b) => a * b, 1) * TORCH_DTYPE_BYTES[info.dtype];
        header.set(key, { dtype: info.dtype, shape: info.shape, begin, end: begin + length });
      }
      const safetensorsHeader: SafetensorsHeader = {
        tensors: header,
        metadata: new Map([['format', 'pt']]),
        dataStart: 0,
        dataLength: source.size,
      };
      return {
        source,
        header: safetensorsHeader,
        tensorInfo: (key) => {
          tensorInfo(key);
          return header.get(key)!;
        },
        fileOffset: (key) => {
          tensorInfo(key);
          return header.get(key)!.begin;
        },
        readBytes,
        readTensor: (key) => file.readTensor(key),
        close: () => file.close(),
      };
    },
    close: async () => {
      await source.close?.();
    },
  };
  return file;
}

/** The tensors of a state_dict: the root dict's tensor values, nested dicts joined with `.` (each dict once). */
function flatten(
  root: PyValue,
  source: string,
  maxTensors: number,
): { tensors: Map<string, PthTensorRef>; skipped: Map<string, string> } {
  if (!(root instanceof PyDict)) {
    throw new DcaeError(
      'PTH_NOT_STATE_DICT',
      `${source}: the checkpoint holds a ${typeName(root)}, not a state_dict (a dict of tensors); save model.state_dict().`,
      { source },
    );
  }
  const tensors = new Map<string, PthTensorRef>();
  const skipped = new Map<string, string>();
  const seen = new Set<PyDict>();
  const queue: [string, PyDict][] = [['', root]];
  while (queue.length > 0) {
    const [prefix, dict] = queue.shift()!;
    if (seen.has(dict)) {
      throw new DcaeError(
        'PTH_NOT_STATE_DICT',
        `${source}: the dict at ${JSON.stringify(prefix)} appears twice (a shared or cyclic structure).`,
        {
          source,
        },
      );
    }
    seen.add(dict);
    for (const [key, value] of dict.entries) {
      const full = `${prefix}${String(key)}`;
      if (value instanceof PthTensorRef) {
        if (tensors.has(full))
          throw new DcaeError(
            'PTH_NOT_STATE_DICT',
            `${source}: two tensors are named ${JSON.stringify(full)}.`,
            { source },
          );
        tensors.set(full, value);
        if (tensors.size > maxTensors) {
          throw new DcaeError('PTH_NOT_STATE_DICT', `${source}: more than ${maxTensors} tensors.`, {
            source,
          });
        }
      } else if (value instanceof PyDict) {
        if (prefix.split('.').length > 8)
          throw new DcaeError('PTH_NOT_STATE_DICT', `${source}: dicts nested deeper than 8 levels.`, {
            source,
          });
        queue.push([`${full}.`, value]);
      } else skipped.set(full, typeName(value));
    }
  }
  if (tensors.size === 0) {
    const keys = [...skipped.keys()].slice(0, 5).map((k) => JSON.stringify(k));
    throw new DcaeError(
      'PTH_NOT_STATE_DICT',
      `${source}: the checkpoint holds no tensors${keys.length > 0 ? ` (keys: ${keys.join(', ')})` : ''}; save model.state_dict().`,
      { source },
    );
  }
  return { tensors, skipped };
}

/** Elements from a view's first to its last element, inclusive (0 for an empty view). */
function viewSpan(shape: readonly number[], stride: readonly number[]): number {
  if (shape.some((n) => n === 0)) return 0;
  return shape.reduce((span, n, d) => span + (n - 1) * stride[d]!, 1);
}

/** The view must lie inside its storage; `contiguous` when it is row-major without gaps. */
function checkView(key: string, ref: PthTensorRef, source: string): PthTensorInfo {
  const { shape, stride, offset, storage } = ref;
  const count = shape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(count)) {
    throw new DcaeError(
      'PTH_STORAGE',
      `${source}: tensor ${JSON.stringify(key)} has shape ${formatShape(shape)}, beyond 2^53 elements.`,
      { source },
    );
  }
  const span = viewSpan(shape, stride);
  if (!Number.isSafeInteger(offset + span) || offset + span > storage.numel) {
    throw new DcaeError(
      'PTH_STORAGE',
      `${source}: tensor ${JSON.stringify(key)} (shape ${formatShape(shape)}, stride ${formatShape(stride)}, offset ${offset}) ` +
        `needs elements up to ${offset + span} of storage ${JSON.stringify(storage.key)}, which has ${storage.numel}: ` +
        'the view lies outside its storage. The file is damaged or crafted.',
      {
        source,
        detail: { tensor: key, storage: storage.key, needed: offset + span, available: storage.numel },
      },
    );
  }
  let expected = 1;
  let contiguous = true;
  for (let d = shape.length - 1; d >= 0; d--) {
    if (shape[d]! !== 1 && stride[d]! !== expected) contiguous = false;
    expected *= shape[d]!;
  }
  return {
    dtype: storage.dtype,
    shape,
    stride,
    storage: storage.key,
    storageOffset: offset,
    contiguous: contiguous || count === 0,
  };
}
