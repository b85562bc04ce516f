import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { Emit } from '../src/autodiff/grad.js';
import {
  discriminatorForward,
  discriminatorOutputSize,
  hingeDiscriminatorLoss,
  hingeGeneratorTerm,
  initDiscriminatorWeights,
  resolveDiscriminatorSpec,
} from '../src/gan/discriminator.js';
import type { DiscriminatorSpec } from '../src/gan/discriminator.js';
import { buildDiscriminatorStep } from '../src/gan/step.js';
import { buildDcAeForward } from '../src/ir/dcae.js';
import { IrGraph } from '../src/ir/graph.js';
import { buildLoss } from '../src/losses/index.js';
import { gradCheck } from '../src/reference/gradcheck.js';
import { runReference } from '../src/reference/interpreter.js';
import { fromHost } from '../src/reference/tensor.js';
import type { RefTensor } from '../src/reference/tensor.js';
import { biasCorrections, createTrainStepRunner } from '../src/step/runner.js';
import { imageBatch, loadFixture, randomTensor } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

const SPEC: DiscriminatorSpec = resolveDiscriminatorSpec({ channels: 4, layers: 2 });
/** The gradient-check bound (relative error, docs/training.md "Checking gradients"), as for the per-op rules. */
const BOUND = 2e-3;

/**
 * Discriminator weights with a He-like scale (PatchGAN's N(0, 0.02²) makes every logit ≈ 0, so
 * the hinge would never leave its linear part): logits spread over several units.
 */
function spreadWeights(spec: DiscriminatorSpec, seed: number, gain = 1.6): Map<string, HostTensor> {
  const w = initDiscriminatorWeights(spec, 3, seed);
  for (const [key, t] of w) {
    const data = t.data as Float32Array;
    if (key.endsWith('.weight')) {
      const fanIn = t.shape[1]! * 16;
      const scale = gain / Math.sqrt(fanIn) / 0.02;
      for (let i = 0; i < data.length; i++) data[i] = data[i]! * scale;
    } else {
      const r = randomTensor(t.shape, seed + key.length, 0.1).data;
      data.set(r);
    }
  }
  return w;
}

function report(label: string, result: Awaited<ReturnType<typeof gradCheck>>): void {
  const worst = [...result.tensors].sort((a, b) => b.worstRelative - a.worstRelative)[0]!;
  console.log(
    `${label}: ${result.tensors.length} tensors, worst relative error ${worst.worstRelative.toExponential(2)} (${worst.name})`,
  );
  expect(Math.abs(result.loss - result.referenceLoss)).toBeLessThan(
    1e-4 * Math.max(1, Math.abs(result.referenceLoss)),
  );
  for (const t of result.tensors) expect(t.worstRelative, t.name).toBeLessThan(BOUND);
}

describe('PatchGAN discriminator and hinge losses: ORT float32 gradients vs float64 finite differences', () => {
  it('layer stack and patch map follow the N-layer PatchGAN (4×4 s2 convs, then two s1 convs)', () => {
    const spec = resolveDiscriminatorSpec({ channels: 64, layers: 3 });
    const w = initDiscriminatorWeights(spec, 3, 0);
    expect([...w.entries()].map(([k, t]) => `${k} ${t.shape.join('x')}`)).toEqual([
      'layers.0.weight 64x3x4x4',
      'layers.0.bias 64',
      'layers.1.weight 128x64x4x4',
      'layers.1.bias 128',
      'layers.2.weight 256x128x4x4',
      'layers.2.bias 256',
      'layers.3.weight 512x256x4x4',
      'layers.3.bias 512',
      'layers.4.weight 1x512x4x4',
      'layers.4.bias 1',
    ]);
    // 256 → 128 → 64 → 32 → 31 → 30: the 30×30 patch map (70×70 receptive field) of PatchGAN.
    expect(discriminatorOutputSize(spec, 256)).toBe(30);
    const g = new IrGraph();
    const x = g.addInput('x', 'float32', [2, 3, 256, 256]);
    expect(g.shape(discriminatorForward(g, x, spec, w))).toEqual([2, 1, 30, 30]);
    // Seeded: the same seed gives the same weights, another seed others; std ≈ 0.02.
    const first = w.get('layers.1.weight')!.data as Float32Array;
    const again = initDiscriminatorWeights(SPEC, 3, 0).get('layers.1.weight')!.data as Float32Array;
    expect(initDiscriminatorWeights(SPEC, 3, 0).get('layers.1.weight')!.data).toEqual(again);
    expect(initDiscriminatorWeights(SPEC, 3, 1).get('layers.1.weight')!.data).not.toEqual(again);
    const std = Math.sqrt(first.reduce((a, v) => a + v * v, 0) / first.length);
    expect(std).toBeGreaterThan(0.019);
    expect(std).toBeLessThan(0.021);
    expect(() => resolveDiscriminatorSpec({ layers: 0 })).toThrow(/discriminator.layers/);
  });

  it('the discriminator graph: every weight, bias and the input image (LeakyRelu, strides 2 and 1)', async () => {
    const g = new IrGraph();
    const weights = spreadWeights(SPEC, 5);
    const x = g.addWeight('x', randomTensor([2, 3, 16, 16], 6));
    const logits = discriminatorForward(g, x, SPEC, weights);
    expect(g.shape(logits)).toEqual([2, 1, 2, 2]);
    const r = g.constant(randomTensor(g.shape(logits), 7));
    const loss = g.op1('ReduceSum', [g.op1('Mul', [logits, r]), g.constant([], 'int64')], {
      keepdims: { kind: 'int', value: 0 },
    });
    const result = await gradCheck(runtime, g, loss, [x, ...weights.keys()], new Map(), { coords: 4 });
    report('discriminator (4 coords per tensor)', result);
  });

  it("the discriminator's hinge loss, with patches on both sides of each hinge", async () => {
    const g = new IrGraph();
    const e = new Emit(g);
    const weights = spreadWeights(SPEC, 8, 3);
    const shape = [2, 3, 16, 16];
    const real = g.addInput('real', 'float32', shape);
    const fake = g.addInput('fake', 'float32', shape);
    const logits = discriminatorForward(
      g,
      g.op1('Concat', [real, fake], { axis: { kind: 'int', value: 0 } }),
      SPEC,
      weights,
    );
    const realLogits = e.slice(logits, [0], [2], [0]);
    const fakeLogits = e.slice(logits, [2], [4], [0]);
    const hinge = hingeDiscriminatorLoss(e, realLogits, fakeLogits);
    const feeds = new Map<string, HostTensor>([
      ['real', randomTensor(shape, 9, 0.6)],
      ['fake', randomTensor(shape, 10, 0.6)],
    ]);
    // Both branches of relu(1 − D(x)) and relu(1 + D(x̂)) occur, or the check would only see a mean.
    const ref = runReference(g, new Map([...feeds].map(([k, v]) => [k, fromHost(v)])), [
      realLogits,
      fakeLogits,
    ]);
    const r = Array.from(ref.get(realLogits)!.data);
    const f = Array.from(ref.get(fakeLogits)!.data);
    console.log(
      `hinge logits: real ${r.map((v) => v.toFixed(2)).join(' ')} | fake ${f.map((v) => v.toFixed(2)).join(' ')}`,
    );
    expect(r.some((v) => v > 1) && r.some((v) => v < 1)).toBe(true);
    expect(f.some((v) => v < -1) && f.some((v) => v > -1)).toBe(true);
    const result = await gradCheck(runtime, g, hinge.loss, [...weights.keys()], feeds, { mode: 'direction' });
    report('hinge D loss (direction per tensor)', result);
  });

  it('the generator side: l1 + 0.1·(−mean D(x̂)) through a frozen discriminator, on the tiny DC-AE decoder head', async () => {
    const fx = loadFixture('fixtures/dcae/tiny-in-f32');
    const fwd = buildDcAeForward(fx.config, fx.weights, { batch: 1, height: 32, width: 32 });
    const g = fwd.g;
    const e = new Emit(g);
    const rec = buildLoss(e, fwd.output, fwd.input, { l1: 1 });
    const spec = resolveDiscriminatorSpec({ channels: 4, layers: 2 });
    const logits = discriminatorForward(
      g,
      fwd.output,
      spec,
      spreadWeights(spec, 11),
      (k) => `discriminator.${k}`,
    );
    const term = hingeGeneratorTerm(e, logits);
    const total = e.add(rec.total, e.scale(term, 0.1));
    const head = fwd.usedKeys.filter((k) => /^decoder\.(norm_out|conv_out)\./.test(k));
    expect(head.length).toBeGreaterThanOrEqual(2);
    const sample = imageBatch([1, 3, 32, 32], 12);
    const result = await gradCheck(runtime, g, total, head, new Map([['sample', sample]]), {
      mode: 'direction',
    });
    report('generator: l1 + 0.1 gan, decoder head (direction per tensor)', result);
    // The G term alone (its gradient is not swamped by l1's): −mean D(x̂) w.r.t. the head.
    const fwd2 = buildDcAeForward(fx.config, fx.weights, { batch: 1, height: 32, width: 32 });
    const e2 = new Emit(fwd2.g);
    const only = hingeGeneratorTerm(
      e2,
      discriminatorForward(fwd2.g, fwd2.output, spec, spreadWeights(spec, 11)),
    );
    const alone = await gradCheck(runtime, fwd2.g, only, head, new Map([['sample', sample]]), {
      mode: 'direction',
    });
    report('generator hinge term alone, decoder head', alone);
  });
});

describe('the GAN step pair in the runner', () => {
  const fx = loadFixture('fixtures/dcae/tiny-in-f32');
  const head = ['decoder.norm_out.*', 'decoder.conv_out.*'];

  it('the discriminator step equals the float64 interpreter; AE frozen tensors stay bit-identical; startStep gates both sides', async () => {
    const spec = { channels: 4, layers: 2, startStep: 1 };
    const options = {
      weights: fx.weights,
      config: fx.config,
      batch: 2,
      height: 32,
      width: 32,
      loss: { l1: 1, gan: 0.1 },
      trainable: head,
      optimizer: { kind: 'adamw' as const, weightDecay: 0.01 },
      discriminator: { spec, seed: 4 },
    };
    const runner = await createTrainStepRunner(runtime, options);
    const d0 = runner.discriminatorState!()!;
    expect(d0.optimizer.step).toBe(0);
    const batch = imageBatch([2, 3, 32, 32], 13);
    // Step 1 (index 0 < startStep 1): no D step, gan weight 0 (the total is the l1 term alone).
    const s1 = await runner.step(batch, { lr: 1e-3 });
    expect(s1.discriminator).toBeUndefined();
    expect(s1.loss).toBe(s1.terms.l1);
    expect(s1.terms.gan).toEqual(expect.any(Number));
    expect(runner.discriminatorState!()!.weights.get('layers.0.weight')).toBe(
      d0.weights.get('layers.0.weight'),
    );
    // Step 2: both steps run. Recompute the D step in float64 from the same inputs.
    const before = runner.discriminatorState!()!;
    const recon = await runner.reconstruct(batch); // generator weights before step 2's update
    const s2 = await runner.step(batch, { lr: 1e-3 });
    expect(s2.discriminator).toMatchObject({ loss: expect.any(Number), real: expect.any(Number) });
    expect(s2.loss).toBeCloseTo(s2.terms.l1! + 0.1 * s2.terms.gan!, 5);
    expect(s2.terms.gan).toBeCloseTo(-s2.discriminator!.fake, 5);
    const after = runner.discriminatorState!()!;
    expect(after.optimizer.step).toBe(1);
    const built = buildDiscriminatorStep({
      spec: resolveDiscriminatorSpec(spec),
      weights: before.weights,
      batch: 2,
      channels: 3,
      height: 32,
      width: 32,
      optimizer: { kind: 'adamw', betas: [0.5, 0.9], weightDecay: 0.01 },
    });
    const feeds = new Map<string, RefTensor>([
      ['real', fromHost(batch)],
      ['fake', fromHost(recon)],
      ['lr', { shape: [], data: Float64Array.of(Math.fround(1e-3)) }],
    ]);
    const bc = biasCorrections([0.5, 0.9], 1);
    feeds.set('bias_correction1', { shape: [], data: Float64Array.of(Math.fround(bc.bias_correction1)) });
    feeds.set('bias_correction2', { shape: [], data: Float64Array.of(Math.fround(bc.bias_correction2)) });
    for (const name of built.stateInputs)
      feeds.set(name, { shape: [built.stateLength], data: new Float64Array(built.stateLength) });
    const names = [...built.outputs.keys()];
    const ref = runReference(
      built.g,
      feeds,
      names.map((n) => built.outputs.get(n)!),
    );
    const refOf = (n: string) => ref.get(built.outputs.get(n)!)!;
    expect(Math.abs(s2.discriminator!.loss - refOf('d_loss').data[0]!)).toBeLessThan(1e-4);
    // exp_avg after one step is (1 − β₁)·g: it compares the gradients; the new weights are compared
    // where the gradient is not float32 noise (the last bias has an exactly zero gradient while every
    // patch is inside both hinges, and Adam turns any noise there into an lr-sized step).
    const refM = refOf('new.exp_avg').data;
    const maxM = refM.reduce((a, v) => Math.max(a, Math.abs(v)), 0);
    let worstM = 0;
    let worstW = 0;
    let moved = 0;
    for (const key of built.keys) {
      const ort = after.weights.get(key)!.data as Float32Array;
      const r = refOf(`new.${key}`).data;
      const old = before.weights.get(key)!.data as Float32Array;
      const m = after.optimizer.tensors.get(`exp_avg.${key}`)!.data as Float32Array;
      const slot = built.stateLayout.find((sl) => sl.key === key)!;
      for (let i = 0; i < ort.length; i++) {
        const rm = refM[slot.offset + i]!;
        worstM = Math.max(worstM, Math.abs(m[i]! - rm));
        if (Math.abs(rm) > 1e-6) worstW = Math.max(worstW, Math.abs(ort[i]! - r[i]!));
        if (ort[i] !== old[i]) moved++;
      }
    }
    console.log(
      `D step vs float64: max |Δexp_avg| ${worstM.toExponential(2)} (max |exp_avg| ${maxM.toExponential(2)}), max |Δw'| ${worstW.toExponential(2)}, ${moved} values moved`,
    );
    expect(worstM).toBeLessThan(1e-4 * maxM);
    // The first Adam step moves each weight by about lr; float32 and float64 agree far below that.
    expect(worstW).toBeLessThan(1e-5);
    expect(moved).toBeGreaterThan(0);
    // Frozen autoencoder tensors are the caller's own objects.
    const w = runner.weights();
    for (const key of runner.frozenKeys) expect(w.get(key)).toBe(fx.weights.get(key));
    await runner.dispose();
  });

  it('restores the discriminator exactly and rejects a mismatched one', async () => {
    const base = {
      weights: fx.weights,
      config: fx.config,
      batch: 1,
      height: 32,
      width: 32,
      loss: { l1: 1, gan: 0.5 },
      trainable: head,
      optimizer: { kind: 'adamw' as const },
      discriminator: { spec: { channels: 4, layers: 2 }, seed: 1 },
    };
    const batches = [imageBatch([1, 3, 32, 32], 20), imageBatch([1, 3, 32, 32], 21)];
    const a = await createTrainStepRunner(runtime, base);
    await a.step(batches[0]!, { lr: 1e-3 });
    const mid = { opt: a.optimizerState(), d: a.discriminatorState!()!, w: a.weights() };
    const last = await a.step(batches[1]!, { lr: 1e-3 });
    const b = await createTrainStepRunner(runtime, {
      ...base,
      weights: mid.w,
      discriminator: { ...base.discriminator, seed: 99 },
    });
    b.restoreOptimizerState(mid.opt);
    b.restoreDiscriminatorState!(mid.d);
    const again = await b.step(batches[1]!, { lr: 1e-3 });
    expect(again).toEqual(last);
    for (const [key, t] of a.discriminatorState!()!.weights)
      expect(b.discriminatorState!()!.weights.get(key)!.data, key).toEqual(t.data);
    expect(() =>
      b.restoreDiscriminatorState!({ ...mid.d, spec: resolveDiscriminatorSpec({ channels: 8, layers: 2 }) }),
    ).toThrow(expect.objectContaining({ code: 'WEIGHTS_MISMATCH' }));
    await a.dispose();
    await b.dispose();
    await expect(
      createTrainStepRunner(runtime, { ...base, discriminator: { spec: { layers: 5 } } }),
    ).rejects.toMatchObject({ code: 'INPUT_SIZE' });
    await expect(createTrainStepRunner(runtime, { ...base, loss: { gan: 1 } })).rejects.toMatchObject({
      code: 'INVALID_ARGUMENT',
    });
  });
});
