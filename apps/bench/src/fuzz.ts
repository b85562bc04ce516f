/**
 * Mutation fuzzer for the parsers of untrusted input (docs/reliability.md test plan T3): nightly or by
 * hand, never in CI. See README.md, "Fuzzing".
 *
 *   node apps/bench/dist/fuzz.js --seconds 60 --seed 1 --target all
 */
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { runFuzzJob } from './fuzz/child.js';
import type { ChildMessage, FuzzJob } from './fuzz/child.js';
import { fuzzTarget } from './fuzz/runner.js';
import { FUZZ_TARGET_NAMES, FUZZ_TARGETS } from './fuzz/targets.js';
import type { FuzzTargetName } from './fuzz/targets.js';

/** The repository's fixtures/ folder, from this app's dist/fuzz.js. */
const FIXTURES = new URL('../../../fixtures/', import.meta.url);

const USAGE = `usage: node apps/bench/dist/fuzz.js [--seconds 60] [--seed 1] [--target ${FUZZ_TARGET_NAMES.join('|')}|all]
                 [--timeout-ms 2000] [--heap-mib 1024] [--out fixtures/regressions]`;

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      child: { type: 'boolean', default: false },
      seconds: { type: 'string', default: '60' },
      seed: { type: 'string', default: '1' },
      target: { type: 'string', default: 'all' },
      'timeout-ms': { type: 'string', default: '2000' },
      'heap-mib': { type: 'string', default: '1024' },
      out: {
        type: 'string',
        default: fileURLToPath(new URL('regressions/', FIXTURES)),
      },
      help: { type: 'boolean', default: false },
    },
  });
  if (values.child) return runChild();
  const seconds = Number(values.seconds);
  const seed = Number(values.seed);
  const timeoutMs = Number(values['timeout-ms']);
  const heapMiB = Number(values['heap-mib']);
  const targets: FuzzTargetName[] =
    values.target === 'all'
      ? [...FUZZ_TARGET_NAMES]
      : FUZZ_TARGET_NAMES.filter((name) => name === values.target);
  const valid =
    seconds > 0 &&
    Number.isSafeInteger(seed) &&
    seed >= 0 &&
    timeoutMs > 0 &&
    heapMiB > 0 &&
    targets.length > 0;
  if (values.help || !valid) {
    process.stderr.write(`${USAGE}\n`);
    return values.help ? 0 : 2;
  }

  let findings = 0;
  for (const target of targets) {
    const summary = await fuzzTarget({
      target,
      corpus: await FUZZ_TARGETS[target].corpus(FIXTURES),
      seed,
      seconds,
      timeoutMs,
      heapMiB,
      outDir: values.out,
      childScript: fileURLToPath(import.meta.url),
      childArgs: ['--child'],
    });
    const rate = Math.round(summary.iterations / summary.seconds);
    say(
      `${target}: ${summary.iterations} inputs in ${summary.seconds.toFixed(1)} s (${rate}/s), ` +
        `${summary.findings.length} findings, ${summary.children} child process(es)`,
    );
    for (const finding of summary.findings) {
      say(`  ${finding.kind} ${finding.file} (iteration ${finding.iteration}): ${finding.error}`);
      if (finding.stack) say(finding.stack.replace(/^/gm, '    '));
    }
    findings += summary.findings.length;
  }
  if (findings > 0) say(`Inputs and index.json written to ${values.out}`);
  return findings > 0 ? 1 : 0;
}

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Child side: says it is ready, runs the job the parent sends, then lets the process end. */
function runChild(): Promise<number> {
  const send = (message: ChildMessage): void => {
    process.send?.(message);
  };
  return new Promise((resolve, reject) => {
    process.once('message', (job: FuzzJob) => {
      runFuzzJob(job, send).then(() => {
        process.disconnect?.();
        resolve(0);
      }, reject);
    });
    send({ kind: 'ready' });
  });
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`${String(error instanceof Error ? error.stack : error)}\n`);
    process.exitCode = 1;
  },
);
