import type { HostTensor } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { runReference } from '../src/reference/interpreter.js';
import { fromHost } from '../src/reference/tensor.js';
import type { RefTensor } from '../src/reference/tensor.js';
import { biasCorrections, buildTrainStep, createTrainStepRunner } from '../src/step/runner.js';
import type { TrainStepOptions } from '../src/step/types.js';
import { imageBatch, loadFixture } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

const tinyIn = loadFixture('fixtures/dcae/tiny-in-f32');
const tinySana = loadFixture('fixtures/dcae/tiny-sana-f32');

function options(fx: typeof tinyIn, over: Partial<TrainStepOptions>): TrainStepOptions {
  return {
    weights: fx.weights,
    config: fx.config,
    batch: 2,
    height: 32,
    width: 32,
    loss: { mse: 1 },
    trainable: ['*'],
    optimizer: { kind: 'sgd' },
    ...over,
  };
}

/** The whole step graph (forward, backward, optimizer) run in float64 by the reference interpreter. */
function referenceStep(
  opts: TrainStepOptions,
  batch: HostTensor,
  scalars: Record<string, number>,
): Map<string, RefTensor> {
  const built = buildTrainStep(opts);
  const feeds = new Map<string, RefTensor>([['sample', fromHost(batch)]]);
  for (const [k, v] of Object.entries(scalars))
    feeds.set(k, { shape: [], data: Float64Array.of(Math.fround(v)) });
  for (const name of built.stateInputs)
    feeds.set(name, { shape: [built.stateLength], data: new Float64Array(built.stateLength) });
  const names = [...built.outputs.keys()];
  const values = runReference(
    built.g,
    feeds,
    names.map((n) => built.outputs.get(n)!),
  );
  return new Map(names.map((n) => [n, values.get(built.outputs.get(n)!)!]));
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): { diff: number; scale: number } {
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, scale };
}

describe('createTrainStepRunner', () => {
  it("one SGD step equals the float64 interpreter's update w' = w − lr·∇L (tiny-in, MSE, every tensor)", async () => {
    const opts = options(tinyIn, {});
    const batch = imageBatch([2, 3, 32, 32], 11);
    const lr = 0.5;
    const runner = await createTrainStepRunner(runtime, opts);
    const result = await runner.step(batch, { lr });
    const ref = referenceStep(opts, batch, { lr });
    expect(Math.abs(result.loss - ref.get('loss')!.data[0]!)).toBeLessThan(1e-5);
    let worst = 0;
    let changed = 0;
    for (const key of runner.trainableKeys) {
      const ort = runner.weights().get(key)!.data as Float32Array;
      const { diff, scale } = maxDiff(ort, ref.get(`new.${key}`)!.data);
      worst = Math.max(worst, diff / Math.max(1, scale));
      if (maxDiff(ort, tinyIn.weights.get(key)!.data as Float32Array).diff > 0) changed++;
    }
    console.log(
      `SGD step: ${runner.trainableKeys.length} tensors, ${changed} changed, worst |Δ| vs float64 ${worst.toExponential(2)}`,
    );
    expect(worst).toBeLessThan(1e-4);
    expect(changed).toBeGreaterThan(runner.trainableKeys.length * 0.9);
    await runner.dispose();
  });

  it('one AdamW step (weight decay, clipping) equals the float64 interpreter (tiny-sana, L1 + SSIM)', async () => {
    const opts = options(tinySana, {
      batch: 1,
      loss: { l1: 1, ssim: 0.5 },
      optimizer: { kind: 'adamw', weightDecay: 0.1, clipGradNorm: 0.05 },
    });
    const batch = imageBatch([1, 3, 32, 32], 12);
    const lr = 1e-3;
    const runner = await createTrainStepRunner(runtime, opts);
    const result = await runner.step(batch, { lr });
    const ref = referenceStep(opts, batch, { lr, ...biasCorrections([0.9, 0.999], 1) });
    expect(Math.abs(result.gradNorm! - ref.get('grad_norm')!.data[0]!)).toBeLessThan(
      1e-4 * ref.get('grad_norm')!.data[0]!,
    );
    expect(result.gradNorm!).toBeGreaterThan(0.05); // clipping was active
    let worst = 0;
    for (const key of runner.trainableKeys) {
      const { diff } = maxDiff(runner.weights().get(key)!.data as Float32Array, ref.get(`new.${key}`)!.data);
      worst = Math.max(worst, diff);
    }
    // The first Adam step moves each weight by about lr·sign(g); float32 vs float64 agree far below that.
    expect(worst).toBeLessThan(lr * 1e-2);
    await runner.dispose();
  });

  it('frozen weights stay bit-identical and phase globs differentiate only the trainable path', async () => {
    const phase3 = ['decoder.norm_out.*', 'decoder.conv_out.*'];
    const runner = await createTrainStepRunner(
      runtime,
      options(tinyIn, { trainable: phase3, optimizer: { kind: 'adamw' } }),
    );
    expect(runner.trainableKeys).toEqual(
      [
        'decoder.norm_out.weight',
        'decoder.norm_out.bias',
        'decoder.conv_out.conv.weight',
        'decoder.conv_out.conv.bias',
      ].filter((k) => runner.trainableKeys.includes(k)),
    );
    const batch = imageBatch([2, 3, 32, 32], 13);
    for (let i = 0; i < 2; i++) await runner.step(batch, { lr: 1e-2 });
    const after = runner.weights();
    for (const key of runner.frozenKeys) expect(after.get(key), key).toBe(tinyIn.weights.get(key));
    for (const key of runner.trainableKeys) expect(after.get(key)).not.toBe(tinyIn.weights.get(key));
    expect(runner.stats.differentiatedNodes).toBeLessThan(20);
    await runner.dispose();

    const built = buildTrainStep(options(tinyIn, { trainable: ['encoder.conv_out.*', 'decoder.conv_in.*'] }));
    const names = built.differentiated.map((n) => n.name);
    expect(names.some((n) => n.startsWith('/encoder/conv_out'))).toBe(true);
    expect(
      names.filter((n) => n.startsWith('/encoder/down_blocks') || n.startsWith('/encoder/conv_in')),
    ).toEqual([]);
  });

  it('restoring the optimizer state continues the same trajectory', async () => {
    const opts = options(tinyIn, {
      trainable: ['decoder.*'],
      optimizer: { kind: 'adamw', weightDecay: 0.01 },
    });
    const batches = [14, 15, 16].map((s) => imageBatch([2, 3, 32, 32], s));
    const straight = await createTrainStepRunner(runtime, opts);
    for (const b of batches) await straight.step(b, { lr: 1e-3 });
    const first = await createTrainStepRunner(runtime, opts);
    for (const b of batches.slice(0, 2)) await first.step(b, { lr: 1e-3 });
    const saved = first.optimizerState();
    expect(saved.tensors.get('exp_avg_sq.decoder.conv_in.weight')!.shape).toEqual(
      tinyIn.weights.get('decoder.conv_in.weight')!.shape,
    );
    expect(saved.tensors.size).toBe(2 * first.trainableKeys.length);
    const resumed = await createTrainStepRunner(runtime, { ...opts, weights: first.weights() });
    resumed.restoreOptimizerState(first.optimizerState());
    expect(resumed.optimizerState().step).toBe(2);
    await resumed.step(batches[2]!, { lr: 1e-3 });
    for (const key of straight.trainableKeys)
      expect(resumed.weights().get(key)!.data, key).toEqual(straight.weights().get(key)!.data);
    expect(() => resumed.restoreOptimizerState({ step: 1, tensors: new Map() })).toThrow(
      /optimizer state does not match/,
    );
    const recon = await resumed.reconstruct(imageBatch([1, 3, 64, 32], 3));
    expect(recon.shape).toEqual([1, 3, 64, 32]);
    await Promise.all([straight.dispose(), first.dispose(), resumed.dispose()]);
  });

  it('bad inputs give typed errors', async () => {
    const code = async (p: Promise<unknown> | (() => unknown)): Promise<string> => {
      try {
        await (typeof p === 'function' ? p() : p);
      } catch (error) {
        expect(DcaeError.is(error)).toBe(true);
        return (error as DcaeError).code;
      }
      return 'none';
    };
    expect(await code(() => buildTrainStep(options(tinyIn, { loss: { perceptual: 1 } })))).toBe(
      'PERCEPTUAL_WEIGHTS_MISSING',
    );
    expect(await code(() => buildTrainStep(options(tinyIn, { trainable: ['decoder.nope.*'] })))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(await code(() => buildTrainStep(options(tinyIn, { height: 40 })))).toBe('INPUT_SIZE');
    expect(
      await code(() => buildTrainStep(options(tinyIn, { optimizer: { kind: 'adamw', betas: [1.2, 0.9] } }))),
    ).toBe('INVALID_ARGUMENT');
    const runner = await createTrainStepRunner(
      runtime,
      options(tinyIn, { trainable: ['decoder.conv_out.*'] }),
    );
    expect(await code(runner.step(imageBatch([1, 3, 32, 32], 1), { lr: 1 }))).toBe('SHAPE_MISMATCH');
    expect(await code(runner.step(imageBatch([2, 3, 32, 32], 1), { lr: Number.NaN }))).toBe(
      'INVALID_ARGUMENT',
    );
    await runner.dispose();
  });
});
