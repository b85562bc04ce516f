/**
 * The Encode → decode view: model source, image, tiling, and the results. The results area draws
 * one thing at a time from the store: the last completed run (original, reconstruction, error,
 * quality, latent and timings all from that run), or a preview of the chosen image before it runs;
 * a cancelled or failed job is named above the last completed run it leaves in place.
 */
import type { FitMode } from '@dcae/autoencoder';
import { createWeightsCache, weightsCacheAvailable } from '@dcae/runtime-adapters/web';
import {
  $,
  blank,
  draw,
  drawImage,
  dropZone,
  facts,
  kilobytes,
  megabytes,
  millions,
  showTimings,
  tabKeys,
} from '../dom.js';
import type { Gallery } from '../gallery.js';
import { createGallery } from '../gallery.js';
import { prepareImage } from '../image-input.js';
import type { Page } from '../jobs.js';
import { runJob } from '../jobs.js';
import { DEFAULT_MODEL_CARD, DEFAULT_MODEL_NAME, HUB_PRESETS, modelFolderUrl } from '../model-source.js';
import type { ImageSource, ModelInfo, ModelSource, Reply } from '../protocol.js';
import type { PageState, ReconstructState, Tab } from '../state.js';
import { imageNote, withReconstruct, withStatus } from '../state.js';
import { JobError } from '../worker-client.js';
import { channelsForRun } from './channels.js';
import { describePlan, executionOptions, renderTiling, setupTiling, tiledNote } from './tiling.js';

const ui = {
  tabs: [...document.querySelectorAll<HTMLButtonElement>('[data-tab]')],
  panes: [...document.querySelectorAll<HTMLElement>('[data-pane]')],
  fixtureSelect: $<HTMLSelectElement>('fixture-select'),
  modelCard: $<HTMLAnchorElement>('model-card'),
  hubSelect: $<HTMLSelectElement>('hub-select'),
  urlInput: $<HTMLInputElement>('url-input'),
  urlNote: $('url-note'),
  folderDrop: $('folder-drop'),
  folderInput: $<HTMLInputElement>('folder-input'),
  folderLabel: $('folder-label'),
  dtype: $<HTMLSelectElement>('dtype'),
  load: $<HTMLButtonElement>('load'),
  modelInfo: $('model-info'),
  clearCache: $<HTMLButtonElement>('clear-cache'),
  cacheInfo: $('cache-info'),
  imageDrop: $('image-drop'),
  imageInput: $<HTMLInputElement>('image-input'),
  maxSide: $<HTMLSelectElement>('max-side'),
  fit: $<HTMLSelectElement>('fit'),
  imageNote: $('image-note'),
  results: $('results'),
  resultsNote: $('results-note'),
  run: $<HTMLButtonElement>('run'),
};

/** The value of the bundled-models select that stands for the default model (no fixture is named so). */
const DEFAULT_OPTION = 'default-model';

const canvases = ['original', 'reconstruction', 'error', 'channels', 'pca'] as const;
const canvas = (name: (typeof canvases)[number]): HTMLCanvasElement => $<HTMLCanvasElement>(`${name}-canvas`);

/** The chosen model source from the controls, and the key a loaded model is kept under. */
function modelSource(state: ReconstructState): { source: ModelSource; key: string } {
  const { tab, folder } = state;
  if (tab === 'fixture' && ui.fixtureSelect.value === DEFAULT_OPTION)
    return { source: { kind: 'default' }, key: 'default' };
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
    modelFolderUrl(url); // refuses anything that is neither, before any request
    return { source: { kind: 'url', url }, key: `url:${url}` };
  }
  if (folder === undefined) throw new JobError('INVALID_ARGUMENT', 'Choose or drop a model folder first.');
  return {
    source: { kind: 'files', name: folder.name, files: folder.files },
    key: `files:${folder.name}:${folder.files.length}`,
  };
}

async function ensureModel(page: Page): Promise<ModelInfo> {
  const { store, client } = page;
  await client.ensure();
  const { source, key } = modelSource(store.get().reconstruct);
  const dtype = ui.dtype.value as 'fp32' | 'fp16' | 'int8';
  const loaded = store.get().reconstruct.model;
  if (loaded?.key === `${key}:${dtype}`) return loaded.info;
  store.update((s) => withStatus(withReconstruct(s, { model: undefined }), 'Loading the model…'));
  const reply = await client.job<Extract<Reply, { type: 'loaded' }>>({ type: 'load', source, dtype });
  const model = { key: `${key}:${dtype}`, info: reply.model, timings: reply.timings };
  store.update((s) => withReconstruct(s, { model }));
  return reply.model;
}

/** The chosen image for `model`, fitted to its compression ratio; the note says how. */
function imageSource(
  page: Page,
  model: ModelInfo,
): { source: ImageSource; transfer: Transferable[]; label: string } {
  const { image } = page.store.get().reconstruct;
  if (image.kind === 'rejected')
    throw new JobError(
      'INVALID_ARGUMENT',
      `${image.label} was refused; pick a sample or another image first.`,
    );
  if (image.kind === 'fixture-sample') {
    if (!model.fixture)
      throw new JobError(
        'INVALID_ARGUMENT',
        'The reference sample belongs to the random-weight test fixtures; pick another image.',
      );
    return { source: { kind: 'fixture-sample' }, transfer: [], label: 'the fixture’s reference input' };
  }
  const prepared = prepareImage(image.image, {
    maxSide: Number(ui.maxSide.value),
    ratio: model.ratio,
    fit: ui.fit.value as FitMode,
  });
  page.store.update((s) => withReconstruct(s, { image: { ...image, prepared: prepared.note } }));
  const rgb = { ...prepared.image, data: prepared.image.data.slice() };
  return { source: { kind: 'rgb', image: rgb }, transfer: [rgb.data.buffer], label: image.label };
}

function runPipeline(page: Page, loadOnly: boolean): Promise<void> {
  const { store, client } = page;
  return runJob(page, 'reconstruct', async () => {
    const model = await ensureModel(page);
    if (loadOnly) {
      store.update((s) => withStatus({ ...s, phase: 'idle' }, `Loaded ${model.name}.`));
      return;
    }
    const execution = executionOptions(model);
    const { source, transfer, label } = imageSource(page, model);
    store.update((s) => withStatus(s, 'Encoding…'));
    const { result } = await client.job<Extract<Reply, { type: 'result' }>>(
      { type: 'run', image: source, execution },
      transfer,
    );
    const { psnr, ssim } = result.metrics;
    store.update((s) =>
      withStatus(
        withReconstruct(
          { ...s, phase: 'done' },
          {
            // Model loading happens once; graphs and sessions are built on the first run.
            result: {
              run: result,
              label,
              timings: [...(s.reconstruct.model?.timings ?? []), ...result.timings],
            },
            channels: channelsForRun(model),
            shows: 'result',
          },
        ),
        `Done on ${result.device}: PSNR ${psnr.toFixed(2)} dB, SSIM ${ssim.toFixed(4)}${tiledNote(result.plans)}.`,
      ),
    );
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

/** Checks the URL field as you type: a repo id or an http(s) URL, nothing else. */
function checkUrlField(): void {
  const text = ui.urlInput.value.trim();
  let problem: string | undefined;
  try {
    if (text !== '') modelFolderUrl(text);
  } catch (error) {
    problem = (error as Error).message;
  }
  ui.urlInput.setAttribute('aria-invalid', String(problem !== undefined));
  ui.urlNote.textContent =
    problem ?? 'A folder with config.json and diffusion_pytorch_model.safetensors (or model.safetensors).';
  ui.urlNote.classList.toggle('warn', problem !== undefined);
}

export function setupReconstruct(page: Page): (state: PageState, previous: PageState | undefined) => void {
  const { store } = page;
  const gallery: Gallery = createGallery(page, $('samples'));
  for (const { repo, note } of HUB_PRESETS) {
    const option = document.createElement('option');
    option.value = repo;
    option.textContent = `${repo.replace('mit-han-lab/', '')} — ${note}`;
    ui.hubSelect.append(option);
  }
  // The default model first (and chosen); the random-weight fixtures after it, labelled test-only.
  const defaultOption = document.createElement('option');
  defaultOption.value = DEFAULT_OPTION;
  defaultOption.textContent = `${DEFAULT_MODEL_NAME} — trained by dcae (default)`;
  ui.fixtureSelect.append(defaultOption);
  ui.fixtureSelect.value = DEFAULT_OPTION;
  ui.modelCard.href = new URL(DEFAULT_MODEL_CARD, new URL(import.meta.env.BASE_URL, location.origin)).href;
  void fetch(new URL('fixtures/dcae/index.json', new URL(import.meta.env.BASE_URL, location.origin)))
    .then((r) => r.json() as Promise<{ name: string }[]>)
    .then((fixtures) => {
      for (const { name } of fixtures) {
        const option = document.createElement('option');
        option.value = name;
        option.textContent = `${name} — random weights, test only`;
        ui.fixtureSelect.append(option);
      }
    });
  // The default model's held-out photos; the first replaces the initial choice (the fixture's
  // reference input, which only a fixture has) unless the user chose something else meanwhile.
  void gallery
    .loadPhotos()
    .then((photo) =>
      store.update((s) =>
        photo !== undefined &&
        s.reconstruct.image.kind === 'fixture-sample' &&
        ui.fixtureSelect.value === DEFAULT_OPTION
          ? withReconstruct(s, { image: photo, shows: 'preview' })
          : s,
      ),
    );
  ui.fixtureSelect.addEventListener('change', () => {
    if (ui.fixtureSelect.value !== DEFAULT_OPTION) return void gallery.loadReference(ui.fixtureSelect.value);
    store.update((s) =>
      withReconstruct(s, {
        reference: undefined,
        ...(s.reconstruct.image.kind === 'fixture-sample'
          ? { image: gallery.firstPhoto(), shows: 'preview' as const }
          : {}),
      }),
    );
  });
  for (const button of ui.tabs)
    button.addEventListener('click', () => {
      const tab = button.dataset.tab as Tab;
      store.update((s) => {
        const leaving = tab !== 'fixture' && s.reconstruct.image.kind === 'fixture-sample';
        return withReconstruct(s, {
          tab,
          ...(leaving ? { image: gallery.firstPhoto(), shows: 'preview' as const } : {}),
        });
      });
    });
  tabKeys(ui.tabs);
  ui.load.addEventListener('click', () => void runPipeline(page, true));
  ui.run.addEventListener('click', () => void runPipeline(page, false));
  setupTiling(() => renderTiling(store.get().reconstruct.model?.info));
  ui.urlInput.addEventListener('input', checkUrlField);
  ui.clearCache.addEventListener('click', () => void createWeightsCache().clear().then(refreshCacheInfo));
  ui.imageInput.addEventListener('change', () => {
    const file = ui.imageInput.files?.[0];
    if (file) void gallery.useFile(file);
  });
  dropZone(ui.imageDrop, (transfer) => {
    const file = transfer.files[0];
    if (file) void gallery.useFile(file);
  });
  const useFolder = (folder: { name: string; files: File[] }): void => {
    store.update((s) => withReconstruct(s, { folder }));
    const names = folder.files
      .map((f) => f.name)
      .filter((n) => n.endsWith('.json') || n.endsWith('.safetensors'));
    ui.folderLabel.textContent = `${folder.name}: ${names.join(', ') || 'no config.json or .safetensors files'}`;
  };
  ui.folderInput.addEventListener('change', () => {
    const files = [...(ui.folderInput.files ?? [])];
    useFolder({ name: files[0]?.webkitRelativePath.split('/')[0] || 'chosen files', files });
  });
  dropZone(ui.folderDrop, (transfer) => void droppedFolder(transfer).then(useFolder));
  void refreshCacheInfo();

  return (state, previous) => {
    const now = state.reconstruct;
    const before = previous?.reconstruct;
    if (now.tab !== before?.tab) {
      for (const button of ui.tabs)
        button.setAttribute('aria-selected', String(button.dataset.tab === now.tab));
      for (const pane of ui.panes) pane.hidden = pane.dataset.pane !== now.tab;
    }
    if (before === undefined || now.model !== before.model) {
      renderModel(now.model?.info);
      renderTiling(now.model?.info);
      if (now.model) void refreshCacheInfo();
    }
    if (now.image !== before?.image) {
      ui.imageNote.textContent = imageNote(now.image);
      ui.imageNote.classList.toggle(
        'warn',
        now.image.kind === 'rejected' || (now.image.kind === 'image' && now.image.transparent > 0),
      );
    }
    gallery.render(state, previous);
    if (
      before === undefined ||
      now.result !== before.result ||
      now.shows !== before?.shows ||
      now.outcome !== before?.outcome ||
      now.channels?.shown !== before?.channels?.shown ||
      (now.shows === 'preview' &&
        (now.image !== before?.image || now.reference !== before?.reference || now.model !== before?.model))
    )
      renderResults(now);
  };
}

function renderModel(model: ModelInfo | undefined): void {
  facts(
    ui.modelInfo,
    model === undefined
      ? []
      : [
          [
            'Model',
            model.defaultModel
              ? `${model.name} (the default: trained by dcae; numbers in its model card)`
              : model.fixture
                ? `${model.name} (random weights: test fixture)`
                : model.name,
          ],
          ['Format', `${model.format}, ${model.dtype}`],
          ['Compression', `f${model.ratio} c${model.latentChannels}`],
          [
            'Parameters',
            `${millions(model.parameters.encoder)} encoder + ${millions(model.parameters.decoder)} decoder`,
          ],
          ['Scaling factor', model.scalingFactor === undefined ? '—' : String(model.scalingFactor)],
        ],
  );
}

/** Every results panel from one source: the last completed run, or the chosen image's preview. */
function renderResults(state: ReconstructState): void {
  const result = state.shows === 'result' ? state.result : undefined;
  ui.results.dataset.shows = result ? 'result' : 'preview';
  ui.results.dataset.outcome = state.outcome?.kind ?? '';
  const what = state.result ? `the last completed run (${state.result.label})` : undefined;
  ui.resultsNote.textContent =
    state.outcome !== undefined
      ? `${state.outcome.kind === 'cancelled' ? 'Cancelled' : 'Failed'}: ${what ? `showing ${what}.` : 'no run has completed yet.'}`
      : result
        ? `Results of ${what}.`
        : state.image.kind === 'rejected'
          ? `No image: ${state.image.label} was refused.`
          : 'Preview of the chosen image: Encode → decode to see its latent and reconstruction.';
  ui.resultsNote.classList.toggle('warn', state.outcome !== undefined);
  if (result === undefined) {
    renderPreview(state);
    return;
  }
  const { run } = result;
  draw(canvas('original'), run.original);
  // The latent-channel slider's decode when it shows fewer channels (views/channels.ts).
  draw(canvas('reconstruction'), state.channels?.shown?.reconstruction ?? run.reconstruction);
  draw(canvas('error'), run.error);
  draw(canvas('channels'), run.channels);
  draw(canvas('pca'), run.pca);
  $('original-size').textContent = `${run.original.width}×${run.original.height}`;
  $('error-scale').textContent = `(black 0 → bright ${run.errorScale.toFixed(1)} of 255)`;
  $('pca-explained').textContent = `(${(100 * run.pcaExplained).toFixed(1)}% of the variance)`;
  const { psnr, ssim, meanAbsError } = run.metrics;
  facts($('metrics'), [
    ['PSNR', `${psnr.toFixed(2)} dB`],
    ['SSIM', ssim.toFixed(4)],
    ['Mean |error|', `${meanAbsError.toFixed(2)} / 255`],
  ]);
  const reference = $('reference');
  if (run.reference) {
    const { latent, reconstruction: recon } = run.reference;
    const pass = latent.maxAbsDiff <= latent.tolerance && recon.maxAbsDiff <= recon.tolerance;
    reference.className = `reference ${pass ? 'pass' : 'fail'}`;
    reference.textContent =
      `${pass ? '✓ matches' : '✗ differs from'} the PyTorch reference: latent max |Δ| ${latent.maxAbsDiff.toExponential(2)}, ` +
      `reconstruction max |Δ| ${recon.maxAbsDiff.toExponential(2)} (tolerance ${recon.tolerance.toExponential(1)}).`;
  } else {
    reference.className = 'reference';
    reference.textContent = '';
  }
  const [, c, h, w] = run.latentShape as [number, number, number, number];
  const [, , height, width] = run.inputShape as [number, number, number, number];
  const values = c * h * w;
  const stats = run.latentStats;
  facts($('latent-facts'), [
    ['Shape', `[${run.latentShape.join(', ')}]`],
    ['Image → latent', `${width}×${height}×3 → ${w}×${h}×${c}`],
    ['Compression', `${((3 * width * height) / values).toFixed(1)}× fewer values`],
    [
      'Bytes',
      `${kilobytes(3 * width * height)} (8-bit RGB) → ${kilobytes(4 * values)} fp32 / ${kilobytes(2 * values)} fp16`,
    ],
    ['Range', `${stats.min.toFixed(2)} … ${stats.max.toFixed(2)}`],
    ['Mean ± std', `${stats.mean.toFixed(3)} ± ${stats.std.toFixed(3)}`],
    ['Encode', describePlan(run.plans.encode)],
    ['Decode', describePlan(run.plans.decode)],
  ]);
  $('device-used').textContent = `on ${run.device}`;
  showTimings($('timings'), result.timings);
}

/** The chosen image alone: the panels that belong to a run are empty until one completes. */
function renderPreview(state: ReconstructState): void {
  const image =
    state.image.kind === 'image'
      ? state.image.image
      : state.image.kind === 'fixture-sample' && state.reference?.name === ui.fixtureSelect.value
        ? state.reference.image
        : undefined;
  if (image) drawImage(canvas('original'), image);
  else blank(canvas('original'));
  for (const name of canvases) if (name !== 'original') blank(canvas(name));
  $('original-size').textContent = image ? `${image.width}×${image.height}` : '';
  for (const id of ['error-scale', 'pca-explained', 'device-used']) $(id).textContent = '';
  facts($('metrics'), []);
  facts($('latent-facts'), []);
  const reference = $('reference');
  reference.className = 'reference';
  reference.textContent = '';
  showTimings($('timings'), state.model?.timings ?? []);
}
