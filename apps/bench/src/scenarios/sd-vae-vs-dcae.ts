import { compareWorkerCases } from '../ae-worker.js';
import type { BenchArchitecture } from '../random-weights.js';
import type { Scenario } from '../scenario.js';
import type { ModelJob } from './model-cases.js';
import { closeModelCases, modelCasesOutcome, startModelCases } from './model-cases.js';

/**
 * The SD-VAE-f8 baseline (the SD 1.x AutoencoderKL) against DC-AE f32c32 (in and sana) at equal
 * image sizes: time ratios DC-AE ÷ SD-VAE and peak RSS, all three models alive in their own
 * processes and measured side by side in rounds.
 */

const MB = 1e6;
const DC_AE: readonly BenchArchitecture[] = ['f32c32-in', 'sana'];
const MODELS: readonly BenchArchitecture[] = ['sd-vae-f8', ...DC_AE];

/** Full: encode and decode at 256², decode at 512² (encode at 512² would add ~2 minutes per round on 2 cores). */
const FULL: readonly ModelJob[] = [
  { operation: 'encode', size: 256 },
  { operation: 'decode', size: 256 },
  { operation: 'decode', size: 512 },
];
const QUICK: readonly ModelJob[] = [
  { operation: 'encode', size: 64 },
  { operation: 'decode', size: 64 },
];

const caseName = (architecture: BenchArchitecture, job: ModelJob): string =>
  `${architecture} ${job.operation} ${job.size}²`;

export const sdVaeVsDcae: Scenario = {
  name: 'sd-vae-vs-dcae',
  title: 'SD-VAE-f8 baseline vs DC-AE f32c32 (in, sana): time and memory at equal image size',
  description:
    'The SD 1.x VAE (diffusers AutoencoderKL, block_out_channels [128, 256, 512, 512], 83.7 M parameters, f8c4) ' +
    'loaded through `loadAutoencoder` like any model, against dc-ae-f32c32-in-1.0 and dc-ae-f32c32-sana-1.0, all ' +
    'with random weights at their real widths. Each model lives in its own child process for the whole run ' +
    '(sessions set up on a 1-cell input, then one warm-up run per case in ascending order of work, where its peak ' +
    'RSS is read); the cases of all three then run side by side in rounds. Full: encode and decode at 256², ' +
    'decode at 512². Ratios: DC-AE median time ÷ SD-VAE median time (below 1: DC-AE is faster); figures: peak ' +
    'RSS per case (VmHWM of its process, weights and sessions included) and its ratio, the MAC ratio. ' +
    'Quick: 1/16 widths at 64².',
  async run(context) {
    const { quick } = context;
    const jobs = quick ? QUICK : FULL;
    const sampling = { ...context.sampling, samples: quick ? 1 : context.sampling.samples };
    const models = await startModelCases(context, MODELS, jobs, caseName);
    const { workers, cases, macs, figures } = models;
    try {
      const { cases: measured, setup } = await compareWorkerCases(cases, sampling);
      for (const { worker, operation, ms, peakRss } of setup) {
        const name = `${MODELS[workers.indexOf(worker)]!}: ${operation === 'encode' ? 'encoder' : 'decoder'}`;
        figures.push(
          { name: `${name} graph build + session setup (+ a 1-cell run)`, value: ms, unit: 'ms' },
          { name: `${name} peak RSS during session setup`, value: peakRss / MB, unit: 'MB' },
        );
      }
      const byName = new Map(measured.map((m) => [m.case.name, m]));
      for (const m of measured)
        figures.push({ name: `${m.case.name}: peak RSS`, value: m.peakRss / MB, unit: 'MB' });
      const ratios: { of: string; to: string }[] = [];
      for (const job of jobs) {
        const baseline = caseName('sd-vae-f8', job);
        for (const architecture of DC_AE) {
          const name = caseName(architecture, job);
          ratios.push({ of: name, to: baseline });
          figures.push(
            {
              name: `${name} ÷ ${baseline}: peak RSS ratio`,
              value: byName.get(name)!.peakRss / byName.get(baseline)!.peakRss,
              unit: '×',
            },
            {
              name: `${name} ÷ ${baseline}: MAC ratio`,
              value: macs.get(name)! / macs.get(baseline)!,
              unit: '×',
            },
          );
        }
      }
      return modelCasesOutcome({
        params: { sizes: jobs.map((j) => `${j.operation} ${j.size}²`).join(', '), models: MODELS.join(', ') },
        samples: sampling.samples,
        measured,
        ratios,
        figures,
        quick,
        quickNote: 'Quick mode: 1/16 widths at 64², one sample; the figures only show that everything runs.',
        notes: [
          "SD-VAE encode returns the posterior mean (`latent_dist.mode()`); its latent is 4 × H/8 × W/8 (a 256² image: 4096 values), DC-AE f32c32's 32 × H/32 × W/32 (2048 values).",
          'Weights are random; the times are those of the architectures. Throughput counts convolutions and attention matmuls only.',
        ],
      });
    } finally {
      await closeModelCases(models);
    }
  },
};
