import type { HostTensor } from '@dcae/core';

// The fixtures' comparison rule, with no Node imports: the browser tests use it too.

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
