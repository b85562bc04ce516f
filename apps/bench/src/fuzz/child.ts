import { writeSync } from 'node:fs';
import { setImmediate as yieldToEventLoop } from 'node:timers/promises';
import { DcaeError } from '@dcae/core';
import { fuzzInput } from './mutate.js';
import type { Corpus } from './mutate.js';
import { FUZZ_TARGETS } from './targets.js';
import type { FuzzTargetName } from './targets.js';

/** File descriptor the child writes each iteration's number to before running it (see runner.ts). */
export const PROGRESS_FD = 3;

export interface FuzzJob {
  readonly target: FuzzTargetName;
  readonly corpus: Corpus;
  readonly seed: number;
  /** First iteration to run. */
  readonly from: number;
  /** Date.now() at which to stop. */
  readonly until: number;
}

export type ChildMessage =
  | { readonly kind: 'ready' }
  | { readonly kind: 'throw'; readonly iteration: number; readonly error: string; readonly stack: string }
  | { readonly kind: 'done'; readonly next: number };

/** The line that identifies an error: its name and the first stack frame (where it was thrown). */
export function errorSignature(error: unknown): { error: string; stack: string } {
  if (!(error instanceof Error)) return { error: `non-Error value: ${String(error)}`, stack: '' };
  const stack = error.stack ?? '';
  const frames = stack.split('\n').filter((line) => line.trimStart().startsWith('at '));
  return { error: `${error.name}: ${error.message}`.slice(0, 300), stack: frames.slice(0, 8).join('\n') };
}

/**
 * Runs one fuzz job in this (child) process: every input's iteration number goes to
 * PROGRESS_FD first, so the parent knows which input hung or crashed the process; a throw other
 * than a DcaeError is sent once per thrown-at site. Yields to the event loop every 100 ms so
 * messages reach the parent.
 */
export async function runFuzzJob(job: FuzzJob, send: (message: ChildMessage) => void): Promise<void> {
  const target = FUZZ_TARGETS[job.target];
  const seen = new Set<string>();
  let iteration = job.from;
  while (Date.now() < job.until) {
    const sliceEnd = Math.min(job.until, Date.now() + 100);
    while (Date.now() < sliceEnd) {
      writeSync(PROGRESS_FD, `${iteration}\n`);
      try {
        await target.run(fuzzInput(job.corpus, job.seed, iteration));
      } catch (error) {
        if (!DcaeError.is(error)) {
          const signature = errorSignature(error);
          const site = `${error instanceof Error ? error.name : typeof error} ${signature.stack.split('\n')[0] ?? ''}`;
          if (!seen.has(site)) {
            seen.add(site);
            send({ kind: 'throw', iteration, ...signature });
          }
        }
      }
      iteration++;
    }
    await yieldToEventLoop();
  }
  send({ kind: 'done', next: iteration });
}
