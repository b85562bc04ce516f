import { basename, join } from 'node:path';
import { createRng, formatShape } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { ParamResolver } from '@dcae/core/onnx';
import type { RuntimeV1 } from '@dcae/core/runtime';
import {
  buildDiffusionGraph,
  DIFFUSION_PRESETS,
  generate,
  latentShape,
  timestepEmbedding,
} from '@dcae/diffusion';
import type { AttentionKernel, BackboneConfig, DiffusionModel } from '@dcae/diffusion';
import type { RandomTensor } from '../random-weights.js';
import { ensureRandomSafetensors } from '../random-weights.js';
import type { BenchCase, Figure, Scenario, Series } from '../scenario.js';
import { profileModel } from '@dcae/runtime-adapters/node';
import { peakRecorder, QUICK_ROOFLINE_PEAK, ROOFLINE_PEAK } from './matmul-peak.js';

/**
 * The token counts of three autoencoders for a 512×512 image. DC-AE's claim (19.1× for UViT-H,
 * DC-AE-f64 against SD-VAE-f8) comes from the diffusion model seeing fewer tokens.
 */
const LATENTS = [
  { name: 'SD-VAE-f8p2', channels: 4, size: 64, patch: 2 },
  { name: 'DC-AE-f32', channels: 32, size: 16, patch: 1 },
  { name: 'DC-AE-f64', channels: 128, size: 8, patch: 1 },
] as const;
type Latent = (typeof LATENTS)[number];

const FAMILIES = [
  { name: 'DiT-XL', backbone: DIFFUSION_PRESETS['dc-ae-f32c32-in-1.0-dit-xl-in-512px'].backbone },
  { name: 'UViT-H', backbone: DIFFUSION_PRESETS['dc-ae-f32c32-in-1.0-uvit-h-in-512px'].backbone },
] as const;

/** Quick mode: the real token counts at a tiny width. */
const QUICK_SIZE = { hiddenSize: 64, depth: 2, numHeads: 4 } as const;
/** Sampler steps of the "generate" cases (the released defaults are 250 DDPM steps / 30 DPM-Solver evaluations). */
const GENERATE_STEPS = 2;
const PAPER_SPEEDUP = 19.1;

const tokens = (latent: Latent): number => (latent.size / latent.patch) ** 2;
const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

function configFor(
  backbone: BackboneConfig,
  latent: Latent,
  quick: boolean,
  depth: number | undefined,
): BackboneConfig {
  return {
    ...backbone,
    ...(quick ? QUICK_SIZE : {}),
    ...(depth === undefined ? {} : { depth }),
    inChannels: latent.channels,
    inputSize: latent.size,
    patchSize: latent.patch,
  };
}

/** Every parameter the graph of `config` reads, with its shape (by building the graph once). */
function parameterShapes(config: BackboneConfig): Map<string, readonly number[]> {
  const shapes = new Map<string, readonly number[]>();
  buildDiffusionGraph(config, (key, shape) => {
    shapes.set(key, shape);
    return {
      kind: 'external',
      dtype: 'float32',
      shape,
      location: 'shapes',
      offset: 0,
      length: numel(shape) * 4,
    };
  });
  return shapes;
}

/**
 * Multiply-adds of one forward pass at batch 1, as FLOPs (2 per multiply-add): every Linear and
 * patch projection over its tokens, plus attention's two matmuls (4·L²·D per block). Element-wise
 * work (norms, GELU, softmax) is left out. DiT's adaLN and time MLP run once per sample.
 */
function forwardGflop(config: BackboneConfig, shapes: ReadonlyMap<string, readonly number[]>): number {
  const patches = (config.inputSize / config.patchSize) ** 2;
  const sequence = config.family === 'uvit' ? patches + 2 : patches;
  let flops = 0;
  for (const [key, shape] of shapes) {
    // Lookups, norms, biases and position tables do no matmul.
    if (shape.length < 2 || !key.endsWith('.weight') || key.includes('embedding_table')) continue;
    const rows = /adaLN_modulation|t_embedder/.test(key)
      ? 1
      : /x_embedder|patch_embed/.test(key)
        ? patches
        : sequence;
    flops += 2 * rows * numel(shape);
  }
  const blocks = config.family === 'dit' ? config.depth : config.depth + 1;
  flops += blocks * 4 * sequence ** 2 * config.hiddenSize;
  return flops / 1e9;
}

interface WeightsFile {
  readonly path: string;
  /** Resolves the graph parameters of one latent's config into the file. */
  resolverFor(latent: Latent): ParamResolver;
}

/**
 * One float32 safetensors file per family with random weights (U(±1/√fan_in)): the tensors whose
 * shape is the same for every latent (the blocks) once, the others (patch embedding, positions,
 * output layer) once per latent as `<latent>/<key>`. Written into the cache directory and reused
 * while the layout is unchanged (`ensureRandomSafetensors`).
 */
async function ensureWeights(
  cacheDir: string,
  family: string,
  configs: ReadonlyMap<Latent, BackboneConfig>,
  log: (message: string) => void,
): Promise<WeightsFile> {
  const perLatent = new Map([...configs].map(([latent, config]) => [latent, parameterShapes(config)]));
  const all = [...perLatent.values()];
  const shared = new Map(
    [...all[0]!].filter(([key, shape]) =>
      all.every((s) => formatShape(s.get(key) ?? []) === formatShape(shape)),
    ),
  );
  const entries: [string, readonly number[]][] = [...shared];
  for (const [latent, shapes] of perLatent) {
    for (const [key, shape] of shapes) if (!shared.has(key)) entries.push([`${latent.name}/${key}`, shape]);
  }

  const first = configs.values().next().value!;
  const path = join(
    cacheDir,
    `diffusion-tokens-${family}-${first.hiddenSize}x${first.depth}x${first.numHeads}.safetensors`,
  );
  const tensors: RandomTensor[] = entries.map(([key, shape]) => {
    const bound = 1 / Math.sqrt(shape.length > 1 ? numel(shape) / shape[0]! : shape[0]!);
    return { key, shape, range: [-bound, bound] };
  });
  const written = await ensureRandomSafetensors(path, tensors, { seed: 20_241_101, log });
  const location = basename(path);
  return {
    path,
    resolverFor: (latent) => (key, shape) => {
      const range = written.ranges.get(shared.has(key) ? key : `${latent.name}/${key}`);
      if (range === undefined) throw new Error(`${path}: no tensor for ${latent.name} ${key}`);
      return {
        kind: 'external',
        dtype: 'float32',
        shape,
        location,
        offset: range[0],
        length: range[1] - range[0],
      };
    },
  };
}

/**
 * The backbone over `buildDiffusionGraph`'s documented inputs (`x`, `t_freq` / `time_token`, `y`
 * int64 → `out`), as `generate()` takes it: what `loadDiffusionModel` returns, with the weights
 * resolved into the shared file.
 */
async function openModel(
  runtime: RuntimeV1,
  config: BackboneConfig,
  weights: WeightsFile,
  latent: Latent,
  attention: AttentionKernel,
): Promise<DiffusionModel & { readonly bytes: Uint8Array }> {
  const graph = buildDiffusionGraph(config, weights.resolverFor(latent), { attention });
  const bytes = serializeModel(graph);
  const session = await runtime.createSession(bytes, {
    externalData: [{ location: basename(weights.path), data: weights.path }],
  });
  const [timeInput, timeDim] = config.family === 'dit' ? ['t_freq', 256] : ['time_token', config.hiddenSize];
  return {
    bytes,
    config,
    preset: undefined,
    latentShape: latentShape(config),
    async forward(x, t, y) {
      const n = x.shape[0]!;
      const outputs = await session.run({
        x,
        [timeInput]: { dtype: 'float32', shape: [n, timeDim], data: timestepEmbedding(t, timeDim) },
        y: { dtype: 'int64', shape: [n], data: BigInt64Array.from(Array.from(y), BigInt) },
      });
      return outputs.out as HostTensor<'float32'>;
    },
    dispose: () => session.dispose(),
  };
}

function checkOutput(out: HostTensor<'float32'>, expected: readonly number[], what: string): void {
  if (formatShape(out.shape) !== formatShape(expected)) {
    throw new Error(`${what}: output ${formatShape(out.shape)}, expected ${formatShape(expected)}`);
  }
  if (!out.data.every(Number.isFinite)) throw new Error(`${what}: non-finite output`);
}

type What = 'step' | 'guided step' | 'generate' | 'step, standard ops' | 'guided step, standard ops';
const seriesName = (family: string, what: What, latent: Latent): string =>
  `${family} ${what}, ${latent.name} (${tokens(latent)} tokens)`;

/** Kernel op types that are matrix products (what the GFLOP count counts). */
const MATMUL_KERNELS = new Set([
  'MatMul',
  'Gemm',
  'FusedMatMul',
  'FusedGemm',
  'Conv',
  'FusedConv',
  'MultiHeadAttention',
]);

/**
 * The timed cases of one session: "step" (batch 1), "guided step" ([cond; uncond] as one batch of 2,
 * as guidance.ts evaluates it) and, for the fused kernel, "generate". Each run checks its output.
 */
function caseSet(
  family: string,
  latent: Latent,
  config: BackboneConfig,
  model: DiffusionModel,
  kernel: AttentionKernel,
): BenchCase[] {
  const shape = [1, ...model.latentShape];
  const x = createRng(1).randn(shape);
  const outShape = [
    1,
    config.family === 'dit' ? 2 * latent.channels : latent.channels,
    latent.size,
    latent.size,
  ];
  const gflop = forwardGflop(config, parameterShapes(config));
  const x2: HostTensor<'float32'> = {
    ...x,
    shape: [2, ...shape.slice(1)],
    data: new Float32Array([...x.data, ...x.data]),
  };
  const outShape2 = [2, ...outShape.slice(1)];
  const suffix = kernel === 'fused' ? '' : ', standard ops';
  const cases: BenchCase[] = [
    {
      name: seriesName(family, `step${suffix}`, latent),
      work: { amount: gflop, unit: 'GFLOP' },
      run: async () => checkOutput(await model.forward(x, [500], [207]), outShape, 'step'),
    },
    {
      name: seriesName(family, `guided step${suffix}`, latent),
      work: { amount: 2 * gflop, unit: 'GFLOP' },
      run: async () => checkOutput(await model.forward(x2, [500, 500], [207, 207]), outShape2, 'guided step'),
    },
  ];
  if (kernel === 'fused') {
    cases.push({
      name: seriesName(family, 'generate', latent),
      work: { amount: GENERATE_STEPS * gflop, unit: 'GFLOP' },
      run: async () => {
        const { latent: sample } = await generate({
          model,
          classLabels: [207],
          guidanceScale: 1,
          steps: GENERATE_STEPS,
          seed: 0,
        });
        checkOutput(sample, shape, 'generate');
      },
    });
  }
  return cases;
}

export const diffusionTokens: Scenario = {
  name: 'diffusion-tokens',
  title: 'Diffusion backbone cost per latent token count: DC-AE-f32/f64 vs SD-VAE-f8',
  description:
    'DiT-XL and UViT-H at their real size (hidden 1152, depth 28 unless `--depth` says otherwise, 16 heads; random ' +
    'weights written once into the ' +
    'cache dir) on the latents of a 512×512 image: DC-AE-f32 (32×16×16, patch 1: 256 tokens), DC-AE-f64 ' +
    '(128×8×8, patch 1: 64 tokens) and SD-VAE-f8 with patch 2 (4×64×64: 1024 tokens). "step" is one network ' +
    'evaluation at batch 1 (`forward`; a guided step evaluates [cond; uncond], twice this); "generate" is ' +
    `\`generate()\` with the model's sampler (DiT: DDPM, UViT: DPM-Solver), ${GENERATE_STEPS} steps, unguided, ` +
    'from the noise draw to the final latent (no decoding). The latents of one family run side by side; ' +
    'the ratios are the speed-ups of fewer tokens. GFLOP/s counts the matmuls only. Quick mode keeps the ' +
    'token counts at a tiny width (64, depth 2, 4 heads), so its ratios say nothing.',
  async run(context) {
    const runtime = await context.runtime();
    const series: Series[] = [];
    const figures: Figure[] = [];
    const ratios: { of: string; to: string }[] = [];
    const [f8, f32, f64] = LATENTS;
    const forwardCost = new Map<string, number>();
    // The ceiling of the roofline figures (as in ae-latency), measured before and after the cases.
    const { runs: peakRuns, measure: measurePeak } = peakRecorder(
      runtime,
      context.quick ? QUICK_ROOFLINE_PEAK : { ...ROOFLINE_PEAK, compare: { warmup: 1, samples: 3 } },
      (m) => context.log(m),
    );
    await measurePeak();
    const profiles: string[] = [];
    const flopRatio = (family: string): string =>
      `${(forwardCost.get(`${family} ${f8.name}`)! / forwardCost.get(`${family} ${f64.name}`)!).toFixed(1)}×`;

    // One family at a time: three sessions of a 2–3 GB model are enough memory at once.
    for (const family of FAMILIES) {
      const configs = new Map(
        LATENTS.map((latent) => [
          latent,
          configFor(family.backbone, latent, context.quick, context.matrix.depth),
        ]),
      );
      const weights = await ensureWeights(context.cacheDir, family.name, configs, (m) => context.log(m));
      const models: (DiffusionModel & { bytes: Uint8Array })[] = [];
      try {
        // The default-domain attention first ("before"), then the fused one ("after"; its sessions are
        // kept for the profiles). Each kernel's three token counts run side by side in one compare.
        for (const kernel of ['standard', 'fused'] as const) {
          for (const model of models.splice(0)) await model.dispose();
          const cases: BenchCase[] = [];
          for (const [latent, config] of configs) {
            context.log(
              `${family.name}, ${latent.name}, ${kernel} attention: building the graph and the session`,
            );
            const model = await openModel(runtime, config, weights, latent, kernel);
            models.push(model);
            cases.push(...caseSet(family.name, latent, config, model, kernel));
            const gflop = forwardGflop(config, parameterShapes(config));
            if (kernel === 'fused') {
              forwardCost.set(`${family.name} ${latent.name}`, gflop);
              figures.push({ name: `${family.name} forward, ${latent.name}`, value: gflop, unit: 'GFLOP' });
            }
          }
          context.log(`${family.name}, ${kernel} attention: measuring`);
          series.push(...(await context.compare(cases)));
        }
        const released = [...parameterShapes(configs.get(f32)!).values()].reduce((n, s) => n + numel(s), 0);
        figures.push({ name: `${family.name} parameters (${f32.name})`, value: released / 1e6, unit: 'M' });
        // Where one step's time goes: onnxruntime's profile of a batch-1 forward per token count.
        for (const [i, [latent, config]] of [...configs].entries()) {
          const [timeInput, timeDim] =
            config.family === 'dit' ? ['t_freq', 256] : ['time_token', config.hiddenSize];
          const shape = [1, ...latentShape(config)];
          // A failed profile costs its figures, never the measured series above.
          const profile = await profileModel(
            models[i]!.bytes,
            {
              x: createRng(1).randn(shape),
              [timeInput]: { dtype: 'float32', shape: [1, timeDim], data: timestepEmbedding([500], timeDim) },
              y: { dtype: 'int64', shape: [1], data: BigInt64Array.of(207n) },
            },
            { externalData: [{ location: basename(weights.path), data: weights.path }] },
          ).catch((error: unknown) => {
            profiles.push(
              `${family.name} ${latent.name}: the onnxruntime profile failed (${error instanceof Error ? error.message : String(error)}); its figures are missing.`,
            );
            return undefined;
          });
          if (profile === undefined) continue;
          const matmul = profile.byOpType
            .filter((o) => MATMUL_KERNELS.has(o.opType))
            .reduce((t, o) => t + o.durationUs, 0);
          figures.push({
            name: `${family.name} ${latent.name}: matmul kernels' share of kernel time (profile)`,
            value: (100 * matmul) / profile.totalUs,
            unit: '%',
          });
          profiles.push(
            `${family.name} ${latent.name} (${tokens(latent)} tokens), kernel time: ` +
              profile.byOpType
                .slice(0, 6)
                .map(
                  (o) => `${o.opType} ×${o.count} ${((100 * o.durationUs) / profile.totalUs).toFixed(1)} %`,
                )
                .join(', '),
          );
        }
      } finally {
        for (const model of models) await model.dispose();
      }
      for (const what of ['step', 'guided step', 'generate', 'step, standard ops'] as const) {
        ratios.push(
          { of: seriesName(family.name, what, f8), to: seriesName(family.name, what, f64) },
          { of: seriesName(family.name, what, f8), to: seriesName(family.name, what, f32) },
          { of: seriesName(family.name, what, f32), to: seriesName(family.name, what, f64) },
        );
      }
    }

    await measurePeak();
    const peak = Math.max(...peakRuns.map((r) => r.peakGflops));
    figures.unshift({
      name: 'peak GFLOP/s (best of MatMul and Conv, before and after the cases)',
      value: peak,
      unit: 'GFLOP/s',
    });
    for (const s of series) {
      if (!s.name.includes('step')) continue;
      figures.push({
        name: `${s.name}: % of peak (median GFLOP/s ÷ peak)`,
        value: (100 * s.throughput!.median) / peak,
        unit: '%',
      });
    }
    for (const family of FAMILIES)
      for (const latent of LATENTS)
        ratios.push(
          { of: seriesName(family.name, 'guided step', latent), to: seriesName(family.name, 'step', latent) },
          // Before ÷ after: what the fused attention (and Gelu forms) gained.
          {
            of: seriesName(family.name, 'step, standard ops', latent),
            to: seriesName(family.name, 'step', latent),
          },
          {
            of: seriesName(family.name, 'guided step, standard ops', latent),
            to: seriesName(family.name, 'guided step', latent),
          },
        );
    const width = {
      ...(context.quick ? QUICK_SIZE : { hiddenSize: 1152, depth: 28, numHeads: 16 }),
      ...(context.matrix.depth === undefined ? {} : { depth: context.matrix.depth }),
    };
    return {
      params: {
        hiddenSize: width.hiddenSize,
        depth: width.depth,
        numHeads: width.numHeads,
        tokens: LATENTS.map(
          (l) => `${l.name} ${l.channels}×${l.size}×${l.size}/p${l.patch} = ${tokens(l)}`,
        ).join(', '),
        batch: 1,
        generateSteps: GENERATE_STEPS,
        guidance: 'none (scale 1)',
      },
      series,
      ratios,
      figures,
      notes: [
        `The paper's ${PAPER_SPEEDUP}× (UViT-H, DC-AE-f64 against SD-VAE-f8, ImageNet 512×512; 17.9× for training) is ` +
          "the diffusion model's throughput on an H100 GPU, in images per second at large batch. The " +
          `"UViT-H step, ${f8.name} ÷ ${f64.name}" ratio is the same swap for one sample on this machine: 16× fewer ` +
          `tokens are ${flopRatio('UViT-H')} fewer matmul FLOPs (DiT-XL: ${flopRatio('DiT-XL')}), attention's quadratic ` +
          'part included. It shows how far the backbone cost follows the token count on this CPU. It does not show ' +
          "the paper's GPU throughput: at 64 tokens and batch 1 the matmuls have few rows and run at a lower GFLOP/s " +
          'than at 1024 (see the throughput column), and per-call costs that do not shrink with the tokens weigh ' +
          'more, so the measured ratio falls below the FLOP ratio; a GPU at large batch keeps both token counts busy. ' +
          'Nor does it cover training, the autoencoder, or sample quality (FID). On a shared machine the ratios ' +
          'are noisy; compare the best times too.',
        ...(context.quick || context.matrix.depth !== undefined
          ? []
          : [
              'The GFLOP figures are twice the multiply-adds the DC-AE paper lists (DiT-XL and UViT-H on DC-AE-f32: ' +
                '118.68 and 133.25 GMACs, UViT-H on DC-AE-f64: 33.25), and the parameter counts match its 500.87 M ' +
                "and 674.89 M (DiT-XL's count leaves out its fixed sin-cos position table, 0.29 M): the networks " +
                'measured are the released architectures.',
            ]),
        '"step" and "guided step" run the default graph (attention as onnxruntime\'s fused MultiHeadAttention, ' +
          'GELU as com.microsoft FastGelu for DiT and as the erf pattern onnxruntime fuses to Gelu for UViT); ' +
          '"…, standard ops" the same network with attention as MatMul → Softmax → MatMul (the ' +
          "`attention: 'standard'` fallback), measured in its own compare just before. Their ratio is the " +
          'before/after of the fused kernels.',
        '"guided step" is what a guided sampler evaluates per step: [cond; uncond] as one batch of 2 (guidance.ts); ' +
          'its ratio to "step" below 2× is what batching the two branches saves.',
        ...profiles,
        'Weights are random (U(±1/√fan_in)); the cost does not depend on their values. A released checkpoint ' +
          'samples with guidance (twice the batch per step) for 30 (UViT, DPM-Solver) or 250 (DiT, DDPM) steps, so ' +
          'a real generation costs about 2 × steps × "step".',
      ],
    };
  },
};
