import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';

export { fixtureTolerance, maxAbs, maxAbsDiff } from './tolerance.js';

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
