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
    steps: 2,
    batch: 1,
    size: 32,
    evalSize: 32,
    heldOut: 1,
    evalEvery: 0,
    saveEvery: 1,
    warmupSteps: 1,
    // Phase 3 keeps its preset loss (l1 + 0.1 gan) with a tiny discriminator (4 channels, 2 layers).
    ...(phase === 3 ? { discriminator: { channels: 4, layers: 2 } } : { loss: { l1: 1 } }),
    ...extra,
  });
}

const D_FILES = ['discriminator.safetensors', 'discriminator_optimizer.safetensors'];

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

describe('training runs (the real step engine)', () => {
  it('runs the three phases a few steps each; frozen tensors and every non-trainable key stay bit-identical', async () => {
    await dataReady;
    const input = await tensorsOf(FIXTURE);
    for (const phase of [1, 2, 3] as const) {
      const out = await scratch();
      const result = await run({ data, out, config: config(phase) });
      expect(result.step).toBe(2);
      const written = await tensorsOf(join(out, 'final'));
      expect([...written.header.tensors.keys()].sort()).toEqual([...input.header.tensors.keys()].sort());
      const trainable = new Set(result.trainableKeys);
      if (phase === 2)
        expect([...trainable].sort()).toEqual([
          'decoder.conv_in.bias',
          'decoder.conv_in.weight',
          'encoder.conv_out.bias',
          'encoder.conv_out.weight',
        ]);
      if (phase === 3)
        expect([...trainable].every((k) => /^decoder\.(norm_out|conv_out)\./.test(k))).toBe(true);
      let changed = 0;
      for (const [key, info] of input.header.tensors) {
        const a = Buffer.from(input.tensorBytes(key));
        const b = Buffer.from(written.tensorBytes(key));
        expect(written.header.tensors.get(key)!.dtype).toBe(info.dtype);
        if (trainable.has(key)) changed += a.equals(b) ? 0 : 1;
        else expect(a.equals(b), `${key} (phase ${phase})`).toBe(true);
      }
      expect(changed).toBe(trainable.size);
      expect(await readFile(join(out, 'final', 'config.json'), 'utf8')).toBe(
        await readFile(join(FIXTURE, 'config.json'), 'utf8'),
      );
      const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { step: number });
      expect(lines.map((l) => l.step)).toEqual([1, 2]);
      expect(lines[0]).toMatchObject({
        step: 1,
        loss: expect.any(Number),
        lr: expect.any(Number),
        ms: expect.any(Number),
      });
      expect(lines[1]).toMatchObject({ psnr: expect.any(Number), ssim: expect.any(Number) });
      expect(await readdir(out)).toEqual(expect.arrayContaining(['checkpoint-1', 'final', 'preview-2.png']));
      if (phase === 3) {
        // The GAN term ran: the G term and the discriminator step are in the metrics, and the
        // discriminator is saved beside each checkpoint (the autoencoder files keep their format).
        expect(config(3).loss).toEqual({ l1: 1, gan: 0.1 });
        for (const line of lines)
          expect(line).toMatchObject({
            loss_l1: expect.any(Number),
            loss_gan: expect.any(Number),
            d_loss: expect.any(Number),
            d_real: expect.any(Number),
            d_fake: expect.any(Number),
          });
        for (const dir of ['checkpoint-1', 'final']) {
          expect(await readdir(join(out, dir))).toEqual(expect.arrayContaining(D_FILES));
          const d = parseSafetensors(await readFile(join(out, dir, D_FILES[0]!)));
          expect([...d.header.tensors.keys()].sort()).toEqual(
            [0, 1, 2, 3].flatMap((i) => [`layers.${i}.bias`, `layers.${i}.weight`]),
          );
        }
        const dOpt = parseSafetensors(await readFile(join(out, 'final', D_FILES[1]!)));
        expect(dOpt.header.metadata.get('step')).toBe('2');
      } else {
        for (const line of lines) expect(line).not.toHaveProperty('d_loss');
        expect(await readdir(join(out, 'final'))).not.toContain(D_FILES[0]);
      }
    }
  });

  it('a resumed run equals an uninterrupted one after Ctrl-C (weights, optimizer state, discriminator, losses)', async () => {
    await dataReady;
    // Phase 3 with its GAN term, which starts at step index 1 (so the resumed half crosses no gate
    // but the first half does).
    const c = config(3, {
      steps: 4,
      saveEvery: 2,
      loss: { l1: 1, mse: 1, gan: 0.1 },
      optimizer: { kind: 'adamw', weightDecay: 0.01 },
      discriminator: { channels: 4, layers: 2, startStep: 1 },
    });
    const whole = await scratch();
    await run({ data, out: whole, config: c });
    const split = await scratch();
    // Ctrl-C after step 2 (the loop saves checkpoint-2), then resume to 4.
    const controller = new AbortController();
    await run({
      data,
      out: split,
      config: c,
      signal: controller.signal,
      onStep: (r) => {
        if (r.step === 2) controller.abort();
      },
    }).then((r) => expect(r).toMatchObject({ interrupted: true, step: 2 }));
    const resumed = await run({ data, out: split, config: c, resume: true });
    expect(resumed).toMatchObject({ startStep: 2, step: 4, interrupted: false });
    const a = await tensorsOf(join(whole, 'final'));
    const b = await tensorsOf(join(split, 'final'));
    for (const key of a.header.tensors.keys()) {
      expect(Buffer.from(b.tensorBytes(key)).equals(Buffer.from(a.tensorBytes(key))), key).toBe(true);
    }
    for (const file of ['optimizer.safetensors', ...D_FILES]) {
      const fileA = await readFile(join(whole, 'final', file));
      const fileB = await readFile(join(split, 'final', file));
      expect(fileB.equals(fileA), file).toBe(true);
    }
    const losses = async (dir: string) =>
      (await readFile(join(dir, 'metrics.jsonl'), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => {
          const { loss, loss_gan, d_loss, d_real, d_fake } = JSON.parse(l) as Record<string, number>;
          return { loss, loss_gan, d_loss, d_real, d_fake };
        });
    const expected = await losses(whole);
    expect(expected[0]!.d_loss).toBeUndefined(); // step 1: before startStep
    expect(expected[1]!.d_loss).toEqual(expect.any(Number));
    expect(await losses(split)).toEqual(expected);
  });

  it('refuses a --trainable glob that matches nothing and an existing run without --resume', async () => {
    await dataReady;
    const out = await scratch();
    await expect(
      run({ data, out, config: config(1, { trainable: ['decoder.project_out.*'] }) }),
    ).rejects.toMatchObject({
      code: 'TRAINABLE_NO_MATCH',
    });
    await writeFile(join(out, 'metrics.jsonl'), '');
    await expect(run({ data, out, config: config(1) })).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
  });

  it('builds a fresh architecture from config.json with --init random: every key, seeded, residual branches near zero', async () => {
    await dataReady;
    const out = await scratch();
    const cfg = join(out, 'arch.json');
    await writeFile(cfg, await readFile(join(FIXTURE, 'config.json')));
    const model = await loadTrainableModel(cfg, { init: 'random', seed: 3, residualInitScale: 1e-3 });
    const input = await tensorsOf(FIXTURE);
    expect([...model.original.keys()].sort()).toEqual([...input.header.tensors.keys()].sort());
    expect([...(model.original.get('decoder.up_blocks.1.1.norm.weight')!.data as Float32Array)]).toEqual(
      new Array(16).fill(Math.fround(1e-3)),
    );
    const again = await loadTrainableModel(cfg, { init: 'random', seed: 3 });
    expect(again.original.get('encoder.conv_in.conv.weight')!.data).toEqual(
      model.original.get('encoder.conv_in.conv.weight')!.data,
    );
    await expect(loadTrainableModel(FIXTURE, { init: 'random' })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
