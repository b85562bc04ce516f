import { describe, expect, it } from 'vitest';
import {
  cropDraw,
  cropRegion,
  epochPermutation,
  heldOutSplit,
  learningRate,
  matchTrainableGlobs as matchTrainable,
  parseLossSpec,
  parseTrainConfigJson,
  PHASE_PRESETS,
  resampleRegion,
  resolveTrainConfig,
  SampleOrder,
} from '../src/index.js';
import { syntheticImage } from './loop-helpers.js';

describe('data plan', () => {
  it('permutes each epoch deterministically and differently', () => {
    const a = epochPermutation(50, 7, 0);
    expect([...a].sort((x, y) => x - y)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(epochPermutation(50, 7, 0)).toEqual(a);
    expect(epochPermutation(50, 7, 1)).not.toEqual(a);
    expect(epochPermutation(50, 8, 0)).not.toEqual(a);
    const order = new SampleOrder(50, 7);
    expect(order.item(53)).toBe(epochPermutation(50, 7, 1)[3]);
    expect(order.item(2, 1)).toBe(a[3]);
  });

  it('splits held-out images by seed, disjoint from training', () => {
    const s = heldOutSplit(20, 4, 3);
    expect(s.heldOut).toHaveLength(4);
    expect(s.train).toHaveLength(16);
    expect(new Set([...s.train, ...s.heldOut]).size).toBe(20);
    expect(heldOutSplit(20, 4, 3)).toEqual(s);
  });

  it('crops: native pixels are copied exactly, flips mirror, multi-scale stays inside the image', () => {
    const image = syntheticImage(80, 60, 1);
    const native = resampleRegion(image, { x: 5, y: 7, side: 32, size: 32, flip: false });
    for (const [ox, oy] of [
      [0, 0],
      [31, 31],
      [10, 20],
    ] as const) {
      for (let c = 0; c < 3; c++) {
        expect(native.data[(oy * 32 + ox) * 3 + c]).toBe(image.data[((oy + 7) * 80 + ox + 5) * 3 + c]);
      }
    }
    const flipped = resampleRegion(image, { x: 5, y: 7, side: 32, size: 32, flip: true });
    expect(flipped.data[(3 * 32 + 31) * 3]).toBe(native.data[3 * 32 * 3]);
    for (let p = 0; p < 200; p++) {
      const r = cropRegion(80, 60, cropDraw(1, p), { size: 32, augment: true, multiScale: true });
      expect(r.side).toBeGreaterThanOrEqual(32 - 1e-9);
      expect(r.side).toBeLessThanOrEqual(60 + 1e-9);
      expect(r.x).toBeGreaterThanOrEqual(0);
      expect(r.x + r.side).toBeLessThanOrEqual(80 + 1e-9);
      expect(r.y + r.side).toBeLessThanOrEqual(60 + 1e-9);
    }
    // A downscaled whole image keeps the mean colour (antialiased, no aliasing bias).
    const whole = resampleRegion(image, { x: 10, y: 0, side: 60, size: 15, flip: false });
    const mean = (d: Uint8Array) => d.reduce((a, b) => a + b, 0) / d.length;
    const src = resampleRegion(image, { x: 10, y: 0, side: 60, size: 60, flip: false });
    expect(Math.abs(mean(whole.data) - mean(src.data))).toBeLessThan(1);
  });
});

describe('schedule, globs, config', () => {
  it('warms up linearly, then decays by a cosine to the floor', () => {
    const o = { lr: 1e-3, warmupSteps: 10, totalSteps: 110, minLrRatio: 0.1 };
    expect(learningRate(0, o)).toBeCloseTo(1e-4);
    expect(learningRate(9, o)).toBeCloseTo(1e-3);
    expect(learningRate(60, o)).toBeCloseTo(0.55e-3);
    expect(learningRate(110, o)).toBeCloseTo(1e-4);
  });

  it('matches key globs and names the keys when one matches nothing', () => {
    const keys = [
      'decoder.conv_out.weight',
      'decoder.conv_out.bias',
      'decoder.norm_out.weight',
      'encoder.conv_in.conv.weight',
    ];
    expect(matchTrainable(keys, ['decoder.conv_out.*'])).toEqual(keys.slice(0, 2));
    expect(matchTrainable(keys, ['*'])).toEqual(keys);
    expect(() => matchTrainable(keys, ['decoder.conv_out.*', 'decoder.project_out.*'])).toThrow(
      expect.objectContaining({
        code: 'TRAINABLE_NO_MATCH',
        message: expect.stringContaining('decoder.conv_out.weight'),
      }),
    );
  });

  it('layers preset, JSON and flags; rejects unknown fields and bad values', () => {
    const json = parseTrainConfigJson(
      { steps: 5, optimizer: { kind: 'sgd' }, loss: { l1: 1, ssim: 0.2 } },
      'c.json',
    );
    const c = resolveTrainConfig(PHASE_PRESETS[3], json, { lr: 0.5 });
    expect(c).toMatchObject({ steps: 5, lr: 0.5, trainable: ['decoder.norm_out.*', 'decoder.conv_out.*'] });
    expect(c.optimizer).toMatchObject({ kind: 'sgd', betas: [0.9, 0.999] });
    expect(() => parseTrainConfigJson({ stpes: 5 }, 'c.json')).toThrow(/did you mean "steps"/);
    expect(() => resolveTrainConfig(PHASE_PRESETS[1], { batch: 0 })).toThrow(
      /"batch" must be a positive integer/,
    );
    // The discriminator of phase 3's gan term: JSON fields layered over the preset's defaults.
    expect(PHASE_PRESETS[3].loss).toEqual({ l1: 1, gan: 0.1 });
    const d = resolveTrainConfig(
      PHASE_PRESETS[3],
      parseTrainConfigJson({ discriminator: { channels: 8, startStep: 100 } }, 'd.json'),
      { discriminator: { layers: 2 } },
    );
    expect(d.discriminator).toEqual({ channels: 8, startStep: 100, layers: 2 });
    expect(() => parseTrainConfigJson({ discriminator: { chanels: 8 } }, 'd.json')).toThrow(/chanels/);
    expect(() => resolveTrainConfig(PHASE_PRESETS[3], { discriminator: { layers: 0 } })).toThrow(
      /"discriminator.layers" must be an integer in \[1, 8\]/,
    );
    expect(parseLossSpec('l1+gan:0.1')).toEqual({ l1: 1, gan: 0.1 });
    expect(parseLossSpec('l1+ssim:0.2')).toEqual({ l1: 1, ssim: 0.2 });
    expect(() => parseLossSpec('l1+lpips')).toThrow(/unknown term "lpips"/);
  });
});
