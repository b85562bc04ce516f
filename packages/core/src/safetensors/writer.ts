import { DcaeError } from '../errors.js';
import { DTYPE_BYTES } from '../tensor/dtype.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import { checkHostTensor } from '../tensor/host-tensor.js';
import { SAFETENSORS_DTYPE_OF } from './dtype.js';

export type TensorsToWrite = ReadonlyMap<string, HostTensor> | Readonly<Record<string, HostTensor>>;
export type MetadataToWrite = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

/** The reference writer refuses larger headers (safetensors #669). */
const MAX_HEADER_BYTES = 100_000_000;

/**
 * A safetensors file as a list of chunks: the length and header, then each tensor's bytes (views,
 * not copies). Tensors are ordered by falling element size, then by name, so every tensor is
 * aligned to its element size; the header is padded with spaces so the data starts at a multiple
 * of 8, as the reference writer does.
 */
export function safetensorsChunks(tensors: TensorsToWrite, metadata?: MetadataToWrite): Uint8Array[] {
  const entries = [...entriesOf(tensors)];
  for (const [name, tensor] of entries) checkTensorToWrite(name, tensor);
  entries.sort(
    ([nameA, a], [nameB, b]) => DTYPE_BYTES[b.dtype] - DTYPE_BYTES[a.dtype] || compareNames(nameA, nameB),
  );

  const fields: string[] = [];
  if (metadata !== undefined) fields.push(`"__metadata__":${metadataJson(metadata)}`);
  let offset = 0;
  for (const [name, tensor] of entries) {
    const begin = offset;
    offset += tensor.data.byteLength;
    const info = {
      dtype: SAFETENSORS_DTYPE_OF[tensor.dtype],
      shape: tensor.shape,
      data_offsets: [begin, offset],
    };
    fields.push(`${JSON.stringify(name)}:${JSON.stringify(info)}`);
  }
  const json = new TextEncoder().encode(`{${fields.join(',')}}`);
  const headerLength = Math.ceil(json.byteLength / 8) * 8;
  if (headerLength > MAX_HEADER_BYTES) {
    throw new DcaeError(
      'HEADER_TOO_LARGE',
      `The safetensors header would be ${headerLength} bytes, over the format's limit of ${MAX_HEADER_BYTES}; write fewer tensors per file.`,
    );
  }
  const head = new Uint8Array(8 + headerLength).fill(0x20, 8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(headerLength), true);
  head.set(json, 8);
  return [
    head,
    ...entries.map(
      ([, tensor]) => new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength),
    ),
  ];
}

/** A safetensors file in one buffer (see {@link safetensorsChunks} for the layout). */
export function serializeSafetensors(
  tensors: TensorsToWrite,
  metadata?: MetadataToWrite,
): Uint8Array<ArrayBuffer> {
  const chunks = safetensorsChunks(tensors, metadata);
  const file = new Uint8Array(chunks.reduce((total, chunk) => total + chunk.byteLength, 0));
  let offset = 0;
  for (const chunk of chunks) {
    file.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return file;
}

function entriesOf<T>(map: ReadonlyMap<string, T> | Readonly<Record<string, T>>): Iterable<[string, T]> {
  return map instanceof Map ? (map as ReadonlyMap<string, T>).entries() : Object.entries(map);
}

/** Orders by UTF-16 code units: deterministic, unlike localeCompare. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function checkTensorToWrite(name: string, tensor: HostTensor): void {
  checkWellFormed(name, 'tensor name');
  if (name === '__metadata__') {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      'A tensor cannot be named "__metadata__"; safetensors reserves that key for metadata.',
    );
  }
  checkHostTensor(tensor, `tensor ${JSON.stringify(name)}`);
}

function metadataJson(metadata: MetadataToWrite): string {
  const entries = [...entriesOf(metadata)];
  for (const [key, value] of entries) {
    checkWellFormed(key, 'metadata key');
    if (typeof value !== 'string') {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `Metadata ${JSON.stringify(key)} is a ${typeof value}; safetensors metadata values must be strings.`,
      );
    }
    checkWellFormed(value, 'metadata value');
  }
  // fromEntries defines own properties, so even a "__proto__" key is written as data.
  return JSON.stringify(Object.fromEntries(entries));
}

/** Lone surrogates cannot be encoded as UTF-8; JSON.stringify would escape them into text readers reject. */
function checkWellFormed(text: string, what: string): void {
  if (/\p{Surrogate}/u.test(text)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `A ${what} contains an unpaired UTF-16 surrogate (${JSON.stringify(text.slice(0, 40))}); it cannot be written as UTF-8.`,
    );
  }
}
