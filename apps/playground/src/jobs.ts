/**
 * One job at a time, for both views: the busy state, the status line, errors and cancellation.
 * A job that does not complete leaves its view on the last completed job with an outcome note
 * ("cancelled" or "failed") above it, never a mix of the two.
 */
import { DcaeError } from '@dcae/core';
import type { PageError, PageState, Store, View } from './state.js';
import { withGenerate, withReconstruct, withStatus } from './state.js';
import type { WorkerClient } from './worker-client.js';
import { JobError } from './worker-client.js';

/** What every view works with. */
export interface Page {
  readonly store: Store;
  readonly client: WorkerClient;
}

/** Any thrown value as a page error: dcae errors keep their code; anything else is INTERNAL. */
export function toJobError(error: unknown): JobError {
  if (error instanceof JobError) return error;
  if (DcaeError.is(error)) return new JobError(error.code, error.message);
  return new JobError('INTERNAL', error instanceof Error ? error.message : String(error));
}

/**
 * `state` after a failure: the error banner, the status line and (for a job) the view's outcome,
 * which puts the view back on its last completed job.
 */
export function failed(state: PageState, error: PageError, view = state.jobView, outcome = true): PageState {
  const hint =
    error.code === 'RUN_FAILED' && state.runtime?.devices[0] === 'webgpu'
      ? ' Switch the device to wasm.'
      : '';
  const text = `${error.code}: ${error.message}${hint}`;
  const next = withStatus(
    { ...state, phase: 'error', error: { code: error.code, message: error.message + hint } },
    text,
    true,
    view,
  );
  return outcome ? withOutcome(next, view, { kind: 'error', text }) : next;
}

function withOutcome(
  state: PageState,
  view: View,
  outcome: { kind: 'cancelled' | 'error'; text: string } | undefined,
): PageState {
  if (view === 'generate') return withGenerate(state, { outcome, sampling: undefined });
  const shows =
    outcome === undefined ? state.reconstruct.shows : state.reconstruct.result ? 'result' : 'preview';
  return withReconstruct(state, { outcome, shows });
}

/** Runs `work` as the page's one job in `view`'s controls. */
export async function runJob(page: Page, view: View, work: () => Promise<void>): Promise<void> {
  const { store, client } = page;
  if (client.busy || store.get().busy) return;
  store.update((s) =>
    withOutcome(
      {
        ...s,
        jobs: s.jobs + 1,
        jobView: view,
        busy: true,
        phase: 'running',
        progress: [],
        fraction: 0,
        cancelledAt: undefined,
        cancelMs: undefined,
        error: undefined,
      },
      view,
      undefined,
    ),
  );
  try {
    await work();
  } catch (error) {
    const failure = toJobError(error);
    store.update((s) => {
      if (failure.code !== 'ABORTED') return failed(s, failure, view);
      const cancelMs = s.cancelledAt === undefined ? undefined : performance.now() - s.cancelledAt;
      const text = `${failure.message}${cancelMs === undefined ? '' : ` (stopped ${cancelMs.toFixed(0)} ms after the click)`}`;
      return withOutcome(withStatus({ ...s, phase: 'cancelled', cancelMs }, text, false, view), view, {
        kind: 'cancelled',
        text,
      });
    });
  } finally {
    store.update((s) => ({ ...s, busy: false, fraction: 0 }));
  }
}

/** The Cancel buttons: asks the running job to stop (the client stops the worker if it must). */
export function cancel(page: Page): void {
  if (!page.client.busy) return;
  page.store.update((s) => withStatus({ ...s, cancelledAt: performance.now() }, 'Cancelling…'));
  page.client.cancel();
}
