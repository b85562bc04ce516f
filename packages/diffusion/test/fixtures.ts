import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { HostTensor, JsonValue, SafetensorsFile } from '@dcae/core';
import { openSafetensors, parseJsonConfig } from '@dcae/core';
import { fileSource } from '@dcae/core/node';
import type { RuntimeV1 } from '@dcae/core/runtime';
import type { AttentionKernel, DiffusionModel } from '../src/index.js';
import { parseDiffusionConfig } from '../src/index.js';
import { loadDiffusionModel } from '../src/node/index.js';

/** The repo's `fixtures/diffusion/<name>` (tests never read ../shared). */
export function fixturePath(name: string): string {
  return fileURLToPath(new URL(`../../../fixtures/diffusion/${name}`, import.meta.url));
}

export async function readJson(name: string): Promise<unknown> {
  return parseJsonConfig(await readFile(fixturePath(name)), { source: name });
}

/** Every tensor of a fixture file; F64 tables keep float64 (readTensor would round them). */
export async function readTensors(name: string): Promise<Map<string, HostTensor | Float64Array>> {
  const file = await openSafetensors(await fileSource(fixturePath(name)));
  try {
    const tensors = new Map<string, HostTensor | Float64Array>();
    for (const [key, info] of file.header.tensors) {
      tensors.set(key, info.dtype === 'F64' ? await readFloat64(file, key) : await file.readTensor(key));
    }
    return tensors;
  } finally {
    await file.close();
  }
}

async function readFloat64(file: SafetensorsFile, key: string): Promise<Float64Array> {
  const bytes = (await file.readBytes(key)).slice();
  return new Float64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8);
}

export function float32(tensors: Map<string, HostTensor | Float64Array>, key: string): HostTensor<'float32'> {
  const tensor = tensors.get(key);
  if (tensor === undefined || tensor instanceof Float64Array || tensor.dtype !== 'float32') {
    throw new Error(`fixture tensor ${key} missing or not float32`);
  }
  return tensor as HostTensor<'float32'>;
}

export function float64(tensors: Map<string, HostTensor | Float64Array>, key: string): Float64Array {
  const tensor = tensors.get(key);
  if (!(tensor instanceof Float64Array)) throw new Error(`fixture tensor ${key} missing or not float64`);
  return tensor;
}

export function int64(tensors: Map<string, HostTensor | Float64Array>, key: string): number[] {
  const tensor = tensors.get(key);
  if (tensor === undefined || tensor instanceof Float64Array || tensor.dtype !== 'int64') {
    throw new Error(`fixture tensor ${key} missing or not int64`);
  }
  return Array.from(tensor.data as BigInt64Array, Number);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]! - b[i]!));
  return max;
}

export function maxAbs(a: ArrayLike<number>): number {
  let max = 0;
  for (let i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i]!));
  return max;
}

/** Loads `tiny-dit` / `tiny-uvit` through the public loader; `override` edits config.json's fields. */
export async function loadFixtureModel(
  name: 'tiny-dit' | 'tiny-uvit',
  runtime: RuntimeV1,
  override: Record<string, unknown> = {},
  attention?: AttentionKernel,
): Promise<DiffusionModel> {
  const json = { ...((await readJson(`${name}/config.json`)) as Record<string, unknown>), ...override };
  const config = parseDiffusionConfig(json as JsonValue, `${name}/config.json`);
  return loadDiffusionModel(fixturePath(name), { runtime, config, ...(attention ? { attention } : {}) });
}
