import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { Emit } from '../src/autodiff/grad.js';
import { buildDcAeForward } from '../src/ir/dcae.js';
import { buildLoss } from '../src/losses/index.js';
import { gradCheck } from '../src/reference/gradcheck.js';
import type { LossWeights } from '../src/step/types.js';
import { imageBatch, loadFixture } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

/** Every tensor with DCAE_TRAIN_FULL_GRADCHECK=1; otherwise every 4th (all block types stay covered). */
const FULL = process.env.DCAE_TRAIN_FULL_GRADCHECK === '1';

async function checkModel(dir: string, size: [number, number], loss: LossWeights, bound: number) {
  const fx = loadFixture(dir);
  const fwd = buildDcAeForward(fx.config, fx.weights, { batch: 1, height: size[0], width: size[1] });
  const e = new Emit(fwd.g);
  const l = buildLoss(e, fwd.output, fwd.input, loss);
  const stats = new Set(fwd.statisticKeys);
  const keys = fwd.usedKeys.filter((k) => !stats.has(k)).filter((_, i) => FULL || i % 4 === 0);
  const sample = imageBatch([1, 3, size[0], size[1]], 7);
  const result = await gradCheck(runtime, fwd.g, l.total, keys, new Map([['sample', sample]]), { mode: 'direction' });
  const worst = [...result.tensors].sort((a, b) => b.worstRelative - a.worstRelative);
  console.log(`${dir} ${Object.keys(loss).join('+')} ${size.join('x')}: ${keys.length} tensors, worst ${worst[0]!.worstRelative.toExponential(2)} (${worst[0]!.name}); loss ORT ${result.loss} vs f64 ${result.referenceLoss}`);
  if (FULL) for (const t of worst) console.log(`  ${t.worstRelative.toExponential(2)}  ${t.name}`);
  expect(Math.abs(result.loss - result.referenceLoss)).toBeLessThan(1e-4 * Math.max(1, Math.abs(result.referenceLoss)));
  for (const t of result.tensors) expect(t.worstRelative, t.name).toBeLessThan(bound);
}

describe('whole tiny DC-AE: ORT float32 gradients vs float64 finite differences', () => {
  it('tiny-in (BatchNorm, pixel (un)shuffle, LiteMLA quadratic) with L1', () => checkModel('fixtures/dcae/tiny-in-f32', [32, 32], { l1: 1 }, 1e-2));
  it('tiny-in with MSE', () => checkModel('fixtures/dcae/tiny-in-f32', [32, 32], { mse: 1 }, 1e-2));
  it('tiny-sana (stride-2 conv, interpolate, multiscale, LiteMLA linear) with SSIM', () => checkModel('fixtures/dcae/tiny-sana-f32', [64, 32], { ssim: 1 }, 1e-2));
});
