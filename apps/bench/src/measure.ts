import { performance } from 'node:perf_hooks';
import type { BenchCase, CompareOptions, Ratio, Series } from './scenario.js';

export type { CompareOptions };

/**
 * Measures cases side by side: `warmup` rounds, then `samples` rounds that each run every case
 * once, starting with a different case each round, so slow drift (thermal, other load, caches)
 * affects all cases alike and the ratios stay meaningful on a busy machine.
 */
export async function compareCases(cases: readonly BenchCase[], options: CompareOptions): Promise<Series[]> {
  const times = cases.map((): number[] => []);
  const gc = collectGarbage();
  for (let round = 0; round < options.warmup; round++) {
    for (const c of cases) await c.run();
  }
  for (let round = 0; round < options.samples; round++) {
    for (let k = 0; k < cases.length; k++) {
      const index = (round + k) % cases.length;
      gc?.();
      times[index]!.push(await timedRun(cases[index]!));
    }
    options.log?.(
      `round ${round + 1}/${options.samples}: ` +
        cases.map((c, i) => `${c.name} ${formatMs(times[i]!.at(-1)!)}`).join(', '),
    );
  }
  return cases.map((c, i) => summarize(c.name, times[i]!, c.work));
}

/** One run of `c`: its own time when it times itself, else the time around the call. */
async function timedRun(c: BenchCase): Promise<number> {
  const start = performance.now();
  const result = await c.run();
  const elapsed = performance.now() - start;
  if (!c.timesItself) return elapsed;
  if (typeof result !== 'number' || !(result >= 0))
    throw new Error(`case "${c.name}" times itself but its run gave ${String(result)}, not milliseconds`);
  return result;
}

/**
 * `gc()` when node runs with `--expose-gc`: collecting before each measured run keeps one case's
 * garbage (e.g. a 200 MB buffer) from being collected inside the next case's timing.
 */
export function collectGarbage(): (() => void) | undefined {
  const gc = (globalThis as { gc?: () => void }).gc;
  return typeof gc === 'function' ? gc : undefined;
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

export function summarize(name: string, samplesMs: readonly number[], work?: Series['work']): Series {
  if (samplesMs.length === 0) throw new Error(`series "${name}" has no samples`);
  const minMs = Math.min(...samplesMs);
  const medianMs = median(samplesMs);
  const maxMs = Math.max(...samplesMs);
  const series: Series = { name, samplesMs: [...samplesMs], minMs, medianMs, maxMs };
  if (!work) return series;
  return {
    ...series,
    work,
    throughput: {
      unit: `${work.unit}/s`,
      median: work.amount / (medianMs / 1000),
      best: work.amount / (minMs / 1000),
    },
  };
}

export function ratio(series: readonly Series[], of: string, to: string): Ratio {
  const find = (name: string): Series => {
    const s = series.find((x) => x.name === name);
    if (!s) throw new Error(`ratio ${of} / ${to}: no series named "${name}"`);
    return s;
  };
  return { of, to, value: find(of).medianMs / find(to).medianMs };
}

export function formatMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 1 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(3)} ms`;
}
