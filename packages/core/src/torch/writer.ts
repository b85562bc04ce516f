import { DcaeError } from '../errors.js';
import { SAFETENSORS_DTYPE_OF } from '../safetensors/dtype.js';
import type { TensorsToWrite } from '../safetensors/writer.js';
import type { HostTensor } from '../tensor/host-tensor.js';
import { checkHostTensor } from '../tensor/host-tensor.js';

/**
 * A writer of `torch.save(state_dict)` archives (zip format, pickle protocol 2), so that tests and
 * the fuzzer can make .pth files without PyTorch. The layout is torch's: `<archive>/data.pkl`,
 * `<archive>/byteorder`, one `<archive>/data/<key>` record per tensor with its data aligned to 64
 * bytes, `<archive>/version`. See docs/pth-reader.md.
 */

const STORAGE_CLASS: Readonly<Record<string, string>> = {
  F32: 'FloatStorage',
  F16: 'HalfStorage',
  BF16: 'BFloat16Storage',
  I64: 'LongStorage',
  I32: 'IntStorage',
  U8: 'ByteStorage',
  BOOL: 'BoolStorage',
};

let crcTable: Uint32Array | undefined;

/** CRC-32 (IEEE) of `bytes`, as zip records it. */
export function crc32(bytes: Uint8Array): number {
  if (crcTable === undefined) {
    crcTable = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      crcTable[n] = c >>> 0;
    }
  }
  let crc = 0xffffffff;
  for (const byte of bytes) crc = crcTable[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** One record of a stored zip archive; `align` pads its local header so the data starts at a multiple of it. */
export interface ZipRecord {
  readonly name: string;
  readonly data: Uint8Array;
  readonly align?: number;
}

/** A zip archive of stored (uncompressed) records, without zip64 (every offset below 4 GiB). */
export function zipStored(records: readonly ZipRecord[]): Uint8Array {
  const encoder = new TextEncoder();
  const chunks: Uint8Array[] = [];
  const central: Uint8Array[] = [];
  let offset = 0;
  for (const record of records) {
    const name = encoder.encode(record.name);
    const align = record.align ?? 1;
    const base = offset + 30 + name.length;
    // Padding goes in an extra field (id 0x4246, as torch's writer does), which needs at least 4 bytes.
    let pad = (align - (base % align)) % align;
    if (pad > 0 && pad < 4) pad += align;
    const local = new Uint8Array(30 + name.length + pad);
    const lv = new DataView(local.buffer);
    const crc = crc32(record.data);
    lv.setUint32(0, 0x04034b50, true);
    lv.setUint16(4, 20, true);
    lv.setUint32(14, crc, true);
    lv.setUint32(18, record.data.length, true);
    lv.setUint32(22, record.data.length, true);
    lv.setUint16(26, name.length, true);
    lv.setUint16(28, pad, true);
    local.set(name, 30);
    if (pad > 0) {
      lv.setUint16(30 + name.length, 0x4246, true);
      lv.setUint16(32 + name.length, pad - 4, true);
    }
    const entry = new Uint8Array(46 + name.length);
    const ev = new DataView(entry.buffer);
    ev.setUint32(0, 0x02014b50, true);
    ev.setUint16(4, 20, true);
    ev.setUint16(6, 20, true);
    ev.setUint32(16, crc, true);
    ev.setUint32(20, record.data.length, true);
    ev.setUint32(24, record.data.length, true);
    ev.setUint16(28, name.length, true);
    ev.setUint32(42, offset, true);
    entry.set(name, 46);
    chunks.push(local, record.data);
    central.push(entry);
    offset += local.length + record.data.length;
  }
  const cdSize = central.reduce((n, c) => n + c.length, 0);
  const end = new Uint8Array(22);
  const dv = new DataView(end.buffer);
  dv.setUint32(0, 0x06054b50, true);
  dv.setUint16(8, records.length, true);
  dv.setUint16(10, records.length, true);
  dv.setUint32(12, cdSize, true);
  dv.setUint32(16, offset, true);
  const out = new Uint8Array(offset + cdSize + 22);
  let at = 0;
  for (const chunk of [...chunks, ...central, end]) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Builds pickle protocol-2 streams: the opcodes torch.save emits for a state_dict. */
export class PickleBuilder {
  readonly #bytes: number[] = [];
  readonly #encoder = new TextEncoder();

  op(code: number, ...args: number[]): this {
    this.#bytes.push(code, ...args);
    return this;
  }
  proto(): this {
    return this.op(0x80, 2);
  }
  global(module: string, name: string): this {
    this.#bytes.push(0x63, ...this.#encoder.encode(`${module}\n${name}\n`));
    return this;
  }
  string(text: string): this {
    const bytes = this.#encoder.encode(text);
    this.#bytes.push(0x58, ...u32(bytes.length), ...bytes);
    return this;
  }
  int(value: number): this {
    if (value >= 0 && value < 256) return this.op(0x4b, value);
    if (value >= 0 && value < 65536) return this.op(0x4d, value & 0xff, value >> 8);
    if (value >= -(2 ** 31) && value < 2 ** 31) return this.op(0x4a, ...u32(value >>> 0));
    // LONG1 with 8 bytes, two's complement.
    const big = BigInt.asUintN(64, BigInt(value));
    return this.op(0x8a, 8, ...Array.from({ length: 8 }, (_, i) => Number((big >> BigInt(8 * i)) & 0xffn)));
  }
  mark(): this {
    return this.op(0x28);
  }
  tuple(): this {
    return this.op(0x74);
  }
  intTuple(values: readonly number[]): this {
    this.mark();
    for (const v of values) this.int(v);
    return this.tuple();
  }
  /** `_rebuild_tensor_v2(storage(class, key, numel), offset, size, stride, False, OrderedDict())`. */
  tensor(
    storageClass: string,
    key: string,
    numel: number,
    offset: number,
    shape: readonly number[],
    stride: readonly number[],
  ): this {
    this.global('torch._utils', '_rebuild_tensor_v2').mark();
    this.mark()
      .string('storage')
      .global('torch', storageClass)
      .string(key)
      .string('cpu')
      .int(numel)
      .tuple()
      .op(0x51);
    this.int(offset).intTuple(shape).intTuple(stride).op(0x89);
    this.global('collections', 'OrderedDict').op(0x29).op(0x52);
    return this.tuple().op(0x52);
  }
  bytes(): Uint8Array {
    return Uint8Array.from(this.#bytes);
  }
}

function u32(value: number): number[] {
  return [value & 0xff, (value >>> 8) & 0xff, (value >>> 16) & 0xff, (value >>> 24) & 0xff];
}

/** Row-major strides of `shape`. */
export function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length).fill(1);
  for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1]! * shape[d + 1]!;
  return strides;
}

/**
 * `torch.save(state_dict)` of `tensors` (an OrderedDict of contiguous tensors, one storage each,
 * in the given order) as a zip archive whose records sit under `archive/`.
 */
export function serializePth(tensors: TensorsToWrite, archive = 'archive'): Uint8Array {
  const entries: [string, HostTensor][] =
    tensors instanceof Map
      ? [...(tensors as ReadonlyMap<string, HostTensor>)]
      : Object.entries(tensors as Readonly<Record<string, HostTensor>>);
  const p = new PickleBuilder().proto().global('collections', 'OrderedDict').op(0x29).op(0x52).mark();
  const records: ZipRecord[] = [];
  entries.forEach(([name, tensor], i) => {
    checkHostTensor(tensor, name);
    const storageClass = STORAGE_CLASS[SAFETENSORS_DTYPE_OF[tensor.dtype]];
    if (storageClass === undefined)
      throw new DcaeError('DTYPE_UNSUPPORTED', `${name}: no torch storage for ${tensor.dtype}.`);
    const numel = tensor.shape.reduce((a, b) => a * b, 1);
    p.string(name).tensor(storageClass, String(i), numel, 0, tensor.shape, contiguousStrides(tensor.shape));
    const data = new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength);
    records.push({ name: `${archive}/data/${i}`, data, align: 64 });
  });
  p.op(0x75).op(0x2e);
  return zipStored([
    { name: `${archive}/data.pkl`, data: p.bytes() },
    { name: `${archive}/byteorder`, data: new TextEncoder().encode('little') },
    ...records,
    { name: `${archive}/version`, data: new TextEncoder().encode('3\n') },
  ]);
}
