/**
 * The page: one store (state.ts), the inference worker's client (worker-client.ts) and two views
 * (views/reconstruct.ts, views/generate.ts) that render from the store. This file wires them
 * together and draws what both views share: the status lines and progress bars, the busy buttons,
 * the error banner at the top, the runtime badge, and `window.dcae` for scripts and tests.
 */
import type {
  ChannelDecode,
  DeviceChoice,
  GenerateResult,
  GeneratorInfo,
  ModelInfo,
  RunResult,
  RuntimeInfo,
} from './protocol.js';
import { $, capitalize, tabKeys } from './dom.js';
import type { Page } from './jobs.js';
import { cancel, failed, toJobError } from './jobs.js';
import type { PageState, Phase, View } from './state.js';
import { createStore, withGenerate, withReconstruct, withStatus } from './state.js';
import { setupChannels } from './views/channels.js';
import { onPreview, onStep, setupGenerate } from './views/generate.js';
import { setupReconstruct } from './views/reconstruct.js';
import { WorkerClient } from './worker-client.js';

/** What the page exposes for scripts and end-to-end tests (read from the store). */
interface PageReport {
  readonly state: Phase;
  readonly runtime?: RuntimeInfo;
  readonly model?: ModelInfo;
  readonly result?: Omit<RunResult, 'original' | 'reconstruction' | 'error' | 'channels' | 'pca'>;
  /** Milliseconds from the last Cancel click to the stopped job. */
  readonly cancelMs?: number;
  readonly error?: { code: string; message: string };
  /** Progress events of the current or last job, in order (e.g. one per tile of a tiled encode). */
  readonly progress: readonly { stage: string; done?: number; total?: number }[];
  /** The loaded diffusion model and the last generation (the latent as plain numbers). */
  readonly generator?: GeneratorInfo;
  readonly generation?: Omit<GenerateResult, 'images' | 'latent'> & { latent: number[] };
  /** Sampler steps reported by the current or last generation. */
  readonly steps: number;
  /** Runs started by the buttons (each Load, Encode → decode or Generate click that started one). */
  readonly jobs: number;
  /** The newest x̂₀ preview of the current or last generation: how it was drawn, its step, its sizes. */
  readonly preview?: { readonly kind: string; readonly step: number; readonly sizes: readonly string[] };
  /** That preview's pictures as RGB bytes, one array per sample. */
  previewRgb(): number[][];
  /** The latent-channel slider of the last run (adaptive-channel models only). */
  readonly channels?: {
    readonly total: number;
    readonly wanted: number;
    readonly shown?: Omit<ChannelDecode, 'reconstruction'>;
    readonly decoding?: number;
    readonly started: number;
    readonly error?: { code: string; message: string };
  };
}

declare global {
  interface Window {
    dcae: PageReport;
  }
}

const ui = {
  badge: $('runtime-badge'),
  alert: $('alert'),
  alertText: $('alert-text'),
  device: $<HTMLSelectElement>('device'),
  threads: $<HTMLSelectElement>('threads'),
  runtimeNote: $('runtime-note'),
  runtimeSection: $('runtime-section'),
  viewTabs: [...document.querySelectorAll<HTMLButtonElement>('[data-view]')],
  pages: [...document.querySelectorAll<HTMLElement>('[data-page]')],
};

/** Each view's run and load buttons, Cancel, progress bar and status line. */
const actions: Record<
  View,
  { buttons: HTMLButtonElement[]; cancel: HTMLButtonElement; bar: HTMLElement; status: HTMLElement }
> = {
  reconstruct: {
    buttons: [$<HTMLButtonElement>('run'), $<HTMLButtonElement>('load')],
    cancel: $<HTMLButtonElement>('cancel'),
    bar: $('progress-bar'),
    status: $('status'),
  },
  generate: {
    buttons: [$<HTMLButtonElement>('generate'), $<HTMLButtonElement>('gen-load')],
    cancel: $<HTMLButtonElement>('gen-cancel'),
    bar: $('gen-progress-bar'),
    status: $('gen-status'),
  },
};

const store = createStore();
const client = new WorkerClient({
  runtime: () => ({ device: ui.device.value as DeviceChoice, threads: Number(ui.threads.value) }),
  onEvent: (event) => {
    if (event.type === 'step') onStep(page, event);
    else if (event.type === 'preview') onPreview(page, event);
    else
      store.update((s) =>
        withStatus(
          {
            ...s,
            progress: [...s.progress, { stage: event.stage, done: event.done, total: event.total }],
            fraction: event.fraction ?? 0.5,
          },
          `${capitalize(event.stage)}: ${event.detail}`,
        ),
      );
  },
  // A stopped worker takes its loaded models with it.
  onStopped: () =>
    store.update((s) => withGenerate(withReconstruct(s, { model: undefined }), { generator: undefined })),
});
const page: Page = { store, client };

window.dcae = {
  get state() {
    return store.get().phase;
  },
  get runtime() {
    return store.get().runtime;
  },
  get model() {
    return store.get().reconstruct.model?.info;
  },
  get result() {
    const run = store.get().reconstruct.result?.run;
    if (run === undefined) return undefined;
    const { original: _o, reconstruction: _r, error: _e, channels: _c, pca: _p, ...numbers } = run;
    return numbers;
  },
  get cancelMs() {
    return store.get().cancelMs;
  },
  get error() {
    return store.get().error;
  },
  get progress() {
    return store.get().progress;
  },
  get generator() {
    return store.get().generate.generator?.info;
  },
  get generation() {
    const run = store.get().generate.result?.run;
    if (run === undefined) return undefined;
    const { images: _i, latent, ...numbers } = run;
    return { ...numbers, latent: Array.from(latent) };
  },
  get steps() {
    return store.get().steps;
  },
  get jobs() {
    return store.get().jobs;
  },
  get preview() {
    const preview = store.get().generate.lastPreview;
    if (preview === undefined) return undefined;
    return {
      kind: preview.kind,
      step: preview.step,
      sizes: preview.pictures.map((p) => `${p.width}×${p.height}`),
    };
  },
  previewRgb() {
    return (store.get().generate.lastPreview?.pictures ?? []).map((p) => {
      const rgb: number[] = [];
      for (let i = 0; i < p.rgba.length; i += 4) rgb.push(p.rgba[i]!, p.rgba[i + 1]!, p.rgba[i + 2]!);
      return rgb;
    });
  },
  get channels() {
    const channels = store.get().reconstruct.channels;
    if (channels === undefined) return undefined;
    const { shown, ...rest } = channels;
    if (shown === undefined) return rest;
    const { reconstruction: _r, ...numbers } = shown;
    return { ...rest, shown: numbers };
  },
};

/** Starts the worker; when it is up, the badge and notes say how it runs. */
function startRuntime(): void {
  client.ensure().then(
    (runtime) =>
      store.update((s) => {
        const next = { ...s, runtime };
        if (s.phase !== 'starting') return next;
        return withStatus(
          withStatus(
            { ...next, phase: 'idle' },
            'Ready. Pick a model and an image, then Encode → decode.',
            false,
            'reconstruct',
          ),
          'Ready. Load a diffusion model, pick classes, then Generate.',
          false,
          'generate',
        );
      }),
    (error: unknown) => store.update((s) => failed(s, toJobError(error))),
  );
}

function restartRuntime(): void {
  if (client.busy) return;
  client.stop();
  startRuntime();
}

function renderShell(state: PageState, previous: PageState | undefined): void {
  document.body.dataset.state = state.phase;
  for (const view of ['reconstruct', 'generate'] as const) {
    const { buttons, cancel, bar, status } = actions[view];
    for (const button of buttons) button.disabled = state.busy;
    cancel.disabled = !state.busy || view !== state.jobView;
    bar.style.width = state.busy && view === state.jobView ? `${Math.round(state.fraction * 100)}%` : '0';
    status.textContent = state.status[view].text;
    status.classList.toggle('error', state.status[view].error);
  }
  // Errors show at the top of the window, wherever the user has scrolled to.
  ui.alert.hidden = state.error === undefined;
  ui.alertText.textContent = state.error === undefined ? '' : `${state.error.code}: ${state.error.message}`;
  if (state.view !== previous?.view) {
    for (const button of ui.viewTabs)
      button.setAttribute('aria-selected', String(button.dataset.view === state.view));
    for (const page of ui.pages) page.hidden = page.dataset.page !== state.view;
    const panel = document.querySelector<HTMLElement>(`[data-page="${state.view}"] .controls`)!;
    panel.insertBefore(ui.runtimeSection, panel.querySelector('.actions'));
  }
  if (state.runtime !== previous?.runtime && state.runtime !== undefined) renderRuntime(state.runtime);
}

function renderRuntime(runtime: RuntimeInfo): void {
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
  const renderers = [renderShell, setupReconstruct(page), setupChannels(page), setupGenerate(page)];
  store.subscribe((state, previous) => {
    for (const render of renderers) render(state, previous);
  });
  for (const render of renderers) render(store.get(), undefined);
  for (const button of ui.viewTabs)
    button.addEventListener('click', () =>
      store.update((s) => ({ ...s, view: button.dataset.view as View })),
    );
  tabKeys(ui.viewTabs);
  for (const view of ['reconstruct', 'generate'] as const)
    actions[view].cancel.addEventListener('click', () => cancel(page));
  $('alert-close').addEventListener('click', () => store.update((s) => ({ ...s, error: undefined })));
  ui.device.addEventListener('change', restartRuntime);
  ui.threads.addEventListener('change', restartRuntime);
  startRuntime();
}

setup();
