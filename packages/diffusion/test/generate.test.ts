import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor, JsonValue } from '@dcae/core';
import { bytesSource, DcaeError } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type {
  CheckpointFiles,
  DiffusionModel,
  GenerateOptions,
  GenerateProgress,
  LatentDecoder,
} from '../src/index.js';
import { generate, parseDiffusionConfig } from '../src/index.js';
import { loadDiffusionModel } from '../src/node/index.js';
import { fixturePath, loadFixtureModel, readJson } from './fixtures.js';

let runtime: RuntimeV1;
let dit: DiffusionModel;
let uvit: DiffusionModel;
let usit: DiffusionModel;
beforeAll(async () => {
  runtime = createNodeRuntime({ threads: 1 });
  dit = await loadFixtureModel('tiny-dit', runtime);
  uvit = await loadFixtureModel('tiny-uvit', runtime);
  usit = await loadFixtureModel('tiny-uvit', runtime, { prediction: 'velocity' });
  [dit, uvit, usit].forEach(watch);
});
afterAll(async () => {
  await Promise.all([dit.dispose(), uvit.dispose(), usit.dispose()]);
  await runtime.dispose();
});

/** The batch size of every network call of each model since the last `countCalls`. */
const calls = new Map<DiffusionModel, number[]>();

function watch(model: DiffusionModel): void {
  const batches: number[] = [];
  const forward = model.forward.bind(model);
  Object.assign(model, {
    forward: (...args: Parameters<DiffusionModel['forward']>) => {
      batches.push(args[0].shape[0]!);
      return forward(...args);
    },
  });
  calls.set(model, batches);
}

function countCalls(model: DiffusionModel): number[] {
  const batches = calls.get(model)!;
  batches.length = 0;
  return batches;
}

/** In-memory checkpoint files that record which files were opened as byte sources. */
function memoryFiles(texts: Record<string, string>): CheckpointFiles & { opened: string[] } {
  const opened: string[] = [];
  const bytes = (file: string) => new TextEncoder().encode(texts[file] ?? '');
  return {
    name: 'memory',
    opened,
    readText: async (file) => texts[file] ?? '',
    byteSource: async (file) => {
      opened.push(file);
      return bytesSource(bytes(file), file);
    },
    externalDataLocation: bytes,
  };
}

async function rejectionOf(options: GenerateOptions): Promise<DcaeError> {
  try {
    await generate(options);
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
  throw new Error('expected generate() to reject');
}

describe('generate()', () => {
  it('is reproducible from its seed, and different seeds give different samples', async () => {
    const options = { model: uvit, classLabels: [3, 7], steps: 3, seed: 42 };
    const [a, b, c] = [
      await generate(options),
      await generate(options),
      await generate({ ...options, seed: 43 }),
    ];
    expect(a.latent.shape).toEqual([2, 8, 4, 4]);
    expect(b.latent.data).toEqual(a.latent.data);
    expect(c.latent.data).not.toEqual(a.latent.data);
    expect(a).toMatchObject({ sampler: 'dpm-solver', steps: 3, guidanceScale: 1.5, seed: 42, nfe: 3 });
  });

  it('draws a seed when none is given and reports it, so the run can be repeated', async () => {
    const first = await generate({ model: uvit, classLabels: [1], steps: 1 });
    const again = await generate({ model: uvit, classLabels: [1], steps: 1, seed: first.seed });
    expect(again.latent.data).toEqual(first.latent.data);
  });

  it("uses the model family's sampler and upstream defaults (DiT → DDPM 250, USiT → dopri5)", async () => {
    const ddpm = await generate({ model: dit, classLabels: [0], seed: 1 });
    expect(ddpm).toMatchObject({ sampler: 'ddpm', steps: 250, nfe: 250 });
    const flow = await generate({ model: usit, classLabels: [0], seed: 1 });
    expect(flow.sampler).toBe('dopri5');
    expect(flow.steps).toBeUndefined();
    expect(flow.latent.data.every(Number.isFinite)).toBe(true);
  });

  it('reports progress after every step with a clean-sample estimate of the right shape', async () => {
    const events: GenerateProgress[] = [];
    const result = await generate({
      model: dit,
      classLabels: [5, 6],
      steps: 4,
      seed: 3,
      onProgress: (p) => events.push(p),
    });
    expect(events.map((e) => e.step)).toEqual([1, 2, 3, 4]);
    expect(events.map((e) => e.totalSteps)).toEqual([4, 4, 4, 4]);
    expect(events.at(-1)!.progress).toBe(1);
    expect(events.at(-1)!.latent.data).toEqual(result.latent.data);
    for (const event of events) expect(event.denoised.shape).toEqual([2, 8, 4, 4]);
  });

  it('runs one batched [cond; uncond] pass per DDPM step, two separate passes per DPM-Solver evaluation, and skips the unconditional pass at scale 1', async () => {
    const ditCalls = countCalls(dit);
    await generate({ model: dit, classLabels: [1, 2], steps: 3, guidanceScale: 4, seed: 1 });
    expect(ditCalls).toEqual([4, 4, 4]);
    const uvitCalls = countCalls(uvit);
    await generate({ model: uvit, classLabels: [1, 2], steps: 3, guidanceScale: 3, seed: 1 });
    expect(uvitCalls).toEqual([2, 2, 2, 2, 2, 2]);
    uvitCalls.length = 0;
    await generate({ model: uvit, classLabels: [1, 2], steps: 3, guidanceScale: 1, seed: 1 });
    expect(uvitCalls).toEqual([2, 2, 2]);
  });

  it('guidance changes the sample (the null class is used)', async () => {
    const base = { model: usit, classLabels: [9], sampler: 'heun' as const, steps: 2, seed: 8 };
    const [plain, guided] = [
      await generate({ ...base, guidanceScale: 1 }),
      await generate({ ...base, guidanceScale: 4 }),
    ];
    expect(guided.latent.data).not.toEqual(plain.latent.data);
  });

  it('decodes latent / scalingFactor with the autoencoder', async () => {
    const seen: HostTensor<'float32'>[] = [];
    const autoencoder: LatentDecoder = {
      scalingFactor: 0.5,
      latentChannels: 8,
      decode: async (latents) => {
        seen.push(latents);
        return { dtype: 'float32', shape: [1, 3, 32, 32], data: new Float32Array(3 * 32 * 32) };
      },
    };
    const result = await generate({ model: uvit, autoencoder, classLabels: [4], steps: 2, seed: 5 });
    expect(seen).toHaveLength(1);
    expect(seen[0]!.data).toEqual(result.latent.data.map((v) => v / 0.5));
    expect(result.images?.shape).toEqual([1, 3, 32, 32]);
  });

  it('aborts between steps with ABORTED and makes no further network call', async () => {
    const controller = new AbortController();
    const calls = countCalls(dit);
    const error = await rejectionOf({
      model: dit,
      classLabels: [1],
      steps: 10,
      seed: 1,
      signal: controller.signal,
      onProgress: ({ step }) => step === 2 && controller.abort(),
    });
    expect(error.code).toBe('ABORTED');
    expect(error.message).toContain('after step 2 of 10');
    expect(calls).toHaveLength(2);
  });

  it('an already aborted signal rejects before any network call', async () => {
    const calls = countCalls(uvit);
    const error = await rejectionOf({ model: uvit, classLabels: [1], signal: AbortSignal.abort() });
    expect(error.code).toBe('ABORTED');
    expect(calls).toHaveLength(0);
  });
});

describe('generate() rejects bad inputs with typed errors', () => {
  const noise = (shape: number[]): HostTensor<'float32'> => ({
    dtype: 'float32',
    shape,
    data: new Float32Array(shape.reduce((a, b) => a * b, 1)),
  });

  it.each([
    ['class 1000 (the null class)', { classLabels: [1000] }, 'INVALID_ARGUMENT', '[0, 999]'],
    ['class −1', { classLabels: [-1] }, 'INVALID_ARGUMENT', '[0, 999]'],
    ['class 2.5', { classLabels: [2.5] }, 'INVALID_ARGUMENT', '[0, 999]'],
    ['no classes', { classLabels: [] }, 'INVALID_ARGUMENT', 'classLabels'],
    ['guidance < 0', { guidanceScale: -0.5 }, 'INVALID_ARGUMENT', 'guidanceScale'],
    ['guidance NaN', { guidanceScale: Number.NaN }, 'INVALID_ARGUMENT', 'guidanceScale'],
    ['steps 0', { steps: 0 }, 'INVALID_ARGUMENT', 'steps'],
    ['steps 2.5', { steps: 2.5 }, 'INVALID_ARGUMENT', 'steps'],
    ['steps 1001', { steps: 1001 }, 'INVALID_ARGUMENT', 'steps'],
    ['a sampler of another family', { sampler: 'ddpm' }, 'INVALID_ARGUMENT', '"dpm-solver"'],
    ['an unknown sampler', { sampler: 'euler' }, 'INVALID_ARGUMENT', 'Sampler'],
    ['dopri5 tolerances on DPM-Solver', { tolerances: { rtol: 1e-4 } }, 'INVALID_ARGUMENT', 'dopri5'],
    [
      'initial noise of the wrong shape',
      { noise: { initial: noise([1, 8, 8, 8]) } },
      'SHAPE_MISMATCH',
      '[1, 8, 4, 4]',
    ],
    [
      'per-step noise for DPM-Solver',
      { noise: { steps: noise([30, 1, 8, 4, 4]) } },
      'INVALID_ARGUMENT',
      'DDPM',
    ],
    [
      'an autoencoder with other latent channels',
      {
        autoencoder: {
          scalingFactor: 0.3,
          latentChannels: 32,
          decode: () => Promise.reject(new Error('unused')),
        },
      },
      'SHAPE_MISMATCH',
      '32 latent channels',
    ],
    [
      'an autoencoder without a usable scaling factor',
      { autoencoder: { scalingFactor: 0, decode: () => Promise.reject(new Error('unused')) } },
      'INVALID_ARGUMENT',
      'scalingFactor',
    ],
  ] as const)('%s', async (_, change, code, text) => {
    const calls = countCalls(uvit);
    const error = await rejectionOf({
      model: uvit,
      classLabels: [1],
      seed: 1,
      ...(change as Partial<GenerateOptions>),
    });
    expect(error.code).toBe(code);
    expect(error.message).toContain(text);
    expect(calls).toHaveLength(0);
  });

  it('DDPM per-step noise must be [S, ≥B, C, h, w]', async () => {
    for (const shape of [
      [9, 1, 8, 4, 4],
      [10, 1, 8, 4],
      [10, 1, 4, 4, 8],
    ]) {
      const error = await rejectionOf({
        model: dit,
        classLabels: [1, 2],
        steps: 10,
        seed: 1,
        noise: { steps: noise(shape) },
      });
      expect(error.code).toBe('SHAPE_MISMATCH');
    }
  });

  it('steps with dopri5 (adaptive) are refused with a pointer to heun', async () => {
    const error = await rejectionOf({ model: usit, classLabels: [1], sampler: 'dopri5', steps: 20 });
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('heun');
  });

  it('a model without the null class cannot be guided (and its table no longer fits the 1001-row checkpoint)', async () => {
    const json = { ...((await readJson('tiny-uvit/config.json')) as object), class_dropout_prob: 0 };
    const error = (await loadDiffusionModel(fixturePath('tiny-uvit'), {
      runtime,
      config: parseDiffusionConfig(json as JsonValue),
    }).catch((e: unknown) => e)) as DcaeError;
    expect(error.code).toBe('WEIGHTS_MISMATCH');
    expect(error.message).toContain(
      'label_emb.embedding_table.weight: expected F32 [1000, 64], found F32 [1001, 64]',
    );
  });
});

describe('loadDiffusionModel()', () => {
  it('reports every missing, mis-shaped and unused tensor in one WEIGHTS_MISMATCH', async () => {
    // tiny-dit's weights read with tiny-uvit's config.
    const config = parseDiffusionConfig((await readJson('tiny-uvit/config.json')) as JsonValue);
    const error = (await loadDiffusionModel(fixturePath('tiny-dit'), { runtime, config }).catch(
      (e: unknown) => e,
    )) as DcaeError;
    expect(error.code).toBe('WEIGHTS_MISMATCH');
    expect(error.message).toContain('tiny-dit/model.safetensors');
    const detail = error.detail as { missing: string[]; wrong: string[]; unused: string[] };
    expect(detail.missing).toContain('diffusion_model.label_emb.embedding_table.weight [1001, 64]');
    expect(detail.wrong).toContain(
      'diffusion_model.pos_embed: expected F32 [1, 18, 64], found F32 [1, 16, 64]',
    );
    expect(detail.unused).toContain('diffusion_model.y_embedder.embedding_table.weight');
  });

  it('reads config.json from the folder and refuses an unknown model_name before touching the weights', async () => {
    const files = memoryFiles({ 'config.json': '{"model_name": "dc-ae-f32c32-in-1.0-dit-xl-in-256px"}' });
    await expect(loadDiffusionModel(files, { runtime })).rejects.toMatchObject({
      code: 'CONFIG_UNKNOWN_MODEL',
    });
    expect(files.opened).toEqual([]);
  });

  it('an aborted signal stops loading with ABORTED', async () => {
    await expect(
      loadDiffusionModel(fixturePath('tiny-dit'), { runtime, signal: AbortSignal.abort() }),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
  });

  it('forward() checks its inputs', async () => {
    const x = { dtype: 'float32' as const, shape: [1, 8, 4, 4], data: new Float32Array(128) };
    await expect(dit.forward({ ...x, shape: [1, 8, 8, 2] }, [0], [0])).rejects.toMatchObject({
      code: 'SHAPE_MISMATCH',
    });
    await expect(dit.forward(x, [0, 1], [0])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(dit.forward(x, [0], [1001])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await expect(dit.forward(x, [Number.NaN], [1])).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect((await dit.forward(x, [0], [1000])).shape).toEqual([1, 16, 4, 4]);
  });
});
