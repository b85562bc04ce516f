import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';

/** The repository's golden fixtures (fixtures/README.md). */
export const FIXTURES = resolve(import.meta.dirname, '../../../fixtures/dcae');
export const FIXTURE_NAMES = ['tiny-in-f32', 'tiny-sana-f32'] as const;

export function fixturePath(name: string, file = ''): string {
  return resolve(FIXTURES, name, file);
}

/** Every tensor of a fixture's safetensors file, as float32 (the fixtures' tensors are F32). */
export function readFixtureTensors(name: string, file: string): Map<string, HostTensor<'float32'>> {
  const st = parseSafetensors(readFileSync(fixturePath(name, file)), { name: file });
  const out = new Map<string, HostTensor<'float32'>>();
  for (const key of st.header.tensors.keys()) out.set(key, st.tensor(key) as HostTensor<'float32'>);
  return out;
}

export function fixtureTensor(name: string, file: string, key: string): HostTensor<'float32'> {
  const t = readFixtureTensors(name, file).get(key);
  if (t === undefined) throw new Error(`${name}/${file} has no ${key}`);
  return t;
}

export function maxAbs(t: HostTensor<'float32'>): number {
  let m = 0;
  for (const v of t.data) m = Math.max(m, Math.abs(v));
  return m;
}

export function maxAbsDiff(a: HostTensor<'float32'>, b: HostTensor<'float32'>): number {
  if (a.data.length !== b.data.length) return Infinity;
  let m = 0;
  for (let i = 0; i < a.data.length; i++) m = Math.max(m, Math.abs(a.data[i]! - b.data[i]!));
  return m;
}

/** fixtures/README.md: max_abs(produced − expected) ≤ 1e-4 · max(1, max|expected|). */
export function fixtureTolerance(expected: HostTensor<'float32'>): number {
  return 1e-4 * Math.max(1, maxAbs(expected));
}
