import type { NodeRuntime } from '@dcae/runtime-adapters/node';

/** How `compareCases` samples (see measure.ts). */
export interface CompareOptions {
  /** Unmeasured runs of every case first (JIT, page cache, onnxruntime's first-run allocations). */
  readonly warmup: number;
  readonly samples: number;
  readonly log?: (message: string) => void;
}

/**
 * A benchmark scenario: a named set of cases measured side by side in one run. Scenarios live one
 * per file in `scenarios/` and are listed in `scenarios/index.ts`.
 */
export interface Scenario {
  /** Command-line name, kebab-case: `pnpm bench <name>`. */
  readonly name: string;
  /** One line for tables and `--list`. */
  readonly title: string;
  /** What is measured and how to read it (shown in the Markdown report). */
  readonly description: string;
  run(context: ScenarioContext): Promise<ScenarioOutcome>;
}

export interface ScenarioContext {
  /** Tiny sizes and few samples: a smoke run (CI), not a measurement. */
  readonly quick: boolean;
  /** Where generated inputs are kept between runs. */
  readonly cacheDir: string;
  /** Progress for people, on stderr. */
  log(message: string): void;
  /** This run's warm-up and sample counts (and progress logging), for `compareCases`. */
  readonly sampling: CompareOptions;
  /** Runs `cases` side by side (see `compareCases`) with `sampling`. */
  compare(cases: readonly BenchCase[]): Promise<Series[]>;
  /** The shared onnxruntime-node runtime (CPU), created on first use and disposed after the run. */
  runtime(): Promise<NodeRuntime>;
  /**
   * Case dimensions picked on the command line (`--sizes`, `--batch`, `--dtype`, `--arch`,
   * `--full-matrix`), for scenarios with a case matrix (ae-latency); empty when none were given.
   */
  readonly matrix: CaseMatrix;
}

/** Each field given replaces that dimension's default set; a scenario runs their cross product. */
export interface CaseMatrix {
  readonly sizes?: readonly number[];
  readonly batches?: readonly number[];
  readonly dtypes?: readonly ('fp32' | 'fp16' | 'int8')[];
  readonly architectures?: readonly string[];
  /** diffusion-tokens: blocks per backbone (`--depth`). */
  readonly depth?: number;
}

/** What one run of a case processes, to turn times into throughput (MB/s, GFLOP/s). */
export interface Work {
  readonly amount: number;
  readonly unit: 'MB' | 'GFLOP';
}

export interface BenchCase {
  readonly name: string;
  readonly work?: Work;
  /** Does the measured work once; a returned promise is awaited (inside the timing). */
  run(): unknown;
  /**
   * The case times itself (e.g. inside a browser page, where the round trip from Node would add to
   * it): `run` then resolves to the milliseconds of its work, used instead of the time around it.
   */
  readonly timesItself?: boolean;
}

/** The measured runs of one case. */
export interface Series {
  readonly name: string;
  /** Milliseconds of each measured run, in order (warm-up runs excluded). */
  readonly samplesMs: readonly number[];
  readonly minMs: number;
  readonly medianMs: number;
  readonly maxMs: number;
  readonly work?: Work;
  /** Work per second at the median time (and at the best time, for peaks). */
  readonly throughput?: { readonly unit: string; readonly median: number; readonly best: number };
}

/** `value` = median time of `of` ÷ median time of `to`: 1 is parity, above 1 `of` is slower. */
export interface Ratio {
  readonly of: string;
  readonly to: string;
  readonly value: number;
}

/** A single number a scenario reports besides timings, e.g. a model size. */
export interface Figure {
  readonly name: string;
  readonly value: number;
  readonly unit: string;
}

export interface ScenarioOutcome {
  /** Sizes and settings that define the run (shapes, file sizes, sample counts). */
  readonly params: Readonly<Record<string, string | number | boolean>>;
  readonly series: readonly Series[];
  /** Series pairs to compare; the runner computes each ratio from the medians. */
  readonly ratios?: readonly { readonly of: string; readonly to: string }[];
  readonly figures?: readonly Figure[];
  readonly notes?: readonly string[];
  /** Cases that could not run here (no browser, no GPU), each with the reason: not failures. */
  readonly skipped?: readonly Skipped[];
}

export interface Skipped {
  readonly name: string;
  readonly reason: string;
}
