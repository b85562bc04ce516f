import { readFileSync } from 'node:fs';
import { parseSafetensors } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, expect, it } from 'vitest';
import { createTrainStepRunner } from '../src/step/runner.js';
import { loadFixture, repoRoot } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

// fixtures/dcae/tiny-in-f32/torch-grad.safetensors comes from torch_grad.py beside it (PyTorch autograd
// on a forward checked against the diffusers golden output); it is not regenerated in CI.
it("one SGD step gives w' = w − lr·∇L with PyTorch's gradient (tiny-in, MSE, every tensor)", async () => {
  const fx = loadFixture('fixtures/dcae/tiny-in-f32');
  const torch = parseSafetensors(
    new Uint8Array(readFileSync(`${repoRoot}fixtures/dcae/tiny-in-f32/torch-grad.safetensors`)),
  );
  const sample = torch.tensor('sample');
  const [b, , h, w] = sample.shape as [number, number, number, number];
  const runner = await createTrainStepRunner(runtime, {
    weights: fx.weights,
    config: fx.config,
    batch: b,
    height: h,
    width: w,
    loss: { mse: 1 },
    trainable: ['*'],
    optimizer: { kind: 'sgd' },
  });
  // A large step keeps float32 rounding of w′ far below the gradient (the implied gradient is (w − w′)/lr).
  const lr = 64;
  const result = await runner.step(sample, { lr });
  const torchLoss = (torch.tensor('loss').data as Float32Array)[0]!;
  expect(Math.abs(result.loss - torchLoss)).toBeLessThan(1e-5 * Math.max(1, torchLoss));
  const torchKeys = [...torch.header.tensors.keys()]
    .filter((k) => k.startsWith('grad.'))
    .map((k) => k.slice(5));
  expect([...runner.trainableKeys].sort()).toEqual(torchKeys.sort());
  let worst = 0;
  let worstKey = '';
  let globalScale = 0;
  for (const key of runner.trainableKeys)
    for (const v of torch.tensor(`grad.${key}`).data as Float32Array)
      globalScale = Math.max(globalScale, Math.abs(v));
  for (const key of runner.trainableKeys) {
    const g = torch.tensor(`grad.${key}`).data as Float32Array;
    const before = fx.weights.get(key)!.data as Float32Array;
    const after = runner.weights().get(key)!.data as Float32Array;
    let scale = 0;
    for (const v of g) scale = Math.max(scale, Math.abs(v));
    for (let i = 0; i < g.length; i++) {
      // Compare the implied gradients (w − w′)/lr; relative to the tensor's largest torch gradient.
      const implied = (before[i]! - after[i]!) / lr;
      // Floor: 1e-4 of the largest gradient of the model (tensors whose gradients are ~0 compare
      // float32 rounding noise of two implementations).
      const err = Math.abs(implied - g[i]!) / Math.max(scale, 1e-4 * globalScale);
      if (err > worst) [worst, worstKey] = [err, key];
    }
  }
  console.log(
    `vs PyTorch: ${runner.trainableKeys.length} tensors, worst relative ${worst.toExponential(2)} (${worstKey}), largest gradient ${globalScale.toExponential(2)}`,
  );
  expect(worst).toBeLessThan(1e-3);
  await runner.dispose();
});
