/**
 * Hand-written protobuf for crafted ONNX models (docs/reliability.md Appendix B): ModelProto → GraphProto
 * → one node `Add(X, W) → Y` (or any op), with W as a TensorProto whose every field the test sets,
 * including values serializeModel() never writes. Field numbers from onnx/onnx.proto.
 */

class Message {
  readonly bytes: number[] = [];

  #varint(value: number | bigint): void {
    let v = BigInt.asUintN(64, BigInt(value)); // negative int64 as two's complement
    while (v >= 0x80n) {
      this.bytes.push(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.bytes.push(Number(v));
  }

  int(field: number, value: number | bigint): this {
    this.#varint(field << 3);
    this.#varint(value);
    return this;
  }

  raw(field: number, value: Uint8Array | readonly number[]): this {
    this.#varint((field << 3) | 2);
    this.#varint(value.length);
    this.bytes.push(...value);
    return this;
  }

  str(field: number, value: string): this {
    return this.raw(field, new TextEncoder().encode(value));
  }

  msg(field: number, inner: Message): this {
    return this.raw(field, inner.bytes);
  }

  packed(field: number, values: readonly (number | bigint)[]): this {
    const inner = new Message();
    for (const v of values) inner.#varint(v);
    return this.raw(field, inner.bytes);
  }
}

export interface Weight {
  readonly dims: readonly (number | bigint)[];
  readonly raw?: Uint8Array;
  /** external_data entries in order (duplicates kept); sets data_location = EXTERNAL. */
  readonly external?: readonly (readonly [string, string])[];
}

export interface Crafted {
  readonly weight: Weight;
  readonly op?: string;
  readonly domain?: string;
}

/** `Y = op(X, W)` with X, Y float[4] (Add from the default domain unless given). */
export function craft({ weight, op = 'Add', domain }: Crafted): Uint8Array {
  const tensor = new Message();
  if (weight.dims.length > 0) tensor.packed(1, weight.dims);
  tensor.int(2, 1).str(8, 'W');
  if (weight.raw) tensor.raw(9, weight.raw);
  for (const [key, value] of weight.external ?? []) tensor.msg(13, new Message().str(1, key).str(2, value));
  if (weight.external) tensor.int(14, 1);
  const node = new Message().str(1, 'X').str(1, 'W').str(2, 'Y').str(3, 'node0').str(4, op);
  if (domain !== undefined) node.str(7, domain);
  const float4 = (name: string) =>
    new Message()
      .str(1, name)
      .msg(
        2,
        new Message().msg(1, new Message().int(1, 1).msg(2, new Message().msg(1, new Message().int(1, 4)))),
      );
  const graph = new Message()
    .msg(1, node)
    .str(2, 'g')
    .msg(5, tensor)
    .msg(11, float4('X'))
    .msg(12, float4('Y'));
  const model = new Message().int(1, 8).msg(7, graph).msg(8, new Message().str(1, '').int(2, 13));
  if (domain) model.msg(8, new Message().str(1, domain).int(2, 1));
  return Uint8Array.from(model.bytes);
}

/** W = float[4] in `location` at `offset` (bytes `length`, 16 unless given). */
export function external(location: string, offset = '0', length = '16'): Uint8Array {
  return craft({
    weight: {
      dims: [4],
      external: [
        ['location', location],
        ['offset', offset],
        ['length', length],
      ],
    },
  });
}

export const WEIGHTS = Float32Array.of(10, 20, 30, 40);
export const weightBytes = (): Uint8Array => new Uint8Array(WEIGHTS.buffer.slice(0));
