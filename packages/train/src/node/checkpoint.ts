import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import {
  DcaeError,
  float32ArrayToBfloat16,
  float32ArrayToFloat16,
  openSafetensors,
  parseJsonConfig,
  toFloat32,
} from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { fileSource, writeFileAtomic, writeSafetensorsFile } from '@dcae/core/node';
import {
  dcAeCheckpointLayout,
  detectModel,
  originalKeyFlags,
  originalToDiffusersKey,
  parseDcAeConfig,
} from '@dcae/autoencoder';
import type { DcAeConfig } from '@dcae/autoencoder';
import { directoryModelFiles, resolveModel } from '@dcae/autoencoder/node';
import { dcAeConfigToDiffusersJson } from '../checkpoint/diffusers-config.js';
import { randomDcAeWeights } from '../checkpoint/init.js';
import type { DiscriminatorState, OptimizerState } from '../step/types.js';

/** The weights file of a diffusers checkpoint folder. */
export const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';
export const OPTIMIZER_FILE = 'optimizer.safetensors';
export const TRAINER_STATE_FILE = 'trainer_state.json';
/** The PatchGAN discriminator's weights (runs with a `gan` term), and its AdamW state. */
export const DISCRIMINATOR_FILE = 'discriminator.safetensors';
export const DISCRIMINATOR_OPTIMIZER_FILE = 'discriminator_optimizer.safetensors';

/** A model as the trainer holds it. */
export interface TrainableModel {
  readonly name: string;
  readonly config: DcAeConfig;
  /** config.json text to write with every checkpoint (the input's own bytes for a diffusers model). */
  readonly configJson: string;
  /** Every tensor of the checkpoint as read (input dtypes), by diffusers key, in file order. */
  readonly original: ReadonlyMap<string, HostTensor>;
  /** The same tensors for the step runner: floating ones as float32, others (num_batches_tracked) as they are. */
  readonly weights: ReadonlyMap<string, HostTensor>;
}

export interface LoadTrainableModelOptions {
  /** `'random'`: fresh weights from the config (a config.json path or a folder with only config.json). */
  readonly init?: 'random';
  readonly seed?: number;
  readonly residualInitScale?: number;
}

/**
 * Loads a DC-AE for training from a folder (diffusers or original format), a Hub id, or — with
 * `init: 'random'` — a bare diffusers config.json (file or folder holding only it). Original-format
 * checkpoints are renamed to diffusers keys with the package's one mapping table; every tensor is
 * kept, BatchNorm running statistics and `num_batches_tracked` included.
 */
export async function loadTrainableModel(
  model: string,
  options: LoadTrainableModelOptions = {},
): Promise<TrainableModel> {
  const asFile = await stat(model).catch(() => undefined);
  if (asFile?.isFile()) {
    if (options.init !== 'random') {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `--model ${model} is a file; pass a model folder, or a config.json with --init random to train a fresh model.`,
        { source: model },
      );
    }
    return freshModel(model, await readFile(model, 'utf8'), options);
  }
  const directory = asFile?.isDirectory() ? model : (await resolveModel(model)).directory;
  const files = directoryModelFiles(directory);
  const names = await files.list();
  const hasWeights = names.includes(WEIGHTS_FILE) || names.includes('model.safetensors');
  if (options.init === 'random') {
    if (hasWeights) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `--init random: ${model} already holds weights; pass its config.json alone (or a folder with only config.json) to start from fresh weights.`,
        { source: model },
      );
    }
    if (!names.includes('config.json')) {
      throw new DcaeError('MODEL_NOT_FOUND', `--init random: ${model} has no config.json.`, {
        source: model,
      });
    }
    return freshModel(join(directory, 'config.json'), await files.readText('config.json'), options);
  }
  if (!hasWeights && names.includes('config.json')) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${model} has a config.json but no weights; pass --init random --seed S to train this architecture from fresh weights.`,
      { source: model },
    );
  }
  const detected = await detectModel(files);
  const file = await openSafetensors(await files.byteSource(detected.weightsFile));
  try {
    const original = new Map<string, HostTensor>();
    if (detected.format === 'diffusers') {
      for (const key of file.header.tensors.keys()) original.set(key, await file.readTensor(key));
    } else {
      const shapes = new Map(dcAeCheckpointLayout(detected.config).params.map((p) => [p.key, p.shape]));
      const flags = originalKeyFlags(detected.config);
      for (const key of file.header.tensors.keys()) {
        const tensor = await file.readTensor(key);
        for (const mapped of originalToDiffusersKey(key, flags)) {
          const shape = shapes.get(mapped.key) ?? tensor.shape;
          let data = tensor.data;
          if (mapped.rows !== undefined) {
            const part = tensor.data.length / mapped.rows.of;
            data = data.slice(mapped.rows.index * part, (mapped.rows.index + 1) * part);
          }
          original.set(mapped.key, { dtype: tensor.dtype, shape: [...shape], data });
        }
      }
    }
    const configJson =
      detected.format === 'diffusers'
        ? await files.readText('config.json')
        : `${JSON.stringify(dcAeConfigToDiffusersJson(detected.config), null, 2)}\n`;
    return {
      name: detected.name,
      config: detected.config,
      configJson,
      original,
      weights: floatView(original),
    };
  } finally {
    await file.close();
  }
}

function freshModel(source: string, text: string, options: LoadTrainableModelOptions): TrainableModel {
  const config = parseDcAeConfig(parseJsonConfig(text, { source }), { source });
  const original = randomDcAeWeights(config, options.seed ?? 0, options.residualInitScale);
  return { name: source, config, configJson: text, original, weights: floatView(original) };
}

function floatView(tensors: ReadonlyMap<string, HostTensor>): Map<string, HostTensor> {
  const out = new Map<string, HostTensor>();
  for (const [key, t] of tensors) {
    out.set(key, t.dtype === 'float16' || t.dtype === 'bfloat16' ? toFloat32(t) : t);
  }
  return out;
}

/** A trained float32 tensor in the dtype the checkpoint had. */
function toDType(tensor: HostTensor, like: HostTensor): HostTensor {
  if (like.dtype === tensor.dtype) return tensor;
  const data = toFloat32(tensor).data;
  if (like.dtype === 'float16')
    return { dtype: 'float16', shape: like.shape, data: float32ArrayToFloat16(data) };
  if (like.dtype === 'bfloat16')
    return { dtype: 'bfloat16', shape: like.shape, data: float32ArrayToBfloat16(data) };
  throw new DcaeError('DTYPE_UNSUPPORTED', `Cannot store a trained ${tensor.dtype} tensor as ${like.dtype}.`);
}

/**
 * The tensors to write: every key of the input, in input order; trainable ones from the runner
 * (cast back to the input dtype), every other one the input tensor itself, so frozen weights,
 * running statistics and counters are bit-identical.
 */
export function checkpointTensors(
  model: TrainableModel,
  current: ReadonlyMap<string, HostTensor>,
  trainableKeys: readonly string[],
): Map<string, HostTensor> {
  const trainable = new Set(trainableKeys);
  const out = new Map<string, HostTensor>();
  for (const [key, input] of model.original) {
    const updated = current.get(key);
    if (trainable.has(key)) {
      if (updated === undefined) {
        throw new DcaeError(
          'WEIGHTS_MISMATCH',
          `The step runner returned no tensor for trainable key ${key}.`,
        );
      }
      out.set(key, toDType(updated, input));
    } else out.set(key, input);
  }
  return out;
}

export interface CheckpointContents {
  readonly model: TrainableModel;
  readonly tensors: ReadonlyMap<string, HostTensor>;
  readonly optimizer?: OptimizerState;
  readonly trainerState?: Readonly<Record<string, unknown>>;
  /** The discriminator of a run with a `gan` term: written to discriminator(_optimizer).safetensors. */
  readonly discriminator?: DiscriminatorState;
  /** Extra files (e.g. a preview PNG), by name. */
  readonly extra?: Readonly<Record<string, Uint8Array>>;
}

/**
 * Writes a checkpoint folder in the diffusers layout (config.json + diffusion_pytorch_model
 * .safetensors), plus optimizer.safetensors and trainer_state.json beside them. All files go into
 * a temporary sibling folder, which then replaces `directory` by rename: a reader sees the old
 * folder or the complete new one, never a mix.
 */
export async function saveCheckpoint(directory: string, contents: CheckpointContents): Promise<void> {
  const target = resolve(directory);
  await mkdir(dirname(target), { recursive: true });
  const tag = randomBytes(6).toString('hex');
  const temp = join(dirname(target), `.${basename(target)}.${tag}.tmp`);
  const old = join(dirname(target), `.${basename(target)}.${tag}.old`);
  try {
    await mkdir(temp);
    await writeFileAtomic(join(temp, 'config.json'), new TextEncoder().encode(contents.model.configJson));
    await writeSafetensorsFile(join(temp, WEIGHTS_FILE), contents.tensors, { metadata: { format: 'pt' } });
    if (contents.optimizer !== undefined) {
      await writeSafetensorsFile(join(temp, OPTIMIZER_FILE), contents.optimizer.tensors, {
        metadata: { step: String(contents.optimizer.step) },
      });
    }
    if (contents.discriminator !== undefined) {
      const d = contents.discriminator;
      await writeSafetensorsFile(join(temp, DISCRIMINATOR_FILE), d.weights, {
        metadata: { format: 'dcae-patchgan', spec: JSON.stringify(d.spec) },
      });
      await writeSafetensorsFile(join(temp, DISCRIMINATOR_OPTIMIZER_FILE), d.optimizer.tensors, {
        metadata: { step: String(d.optimizer.step) },
      });
    }
    if (contents.trainerState !== undefined) {
      const text = `${JSON.stringify(contents.trainerState, null, 2)}\n`;
      await writeFileAtomic(join(temp, TRAINER_STATE_FILE), new TextEncoder().encode(text));
    }
    for (const [name, bytes] of Object.entries(contents.extra ?? {})) {
      await writeFileAtomic(join(temp, name), bytes);
    }
    const existing = await stat(target).catch(() => undefined);
    if (existing !== undefined) await rename(target, old);
    await rename(temp, target);
    if (existing !== undefined) await rm(old, { recursive: true, force: true });
  } catch (error) {
    await rm(temp, { recursive: true, force: true }).catch(() => undefined);
    if (DcaeError.is(error)) throw error;
    throw new DcaeError('OUTPUT_UNWRITABLE', `Cannot write the checkpoint ${directory}: ${String(error)}.`, {
      source: directory,
      cause: error,
    });
  }
}

/** The highest-step complete checkpoint (`checkpoint-<step>/` or `final/`) of a run's output folder, if any. */
export async function latestCheckpoint(
  out: string,
): Promise<{ step: number; directory: string } | undefined> {
  const names = await readdir(out).catch(() => [] as string[]);
  let best: { step: number; directory: string } | undefined;
  for (const name of names) {
    if (name !== 'final' && !/^checkpoint-\d+$/.test(name)) continue;
    const directory = join(out, name);
    const state = await readTrainerState(directory).catch(() => undefined);
    const step = Number(state?.step);
    if (!Number.isSafeInteger(step)) continue;
    if (best === undefined || step > best.step || (step === best.step && name === 'final'))
      best = { step, directory };
  }
  return best;
}

/** The optimizer state saved beside a checkpoint. */
export async function readOptimizerState(directory: string): Promise<OptimizerState | undefined> {
  const path = join(directory, OPTIMIZER_FILE);
  if (!(await stat(path).catch(() => undefined))) return undefined;
  const file = await openSafetensors(await fileSource(path));
  try {
    const tensors = new Map<string, HostTensor>();
    for (const key of file.header.tensors.keys()) tensors.set(key, await file.readTensor(key));
    const step = Number(file.header.metadata.get('step') ?? '0');
    return { step, tensors };
  } finally {
    await file.close();
  }
}

async function readAllTensors(
  path: string,
): Promise<{ tensors: Map<string, HostTensor>; metadata: ReadonlyMap<string, string> }> {
  const file = await openSafetensors(await fileSource(path));
  try {
    const tensors = new Map<string, HostTensor>();
    for (const key of file.header.tensors.keys()) tensors.set(key, await file.readTensor(key));
    return { tensors, metadata: file.header.metadata };
  } finally {
    await file.close();
  }
}

/**
 * The discriminator saved beside a checkpoint, or undefined when the folder has none. A folder with
 * only one of its two files is WEIGHTS_MISMATCH (our writes are atomic, so it was assembled by hand).
 */
export async function readDiscriminatorState(directory: string): Promise<DiscriminatorState | undefined> {
  const weightsPath = join(directory, DISCRIMINATOR_FILE);
  const statePath = join(directory, DISCRIMINATOR_OPTIMIZER_FILE);
  const [w, o] = await Promise.all([
    stat(weightsPath).catch(() => undefined),
    stat(statePath).catch(() => undefined),
  ]);
  if (!w && !o) return undefined;
  if (!w || !o)
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `${directory} has ${w ? DISCRIMINATOR_FILE : DISCRIMINATOR_OPTIMIZER_FILE} but not ${w ? DISCRIMINATOR_OPTIMIZER_FILE : DISCRIMINATOR_FILE}; a checkpoint holds both.`,
      { source: directory },
    );
  const weights = await readAllTensors(weightsPath);
  const optimizer = await readAllTensors(statePath);
  let spec: unknown;
  try {
    spec = JSON.parse(weights.metadata.get('spec') ?? 'null');
  } catch {
    spec = null;
  }
  if (typeof spec !== 'object' || spec === null)
    throw new DcaeError('WEIGHTS_MISMATCH', `${weightsPath} has no discriminator spec in its metadata.`, {
      source: weightsPath,
    });
  return {
    spec: spec as DiscriminatorState['spec'],
    weights: weights.tensors,
    optimizer: { step: Number(optimizer.metadata.get('step') ?? '0'), tensors: optimizer.tensors },
  };
}

export async function readTrainerState(directory: string): Promise<Record<string, unknown>> {
  const path = join(directory, TRAINER_STATE_FILE);
  return JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
}
