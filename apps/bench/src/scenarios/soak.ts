import { existsSync, readdirSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import type { DcaeErrorCode } from '@dcae/core';
import { createRng, DcaeError } from '@dcae/core';
import { readImageHeader } from '@dcae/autoencoder';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import type { NodeRuntime } from '@dcae/runtime-adapters/node';
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

/** Open file descriptors of this process (Linux /proc), or -1 where that is not available. */
function openFds(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return -1;
  }
}

interface FailingLoad {
  readonly name: string;
  /** The typed errors it may end with. */
  readonly codes: readonly DcaeErrorCode[];
  run(runtime: NodeRuntime): Promise<unknown>;
}

/**
 * Bad inputs mixed into the soak (docs/reliability.md T11): a checkpoint cut in half (A), garbage ONNX
 * bytes (B) and a PNG header claiming 100000² pixels (C), each expected to fail with its typed error.
 */
async function failingLoads(folder: string, scratch: string): Promise<FailingLoad[]> {
  const truncated = join(scratch, 'truncated-model');
  await mkdir(truncated);
  await copyFile(join(folder, 'config.json'), join(truncated, 'config.json'));
  const weights = await readFile(join(folder, 'diffusion_pytorch_model.safetensors'));
  await writeFile(
    join(truncated, 'diffusion_pytorch_model.safetensors'),
    weights.subarray(0, weights.length >> 1),
  );
  const png = new Uint8Array(33);
  png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
  const ihdr = new DataView(png.buffer);
  ihdr.setUint32(16, 100_000);
  ihdr.setUint32(20, 100_000);
  png.set([8, 2, 0, 0, 0], 24);
  return [
    {
      name: 'truncated safetensors',
      codes: ['TRUNCATED_DATA', 'SIZE_MISMATCH', 'HEADER_LENGTH_EXCEEDS_FILE'],
      run: (runtime) => loadAutoencoder(truncated, { runtime }),
    },
    {
      name: 'garbage ONNX',
      codes: ['PROTOBUF_PARSE'],
      run: (runtime) => runtime.createSession(Uint8Array.of(0x3a, 0xff, 0xff, 0xff, 0x0f, 1, 2)),
    },
    {
      name: 'PNG claiming 100000²',
      codes: ['DIMENSIONS_TOO_LARGE'],
      run: () => Promise.resolve(readImageHeader(png)),
    },
  ];
}

/** Runs `load`; returns normally only when it failed with one of its typed errors. */
async function expectFailure(load: FailingLoad, runtime: NodeRuntime): Promise<void> {
  try {
    await load.run(runtime);
  } catch (error) {
    if (DcaeError.is(error) && load.codes.includes(error.code)) return;
    throw new Error(`soak: ${load.name} failed with an unexpected error`, { cause: error });
  }
  throw new Error(`soak: ${load.name} was accepted; expected ${load.codes.join(' or ')}`);
}

export const soak: Scenario = {
  name: 'soak',
  title: 'Soak: load → encode → decode → dispose cycles, RSS slope',
  description:
    'Repeats the whole life of a model (load the tiny sana fixture from its folder, build both graphs, create ' +
    'sessions, encode a 96×64 image, decode, dispose) on one shared onnxruntime-node runtime and samples the ' +
    'resident set size after every cycle. Every 5th cycle also runs three loads that must fail with their ' +
    'typed errors (a truncated checkpoint, garbage ONNX bytes, a PNG header claiming 100000² px; docs/reliability.md ' +
    'T11); an unexpected outcome stops the scenario. The slope (bytes per cycle, least squares over the second ' +
    'half of the cycles, after allocators have settled) shows whether anything leaks; a flat line is ~0. Open ' +
    'file descriptors and files added next to the models are counted before and after. ' +
    'Not a gate: the figures are for people to read. Run with `node --expose-gc` for a steadier line.',
  async run(context) {
    const cycles = context.quick ? 10 : 1000;
    const runtime = await context.runtime();
    const folder = fixtureFolder('tiny-sana-f32');
    const scratch = await mkdtemp(join(tmpdir(), 'dcae-soak-'));
    try {
      const failing = await failingLoads(folder, scratch);
      const sample = createRng(11).randn([1, 3, 96, 64]);
      const gc = collectGarbage();
      // Loads must write nothing: no temp or lock files next to the good or the broken model.
      const filesNextToModels = () =>
        readdirSync(folder).length + readdirSync(join(scratch, 'truncated-model')).length;
      const filesBefore = filesNextToModels();
      const fds: number[] = [];
      const rss: number[] = [];
      const times: number[] = [];
      let failures = 0;
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
        if (i % 5 === 4) {
          for (const load of failing) await expectFailure(load, runtime);
          failures += failing.length;
        }
        gc?.();
        rss.push(process.memoryUsage().rss);
        fds.push(openFds());
        if ((i + 1) % Math.max(1, Math.floor(cycles / 10)) === 0)
          context.log(
            `cycle ${i + 1}/${cycles}: rss ${(rss.at(-1)! / 1e6).toFixed(1)} MB, ${fds.at(-1)} fds, ${failures} failing loads`,
          );
      }
      const settled = rss.slice(Math.floor(rss.length / 2));
      return {
        params: {
          cycles,
          model: 'tiny-sana-f32',
          image: '96×64',
          failingLoads: failures,
          gc: gc !== undefined,
          folder: resolve(folder),
        },
        series: [summarize('load + encode + decode + dispose', times)],
        figures: [
          { name: 'RSS slope (second half)', value: slope(settled), unit: 'bytes/cycle' },
          { name: 'RSS slope (all cycles)', value: slope(rss), unit: 'bytes/cycle' },
          { name: 'RSS after first cycle', value: rss[0]! / 1e6, unit: 'MB' },
          { name: 'RSS after last cycle', value: rss.at(-1)! / 1e6, unit: 'MB' },
          { name: 'failing loads (all with their typed error)', value: failures, unit: '' },
          { name: 'open fds after first cycle', value: fds[0]!, unit: '' },
          { name: 'open fds after last cycle', value: fds.at(-1)!, unit: '' },
          { name: 'files added next to the models', value: filesNextToModels() - filesBefore, unit: '' },
        ],
      };
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  },
};
