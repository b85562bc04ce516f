/**
 * The page: controls, the inference worker's lifecycle and the drawing of results. All model work
 * happens in worker.ts; this thread stays free to draw progress and to cancel.
 */
import type { ExecutionOptions, FitMode, RgbImage, RunPlan } from '@dcae/autoencoder';
import { DEFAULT_MEMORY_BUDGET_BYTES, defaultTileGeometry, planRun, tensorToImages } from '@dcae/autoencoder';
import type { HostTensor } from '@dcae/core';
import { DcaeError, parseSafetensors } from '@dcae/core';
import type { SamplerName } from '@dcae/diffusion';
import { DIFFUSION_PRESETS } from '@dcae/diffusion';
import { createWeightsCache, weightsCacheAvailable } from '@dcae/runtime-adapters/web';
import { className, classPicker } from './class-picker.js';
import { decodeImageFile, limitSize, prepareImage, rgbaImageData } from './image-input.js';
import { HUB_PRESETS } from './model-source.js';
import type {
  GenerateResult,
  GenerateSettings,
  GeneratorInfo,
  GeneratorSource,
  ImageSource,
  ModelInfo,
  ModelSource,
  Picture,
  Reply,
  Request,
  RunResult,
  RuntimeChoice,
  RuntimeInfo,
  Timings,
} from './protocol.js';
import { SAMPLES } from './samples.js';

type Tab = 'fixture' | 'hub' | 'url' | 'folder';
type View = 'reconstruct' | 'generate';
type PageState = 'starting' | 'idle' | 'running' | 'done' | 'cancelled' | 'error';
type Chosen = { kind: 'fixture-sample' } | { kind: 'image'; label: string; image: RgbImage };

/** What the page exposes for scripts and end-to-end tests. */
interface PageReport {
  state: PageState;
  runtime?: RuntimeInfo;
  model?: ModelInfo;
  result?: Omit<RunResult, 'original' | 'reconstruction' | 'error' | 'channels' | 'pca'>;
  /** Milliseconds from the last Cancel click to the stopped job. */
  cancelMs?: number;
  error?: { code: string; message: string };
  /** Progress events of the current or last job, in order (e.g. one per tile of a tiled encode). */
  progress: { stage: string; done?: number; total?: number }[];
  /** The loaded diffusion model and the last generation (the latent as plain numbers). */
  generator?: GeneratorInfo;
  generation?: Omit<GenerateResult, 'images' | 'latent'> & { latent: number[] };
  /** Sampler steps reported by the current or last generation. */
  steps: number;
  /** Runs started by the buttons (each Load, Encode → decode or Generate click that started one). */
  jobs: number;
}

declare global {
  interface Window {
    dcae: PageReport;
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

const report: PageReport = (window.dcae = { state: 'starting', progress: [], steps: 0, jobs: 0 });
const ui = {
  badge: $('runtime-badge'),
  tabs: [...document.querySelectorAll<HTMLButtonElement>('[data-tab]')],
  panes: [...document.querySelectorAll<HTMLElement>('[data-pane]')],
  fixtureSelect: $<HTMLSelectElement>('fixture-select'),
  hubSelect: $<HTMLSelectElement>('hub-select'),
  urlInput: $<HTMLInputElement>('url-input'),
  folderDrop: $('folder-drop'),
  folderInput: $<HTMLInputElement>('folder-input'),
  folderLabel: $('folder-label'),
  dtype: $<HTMLSelectElement>('dtype'),
  load: $<HTMLButtonElement>('load'),
  modelInfo: $('model-info'),
  clearCache: $<HTMLButtonElement>('clear-cache'),
  cacheInfo: $('cache-info'),
  samples: $('samples'),
  imageDrop: $('image-drop'),
  imageInput: $<HTMLInputElement>('image-input'),
  maxSide: $<HTMLSelectElement>('max-side'),
  fit: $<HTMLSelectElement>('fit'),
  imageNote: $('image-note'),
  tiling: $<HTMLSelectElement>('tiling'),
  tileSize: $<HTMLInputElement>('tile-size'),
  tileOverlap: $<HTMLInputElement>('tile-overlap'),
  memoryBudget: $<HTMLInputElement>('memory-budget'),
  tilingNote: $('tiling-note'),
  device: $<HTMLSelectElement>('device'),
  threads: $<HTMLSelectElement>('threads'),
  runtimeNote: $('runtime-note'),
  runtimeSection: $('runtime-section'),
  viewTabs: [...document.querySelectorAll<HTMLButtonElement>('[data-view]')],
  pages: [...document.querySelectorAll<HTMLElement>('[data-page]')],
  genModel: $<HTMLSelectElement>('gen-model'),
  genUrl: $<HTMLInputElement>('gen-url'),
  genModelHint: $('gen-model-hint'),
  genLoad: $<HTMLButtonElement>('gen-load'),
  genModelInfo: $('gen-model-info'),
  genSampler: $<HTMLSelectElement>('gen-sampler'),
  genSteps: $<HTMLInputElement>('gen-steps'),
  genGuidance: $<HTMLInputElement>('gen-guidance'),
  genSeed: $<HTMLInputElement>('gen-seed'),
  genPreview: $<HTMLInputElement>('gen-preview'),
  genGrid: $('gen-grid'),
};

/** Each view's run button, Cancel, progress bar and status line. */
const actions: Record<
  View,
  { run: HTMLButtonElement; cancel: HTMLButtonElement; progress: HTMLElement; status: HTMLElement }
> = {
  reconstruct: {
    run: $<HTMLButtonElement>('run'),
    cancel: $<HTMLButtonElement>('cancel'),
    progress: $('progress-bar'),
    status: $('status'),
  },
  generate: {
    run: $<HTMLButtonElement>('generate'),
    cancel: $<HTMLButtonElement>('gen-cancel'),
    progress: $('gen-progress-bar'),
    status: $('gen-status'),
  },
};

let tab: Tab = 'fixture';
let chosen: Chosen = { kind: 'fixture-sample' };
let folder: { name: string; files: File[] } | undefined;
let loaded: { key: string; info: ModelInfo; timings: Timings } | undefined;
let generatorLoaded: { key: string; info: GeneratorInfo; timings: Timings } | undefined;
/** The view whose controls show the current (or last) job. */
let jobView: View = 'reconstruct';

// ---------------------------------------------------------------- the worker

interface Pending {
  readonly id: number;
  readonly resolve: (reply: Reply) => void;
  readonly reject: (error: JobError) => void;
}

class JobError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

let worker: Worker | undefined;
let ready: Promise<RuntimeInfo> | undefined;
let pending: Pending | undefined;
let nextJob = 1;

function runtimeChoice(): RuntimeChoice {
  return { device: ui.device.value as RuntimeChoice['device'], threads: Number(ui.threads.value) };
}

/** Starts the worker (and its onnxruntime-web) with the chosen device and threads, once. */
function ensureWorker(): Promise<RuntimeInfo> {
  if (ready !== undefined) return ready;
  const started = new Worker(new URL('./worker.ts', import.meta.url), {
    type: 'module',
    name: 'dcae-inference',
  });
  worker = started;
  ready = new Promise<RuntimeInfo>((resolve, reject) => {
    started.addEventListener('message', (event: MessageEvent<Reply>) => {
      const reply = event.data;
      if (reply.type === 'ready') resolve(reply.runtime);
      else if (reply.type === 'failed' && reply.job === undefined)
        reject(new JobError(reply.code, reply.message));
      else onReply(reply);
    });
    started.addEventListener('error', (event) =>
      reject(new JobError('WORKER', event.message || 'The worker failed to start.')),
    );
  });
  send({ type: 'init', runtime: runtimeChoice() });
  ready.then(showRuntime, (error: JobError) => fail(error));
  return ready;
}

function send(request: Request, transfer: Transferable[] = []): void {
  worker!.postMessage(request, transfer);
}

/** Stops the worker at once, even inside a run; the next job starts a fresh one (and reloads the model). */
function stopWorker(): void {
  worker?.terminate();
  worker = undefined;
  ready = undefined;
  loaded = undefined;
  generatorLoaded = undefined;
  showModel(undefined);
  showGenerator(undefined);
}

function onReply(reply: Reply): void {
  if (reply.type === 'ready' || pending === undefined || reply.job !== pending.id) return;
  if (reply.type === 'progress') {
    report.progress.push({ stage: reply.stage, done: reply.done, total: reply.total });
    actions[jobView].progress.style.width = `${Math.round((reply.fraction ?? 0.5) * 100)}%`;
    setStatus(`${capitalize(reply.stage)}: ${reply.detail}`);
    return;
  }
  if (reply.type === 'step') {
    showStep(reply);
    return;
  }
  const job = pending;
  pending = undefined;
  if (reply.type === 'failed') job.reject(new JobError(reply.code, reply.message));
  else if (reply.type === 'cancelled') job.reject(new JobError('ABORTED', 'Cancelled.'));
  else job.resolve(reply);
}

/** A request without its job number (distributes over the union). */
type JobRequest<R = Exclude<Request, { type: 'init' | 'cancel' }>> = R extends unknown
  ? Omit<R, 'job'>
  : never;

function job<T extends Reply>(request: JobRequest, transfer: Transferable[] = []): Promise<T> {
  const id = nextJob++;
  report.progress = [];
  return new Promise<T>((resolve, reject) => {
    pending = { id, resolve: resolve as (reply: Reply) => void, reject };
    send({ ...request, job: id }, transfer);
  });
}

/** Asks the job to stop; if it is inside onnxruntime-web and does not stop at once, stops the worker. */
let cancelledAt: number | undefined;

function cancel(): void {
  const job = pending;
  if (job === undefined) return;
  cancelledAt = performance.now();
  send({ type: 'cancel', job: job.id });
  setStatus('Cancelling…');
  setTimeout(() => {
    if (pending !== job) return;
    pending = undefined;
    stopWorker();
    job.reject(
      new JobError(
        'ABORTED',
        'Cancelled: the worker was stopped mid-run (the model reloads on the next run).',
      ),
    );
    // A fresh worker starts onnxruntime-web while the user decides what to do next.
    void ensureWorker().catch(() => undefined);
  }, 250);
}

// ---------------------------------------------------------------- the pipeline

function modelSource(): { source: ModelSource; key: string } {
  if (tab === 'fixture')
    return {
      source: { kind: 'fixture', name: ui.fixtureSelect.value },
      key: `fixture:${ui.fixtureSelect.value}`,
    };
  if (tab === 'hub')
    return { source: { kind: 'url', url: ui.hubSelect.value }, key: `url:${ui.hubSelect.value}` };
  if (tab === 'url') {
    const url = ui.urlInput.value.trim();
    if (url === '')
      throw new JobError('INVALID_ARGUMENT', 'Enter a model folder URL or a Hugging Face repo id.');
    return { source: { kind: 'url', url }, key: `url:${url}` };
  }
  if (folder === undefined) throw new JobError('INVALID_ARGUMENT', 'Choose or drop a model folder first.');
  return {
    source: { kind: 'files', name: folder.name, files: folder.files },
    key: `files:${folder.name}:${folder.files.length}`,
  };
}

async function ensureModel(): Promise<ModelInfo> {
  await ensureWorker();
  const { source, key } = modelSource();
  const dtype = ui.dtype.value as 'fp32' | 'fp16' | 'int8';
  if (loaded?.key === `${key}:${dtype}`) return loaded.info;
  loaded = undefined;
  setStatus('Loading the model…');
  const reply = await job<Extract<Reply, { type: 'loaded' }>>({ type: 'load', source, dtype });
  loaded = { key: `${key}:${dtype}`, info: reply.model, timings: reply.timings };
  showModel(reply.model);
  showTimings(reply.timings);
  return reply.model;
}

function imageSource(model: ModelInfo): { source: ImageSource; transfer: Transferable[] } {
  if (chosen.kind === 'fixture-sample') {
    if (!model.fixture)
      throw new JobError(
        'INVALID_ARGUMENT',
        'The reference sample belongs to the bundled models; pick another image.',
      );
    ui.imageNote.textContent =
      'The fixture’s own input tensor, fed exactly: results are compared with the PyTorch reference.';
    return { source: { kind: 'fixture-sample' }, transfer: [] };
  }
  const prepared = prepareImage(chosen.image, {
    maxSide: Number(ui.maxSide.value),
    ratio: model.ratio,
    fit: ui.fit.value as FitMode,
  });
  ui.imageNote.textContent = prepared.note;
  const image = { ...prepared.image, data: prepared.image.data.slice() };
  return { source: { kind: 'rgb', image }, transfer: [image.data.buffer] };
}

async function runPipeline(loadOnly: boolean): Promise<void> {
  await runJob('reconstruct', async () => {
    const model = await ensureModel();
    if (loadOnly) {
      setStatus(`Loaded ${model.name}.`);
      setState('idle');
      return;
    }
    const execution = executionOptions();
    const { source, transfer } = imageSource(model);
    setStatus('Encoding…');
    const { result } = await job<Extract<Reply, { type: 'result' }>>(
      { type: 'run', image: source, execution },
      transfer,
    );
    showResult(result);
    setStatus(
      `Done on ${result.device}: PSNR ${result.metrics.psnr.toFixed(2)} dB, SSIM ${result.metrics.ssim.toFixed(4)}` +
        `${tiledNote(result.plans)}.`,
    );
    setState('done');
  });
}

/** Runs `work` as the page's one job, in `view`'s controls: busy state, errors, cancellation. */
async function runJob(view: View, work: () => Promise<void>): Promise<void> {
  if (pending !== undefined) return;
  report.jobs++;
  jobView = view;
  cancelledAt = undefined;
  setBusy(true);
  setState('running');
  try {
    await work();
  } catch (error) {
    const failure =
      error instanceof JobError
        ? error
        : DcaeError.is(error)
          ? new JobError(error.code, error.message)
          : new JobError('INTERNAL', String(error));
    if (failure.code === 'ABORTED') {
      report.cancelMs = cancelledAt === undefined ? undefined : performance.now() - cancelledAt;
      setStatus(
        `${failure.message}${report.cancelMs === undefined ? '' : ` (stopped ${report.cancelMs.toFixed(0)} ms after the click)`}`,
      );
      setState('cancelled');
    } else fail(failure);
  } finally {
    setBusy(false);
    actions[view].progress.style.width = '0';
  }
}

// ---------------------------------------------------------------- tiling

/** The tiling controls as the library's options (the library checks them against the model). */
function executionOptions(): ExecutionOptions {
  const budget = memoryBudgetBytes();
  if (ui.tiling.value === 'off') return { tiling: 'never' };
  if (ui.tiling.value === 'auto') return { tiling: 'auto', memoryBudgetBytes: budget };
  const geometry = { tileSize: Number(ui.tileSize.value), overlap: Number(ui.tileOverlap.value) };
  if (ui.tileSize.value.trim() === '' || ui.tileOverlap.value.trim() === '')
    throw new JobError(
      'INVALID_ARGUMENT',
      'Enter a tile size and an overlap in pixels, or set Tiling to auto.',
    );
  return { tiling: geometry };
}

/** The budget field (MiB) in bytes; empty means the library's default. */
function memoryBudgetBytes(): number | undefined {
  const text = ui.memoryBudget.value.trim();
  return text === '' ? undefined : Number(text) * 2 ** 20;
}

/**
 * Enables the fields the tiling mode uses and checks them with the library's own rules for the
 * loaded model (tile size a multiple of its compression ratio f, overlap below the tile size and
 * leaving a stride of at least f), showing its message next to the fields.
 */
function updateTilingNote(): void {
  const mode = ui.tiling.value;
  ui.tileSize.disabled = ui.tileOverlap.disabled = mode !== 'on';
  ui.memoryBudget.disabled = mode !== 'auto';
  const model = loaded?.info;
  const f = model?.ratio;
  let problem: string | undefined;
  let text: string;
  if (mode === 'off') text = 'Every image runs whole, however large.';
  else if (mode === 'auto') {
    const geometry = defaultTileGeometry(f ?? 32);
    const budget = memoryBudgetBytes();
    if (budget !== undefined && !(budget > 0))
      problem = 'The memory budget must be a positive number of MiB.';
    text =
      `Whole images, unless one run's estimated activations exceed ${mebibytes(budget ?? DEFAULT_MEMORY_BUDGET_BYTES)}: ` +
      `then tiles of ${f === undefined ? 'the default size' : `${geometry.tileSize} px`}, overlap ${geometry.overlap} px.`;
  } else {
    const tileSize = Number(ui.tileSize.value);
    const overlap = Number(ui.tileOverlap.value);
    text =
      f === undefined
        ? 'The tile size must be a multiple of the model’s compression ratio f; it is checked once a model is loaded.'
        : `Tile size: a multiple of f = ${f} px; overlap: 0 to tile size − 1, leaving a stride of at least ${f} px.`;
    if (model?.config) {
      try {
        const plan = planRun(model.config, 'encode', [1, 3, tileSize, 2 * tileSize], {
          tiling: { tileSize, overlap },
        });
        text += ` ✓ stride ${plan.tiles?.stride ?? tileSize} px.`;
      } catch (error) {
        problem = error instanceof Error ? error.message : String(error);
      }
    } else if (!(tileSize > 0) || !(overlap >= 0)) problem = 'Enter a positive tile size and an overlap ≥ 0.';
  }
  const invalid = problem !== undefined;
  ui.tileSize.setAttribute('aria-invalid', String(invalid && mode === 'on'));
  ui.tileOverlap.setAttribute('aria-invalid', String(invalid && mode === 'on'));
  ui.memoryBudget.setAttribute('aria-invalid', String(invalid && mode === 'auto'));
  ui.tilingNote.textContent = problem ?? text;
  ui.tilingNote.classList.toggle('warn', invalid);
}

/** How one encode or decode ran, for the results. */
function describePlan(plan: RunPlan): string {
  const runs = `${plan.runs} run${plan.runs === 1 ? '' : 's'}`;
  if (plan.tiles === undefined)
    return `whole image (${runs}, ~${mebibytes(plan.estimatedBytes)} activations)`;
  const { rows, columns, tileSize, overlap, stride } = plan.tiles;
  return `tiled: ${rows}×${columns} = ${rows * columns} tiles of ${tileSize} px, overlap ${overlap} px, stride ${stride} px (${runs})`;
}

function tiledNote(plans: RunResult['plans']): string {
  const { encode, decode } = plans;
  if (encode.tiles === undefined && decode.tiles === undefined) return '';
  return `; tiled: ${encode.runs} encoder and ${decode.runs} decoder runs`;
}

// ---------------------------------------------------------------- generation

/** The chosen diffusion model: a bundled backbone (+ its DC-AE), a released preset, or a hub id / URL. */
function generatorSource(): { source: GeneratorSource; key: string } {
  const value = ui.genModel.value;
  if (value.startsWith('fixture:')) {
    const [, name, autoencoder] = value.split(':') as [string, string, string];
    return { source: { kind: 'fixture', name, autoencoder }, key: value };
  }
  const url = value === 'custom' ? ui.genUrl.value.trim() : value;
  if (url === '')
    throw new JobError('INVALID_ARGUMENT', 'Enter the hub id or URL of a combined diffusion checkpoint.');
  return { source: { kind: 'url', url }, key: `url:${url}` };
}

async function ensureGenerator(): Promise<GeneratorInfo> {
  await ensureWorker();
  const { source, key } = generatorSource();
  if (generatorLoaded?.key === key) return generatorLoaded.info;
  generatorLoaded = undefined;
  setStatus('Loading the diffusion model…');
  const reply = await job<Extract<Reply, { type: 'generator-loaded' }>>({ type: 'load-generator', source });
  generatorLoaded = { key, info: reply.model, timings: reply.timings };
  showGenerator(reply.model);
  showTimings(reply.timings, $('gen-timings'));
  return reply.model;
}

/**
 * The sampling settings as typed. Empty fields take the model's defaults; anything else goes to
 * generate() as it is, so out-of-range values get the library's own message.
 */
function generateSettings(): GenerateSettings {
  const number = (input: HTMLInputElement, name: string): number | undefined => {
    const text = input.value.trim();
    if (text === '') return undefined;
    if (input.validity.badInput || !Number.isFinite(Number(text)))
      throw new JobError('INVALID_ARGUMENT', `${name} must be a number; got "${text}".`);
    return Number(text);
  };
  return {
    classLabels: picker.labels(),
    guidanceScale: number(ui.genGuidance, 'Guidance scale'),
    steps: number(ui.genSteps, 'Steps'),
    sampler: (ui.genSampler.value || undefined) as SamplerName | undefined,
    seed: number(ui.genSeed, 'Seed') ?? 0,
    preview: ui.genPreview.checked,
  };
}

async function runGenerate(loadOnly: boolean): Promise<void> {
  await runJob('generate', async () => {
    report.steps = 0;
    const model = await ensureGenerator();
    if (loadOnly) {
      setStatus(`Loaded ${model.name}.`);
      setState('idle');
      return;
    }
    const settings = generateSettings();
    prepareGrid(settings.classLabels, model.imageSize);
    stepTimes = [];
    setStatus('Sampling…');
    const { result } = await job<Extract<Reply, { type: 'generated' }>>({ type: 'generate', settings });
    showGeneration(result);
    setStatus(
      `Done on ${result.device}: ${result.classLabels.length} image${result.classLabels.length === 1 ? '' : 's'}, ` +
        `${result.sampler}${result.steps === undefined ? '' : ` ${result.steps} steps`}, ${result.nfe} network evaluations, ` +
        `guidance ${result.guidanceScale}, seed ${result.seed}.`,
    );
    setState('done');
  });
}

/** One figure per requested class: the x̂₀ preview while sampling, then the decoded image. */
function prepareGrid(labels: readonly number[], size: number): void {
  ui.genGrid.replaceChildren(
    ...labels.map((label) => {
      const figure = document.createElement('figure');
      const canvas = document.createElement('canvas');
      canvas.width = canvas.height = 1;
      const caption = document.createElement('figcaption');
      caption.textContent = `${className(label)} (${label})${size > 0 ? ` · ${size}×${size}` : ''}`;
      figure.append(canvas, caption);
      return figure;
    }),
  );
}

let stepTimes: number[] = [];

function showStep(step: Extract<Reply, { type: 'step' }>): void {
  report.steps = step.step;
  stepTimes.push(step.ms);
  actions.generate.progress.style.width = `${Math.round(step.progress * 100)}%`;
  const total = step.totalSteps === undefined ? '' : `/${step.totalSteps}`;
  setStatus(
    `Step ${step.step}${total} · ${step.nfe} network evaluations · ${step.ms.toFixed(0)} ms this step`,
    false,
    'generate',
  );
  step.preview?.forEach((picture, i) => {
    const canvas = ui.genGrid.children[i]?.querySelector('canvas');
    if (canvas) draw(canvas, picture);
  });
  drawStepChart(stepTimes);
}

/** Wall time per step as bars (at most 200: longer runs are binned by their mean). */
function drawStepChart(times: readonly number[]): void {
  const bins = Math.min(200, times.length);
  const per = times.length / Math.max(1, bins);
  const values = Array.from({ length: bins }, (_, b) => {
    const slice = times.slice(Math.floor(b * per), Math.floor((b + 1) * per));
    return slice.reduce((a, v) => a + v, 0) / Math.max(1, slice.length);
  });
  const longest = Math.max(1, ...values);
  $('gen-step-chart').replaceChildren(
    ...values.map((ms, b) => {
      const bar = document.createElement('span');
      bar.style.height = `${Math.max(2, (100 * ms) / longest)}%`;
      bar.title = `step ${Math.floor(b * per) + 1}: ${ms.toFixed(1)} ms`;
      return bar;
    }),
  );
  const sum = times.reduce((a, v) => a + v, 0);
  $('gen-step-summary').textContent =
    times.length === 0
      ? ''
      : `(${times.length} steps, ${(sum / times.length).toFixed(1)} ms mean, ${Math.min(...times).toFixed(1)}–${Math.max(...times).toFixed(1)} ms)`;
}

function showGeneration(result: GenerateResult): void {
  const { images, latent, ...numbers } = result;
  report.generation = { ...numbers, latent: Array.from(latent) };
  images.forEach((picture, i) => {
    const canvas = ui.genGrid.children[i]?.querySelector('canvas');
    if (canvas) draw(canvas, picture);
  });
  drawStepChart(result.stepMs);
  const stats = result.latentStats;
  facts($('gen-facts'), [
    ['Classes', result.classLabels.map((l) => `${className(l)} (${l})`).join(', ')],
    ['Sampler', `${result.sampler}${result.steps === undefined ? ' (adaptive)' : `, ${result.steps} steps`}`],
    ['Network evaluations', String(result.nfe)],
    ['Guidance scale', String(result.guidanceScale)],
    ['Seed', String(result.seed)],
    ['Latent', `[${result.latentShape.join(', ')}], ${stats.min.toFixed(2)} … ${stats.max.toFixed(2)}`],
    ['Mean ± std', `${stats.mean.toFixed(3)} ± ${stats.std.toFixed(3)}`],
  ]);
  $('gen-device').textContent = `on ${result.device}`;
  const sampling = result.stepMs.reduce((a, v) => a + v, 0);
  showTimings(
    [
      ...(generatorLoaded?.timings ?? []),
      ...result.timings.filter((t) => t.stage !== 'sampling'),
      { stage: `sampling (${result.stepMs.length} steps)`, ms: sampling },
    ],
    $('gen-timings'),
  );
}

function showGenerator(model: GeneratorInfo | undefined): void {
  report.generator = model;
  if (model === undefined) {
    facts(ui.genModelInfo, []);
    return;
  }
  const { defaults } = model;
  facts(ui.genModelInfo, [
    ['Model', `${model.label} · ${model.name}`],
    ['Latent', `${model.latentShape.join('×')} → ${model.imageSize}×${model.imageSize} px`],
    [
      'Autoencoder',
      `${model.autoencoder.name}, f${model.autoencoder.ratio}, scaling ${model.autoencoder.scalingFactor ?? '—'}`,
    ],
    ['Samplers', model.samplers.join(', ')],
    [
      'Defaults',
      `${defaults.sampler}${defaults.steps[defaults.sampler] === undefined ? '' : `, ${defaults.steps[defaults.sampler]} steps`}` +
        `, guidance ${defaults.guidanceScale ?? 'generate()’s default'}`,
    ],
  ]);
  for (const option of ui.genSampler.options)
    if (option.value !== '')
      option.textContent = `${option.value}${model.samplers.includes(option.value as SamplerName) ? '' : ' (not for this model)'}`;
  updateGeneratePlaceholders();
}

/** Empty fields show what the model will use. */
function updateGeneratePlaceholders(): void {
  const model = generatorLoaded?.info;
  if (model === undefined) {
    ui.genSteps.placeholder = ui.genGuidance.placeholder = 'model default';
    return;
  }
  const sampler = (ui.genSampler.value || model.defaults.sampler) as SamplerName;
  const steps = model.defaults.steps[sampler];
  ui.genSteps.placeholder =
    sampler === 'dopri5' ? 'adaptive' : steps === undefined ? 'default' : String(steps);
  ui.genGuidance.placeholder =
    model.defaults.guidanceScale === undefined ? 'default' : String(model.defaults.guidanceScale);
}

const picker = classPicker(
  $<HTMLInputElement>('class-search'),
  $<HTMLUListElement>('class-options'),
  $<HTMLUListElement>('class-chips'),
  (labels) => {
    if (pending === undefined) prepareGrid(labels, generatorLoaded?.info.imageSize ?? 0);
  },
);

function setupGenerate(): void {
  const group = (label: string, options: [string, string][]): HTMLOptGroupElement => {
    const element = document.createElement('optgroup');
    element.label = label;
    for (const [value, text] of options) {
      const option = document.createElement('option');
      option.value = value;
      option.textContent = text;
      element.append(option);
    }
    return element;
  };
  const released = group(
    'Released (Hugging Face, several GB)',
    Object.values(DIFFUSION_PRESETS).map((p) => [`mit-han-lab/${p.name}`, `${p.label} · ${p.name}`]),
  );
  const other = group('Other', [['custom', 'Hub id or URL of a combined checkpoint…']]);
  ui.genModel.append(released, other);
  void fetch(new URL('fixtures/diffusion/index.json', new URL(import.meta.env.BASE_URL, location.origin)))
    .then((r) => r.json() as Promise<{ name: string; autoencoder: string }[]>)
    .then((fixtures) => {
      ui.genModel.prepend(
        group(
          'Bundled (random weights)',
          fixtures.map(({ name, autoencoder }) => [
            `fixture:${name}:${autoencoder}`,
            `${name} + ${autoencoder}`,
          ]),
        ),
      );
      ui.genModel.selectedIndex = 0;
      updateGeneratorHint();
    });
  const updateGeneratorHint = (): void => {
    const value = ui.genModel.value;
    ui.genUrl.hidden = value !== 'custom';
    ui.genModelHint.textContent = value.startsWith('fixture:')
      ? 'A tiny backbone with random weights (8-channel 4×4 latents), decoded by the tiny ImageNet DC-AE: images look like noise, but every number matches the Node library.'
      : 'A combined checkpoint: config.json {"model_name": …} and model.safetensors with the backbone and its DC-AE (under autoencoder.). Downloaded once, then served from this browser’s cache.';
  };
  ui.genModel.addEventListener('change', updateGeneratorHint);
  ui.genSampler.addEventListener('change', updateGeneratePlaceholders);
  ui.genLoad.addEventListener('click', () => void runGenerate(true));
  actions.generate.run.addEventListener('click', () => void runGenerate(false));
  actions.generate.cancel.addEventListener('click', cancel);
  $('gen-reseed').addEventListener('click', () => {
    ui.genSeed.value = String(Math.floor(Math.random() * 2 ** 31));
  });
  $('class-random').addEventListener('click', () => picker.add(Math.floor(Math.random() * 1000)));
  picker.set([207, 360]);
  updateGeneratePlaceholders();
}

// ---------------------------------------------------------------- views

/** Shows one view; the runtime controls move into the shown view's panel. */
function selectView(next: View): void {
  for (const button of ui.viewTabs)
    button.setAttribute('aria-selected', String(button.dataset.view === next));
  for (const page of ui.pages) page.hidden = page.dataset.page !== next;
  const panel = document.querySelector<HTMLElement>(`[data-page="${next}"] .controls`)!;
  panel.insertBefore(ui.runtimeSection, panel.querySelector('.actions'));
}

// ---------------------------------------------------------------- drawing

function draw(canvas: HTMLCanvasElement, picture: Picture): void {
  canvas.width = picture.width;
  canvas.height = picture.height;
  canvas
    .getContext('2d')!
    .putImageData(new ImageData(new Uint8ClampedArray(picture.rgba), picture.width, picture.height), 0, 0);
}

function drawImage(canvas: HTMLCanvasElement, image: RgbImage): void {
  canvas.width = image.width;
  canvas.height = image.height;
  canvas.getContext('2d')!.putImageData(rgbaImageData(image), 0, 0);
}

function facts(list: HTMLElement, entries: [string, string][]): void {
  list.replaceChildren(
    ...entries.flatMap(([term, value]) => {
      const dt = document.createElement('dt');
      dt.textContent = term;
      const dd = document.createElement('dd');
      dd.textContent = value;
      return [dt, dd];
    }),
  );
}

function showResult(result: RunResult): void {
  const { original, reconstruction, error, channels, pca, ...numbers } = result;
  report.result = numbers;
  draw($<HTMLCanvasElement>('original-canvas'), original);
  draw($<HTMLCanvasElement>('reconstruction-canvas'), reconstruction);
  draw($<HTMLCanvasElement>('error-canvas'), error);
  draw($<HTMLCanvasElement>('channels-canvas'), channels);
  draw($<HTMLCanvasElement>('pca-canvas'), pca);
  $('original-size').textContent = `${original.width}×${original.height}`;
  $('error-scale').textContent = `(black 0 → bright ${result.errorScale.toFixed(1)} of 255)`;
  $('pca-explained').textContent = `(${(100 * result.pcaExplained).toFixed(1)}% of the variance)`;

  const { psnr, ssim, meanAbsError } = result.metrics;
  facts($('metrics'), [
    ['PSNR', `${psnr.toFixed(2)} dB`],
    ['SSIM', ssim.toFixed(4)],
    ['Mean |error|', `${meanAbsError.toFixed(2)} / 255`],
  ]);
  const reference = $('reference');
  if (result.reference) {
    const { latent, reconstruction: recon } = result.reference;
    const pass = latent.maxAbsDiff <= latent.tolerance && recon.maxAbsDiff <= recon.tolerance;
    reference.className = `reference ${pass ? 'pass' : 'fail'}`;
    reference.textContent =
      `${pass ? '✓ matches' : '✗ differs from'} the PyTorch reference: latent max |Δ| ${latent.maxAbsDiff.toExponential(2)}, ` +
      `reconstruction max |Δ| ${recon.maxAbsDiff.toExponential(2)} (tolerance ${recon.tolerance.toExponential(1)}).`;
  } else {
    reference.className = 'reference';
    reference.textContent = '';
  }

  const [, c, h, w] = result.latentShape as [number, number, number, number];
  const [, , height, width] = result.inputShape as [number, number, number, number];
  const values = c * h * w;
  const stats = result.latentStats;
  facts($('latent-facts'), [
    ['Shape', `[${result.latentShape.join(', ')}]`],
    ['Image → latent', `${width}×${height}×3 → ${w}×${h}×${c}`],
    ['Compression', `${((3 * width * height) / values).toFixed(1)}× fewer values`],
    [
      'Bytes',
      `${kilobytes(3 * width * height)} (8-bit RGB) → ${kilobytes(4 * values)} fp32 / ${kilobytes(2 * values)} fp16`,
    ],
    ['Range', `${stats.min.toFixed(2)} … ${stats.max.toFixed(2)}`],
    ['Mean ± std', `${stats.mean.toFixed(3)} ± ${stats.std.toFixed(3)}`],
    ['Encode', describePlan(result.plans.encode)],
    ['Decode', describePlan(result.plans.decode)],
  ]);
  $('device-used').textContent = `on ${result.device}`;
  // Model loading happens once; graphs and sessions are built on the first run.
  showTimings([...(loaded?.timings ?? []), ...result.timings]);
}

function showTimings(timings: Timings, table = $('timings')): void {
  const longest = Math.max(1, ...timings.map((t) => t.ms));
  table.replaceChildren(
    ...timings.map(({ stage, ms }) => {
      const row = document.createElement('tr');
      const name = document.createElement('td');
      name.textContent = stage;
      const bar = document.createElement('span');
      bar.className = 'bar';
      bar.style.width = `${Math.max(1, (100 * ms) / longest)}%`;
      name.append(bar);
      const value = document.createElement('td');
      value.textContent = ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(0)} ms`;
      row.append(name, value);
      return row;
    }),
  );
}

function showModel(model: ModelInfo | undefined): void {
  report.model = model;
  updateTilingNote();
  if (model === undefined) {
    facts(ui.modelInfo, []);
    return;
  }
  facts(ui.modelInfo, [
    ['Model', model.name],
    ['Format', `${model.format}, ${model.dtype}`],
    ['Compression', `f${model.ratio} c${model.latentChannels}`],
    [
      'Parameters',
      `${millions(model.parameters.encoder)} encoder + ${millions(model.parameters.decoder)} decoder`,
    ],
    ['Scaling factor', model.scalingFactor === undefined ? '—' : String(model.scalingFactor)],
  ]);
  void refreshCacheInfo();
}

function showRuntime(runtime: RuntimeInfo): void {
  report.runtime = runtime;
  const threads = runtime.threads.count ?? Number(ui.threads.value);
  ui.badge.textContent = `${runtime.name} · ${runtime.devices[0]} · ${threads} thread${threads === 1 ? '' : 's'}`;
  ui.badge.title = `Started in ${(runtime.startMs / 1000).toFixed(1)} s. ${runtime.threads.reason}`;
  ui.badge.classList.add('ok');
  const notes: string[] = [`onnxruntime-web started in ${(runtime.startMs / 1000).toFixed(1)} s.`];
  const webgpu = runtime.report.find((d) => d.device === 'webgpu');
  if (ui.device.value === 'webgpu' && !runtime.devices.includes('webgpu'))
    notes.push(`WebGPU is not available here, so this runs on wasm: ${webgpu?.reason ?? 'no adapter'}`);
  else if (ui.device.value === 'webgpu' && runtime.gpu) {
    const { name, isFallbackAdapter, shaderF16 } = runtime.gpu;
    notes.push(
      `WebGPU on ${name}` +
        (isFallbackAdapter ? ': a software (fallback) adapter, about 100× slower than wasm.' : '.') +
        (shaderF16 ? '' : ' It lacks shader-f16, so fp16 weights run on wasm.'),
    );
  }
  if (!runtime.crossOriginIsolated)
    notes.push(
      'The page is not cross-origin isolated (COOP/COEP headers missing), so wasm runs on 1 thread.',
    );
  ui.runtimeNote.textContent = notes.join(' ');
  ui.runtimeNote.classList.toggle('warn', notes.length > 1);
  if (report.state === 'starting') {
    setState('idle');
    setStatus('Ready. Pick a model and an image, then Encode → decode.');
    setStatus('Ready. Load a diffusion model, pick classes, then Generate.', false, 'generate');
  }
}

function fail(error: JobError): void {
  report.error = { code: error.code, message: error.message };
  const hint =
    error.code === 'RUN_FAILED' && ui.device.value === 'webgpu' ? ' Switch the device to wasm.' : '';
  setStatus(`${error.code}: ${error.message}${hint}`, true);
  setState('error');
}

function setState(state: PageState): void {
  report.state = state;
  document.body.dataset.state = state;
}

function setStatus(text: string, isError = false, view = jobView): void {
  const { status } = actions[view];
  status.textContent = text;
  status.classList.toggle('error', isError);
}

/** One job at a time: while one runs, every run and load button waits and its view's Cancel is live. */
function setBusy(busy: boolean): void {
  for (const button of [ui.load, ui.genLoad, actions.reconstruct.run, actions.generate.run])
    button.disabled = busy;
  for (const view of ['reconstruct', 'generate'] as const)
    actions[view].cancel.disabled = !busy || view !== jobView;
}

// ---------------------------------------------------------------- inputs

function selectTab(next: Tab): void {
  tab = next;
  for (const button of ui.tabs) button.setAttribute('aria-selected', String(button.dataset.tab === next));
  for (const pane of ui.panes) pane.hidden = pane.dataset.pane !== next;
  renderSamples();
}

/** Sample buttons: the fixture's reference sample (bundled models only), then the drawn samples. */
function renderSamples(): void {
  if (tab !== 'fixture' && chosen.kind === 'fixture-sample') chosen = pickSample(SAMPLES[0]!.id);
  const button = (
    id: string,
    label: string,
    short: string,
    image: RgbImage | undefined,
    pressed: boolean,
    onClick: () => void,
  ) => {
    const b = document.createElement('button');
    b.dataset.sample = id;
    b.title = label;
    b.setAttribute('aria-pressed', String(pressed));
    const canvas = document.createElement('canvas');
    if (image) drawImage(canvas, image);
    const caption = document.createElement('span');
    caption.textContent = short;
    b.append(canvas, caption);
    b.addEventListener('click', onClick);
    return b;
  };
  const buttons = SAMPLES.map((sample) =>
    button(
      sample.id,
      sample.label,
      sample.short,
      thumbnail(sample.id),
      chosen.kind === 'image' && chosen.label === sample.label,
      () => {
        chosen = pickSample(sample.id);
        renderSamples();
      },
    ),
  );
  if (tab === 'fixture') {
    const reference = referencePreview?.name === ui.fixtureSelect.value ? referencePreview.image : undefined;
    const pick = () => {
      chosen = { kind: 'fixture-sample' };
      renderSamples();
    };
    buttons.unshift(
      button(
        'fixture-sample',
        'The fixture’s reference input',
        'Reference',
        reference,
        chosen.kind === 'fixture-sample',
        pick,
      ),
    );
    if (chosen.kind === 'fixture-sample' && reference) {
      previewOriginal(reference, 'Reference input');
      ui.imageNote.textContent =
        'The fixture’s own input tensor, fed exactly: results are compared with the PyTorch reference.';
    }
  }
  ui.samples.replaceChildren(...buttons);
}

/** The bundled fixture's input image (its `sample` tensor, first item), for the preview. */
let referencePreview: { name: string; image: RgbImage } | undefined;

async function loadReferencePreview(name: string): Promise<void> {
  const url = new URL(
    `fixtures/dcae/${encodeURIComponent(name)}/input.safetensors`,
    new URL(import.meta.env.BASE_URL, location.origin),
  );
  const response = await fetch(url);
  if (!response.ok) return;
  const sample = parseSafetensors(new Uint8Array(await response.arrayBuffer()), {
    name: 'input.safetensors',
  }).tensor('sample') as HostTensor<'float32'>;
  const [, ...rest] = sample.shape;
  const size = rest.reduce((a, b) => a * b, 1);
  const image = tensorToImages({
    dtype: 'float32',
    shape: [1, ...rest],
    data: sample.data.subarray(0, size),
  })[0]!;
  referencePreview = { name, image };
  renderSamples();
}

const thumbnails = new Map<string, RgbImage>();
const samples = new Map<string, RgbImage>();

function sampleImage(id: string): RgbImage {
  let image = samples.get(id);
  if (image === undefined) samples.set(id, (image = SAMPLES.find((s) => s.id === id)!.make()));
  return image;
}

function thumbnail(id: string): RgbImage {
  let image = thumbnails.get(id);
  if (image === undefined) thumbnails.set(id, (image = limitSize(sampleImage(id), 96)));
  return image;
}

function pickSample(id: string): Chosen {
  const sample = SAMPLES.find((s) => s.id === id)!;
  const image = sampleImage(id);
  previewOriginal(image, sample.label);
  return { kind: 'image', label: sample.label, image };
}

function previewOriginal(image: RgbImage, label: string): void {
  drawImage($<HTMLCanvasElement>('original-canvas'), image);
  $('original-size').textContent = `${image.width}×${image.height}`;
  ui.imageNote.textContent = `${label}: ${image.width}×${image.height}; fitted to the model's compression ratio when you run.`;
}

async function useImageFile(file: File): Promise<void> {
  try {
    const image = await decodeImageFile(file, file.name);
    chosen = { kind: 'image', label: file.name, image };
    renderSamples();
    previewOriginal(image, file.name);
  } catch (error) {
    fail(new JobError((error as { code?: string }).code ?? 'IMAGE_CORRUPT', (error as Error).message));
  }
}

/** The top-level files of a dropped folder (entries API), or the dropped files themselves. */
async function droppedFolder(transfer: DataTransfer): Promise<{ name: string; files: File[] }> {
  const entries = [...transfer.items].map((item) => item.webkitGetAsEntry()).filter((e) => e !== null);
  const directory = entries.find((e) => e.isDirectory) as FileSystemDirectoryEntry | undefined;
  if (directory === undefined) return { name: 'dropped files', files: [...transfer.files] };
  const children = await new Promise<FileSystemEntry[]>((resolve, reject) =>
    directory.createReader().readEntries(resolve, reject),
  );
  const files = await Promise.all(
    children
      .filter((e): e is FileSystemFileEntry => e.isFile)
      .map((e) => new Promise<File>((resolve, reject) => e.file(resolve, reject))),
  );
  return { name: directory.name, files };
}

function useFolder(chosenFolder: { name: string; files: File[] }): void {
  folder = chosenFolder;
  const names = chosenFolder.files
    .map((f) => f.name)
    .filter((n) => n.endsWith('.json') || n.endsWith('.safetensors'));
  ui.folderLabel.textContent = `${chosenFolder.name}: ${names.join(', ') || 'no config.json or .safetensors files'}`;
}

function dropZone(zone: HTMLElement, onDrop: (transfer: DataTransfer) => void): void {
  zone.addEventListener('dragover', (event) => {
    event.preventDefault();
    zone.classList.add('over');
  });
  zone.addEventListener('dragleave', () => zone.classList.remove('over'));
  zone.addEventListener('drop', (event) => {
    event.preventDefault();
    zone.classList.remove('over');
    if (event.dataTransfer) onDrop(event.dataTransfer);
  });
}

async function refreshCacheInfo(): Promise<void> {
  if (!weightsCacheAvailable()) {
    ui.cacheInfo.textContent = '(no Cache API here: weights are downloaded each time)';
    return;
  }
  const entries = await createWeightsCache().list();
  const bytes = entries.reduce((sum, e) => sum + e.size, 0);
  ui.cacheInfo.textContent =
    entries.length === 0
      ? '(empty)'
      : `(${entries.length} file${entries.length === 1 ? '' : 's'}, ${megabytes(bytes)})`;
}

function restartRuntime(): void {
  if (pending !== undefined) return;
  stopWorker();
  void ensureWorker().catch(() => undefined);
}

function setup(): void {
  const cores = navigator.hardwareConcurrency || 1;
  const threadChoices = [1, 2, 4, 8, 16].filter((n) => n <= Math.max(1, cores));
  ui.threads.replaceChildren(
    ...threadChoices.map((n) => {
      const option = document.createElement('option');
      option.value = option.textContent = String(n);
      return option;
    }),
  );
  ui.threads.value = String(crossOriginIsolated ? Math.min(4, threadChoices.at(-1)!) : 1);
  ui.threads.disabled = !crossOriginIsolated;

  for (const { repo, note } of HUB_PRESETS) {
    const option = document.createElement('option');
    option.value = repo;
    option.textContent = `${repo.replace('mit-han-lab/', '')} — ${note}`;
    ui.hubSelect.append(option);
  }
  void fetch(new URL('fixtures/dcae/index.json', new URL(import.meta.env.BASE_URL, location.origin)))
    .then((r) => r.json() as Promise<{ name: string }[]>)
    .then((fixtures) => {
      for (const { name } of fixtures) {
        const option = document.createElement('option');
        option.value = option.textContent = name;
        ui.fixtureSelect.append(option);
      }
      ui.fixtureSelect.value = fixtures.some((f) => f.name === 'tiny-sana-f32')
        ? 'tiny-sana-f32'
        : (fixtures[0]?.name ?? '');
      return loadReferencePreview(ui.fixtureSelect.value);
    });
  ui.fixtureSelect.addEventListener('change', () => void loadReferencePreview(ui.fixtureSelect.value));

  for (const button of ui.tabs) button.addEventListener('click', () => selectTab(button.dataset.tab as Tab));
  ui.load.addEventListener('click', () => void runPipeline(true));
  actions.reconstruct.run.addEventListener('click', () => void runPipeline(false));
  actions.reconstruct.cancel.addEventListener('click', cancel);
  for (const input of [ui.tiling, ui.tileSize, ui.tileOverlap, ui.memoryBudget])
    input.addEventListener('input', updateTilingNote);
  ui.memoryBudget.placeholder = String(DEFAULT_MEMORY_BUDGET_BYTES / 2 ** 20);
  updateTilingNote();
  for (const button of ui.viewTabs)
    button.addEventListener('click', () => selectView(button.dataset.view as View));
  tabKeys(ui.viewTabs);
  tabKeys(ui.tabs);
  setupGenerate();
  ui.device.addEventListener('change', restartRuntime);
  ui.threads.addEventListener('change', restartRuntime);
  ui.clearCache.addEventListener('click', () => void createWeightsCache().clear().then(refreshCacheInfo));
  ui.imageInput.addEventListener('change', () => {
    const file = ui.imageInput.files?.[0];
    if (file) void useImageFile(file);
  });
  dropZone(ui.imageDrop, (transfer) => {
    const file = transfer.files[0];
    if (file) void useImageFile(file);
  });
  ui.folderInput.addEventListener('change', () => {
    const files = [...(ui.folderInput.files ?? [])];
    const name = files[0]?.webkitRelativePath.split('/')[0] || 'chosen files';
    useFolder({ name, files });
  });
  dropZone(ui.folderDrop, (transfer) => void droppedFolder(transfer).then(useFolder));

  renderSamples();
  void refreshCacheInfo();
  void ensureWorker().catch(() => undefined);
}

/** ←/→ move between the buttons of a tab list (and select). */
function tabKeys(buttons: readonly HTMLButtonElement[]): void {
  buttons.forEach((button, i) =>
    button.addEventListener('keydown', (event) => {
      if (event.key !== 'ArrowRight' && event.key !== 'ArrowLeft') return;
      const next = buttons[(i + (event.key === 'ArrowRight' ? 1 : buttons.length - 1)) % buttons.length]!;
      next.focus();
      next.click();
    }),
  );
}

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function kilobytes(bytes: number): string {
  return bytes >= 1e6 ? megabytes(bytes) : `${(bytes / 1024).toFixed(1)} KiB`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function mebibytes(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(bytes < 2 ** 24 ? 1 : 0)} MiB`;
}

function millions(count: number): string {
  return count >= 1e6 ? `${(count / 1e6).toFixed(1)} M` : `${(count / 1e3).toFixed(1)} k`;
}

setup();
