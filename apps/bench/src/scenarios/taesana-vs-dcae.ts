import { compareWorkerCases } from '../ae-worker.js';
import type { BenchArchitecture } from '../random-weights.js';
import type { Scenario } from '../scenario.js';
import type { ModelJob } from './model-cases.js';
import { closeModelCases, modelCasesOutcome, startModelCases } from './model-cases.js';

/**
 * TAESANA decode (the tiny preview decoder for Sana's f32c32 latents, read from .pth files)
 * against the DC-AE f32c32-sana decoder it stands in for, at 512² and 1024², side by side.
 */

const MB = 1e6;
const MODELS: readonly BenchArchitecture[] = ['taesana', 'sana'];

/** Full: decode at 512² and 1024² (latents 16² and 32²). Quick: 64² with the tiny DC-AE. */
const FULL_SIZES = [512, 1024];
const QUICK_SIZES = [64];

const caseName = (architecture: BenchArchitecture, size: number): string => `${architecture} decode ${size}²`;
const jobName = (architecture: BenchArchitecture, job: ModelJob): string => caseName(architecture, job.size);

export const taesanaVsDcae: Scenario = {
  name: 'taesana-vs-dcae',
  title: 'TAESANA vs DC-AE f32c32-sana decode: the fast approximate decoder against the real one',
  description:
    'TAESANA (madebyollin/taesd F32Decoder, 8.3 M parameters, random float16 weights in taesana_decoder.pth, read by ' +
    "dcae's .pth reader and run as float32) against dc-ae-f32c32-sana-1.0's decoder (159 M parameters, random " +
    'float32 weights), both decoding the same latent shape, each in its own child process, side by side in rounds. ' +
    'Full: 512² and 1024² (latents 32×16² and 32×32²), batch 1, fp32, onnxruntime-node CPU. Ratio: TAESANA median ' +
    'time ÷ DC-AE median time (below 1: TAESANA is faster); figures: MACs and peak RSS. Quick: 64², the DC-AE at 1/16 widths. `--sizes` replaces the sizes (multiples of 32).',
  async run(context) {
    const { quick } = context;
    // `--sizes` (multiples of 32) replaces the default sizes, e.g. to measure 512² alone.
    const sizes = context.matrix.sizes?.filter((s) => s % 32 === 0) ?? (quick ? QUICK_SIZES : FULL_SIZES);
    const sampling = { ...context.sampling, samples: quick ? 1 : context.sampling.samples };
    const jobs = sizes.map((size): ModelJob => ({ operation: 'decode', size }));
    const models = await startModelCases(context, MODELS, jobs, jobName);
    const { cases, macs } = models;
    const { figures } = models;
    try {
      const { cases: measured } = await compareWorkerCases(cases, sampling);
      const byName = new Map(measured.map((m) => [m.case.name, m]));
      const ratios: { of: string; to: string }[] = [];
      for (const size of sizes) {
        const of = caseName('taesana', size);
        const to = caseName('sana', size);
        ratios.push({ of, to });
        figures.push(
          { name: `${of} ÷ ${to}: MAC ratio`, value: macs.get(of)! / macs.get(to)!, unit: '×' },
          { name: `${of}: peak RSS`, value: byName.get(of)!.peakRss / MB, unit: 'MB' },
          { name: `${to}: peak RSS`, value: byName.get(to)!.peakRss / MB, unit: 'MB' },
        );
      }
      return modelCasesOutcome({
        params: { sizes: sizes.map((s) => `${s}²`).join(', ') },
        samples: sampling.samples,
        measured,
        ratios,
        figures,
        quick,
        quickNote: 'Quick mode: 64², tiny DC-AE, one sample; the figures only show that everything runs.',
        notes: [
          'Weights are random; the times are those of the architectures. TAESANA output is an approximation of the DC-AE decode, not equal to it.',
        ],
      });
    } finally {
      await closeModelCases(models);
    }
  },
};
