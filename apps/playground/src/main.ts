/**
 * The page: controls, the inference worker's lifecycle and the drawing of results. All model work
 * happens in worker.ts; this thread stays free to draw progress and to cancel.
 */
import type { FitMode, RgbImage } from '@dcae/autoencoder';
import { tensorToImages } from '@dcae/autoencoder';
import type { HostTensor } from '@dcae/core';
import { parseSafetensors } from '@dcae/core';
import { createWeightsCache, weightsCacheAvailable } from '@dcae/runtime-adapters/web';
import { decodeImageFile, limitSize, prepareImage, rgbaImageData } from './image-input.js';
import { HUB_PRESETS } from './model-source.js';
import type {
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
}

declare global {
  interface Window {
    dcae: PageReport;
  }
}

const $ = <T extends HTMLElement = HTMLElement>(id: string): T => document.getElementById(id) as T;

const report: PageReport = (window.dcae = { state: 'starting' });
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
  device: $<HTMLSelectElement>('device'),
  threads: $<HTMLSelectElement>('threads'),
  runtimeNote: $('runtime-note'),
  run: $<HTMLButtonElement>('run'),
  cancel: $<HTMLButtonElement>('cancel'),
  progress: $('progress-bar'),
  status: $('status'),
};

let tab: Tab = 'fixture';
let chosen: Chosen = { kind: 'fixture-sample' };
let folder: { name: string; files: File[] } | undefined;
let loaded: { key: string; info: ModelInfo; timings: Timings } | undefined;

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
  showModel(undefined);
}

function onReply(reply: Reply): void {
  if (reply.type === 'ready' || pending === undefined || reply.job !== pending.id) return;
  if (reply.type === 'progress') {
    ui.progress.style.width = `${Math.round((reply.fraction ?? 0.5) * 100)}%`;
    setStatus(`${capitalize(reply.stage)}: ${reply.detail}`);
    return;
  }
  const job = pending;
  pending = undefined;
  if (reply.type === 'failed') job.reject(new JobError(reply.code, reply.message));
  else if (reply.type === 'cancelled') job.reject(new JobError('ABORTED', 'Cancelled.'));
  else job.resolve(reply);
}

/** A request without its job number (distributes over the union). */
type JobRequest<R = Extract<Request, { type: 'load' | 'run' }>> = R extends unknown ? Omit<R, 'job'> : never;

function job<T extends Reply>(request: JobRequest, transfer: Transferable[] = []): Promise<T> {
  const id = nextJob++;
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
  const dtype = ui.dtype.value as 'fp32' | 'fp16';
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
  if (pending !== undefined) return;
  cancelledAt = undefined;
  setBusy(true);
  setState('running');
  try {
    const model = await ensureModel();
    if (loadOnly) {
      setStatus(`Loaded ${model.name}.`);
      setState('idle');
      return;
    }
    const { source, transfer } = imageSource(model);
    setStatus('Encoding…');
    const { result } = await job<Extract<Reply, { type: 'result' }>>(
      { type: 'run', image: source },
      transfer,
    );
    showResult(result);
    setStatus(
      `Done on ${result.device}: PSNR ${result.metrics.psnr.toFixed(2)} dB, SSIM ${result.metrics.ssim.toFixed(4)}.`,
    );
    setState('done');
  } catch (error) {
    const failure = error instanceof JobError ? error : new JobError('INTERNAL', String(error));
    if (failure.code === 'ABORTED') {
      report.cancelMs = cancelledAt === undefined ? undefined : performance.now() - cancelledAt;
      setStatus(
        `${failure.message}${report.cancelMs === undefined ? '' : ` (stopped ${report.cancelMs.toFixed(0)} ms after the click)`}`,
      );
      setState('cancelled');
    } else fail(failure);
  } finally {
    setBusy(false);
    ui.progress.style.width = '0';
  }
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
  ]);
  $('device-used').textContent = `on ${result.device}`;
  // Model loading happens once; graphs and sessions are built on the first run.
  showTimings([...(loaded?.timings ?? []), ...result.timings]);
}

function showTimings(timings: Timings): void {
  const table = $('timings');
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

function setStatus(text: string, isError = false): void {
  ui.status.textContent = text;
  ui.status.classList.toggle('error', isError);
}

function setBusy(busy: boolean): void {
  ui.run.disabled = busy;
  ui.load.disabled = busy;
  ui.cancel.disabled = !busy;
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
  ui.run.addEventListener('click', () => void runPipeline(false));
  ui.cancel.addEventListener('click', cancel);
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

function capitalize(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function kilobytes(bytes: number): string {
  return bytes >= 1e6 ? megabytes(bytes) : `${(bytes / 1024).toFixed(1)} KiB`;
}

function megabytes(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function millions(count: number): string {
  return count >= 1e6 ? `${(count / 1e6).toFixed(1)} M` : `${(count / 1e3).toFixed(1)} k`;
}

setup();
