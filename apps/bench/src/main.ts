import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { NodeRuntime } from '@dcae/runtime-adapters/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { machineInfo } from './machine.js';
import type { MachineInfo } from './machine.js';
import { collectGarbage, compareCases, formatMs, ratio } from './measure.js';
import type { ScenarioReport } from './report.js';
import { machineLine, runMarkdown, scenarioMarkdown, scenarioSvg } from './report.js';
import type { CaseMatrix, Scenario, ScenarioContext } from './scenario.js';
import { SCENARIOS } from './scenarios/index.js';

const USAGE = `Usage: pnpm bench [scenario...] [options]

Runs the named scenarios (default: all) and writes bench-results/<stamp>-<scenario>.{json,md,svg}
and bench-results/latest.md. Progress goes to stderr.

Options:
  --quick          tiny sizes and few samples: a smoke run that fails on errors, never on timings
  --samples <n>    measured runs per case (default 5, quick 2)
  --warmup <n>     unmeasured runs per case first (default 1)
  --out <dir>      results directory (default bench-results)
  --cache <dir>    generated inputs, kept between runs (default <out>/.cache)

Case matrix (ae-latency; any of these replaces the default case set with the cross product of
architectures × encode/decode × sizes × batches × dtypes; a list not given is all four
architectures, 256, batch 1, fp32):
  --sizes <list>   image sizes, e.g. 256,512,1024
  --batch <list>   batch sizes, e.g. 1,4
  --dtype <list>   fp32,fp16 (runtimes --arch f32c32-in: int8, calibrated on fixtures/photos)
  --arch <list>    f32c32-in,sana,f64c128,f128c512 (runtimes: f32c32-in runs the full-width
                   random-weight model instead of the tiny fixture, at the first of --sizes)
  --depth <n>      diffusion-tokens: blocks per backbone instead of the released 28, at the real
                   width (each block is the same, so per-step GFLOP/s and ratios stay close)
  --full-matrix    every list in full: 4 architectures × 2 × 3 sizes (256,512,1024) × 2 batches
                   (1,4) × 2 dtypes = 96 cases (many hours on a 2-core machine)
  --list           list the scenarios and exit
  --help           show this help
`;

const log = (message: string): void => {
  process.stderr.write(`${message}\n`);
};

function fail(message: string): never {
  log(`${message}\n\n${USAGE}`);
  process.exit(2);
}

function count(value: string | undefined, fallback: number, option: string, min: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min)
    fail(`--${option} must be an integer ≥ ${min}; got ${JSON.stringify(value)}.`);
  return n;
}

const MATRIX_DTYPES = ['fp32', 'fp16', 'int8'] as const;
/** What --full-matrix runs: int8 is a case of `runtimes --arch f32c32-in` only. */
const FULL_MATRIX_DTYPES = ['fp32', 'fp16'] as const;
const MATRIX_ARCHITECTURES = ['f32c32-in', 'sana', 'f64c128', 'f128c512'];

/** A comma-separated list, each item checked by `parse` (which fails with the option's name). */
function list<T>(
  value: string | undefined,
  option: string,
  expected: string,
  parse: (item: string) => T | undefined,
): T[] | undefined {
  if (value === undefined) return undefined;
  const items = value.split(',').map((item) => item.trim());
  const parsed = items.map(parse);
  const bad = items.filter((_, i) => parsed[i] === undefined);
  if (items.length === 0 || bad.length > 0)
    fail(`--${option}: ${bad.map((b) => JSON.stringify(b)).join(', ')} not accepted; expected ${expected}.`);
  return [...new Set(parsed as T[])];
}

function caseMatrix(values: {
  sizes?: string;
  batch?: string;
  dtype?: string;
  arch?: string;
  depth?: string;
  'full-matrix'?: boolean;
}): CaseMatrix {
  const positive = (max: number) => (item: string) => {
    const n = Number(item);
    return Number.isSafeInteger(n) && n >= 1 && n <= max ? n : undefined;
  };
  const full = values['full-matrix'] === true;
  const pick = <T>(given: T[] | undefined, all: readonly T[]): readonly T[] | undefined =>
    given ?? (full ? all : undefined);
  const matrix: CaseMatrix = {
    sizes: pick(list(values.sizes, 'sizes', 'integers from 1 to 8192', positive(8192)), [256, 512, 1024]),
    batches: pick(list(values.batch, 'batch', 'integers from 1 to 64', positive(64)), [1, 4]),
    dtypes: pick(
      list(values.dtype, 'dtype', MATRIX_DTYPES.join(', '), (d) => MATRIX_DTYPES.find((x) => x === d)),
      FULL_MATRIX_DTYPES,
    ),
    architectures: pick(
      list(values.arch, 'arch', MATRIX_ARCHITECTURES.join(', '), (a) =>
        MATRIX_ARCHITECTURES.find((x) => x === a),
      ),
      MATRIX_ARCHITECTURES,
    ),
    depth: list(values.depth, 'depth', 'an integer from 1 to 64', positive(64))?.[0],
  };
  return Object.fromEntries(Object.entries(matrix).filter(([, v]) => v !== undefined));
}

/** `2025-11-26T06:10:12.345Z` → `2025-11-26T06-10-12Z`: sortable and valid in file names. */
function stamp(date: Date): string {
  return `${date.toISOString().slice(0, 19).replace(/:/g, '-')}Z`;
}

/** Runs one scenario; a failure becomes a report with `error` so the other scenarios still run. */
async function runScenario(
  scenario: Scenario,
  context: ScenarioContext,
  machine: MachineInfo,
): Promise<ScenarioReport> {
  const t0 = performance.now();
  const head = {
    scenario: scenario.name,
    title: scenario.title,
    description: scenario.description,
    quick: context.quick,
    startedAt: new Date().toISOString(),
    machine,
  };
  try {
    const outcome = await scenario.run(context);
    return {
      ...head,
      durationMs: performance.now() - t0,
      params: {
        ...outcome.params,
        warmup: context.sampling.warmup,
        samples: context.sampling.samples,
        gcBetweenRuns: collectGarbage() !== undefined,
      },
      series: outcome.series,
      ratios: (outcome.ratios ?? []).map(({ of, to }) => ratio(outcome.series, of, to)),
      figures: outcome.figures ?? [],
      notes: outcome.notes ?? [],
      skipped: outcome.skipped ?? [],
    };
  } catch (error) {
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    log(`[${scenario.name}] FAILED: ${message}`);
    return {
      ...head,
      durationMs: performance.now() - t0,
      params: {},
      series: [],
      ratios: [],
      figures: [],
      notes: [],
      skipped: [],
      error: message,
    };
  }
}

async function main(): Promise<number> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      quick: { type: 'boolean', default: false },
      samples: { type: 'string' },
      warmup: { type: 'string' },
      out: { type: 'string', default: 'bench-results' },
      cache: { type: 'string' },
      list: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      batch: { type: 'string' },
      dtype: { type: 'string' },
      arch: { type: 'string' },
      depth: { type: 'string' },
      'full-matrix': { type: 'boolean', default: false },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (values.list) {
    for (const s of SCENARIOS) process.stdout.write(`${s.name.padEnd(20)} ${s.title}\n`);
    return 0;
  }
  const unknown = positionals.filter((name) => !SCENARIOS.some((s) => s.name === name));
  if (unknown.length > 0) {
    fail(
      `Unknown scenario ${unknown.map((n) => JSON.stringify(n)).join(', ')}; known: ${SCENARIOS.map((s) => s.name).join(', ')}.`,
    );
  }
  const selected = positionals.length > 0 ? SCENARIOS.filter((s) => positionals.includes(s.name)) : SCENARIOS;
  const quick = values.quick;
  const outDir = resolve(values.out);
  const cacheDir = resolve(values.cache ?? join(outDir, '.cache'));
  const warmup = count(values.warmup, 1, 'warmup', 0);
  const samples = count(values.samples, quick ? 2 : 5, 'samples', 1);
  const matrix = caseMatrix(values);

  let runtime: NodeRuntime | undefined;
  let runtimeName: string;
  try {
    runtime = createNodeRuntime();
    runtimeName = runtime.name;
  } catch (error) {
    runtimeName = `onnxruntime-node unavailable (${error instanceof Error ? error.message : String(error)})`;
  }
  const machine = machineInfo(runtimeName);
  log(`dcae bench${quick ? ' --quick' : ''}: ${selected.map((s) => s.name).join(', ')}`);
  log(`machine: ${machineLine(machine)}`);

  const reports: ScenarioReport[] = [];
  const runStamp = stamp(new Date());
  await mkdir(outDir, { recursive: true });
  try {
    for (const scenario of selected) {
      const prefix = `[${scenario.name}]`;
      const scenarioLog = (m: string): void => log(`${prefix} ${m}`);
      const sampling = { warmup, samples, log: scenarioLog };
      const context: ScenarioContext = {
        quick,
        cacheDir,
        log: scenarioLog,
        sampling,
        compare: (cases) => compareCases(cases, sampling),
        matrix,
        runtime: async () => {
          if (!runtime) throw new Error(`onnxruntime-node is needed for this scenario: ${runtimeName}`);
          return runtime;
        },
      };
      scenarioLog(`start (${warmup} warm-up, ${samples} samples per case)`);
      const file = join(outDir, `${runStamp}-${scenario.name}`);
      const result = await runScenario(scenario, context, machine);
      const svg = scenarioSvg(result);
      if (svg !== undefined) await writeFile(`${file}.svg`, svg);
      const report = svg === undefined ? result : { ...result, chart: `${runStamp}-${scenario.name}.svg` };
      reports.push(report);
      await writeFile(`${file}.json`, `${JSON.stringify(report, null, 2)}\n`);
      await writeFile(`${file}.md`, scenarioMarkdown(report));
      if (!report.error) {
        for (const s of report.series) {
          const speed = s.throughput ? `, ${s.throughput.median.toFixed(1)} ${s.throughput.unit}` : '';
          scenarioLog(`${s.name}: median ${formatMs(s.medianMs)}${speed}`);
        }
        for (const r of report.ratios) scenarioLog(`${r.of} ÷ ${r.to}: ${r.value.toFixed(2)}×`);
        for (const s of report.skipped) scenarioLog(`skipped ${s.name}: ${s.reason}`);
      }
      scenarioLog(`wrote ${file}.json`);
    }
  } finally {
    await runtime?.dispose();
  }
  await writeFile(join(outDir, 'latest.md'), runMarkdown(reports, machine));
  log(`wrote ${join(outDir, 'latest.md')}`);
  const failed = reports.filter((r) => r.error !== undefined);
  if (failed.length > 0)
    log(`${failed.length} scenario(s) failed: ${failed.map((r) => r.scenario).join(', ')}`);
  return failed.length > 0 ? 1 : 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  },
);
