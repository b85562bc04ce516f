import { basename, resolve } from 'node:path';
import {
  DcaeError,
  formatShape,
  parseJsonConfig,
  parseSafetensors,
  serializeSafetensors,
  toFloat32,
} from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { formatLatentMetadata, tensorToImages } from '@dcae/autoencoder';
import type { Autoencoder } from '@dcae/autoencoder';
import type { ModelFiles } from '@dcae/hub';
import { COMBINED_AUTOENCODER_PREFIX } from '@dcae/hub';
import type { RgbImage } from '@dcae/autoencoder';
import { encodeImage, imageFormatFromPath } from '@dcae/autoencoder/node';
import {
  CONFIG_FILE,
  compatibleSamplers,
  DEFAULT_STEPS,
  generate,
  hasTensorsUnder,
  parseDiffusionConfig,
  WEIGHTS_FILE,
} from '@dcae/diffusion';
import type {
  BackboneConfig,
  DiffusionModel,
  DiffusionModelConfig,
  GenerateProgress,
  GenerateResult,
  InjectedNoise,
  LatentDecoder,
  SamplerName,
} from '@dcae/diffusion';
import { loadGenerator, resolveModelFiles } from '@dcae/diffusion/node';
import { hubOptions, modelFiles, startRuntime } from '../model.js';
import { requireDiffusionModel } from '../model-kind.js';
import type { CommonOptions } from '../options.js';
import type { Reporter } from '../reporter.js';
import { formatMs } from '../reporter.js';
import { isSafetensorsPath, readInputFile } from '../tensor-files.js';
import { outputKind, reporterFor, withOutputs } from './shared.js';
import type { Previewer, PreviewSpec } from './preview.js';
import { startPreview } from './preview.js';
import type { CommandContext } from './shared.js';

export interface GenerateCommandOptions extends CommonOptions {
  readonly output: string;
  /** ImageNet classes, one image each (required). */
  readonly class?: readonly number[];
  readonly cfg?: number;
  /** Upstream's `num_inference_steps` for the sampler (see {@link librarySteps}). */
  readonly steps?: number;
  readonly sampler?: SamplerName;
  readonly seed?: number;
  /** .safetensors with `noise_init` (and `step_noise` for DDPM) replacing the random draws. */
  readonly noise?: string;
  /** DC-AE folder to decode with. */
  readonly autoencoder?: string;
  /** `--preview taesana[=DIR]`: each step's x̂₀ through TAESANA, as PNGs beside the output. */
  readonly preview?: PreviewSpec;
}

/** Where the released combined checkpoints keep the DC-AE in model.safetensors (original format). */
const AUTOENCODER_PREFIX = COMBINED_AUTOENCODER_PREFIX;
const NOISE_TENSORS = { initial: 'noise_init', steps: 'step_noise' } as const;
/** The flow samplers read the network output as a velocity (SiT: t = 0 noise → t = 1 data). */
const FLOW_SAMPLERS: readonly SamplerName[] = ['heun', 'dopri5'];

/**
 * `dcae generate`: class-conditional sampling with a DiT / UViT / USiT checkpoint. Writes the
 * decoded images as one near-square grid (image output), or the final latent in diffusion space
 * without decoding (.safetensors output, tensor `latent`).
 */
export async function runGenerate(
  options: GenerateCommandOptions,
  { io, signal }: CommandContext,
): Promise<void> {
  const started = performance.now();
  const reporter = reporterFor(options, { io, signal });
  const classes = options.class ?? [];
  if (classes.length === 0) {
    throw new DcaeError('INVALID_ARGUMENT', 'Give at least one --class (an ImageNet class id 0…999).');
  }
  const kind = outputKind(options.output);
  if (options.noise !== undefined && !isSafetensorsPath(options.noise)) {
    throw new DcaeError('UNSUPPORTED_FORMAT', `--noise reads a .safetensors file, not ${options.noise}.`, {
      source: options.noise,
    });
  }
  const inputs = [
    ...(options.noise === undefined ? [] : [options.noise]),
    ...(options.autoencoder === undefined ? [] : await modelFiles(options.autoencoder)),
  ];

  let previews: { directory: string; written: number } | undefined;
  const result = await withOutputs(options, inputs, signal, async (outputs) => {
    const path = await outputs.claim(options.output);
    // One resolver for --model, as in every command: a local folder, a Hub id or a URL.
    const { files } = await resolveModelFiles(options.model, { signal, hub: hubOptions(reporter) });
    const plan = await planRun(options, files, classes, reporter);
    const noise = options.noise === undefined ? undefined : await readNoise(options.noise, plan, signal);
    if (kind === 'image') await checkAutoencoderSource(options, files, plan);

    const runtime = startRuntime(options);
    let previewer: Previewer | undefined;
    try {
      const generator = await reporter.step('load', `loading ${options.model}`, () =>
        loadGenerator(files, {
          runtime,
          signal,
          config: plan.config,
          autoencoder: kind === 'image' ? (options.autoencoder ?? 'auto') : 'none',
          hub: hubOptions(reporter),
          onStage: (stage) =>
            reporter.progress(stage === 'autoencoder' ? 'loading the autoencoder…' : 'loading the backbone…'),
        }),
      );
      const { model, autoencoder } = generator;
      try {
        if (options.preview !== undefined) {
          previewer = await reporter.step('loadPreview', 'loading TAESANA for the previews', () =>
            startPreview({
              spec: options.preview!,
              output: options.output,
              force: options.force === true,
              runtime,
              signal,
              scalingFactor: plan.config.preset?.scalingFactor ?? autoencoder?.scalingFactor,
              latentChannels: plan.noiseShape[1]!,
              autoencoderName: plan.config.preset?.autoencoder,
              warn: (message) => reporter.progress(`warning: ${message}`),
            }),
          );
        }
        const { generated, steps, samplingMs, decodeMs } = await sample(
          model,
          autoencoder,
          plan,
          classes,
          noise,
          options,
          reporter,
          signal,
          previewer,
        );
        await previewer?.close();
        if (previewer) previews = { directory: previewer.directory, written: previewer.written() };
        let image: { grid: Grid; size: [number, number] } | undefined;
        if (generated.images) {
          const images = tensorToImages(generated.images);
          const grid = imageGrid(images);
          await reporter.step('write', `writing ${options.output}`, async () =>
            outputs.stage(path, await encodeImage(grid.image, imageFormatFromPath(path)), signal),
          );
          image = { grid, size: [images[0]!.width, images[0]!.height] };
        } else {
          const metadata = latentMetadata(options, classes, plan, generated);
          await reporter.step('write', `writing ${options.output}`, () =>
            outputs.stage(path, serializeSafetensors({ latent: generated.latent }, metadata), signal),
          );
        }
        return { generated, image, steps, samplingMs, decodeMs };
      } finally {
        await generator.dispose();
      }
    } finally {
      await previewer?.close().catch(() => undefined);
      await runtime.dispose();
    }
  });

  const { generated, image, steps, samplingMs, decodeMs } = result;
  const t = reporter.timings;
  const totalMs = round(performance.now() - started);
  const count = classes.length;
  const stepsText = `${steps.length}${generated.sampler === 'dopri5' ? ' adaptive' : ''} steps`;
  const perStep = steps.length > 0 ? samplingMs / steps.length : 0;
  reporter.result(
    [
      image
        ? `wrote ${options.output}: ${count} image${count === 1 ? '' : 's'} of ${image.size[0]}×${image.size[1]}` +
          (count > 1
            ? ` in a ${image.grid.columns}×${image.grid.rows} grid (columns × rows, row by row)`
            : '')
        : `wrote ${options.output}: tensor "latent" ${formatShape(generated.latent.shape)} in diffusion space (not decoded)`,
      `classes ${classes.join(', ')}; ${generated.sampler}, ${stepsText}, ${generated.nfe} network evaluations, guidance ${generated.guidanceScale}, seed ${String(generated.seed)}`,
      `timings: load ${formatMs(t.load)}, sampling ${formatMs(samplingMs)} (${formatMs(perStep)} per step)` +
        (decodeMs === undefined ? '' : `, decode ${formatMs(decodeMs)}`) +
        `, total ${formatMs(totalMs)}`,
      ...(previews ? [`previews: ${previews.written} TAESANA step images in ${previews.directory}`] : []),
    ].join('\n'),
    {
      command: 'generate',
      model: options.model,
      outputs: [resolve(options.output)],
      classes,
      sampler: generated.sampler,
      // As --steps means it: upstream's num_inference_steps.
      steps: inferenceSteps(generated.sampler, generated.steps, options.steps),
      stepsTaken: steps.length,
      nfe: generated.nfe,
      guidanceScale: generated.guidanceScale,
      seed: generated.seed,
      latent: { shape: generated.latent.shape },
      ...(previews ? { previews } : {}),
      ...(image
        ? {
            image: {
              width: image.size[0],
              height: image.size[1],
              grid: { columns: image.grid.columns, rows: image.grid.rows },
            },
          }
        : {}),
      timingsMs: {
        ...t,
        sampling: samplingMs,
        ...(decodeMs === undefined ? {} : { decode: decodeMs }),
        total: totalMs,
        perStep: steps,
      },
    },
  );
}

interface StepTiming {
  readonly step: number;
  readonly nfe: number;
  readonly ms: number;
}

/** Runs `generate()` with the plan, reporting and timing every step; decodes when an autoencoder is given. */
async function sample(
  model: DiffusionModel,
  autoencoder: Autoencoder | undefined,
  plan: RunPlan,
  classes: readonly number[],
  noise: InjectedNoise | undefined,
  options: GenerateCommandOptions,
  reporter: Reporter,
  signal: AbortSignal,
  previewer?: Previewer,
): Promise<{ generated: GenerateResult; steps: StepTiming[]; samplingMs: number; decodeMs?: number }> {
  const steps: StepTiming[] = [];
  reporter.progress(`${samplingLabel(plan)}…`);
  const samplingStart = performance.now();
  let samplingEnd = samplingStart;
  const generated = await generate({
    model,
    classLabels: classes,
    sampler: plan.sampler,
    ...(plan.steps === undefined ? {} : { steps: plan.steps }),
    ...(options.cfg === undefined ? {} : { guidanceScale: options.cfg }),
    ...(options.seed === undefined ? {} : { seed: options.seed }),
    ...(noise === undefined ? {} : { noise }),
    ...(autoencoder === undefined ? {} : { autoencoder: decoderFor(autoencoder, plan) }),
    signal,
    onProgress: (progress) => {
      const now = performance.now();
      steps.push({ step: progress.step, nfe: progress.nfe, ms: round(now - samplingEnd) });
      samplingEnd = now;
      reporter.progress(progressLine(progress, steps.at(-1)!.ms));
      previewer?.push(progress.step, progress.denoised);
    },
  });
  // generate() decodes after the last step.
  const samplingMs = round(samplingEnd - samplingStart);
  if (!generated.images) return { generated, steps, samplingMs };
  return { generated, steps, samplingMs, decodeMs: round(performance.now() - samplingEnd) };
}

/** What the command line asks for, resolved against the model's config before anything heavy loads. */
interface RunPlan {
  /** The config the model is loaded with (the prediction set by the sampler for UViT). */
  readonly config: DiffusionModelConfig;
  readonly sampler: SamplerName;
  /** `steps` as `generate()` takes it (undefined for dopri5). */
  readonly steps: number | undefined;
  /** Shape of the initial noise, [B, C, h, w]. */
  readonly noiseShape: readonly number[];
}

async function planRun(
  options: GenerateCommandOptions,
  files: ModelFiles,
  classes: readonly number[],
  reporter: Reporter,
): Promise<RunPlan> {
  await requireDiffusionModel(options.model);
  const config = await readModelConfig(files);
  const sampler = options.sampler ?? config.preset?.sampler ?? compatibleSamplers(config.backbone)[0]!;
  const backbone = readingFor(config.backbone, sampler);
  if (backbone.prediction !== config.backbone.prediction) {
    reporter.progress(
      `note: reading the network output as ${backbone.prediction === 'velocity' ? 'a velocity' : 'the noise ε'} ` +
        `for ${sampler}; the checkpoint's config says ${config.backbone.prediction}.`,
    );
  }
  const allowed = compatibleSamplers(backbone);
  if (!allowed.includes(sampler)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `--sampler ${sampler} does not fit this ${backbone.family === 'dit' ? 'DiT' : 'UViT'} model; use ${allowed.join(' or ')}.`,
      { detail: { sampler, allowed } },
    );
  }
  const bad = classes.filter((c) => c >= backbone.numClasses);
  if (bad.length > 0) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `--class must be in 0…${backbone.numClasses - 1} for this model; got ${bad.join(', ')}.`,
    );
  }
  const steps =
    librarySteps(sampler, options.steps, reporter) ??
    (sampler === 'dopri5'
      ? undefined
      : config.preset?.sampler === sampler
        ? config.preset.steps
        : DEFAULT_STEPS[sampler]);
  const [c, h, w] = [backbone.inChannels, backbone.inputSize, backbone.inputSize];
  return {
    config: { ...config, backbone },
    sampler,
    steps,
    noiseShape: [classes.length, c, h, w],
  };
}

async function readModelConfig(files: ModelFiles): Promise<DiffusionModelConfig> {
  const path = `${files.name}/${CONFIG_FILE}`;
  let text: string;
  try {
    text = await files.readText(CONFIG_FILE);
  } catch (cause) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${files.name} has no readable ${CONFIG_FILE}; --model must be a diffusion checkpoint (${CONFIG_FILE} + ${WEIGHTS_FILE}): a folder, a Hub id or a URL.`,
      { source: files.name, cause },
    );
  }
  return parseDiffusionConfig(parseJsonConfig(text, { source: path }), path);
}

/**
 * A UViT network is read as the sampler needs it: a velocity for the flow samplers (USiT), the
 * noise ε otherwise. DiT always predicts ε (and its learned variance).
 */
function readingFor(backbone: BackboneConfig, sampler: SamplerName): BackboneConfig {
  if (backbone.family !== 'uvit' || sampler === 'ddpm') return backbone;
  const prediction = FLOW_SAMPLERS.includes(sampler) ? 'velocity' : 'epsilon';
  return prediction === backbone.prediction ? backbone : { ...backbone, prediction };
}

/**
 * `--steps` means upstream's `num_inference_steps`: DDPM respaced steps and DPM-Solver network
 * evaluations as they are; Heun grid points (n points = n − 1 steps); for dopri5 the output grid,
 * which does not change the sample (the solver picks its own steps and interpolates at t = 1).
 */
function librarySteps(
  sampler: SamplerName,
  steps: number | undefined,
  reporter: Reporter,
): number | undefined {
  if (steps === undefined) return undefined;
  if (sampler === 'heun' || sampler === 'dopri5') {
    if (steps < 2) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `--steps for ${sampler} counts time grid points from t = 0 to t = 1, so it must be at least 2; got ${steps}.`,
      );
    }
    if (sampler === 'heun') return steps - 1;
    reporter.progress(
      `note: dopri5 is adaptive; --steps ${steps} sets upstream's output grid only and does not change the sample.`,
    );
    return undefined;
  }
  return steps;
}

/** The noise file's tensors, as float32, checked against the run's shapes. */
async function readNoise(path: string, plan: RunPlan, signal: AbortSignal): Promise<InjectedNoise> {
  const file = parseSafetensors(await readInputFile(path, signal), { name: path });
  const read = (name: string): HostTensor<'float32'> | undefined => {
    if (!file.header.tensors.has(name)) return undefined;
    const info = file.tensorInfo(name);
    if (info.dtype !== 'F32' && info.dtype !== 'F16' && info.dtype !== 'BF16') {
      throw new DcaeError(
        'DTYPE_UNSUPPORTED',
        `${path}: tensor "${name}" is ${info.dtype}; noise must be F32 (or F16, BF16).`,
        { source: path },
      );
    }
    return toFloat32(file.tensor(name));
  };
  const initial = read(NOISE_TENSORS.initial);
  const steps = read(NOISE_TENSORS.steps);
  if (initial === undefined && steps === undefined) {
    throw new DcaeError(
      'TENSOR_NOT_FOUND',
      `${path} holds neither "${NOISE_TENSORS.initial}" nor "${NOISE_TENSORS.steps}"; found ${[...file.header.tensors.keys()].join(', ') || 'no tensors'}.`,
      { source: path },
    );
  }
  const [batch, ...sample] = plan.noiseShape;
  if (initial !== undefined && formatShape(initial.shape) !== formatShape(plan.noiseShape)) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${path}: "${NOISE_TENSORS.initial}" is ${formatShape(initial.shape)}; this run needs ${formatShape(plan.noiseShape)} (one [C, h, w] latent of the model per --class).`,
      { source: path, detail: { expected: plan.noiseShape, actual: initial.shape } },
    );
  }
  if (steps !== undefined) {
    if (plan.sampler !== 'ddpm') {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `${path}: "${NOISE_TENSORS.steps}" is per-step DDPM noise, but ${plan.sampler} draws no noise after the start; drop it or use --sampler ddpm.`,
        { source: path },
      );
    }
    const [count, rows, ...rest] = steps.shape;
    const wanted = plan.steps!;
    if (
      steps.shape.length !== 5 ||
      count !== wanted ||
      rows! < batch! ||
      formatShape(rest) !== formatShape(sample)
    ) {
      throw new DcaeError(
        'SHAPE_MISMATCH',
        `${path}: "${NOISE_TENSORS.steps}" is ${formatShape(steps.shape)}; this run needs [${wanted}, ${batch}, ${sample.join(', ')}] ` +
          `(one draw per DDPM step, --steps ${wanted}; dimension 1 may be larger, only its first ${batch} rows are read).`,
        { source: path, detail: { actual: steps.shape } },
      );
    }
  }
  return { ...(initial ? { initial } : {}), ...(steps ? { steps } : {}) };
}

/**
 * Before anything loads: an image output needs an autoencoder, `--autoencoder` or the
 * `autoencoder.` weights of a released combined checkpoint (its AE preset from the diffusion
 * preset table). `loadGenerator` then loads whichever it is.
 */
async function checkAutoencoderSource(
  options: GenerateCommandOptions,
  files: ModelFiles,
  plan: RunPlan,
): Promise<void> {
  if (options.autoencoder !== undefined) return;
  const { preset } = plan.config;
  if (preset !== undefined && (await hasTensorsUnder(files, AUTOENCODER_PREFIX))) return;
  const why =
    preset === undefined
      ? `its ${CONFIG_FILE} gives the backbone explicitly and names no autoencoder`
      : `its ${WEIGHTS_FILE} holds no "${AUTOENCODER_PREFIX}*" tensors`;
  throw new DcaeError(
    'INVALID_ARGUMENT',
    `Cannot decode: ${options.model} has no autoencoder to decode with (${why}). ` +
      `Pass --autoencoder <dir>${preset ? ` (a ${preset.autoencoder} folder)` : ''}, or write the latent with -o <file>.safetensors.`,
  );
}

/** Diffusion space is defined by the model's preset; the autoencoder's own factor serves explicit configs. */
function decoderFor(autoencoder: Autoencoder, plan: RunPlan): LatentDecoder {
  return {
    decode: (latents, options) => autoencoder.decode(latents, options),
    scalingFactor: plan.config.preset?.scalingFactor ?? autoencoder.scalingFactor,
    latentChannels: autoencoder.latentChannels,
  };
}

function latentMetadata(
  options: GenerateCommandOptions,
  classes: readonly number[],
  plan: RunPlan,
  generated: GenerateResult,
): Record<string, string> {
  const scalingFactor = plan.config.preset?.scalingFactor;
  // The latent file contract (docs/latent-format.md): `dcae.model` is the autoencoder that decodes it.
  return {
    ...formatLatentMetadata({
      ...(plan.config.preset ? { model: plan.config.preset.autoencoder } : {}),
      space: 'diffusion',
      ...(scalingFactor === undefined ? {} : { scalingFactor }),
      dtype: 'fp32',
    }),
    'dcae.diffusion_model': plan.config.preset?.name ?? basename(resolve(options.model)),
    'dcae.classes': classes.join(','),
    'dcae.sampler': generated.sampler,
    ...(generated.steps === undefined ? {} : { 'dcae.steps': String(generated.steps) }),
    'dcae.guidance_scale': String(generated.guidanceScale),
    'dcae.seed': String(generated.seed),
  };
}

/** The inverse of {@link librarySteps}: Heun's grid has one point more than steps; dopri5 has no fixed count. */
function inferenceSteps(
  sampler: SamplerName,
  steps: number | undefined,
  requested: number | undefined,
): number | null {
  if (sampler === 'dopri5') return requested ?? null;
  return sampler === 'heun' ? steps! + 1 : steps!;
}

function samplingLabel(plan: RunPlan): string {
  const { sampler, steps } = plan;
  const what =
    sampler === 'dopri5'
      ? 'adaptive steps'
      : `${steps} ${sampler === 'dpm-solver' ? 'network evaluations' : 'steps'}`;
  return `sampling with ${sampler}, ${what}`;
}

function progressLine(progress: GenerateProgress, ms: number): string {
  const of = progress.totalSteps === undefined ? '' : `/${progress.totalSteps}`;
  const share = `${Math.round(progress.progress * 100)}%`;
  return `  step ${progress.step}${of} (${share}), ${progress.nfe} evaluations, ${formatMs(ms)}`;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

interface Grid {
  readonly image: RgbImage;
  readonly columns: number;
  readonly rows: number;
}

/**
 * Equal-sized images in a near-square grid, row by row: ⌈√n⌉ columns and ⌈n / columns⌉ rows,
 * no gaps; cells after the last image stay black.
 */
export function imageGrid(images: readonly RgbImage[]): Grid {
  const { width, height } = images[0]!;
  const columns = Math.ceil(Math.sqrt(images.length));
  const rows = Math.ceil(images.length / columns);
  const stride = columns * width * 3;
  const data = new Uint8Array(stride * rows * height);
  images.forEach((image, i) => {
    const [x0, y0] = [(i % columns) * width, Math.floor(i / columns) * height];
    for (let y = 0; y < height; y++) {
      const row = image.data.subarray(y * width * 3, (y + 1) * width * 3);
      data.set(row, (y0 + y) * stride + x0 * 3);
    }
  });
  return { image: { width: columns * width, height: rows * height, channels: 3, data }, columns, rows };
}
