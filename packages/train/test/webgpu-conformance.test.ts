/**
 * Conformance of onnxruntime-node's WebGPU EP with its CPU EP (docs/training.md, "Conformance: CPU
 * vs WebGPU"): one AdamW training step of the tiny-in DC-AE fixture (loss, gradient, new weights)
 * and encode/decode of the same fixture. On a machine without a GPU the WebGPU EP runs on
 * SwiftShader, the software Vulkan driver Chromium ships (`findSoftwareVulkanDriver`); the file
 * skips, printing why, only when no WebGPU adapter exists at all. Slow on SwiftShader: the first
 * run of each graph compiles every kernel's pipeline on the CPU.
 */
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import { loadAutoencoder, memoryModelFiles } from '@dcae/autoencoder';
import type { Autoencoder } from '@dcae/autoencoder';
import { readFileSync } from 'node:fs';
import { parseSafetensors, toFloat32 } from '@dcae/core';
import type { NodeRuntime } from '@dcae/runtime-adapters/node';
import { createNodeRuntime, findSoftwareVulkanDriver, listNodeDevices } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { createTrainStepRunner } from '../src/step/runner.js';
import type { StepResult, TrainStepOptions, TrainStepRunner } from '../src/step/types.js';
import { imageBatch, loadFixture, repoRoot } from './helpers.js';

/** A first run on SwiftShader compiles hundreds of pipelines: minutes on a loaded 2-core machine. */
const SLOW = 900_000;

interface Adapter {
  readonly runtime?: NodeRuntime;
  /** What runs the WebGPU EP here, or why nothing does. */
  readonly description: string;
}

/**
 * A WebGPU adapter for onnxruntime-node: the GPU's when one is found, else SwiftShader's when a
 * browser installed it; proven by running a one-node graph. Undefined runtime only when Dawn finds
 * no adapter; any other failure throws (the file fails, it does not skip).
 */
async function webgpuAdapter(): Promise<Adapter> {
  let status = listNodeDevices().find((d) => d.device === 'webgpu')!;
  let driver = 'a GPU driver';
  const explicit = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (!status.auto && (explicit === undefined || explicit === '')) {
    const software = findSoftwareVulkanDriver();
    if (software !== undefined) {
      process.env.VK_DRIVER_FILES = software;
      driver = `SwiftShader, a software Vulkan driver (${software}); its speed is not a GPU's`;
      status = listNodeDevices().find((d) => d.device === 'webgpu')!;
    }
  } else if (!status.auto) driver = `the Vulkan driver(s) in ${explicit}`;
  if (!status.available)
    return {
      description: `${status.reason} No SwiftShader driver either (Debian: apt-get install chromium libvulkan1).`,
    };
  const runtime = createNodeRuntime({ devices: ['webgpu'], threads: 1 });
  try {
    const g = new GraphBuilder({ name: 'probe' });
    g.output(g.root.add(g.input('x', 'float32', [2]), g.root.constant(1)), 'y', [2]);
    const session = await runtime.createSession(serializeModel(g.build()));
    const { y } = await session.run({ x: { dtype: 'float32', shape: [2], data: Float32Array.of(1, 2) } });
    await session.dispose();
    expect([...y!.data]).toEqual([2, 3]);
  } catch (error) {
    await runtime.dispose();
    const message = (error as Error).message;
    if (/Failed to get a WebGPU adapter|No supported adapters/.test(message))
      return { description: `Dawn found no WebGPU adapter on ${driver}: ${message.split('\n')[0]}` };
    throw error;
  }
  return { runtime, description: driver };
}

const adapter = await webgpuAdapter();
if (adapter.runtime === undefined)
  console.warn(`webgpu-conformance: SKIPPED, no WebGPU adapter. ${adapter.description}`);
else console.log(`webgpu-conformance: the WebGPU EP runs on ${adapter.description}.`);

const cpu = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await cpu.dispose();
  await adapter.runtime?.dispose();
});

const FIXTURE = 'fixtures/dcae/tiny-in-f32';
const tinyIn = loadFixture(FIXTURE);

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
}
function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}
const floats = (t: HostTensor | undefined): Float32Array => t!.data as Float32Array;

describe.skipIf(adapter.runtime === undefined)('WebGPU EP vs CPU EP (onnxruntime-node)', () => {
  const gpu = adapter.runtime!;

  it(
    'one AdamW step: the same loss, gradient and new weights within the derived tolerances',
    async () => {
      const betas = [0.9, 0.999] as const;
      const eps = 1e-8;
      const lr = 1e-3;
      const options: TrainStepOptions = {
        weights: tinyIn.weights,
        config: tinyIn.config,
        batch: 1,
        height: 32,
        width: 32,
        loss: { mse: 1 },
        trainable: ['*'],
        optimizer: { kind: 'adamw', betas, eps, weightDecay: 0.01 },
      };
      const batch = imageBatch([1, 3, 32, 32], 5);
      const run = async (runtime: NodeRuntime): Promise<[TrainStepRunner, StepResult]> => {
        const runner = await createTrainStepRunner(runtime, options);
        return [runner, await runner.step(batch, { lr })];
      };
      const [onCpu, cpuStep] = await run(cpu);
      const [onGpu, gpuStep] = await run(gpu);
      try {
        const lossError = Math.abs(gpuStep.loss - cpuStep.loss) / Math.abs(cpuStep.loss);
        const normError = Math.abs(gpuStep.gradNorm! - cpuStep.gradNorm!) / cpuStep.gradNorm!;
        const parameters = onCpu.trainableKeys.reduce(
          (n, key) => n + tinyIn.weights.get(key)!.data.length,
          0,
        );
        // exp_avg after the first step is (1 − β₁)·∇L: the gradient, element by element.
        const grad = (r: TrainStepRunner, key: string): Float32Array =>
          floats(r.optimizerState().tensors.get(`exp_avg.${key}`)).map((m) => m / (1 - betas[0]));
        let gradScale = 0;
        for (const key of onCpu.trainableKeys) gradScale = Math.max(gradScale, maxAbs(grad(onCpu, key)));
        let worstGrad = 0;
        let worstGradKey = '';
        let worstWeight = 0;
        let worstWeightKey = '';
        for (const key of onCpu.trainableKeys) {
          const g = grad(onCpu, key);
          const gError = maxAbsDiff(grad(onGpu, key), g) / gradScale;
          if (gError > worstGrad) [worstGrad, worstGradKey] = [gError, key];
          // The first AdamW update is lr·g/(|g| + eps) (bias-corrected m̂ = g, √v̂ = |g|): where g
          // is near 0 it is ill-conditioned, so each element gets the bound its own g allows.
          const dg = GRAD_TOLERANCE * gradScale;
          const w = floats(onCpu.weights().get(key));
          const wGpu = floats(onGpu.weights().get(key));
          for (let i = 0; i < g.length; i++) {
            const a = Math.abs(g[i]!);
            const update = a > dg ? (dg * eps) / (a - dg + eps) ** 2 : (2 * dg) / (dg + eps);
            const bound = lr * Math.min(2, update) + WEIGHT_ULPS * Math.abs(w[i]!) + 1e-9;
            const ratio = Math.abs(wGpu[i]! - w[i]!) / bound;
            if (ratio > worstWeight) [worstWeight, worstWeightKey] = [ratio, key];
          }
        }
        console.log(
          `webgpu-conformance step: loss ${cpuStep.loss} (cpu) vs ${gpuStep.loss} (webgpu), relative error ${lossError.toExponential(2)}; ` +
            `grad norm relative error ${normError.toExponential(2)}; worst gradient error ${worstGrad.toExponential(2)} ` +
            `of max|∇L| = ${gradScale.toExponential(2)} (${worstGradKey}); worst weight error ${worstWeight.toFixed(3)} of its bound (${worstWeightKey})`,
        );
        expect(onGpu.trainableKeys).toEqual(onCpu.trainableKeys);
        expect(onCpu.trainableKeys.length).toBeGreaterThan(100);
        expect(lossError).toBeLessThanOrEqual(sumTolerance(3 * 32 * 32));
        expect(normError).toBeLessThanOrEqual(sumTolerance(parameters));
        expect(worstGrad).toBeLessThanOrEqual(GRAD_TOLERANCE);
        expect(worstWeight).toBeLessThanOrEqual(1);
        // The step did something on both devices.
        const moved = maxAbsDiff(
          floats(onGpu.weights().get('decoder.conv_out.conv.weight')),
          floats(tinyIn.weights.get('decoder.conv_out.conv.weight')),
        );
        expect(moved).toBeGreaterThan(lr / 2);
      } finally {
        await onCpu.dispose();
        await onGpu.dispose();
      }
    },
    SLOW,
  );

  it(
    'encode and decode match the CPU EP and the diffusers fixture (max_abs ≤ 1e-4·max(1, max|expected|))',
    async () => {
      const read = (file: string): Uint8Array =>
        new Uint8Array(readFileSync(`${repoRoot}${FIXTURE}/${file}`));
      const tensors = (file: string): Map<string, HostTensor<'float32'>> => {
        const st = parseSafetensors(read(file));
        return new Map([...st.header.tensors.keys()].map((k) => [k, toFloat32(st.tensor(k))]));
      };
      const input = tensors('input.safetensors');
      const expected = tensors('expected.safetensors');
      const files = memoryModelFiles('tiny-in-f32', {
        'config.json': read('config.json'),
        'diffusion_pytorch_model.safetensors': read('diffusion_pytorch_model.safetensors'),
      });
      const models: Autoencoder[] = [];
      try {
        for (const runtime of [cpu, gpu]) models.push(await loadAutoencoder(files, { runtime }));
        const [onCpu, onGpu] = models as [Autoencoder, Autoencoder];
        const report: string[] = [];
        for (const [name, run, reference] of [
          ['encode', (m: Autoencoder) => m.encode(input.get('sample')!), expected.get('latent')!],
          ['decode', (m: Autoencoder) => m.decode(input.get('latent')!), expected.get('decoded')!],
        ] as const) {
          const a = await run(onGpu);
          const b = await run(onCpu);
          expect(a.shape).toEqual(reference.shape);
          const tolerance = 1e-4 * Math.max(1, maxAbs(reference.data));
          const vsCpu = maxAbsDiff(a.data, b.data);
          const vsFixture = maxAbsDiff(a.data, reference.data);
          report.push(
            `${name}: |webgpu − cpu| ${vsCpu.toExponential(2)}, |webgpu − diffusers| ${vsFixture.toExponential(2)}, tolerance ${tolerance.toExponential(2)}`,
          );
          expect(vsCpu).toBeLessThanOrEqual(tolerance);
          expect(vsFixture).toBeLessThanOrEqual(tolerance);
        }
        console.log(`webgpu-conformance ${report.join('; ')}`);
      } finally {
        for (const m of models) await m.dispose();
      }
    },
    SLOW,
  );
});

/**
 * Relative error allowed between two float32 sums of `n` terms taken in different orders (the CPU
 * EP and a WebGPU shader reduce differently): rounding errors of 2⁻²⁴ each that add up like a random
 * walk, ~√n·2⁻²⁴, with a factor 4 of margin. The loss is a mean over the batch's elements; the
 * gradient norm a sum over every parameter.
 */
const sumTolerance = (n: number): number => 4 * Math.sqrt(n) * 2 ** -24;
/** Gradient error allowed, as a share of the largest gradient element: the repo's float32 rule (1e-4). */
const GRAD_TOLERANCE = 1e-4;
/** Rounding of the weight update itself, in units of |w|. */
const WEIGHT_ULPS = 4 * 2 ** -24;
