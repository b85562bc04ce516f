import { describe, expect, it } from 'vitest';
import { DcaeError } from '../src/errors.js';
import { GraphBuilder, MAX_PROTOBUF_BYTES, rawBytes, serializeModel } from '../src/onnx/index.js';
import type { OnnxModel } from '../src/onnx/index.js';
import { decodeModel, walk } from './onnx-wire.js';

/** Little-endian float32 bytes, written independently of the serializer. */
function le32(values: readonly number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 4);
  values.forEach((v, i) => b.writeFloatLE(v, i * 4));
  return new Uint8Array(b);
}

function le64(values: readonly number[]): Uint8Array {
  const b = Buffer.alloc(values.length * 8);
  values.forEach((v, i) => b.writeBigInt64LE(BigInt(v), i * 8));
  return new Uint8Array(b);
}

function tinyModel(metadata: Record<string, string> = { b: '2', a: '1' }): OnnxModel {
  const g = new GraphBuilder({ name: 'tiny', metadata, producer: 'dcae-test' });
  const x = g.input('x', 'float32', ['batch', 3]);
  const m = g.root.child('blk');
  const w = g.initializer('blk.w', {
    kind: 'inline',
    tensor: { dtype: 'float32', shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) },
  });
  const e = g.initializer('blk.e', {
    kind: 'external',
    dtype: 'float32',
    shape: [2],
    location: 'w.safetensors',
    offset: 1025,
    length: 8,
  });
  const t = m.transpose(m.softmax(m.gemm(x, w, e, { transB: true, alpha: 0.5 })), [1, 0]);
  const big = m.greater(m.shape(x, 0, 1), m.constant([1], 'int64'));
  const [z] = m.if(
    big,
    (a) => [a.relu(t)],
    (b) => [b.neg(t)],
  );
  g.output(z!, 'y', [2, 'batch']);
  return g.build();
}

const float = (name: string, f: number) => ({ name, f, type: 1n });
const int = (name: string, i: number) => ({ name, i: BigInt(i), type: 2n });
const tensorType = (elem: number, dims?: ({ dim_value: bigint } | { dim_param: string })[]) => ({
  type: { tensor_type: { elem_type: BigInt(elem), ...(dims ? { shape: { dim: dims } } : {}) } },
});

describe('serializeModel', () => {
  it('writes the onnx.proto fields a hand-written expectation names (decoded by an independent reader)', () => {
    const decoded = decodeModel(serializeModel(tinyModel()));
    expect(decoded).toEqual({
      ir_version: 8n,
      producer_name: 'dcae-test',
      opset_import: [{ domain: '', version: 18n }],
      metadata_props: [
        { key: 'a', value: '1' },
        { key: 'b', value: '2' },
      ],
      graph: {
        name: 'tiny',
        input: [{ name: 'x', ...tensorType(1, [{ dim_param: 'batch' }, { dim_value: 3n }]) }],
        output: [{ name: 'y', ...tensorType(1, [{ dim_value: 2n }, { dim_param: 'batch' }]) }],
        initializer: [
          { name: 'blk.w', dims: [2, 3], data_type: 1n, raw_data: le32([1, 2, 3, 4, 5, 6]) },
          {
            name: 'blk.e',
            dims: [2],
            data_type: 1n,
            data_location: 1n,
            external_data: [
              { key: 'location', value: 'w.safetensors' },
              { key: 'offset', value: '1025' },
              { key: 'length', value: '8' },
            ],
          },
          { name: '/blk/Constant', dims: [1], data_type: 7n, raw_data: le64([1]) },
        ],
        node: [
          {
            name: '/blk/Gemm',
            op_type: 'Gemm',
            input: ['x', 'blk.w', 'blk.e'],
            output: ['/blk/Gemm_output_0'],
            attribute: [float('alpha', 0.5), float('beta', 1), int('transA', 0), int('transB', 1)],
          },
          {
            name: '/blk/Softmax',
            op_type: 'Softmax',
            input: ['/blk/Gemm_output_0'],
            output: ['/blk/Softmax_output_0'],
            attribute: [int('axis', -1)],
          },
          {
            name: '/blk/Transpose',
            op_type: 'Transpose',
            input: ['/blk/Softmax_output_0'],
            output: ['/blk/Transpose_output_0'],
            attribute: [{ name: 'perm', ints: [1, 0], type: 7n }],
          },
          {
            name: '/blk/Shape',
            op_type: 'Shape',
            input: ['x'],
            output: ['/blk/Shape_output_0'],
            attribute: [int('end', 1), int('start', 0)],
          },
          {
            name: '/blk/Greater',
            op_type: 'Greater',
            input: ['/blk/Shape_output_0', '/blk/Constant'],
            output: ['/blk/Greater_output_0'],
          },
          {
            name: '/blk/If',
            op_type: 'If',
            input: ['/blk/Greater_output_0'],
            output: ['/blk/If_output_0'],
            attribute: [
              {
                name: 'else_branch',
                type: 5n,
                g: {
                  name: 'blk.else_branch',
                  node: [
                    {
                      name: '/blk/else_branch/Neg',
                      op_type: 'Neg',
                      input: ['/blk/Transpose_output_0'],
                      output: ['/blk/else_branch/Neg_output_0'],
                    },
                  ],
                  output: [{ name: '/blk/else_branch/Neg_output_0', ...tensorType(1) }],
                },
              },
              {
                name: 'then_branch',
                type: 5n,
                g: {
                  name: 'blk.then_branch',
                  node: [
                    {
                      name: '/blk/then_branch/Relu',
                      op_type: 'Relu',
                      input: ['/blk/Transpose_output_0'],
                      output: ['/blk/then_branch/Relu_output_0'],
                    },
                  ],
                  output: [{ name: '/blk/then_branch/Relu_output_0', ...tensorType(1) }],
                },
              },
            ],
          },
          { name: '/y/Identity', op_type: 'Identity', input: ['/blk/If_output_0'], output: ['y'] },
        ],
      },
    });
  });

  it('is deterministic: the same graph built twice, metadata in any order, gives identical bytes', () => {
    const a = serializeModel(tinyModel({ b: '2', a: '1' }));
    const b = serializeModel(tinyModel({ a: '1', b: '2' }));
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    expect(Buffer.from(serializeModel(tinyModel({ a: '1', b: '3' }))).equals(Buffer.from(a))).toBe(false);
  });

  it('encodes negative ints as 10-byte two’s-complement varints', () => {
    const g = new GraphBuilder({ name: 'neg' });
    g.output(g.root.softmax(g.input('x', 'float32', [2]), -3), 'y', [2]);
    const bytes = serializeModel(g.build());
    const graph = walk(bytes).find((f) => f.field === 7)!.value as Uint8Array;
    const node = walk(graph).find((f) => f.field === 1)!.value as Uint8Array;
    const attr = walk(node).find((f) => f.field === 5)!.value as Uint8Array;
    const i = walk(attr).find((f) => f.field === 3)!;
    expect(BigInt.asIntN(64, i.value as bigint)).toBe(-3n);
    expect(i.value).toBe(2n ** 64n - 3n);
  });

  it('writes only the viewed bytes of a tensor whose data is a subarray of a larger buffer', () => {
    const backing = Float32Array.from([9, 9, 1.5, -2, 3.25, 9]);
    const view = backing.subarray(2, 5);
    expect(rawBytes({ dtype: 'float32', shape: [3], data: view })).toEqual(le32([1.5, -2, 3.25]));
    const g = new GraphBuilder({ name: 'view' });
    const c = g.initializer('c', { kind: 'inline', tensor: { dtype: 'float32', shape: [3], data: view } });
    // A large view (≥ 64 bytes) goes through the by-reference path of the writer.
    const long = new Float32Array(64).map((_, i) => i);
    const d = g.initializer('d', {
      kind: 'inline',
      tensor: { dtype: 'float32', shape: [20], data: long.subarray(7, 27) },
    });
    g.output(g.root.add(c, c), 'y', [3]);
    g.output(g.root.identity(d), 'z', [20]);
    const graph = decodeModel(serializeModel(g.build())).graph as { initializer: { raw_data: Uint8Array }[] };
    expect(graph.initializer[0]!.raw_data).toEqual(le32([1.5, -2, 3.25]));
    expect(graph.initializer[1]!.raw_data).toEqual(le32(Array.from({ length: 20 }, (_, i) => i + 7)));
  });

  it('writes scalars without dims and keeps every core dtype’s ONNX data type', () => {
    const g = new GraphBuilder({ name: 'dtypes' });
    const x = g.input('x', 'float32', []);
    const scalar = g.root.constant(2);
    const h = g.initializer('h', {
      kind: 'inline',
      tensor: { dtype: 'float16', shape: [1], data: Uint16Array.of(0x3c00) },
    });
    const bf = g.initializer('bf', {
      kind: 'inline',
      tensor: { dtype: 'bfloat16', shape: [1], data: Uint16Array.of(0x3f80) },
    });
    const i32 = g.root.constant([5], 'int32');
    const u8 = g.root.constant([7], 'uint8');
    const b = g.root.constant([1], 'bool');
    g.output(g.root.mul(x, scalar), 'y', []);
    for (const [v, name] of [
      [h, 'h_out'],
      [bf, 'bf_out'],
      [i32, 'i32_out'],
      [u8, 'u8_out'],
      [b, 'b_out'],
    ] as const) {
      g.output(v, name, [1]);
    }
    const graph = decodeModel(serializeModel(g.build())).graph as {
      initializer: { name: string; dims?: number[]; data_type: bigint; raw_data: Uint8Array }[];
    };
    const byName = Object.fromEntries(graph.initializer.map((i) => [i.name, i]));
    expect(byName['/Constant']).toEqual({ name: '/Constant', data_type: 1n, raw_data: le32([2]) });
    expect(byName.h).toMatchObject({ data_type: 10n, dims: [1], raw_data: Uint8Array.of(0x00, 0x3c) });
    expect(byName.bf).toMatchObject({ data_type: 16n, raw_data: Uint8Array.of(0x80, 0x3f) });
    expect(byName['/Constant_1']).toMatchObject({ data_type: 6n, raw_data: Uint8Array.of(5, 0, 0, 0) });
    expect(byName['/Constant_2']).toMatchObject({ data_type: 2n, raw_data: Uint8Array.of(7) });
    expect(byName['/Constant_3']).toMatchObject({ data_type: 9n, raw_data: Uint8Array.of(1) });
  });

  it('throws MODEL_TOO_LARGE past the 2 GB protobuf limit, before allocating the output', () => {
    // 2^29 + 1 float32 = 2 GiB + 4 bytes. The zero-filled buffer is never touched, so this costs
    // address space, not memory; the serializer keeps large tensors by reference and checks the
    // total before copying.
    const huge = new Float32Array(2 ** 29 + 1);
    const g = new GraphBuilder({ name: 'huge' });
    const w = g.initializer('w', {
      kind: 'inline',
      tensor: { dtype: 'float32', shape: [huge.length], data: huge },
    });
    g.output(w, 'y', [huge.length]);
    const model = g.build();
    let error: unknown;
    try {
      serializeModel(model);
    } catch (e) {
      error = e;
    }
    expect(DcaeError.is(error, 'MODEL_TOO_LARGE')).toBe(true);
    const { detail, message } = error as DcaeError;
    expect(detail).toMatchObject({ limit: MAX_PROTOBUF_BYTES });
    expect(detail!.bytes as number).toBeGreaterThan(huge.byteLength);
    expect(message).toMatch(/"huge".*2 GB.*external/);

    // The same weights as external data serialize to a few hundred bytes.
    const ext = new GraphBuilder({ name: 'huge' });
    const v = ext.initializer('w', {
      kind: 'external',
      dtype: 'float32',
      shape: [huge.length],
      location: 'w.bin',
      offset: 0,
      length: huge.byteLength,
    });
    ext.output(v, 'y', [huge.length]);
    expect(serializeModel(ext.build()).length).toBeLessThan(300);
  });
});
