/**
 * The runtime side of `worker` mode: one worker (a worker_threads Worker or a forked child
 * process running `ort-host.js`) per runtime, started on first use, with requests sent one at a
 * time in call order.
 *
 * Abort while a request runs: the caller's promise rejects at once. A 'process' worker is killed
 * (SIGKILL), which stops the native work; the next request starts a fresh one. A 'thread' worker
 * cannot be stopped inside a native onnxruntime call — `worker.terminate()` or `process.exit()`
 * at that moment aborts the whole process (measured with onnxruntime-node 1.30.0: "terminate called
 * after throwing an instance of 'Napi::Error'") — so it finishes the call, its result is dropped, and
 * later requests wait for it.
 */
import { fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DcaeError } from '@dcae/core';

export type WorkerKind = 'thread' | 'process';

/** The worker's answer to a failed request, rebuilt on this side (the original is lost on the way). */
export class WorkerError extends Error {
  constructor(name: string, message: string) {
    super(message);
    this.name = name;
  }
}

interface Pending {
  resolve(value: unknown): void;
  reject(error: Error): void;
}

type HostReply =
  | { id: number; ok: true; result: unknown }
  | { id: number; ok: false; error: { name: string; message: string } };

/** One started worker and its in-flight requests. */
class Connection {
  readonly #pending = new Map<number, Pending>();
  readonly #post: (message: object) => void;
  readonly #handle: Worker | ChildProcess;
  #nextId = 1;
  #stderr = '';
  exited = false;

  constructor(kind: WorkerKind, entry: URL) {
    if (kind === 'thread') {
      const worker = new Worker(entry, { execArgv: [] });
      worker.on('message', (reply: HostReply) => this.#settle(reply));
      worker.on('error', (error) => this.#exit(error.message));
      worker.on('exit', (code) => this.#exit(`exit code ${code}`));
      this.#post = (message) => worker.postMessage(message);
      this.#handle = worker;
    } else {
      const child = fork(fileURLToPath(entry), [], {
        serialization: 'advanced',
        execArgv: [],
        stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      });
      child.on('message', (reply: HostReply) => this.#settle(reply));
      child.stderr?.on('data', (chunk: Buffer) => {
        this.#stderr = (this.#stderr + chunk.toString()).slice(-2000);
      });
      child.on('exit', (code, signal) =>
        this.#exit(signal === null ? `exit code ${code}` : `signal ${signal}`),
      );
      child.on('error', (error) => this.#exit(error.message));
      this.#post = (message) => child.send(message);
      this.#handle = child;
    }
    this.unref();
  }

  /** Sends a request; its tensors are copied (the caller's buffers stay usable), outputs come back transferred. */
  call(message: Record<string, unknown>): Promise<unknown> {
    if (this.exited) return Promise.reject(new WorkerError('Error', 'the onnxruntime worker has stopped'));
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#post({ ...message, id });
    });
  }

  /** Stops the worker. Safe for a process at any time; for a thread only while no native call runs. */
  stop(): void {
    if (this.#handle instanceof Worker) void this.#handle.terminate();
    else this.#handle.kill('SIGKILL');
    this.#exit('stopped by dcae');
  }

  /** A referenced worker keeps the process alive: only while requests are queued or running. */
  ref(): void {
    this.#handle.ref();
    if (!(this.#handle instanceof Worker)) this.#handle.channel?.ref();
  }

  unref(): void {
    this.#handle.unref();
    if (!(this.#handle instanceof Worker)) this.#handle.channel?.unref();
  }

  #settle(reply: HostReply): void {
    const pending = this.#pending.get(reply.id);
    this.#pending.delete(reply.id);
    if (reply.ok) pending?.resolve(reply.result);
    else pending?.reject(new WorkerError(reply.error.name, reply.error.message));
  }

  #exit(how: string): void {
    if (this.exited) return;
    this.exited = true;
    const stderr = this.#stderr.trim();
    const error = new WorkerError(
      'Error',
      `the onnxruntime worker stopped (${how})${stderr === '' ? '' : `: ${stderr}`}`,
    );
    for (const pending of this.#pending.values()) pending.reject(error);
    this.#pending.clear();
  }
}

/** A started worker plus its generation: sessions created in an earlier generation are gone. */
export interface WorkerLease {
  readonly connection: Connection;
  readonly generation: number;
}

export class WorkerHost {
  readonly kind: WorkerKind;
  readonly #entry: URL;
  #connection: Connection | undefined;
  #generation = 0;
  #tail: Promise<void> = Promise.resolve();
  #jobs = 0;
  #disposed = false;

  constructor(kind: WorkerKind, entry: URL) {
    this.kind = kind;
    this.#entry = entry;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /**
   * Runs `job` after every earlier job has finished. The returned promise rejects with ABORTED as
   * soon as `signal` aborts; see the file comment for what happens to the work itself.
   */
  schedule<T>(
    job: (lease: WorkerLease) => Promise<T>,
    signal?: AbortSignal,
    what = 'The request',
  ): Promise<T> {
    if (this.#disposed) return Promise.reject(disposedError());
    if (signal?.aborted) return Promise.reject(abortedError(what, signal));
    return new Promise<T>((resolve, reject) => {
      let lease: WorkerLease | undefined;
      const onAbort = (): void => {
        reject(abortedError(what, signal!));
        if (lease !== undefined && this.kind === 'process') lease.connection.stop();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#started();
      this.#tail = this.#tail.then(async () => {
        try {
          if (signal?.aborted) return;
          if (this.#disposed) throw disposedError();
          lease = this.#lease();
          resolve(await job(lease));
        } catch (error) {
          reject(this.#disposed ? disposedError() : (error as Error));
        } finally {
          signal?.removeEventListener('abort', onAbort);
          this.#finished();
        }
      });
    });
  }

  /**
   * Rejects queued requests with SESSION_DISPOSED, lets the running one finish (a thread cannot be
   * stopped inside onnxruntime), then stops the worker.
   */
  async dispose(): Promise<void> {
    this.#disposed = true;
    await this.#tail;
    this.#connection?.stop();
    this.#connection = undefined;
  }

  #lease(): WorkerLease {
    if (this.#connection === undefined || this.#connection.exited) {
      this.#connection = new Connection(this.kind, this.#entry);
      this.#generation++;
      if (this.#jobs > 0) this.#connection.ref();
    }
    return { connection: this.#connection, generation: this.#generation };
  }

  #started(): void {
    if (this.#jobs++ === 0) this.#connection?.ref();
  }

  #finished(): void {
    if (--this.#jobs === 0) this.#connection?.unref();
  }
}

export function abortedError(what: string, signal: AbortSignal): DcaeError {
  return new DcaeError('ABORTED', `${what} was aborted.`, { cause: signal.reason });
}

function disposedError(): DcaeError {
  return new DcaeError(
    'SESSION_DISPOSED',
    'The runtime was disposed; create a new runtime to create or run sessions.',
  );
}
