/**
 * Shared helpers for the ONNX graph-builder tests: build a graph, run it on onnxruntime-node's CPU
 * provider, compare against float64 references computed in the test.
 */
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { Module, OnnxModel, Value } from '@dcae/core/onnx';
import * as ort from 'onnxruntime-node';
import { expect } from 'vitest';

export type OptimizationLevel = 'disabled' | 'all';

/** Graph optimisation levels every op test runs at: unfused and fused/constant-folded. */
export const LEVELS: readonly OptimizationLevel[] = ['disabled', 'all'];

/** An output read back from onnxruntime, as plain numbers (bigint and bool converted). */
export interface Output {
  readonly dtype: string;
  readonly shape: readonly number[];
  readonly values: number[];
}

export function f32(shape: readonly number[], values: ArrayLike<number>): HostTensor<'float32'> {
  expect(values.length).toBe(shape.reduce((a, b) => a * b, 1));
  return { dtype: 'float32', shape, data: Float32Array.from(values) };
}

export function i64(shape: readonly number[], values: readonly number[]): HostTensor<'int64'> {
  return { dtype: 'int64', shape, data: BigInt64Array.from(values, (v) => BigInt(v)) };
}

/** Deterministic uniform values in [lo, hi) (mulberry32). */
export function random(count: number, seed: number, lo = -1, hi = 1): number[] {
  let s = seed >>> 0;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    out.push(lo + (hi - lo) * u);
  }
  return out;
}

/** A float32 tensor of seeded random values (already rounded to float32, so references see the same inputs). */
export function randomF32(shape: readonly number[], seed: number, lo = -1, hi = 1): HostTensor<'float32'> {
  return f32(
    shape,
    random(
      shape.reduce((a, b) => a * b, 1),
      seed,
      lo,
      hi,
    ),
  );
}

export function toOrt(t: HostTensor): ort.Tensor {
  const dims = [...t.shape];
  if (t.dtype === 'bool') return new ort.Tensor('bool', t.data as Uint8Array, dims);
  return new ort.Tensor(t.dtype as 'float32', t.data as Float32Array, dims);
}

export function fromOrt(t: ort.Tensor): Output {
  const values = Array.from(t.data as ArrayLike<number | bigint | boolean>, (v) => Number(v));
  return { dtype: t.type, shape: [...t.dims], values };
}

export async function runModel(
  model: OnnxModel | Uint8Array | string,
  feeds: Readonly<Record<string, HostTensor>>,
  options: ort.InferenceSession.SessionOptions = {},
): Promise<Record<string, Output>> {
  const source = model instanceof Uint8Array || typeof model === 'string' ? model : serializeModel(model);
  const session =
    typeof source === 'string'
      ? await ort.InferenceSession.create(source, options)
      : await ort.InferenceSession.create(source, options);
  try {
    const ortFeeds: Record<string, ort.Tensor> = {};
    for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = toOrt(t);
    const results = await session.run(ortFeeds);
    const out: Record<string, Output> = {};
    for (const name of session.outputNames) out[name] = fromOrt(results[name]!);
    return out;
  } finally {
    await session.release();
  }
}

type Built = Value | readonly Value[];

/**
 * Builds a one-module graph whose inputs are the feeds (same names, dtypes and concrete shapes,
 * unless `shapes` gives symbolic ones), runs it and returns the outputs `y0`, `y1`, ….
 */
export async function runOps(
  feeds: Readonly<Record<string, HostTensor>>,
  build: (m: Module, inputs: Record<string, Value>, g: GraphBuilder) => Built,
  options: {
    level?: OptimizationLevel;
    shapes?: Readonly<Record<string, readonly (number | string)[]>>;
  } = {},
): Promise<Output[]> {
  const g = new GraphBuilder({ name: 'op_test' });
  const inputs: Record<string, Value> = {};
  for (const [name, t] of Object.entries(feeds)) {
    inputs[name] = g.input(name, t.dtype, options.shapes?.[name] ?? t.shape);
  }
  const built = build(g.root.child('t'), inputs, g);
  const values = Array.isArray(built) ? (built as readonly Value[]) : [built as Value];
  values.forEach((v, i) => g.output(v, `y${i}`, undefined));
  const out = await runModel(g.build(), feeds, { graphOptimizationLevel: options.level ?? 'all' });
  return values.map((_, i) => out[`y${i}`]!);
}

/** Asserts |actual − expected| ≤ atol + rtol·|expected| elementwise, and the shape. */
export function expectClose(
  actual: Output,
  expected: { shape: readonly number[]; values: ArrayLike<number> },
  { atol = 1e-5, rtol = 1e-5 }: { atol?: number; rtol?: number } = {},
): void {
  expect(actual.shape).toEqual([...expected.shape]);
  expect(actual.values.length).toBe(expected.values.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.values.length; i++) {
    const e = expected.values[i]!;
    const a = actual.values[i]!;
    const excess = Math.abs(a - e) - (atol + rtol * Math.abs(e));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess || Number.isNaN(excess))) {
      worst = i;
      worstExcess = excess;
    }
  }
  if (worst >= 0) {
    expect.fail(
      `element ${worst}: got ${actual.values[worst]}, expected ${expected.values[worst]} (atol ${atol}, rtol ${rtol})`,
    );
  }
}
