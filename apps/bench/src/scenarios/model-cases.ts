import type { MeasuredCase, ModelWorker, WorkerCase } from '../ae-worker.js';
import { startWorker } from '../ae-worker.js';
import type { BenchArchitecture, BenchModel } from '../random-weights.js';
import { benchModel } from '../random-weights.js';
import type { Figure, ScenarioContext, ScenarioOutcome } from '../scenario.js';

const MB = 1e6;

/** One encode or decode of a square image of `size` pixels (decode: its latent). */
export interface ModelJob {
  readonly operation: 'encode' | 'decode';
  readonly size: number;
}

/** What the side-by-side scenarios (sd-vae-vs-dcae, taesana-vs-dcae) measure next. */
export interface ModelCases {
  /** One worker per architecture, in the order given; close them with {@link closeModelCases}. */
  readonly workers: ModelWorker[];
  /** Every architecture × job, named by `name`. */
  readonly cases: WorkerCase[];
  /** Analytic MACs of each case (encoder or decoder, one image), by case name. */
  readonly macs: Map<string, number>;
  /** Per architecture: its weights (MB) and its process's RSS after loading, before any session. */
  readonly figures: Figure[];
}

/**
 * The shared setup of the model-against-model scenarios: each architecture's random-weight
 * checkpoint (real widths, or tiny in quick mode), loaded in its own child process, and one case
 * per job with its work in GFLOP. On failure the workers started so far are closed.
 */
export async function startModelCases(
  context: ScenarioContext,
  architectures: readonly BenchArchitecture[],
  jobs: readonly ModelJob[],
  name: (architecture: BenchArchitecture, job: ModelJob) => string,
): Promise<ModelCases> {
  const result: ModelCases = { workers: [], cases: [], macs: new Map(), figures: [] };
  try {
    for (const architecture of architectures) {
      const model: BenchModel = await benchModel(context.cacheDir, architecture, {
        tiny: context.quick,
        log: (m) => context.log(m),
      });
      context.log(`loading ${model.label} (${(model.weightBytes / MB).toFixed(1)} MB) in a child process`);
      const worker = await startWorker(context.cacheDir, { folder: model.folder, config: model.config });
      result.workers.push(worker);
      result.figures.push(
        { name: `${architecture}: weights`, value: model.weightBytes / MB, unit: 'MB' },
        {
          name: `${architecture}: RSS after load (no session yet)`,
          value: worker.afterLoad.rss / MB,
          unit: 'MB',
        },
      );
      for (const job of jobs) {
        const encode = job.operation === 'encode';
        const side = encode ? job.size : job.size / model.f;
        const count = model.macs(job.size, job.size)[encode ? 'encoder' : 'decoder'];
        const caseName = name(architecture, job);
        result.macs.set(caseName, count);
        result.cases.push({
          name: caseName,
          worker,
          run: { operation: job.operation, shape: [1, encode ? 3 : model.latentChannels, side, side] },
          work: { amount: (2 * count) / 1e9, unit: 'GFLOP' },
          images: 1,
        });
      }
    }
    return result;
  } catch (error) {
    await closeModelCases(result);
    throw error;
  }
}

/** Ends every worker of `cases`. */
export async function closeModelCases(cases: Pick<ModelCases, 'workers'>): Promise<void> {
  await Promise.all(cases.workers.map((w) => w.close()));
}

/** What a model-against-model scenario reports, before {@link modelCasesOutcome} shapes it. */
export interface ModelCasesReport {
  /** The scenario's own settings; batch 1, fp32 and the samples per case follow them. */
  readonly params: Readonly<Record<string, string | number>>;
  readonly samples: number;
  readonly measured: readonly MeasuredCase[];
  readonly ratios: readonly { readonly of: string; readonly to: string }[];
  readonly figures: readonly Figure[];
  readonly quick: boolean;
  /** The first note in quick mode (what the smoke run shows); left out otherwise. */
  readonly quickNote: string;
  readonly notes: readonly string[];
}

/** The outcome of a scenario measured with {@link startModelCases}: one image, float32, in every case. */
export function modelCasesOutcome(report: ModelCasesReport): ScenarioOutcome {
  return {
    params: { ...report.params, batch: 1, dtype: 'fp32', samplesPerCase: report.samples },
    series: report.measured.map((m) => m.series),
    ratios: report.ratios,
    figures: report.figures,
    notes: [...(report.quick ? [report.quickNote] : []), ...report.notes],
  };
}
