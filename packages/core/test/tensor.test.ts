import { describe, expect, it } from 'vitest';
import {
  DcaeError,
  checkHostTensor,
  float32ToBfloat16,
  float32ToFloat16,
  hostTensor,
  numel,
  sameShape,
  strides,
  toFloat32,
  zeros,
} from '../src/index.js';
import type { HostTensor } from '../src/index.js';

describe('shape helpers', () => {
  it('numel multiplies dims; a scalar [] has 1 element and a 0 dim gives 0', () => {
    expect(numel([2, 3, 4])).toBe(24);
    expect(numel([])).toBe(1);
    expect(numel([5, 0, 7])).toBe(0);
  });

  it('numel rejects negative, fractional and overflowing shapes with INVALID_ARGUMENT', () => {
    for (const shape of [[-1], [1.5], [Number.NaN], [2 ** 30, 2 ** 30, 2 ** 30]]) {
      expect(() => numel(shape)).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT' }));
    }
    expect(numel([2 ** 26, 2 ** 26])).toBe(2 ** 52);
  });

  it('strides are row-major: [2, 3, 4] → [12, 4, 1]', () => {
    expect(strides([2, 3, 4])).toEqual([12, 4, 1]);
    expect(strides([])).toEqual([]);
    expect(strides([5])).toEqual([1]);
  });

  it('sameShape compares rank and every dim', () => {
    expect(sameShape([1, 2], [1, 2])).toBe(true);
    expect(sameShape([1, 2], [2, 1])).toBe(false);
    expect(sameShape([1, 2], [1, 2, 1])).toBe(false);
    expect(sameShape([], [])).toBe(true);
  });
});

describe('host tensors', () => {
  it('hostTensor keeps the data, copies and freezes the shape', () => {
    const shape = [2, 2];
    const data = new Float32Array([1, 2, 3, 4]);
    const t = hostTensor('float32', shape, data);
    shape[0] = 9;
    expect(t.shape).toEqual([2, 2]);
    expect(Object.isFrozen(t.shape)).toBe(true);
    expect(t.data).toBe(data);
  });

  it('hostTensor rejects a length that differs from numel with SHAPE_MISMATCH', () => {
    expect(() => hostTensor('float32', [2, 3], new Float32Array(5))).toThrow(
      expect.objectContaining({ code: 'SHAPE_MISMATCH', message: expect.stringContaining('[2, 3]') }),
    );
  });

  it('hostTensor rejects data of the wrong array type and unknown dtypes', () => {
    const wrongArray = () => hostTensor('float16', [2], new Float32Array(2) as unknown as Uint16Array);
    expect(wrongArray).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('Uint16Array') }),
    );
    const fake = { dtype: 'float8', shape: [1], data: new Uint8Array(1) } as unknown as HostTensor;
    expect(() => checkHostTensor(fake)).toThrow(expect.objectContaining({ code: 'DTYPE_UNSUPPORTED' }));
  });

  it('zeros makes the array type of each dtype', () => {
    expect(zeros('float32', [2, 3]).data).toEqual(new Float32Array(6));
    expect(zeros('float16', [4]).data).toBeInstanceOf(Uint16Array);
    expect(zeros('bfloat16', [4]).data).toBeInstanceOf(Uint16Array);
    expect(zeros('int64', [3]).data).toEqual(new BigInt64Array(3));
    expect(zeros('int32', []).data).toEqual(new Int32Array(1));
    expect(zeros('uint8', [0, 3]).data).toHaveLength(0);
    expect(zeros('bool', [2]).data).toEqual(new Uint8Array(2));
  });

  it('toFloat32 returns a float32 tensor unchanged and widens every other dtype', () => {
    const f32 = hostTensor('float32', [2], new Float32Array([1.5, -2]));
    expect(toFloat32(f32)).toBe(f32);
    const values = [0.5, -3, 65504, 1 / 1024];
    const f16 = hostTensor('float16', [4], Uint16Array.from(values, float32ToFloat16));
    expect([...toFloat32(f16).data]).toEqual(values);
    const bf16 = hostTensor('bfloat16', [4], Uint16Array.from([0.5, -3, 65536, 1 / 1024], float32ToBfloat16));
    expect([...toFloat32(bf16).data]).toEqual([0.5, -3, 65536, 1 / 1024]);
    expect([...toFloat32(hostTensor('int64', [2], new BigInt64Array([-7n, 1n << 40n]))).data]).toEqual([
      -7,
      2 ** 40,
    ]);
    expect([...toFloat32(hostTensor('int32', [1], new Int32Array([-5]))).data]).toEqual([-5]);
    expect([...toFloat32(hostTensor('bool', [2], new Uint8Array([1, 0]))).data]).toEqual([1, 0]);
    expect(toFloat32(f16).shape).toEqual([4]);
  });

  it('errors are DcaeErrors', () => {
    try {
      numel([-1]);
    } catch (error) {
      expect(DcaeError.is(error, 'INVALID_ARGUMENT')).toBe(true);
    }
    expect.assertions(1);
  });
});
