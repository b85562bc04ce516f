import { readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parseSafetensors } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { PHASE_PRESETS, resolveTrainConfig } from '../src/index.js';
import type { TrainConfig } from '../src/index.js';
import { loadTrainableModel, openImageFolder, trainRun } from '../src/node/index.js';
import type { TrainRunOptions } from '../src/node/index.js';
import { FIXTURE, imageFolder, tempDir } from './loop-helpers.js';
import { createTrainStepRunner } from '../src/step/runner.js';

const runtime = createNodeRuntime({ threads: 1 });
const cleanup: string[] = [];
afterAll(async () => {
  await runtime.dispose();
  for (const dir of cleanup) await rm(dir, { recursive: true, force: true });
});

async function scratch(): Promise<string> {
  const dir = await tempDir();
  cleanup.push(dir);
  return dir;
}

function config(phase: 1 | 2 | 3, extra: Partial<TrainConfig> = {}): TrainConfig {
  return resolveTrainConfig(PHASE_PRESETS[phase], {
    steps: 4,
    batch: 2,
    size: 32,
    evalSize: 32,
    heldOut: 1,
    evalEvery: 0,
    saveEvery: 2,
    warmupSteps: 1,
    loss: { l1: 1 },
    ...extra,
  });
}

function run(options: Partial<TrainRunOptions> & Pick<TrainRunOptions, 'data' | 'out' | 'config'>) {
  return trainRun({ model: FIXTURE, runtime, workers: 1, ...options });
}

async function tensorsOf(dir: string) {
  return parseSafetensors(await readFile(join(dir, 'diffusion_pytorch_model.safetensors')));
}

let data: string;
const dataReady = imageFolder(6, { corrupt: 1 }).then((d) => {
  data = d;
  cleanup.push(d);
});

describe('image folder data', () => {
  it('decodes in workers and on the main thread to the same batches, and counts corrupt files', async () => {
    await dataReady;
    const warnings: string[] = [];
    const common = { batch: 3, size: 32, augment: true, multiScale: true, seed: 5, heldOut: 1, evalSize: 32 };
    const a = await openImageFolder(data, { ...common, workers: 2, onWarning: (m) => warnings.push(m) });
    const b = await openImageFolder(data, { ...common, workers: 0 });
    try {
      expect(a.count).toBe(6); // 7 image files, 1 held out; the .txt is ignored
      for (let step = 0; step < 4; step++) {
        const [x, y] = await Promise.all([a.batch(step), b.batch(step)]);
        expect(x.shape).toEqual([3, 3, 32, 32]);
        expect(Buffer.from(x.data.buffer).equals(Buffer.from(y.data.buffer))).toBe(true);
      }
      expect(a.skipped + b.skipped).toBeGreaterThanOrEqual(1);
      expect(warnings.join('\n')).toMatch(/skipping .*corrupt-0\.png \(1 skipped so far\)/);
      expect((await a.evalImages()).map((i) => [i.width, i.height])).toEqual([[32, 32]]);
    } finally {
      await a.close();
      await b.close();
    }
  });

  it('rejects a missing folder, an empty folder and too many held-out images', async () => {
    const empty = await scratch();
    const base = { batch: 1, size: 32, augment: false, multiScale: false, seed: 0, heldOut: 0, evalSize: 32 };
    await expect(openImageFolder(join(empty, 'nope'), base)).rejects.toMatchObject({
      code: 'FILE_NOT_FOUND',
    });
    await expect(openImageFolder(empty, base)).rejects.toMatchObject({
      code: 'DATA_EMPTY',
      message: expect.stringContaining('holds no images'),
    });
    await dataReady;
    await expect(openImageFolder(data, { ...base, heldOut: 7 })).rejects.toMatchObject({
      code: 'DATA_EMPTY',
    });
  });
});

describe('training runs', () => {
  it('runs the three phases with the real engine; frozen tensors and every non-trainable key stay bit-identical', async () => {
    await dataReady;
    const input = await tensorsOf(FIXTURE);
    for (const phase of [1, 2, 3] as const) {
      const out = await scratch();
      await expect(loadTrainableModel(FIXTURE, { init: 'random' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
