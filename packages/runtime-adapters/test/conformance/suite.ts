/**
 * The RuntimeV1 conformance suite: every adapter must pass it unchanged. It knows runtimes only
 * through `makeRuntime` and files only through `files`, so it runs wherever vitest does (Node,
 * a browser). Graphs are built with @dcae/core/onnx; expected values come from plain JS.
 */
import type { DType, HostTensor } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { Dim, InitializerData, Module } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

export interface ConformanceFiles {
  /**
   * Stores `bytes` as a file called `name` in a folder of its own for this suite run and returns
   * what the runtime accepts as `ExternalDataFile.data` for it (a path in Node, a URL in a browser).
   */
  writeFile(name: string, bytes: Uint8Array): Promise<string>;
}

export function describeRuntimeConformance(
  label: string,
  makeRuntime: () => Promise<RuntimeV1> | RuntimeV1,
  files?: ConformanceFiles,
): void {
  describe(`${label} conformance`, () => {
    let runtime: RuntimeV1;
    beforeAll(async () => {
      runtime = await makeRuntime();
    });
    afterAll(async () => {
      await runtime.dispose();
    });

    /** Creates a session, hands it to `use`, and disposes it whatever happens. */
    async function withSession<T>(model: Uint8Array, use: (session: SessionV1) => Promise<T>): Promise<T> {
      const session = await runtime.createSession(model);
      try {
        return await use(session);
      } finally {
        await session.dispose();
      }
    }

    describe('sessions', () => {
      it('describes itself as a v1 runtime with at least one device', () => {
        expect(runtime.specificationVersion).toBe('v1');
        expect(runtime.name).toMatch(/\S/);
        expect(runtime.devices.length).toBeGreaterThan(0);
      });

      it('reports input and output names in graph order and a device of the runtime', async () => {
        const model = buildModel((g, m) => {
          const b = g.input('b', 'float32', [2]);
          const a = g.input('a', 'float32', [2]);
          g.output(m.sub(a, b), 'difference', [2]);
          g.output(m.add(a, b), 'sum', [2]);
        });
        await withSession(model, async (session) => {
          expect(session.inputNames).toEqual(['b', 'a']);
          expect(session.outputNames).toEqual(['difference', 'sum']);
          expect(runtime.devices).toContain(session.device);
          const out = await session.run({ a: f32([2], [5, 7]), b: f32([2], [1, 2]) });
          expect(Object.keys(out).sort()).toEqual(['difference', 'sum']);
          expect([...out.difference!.data]).toEqual([4, 5]);
          expect([...out.sum!.data]).toEqual([6, 9]);
        });
      });

      it('runs several sessions and concurrent runs independently', async () => {
        const double = buildModel((g, m) =>
          g.output(m.mul(g.input('x', 'float32', ['n']), m.constant(2)), 'y', ['n']),
        );
        const negate = buildModel((g, m) => g.output(m.neg(g.input('x', 'float32', ['n'])), 'y', ['n']));
        const [s1, s2] = await Promise.all([runtime.createSession(double), runtime.createSession(negate)]);
        try {
          const inputs = [1, 2, 3, 4].map((n) => f32([n], range(n)));
          const results = await Promise.all(inputs.flatMap((x) => [s1.run({ x }), s2.run({ x })]));
          inputs.forEach((x, i) => {
            expect([...results[2 * i]!.y!.data]).toEqual([...x.data].map((v) => 2 * v));
            expect([...results[2 * i + 1]!.y!.data]).toEqual([...x.data].map((v) => -v));
          });
        } finally {
          await Promise.all([s1.dispose(), s2.dispose()]);
        }
      });

      it('leaves the feeds intact', async () => {
        const model = buildModel((g, m) => g.output(m.relu(g.input('x', 'float32', [4])), 'y', [4]));
        await withSession(model, async (session) => {
          const x = f32([4], [-1, 2, -3, 4]);
          await session.run({ x });
          expect(x.data.length).toBe(4);
          expect([...x.data]).toEqual([-1, 2, -3, 4]);
        });
      });
      it('accepts feeds that are views into larger buffers', async () => {
        const model = buildModel((g, m) => g.output(m.neg(g.input('x', 'float32', [3])), 'y', [3]));
        await withSession(model, async (session) => {
          const backing = Float32Array.of(9, 9, 1, 2, 3, 9);
          const { y } = await session.run({
            x: { dtype: 'float32', shape: [3], data: backing.subarray(2, 5) },
          });
          expect([...y!.data]).toEqual([-1, -2, -3]);
          expect([...backing]).toEqual([9, 9, 1, 2, 3, 9]);
        });
      });
    });

    describe('dtypes', () => {
      const samples: { [D in Exclude<DType, 'bfloat16'>]: HostTensor<D> } = {
        float32: {
          dtype: 'float32',
          shape: [2, 3],
          data: Float32Array.of(0, -1.5, 3.25, 1e-30, -0, 65504.5),
        },
        // 1, -2, 0.5, 65504, smallest subnormal, -Infinity, NaN (as bits)
        float16: {
          dtype: 'float16',
          shape: [7],
          data: Uint16Array.of(0x3c00, 0xc000, 0x3800, 0x7bff, 0x0001, 0xfc00, 0x7e00),
        },
        int64: { dtype: 'int64', shape: [3], data: BigInt64Array.of(-(2n ** 62n), 0n, 2n ** 53n + 1n) },
        int32: { dtype: 'int32', shape: [2, 2], data: Int32Array.of(-(2 ** 31), -1, 0, 2 ** 31 - 1) },
        uint8: { dtype: 'uint8', shape: [4], data: Uint8Array.of(0, 1, 128, 255) },
        int8: { dtype: 'int8', shape: [4], data: Int8Array.of(-128, -1, 0, 127) },
        bool: { dtype: 'bool', shape: [3], data: Uint8Array.of(1, 0, 1) },
      };

      for (const tensor of Object.values(samples)) {
        it(`round-trips ${tensor.dtype} ${formatDims(tensor.shape)} through Identity bit for bit`, async () => {
          const model = buildModel((g, m) =>
            g.output(m.identity(g.input('x', tensor.dtype, tensor.shape)), 'y', tensor.shape),
          );
          await withSession(model, async (session) => {
            const { y } = await session.run({ x: tensor });
            expect(y!.dtype).toBe(tensor.dtype);
            expect(y!.shape).toEqual(tensor.shape);
            expect(y!.data.constructor).toBe(tensor.data.constructor);
            expect(bytesOf(y!)).toEqual(bytesOf(tensor));
          });
        });
      }

      it('casts float32 [6] to float16, int32, bool and back as ONNX Cast defines', async () => {
        const model = buildModel((g, m) => {
          const x = g.input('x', 'float32', [6]);
          g.output(m.cast(x, 'float16'), 'half', [6]);
          g.output(m.cast(x, 'int32'), 'int', [6]);
          g.output(m.cast(x, 'bool'), 'truth', [6]);
          g.output(m.cast(m.cast(x, 'int64'), 'float32'), 'truncated', [6]);
          g.output(m.cast(m.cast(m.abs(x), 'uint8'), 'float32'), 'byte', [6]);
        });
        await withSession(model, async (session) => {
          const out = await session.run({ x: f32([6], [1, -2, 0.5, 2.7, -2.7, 0]) });
          // float16 bits of 1, -2, 0.5, 2.7 (round to nearest: 0x4166 = 2.69921875), -2.7, 0
          expect([...out.half!.data]).toEqual([0x3c00, 0xc000, 0x3800, 0x4166, 0xc166, 0x0000]);
          expect(out.half!.dtype).toBe('float16');
          expect([...out.int!.data]).toEqual([1, -2, 0, 2, -2, 0]);
          expect([...out.truth!.data]).toEqual([1, 1, 1, 1, 1, 0]);
          expect(out.truth!.dtype).toBe('bool');
          expect([...out.truncated!.data]).toEqual([1, -2, 0, 2, -2, 0]);
          expect([...out.byte!.data]).toEqual([1, 2, 0, 2, 2, 0]);
        });
      });

      it('widens a bfloat16 feed for a float32 input exactly', async () => {
        const model = buildModel((g, m) => g.output(m.identity(g.input('x', 'float32', [4])), 'y', [4]));
        await withSession(model, async (session) => {
          // bfloat16 bits of 1, -2, 3.140625, 1e38-ish (0x7e96)
          const x: HostTensor<'bfloat16'> = {
            dtype: 'bfloat16',
            shape: [4],
            data: Uint16Array.of(0x3f80, 0xc000, 0x4049, 0x7e96),
          };
          const { y } = await session.run({ x });
          expect(y!.dtype).toBe('float32');
          const bits = new Uint32Array(Float32Array.from(y!.data as Float32Array).buffer);
          expect([...bits]).toEqual([0x3f800000, 0xc0000000, 0x40490000, 0x7e960000]);
        });
      });

      it('rejects bfloat16 for a non-float32 input and a dtype that differs from the model with DTYPE_UNSUPPORTED', async () => {
        const model = buildModel((g, m) => g.output(m.identity(g.input('x', 'float16', [2])), 'y', [2]));
        await withSession(model, async (session) => {
          await expectCode(
            session.run({ x: { dtype: 'bfloat16', shape: [2], data: new Uint16Array(2) } }),
            'DTYPE_UNSUPPORTED',
            /bfloat16/,
          );
          await expectCode(session.run({ x: f32([2], [1, 2]) }), 'DTYPE_UNSUPPORTED', /float16.*float32/);
        });
      });
    });

    describe('shapes', () => {
      const model = () =>
        buildModel((g, m) => {
          const x = g.input('x', 'float32', ['batch', 2, 'height', 'width']);
          const scale = m.constant({ dtype: 'float32', shape: [1, 2, 1, 1], data: Float32Array.of(10, 100) });
          g.output(m.mul(x, scale), 'y', ['batch', 2, 'height', 'width']);
        });

      it('runs one session at dynamic batch, height and width [1,2,1,1], [3,2,4,5], [2,2,7,1]', async () => {
        await withSession(model(), async (session) => {
          for (const shape of [
            [1, 2, 1, 1],
            [3, 2, 4, 5],
            [2, 2, 7, 1],
          ]) {
            const x = f32(shape, range(count(shape)));
            const { y } = await session.run({ x });
            expect(y!.shape).toEqual(shape);
            const plane = shape[2]! * shape[3]!;
            expect([...y!.data]).toEqual(
              [...x.data].map((v, i) => v * (Math.floor(i / plane) % 2 === 0 ? 10 : 100)),
            );
          }
        });
      });

      it('rejects a wrong fixed dim, a wrong rank and a data length that does not fit the shape', async () => {
        await withSession(model(), async (session) => {
          await expectCode(
            session.run({ x: f32([1, 3, 2, 2], range(12)) }),
            'SHAPE_MISMATCH',
            /\[batch, 2, height, width\]/,
          );
          await expectCode(session.run({ x: f32([2, 2, 2], range(8)) }), 'SHAPE_MISMATCH');
          await expectCode(
            session.run({ x: { dtype: 'float32', shape: [1, 2, 2, 2], data: new Float32Array(7) } }),
            'SHAPE_MISMATCH',
            /8 elements/,
          );
        });
      });

      it('accepts empty tensors [0,2,3,3]', async () => {
        await withSession(model(), async (session) => {
          const { y } = await session.run({ x: f32([0, 2, 3, 3], []) });
          expect(y!.shape).toEqual([0, 2, 3, 3]);
          expect(y!.data.length).toBe(0);
        });
      });
    });

    describe('abort', () => {
      it('rejects run() and createSession() with ABORTED when the signal is already aborted', async () => {
        const model = buildModel((g, m) => g.output(m.identity(g.input('x', 'float32', [1])), 'y', [1]));
        const controller = new AbortController();
        controller.abort(new Error('user cancelled'));
        await expectCode(runtime.createSession(model, { signal: controller.signal }), 'ABORTED');
        await withSession(model, async (session) => {
          await expectCode(session.run({ x: f32([1], [1]) }, { signal: controller.signal }), 'ABORTED');
          // An abort concerns one call: the session still runs.
          const { y } = await session.run({ x: f32([1], [3]) });
          expect([...y!.data]).toEqual([3]);
        });
      });
    });

    describe('dispose', () => {
      const model = () => buildModel((g, m) => g.output(m.identity(g.input('x', 'float32', [1])), 'y', [1]));

      it('is idempotent, and run() afterwards rejects with SESSION_DISPOSED', async () => {
        const session = await runtime.createSession(model());
        await Promise.all([session.dispose(), session.dispose()]);
        await session.dispose();
        await expectCode(session.run({ x: f32([1], [1]) }), 'SESSION_DISPOSED');
      });

      it('lets a run started before dispose() finish', async () => {
        const session = await runtime.createSession(model());
        const running = session.run({ x: f32([1], [42]) });
        await session.dispose();
        expect([...(await running).y!.data]).toEqual([42]);
      });

      it('runtime.dispose() is idempotent and disposes its sessions', async () => {
        const own = await makeRuntime();
        const session = await own.createSession(model());
        await Promise.all([own.dispose(), own.dispose()]);
        await expectCode(session.run({ x: f32([1], [1]) }), 'SESSION_DISPOSED');
        await expectCode(own.createSession(model()), 'SESSION_DISPOSED');
      });
    });

    describe('errors', () => {
      it('rejects bytes that are not an ONNX model with PROTOBUF_PARSE before the runtime sees them', async () => {
        const error = await rejection(runtime.createSession(Uint8Array.of(1, 2, 3, 4, 5)));
        expect(error).toMatchObject({ code: 'PROTOBUF_PARSE' });
      });

      it('rejects a well-formed model the runtime refuses with SESSION_FAILED, keeping the runtime error as cause', async () => {
        // Add with one input passes dcae's checks; onnxruntime's own validation refuses it.
        const model = buildModel((g, m) =>
          g.output(m.op('Add', [g.input('x', 'float32', [1])])[0]!, 'y', [1]),
        );
        const error = await rejection(runtime.createSession(model));
        expect(error).toMatchObject({ code: 'SESSION_FAILED' });
        expect(error.cause).toBeDefined();
      });

      it('rejects unknown and missing inputs with INVALID_ARGUMENT naming expected and given', async () => {
        const model = buildModel((g, m) =>
          g.output(m.add(g.input('a', 'float32', [1]), g.input('b', 'float32', [1])), 'y', [1]),
        );
        await withSession(model, async (session) => {
          const error = await rejection(session.run({ a: f32([1], [1]), c: f32([1], [1]) }));
          expect(error).toMatchObject({ code: 'INVALID_ARGUMENT' });
          expect(error.message).toMatch(/unknown \["c"\]/);
          expect(error.message).toMatch(/missing \["b"\]/);
          expect(error.message).toMatch(/\["a", "b"\].*\["a", "c"\]/);
        });
      });

      it('rejects a tensor whose data array does not match its dtype with INVALID_ARGUMENT', async () => {
        const model = buildModel((g, m) => g.output(m.identity(g.input('x', 'float32', [2])), 'y', [2]));
        await withSession(model, async (session) => {
          const x = { dtype: 'float32', shape: [2], data: new Float64Array(2) } as unknown as HostTensor;
          await expectCode(session.run({ x }), 'INVALID_ARGUMENT', /Float32Array/);
        });
      });
    });

    describe('external data', () => {
      const weights = Float32Array.of(1, 2, 3, 4);
      const bias = Float32Array.of(100, 200, 300, 400);
      /** y = x + w + b, with w at byte 8 of "weights.bin" (after 8 junk bytes) and b in "bias.bin". */
      const model = () =>
        buildModel((g, m) => {
          const w = g.initializer('w', external('weights.bin', 8, weights));
          const b = g.initializer('b', external('bias.bin', 0, bias));
          g.output(m.add(m.add(g.input('x', 'float32', [4]), w), b), 'y', [4]);
        });
      const weightsFile = concat(Uint8Array.of(9, 9, 9, 9, 9, 9, 9, 9), bytesOfArray(weights));
      const biasFile = bytesOfArray(bias);
      const expected = [111, 212, 313, 414];

      async function runWith(
        externalData: { location: string; data: string | Uint8Array }[],
      ): Promise<number[]> {
        const session = await runtime.createSession(model(), { externalData });
        try {
          const { y } = await session.run({ x: f32([4], [10, 10, 10, 10]) });
          return [...y!.data] as number[];
        } finally {
          await session.dispose();
        }
      }

      it('reads initializers from external data given as bytes (one at an offset)', async () => {
        expect(
          await runWith([
            { location: 'weights.bin', data: weightsFile },
            { location: 'bias.bin', data: biasFile.slice() },
          ]),
        ).toEqual(expected);
      });

      it.runIf(files !== undefined)(
        'reads initializers from external data files named like their locations',
        async () => {
          const data = [
            await files!.writeFile('weights.bin', weightsFile),
            await files!.writeFile('bias.bin', biasFile),
          ];
          expect(
            await runWith([
              { location: 'weights.bin', data: data[0]! },
              { location: 'bias.bin', data: data[1]! },
            ]),
          ).toEqual(expected);
        },
      );

      it.runIf(files !== undefined)(
        'reads initializers from external data files with other names, mixed with bytes',
        async () => {
          const data = await files!.writeFile('renamed-weights.data', weightsFile);
          expect(
            await runWith([
              { location: 'weights.bin', data },
              { location: 'bias.bin', data: biasFile },
            ]),
          ).toEqual(expected);
        },
      );

      it('fails with EXTERNAL_DATA_PATH when the external data is not given', async () => {
        await expectCode(runtime.createSession(model()), 'EXTERNAL_DATA_PATH');
      });
    });

    describe('numerics', () => {
      it('Conv 3×3 (pad 1, bias) → MatMul on [2,3,5,4] matches a naive float64 computation (|Δ| ≤ 1e-4)', async () => {
        const [n, c, h, w, m, k] = [2, 3, 5, 4, 4, 6];
        const weight = f32([m, c, 3, 3], seeded(m * c * 9, 1));
        const bias = f32([m], seeded(m, 2));
        const proj = f32([w, k], seeded(w * k, 3));
        const x = f32([n, c, h, w], seeded(n * c * h * w, 4));
        const model = buildModel((g, root) => {
          const input = g.input('x', 'float32', ['n', c, 'h', w]);
          const conv = root.conv(input, root.constant(weight), root.constant(bias), { pads: [1, 1, 1, 1] });
          g.output(root.matMul(conv, root.constant(proj)), 'y', ['n', m, 'h', k]);
        });
        const expected = matMulLast(conv2d(x, weight, bias), proj);
        await withSession(model, async (session) => {
          const { y } = await session.run({ x });
          expect(y!.shape).toEqual(expected.shape);
          const worst = Math.max(
            ...[...y!.data].map((v, i) => Math.abs((v as number) - expected.values[i]!)),
          );
          expect(worst).toBeLessThanOrEqual(1e-4);
        });
      });
    });
  });
}

// Graph helpers

function buildModel(build: (g: GraphBuilder, m: Module) => void): Uint8Array {
  const g = new GraphBuilder({ name: 'conformance' });
  build(g, g.root);
  return serializeModel(g.build());
}

function external(location: string, offset: number, values: Float32Array): InitializerData {
  return {
    kind: 'external',
    dtype: 'float32',
    shape: [values.length],
    location,
    offset,
    length: values.byteLength,
  };
}

// Tensors

function f32(shape: readonly number[], values: ArrayLike<number>): HostTensor<'float32'> {
  return { dtype: 'float32', shape, data: Float32Array.from(values) };
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

function count(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function formatDims(shape: readonly Dim[]): string {
  return `[${shape.join(',')}]`;
}

function bytesOf(tensor: HostTensor): number[] {
  return [...new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength)];
}

function bytesOfArray(values: Float32Array): Uint8Array {
  return new Uint8Array(values.buffer.slice(values.byteOffset, values.byteOffset + values.byteLength));
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

/** Deterministic values in [-1, 1) (mulberry32), already float32 so both sides see the same inputs. */
function seeded(n: number, seed: number): Float32Array {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) / 2 ** 32) * 2 - 1;
  });
}

// Naive float64 references (ONNX Conv with group 1, MatMul over the last axis)

interface Nd {
  shape: number[];
  values: number[];
}

function conv2d(x: HostTensor<'float32'>, weight: HostTensor<'float32'>, bias: HostTensor<'float32'>): Nd {
  const [n, c, h, w] = x.shape as [number, number, number, number];
  const m = weight.shape[0]!;
  const values: number[] = [];
  for (let b = 0; b < n; b++)
    for (let o = 0; o < m; o++)
      for (let i = 0; i < h; i++)
        for (let j = 0; j < w; j++) {
          let sum = bias.data[o]!;
          for (let ci = 0; ci < c; ci++)
            for (let di = 0; di < 3; di++)
              for (let dj = 0; dj < 3; dj++) {
                const [y, xx] = [i + di - 1, j + dj - 1];
                if (y < 0 || y >= h || xx < 0 || xx >= w) continue;
                sum +=
                  x.data[((b * c + ci) * h + y) * w + xx]! * weight.data[((o * c + ci) * 3 + di) * 3 + dj]!;
              }
          values.push(sum);
        }
  return { shape: [n, m, h, w], values };
}

function matMulLast(a: Nd, b: HostTensor<'float32'>): Nd {
  const [rows, inner] = [a.values.length / a.shape.at(-1)!, a.shape.at(-1)!];
  const cols = b.shape[1]!;
  const values: number[] = [];
  for (let r = 0; r < rows; r++)
    for (let col = 0; col < cols; col++) {
      let sum = 0;
      for (let i = 0; i < inner; i++) sum += a.values[r * inner + i]! * b.data[i * cols + col]!;
      values.push(sum);
    }
  return { shape: [...a.shape.slice(0, -1), cols], values };
}

// Errors

async function rejection(promise: Promise<unknown>): Promise<DcaeError> {
  try {
    await promise;
  } catch (error) {
    expect(DcaeError.is(error), `expected a DcaeError, got ${String(error)}`).toBe(true);
    return error as DcaeError;
  }
  return expect.fail('expected the promise to reject');
}

async function expectCode(
  promise: Promise<unknown>,
  code: DcaeError['code'],
  message?: RegExp,
): Promise<void> {
  const error = await rejection(promise);
  expect(error.code, error.message).toBe(code);
  if (message) expect(error.message).toMatch(message);
}
