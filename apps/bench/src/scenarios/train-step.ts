import type { HostTensor } from '@dcae/core';
import { createRng } from '@dcae/core';
import type { DcAeConfig } from '@dcae/autoencoder';
import { countMacs, DC_AE_PRESETS, dcAeCheckpointLayout } from '@dcae/autoencoder';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { createNodeRuntime, findSoftwareVulkanDriver, listNodeDevices } from '@dcae/runtime-adapters/node';
import { createTrainStepRunner } from '@dcae/train';
import type { TrainStepOptions, TrainStepRunnerWithStats } from '@dcae/train';
import { compareCases } from '../measure.js';
import type { BenchCase, Figure, Scenario, Series, Skipped } from '../scenario.js';
import { measurePeakGflops } from './matmul-peak.js';

/**
 * One DC-AE training step (forward, loss, backward, AdamW) as emitted by @dcae/train, against the
 * forward pass alone and against the measured conv/matmul peak of the same runtime.
 */

/** The sana f32c32 preset at 1/`shrink` of its widths (real depths and block types). */
function smallSana(shrink: number): DcAeConfig {
  const base = DC_AE_PRESETS['dc-ae-f32c32-sana-1.1'];
  const widths = (w: readonly number[]): number[] => w.map((c) => Math.max(8, c / shrink));
  return {
    ...base,
    latentChannels: 32,
    attentionHeadDim: Math.max(8, base.attentionHeadDim / shrink),
    encoder: { ...base.encoder, blockOutChannels: widths(base.encoder.blockOutChannels) },
    decoder: { ...base.decoder, blockOutChannels: widths(base.decoder.blockOutChannels) },
  };
}

/** Random weights in the fixtures' ranges (±1/√fan-in, norm scales ~1), float32, diffusers keys. */
function randomWeights(config: DcAeConfig, seed: number): Map<string, HostTensor> {
  const rng = createRng(seed);
  const params = dcAeCheckpointLayout(config).params;
  const weights = new Map<string, HostTensor>();
  for (const p of params) {
    if (p.role === 'counter') continue;
    const n = p.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    if (p.shape.length >= 2) {
      const bound = 1 / Math.sqrt(n / p.shape[0]!);
      rng.fillUniform(data, -bound, bound);
    } else if (p.key.endsWith('running_var') || p.key.endsWith('.weight')) rng.fillUniform(data, 0.5, 1.5);
    else rng.fillUniform(data, -0.1, 0.1);
    weights.set(p.key, { dtype: 'float32', shape: p.shape, data });
  }
  return weights;
}

function imageBatch(shape: readonly number[], seed: number): HostTensor<'float32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: createRng(seed).fillUniform(new Float32Array(n), -1, 1) };
}

const MB = 1024 * 1024;

/**
 * The WebGPU adapter the train-step scenario uses: a GPU's when onnxruntime-node finds one, else,
 * in --quick with DCAE_BENCH_SOFTWARE_WEBGPU=1 only (its first step takes minutes), SwiftShader, the software Vulkan driver
 * Chromium ships (`VK_DRIVER_FILES` is pointed at it for this process; docs/training.md,
 * "Conformance: CPU vs WebGPU").
 */
function webgpuForTraining(
  quick: boolean,
): { readonly label: string; readonly software: boolean } | { readonly reason: string } {
  const webgpu = listNodeDevices().find((d) => d.device === 'webgpu');
  if (webgpu?.available && webgpu.auto) return { label: 'GPU', software: false };
  const software = findSoftwareVulkanDriver();
  const explicit = process.env.VK_DRIVER_FILES ?? process.env.VK_ICD_FILENAMES;
  if (software === undefined || (explicit !== undefined && explicit !== ''))
    return { reason: webgpu?.reason ?? 'onnxruntime-node reports no webgpu device' };
  if (!quick || process.env.DCAE_BENCH_SOFTWARE_WEBGPU !== '1')
    return {
      reason:
        `No GPU adapter (${webgpu?.reason ?? 'no webgpu device'}); the software one (SwiftShader, ${software}) ` +
        'runs only in --quick with DCAE_BENCH_SOFTWARE_WEBGPU=1 (its first step compiles every pipeline on the CPU: ' +
        'over 10 minutes on a loaded 2-core machine).',
    };
  process.env.VK_DRIVER_FILES = software;
  const after = listNodeDevices().find((d) => d.device === 'webgpu');
  if (!after?.available) return { reason: after?.reason ?? 'onnxruntime-node reports no webgpu device' };
  return { label: 'software SwiftShader (CPU emulation, not a GPU timing)', software: true };
}

export const trainStep: Scenario = {
  name: 'train-step',
  title: 'DC-AE training step (forward + backward + AdamW as one ONNX graph) vs forward only',
  description:
    'Builds the @dcae/train step graph of a small sana-style f32c32 DC-AE (the preset at 1/8 width, real depths; ' +
    'quick: 1/16 width at 32²) and runs `runner.step()` (all weights trainable, AdamW, L1), a phase-3 step ' +
    '(decoder head only) and `runner.reconstruct()` (the forward alone, weights as graph inputs) side by side ' +
    'on the CPU EP. GFLOP/step counts 3× the forward MACs ×2 (forward, dX, dW); the share of peak divides the ' +
    "step's GFLOP/s by the best conv/matmul GFLOP/s measured in the same run (matmul-peak). The WebGPU EP runs " +
    "the same step when onnxruntime-node finds a GPU adapter; without one, --quick with DCAE_BENCH_SOFTWARE_WEBGPU=1 runs it on SwiftShader (Chromium's " +
    'software Vulkan driver: one warm-up and one timed step, labelled, not a GPU timing). Peak RSS is the process high-water mark.',
  async run(context) {
    const quick = context.quick;
    const shrink = quick ? 16 : 8;
    const [batch, size] = quick ? [1, 32] : [4, 128];
    const config = smallSana(shrink);
    const weights = randomWeights(config, 7);
    let params = 0;
    for (const t of weights.values()) params += t.data.length;
    const options: TrainStepOptions = {
      weights,
      config,
      batch,
      height: size,
      width: size,
      loss: { l1: 1 },
      trainable: ['*'],
      optimizer: { kind: 'adamw', weightDecay: 0.01 },
    };
    const runtime = await context.runtime();
    const batchTensor = imageBatch([batch, 3, size, size], 1);
    const macs = countMacs(config, size, size);
    const forwardGflop = (2 * batch * (macs.encoder + macs.decoder)) / 1e9;
    const stepGflop = 3 * forwardGflop;

    context.log(
      `train-step: building the step graph (${(params / 1e6).toFixed(2)} M params, batch ${batch}, ${size}²)`,
    );
    const full = await createTrainStepRunner(runtime, options);
    const head = await createTrainStepRunner(runtime, {
      ...options,
      trainable: ['decoder.norm_out.*', 'decoder.conv_out.*'],
    });
    const runners: TrainStepRunnerWithStats[] = [full, head];
    const skipped: Skipped[] = [];
    const cases: BenchCase[] = [
      {
        name: 'train step (all weights)',
        work: { amount: stepGflop, unit: 'GFLOP' },
        run: () => full.step(batchTensor, { lr: 1e-4 }),
      },
      {
        name: 'forward only',
        work: { amount: forwardGflop, unit: 'GFLOP' },
        run: () => full.reconstruct(batchTensor),
      },
      { name: 'train step (phase 3: decoder head)', run: () => head.step(batchTensor, { lr: 1e-4 }) },
    ];
    let gpuRuntime: RuntimeV1 | undefined;
    const gpu = webgpuForTraining(quick);
    let gpuCase: string | undefined;
    let softwareSeries: Series[] = [];
    if ('reason' in gpu) skipped.push({ name: 'train step, webgpu EP', reason: gpu.reason });
    else {
      gpuCase = `train step (all weights), webgpu EP on ${gpu.label}`;
      try {
        gpuRuntime = createNodeRuntime({ devices: ['webgpu'] });
        const onGpu = await createTrainStepRunner(gpuRuntime, options);
        runners.push(onGpu);
        const gpuBench: BenchCase = {
          name: gpuCase,
          work: { amount: stepGflop, unit: 'GFLOP' },
          run: () => onGpu.step(batchTensor, { lr: 1e-4 }),
        };
        if (gpu.software) {
          // A software adapter runs its own short series: one warm-up step (which compiles every
          // pipeline on the CPU, minutes) and one timed step, not the run's sample count.
          context.log(`train-step: ${gpuCase} (one warm-up step compiles every pipeline: minutes)`);
          softwareSeries = await compareCases([gpuBench], {
            warmup: 1,
            samples: 1,
            log: (m) => context.log(m),
          });
        } else cases.push(gpuBench);
      } catch (error) {
        gpuCase = undefined;
        skipped.push({
          name: 'train step, webgpu EP',
          reason: `session failed: ${(error as Error).message.split('\n')[0]}`,
        });
      }
    }

    try {
      const series = await context.compare(cases);
      const peak = await measurePeakGflops(runtime, {
        ...(quick ? { matmulSize: 256, convChannels: 32, convSpatial: 16 } : {}),
        compare: context.sampling,
      });
      const step = series.find((s) => s.name === 'train step (all weights)')!;
      const stepGflops = step.throughput?.median ?? 0;
      const figures: Figure[] = [
        { name: 'parameters', value: params / 1e6, unit: 'M' },
        { name: 'step GFLOP (3× forward)', value: stepGflop, unit: 'GFLOP' },
        { name: 'step GFLOP/s (median)', value: stepGflops, unit: 'GFLOP/s' },
        { name: 'runtime peak (best conv/matmul)', value: peak.peakGflops, unit: 'GFLOP/s' },
        { name: 'step share of peak', value: (100 * stepGflops) / peak.peakGflops, unit: '%' },
        {
          name: 'step graph nodes',
          value:
            full.stats.forwardNodes +
            full.stats.lossNodes +
            full.stats.backwardNodes +
            full.stats.optimizerNodes,
          unit: 'nodes',
        },
        { name: 'backward nodes', value: full.stats.backwardNodes, unit: 'nodes' },
        { name: 'phase-3 backward nodes', value: head.stats.backwardNodes, unit: 'nodes' },
        { name: 'step model size', value: full.stats.modelBytes / MB, unit: 'MB' },
        { name: 'graph build', value: full.stats.buildMs, unit: 'ms' },
        { name: 'session creation', value: full.stats.sessionMs, unit: 'ms' },
        { name: 'peak RSS', value: (process.resourceUsage().maxRSS * 1024) / MB, unit: 'MB' },
      ];
      return {
        params: {
          batch,
          size,
          widthDivisor: shrink,
          loss: 'l1',
          optimizer: 'adamw',
          device: 'cpu',
          webgpu: 'reason' in gpu ? 'none' : gpu.label,
        },
        series: [...series, ...softwareSeries, ...peak.series],
        ratios: [
          { of: 'train step (all weights)', to: 'forward only' },
          { of: 'train step (phase 3: decoder head)', to: 'forward only' },
          ...(gpuCase !== undefined ? [{ of: gpuCase, to: 'train step (all weights)' }] : []),
        ],
        figures,
        skipped,
        notes: [
          'Weights and AdamW state are fed from and returned to host memory every step (no device-resident buffers yet).',
          ...('software' in gpu && gpu.software
            ? [
                `No GPU here: the webgpu EP ran on ${gpu.label}, Vulkan emulated on the CPU (about 100× slower than the cpu EP); ` +
                  'it proves the step graph runs on WebGPU, its time is not a GPU timing.',
              ]
            : []),
        ],
      };
    } finally {
      for (const r of runners) await r.dispose();
      await gpuRuntime?.dispose();
    }
  },
};
