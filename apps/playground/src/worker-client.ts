/**
 * The page's side of the inference worker (worker.ts): starts it with a runtime choice, sends one
 * job at a time and resolves it with the worker's final reply, passes progress and step events on,
 * and cancels. onnxruntime-web cannot interrupt a run, so Cancel first asks the job to stop and,
 * after 250 ms, terminates the worker: the job ends at once and a fresh worker starts.
 */
import type { Reply, Request, RuntimeChoice, RuntimeInfo } from './protocol.js';

/** A failure to show: a dcae error code (or ABORTED for a cancel, WORKER when it failed to start). */
export class JobError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** A request without its job number (distributes over the union). */
export type JobRequest<R = Exclude<Request, { type: 'init' | 'cancel' }>> = R extends unknown
  ? Omit<R, 'job'>
  : never;

export type JobEvent = Extract<Reply, { type: 'progress' | 'step' | 'preview' }>;

export interface WorkerClientOptions {
  readonly runtime: () => RuntimeChoice;
  /** A job's progress and sampler steps. */
  readonly onEvent: (event: JobEvent) => void;
  /** The worker was terminated: whatever it had loaded is gone. */
  readonly onStopped: () => void;
}

/** Milliseconds a job gets to stop by itself before its worker is terminated. */
export const CANCEL_GRACE_MS = 250;

export class WorkerClient {
  #worker: Worker | undefined;
  #ready: Promise<RuntimeInfo> | undefined;
  #pending: { id: number; resolve: (reply: Reply) => void; reject: (error: JobError) => void } | undefined;
  #nextJob = 1;

  constructor(private readonly options: WorkerClientOptions) {}

  get busy(): boolean {
    return this.#pending !== undefined;
  }

  /** Starts the worker (and its onnxruntime-web) with the chosen device and threads, once. */
  ensure(): Promise<RuntimeInfo> {
    if (this.#ready !== undefined) return this.#ready;
    const worker = new Worker(new URL('./worker.ts', import.meta.url), {
      type: 'module',
      name: 'dcae-inference',
    });
    this.#worker = worker;
    this.#ready = new Promise<RuntimeInfo>((resolve, reject) => {
      worker.addEventListener('message', (event: MessageEvent<Reply>) => {
        const reply = event.data;
        if (reply.type === 'ready') resolve(reply.runtime);
        else if (reply.type === 'failed' && reply.job === undefined)
          reject(new JobError(reply.code, reply.message));
        else this.#onReply(reply);
      });
      worker.addEventListener('error', (event) =>
        reject(new JobError('WORKER', event.message || 'The worker failed to start.')),
      );
    });
    worker.postMessage({ type: 'init', runtime: this.options.runtime() } satisfies Request);
    return this.#ready;
  }

  /** Sends one job and resolves with its final reply (rejects with a JobError on failure or cancel). */
  job<T extends Reply>(request: JobRequest, transfer: Transferable[] = []): Promise<T> {
    const id = this.#nextJob++;
    return new Promise<T>((resolve, reject) => {
      this.#pending = { id, resolve: resolve as (reply: Reply) => void, reject };
      this.#worker!.postMessage({ ...request, job: id }, transfer);
    });
  }

  /** Asks the job to stop; when it does not within the grace time, stops the worker. */
  cancel(): void {
    const job = this.#pending;
    if (job === undefined) return;
    this.#worker!.postMessage({ type: 'cancel', job: job.id } satisfies Request);
    setTimeout(() => {
      if (this.#pending !== job) return;
      this.#pending = undefined;
      this.stop();
      job.reject(
        new JobError(
          'ABORTED',
          'Cancelled: the worker was stopped mid-run (the model reloads on the next run).',
        ),
      );
      // A fresh worker starts onnxruntime-web while the user decides what to do next.
      void this.ensure().catch(() => undefined);
    }, CANCEL_GRACE_MS);
  }

  /**
   * Asks the running job to stop without stopping the worker (and its loaded model): for work
   * whose result is no longer wanted, such as a stale re-decode of the channel slider. The job
   * ends at its next check with ABORTED, or completes if it was past its last check.
   */
  abandon(): void {
    const job = this.#pending;
    if (job !== undefined) this.#worker?.postMessage({ type: 'cancel', job: job.id } satisfies Request);
  }

  /** Stops the worker at once, even inside a run; the next job starts a fresh one. */
  stop(): void {
    this.#worker?.terminate();
    this.#worker = undefined;
    this.#ready = undefined;
    this.options.onStopped();
  }

  #onReply(reply: Reply): void {
    const job = this.#pending;
    if (reply.type === 'ready' || job === undefined || reply.job !== job.id) return;
    if (reply.type === 'progress' || reply.type === 'step' || reply.type === 'preview') {
      this.options.onEvent(reply);
      return;
    }
    this.#pending = undefined;
    if (reply.type === 'failed') job.reject(new JobError(reply.code, reply.message));
    else if (reply.type === 'cancelled') job.reject(new JobError('ABORTED', 'Cancelled.'));
    else job.resolve(reply);
  }
}
