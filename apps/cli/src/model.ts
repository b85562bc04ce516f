import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import type { NodeAutoencoder } from '@dcae/autoencoder/node';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import type { CommonOptions } from './options.js';
import type { Reporter } from './reporter.js';

/** A loaded model and the runtime it runs on; `close()` releases both. */
export interface OpenModel {
  readonly autoencoder: NodeAutoencoder;
  readonly runtime: RuntimeV1;
  close(): Promise<void>;
}

/**
 * Starts the node runtime (sessions in a worker thread, so Ctrl-C and progress stay responsive
 * while a model runs) and loads the model folder on it.
 */
export async function openModel(
  options: CommonOptions,
  reporter: Reporter,
  signal: AbortSignal,
): Promise<OpenModel> {
  const runtime = createNodeRuntime({
    devices: options.device === 'auto' ? 'auto' : [options.device],
    threads: options.threads,
    worker: 'process',
  });
  try {
    const autoencoder = await reporter.step('load', `loading ${options.model}`, () =>
      loadAutoencoder(options.model, {
        runtime,
        signal,
        onProgress: (event) => {
          if (event.stage === 'graph') reporter.progress(`building the ${event.part} graph…`);
          if (event.stage === 'session') reporter.progress(`starting the ${event.part} session…`);
        },
      }),
    );
    return {
      autoencoder,
      runtime,
      close: async () => {
        await autoencoder.dispose();
        await runtime.dispose();
      },
    };
  } catch (error) {
    await runtime.dispose();
    throw error;
  }
}

/** The files of a model folder (so that no output may replace one). */
export async function modelFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.map((name) => join(dir, name));
}
