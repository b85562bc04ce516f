import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { DcaeError, serializeSafetensors } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { Emit, grad } from '../src/autodiff/grad.js';
import { IrGraph } from '../src/ir/graph.js';
import { buildLoss } from '../src/losses/index.js';
import { perceptualLoss, perceptualWeightShapes } from '../src/losses/perceptual.js';
import { readPerceptualWeights } from '../src/node/perceptual-weights.js';
import { gradCheck } from '../src/reference/gradcheck.js';
import { runReference } from '../src/reference/interpreter.js';
import { fromHost } from '../src/reference/tensor.js';
import { imageBatch, randomTensor } from './helpers.js';

/**
 * The LPIPS(VGG16) perceptual term (docs/training.md, "Losses"): weights from a real safetensors
 * file written here with random values (none can be downloaded), the strict key/shape check, and
 * the gradient w.r.t. the reconstruction against float64 finite differences. The gradient checks use
 * the test-only channelDivisor (VGG16 widths / 16) to keep the float64 interpreter fast; the last
 * test builds the real widths.
 */

const runtime = createNodeRuntime({ threads: 1 });
const dir = mkdtempSync(join(tmpdir(), 'dcae-perceptual-'));
afterAll(async () => {
  await runtime.dispose();
  rmSync(dir, { recursive: true, force: true });
});

/** Random VGG-like weights: He-scaled convs, small biases, non-negative LPIPS heads (as trained ones are). */
function randomWeights(divisor: number, seed = 10): Map<string, HostTensor<'float32'>> {
  const out = new Map<string, HostTensor<'float32'>>();
  let s = seed;
  for (const [key, shape] of perceptualWeightShapes({ channelDivisor: divisor })) {
    const fan = shape.slice(1).reduce((a, b) => a * b, 1);
    let t: HostTensor<'float32'>;
    if (key.startsWith('lin')) {
      t = randomTensor(shape, s++, 1 / Math.sqrt(fan));
      for (let i = 0; i < t.data.length; i++) t.data[i] = Math.abs(t.data[i]!);
    } else if (key.endsWith('bias')) t = randomTensor(shape, s++, 0.05);
    else t = randomTensor(shape, s++, Math.sqrt(2 / fan));
    out.set(key, t);
  }
  return out;
}

function writeWeights(name: string, tensors: ReadonlyMap<string, HostTensor>): string {
  const path = join(dir, name);
  writeFileSync(path, serializeSafetensors(tensors));
  return path;
}

async function codeOf(f: () => unknown): Promise<string> {
  try {
    await f();
  } catch (err) {
    expect(err).toBeInstanceOf(DcaeError);
    return `${(err as DcaeError).code}: ${(err as DcaeError).message}`;
  }
  return 'no error';
}

describe('perceptual weights file', () => {
  it('reads a safetensors file with the VGG16 + LPIPS keys', async () => {
    const weights = randomWeights(16);
    const path = writeWeights('ok.safetensors', weights);
    const read = await readPerceptualWeights(path, { channelDivisor: 16 });
    expect([...read.keys()].sort()).toEqual([...weights.keys()].sort());
    expect(Array.from(read.get('features.28.weight')!.data)).toEqual(
      Array.from(weights.get('features.28.weight')!.data),
    );
  });

  it('names a missing file, a missing key, a wrong shape and an unexpected key', async () => {
    expect(await codeOf(() => readPerceptualWeights(join(dir, 'nope.safetensors')))).toMatch(
      /^PERCEPTUAL_WEIGHTS_MISSING: .*nope\.safetensors does not exist/,
    );
    const missing = randomWeights(16);
    missing.delete('lin3.model.1.weight');
    expect(
      await codeOf(() =>
        readPerceptualWeights(writeWeights('missing.safetensors', missing), { channelDivisor: 16 }),
      ),
    ).toMatch(/^WEIGHTS_MISMATCH: .*lin3\.model\.1\.weight is missing \(expected shape \[1, ?32, ?1, ?1\]\)/);
    const wrong = randomWeights(16);
    wrong.set('features.7.weight', randomTensor([8, 4, 3, 3], 1));
    expect(
      await codeOf(() =>
        readPerceptualWeights(writeWeights('wrong.safetensors', wrong), { channelDivisor: 16 }),
      ),
    ).toMatch(/features\.7\.weight has shape \[8, ?4, ?3, ?3\], expected \[8, ?8, ?3, ?3\]/);
    const extra = randomWeights(16);
    extra.set('classifier.0.weight', randomTensor([2, 2], 1));
    expect(
      await codeOf(() =>
        readPerceptualWeights(writeWeights('extra.safetensors', extra), { channelDivisor: 16 }),
      ),
    ).toMatch(/classifier\.0\.weight is not part of the VGG16\/LPIPS layout/);
    // The production layout is the real VGG16: a divisor-16 file does not pass it.
    expect(
      await codeOf(() => readPerceptualWeights(writeWeights('small.safetensors', randomWeights(16)))),
    ).toMatch(/features\.0\.weight has shape \[4, ?3, ?3, ?3\], expected \[64, ?3, ?3, ?3\]/);
  });

  it('the loss without weights is PERCEPTUAL_WEIGHTS_MISSING', async () => {
    const g = new IrGraph();
    const x = g.addInput('x', 'float32', [1, 3, 16, 16]);
    expect(await codeOf(() => buildLoss(new Emit(g), x, x, { perceptual: 1 }))).toMatch(
      /^PERCEPTUAL_WEIGHTS_MISSING/,
    );
  });
});

/** A graph with loss = LPIPS(recon, target), recon a parameter; [N, 3, H, W]. */
function lpipsGraph(
  weights: ReadonlyMap<string, HostTensor>,
  shape: [number, number, number, number],
  divisor: number,
) {
  const g = new IrGraph();
  const recon = g.addWeight('recon', imageBatch(shape, 1));
  const target = g.addInput('target', 'float32', shape);
  const loss = perceptualLoss(new Emit(g), recon, target, weights, { channelDivisor: divisor });
  const feeds = new Map<string, HostTensor>([['target', imageBatch(shape, 2)]]);
  return { g, recon, target, loss, feeds };
}

describe('LPIPS(VGG16) gradient', () => {
  it('matches float64 finite differences (every coordinate, along a random direction, and 8 coordinates)', async () => {
    const weights = await readPerceptualWeights(writeWeights('grad.safetensors', randomWeights(16)), {
      channelDivisor: 16,
    });
    // 20×18: the pools see odd sizes (10×9 → 5×4 → 2×2 → 1×1).
    for (const mode of ['direction', 'coords'] as const) {
      const { g, recon, loss, feeds } = lpipsGraph(weights, [2, 3, 20, 18], 16);
      const result = await gradCheck(runtime, g, loss, [recon], feeds, { mode, coords: 8, seed: 5 });
      expect(result.referenceLoss).toBeGreaterThan(0);
      expect(Math.abs(result.loss - result.referenceLoss)).toBeLessThan(
        1e-4 * Math.max(1, result.referenceLoss),
      );
      console.info(`LPIPS gradcheck (${mode}): worst relative error ${result.worst.toExponential(2)}`);
      expect(result.worst, mode).toBeLessThan(2e-3);
    }
  });

  it('is frozen: no backward node for the target branch or the network weights; ORT backward = float64 backward', async () => {
    const { g, recon, loss, feeds } = lpipsGraph(randomWeights(16), [1, 3, 16, 16], 16);
    const { grads, differentiated } = grad(g, loss, [recon]);
    // 13 VGG convs + 5 LPIPS heads on the reconstruction's side only (26 + 10 exist in the forward).
    expect(g.nodes.filter((n) => n.op === 'Conv').length).toBeGreaterThanOrEqual(36);
    expect(differentiated.filter((n) => n.op === 'Conv').length).toBe(18);
    expect(differentiated.filter((n) => n.op === 'MaxPool').length).toBe(4);
    const out = grads.get(recon)!;
    const model = g.toModel({ name: 'lpips_grad', outputs: [out], outputNames: ['grad'] });
    const session = await runtime.createSession(serializeModel(model));
    const ort = (await session.run({ target: feeds.get('target')! })).grad!.data as Float32Array;
    await session.dispose();
    const ref = runReference(g, new Map([['target', fromHost(feeds.get('target')!)]]), [out]).get(out)!.data;
    let scale = 1e-12;
    let worst = 0;
    for (let i = 0; i < ref.length; i++) {
      scale = Math.max(scale, Math.abs(ref[i]!));
      worst = Math.max(worst, Math.abs(ort[i]! - ref[i]!));
    }
    expect(worst / scale).toBeLessThan(1e-4);
  });

  it('builds the real VGG16 widths and agrees with the float64 forward', async () => {
    const weights = randomWeights(1, 40);
    const g = new IrGraph();
    const x = g.addInput('x', 'float32', [1, 3, 16, 16]);
    const y = g.addInput('y', 'float32', [1, 3, 16, 16]);
    const loss = perceptualLoss(new Emit(g), x, y, weights);
    const feeds = { x: imageBatch([1, 3, 16, 16], 3), y: imageBatch([1, 3, 16, 16], 4) };
    const session = await runtime.createSession(
      serializeModel(g.toModel({ name: 'lpips', outputs: [loss], outputNames: ['loss'] })),
    );
    const ort = (await session.run(feeds)).loss!.data as Float32Array;
    await session.dispose();
    const ref = runReference(
      g,
      new Map([
        ['x', fromHost(feeds.x)],
        ['y', fromHost(feeds.y)],
      ]),
      [loss],
    ).get(loss)!.data[0]!;
    expect(ref).toBeGreaterThan(0);
    expect(Math.abs(ort[0]! - ref)).toBeLessThan(1e-4 * Math.max(1, ref));
  });
});
