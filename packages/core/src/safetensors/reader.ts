import { closestNames } from '../config/closest-names.js';
import { DcaeError, formatShape } from '../errors.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import type { ByteSource } from './byte-source.js';
import type { SafetensorsDType } from './dtype.js';
import type { SafetensorsHeader, SafetensorsOptions, SafetensorsTensorInfo } from './header.js';
import { parseHeader, readHeaderLength, withDefaultLimits } from './header.js';

/** An open safetensors file whose header has been validated; tensor data is read on demand. */
export interface SafetensorsFile {
  readonly source: ByteSource;
  readonly header: SafetensorsHeader;
  /** The tensor's entry; TENSOR_NOT_FOUND (naming close matches) when there is none. */
  tensorInfo(name: string): SafetensorsTensorInfo;
  /** Absolute byte offset of the tensor's data in the file (e.g. for ONNX external data). */
  fileOffset(name: string): number;
  /** The tensor's raw little-endian bytes. */
  readBytes(name: string): Promise<Uint8Array>;
  /** The tensor as a host tensor; F32, F16, BF16, I64, I32, U8, I8 and BOOL exactly, F64 rounded to float32, others DTYPE_UNSUPPORTED. */
  readTensor(name: string): Promise<HostTensor>;
  /** Closes the source. */
  close(): Promise<void>;
}

/** A safetensors file held in memory, parsed and validated. */
export interface SafetensorsBuffer {
  readonly bytes: Uint8Array;
  readonly header: SafetensorsHeader;
  tensorInfo(name: string): SafetensorsTensorInfo;
  /** A view (not a copy) of the tensor's raw bytes. */
  tensorBytes(name: string): Uint8Array;
  /** The tensor as a host tensor with its own copy of the data. */
  tensor(name: string): HostTensor;
}

/**
 * Opens a safetensors file through `source` and validates its header by the reference rules
 * (docs/reliability.md §2.1) plus the policy limits in `options`. The file takes over the source: it
 * is closed by `close()`, or right away if the header is rejected.
 */
export async function openSafetensors(
  source: ByteSource,
  options: SafetensorsOptions = {},
): Promise<SafetensorsFile> {
  let header: SafetensorsHeader;
  try {
    const limits = withDefaultLimits(options);
    const headerLength = readHeaderLength(
      await source.read(0, Math.min(8, source.size)),
      source.size,
      source.name,
      limits,
    );
    header = parseHeader(await source.read(8, headerLength), source.size, source.name, limits);
  } catch (error) {
    await source.close?.();
    throw error;
  }
  const tensorInfo = (name: string) => lookUp(header, name, source.name);
  const readBytes = (name: string) => {
    const { begin, end } = tensorInfo(name);
    return source.read(header.dataStart + begin, end - begin);
  };
  return {
    source,
    header,
    tensorInfo,
    fileOffset: (name) => header.dataStart + tensorInfo(name).begin,
    readBytes,
    readTensor: async (name) => {
      const decode = decoderFor(tensorInfo(name), name, source.name);
      return decode(await readBytes(name));
    },
    close: async () => {
      await source.close?.();
    },
  };
}

/** Parses a safetensors file held in memory, with the same checks as {@link openSafetensors}. */
export function parseSafetensors(
  bytes: Uint8Array,
  options: SafetensorsOptions & { name?: string } = {},
): SafetensorsBuffer {
  const { name = 'bytes', ...limitOptions } = options;
  const limits = withDefaultLimits(limitOptions);
  const headerLength = readHeaderLength(bytes.subarray(0, 8), bytes.byteLength, name, limits);
  const header = parseHeader(bytes.subarray(8, 8 + headerLength), bytes.byteLength, name, limits);
  const tensorInfo = (tensorName: string) => lookUp(header, tensorName, name);
  const tensorBytes = (tensorName: string) => {
    const { begin, end } = tensorInfo(tensorName);
    return bytes.subarray(header.dataStart + begin, header.dataStart + end);
  };
  return {
    bytes,
    header,
    tensorInfo,
    tensorBytes,
    tensor: (tensorName) => {
      const decode = decoderFor(tensorInfo(tensorName), tensorName, name);
      return decode(tensorBytes(tensorName).slice());
    },
  };
}

function lookUp(header: SafetensorsHeader, name: string, source: string): SafetensorsTensorInfo {
  const info = header.tensors.get(name);
  if (info !== undefined) return info;
  const suggestions = closestNames(name, header.tensors.keys());
  const hint =
    suggestions.length > 0 ? ` Close matches: ${suggestions.map((s) => JSON.stringify(s)).join(', ')}.` : '';
  throw new DcaeError(
    'TENSOR_NOT_FOUND',
    `${source}: no tensor named ${JSON.stringify(name)} among its ${header.tensors.size} tensors.${hint}`,
    {
      source,
      detail: { name, suggestions },
    },
  );
}

type Decoder = (bytes: Uint8Array, shape: readonly number[]) => HostTensor;

/**
 * How each readable dtype becomes a host tensor. F32, F16, BF16, I64, I32, U8, I8 and BOOL keep their
 * values exactly; F64 is rounded to float32 (dcae computes in float32). The bytes may become the
 * tensor's data. Data is little-endian, like every platform JS runs on.
 */
const DECODERS: Partial<Record<SafetensorsDType, Decoder>> = {
  F32: (bytes, shape) => ({ dtype: 'float32', shape, data: view(bytes, Float32Array) }),
  F16: (bytes, shape) => ({ dtype: 'float16', shape, data: view(bytes, Uint16Array) }),
  BF16: (bytes, shape) => ({ dtype: 'bfloat16', shape, data: view(bytes, Uint16Array) }),
  I64: (bytes, shape) => ({ dtype: 'int64', shape, data: view(bytes, BigInt64Array) }),
  I32: (bytes, shape) => ({ dtype: 'int32', shape, data: view(bytes, Int32Array) }),
  U8: (bytes, shape) => ({ dtype: 'uint8', shape, data: bytes }),
  I8: (bytes, shape) => ({ dtype: 'int8', shape, data: view(bytes, Int8Array) }),
  BOOL: (bytes, shape) => ({ dtype: 'bool', shape, data: bytes }),
  F64: (bytes, shape) => ({ dtype: 'float32', shape, data: Float32Array.from(view(bytes, Float64Array)) }),
};

/** The tensor's decoder, checked before any data is read. */
function decoderFor(
  info: SafetensorsTensorInfo,
  name: string,
  source: string,
): (bytes: Uint8Array) => HostTensor {
  const decode = DECODERS[info.dtype];
  if (decode === undefined) {
    const readable = Object.keys(DECODERS).join(', ');
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${source}: tensor ${JSON.stringify(name)} is ${info.dtype} ${formatShape(info.shape)}; dcae reads ${readable} tensors. Use readBytes for the raw data.`,
      {
        source,
        detail: { dtype: info.dtype },
      },
    );
  }
  const shape = Object.freeze([...info.shape]);
  return (bytes) => decode(bytes, shape);
}

interface TypedArrayType<T> {
  readonly BYTES_PER_ELEMENT: number;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): T;
}

/** A typed view of `bytes`; misaligned bytes (a header length not a multiple of 8) are copied first. */
function view<T>(bytes: Uint8Array, ArrayType: TypedArrayType<T>): T {
  const aligned = bytes.byteOffset % ArrayType.BYTES_PER_ELEMENT === 0 ? bytes : bytes.slice();
  return new ArrayType(aligned.buffer, aligned.byteOffset, aligned.byteLength / ArrayType.BYTES_PER_ELEMENT);
}

/** Raw little-endian bytes of a tensor as a host tensor, by the same rules as `readTensor` (used by the .pth reader). */
export function decodeTensorBytes(
  dtype: SafetensorsDType,
  shape: readonly number[],
  bytes: Uint8Array,
  name: string,
  source: string,
): HostTensor {
  return decoderFor({ dtype, shape, begin: 0, end: bytes.byteLength }, name, source)(bytes);
}
