import { readdir, readFile } from 'node:fs/promises';
import { DcaeError } from '@dcae/core';
import { parseQuantizationSpec } from '@dcae/autoencoder';
import type { QuantizationSpec } from '@dcae/autoencoder';
import { join } from 'node:path';
import type { Autoencoder } from '@dcae/autoencoder';
import { openAutoencoder } from '@dcae/autoencoder/node';
import type { ExecutionOptions, TilingOption } from '@dcae/autoencoder';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { MODEL_CATALOG } from '@dcae/diffusion';
import type { ResolveModelOptions } from '@dcae/hub/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { requireAutoencoder } from './model-kind.js';
import type { CommonOptions } from './options.js';
import type { Reporter } from './reporter.js';

/** A loaded model and the runtime it runs on; `close()` releases both. */
export interface OpenModel {
  readonly autoencoder: Autoencoder;
  readonly runtime: RuntimeV1;
  close(): Promise<void>;
}

/**
 * The node runtime for `--device` and `--threads`, with sessions in a child process, so Ctrl-C
 * and progress stay responsive while a model runs (and a running model stops at once).
 */
export function startRuntime(options: CommonOptions): RuntimeV1 {
  return createNodeRuntime({
    devices: options.device === 'auto' ? 'auto' : [options.device],
    threads: options.threads,
    worker: 'process',
  });
}

/**
 * How every command resolves `--model` (and `--autoencoder`) with `resolveModel` of `@dcae/hub`:
 * a local folder, a Hub id or a URL, with download progress and warnings on the reporter.
 */
export function hubOptions(reporter: Reporter): ResolveModelOptions {
  return {
    // Every released repo, the diffusion models included (one catalog: @dcae/diffusion's).
    catalog: MODEL_CATALOG,
    onProgress: ({ file, loaded, total, bytesPerSecond, etaSeconds }) =>
      reporter.bar(
        `download ${file}`,
        loaded,
        total ?? 0,
        'bytes',
        `${(bytesPerSecond / 1e6).toFixed(1)} MB/s` +
          (etaSeconds !== undefined ? `, ${Math.ceil(etaSeconds)} s left` : ''),
      ),
    onWarning: (message: string) => reporter.progress(`warning: ${message}`),
  };
}

/** `--quantization <file>`: the spec, checked (only meaningful with `--dtype int8`). */
async function readQuantization(options: CommonOptions): Promise<QuantizationSpec> {
  const path = options.quantization!;
  if (options.dtype !== 'int8') {
    throw new DcaeError('INVALID_ARGUMENT', `--quantization ${path} is only used with --dtype int8.`);
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new DcaeError('FILE_NOT_FOUND', `Cannot read --quantization ${path}.`, { source: path, cause });
  }
  return parseQuantizationSpec(text, path);
}

/** Starts the runtime and loads the model (folder, Hub id or URL) on it. */
export async function openModel(
  options: CommonOptions,
  reporter: Reporter,
  signal: AbortSignal,
  command: string,
  spec?: QuantizationSpec,
): Promise<OpenModel> {
  await requireAutoencoder(options.model, command);
  const quantization =
    spec ?? (options.quantization === undefined ? undefined : await readQuantization(options));
  const runtime = startRuntime(options);
  try {
    const autoencoder = await reporter.step('load', `loading ${options.model}`, () =>
      openAutoencoder(options.model, {
        runtime,
        signal,
        ...executionOptions(options),
        ...(options.dtype ? { dtype: options.dtype } : {}),
        ...(quantization ? { quantization } : {}),
        hub: hubOptions(reporter),
        onProgress: (event) => {
          if (event.stage === 'build' && event.done === 0)
            reporter.progress(`building the ${event.part} graph…`);
          if (event.stage === 'session' && event.done === 0)
            reporter.progress(`starting the ${event.part} session…`);
          if (event.stage === 'encode' || event.stage === 'decode')
            reporter.bar(event.stage, event.done, event.total);
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

/**
 * Tiling, memory budget and batch slicing from `--tile`, `--tile-size`, `--tile-overlap`,
 * `--tile-style`, `--memory-budget`. A flag left out keeps the library's default, so the overlap
 * of `--tile-size 64` alone is clamped to fit the tile.
 */
export function executionOptions(options: CommonOptions): ExecutionOptions {
  const geometry =
    options.tileSize !== undefined || options.tileOverlap !== undefined || options.tileStyle === 'diffusers';
  const tiling: TilingOption =
    geometry && options.tile !== 'never'
      ? {
          ...(options.tileSize !== undefined ? { tileSize: options.tileSize } : {}),
          ...(options.tileOverlap !== undefined ? { overlap: options.tileOverlap } : {}),
          style: options.tileStyle ?? 'aligned',
        }
      : (options.tile ?? 'auto');
  return {
    tiling,
    ...(options.memoryBudget !== undefined ? { memoryBudgetBytes: options.memoryBudget * 2 ** 20 } : {}),
  };
}
