import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type { DiffusionModel, SamplerName } from '../src/index.js';
import { generate } from '../src/index.js';
import { ditGuidedPrediction, usitGuidedVelocity, uvitGuidedNoise } from '../src/guidance.js';
import { ddpmStep } from '../src/samplers/ddpm.js';
import { dpmSolverPlan, dpmSolverStep } from '../src/samplers/dpm-solver.js';
import { heunStep } from '../src/samplers/heun.js';
import { ddpmSchedule } from '../src/schedules/gaussian-diffusion.js';
import { discreteNoiseSchedule, uvitBetas } from '../src/schedules/noise-schedule-vp.js';
import { float32, int64, loadFixtureModel, maxAbs, maxAbsDiff, readJson, readTensors } from './fixtures.js';

/**
 * The three sampler fixtures (README "Sampler fixtures"): full loops through generate() with the
 * fixtures' noise injected, compared with `final` within meta.json's tolerance (10× the fp32
 * noise floor, not the forward 1e-4 rule), plus the network times and single steps.
 */

interface Fixture {
  readonly dir: string;
  readonly network: 'tiny-dit' | 'tiny-uvit';
  readonly override?: Record<string, unknown>;
  readonly sampler: SamplerName;
  /** Our `steps` for the fixture's setting (Heun: grid points − 1). */
  readonly steps: number;
}

const FIXTURES: readonly Fixture[] = [
  { dir: 'dit-ddpm10-cfg4', network: 'tiny-dit', sampler: 'ddpm', steps: 10 },
  { dir: 'uvit-dpm-nfe9-cfg3', network: 'tiny-uvit', sampler: 'dpm-solver', steps: 9 },
  // USiT reads the tiny UViT network as a velocity model.
  {
    dir: 'usit-heun2-6pt-cfg1.5',
    network: 'tiny-uvit',
    override: { prediction: 'velocity' },
    sampler: 'heun',
    steps: 5,
  },
];

interface Meta {
  readonly cfg_scale: number;
  readonly tolerance: { readonly final: number };
}

let runtime: RuntimeV1;
beforeAll(() => {
  runtime = createNodeRuntime({ threads: 1 });
});
afterAll(async () => {
  await runtime.dispose();
});

/** Wraps model.forward to record the network time of every sample of every call. */
function recordTimes(model: DiffusionModel): number[][] {
  const calls: number[][] = [];
  const forward = model.forward.bind(model);
  Object.assign(model, {
    forward: (...args: Parameters<DiffusionModel['forward']>) => {
      calls.push(Array.from(args[1]));
      return forward(...args);
    },
  });
  return calls;
}

/** Sample `index` of a stacked fixture tensor [S, B, …] as a flat array. */
function row(
  tensor: HostTensor<'float32'>,
  index: number,
  length = tensor.data.length / tensor.shape[0]!,
): Float32Array {
  const stride = tensor.data.length / tensor.shape[0]!;
  return tensor.data.subarray(index * stride, index * stride + length);
}

describe.each(FIXTURES)('$dir', (fixture) => {
  let meta: Meta;
  let sample: Map<string, HostTensor | Float64Array>;
  let model: DiffusionModel;
  beforeAll(async () => {
    meta = (await readJson(`${fixture.dir}/meta.json`)) as Meta;
    sample = await readTensors(`${fixture.dir}/sample.safetensors`);
    model = await loadFixtureModel(fixture.network, runtime, fixture.override);
  });
  afterAll(async () => {
    await model.dispose();
  });

  it('generate() with the injected noise reproduces `final` within meta.json tolerance.final', async () => {
    const times = recordTimes(model);
    const result = await generate({
      model,
      classLabels: int64(sample, 'labels'),
      guidanceScale: meta.cfg_scale,
      sampler: fixture.sampler,
      steps: fixture.steps,
      noise: {
        initial: float32(sample, 'noise_init'),
        ...(sample.has('step_noise') ? { steps: float32(sample, 'step_noise') } : {}),
      },
    });
    const expected = float32(sample, 'final');
    expect(result.latent.shape).toEqual(expected.shape);
    expect(maxAbsDiff(result.latent.data, expected.data)).toBeLessThanOrEqual(meta.tolerance.final);

    // The network saw upstream's times, call for call (DPM-Solver makes two calls per evaluation,
    // cond then uncond, where upstream records one row; its stage times carry upstream's λ⁻¹ rounding).
    const modelT = sample.get('model_t') as HostTensor;
    const expectedTimes = Array.from(modelT.data as ArrayLike<number | bigint>, Number);
    const perCall = modelT.shape[1]!;
    const recorded = fixture.sampler === 'dpm-solver' ? times.filter((_, i) => i % 2 === 0) : times;
    expect(recorded).toHaveLength(modelT.shape[0]!);
    recorded.forEach((call, i) => {
      const want = expectedTimes.slice(i * perCall, (i + 1) * perCall);
      expect(call).toHaveLength(fixture.sampler === 'dpm-solver' ? perCall : want.length);
      call.forEach((t, j) =>
        expect(Math.abs(t - want[j]!)).toBeLessThanOrEqual(fixture.sampler === 'dpm-solver' ? 1e-4 : 0),
      );
    });
  });
});

describe("single steps from the fixtures' trajectories (no chain amplification)", () => {
  /** 1e-5 relative: far below the emulated bugs, above float32 rounding of one step. */
  const close = (actual: Float32Array, expected: Float32Array) =>
    expect(maxAbsDiff(actual, expected)).toBeLessThanOrEqual(1e-5 * Math.max(1, maxAbs(expected)));

  it('DDPM step k maps trajectory[k−1] to trajectory[k], with pred_xstart and log_variance', async () => {
    const sample = await readTensors('dit-ddpm10-cfg4/sample.safetensors');
    const model = await loadFixtureModel('tiny-dit', runtime);
    try {
      const schedule = ddpmSchedule(10);
      const labels = int64(sample, 'labels');
      const predict = ditGuidedPrediction({ model, labels, scale: 4 });
      const [trajectory, noise] = [float32(sample, 'trajectory'), float32(sample, 'step_noise')];
      const half = trajectory.data.length / trajectory.shape[0]!;
      for (let j = 0; j < 10; j++) {
        const k = 9 - j;
        const x = j === 0 ? float32(sample, 'noise_init').data : row(trajectory, j - 1);
        const step = ddpmStep(
          schedule,
          k,
          x,
          await predict(x, schedule.timestepMap[k]!),
          row(noise, j, half),
        );
        close(step.x, row(trajectory, j));
        close(step.predXstart, row(float32(sample, 'pred_xstart'), j));
        if (k > 0) close(step.logVariance, row(float32(sample, 'log_variance'), j));
      }
    } finally {
      await model.dispose();
    }
  });

  it('DPM-Solver step j maps trajectory[j−1] to trajectory[j]', async () => {
    const sample = await readTensors('uvit-dpm-nfe9-cfg3/sample.safetensors');
    const model = await loadFixtureModel('tiny-uvit', runtime);
    try {
      const schedule = discreteNoiseSchedule(uvitBetas());
      const predictNoise = uvitGuidedNoise({ model, labels: int64(sample, 'labels'), scale: 3 });
      const trajectory = float32(sample, 'trajectory');
      for (const [j, step] of dpmSolverPlan(schedule, 9).steps.entries()) {
        const x = j === 0 ? float32(sample, 'noise_init').data : row(trajectory, j - 1);
        close((await dpmSolverStep(schedule, step, x, predictNoise)).x, row(trajectory, j));
      }
    } finally {
      await model.dispose();
    }
  });

  it('Heun step i maps trajectory[i] to trajectory[i+1]', async () => {
    const sample = await readTensors('usit-heun2-6pt-cfg1.5/sample.safetensors');
    const model = await loadFixtureModel('tiny-uvit', runtime, { prediction: 'velocity' });
    try {
      const velocity = usitGuidedVelocity({ model, labels: int64(sample, 'labels'), scale: 1.5 });
      const trajectory = float32(sample, 'trajectory');
      // Upstream's grid: the first evaluation of step i is at grid[i]; the last step ends at 1.
      const modelT = float32(sample, 'model_t');
      const grid = [...Array.from({ length: 5 }, (_, i) => modelT.data[2 * i * modelT.shape[1]!]!), 1];
      for (let i = 0; i < 5; i++) {
        const { x } = await heunStep(velocity, grid[i]!, grid[i + 1]!, row(trajectory, i));
        close(x, row(trajectory, i + 1));
      }
    } finally {
      await model.dispose();
    }
  });
});
