import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { createRng } from '@dcae/core';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { collectGarbage, summarize } from '../measure.js';
import type { Scenario } from '../scenario.js';

/** The repository's `fixtures/dcae/<name>` folder, found from this file upwards. */
export function fixtureFolder(name: string): string {
  for (let dir = dirname(fileURLToPath(import.meta.url)); ; dir = dirname(dir)) {
    const candidate = join(dir, 'fixtures', 'dcae', name);
    if (existsSync(candidate)) return candidate;
    if (dirname(dir) === dir) throw new Error(`fixtures/dcae/${name} not found above ${import.meta.url}`);
  }
}

/** Least-squares slope of `ys` over 0, 1, 2, … (units of y per step). */
export function slope(ys: readonly number[]): number {
  const n = ys.length;
  const meanX = (n - 1) / 2;
  const meanY = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  ys.forEach((y, x) => {
    num += (x - meanX) * (y - meanY);
    den += (x - meanX) ** 2;
  });
  return den === 0 ? 0 : num / den;
}

export const soak: Scenario = {
  name: 'soak',
  title: 'Soak: load → encode → decode → dispose cycles, RSS slope',
  description:
    'Repeats the whole life of a model (load the tiny sana fixture from its folder, build both graphs, create ' +
    'sessions, encode a 96×64 image, decode, dispose) on one shared onnxruntime-node runtime and samples the ' +
    'resident set size after every cycle. The slope (bytes per cycle, least squares over the second half of ' +
    'the cycles, after allocators have settled) shows whether anything leaks; a flat line is ~0. ' +
    'Not a gate: the figure is for people to read. Run with `node --expose-gc` for a steadier line.',
  async run(context) {
    const cycles = context.quick ? 10 : 1000;
    const runtime = await context.runtime();
    const folder = fixtureFolder('tiny-sana-f32');
    const sample = createRng(11).randn([1, 3, 96, 64]);
    const gc = collectGarbage();
    const rss: number[] = [];
    const times: number[] = [];
    for (let i = 0; i < cycles; i++) {
      const start = performance.now();
      const ae = await loadAutoencoder(folder, { runtime });
      try {
        const latent = await ae.encode(sample);
        await ae.decode(latent);
      } finally {
        await ae.dispose();
      }
      times.push(performance.now() - start);
      gc?.();
      rss.push(process.memoryUsage().rss);
      if ((i + 1) % Math.max(1, Math.floor(cycles / 10)) === 0)
        context.log(`cycle ${i + 1}/${cycles}: rss ${(rss.at(-1)! / 1e6).toFixed(1)} MB`);
    }
    const settled = rss.slice(Math.floor(rss.length / 2));
    return {
      params: {
        cycles,
        model: 'tiny-sana-f32',
        image: '96×64',
        gc: gc !== undefined,
        folder: resolve(folder),
      },
      series: [summarize('load + encode + decode + dispose', times)],
      figures: [
        { name: 'RSS slope (second half)', value: slope(settled), unit: 'bytes/cycle' },
        { name: 'RSS slope (all cycles)', value: slope(rss), unit: 'bytes/cycle' },
        { name: 'RSS after first cycle', value: rss[0]! / 1e6, unit: 'MB' },
        { name: 'RSS after last cycle', value: rss.at(-1)! / 1e6, unit: 'MB' },
      ],
    };
  },
};
