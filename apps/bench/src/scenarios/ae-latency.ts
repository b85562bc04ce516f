import type { MeasuredCase, WorkerCase } from '../ae-worker.js';
import { compareWorkerCases, startWorker } from '../ae-worker.js';
import type { BenchArchitecture, BenchModel } from '../random-weights.js';
import { benchModel } from '../random-weights.js';
import type { CaseMatrix, Figure, Scenario } from '../scenario.js';
import { peakRecorder, QUICK_ROOFLINE_PEAK, ROOFLINE_PEAK } from './matmul-peak.js';

/**
 * Encode and decode latency of the DC-AE architectures at their real widths (random weights),
 * with achieved GFLOP/s against the peak measured in the same run (roofline) and peak RSS per
 * case. Each architecture and precision runs in its own child process.
 */

const MB = 1e6;

interface Case {
  readonly architecture: BenchArchitecture;
  readonly operation: 'encode' | 'decode';
  readonly size: number;
  readonly batch: number;
  readonly dtype: 'fp32' | 'fp16';
}

const ARCHITECTURES = [
  'f32c32-in',
  'sana',
  'f64c128',
  'f128c512',
] as const satisfies readonly BenchArchitecture[];

const both = (architecture: BenchArchitecture, size: number): Case[] =>
  (['encode', 'decode'] as const).map((operation) => ({
    architecture,
    operation,
    size,
    batch: 1,
    dtype: 'fp32',
  }));

/**
 * Full: every architecture's encode and decode at 256² (batch 1, fp32); f32c32-in encode at 512²;
 * for sana, the deployed one, decode at 512², batch 4 at 256², and fp16 at 256²; DC-AE 1.5
 * f64c128 encode and decode at 512². That is about
 * 10 TFLOP per sample round: the whole matrix (`--full-matrix`: 512² and 1024², batch 4 and fp16
 * for every architecture) would take many hours on 2 cores.
 */
const FULL: readonly Case[] = [
  ...ARCHITECTURES.flatMap((a) => both(a, 256)),
  { architecture: 'f32c32-in', operation: 'encode', size: 512, batch: 1, dtype: 'fp32' },
  { architecture: 'sana', operation: 'decode', size: 512, batch: 1, dtype: 'fp32' },
  { architecture: 'sana', operation: 'decode', size: 256, batch: 4, dtype: 'fp32' },
  { architecture: 'sana', operation: 'decode', size: 256, batch: 1, dtype: 'fp16' },
  // DC-AE 1.5 f64c128 (ResBlocks only, no latent shortcuts) at 512², its deployment size.
  ...both('f64c128-1.5', 512),
];

/** Quick: the same cases on tiny widths at 64² (f128: 128², its smallest image; f64 512² cases: 128²). */
const QUICK: readonly Case[] = FULL.map((c) => ({
  ...c,
  size: c.architecture === 'f128c512' ? 128 : c.size === 512 ? 128 : 64,
}));

/**
 * The cross product of the command line's case matrix, a dimension not given being all four
 * architectures, 256², batch 1 or fp32; undefined when none was given. Sizes an architecture
 * cannot take (not a multiple of its compression) are left out and listed.
 */
function matrixCases(matrix: CaseMatrix): { cases: Case[]; left: string[] } | undefined {
  if (Object.keys(matrix).length === 0) return undefined;
  if (matrix.dtypes?.includes('int8'))
    throw new Error(
      '--dtype int8 is not an ae-latency case: int8 is timed by `pnpm bench int8` and `runtimes --arch f32c32-in --dtype int8`',
    );
  const architectures = ARCHITECTURES.filter((a) => matrix.architectures?.includes(a) ?? true);
  const cases: Case[] = [];
  const left: string[] = [];
  for (const architecture of architectures)
    for (const dtype of (matrix.dtypes ?? ['fp32']) as readonly ('fp32' | 'fp16')[])
      for (const operation of ['encode', 'decode'] as const)
        for (const size of matrix.sizes ?? [256])
          for (const batch of matrix.batches ?? [1]) {
            const c: Case = { architecture, operation, size, batch, dtype };
            if (size % COMPRESSION[architecture] === 0) cases.push(c);
            else left.push(caseName(c));
          }
  return { cases, left };
}

const COMPRESSION: Readonly<Record<(typeof ARCHITECTURES)[number], number>> = {
  'f32c32-in': 32,
  sana: 32,
  f64c128: 64,
  f128c512: 128,
};

const caseName = (c: Case): string => `${c.architecture} ${c.operation} ${c.size}² b${c.batch} ${c.dtype}`;

export const aeLatency: Scenario = {
  name: 'ae-latency',
  title: 'Autoencoder encode/decode latency, GFLOP/s against the measured peak, peak RSS',
  description:
    'Encode and decode times of random-weight DC-AE models at their real widths (dc-ae-f32c32-in-1.0, ' +
    '-f32c32-sana-1.0, -f64c128-in-1.0, -f128c512-in-1.0: 1.3, 1.2, 2.7 and 4.5 GB of float32, written once into ' +
    'the cache directory) on onnxruntime-node CPU. Each architecture and precision runs in its own child process: ' +
    'sessions are set up on a 1-cell input first, every case then runs once (a warm-up, in ascending order of work, ' +
    'where its peak RSS is read), then the cases run side by side in rounds. Full: encode and decode at 256² for ' +
    'all four, f32c32-in encode at 512², for sana decode at 512², at batch 4 and in fp16 (`dtype: "fp16"`), ' +
    'and DC-AE 1.5 f64c128 (dc-ae-f64c128-1.5, 2.9 GB) encode and decode at 512²; ' +
    '--full-matrix or --sizes/--batch/--dtype/--arch select other cases (see the notes). Roofline: achieved GFLOP/s ' +
    '= 2 · countMacs / median time, as a percentage of the peak `measurePeakGflops` measures in the same run ' +
    '(2048³ MatMul and 3×3 Conv 512→512 at 64², best run, before and after the cases). Peak RSS of a case: ' +
    'VmHWM of its process during its warm-up run, reset before it (weights and sessions included). ' +
    'Quick: 1/16 widths at 64² (f128: 128²).',
  async run(context) {
    const { quick } = context;
    const picked = matrixCases(context.matrix);
    const cases = picked?.cases ?? (quick ? QUICK : FULL);
    if (cases.length === 0)
      throw new Error(`the case matrix is empty: ${picked?.left.join(', ')} do not fit`);
    const sampling = { ...context.sampling, samples: quick ? 1 : context.sampling.samples };
    const runtime = await context.runtime();
    // The roofline's ceiling, measured before and after the cases (the higher counts).
    const { runs: peakRuns, measure: measurePeak } = peakRecorder(
      runtime,
      quick ? QUICK_ROOFLINE_PEAK : ROOFLINE_PEAK,
      (m) => context.log(m),
    );
    await measurePeak();

    const models = new Map<BenchArchitecture, BenchModel>();
    for (const c of cases) {
      if (!models.has(c.architecture))
        models.set(
          c.architecture,
          await benchModel(context.cacheDir, c.architecture, { tiny: quick, log: (m) => context.log(m) }),
        );
    }

    const measured: MeasuredCase[] = [];
    const figures: Figure[] = [];
    // One process per architecture and precision.
    const groups = new Map<string, Case[]>();
    for (const c of cases)
      groups.set(`${c.architecture} ${c.dtype}`, [...(groups.get(`${c.architecture} ${c.dtype}`) ?? []), c]);
    for (const [group, members] of groups) {
      const model = models.get(members[0]!.architecture)!;
      const parts = [...new Set(members.map((c) => (c.operation === 'encode' ? 'encoder' : 'decoder')))];
      context.log(
        `${group}: loading ${model.label} (${(model.weightBytes / MB).toFixed(0)} MB) in a child process`,
      );
      const worker = await startWorker(context.cacheDir, {
        folder: model.folder,
        config: model.config,
        parts,
        dtype: members[0]!.dtype,
      });
      try {
        const workerCases: WorkerCase[] = members.map((c) => {
          const side = c.operation === 'encode' ? c.size : c.size / model.f;
          const channels = c.operation === 'encode' ? 3 : model.latentChannels;
          const macs = model.macs(c.size, c.size)[c.operation === 'encode' ? 'encoder' : 'decoder'];
          return {
            name: caseName(c),
            worker,
            run: { operation: c.operation, shape: [c.batch, channels, side, side] },
            work: { amount: (2 * macs * c.batch) / 1e9, unit: 'GFLOP' },
            images: c.batch,
          };
        });
        const result = await compareWorkerCases(workerCases, sampling);
        measured.push(...result.cases);
        figures.push({
          name: `${group}: RSS after load (no session yet)`,
          value: worker.afterLoad.rss / MB,
          unit: 'MB',
        });
        for (const setup of result.setup) {
          const part = setup.operation === 'encode' ? 'encoder' : 'decoder';
          figures.push(
            {
              name: `${group}: ${part} graph build + session setup (+ a 1-cell run)`,
              value: setup.ms,
              unit: 'ms',
            },
            {
              name: `${group}: peak RSS during ${part} session setup`,
              value: setup.peakRss / MB,
              unit: 'MB',
            },
          );
        }
      } finally {
        await worker.close();
      }
    }

    await measurePeak();
    const peak = peakRuns.reduce((best, r) => (r.peakGflops > best.peakGflops ? r : best));

    for (const m of measured) {
      const gflops = m.series.throughput!.median;
      figures.push(
        {
          name: `${m.case.name}: images/s`,
          value: m.case.images / (m.series.medianMs / 1000),
          unit: 'img/s',
        },
        {
          name: `${m.case.name}: % of peak (median GFLOP/s ÷ peak)`,
          value: (100 * gflops) / peak.peakGflops,
          unit: '%',
        },
        { name: `${m.case.name}: peak RSS`, value: m.peakRss / MB, unit: 'MB' },
      );
    }
    figures.unshift(
      {
        name: 'peak GFLOP/s (best of MatMul and Conv, before and after the cases)',
        value: peak.peakGflops,
        unit: 'GFLOP/s',
      },
      { name: 'peak GFLOP/s measured before the cases', value: peakRuns[0]!.peakGflops, unit: 'GFLOP/s' },
      { name: 'peak GFLOP/s measured after the cases', value: peakRuns[1]!.peakGflops, unit: 'GFLOP/s' },
      { name: 'MatMul GFLOP/s (median)', value: peak.matmulGflops.median, unit: 'GFLOP/s' },
      { name: 'Conv GFLOP/s (median)', value: peak.convGflops.median, unit: 'GFLOP/s' },
    );
    for (const [a, model] of models)
      figures.push({ name: `${a}: weights`, value: model.weightBytes / MB, unit: 'MB' });

    const ratios = comparisons(cases).filter(
      (r) => measured.some((m) => m.case.name === r.of) && measured.some((m) => m.case.name === r.to),
    );

    const notReset = measured.some((m) => !m.peakReset);
    return {
      params: {
        cases: cases.length,
        architectures: ARCHITECTURES.join(', '),
        caseSet: picked ? 'command-line matrix' : quick ? 'quick' : 'default full',
        sizes: [...new Set(cases.map((c) => c.size))].join(', '),
        batches: [...new Set(cases.map((c) => c.batch))].join(', '),
        dtypes: [...new Set(cases.map((c) => c.dtype))].join(', '),
        samplesPerCase: sampling.samples,
        peakGflops: Number(peak.peakGflops.toFixed(1)),
        device: peak.device,
      },
      series: measured.map((m) => m.series),
      ratios,
      figures,
      notes: [
        picked
          ? `Cases from the command line's matrix: ${cases.length} of the 96-case full matrix (4 architectures × encode/decode × 256², 512², 1024² × batch 1, 4 × fp32, fp16)${picked.left.length > 0 ? `; left out, size not a multiple of the compression: ${picked.left.join(', ')}` : ''}.`
          : `Default case set: ${cases.length} of the 96-case full matrix (${cases.map(caseName).join('; ')}). The rest (512² and batch 4 for every architecture, 1024², fp16 beyond sana) is left out to keep a full run within ~8 minutes on 2 cores (session setup of the large models included); select it with --full-matrix, or part of it with --sizes, --batch, --dtype, --arch.`,
        ...(quick
          ? [
              'Quick mode: tiny widths (1/16, latent ≤ 8 channels), one sample; the figures only show that everything runs.',
            ]
          : []),
        'Weights are random (uniform ±1/√fan-in), so times are those of the real architectures, not reconstructions.',
        'GFLOP counts only convolutions and attention matmuls (`countMacs`); norms, activations and reshapes add memory traffic, not FLOPs.',
        notReset
          ? 'Peak RSS could not be reset between runs (/proc/self/clear_refs not writable): it is the running maximum of each process.'
          : "Peak RSS of a case: VmHWM during its first run (reset before it). Each process first sets its sessions up on a 1-cell input, then runs its cases in ascending order of work, so the figure is the resident model (weights, sessions) plus that case's activations; onnxruntime's arena keeps buffers, so later samples reuse them.",
      ],
    };
  },
};

/**
 * Each batch-1 fp32 case against f32c32-in's (same operation and size), against its own
 * architecture's smallest size, and every batch-4 or fp16 case against its batch-1 fp32 twin.
 */
function comparisons(cases: readonly Case[]): { of: string; to: string }[] {
  const plain = (c: Case): boolean => c.batch === 1 && c.dtype === 'fp32';
  const same = (a: Case, b: Case): boolean =>
    a.architecture === b.architecture && a.operation === b.operation;
  const pairs: { of: string; to: string }[] = [];
  for (const c of cases) {
    if (!plain(c)) {
      const twin = cases.find((r) => plain(r) && same(r, c) && r.size === c.size);
      if (twin) pairs.push({ of: caseName(c), to: caseName(twin) });
      continue;
    }
    const reference = cases.find(
      (r) => plain(r) && r.architecture === 'f32c32-in' && r.operation === c.operation && r.size === c.size,
    );
    if (reference && reference !== c) pairs.push({ of: caseName(c), to: caseName(reference) });
    const smallest = cases
      .filter((r) => plain(r) && same(r, c))
      .reduce<Case | undefined>(
        (best, r) => (best === undefined || r.size < best.size ? r : best),
        undefined,
      );
    if (smallest && smallest.size < c.size) pairs.push({ of: caseName(c), to: caseName(smallest) });
  }
  return pairs;
}
