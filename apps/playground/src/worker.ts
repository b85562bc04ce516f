/**
 * The inference worker: onnxruntime-web, the loaded DC-AE and every heavy computation run here, so
 * the page stays responsive. One job at a time; a job's AbortSignal stops it between steps, and
 * the page terminates the whole worker to stop a run inside onnxruntime-web at once.
 */
import type {
  Autoencoder,
  AutoencoderProgress,
  ExecutionOptions,
  RgbImage,
  RunPlan,
} from '@dcae/autoencoder';
import {
  adaptiveChannelsRefusal,
  imageToTensor,
  loadAutoencoder,
  reconstructionMetrics,
  tensorToImages,
} from '@dcae/autoencoder';
import type { HostTensor } from '@dcae/core';
import { DcaeError, parseSafetensors } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { DiffusionModel, LatentDecoder } from '@dcae/diffusion';
import { compatibleSamplers, DEFAULT_STEPS, generate, loadGenerator, WEIGHTS_FILE } from '@dcae/diffusion';
import type { WebRuntime } from '@dcae/runtime-adapters/web';
import {
  createWebRuntime,
  createWeightsCache,
  probeWebDevices,
  weightsCacheAvailable,
} from '@dcae/runtime-adapters/web';
import type { BrowserModelFiles, FetchOptions } from './model-source.js';
import {
  DEFAULT_MODEL_NAME,
  DEFAULT_MODEL_PATH,
  fetchBlob,
  localModelFiles,
  modelFolderUrl,
  urlModelFiles,
} from './model-source.js';
import type {
  ChannelDecode,
  GenerateResult,
  GenerateSettings,
  GeneratorInfo,
  GeneratorSource,
  ImageSource,
  ModelInfo,
  Picture,
  ModelSource,
  Reply,
  Request,
  RunResult,
  RuntimeChoice,
} from './protocol.js';
import { channelGrid, errorHeatmap, pcaPicture, rgbPicture, stats } from './visualize.js';

const BASE = new URL(import.meta.env.BASE_URL, self.location.origin);
/** onnxruntime-web's own files, served by this app (never a CDN). */
const WASM_PATHS = new URL('ort/', BASE).href;
const cache = weightsCacheAvailable() ? createWeightsCache() : undefined;

let runtime: WebRuntime | undefined;
let model: LoadedModel | undefined;
let generator: LoadedGenerator | undefined;
/** TAESANA's decoder for the Generate previews, kept while the same folder is asked for. */
let previewer:
  { readonly url: string; readonly ae: Autoencoder; readonly files: BrowserModelFiles } | undefined;
/** The last run's latent and original, for the latent-channel slider's re-decodes. */
let lastRun:
  | {
      readonly latent: HostTensor<'float32'>;
      readonly original: RgbImage;
      readonly execution: ExecutionOptions;
      /** Bundled fixture sample: the PyTorch reconstruction from the first N channels, by N. */
      readonly references: ReadonlyMap<number, HostTensor<'float32'>>;
    }
  | undefined;
let job: { id: number; controller: AbortController } | undefined;

interface LoadedModel {
  readonly ae: Autoencoder;
  readonly files: BrowserModelFiles;
  readonly info: ModelInfo;
  /** Bundled fixtures: the reference input and outputs. */
  readonly reference?: {
    readonly sample: HostTensor<'float32'>;
    readonly latent: HostTensor<'float32'>;
    readonly reconstruction: HostTensor<'float32'>;
    /** `reconstruction_c<N>`: from the first N latent channels (DC-AE 1.5 fixtures). */
    readonly byChannels: ReadonlyMap<number, HostTensor<'float32'>>;
  };
}

/** A diffusion backbone and the DC-AE that decodes its samples. */
interface LoadedGenerator {
  readonly diffusion: DiffusionModel;
  readonly ae: Autoencoder;
  /** The folders they came from (one folder for a combined checkpoint). */
  readonly files: readonly BrowserModelFiles[];
  readonly info: GeneratorInfo;
}

function post(reply: Reply, transfer: Transferable[] = []): void {
  self.postMessage(reply, { transfer });
}

self.addEventListener('message', (event: MessageEvent<Request>) => {
  const request = event.data;
  if (request.type === 'cancel') {
    if (job?.id === request.job) job.controller.abort(new Error('Cancelled by the user'));
    return;
  }
  void handle(request);
});

async function handle(request: Exclude<Request, { type: 'cancel' }>): Promise<void> {
  const id = request.type === 'init' ? undefined : request.job;
  const controller = new AbortController();
  if (id !== undefined) job = { id, controller };
  try {
    const { signal } = controller;
    if (request.type === 'init') await init(request.runtime);
    else if (request.type === 'load') await load(request.job, request.source, request.dtype, signal);
    else if (request.type === 'run') await run(request.job, request.image, request.execution, signal);
    else if (request.type === 'decode-channels') await decodeChannels(request.job, request.channels, signal);
    else if (request.type === 'load-generator') await openGenerator(request.job, request.source, signal);
    else await runGenerate(request.job, request.settings, signal);
  } catch (error) {
    if (controller.signal.aborted && id !== undefined) post({ type: 'cancelled', job: id });
    else
      post({
        type: 'failed',
        job: id,
        code: DcaeError.is(error) ? error.code : 'INTERNAL',
        message: error instanceof Error ? error.message : String(error),
      });
  } finally {
    if (job?.id === id) job = undefined;
  }
}

/**
 * Starts onnxruntime-web right away (compiling its 28 MB of wasm and starting its threads take
 * seconds), so that the first model run does not pay for it.
 */
async function init(choice: RuntimeChoice): Promise<void> {
  const started = performance.now();
  const probe = await probeWebDevices();
  const settings = { threads: choice.threads, wasmPaths: WASM_PATHS };
  runtime =
    choice.device === 'webgpu' && probe.statuses.some((s) => s.device === 'webgpu' && s.available)
      ? await createWebRuntime({ ...settings, devices: ['webgpu', 'wasm'] })
      : await createWebRuntime({ ...settings, devices: ['wasm'] });
  const graph = new GraphBuilder({ name: 'warm-up' });
  graph.output(graph.root.neg(graph.input('x', 'float32', [1])), 'y', [1]);
  const session = await runtime.createSession(serializeModel(graph.build()));
  await session.run({ x: { dtype: 'float32', shape: [1], data: Float32Array.of(1) } });
  await session.dispose();
  post({
    type: 'ready',
    runtime: {
      name: runtime.name,
      devices: runtime.devices,
      report: probe.statuses.map(({ device, available, reason }) => ({
        device,
        selected: runtime!.devices.includes(device),
        reason: available ? reason : `unavailable: ${reason}`,
      })),
      threads: runtime.threads,
      crossOriginIsolated: self.crossOriginIsolated,
      startMs: performance.now() - started,
      ...(probe.gpu
        ? {
            gpu: {
              name: [probe.gpu.vendor, probe.gpu.architecture].filter(Boolean).join(' ') || 'unnamed adapter',
              isFallbackAdapter: probe.gpu.isFallbackAdapter,
              shaderF16: probe.gpu.shaderF16,
            },
          }
        : {}),
    },
  });
}

async function load(
  id: number,
  source: ModelSource,
  dtype: 'fp32' | 'fp16' | 'int8',
  signal: AbortSignal,
): Promise<void> {
  if (runtime === undefined) throw new DcaeError('INVALID_ARGUMENT', 'The runtime is not ready yet.');
  const previous = model;
  model = undefined;
  lastRun = undefined;
  await previous?.ae.dispose();
  previous?.files.release();

  const clock = new StageClock();
  clock.enter('download');
  const fetchOptions = downloadOptions(id, signal);
  let files: BrowserModelFiles;
  let reference: LoadedModel['reference'];
  if (source.kind === 'fixture') {
    const folder = fixtureFolder('dcae', source.name);
    files = await urlModelFiles(folder, fetchOptions, source.name);
    const [input, expected] = await Promise.all(
      ['input.safetensors', 'expected.safetensors'].map(async (file) =>
        parseSafetensors(
          new Uint8Array(
            await (await fetchBlob(new URL(file, folder).href, file, fetchOptions)).arrayBuffer(),
          ),
          { name: file },
        ),
      ),
    );
    const byChannels = new Map<number, HostTensor<'float32'>>();
    for (const key of expected!.header.tensors.keys()) {
      const match = /^reconstruction_c(\d+)$/.exec(key);
      if (match) byChannels.set(Number(match[1]), first(expected!.tensor(key) as HostTensor<'float32'>));
    }
    reference = {
      sample: first(input!.tensor('sample') as HostTensor<'float32'>),
      latent: first(expected!.tensor('latent') as HostTensor<'float32'>),
      reconstruction: first(expected!.tensor('reconstruction') as HostTensor<'float32'>),
      byChannels,
    };
  } else if (source.kind === 'default')
    files = await urlModelFiles(new URL(DEFAULT_MODEL_PATH, BASE).href, fetchOptions, DEFAULT_MODEL_NAME);
  else if (source.kind === 'url') files = await urlModelFiles(modelFolderUrl(source.url), fetchOptions);
  else files = localModelFiles(source.name, source.files);

  const ae = await loadAutoencoder(files, {
    runtime,
    signal,
    dtype,
    onProgress: (event) => progress(id, clock, event),
  }).catch((error: unknown) => {
    files.release();
    throw error;
  });
  clock.stop();
  const summary = ae.summary();
  const info: ModelInfo = {
    name: ae.name,
    format: ae.format,
    ratio: ae.spatialCompressionRatio,
    latentChannels: ae.latentChannels,
    parameters: { encoder: summary.parameters.encoder, decoder: summary.parameters.decoder },
    scalingFactor: ae.scalingFactor,
    dtype: ae.dtype,
    fixture: reference !== undefined,
    ...(source.kind === 'default' ? { defaultModel: true } : {}),
    ...(ae.architecture === 'dc-ae' ? { config: ae.config } : {}),
    adaptiveLatentChannels: ae.adaptiveLatentChannels,
    ...(ae.adaptiveLatentChannels ? {} : { adaptiveChannelsNote: adaptiveNote(ae) }),
  };
  model = { ae, files, info, ...(reference ? { reference } : {}) };
  post({ type: 'loaded', job: id, model: info, timings: clock.timings() });
}

async function run(
  id: number,
  source: ImageSource,
  execution: ExecutionOptions,
  signal: AbortSignal,
): Promise<void> {
  if (model === undefined) throw new DcaeError('INVALID_ARGUMENT', 'Load a model first.');
  const { ae, reference } = model;
  if (source.kind === 'fixture-sample' && reference === undefined)
    throw new DcaeError('INVALID_ARGUMENT', 'The reference sample exists only for the bundled fixtures.');
  const clock = new StageClock();
  const plans: Partial<Record<'encode' | 'decode', RunPlan>> = {};
  const onProgress = (event: AutoencoderProgress): void => {
    if (event.plan !== undefined && (event.stage === 'encode' || event.stage === 'decode'))
      plans[event.stage] = event.plan;
    progress(id, clock, event);
  };
  const input = source.kind === 'fixture-sample' ? reference!.sample : imageToTensor(source.image);
  lastRun = undefined;
  const latent = await ae.encode(input, { ...execution, signal, onProgress });
  const output = await ae.decode(latent, { ...execution, signal, onProgress });
  clock.enter('metrics');
  post({ type: 'progress', job: id, stage: 'metrics', detail: 'PSNR, SSIM and pictures' });

  const original: RgbImage = source.kind === 'rgb' ? source.image : tensorToImages(input)[0]!;
  lastRun = {
    latent,
    original,
    execution,
    references: source.kind === 'fixture-sample' ? reference!.byChannels : new Map(),
  };
  const reconstruction = tensorToImages(output)[0]!;
  const metrics = reconstructionMetrics([original], [reconstruction]);
  const heat = errorHeatmap(original, reconstruction);
  const [, c, h, w] = latent.shape as [number, number, number, number];
  const pca = pcaPicture(latent.data, c, h, w);
  clock.stop();
  const result: RunResult = {
    inputShape: input.shape,
    latentShape: latent.shape,
    original: rgbPicture(original),
    reconstruction: rgbPicture(reconstruction),
    error: heat.picture,
    errorScale: heat.scale,
    channels: channelGrid(latent.data, c, h, w),
    pca: pca.picture,
    pcaExplained: pca.explained,
    metrics: { psnr: metrics.psnr, ssim: metrics.ssim, meanAbsError: heat.meanAbsError },
    latentStats: stats(latent.data),
    plans: { encode: plans.encode!, decode: plans.decode! },
    ...(source.kind === 'fixture-sample'
      ? {
          reference: {
            latent: compare(latent, reference!.latent),
            reconstruction: compare(output, reference!.reconstruction),
          },
        }
      : {}),
    device: runtime?.devices[0] ?? 'unknown',
    timings: clock.timings(),
  };
  const pictures = [result.original, result.reconstruction, result.error, result.channels, result.pca];
  post(
    { type: 'result', job: id, result },
    pictures.map((p) => p.rgba.buffer),
  );
}

/**
 * The last run's latent decoded from its first `channels` channels: the library's adaptive decode
 * (a latent with fewer channels is decoded as if zero-padded; docs/dc-ae-1.5.md). A re-decode the
 * page no longer wants is cancelled: it reports `cancelled` instead of its result.
 */
async function decodeChannels(id: number, channels: number, signal: AbortSignal): Promise<void> {
  if (model === undefined || lastRun === undefined)
    throw new DcaeError('INVALID_ARGUMENT', 'Run Encode → decode first: the slider re-decodes its latent.');
  const { ae } = model;
  if (!ae.adaptiveLatentChannels) throw new DcaeError('UNSUPPORTED', adaptiveNote(ae));
  const started = performance.now();
  const { latent, original, execution, references } = lastRun;
  const output = await ae.decode(firstChannels(latent, channels), { ...execution, signal });
  signal.throwIfAborted();
  const reconstruction = tensorToImages(output)[0]!;
  const { psnr, ssim } = reconstructionMetrics([original], [reconstruction]);
  const expected = references.get(channels);
  const result: ChannelDecode = {
    channels,
    latentChannels: ae.latentChannels,
    reconstruction: rgbPicture(reconstruction),
    metrics: { psnr, ssim },
    ...(expected ? { reference: compare(output, expected) } : {}),
    ms: performance.now() - started,
  };
  post({ type: 'channels-decoded', job: id, result }, [result.reconstruction.rgba.buffer]);
}

/** The first `n` channels of a [B, C, h, w] latent. */
function firstChannels(latent: HostTensor<'float32'>, n: number): HostTensor<'float32'> {
  const [b, c, h, w] = latent.shape as [number, number, number, number];
  if (!Number.isInteger(n) || n < 1 || n > c)
    throw new DcaeError('INVALID_ARGUMENT', `channels must be an integer from 1 to ${c}; got ${n}.`);
  if (n === c) return latent;
  const plane = h * w;
  const data = new Float32Array(b * n * plane);
  for (let i = 0; i < b; i++)
    data.set(latent.data.subarray(i * c * plane, (i * c + n) * plane), i * n * plane);
  return { dtype: 'float32', shape: [b, n, h, w], data };
}

/** Why `ae` cannot decode a latent's first channels alone (docs/dc-ae-1.5.md). */
function adaptiveNote(ae: Autoencoder): string {
  const why =
    ae.architecture === 'dc-ae'
      ? (adaptiveChannelsRefusal(ae.config) ?? 'its latent channels are not separable.')
      : ae.architecture === 'sd-vae'
        ? 'an AutoencoderKL latent has no channel order to truncate.'
        : 'its latent was not trained to be ordered (structured) by channel.';
  return `Only models with adaptive latent channels (the DC-AE 1.5 layout) decode their first channels alone; ${ae.name} cannot: ${why}`;
}

function progress(id: number, clock: StageClock, event: AutoencoderProgress): void {
  const name =
    event.part !== undefined && (event.stage === 'build' || event.stage === 'session')
      ? `${event.stage} ${event.part}`
      : event.stage;
  clock.enter(name);
  const tiles = event.plan?.tiles;
  post({
    type: 'progress',
    job: id,
    stage: name,
    detail: tiles
      ? `tile ${event.done}/${event.total} (${tiles.rows}×${tiles.columns} tiles of ${tiles.tileSize} px, overlap ${tiles.overlap} px)`
      : `${name} ${event.done}/${event.total}`,
    done: event.done,
    total: event.total,
    ...(event.total > 0 ? { fraction: event.done / event.total } : {}),
  });
}

/**
 * Loads a diffusion backbone and its DC-AE: a bundled tiny backbone with the bundled DC-AE it pairs
 * with, or a released combined checkpoint, whose AE weights sit under `autoencoder.` in the same
 * model.safetensors and whose AE architecture the diffusion preset names.
 */
async function openGenerator(id: number, source: GeneratorSource, signal: AbortSignal): Promise<void> {
  if (runtime === undefined) throw new DcaeError('INVALID_ARGUMENT', 'The runtime is not ready yet.');
  await releaseGenerator();
  const clock = new StageClock();
  clock.enter('download');
  const fetchOptions = downloadOptions(id, signal);
  const folders: BrowserModelFiles[] = [];
  try {
    const backbone =
      source.kind === 'fixture'
        ? await urlModelFiles(fixtureFolder('diffusion', source.name), fetchOptions, source.name, [
            WEIGHTS_FILE,
          ])
        : await urlModelFiles(modelFolderUrl(source.url), fetchOptions, source.url, [WEIGHTS_FILE]);
    folders.push(backbone);
    const aeFolder =
      source.kind === 'fixture'
        ? await urlModelFiles(fixtureFolder('dcae', source.autoencoder), fetchOptions, source.autoencoder)
        : backbone;
    if (aeFolder !== backbone) folders.push(aeFolder);

    // Backbone and autoencoder (the combined checkpoint's own, or the fixture pair) in one call.
    const loaded = await loadGenerator(backbone, {
      runtime,
      signal,
      autoencoder: source.kind === 'fixture' ? aeFolder : 'auto',
      autoencoderParts: ['decoder'],
      onStage: (stage) => {
        if (stage === 'backbone') {
          clock.enter('load diffusion model');
          post({ type: 'progress', job: id, stage: 'load', detail: 'diffusion backbone: graph and session' });
        } else clock.enter('load autoencoder');
      },
    });
    const { model: diffusion, autoencoder } = loaded;
    const { preset, config } = diffusion;
    if (autoencoder === undefined) {
      await loaded.dispose();
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `${source.kind === 'url' ? source.url : source.name}: ` +
          (preset === undefined
            ? 'config.json gives the backbone explicitly and names no autoencoder'
            : 'model.safetensors holds no autoencoder.* tensors') +
          ', so its samples cannot be decoded here. ' +
          'Use a released combined checkpoint (config.json {"model_name": "dc-ae-…-in-512px"}).',
      );
    }
    const ae = autoencoder;
    clock.stop();
    const samplers = compatibleSamplers(config);
    const sampler = preset?.sampler ?? samplers[0]!;
    const family = config.prediction === 'velocity' ? 'USiT' : config.family === 'dit' ? 'DiT' : 'UViT';
    const info: GeneratorInfo = {
      name:
        source.kind === 'fixture' ? `${source.name} + ${source.autoencoder}` : (preset?.name ?? source.url),
      label: preset?.label ?? `${family} (explicit config)`,
      latentShape: diffusion.latentShape,
      imageSize: diffusion.latentShape[1] * ae.spatialCompressionRatio,
      samplers,
      defaults: {
        sampler,
        steps: Object.fromEntries(
          samplers
            .filter((s) => s !== 'dopri5')
            .map((s) => [s, preset?.sampler === s ? preset.steps : DEFAULT_STEPS[s]]),
        ),
        guidanceScale: preset?.guidanceScale,
      },
      classes: config.numClasses,
      autoencoder: { name: ae.name, ratio: ae.spatialCompressionRatio, scalingFactor: ae.scalingFactor },
      fixture: source.kind === 'fixture',
    };
    generator = { diffusion, ae, files: folders, info };
    post({ type: 'generator-loaded', job: id, model: info, timings: clock.timings() });
  } catch (error) {
    for (const folder of folders) folder.release();
    throw error;
  }
}

async function releaseGenerator(): Promise<void> {
  const previous = generator;
  generator = undefined;
  if (previous === undefined) return;
  await Promise.all([previous.diffusion.dispose(), previous.ae.dispose()]);
  for (const folder of previous.files) folder.release();
}

/**
 * TAESANA's decoder from `url` (a folder with taesana_decoder.pth), loaded once per folder, checked
 * against the generator: it decodes f32c32 latents only (docs/taesana.md).
 */
async function taesanaPreviewer(
  id: number,
  source: { url: string; name: string },
  clock: StageClock,
  signal: AbortSignal,
): Promise<Autoencoder> {
  const { ae } = generator!;
  if (previewer?.url !== source.url) {
    const previous = previewer;
    previewer = undefined;
    await previous?.ae.dispose();
    previous?.files.release();
    clock.enter('load TAESANA');
    post({ type: 'progress', job: id, stage: 'load', detail: `TAESANA for the previews (${source.name})` });
    const files = await urlModelFiles(source.url, downloadOptions(id, signal), source.name, [
      'taesana_decoder.pth',
    ]);
    const taesana = await loadAutoencoder(files, { runtime: runtime!, signal, parts: ['decoder'] }).catch(
      (error: unknown) => {
        files.release();
        throw error;
      },
    );
    previewer = { url: source.url, ae: taesana, files };
  }
  const taesana = previewer.ae;
  if (taesana.architecture !== 'taesana')
    throw new DcaeError('INVALID_ARGUMENT', `${source.name} is not a TAESANA folder (taesana_decoder.pth).`);
  if (
    taesana.latentChannels !== ae.latentChannels ||
    taesana.spatialCompressionRatio !== ae.spatialCompressionRatio
  )
    throw new DcaeError(
      'UNSUPPORTED',
      `TAESANA decodes ${taesana.latentChannels}-channel f${taesana.spatialCompressionRatio} latents; this model samples ` +
        `${ae.latentChannels}-channel f${ae.spatialCompressionRatio} latents. Preview with the latent PCA instead.`,
    );
  if (ae.scalingFactor === undefined)
    throw new DcaeError(
      'UNSUPPORTED',
      'This model has no scaling factor, so its x̂₀ cannot be brought back to latent units for TAESANA.',
    );
  return taesana;
}

/** `generate()` of @dcae/diffusion with a step clock, previews and the decode stages timed. */
async function runGenerate(id: number, settings: GenerateSettings, signal: AbortSignal): Promise<void> {
  if (generator === undefined) throw new DcaeError('INVALID_ARGUMENT', 'Load a diffusion model first.');
  const { diffusion, ae } = generator;
  const clock = new StageClock();
  const taesana =
    settings.preview && settings.taesana !== undefined
      ? await taesanaPreviewer(id, settings.taesana, clock, signal)
      : undefined;
  // TAESANA previews: at most one decode at a time, the newest step next (steps in between are skipped).
  let previewing: Promise<void> | undefined;
  let pending: { step: number; denoised: HostTensor<'float32'> } | undefined;
  let previewFailure: Error | undefined;
  const nextPreview = (): void => {
    if (previewing !== undefined || pending === undefined || taesana === undefined) return;
    const { step, denoised } = pending;
    pending = undefined;
    const scale = ae.scalingFactor!;
    previewing = taesana
      .decode(
        { dtype: 'float32', shape: denoised.shape, data: denoised.data.map((v) => v / scale) },
        { signal },
      )
      .then((decoded) => {
        const pictures = tensorToImages(decoded).map(rgbPicture);
        post(
          { type: 'preview', job: id, step, pictures },
          pictures.map((p) => p.rgba.buffer),
        );
      })
      .catch((error: unknown) => {
        previewFailure ??= error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        previewing = undefined;
        nextPreview();
      });
  };
  const decoder: LatentDecoder = {
    scalingFactor: ae.scalingFactor,
    latentChannels: ae.latentChannels,
    decode: (latents, options) =>
      ae.decode(latents, { ...options, onProgress: (event) => progress(id, clock, event) }),
  };
  const stepMs: number[] = [];
  clock.enter('sampling');
  let last = performance.now();
  const result = await generate({
    model: diffusion,
    autoencoder: decoder,
    classLabels: settings.classLabels,
    ...(settings.guidanceScale !== undefined ? { guidanceScale: settings.guidanceScale } : {}),
    ...(settings.steps !== undefined ? { steps: settings.steps } : {}),
    ...(settings.sampler !== undefined ? { sampler: settings.sampler } : {}),
    seed: settings.seed,
    signal,
    onProgress: (step) => {
      const now = performance.now();
      stepMs.push(now - last);
      last = now;
      if (taesana !== undefined) {
        pending = { step: step.step, denoised: step.denoised };
        nextPreview();
      }
      const preview = settings.preview && taesana === undefined ? latentPictures(step.denoised) : undefined;
      post(
        {
          type: 'step',
          job: id,
          step: step.step,
          totalSteps: step.totalSteps,
          progress: step.progress,
          nfe: step.nfe,
          ms: stepMs.at(-1)!,
          ...(preview ? { preview } : {}),
        },
        preview?.map((p) => p.rgba.buffer) ?? [],
      );
    },
  });
  // The last step's preview is always shown: wait for the previews in flight.
  while (previewing !== undefined) await previewing;
  if (previewFailure !== undefined) throw previewFailure;
  clock.enter('pictures');
  const images = tensorToImages(result.images!).map(rgbPicture);
  clock.stop();
  const generated: GenerateResult = {
    classLabels: settings.classLabels,
    latentShape: result.latent.shape,
    latent: result.latent.data,
    images,
    sampler: result.sampler,
    steps: result.steps,
    guidanceScale: result.guidanceScale,
    seed: Number(result.seed),
    nfe: result.nfe,
    stepMs,
    latentStats: stats(result.latent.data),
    device: runtime?.devices[0] ?? 'unknown',
    timings: clock.timings(),
  };
  post({ type: 'generated', job: id, result: generated }, [
    generated.latent.buffer,
    ...images.map((p) => p.rgba.buffer),
  ]);
}

/** Each sample of a [B, C, h, w] latent as its first three principal components in RGB. */
function latentPictures(latent: HostTensor<'float32'>): Picture[] {
  const [b, c, h, w] = latent.shape as [number, number, number, number];
  return Array.from(
    { length: b },
    (_, i) => pcaPicture(latent.data.subarray(i * c * h * w, (i + 1) * c * h * w), c, h, w).picture,
  );
}

/** Downloads report their progress as the job's `download` stage. */
function downloadOptions(id: number, signal: AbortSignal): FetchOptions {
  return {
    cache,
    signal,
    onProgress: (file, loaded, total, fromCache) =>
      post({
        type: 'progress',
        job: id,
        stage: 'download',
        detail: fromCache
          ? `${file} from the browser cache`
          : `${file}: ${megabytes(loaded)}${total ? ` of ${megabytes(total)}` : ''}`,
        ...(total ? { fraction: loaded / total } : {}),
      }),
  };
}

/** A bundled fixture's folder, served from the repository's `fixtures/<kind>/`. */
function fixtureFolder(kind: 'dcae' | 'diffusion', name: string): string {
  return new URL(`fixtures/${kind}/${encodeURIComponent(name)}/`, BASE).href;
}

/** The first item of a batch, as a batch of one. */
function first(tensor: HostTensor<'float32'>): HostTensor<'float32'> {
  const [, ...rest] = tensor.shape;
  const size = rest.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape: [1, ...rest], data: tensor.data.slice(0, size) };
}

/** max |Δ| and the fixtures' tolerance, 1e-4 · max(1, max |expected|) (fixtures/README.md). */
function compare(
  actual: HostTensor<'float32'>,
  expected: HostTensor<'float32'>,
): { maxAbsDiff: number; tolerance: number } {
  let worst = actual.data.length === expected.data.length ? 0 : Infinity;
  let scale = 1;
  for (let i = 0; i < expected.data.length; i++) {
    worst = Math.max(worst, Math.abs(actual.data[i]! - expected.data[i]!));
    scale = Math.max(scale, Math.abs(expected.data[i]!));
  }
  return { maxAbsDiff: worst, tolerance: 1e-4 * scale };
}

/** Wall time per stage; re-entering a stage adds to it. */
class StageClock {
  readonly #totals = new Map<string, number>();
  #current: { name: string; since: number } | undefined;

  enter(name: string): void {
    if (this.#current?.name === name) return;
    this.stop();
    this.#current = { name, since: performance.now() };
  }

  stop(): void {
    if (this.#current === undefined) return;
    const { name, since } = this.#current;
    this.#totals.set(name, (this.#totals.get(name) ?? 0) + performance.now() - since);
    this.#current = undefined;
  }

  timings(): { stage: string; ms: number }[] {
    return [...this.#totals].map(([stage, ms]) => ({ stage, ms }));
  }
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}
