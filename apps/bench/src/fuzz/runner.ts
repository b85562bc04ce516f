import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { ChildMessage, FuzzJob } from './child.js';
import { PROGRESS_FD } from './child.js';
import { fuzzInput } from './mutate.js';
import type { Corpus } from './mutate.js';
import type { FuzzTargetName } from './targets.js';

export interface FuzzOptions {
  readonly target: FuzzTargetName;
  readonly corpus: Corpus;
  readonly seed: number;
  readonly seconds: number;
  /** Longest one input may run before it counts as a hang. */
  readonly timeoutMs: number;
  /** Where findings are written (`<target>-<sha256 prefix>.bin` and `index.json`). */
  readonly outDir: string;
  /** The script the child runs (this app's built fuzz.js) and its arguments. */
  readonly childScript: string;
  readonly childArgs: readonly string[];
  /** V8 heap limit of the child, in MiB: an input that needs more is a crash finding. */
  readonly heapMiB: number;
}

export interface FuzzFinding {
  readonly file: string;
  readonly target: FuzzTargetName;
  readonly kind: 'throw' | 'hang' | 'crash';
  readonly error: string;
  readonly stack: string;
  readonly seed: number;
  readonly iteration: number;
}

export interface FuzzSummary {
  readonly target: FuzzTargetName;
  readonly iterations: number;
  readonly seconds: number;
  readonly findings: FuzzFinding[];
  /** Children started (1 + one per hang or crash). */
  readonly children: number;
}

/**
 * Fuzzes one target for `seconds` in child processes. The child writes each iteration's number
 * to a pipe before running it; a watchdog kills a child whose current input has run longer than
 * `timeoutMs` (a hang), and a child that dies on its own (native crash, out of memory) is a crash.
 * Either way the input is made again from (seed, iteration), saved, and a new child goes on from
 * the next iteration. A child that stops before its first input is an error, not a finding.
 */
export async function fuzzTarget(options: FuzzOptions): Promise<FuzzSummary> {
  const started = Date.now();
  const until = started + options.seconds * 1000;
  const findings: FuzzFinding[] = [];
  let next = 0;
  let children = 0;
  while (Date.now() < until) {
    children++;
    const outcome = await runChild(options, next, until);
    for (const thrown of outcome.thrown) {
      findings.push(await saveFinding(options, 'throw', thrown.iteration, thrown.error, thrown.stack));
    }
    if (outcome.kind === 'done') {
      next = outcome.next;
      break;
    }
    if (outcome.last < next) {
      throw new Error(`The ${options.target} fuzz child stopped before running any input: ${outcome.error}`);
    }
    findings.push(await saveFinding(options, outcome.kind, outcome.last, outcome.error, ''));
    next = outcome.last + 1;
  }
  return {
    target: options.target,
    iterations: next,
    seconds: (Date.now() - started) / 1000,
    findings,
    children,
  };
}

type ChildOutcome = { thrown: Extract<ChildMessage, { kind: 'throw' }>[] } & (
  { kind: 'done'; next: number } | { kind: 'hang' | 'crash'; last: number; error: string }
);

function runChild(options: FuzzOptions, from: number, until: number): Promise<ChildOutcome> {
  const child = fork(options.childScript, [...options.childArgs], {
    execArgv: [`--max-old-space-size=${options.heapMiB}`],
    serialization: 'advanced',
    stdio: ['ignore', 'inherit', 'pipe', 'pipe', 'ipc'],
  });
  const thrown: Extract<ChildMessage, { kind: 'throw' }>[] = [];
  let last = from - 1;
  let lastChange = Number.POSITIVE_INFINITY; // the clock starts when the job is sent
  let stderrTail = '';
  let hung = false;
  let done: number | undefined;

  let partial = '';
  (child.stdio[PROGRESS_FD] as Readable).on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString('latin1')).split('\n');
    partial = lines.pop() ?? '';
    const latest = lines.at(-1);
    if (latest !== undefined) {
      last = Number(latest);
      lastChange = Date.now();
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString('utf8')).slice(-2000);
  });
  child.on('message', (message: ChildMessage) => {
    if (message.kind === 'ready') {
      const job: FuzzJob = {
        target: options.target,
        corpus: options.corpus,
        seed: options.seed,
        from,
        until,
      };
      child.send(job);
      lastChange = Date.now();
    } else if (message.kind === 'throw') thrown.push(message);
    else done = message.next;
  });
  const watchdog = setInterval(() => {
    if (Date.now() - lastChange > options.timeoutMs) {
      hung = true;
      child.kill('SIGKILL');
    }
  }, 50);

  return new Promise<ChildOutcome>((resolve) => {
    child.on('exit', (code, signal) => {
      clearInterval(watchdog);
      if (hung) {
        resolve({
          thrown,
          kind: 'hang',
          last,
          error: `no progress for ${options.timeoutMs} ms on one input`,
        });
      } else if (done !== undefined && code === 0) {
        resolve({ thrown, kind: 'done', next: done });
      } else {
        const how = signal === null ? `exit code ${code}` : `signal ${signal}`;
        resolve({ thrown, kind: 'crash', last, error: `child died (${how}): ${stderrTail.trim()}` });
      }
    });
  }).finally(() => killIfAlive(child));
}

function killIfAlive(child: ChildProcess): void {
  if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
}

/** Writes the input of `iteration` as `<target>-<sha256 prefix>.bin` and adds it to index.json. */
async function saveFinding(
  options: FuzzOptions,
  kind: FuzzFinding['kind'],
  iteration: number,
  error: string,
  stack: string,
): Promise<FuzzFinding> {
  const input = fuzzInput(options.corpus, options.seed, iteration);
  const hash = createHash('sha256').update(input).digest('hex').slice(0, 16);
  const finding: FuzzFinding = {
    file: `${options.target}-${hash}.bin`,
    target: options.target,
    kind,
    error,
    stack,
    seed: options.seed,
    iteration,
  };
  await mkdir(options.outDir, { recursive: true });
  await writeFile(join(options.outDir, finding.file), input);
  const indexPath = join(options.outDir, 'index.json');
  const index = await readIndex(indexPath);
  if (!index.some((entry) => entry.file === finding.file)) {
    index.push(finding);
    await writeFile(indexPath, `${JSON.stringify(index, null, 2)}\n`);
  }
  return finding;
}

async function readIndex(path: string): Promise<FuzzFinding[]> {
  try {
    return JSON.parse(await readFile(path, 'utf8')) as FuzzFinding[];
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
}
