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

/** Every tensor with DCAE_TRAIN_FULL_GRADCHECK=1; otherwise every 6th (each block type keeps some tensors). */
const FULL = process.env.DCAE_TRAIN_FULL_GRADCHECK === '1';

async function checkModel(dir: string, size: [number, number], loss: LossWeights, bound: number, offset = 0) {
  const fx = loadFixture(dir);
  const fwd = buildDcAeForward(fx.config, fx.weights, { batch: 1, height: size[0], width: size[1] });
  const e = new Emit(fwd.g);
  const l = buildLoss(e, fwd.output, fwd.input, loss);
  const stats = new Set(fwd.statisticKeys);
  const keys = fwd.usedKeys.filter((k) => !stats.has(k)).filter((_, i) => FULL || i % 6 === offset);
  const sample = imageBatch([1, 3, size[0], size[1]], 7);
  const result = await gradCheck(runtime, fwd.g, l.total, keys, new Map([['sample', sample]]), {
    mode: 'direction',
  });
  const worst = [...result.tensors].sort((a, b) => b.worstRelative - a.worstRelative);
  console.log(
    `${dir} ${Object.keys(loss).join('+')} ${size.join('x')}: ${keys.length} tensors, worst ${worst[0]!.worstRelative.toExponential(2)} (${worst[0]!.name}); loss ORT ${result.loss} vs f64 ${result.referenceLoss}`,
  );
  if (FULL) for (const t of worst) console.log(`  ${t.worstRelative.toExponential(2)}  ${t.name}`);
  expect(Math.abs(result.loss - result.referenceLoss)).toBeLessThan(
    1e-4 * Math.max(1, Math.abs(result.referenceLoss)),
  );
  for (const t of result.tensors) expect(t.worstRelative, t.name).toBeLessThan(bound);
}

describe(
  'whole tiny DC-AE: ORT float32 gradients vs float64 finite differences',
  { timeout: FULL ? 1_800_000 : 120_000 },
  () => {
    // 64×32: stage 3 has 32 tokens > head dim 16, so LiteMLA takes its linear form there.
    it('tiny-in (BatchNorm, pixel (un)shuffle, LiteMLA linear + quadratic) with L1', () =>
      checkModel('fixtures/dcae/tiny-in-f32', [64, 32], { l1: 1 }, 1e-2, 0));
    it('tiny-in with MSE', () => checkModel('fixtures/dcae/tiny-in-f32', [32, 32], { mse: 1 }, 1e-2, 3));
    it('tiny-sana (stride-2 conv, interpolate, multiscale depthwise/grouped, LiteMLA) with SSIM', () =>
      checkModel('fixtures/dcae/tiny-sana-f32', [32, 32], { ssim: 1 }, 1e-2, 1));
    it('dcae 1.5 tiny (ResBlocks only, latent 32, no shortcuts) with L1 + SSIM', () =>
      checkModel('fixtures/dcae/dcae15-tiny-f32', [32, 32], { l1: 1, ssim: 0.5 }, 1e-2, 2));
  },
);
