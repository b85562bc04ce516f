import type { ByteSource, HostTensor } from '@dcae/core';
import { DcaeError, formatShape, openSafetensors, parseJsonConfig } from '@dcae/core';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import type { BackboneConfig, DiffusionModelConfig } from './config.js';
import { hasNullClass, latentShape, parseDiffusionConfig } from './config.js';
import { buildDit, DIT_FREQUENCY_DIM } from './graph/dit.js';
import type { AttentionKernel } from './graph/layers.js';
import { timestepEmbedding } from './graph/timestep-embedding.js';
import { buildUvit } from './graph/uvit.js';
import type { DiffusionPreset } from './presets.js';
import { bindCheckpoint } from './weights.js';

/** A loaded diffusion backbone, ready to evaluate. */
export interface DiffusionModel {
  readonly config: BackboneConfig;
  /** The release preset when config.json named one (default sampler, steps, guidance, AE). */
  readonly preset: DiffusionPreset | undefined;
  /** Latent shape [C, h, w] of one sample, in diffusion space. */
  readonly latentShape: readonly [number, number, number];
  /**
   * The network without guidance (upstream `forward_without_cfg(x, t, y)`): x [N, C, h, w], network
   * time t [N] (DiT: DDPM index 0 … 999; UViT: 1000·t; USiT: t ∈ [0, 1]), class labels y [N]
   * (the null class `numClasses` included) → [N, C_out, h, w] (DiT: ε̂ then the variance value).
   */
  forward(
    x: HostTensor<'float32'>,
    t: ArrayLike<number>,
    y: ArrayLike<number>,
    options?: { readonly signal?: AbortSignal },
  ): Promise<HostTensor<'float32'>>;
  /** Releases the runtime session. */
  dispose(): Promise<void>;
}

/**
 * The files of a checkpoint folder: `config.json` and `model.safetensors`. Structurally the same as
 * `ModelFiles` of `@dcae/autoencoder` (`directoryModelFiles`, `memoryModelFiles`), so one folder
 * object serves both loaders.
 */
export interface CheckpointFiles {
  /** Folder path, URL or name, for messages. */
  readonly name: string;
  readText(file: string): Promise<string>;
  byteSource(file: string): Promise<ByteSource>;
  /** What the runtime reads as the weights: a local path (node), a URL (web) or the bytes. */
  externalDataLocation(file: string): string | Uint8Array;
}

export interface LoadDiffusionModelOptions {
  /** The engine the graph runs on, e.g. `createNodeRuntime()` from `@dcae/runtime-adapters/node`. */
  readonly runtime: RuntimeV1;
  readonly signal?: AbortSignal;
  /** Use this instead of the folder's config.json (which then is not read). */
  readonly config?: DiffusionModelConfig;
  /**
   * `'fused'`: onnxruntime's `MultiHeadAttention` (com.microsoft) per block; `'standard'`: default-domain
   * ops only, for a runtime without onnxruntime's contrib ops. @defaultValue 'fused'
   */
  readonly attention?: AttentionKernel;
}

export interface BuildDiffusionGraphOptions {
  /** How attention is written (see `AttentionKernel`). @defaultValue 'fused' */
  readonly attention?: AttentionKernel;
}

export const CONFIG_FILE = 'config.json';
export const WEIGHTS_FILE = 'model.safetensors';

const GRAPH_INPUTS = { x: 'x', y: 'y', ditTime: 't_freq', uvitTime: 'time_token', out: 'out' } as const;

/**
 * The backbone as an ONNX graph (opset 18, plus com.microsoft 1 for the fused attention; dynamic
 * batch): inputs `x` [B, C, s, s], `t_freq` [B, 256] (DiT) or `time_token` [B, D] (UViT), `y` [B]
 * int64; output `out`. Parameters are named by their checkpoint keys (without the prefix) and
 * resolved through `params`.
 */
export function buildDiffusionGraph(
  config: BackboneConfig,
  params: ParamResolver,
  options: BuildDiffusionGraphOptions = {},
): OnnxModel {
  const kernel = options.attention ?? 'fused';
  const g = new GraphBuilder({ name: `dcae_${config.family}`, params });
  const [channels, size] = [config.inChannels, config.inputSize];
  const x = g.input(GRAPH_INPUTS.x, 'float32', ['batch', channels, size, size]);
  const y = g.input(GRAPH_INPUTS.y, 'int64', ['batch']);
  if (config.family === 'dit') {
    const tFreq = g.input(GRAPH_INPUTS.ditTime, 'float32', ['batch', DIT_FREQUENCY_DIM]);
    const out = buildDit(g.root, x, tFreq, y, config, kernel);
    g.output(out, GRAPH_INPUTS.out, ['batch', 2 * channels, size, size]);
  } else {
    const timeToken = g.input(GRAPH_INPUTS.uvitTime, 'float32', ['batch', config.hiddenSize]);
    const out = buildUvit(g.root, x, timeToken, y, config, kernel);
    g.output(out, GRAPH_INPUTS.out, ['batch', channels, size, size]);
  }
  return g.build();
}

/**
 * Loads a diffusion checkpoint folder (a released combined checkpoint, or a backbone with an
 * explicit config): reads config.json, checks every backbone tensor of model.safetensors (missing,
 * mis-shaped, non-F32 and unused ones are reported together in one WEIGHTS_MISMATCH), builds the
 * graph over the weights in place (ONNX external data) and opens a runtime session.
 */
export async function loadDiffusionModel(
  files: CheckpointFiles,
  options: LoadDiffusionModelOptions,
): Promise<DiffusionModel> {
  const { runtime, signal } = options;
  const configSource = `${files.name}/${CONFIG_FILE}`;
  const config =
    options.config ??
    parseDiffusionConfig(
      parseJsonConfig(await files.readText(CONFIG_FILE), { source: configSource }),
      configSource,
    );
  throwIfAborted(signal);
  const weights = await openSafetensors(await files.byteSource(WEIGHTS_FILE));
  await weights.close(); // the header is all we read; the runtime reads the tensors
  const binding = bindCheckpoint(weights.header, {
    prefix: config.backbone.keyPrefix,
    location: WEIGHTS_FILE,
    source: `${files.name}/${WEIGHTS_FILE}`,
  });
  const graph = buildDiffusionGraph(config.backbone, binding.resolve, {
    ...(options.attention ? { attention: options.attention } : {}),
  });
  binding.finish();
  throwIfAborted(signal);
  const session = await runtime.createSession(serializeModel(graph), {
    externalData: [{ location: WEIGHTS_FILE, data: files.externalDataLocation(WEIGHTS_FILE) }],
    ...(signal ? { signal } : {}),
  });
  return createDiffusionModel(config.backbone, config.preset, session);
}

function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted)
    throw new DcaeError('ABORTED', 'Loading the diffusion model was aborted.', { cause: signal.reason });
}

function createDiffusionModel(
  config: BackboneConfig,
  preset: DiffusionPreset | undefined,
  session: SessionV1,
): DiffusionModel {
  const shape = latentShape(config);
  const timeInput = config.family === 'dit' ? GRAPH_INPUTS.ditTime : GRAPH_INPUTS.uvitTime;
  const timeDim = config.family === 'dit' ? DIT_FREQUENCY_DIM : config.hiddenSize;
  return {
    config,
    preset,
    latentShape: shape,
    async forward(x, t, y, options = {}) {
      const n = checkLatents(x, shape);
      checkTimes(t, n);
      const labels = checkLabels(y, n, config);
      const outputs = await session.run(
        {
          [GRAPH_INPUTS.x]: x,
          [timeInput]: { dtype: 'float32', shape: [n, timeDim], data: timestepEmbedding(t, timeDim) },
          [GRAPH_INPUTS.y]: { dtype: 'int64', shape: [n], data: labels },
        },
        options.signal ? { signal: options.signal } : {},
      );
      return outputs[GRAPH_INPUTS.out] as HostTensor<'float32'>;
    },
    dispose: () => session.dispose(),
  };
}

function checkLatents(x: HostTensor<'float32'>, [c, h, w]: readonly [number, number, number]): number {
  const n = x.shape[0] ?? 0;
  const valid =
    x.dtype === 'float32' &&
    x.shape.length === 4 &&
    n >= 1 &&
    x.shape[1] === c &&
    x.shape[2] === h &&
    x.shape[3] === w;
  if (!valid) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `The diffusion model takes float32 latents [N, ${c}, ${h}, ${w}], got ${x.dtype} ${formatShape(x.shape)}.`,
      { detail: { expected: ['N', c, h, w], actual: x.shape } },
    );
  }
  return n;
}

function checkTimes(t: ArrayLike<number>, n: number): void {
  if (t.length !== n || !Array.from(t).every(Number.isFinite)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Expected ${n} finite network times (one per sample), got ${Array.from(t).join(', ')}.`,
    );
  }
}

/** Labels 0 … numClasses−1, plus the null class numClasses when the table has it. */
function checkLabels(y: ArrayLike<number>, n: number, config: BackboneConfig): BigInt64Array {
  const max = hasNullClass(config) ? config.numClasses : config.numClasses - 1;
  const bad = Array.from(y).filter((label) => !Number.isInteger(label) || label < 0 || label > max);
  if (y.length !== n || bad.length > 0) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Expected ${n} class labels, integers in [0, ${max}]; got ${y.length} with ${bad.length} out of range (${bad.slice(0, 5).join(', ')}).`,
      { detail: { max, bad } },
    );
  }
  return BigInt64Array.from(Array.from(y), (label) => BigInt(label));
}
