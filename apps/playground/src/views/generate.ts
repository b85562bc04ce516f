/**
 * The Generate view: a diffusion model (bundled backbone + its DC-AE, a released preset, or a hub
 * id / URL), classes, sampling settings, and the results. The grid, the sample facts, the step
 * chart and the timings are drawn from one source in the store: the generation running now (its
 * own classes and x̂₀ previews, no facts yet), else the last completed generation; a cancelled or
 * failed run is named above the last completed one it leaves in place.
 */
import type { SamplerName } from '@dcae/diffusion';
import { DEFAULT_GUIDANCE, DIFFUSION_PRESETS } from '@dcae/diffusion';
import { className, classPicker } from '../class-picker.js';
import { $, blank, draw, facts, plural, showTimings } from '../dom.js';
import type { Page } from '../jobs.js';
import { runJob } from '../jobs.js';
import { modelFolderUrl } from '../model-source.js';
import type { GenerateSettings, GeneratorInfo, GeneratorSource, Picture, Reply } from '../protocol.js';
import type { GenerateState, PageState } from '../state.js';
import { withGenerate, withStatus } from '../state.js';
import { JobError } from '../worker-client.js';

const ui = {
  model: $<HTMLSelectElement>('gen-model'),
  url: $<HTMLInputElement>('gen-url'),
  modelHint: $('gen-model-hint'),
  load: $<HTMLButtonElement>('gen-load'),
  run: $<HTMLButtonElement>('generate'),
  modelInfo: $('gen-model-info'),
  sampler: $<HTMLSelectElement>('gen-sampler'),
  steps: $<HTMLInputElement>('gen-steps'),
  guidance: $<HTMLInputElement>('gen-guidance'),
  seed: $<HTMLInputElement>('gen-seed'),
  preview: $<HTMLInputElement>('gen-preview'),
  previewWith: $<HTMLSelectElement>('gen-preview-with'),
  taesanaUrl: $<HTMLInputElement>('gen-taesana-url'),
  previewNote: $('gen-preview-note'),
  grid: $('gen-grid'),
  results: $('gen-results'),
  resultsNote: $('gen-results-note'),
  facts: $('gen-facts'),
  chart: $('gen-step-chart'),
  summary: $('gen-step-summary'),
  device: $('gen-device'),
  timings: $('gen-timings'),
};

/** The chosen diffusion model: a bundled backbone (+ its DC-AE), a released preset, or a hub id / URL. */
function generatorSource(): { source: GeneratorSource; key: string } {
  const value = ui.model.value;
  if (value.startsWith('fixture:')) {
    const [, name, autoencoder] = value.split(':') as [string, string, string];
    return { source: { kind: 'fixture', name, autoencoder }, key: value };
  }
  const url = value === 'custom' ? ui.url.value.trim() : value;
  if (url === '')
    throw new JobError('INVALID_ARGUMENT', 'Enter the hub id or URL of a combined diffusion checkpoint.');
  modelFolderUrl(url); // refuses anything that is neither, before any request
  return { source: { kind: 'url', url }, key: `url:${url}` };
}

async function ensureGenerator(page: Page): Promise<GeneratorInfo> {
  const { store, client } = page;
  await client.ensure();
  const { source, key } = generatorSource();
  const loaded = store.get().generate.generator;
  if (loaded?.key === key) return loaded.info;
  store.update((s) => withStatus(withGenerate(s, { generator: undefined }), 'Loading the diffusion model…'));
  const reply = await client.job<Extract<Reply, { type: 'generator-loaded' }>>({
    type: 'load-generator',
    source,
  });
  store.update((s) => withGenerate(s, { generator: { key, info: reply.model, timings: reply.timings } }));
  return reply.model;
}

/**
 * The sampling settings as typed. Empty fields take the model's defaults; anything else goes to
 * the sampler as it is, so out-of-range values get the library's own message.
 */
function generateSettings(labels: number[]): GenerateSettings {
  const number = (input: HTMLInputElement, name: string): number | undefined => {
    const text = input.value.trim();
    if (text === '') return undefined;
    if (input.validity.badInput || !Number.isFinite(Number(text)))
      throw new JobError('INVALID_ARGUMENT', `${name} must be a number; got "${text}".`);
    return Number(text);
  };
  return {
    classLabels: labels,
    guidanceScale: number(ui.guidance, 'Guidance scale'),
    steps: number(ui.steps, 'Steps'),
    sampler: (ui.sampler.value || undefined) as SamplerName | undefined,
    seed: number(ui.seed, 'Seed') ?? 0,
    preview: ui.preview.checked,
    ...(ui.preview.checked && ui.previewWith.value !== 'pca' ? { taesana: taesanaSource() } : {}),
  };
}

/** The TAESANA folder the previews decode with: the bundled fixture, or a Hub id / folder URL. */
function taesanaSource(): { url: string; name: string } {
  if (ui.previewWith.value === 'taesana-fixture') {
    const name = 'taesana-randinit';
    const base = new URL(import.meta.env.BASE_URL, location.origin);
    return { url: new URL(`fixtures/taesana/${name}/`, base).href, name };
  }
  const text = ui.taesanaUrl.value.trim();
  if (text === '')
    throw new JobError(
      'INVALID_ARGUMENT',
      'Enter the Hub id or folder URL of TAESANA (taesana_decoder.pth).',
    );
  return { url: modelFolderUrl(text), name: text };
}

function updatePreviewNote(): void {
  ui.previewWith.disabled = !ui.preview.checked;
  ui.taesanaUrl.hidden = ui.previewWith.value !== 'taesana-url';
  ui.previewNote.textContent = !ui.preview.checked
    ? 'No previews: only the final images are drawn.'
    : ui.previewWith.value === 'pca'
      ? 'Each step’s x̂₀ latent as its first three principal components (any model).'
      : 'Each step’s x̂₀ decoded by TAESANA (docs/taesana.md): f32c32 latents only; at most one decode at a time, the newest step next. TAESANA was trained on dc-ae-f32c32-sana latents: elsewhere the previews only hint at the image.';
}

function runGenerate(page: Page, labels: () => number[], loadOnly: boolean): Promise<void> {
  const { store, client } = page;
  return runJob(page, 'generate', async () => {
    store.update((s) => ({ ...s, steps: 0 }));
    const model = await ensureGenerator(page);
    if (loadOnly) {
      store.update((s) => withStatus({ ...s, phase: 'idle' }, `Loaded ${model.name}.`));
      return;
    }
    const settings = generateSettings(labels());
    store.update((s) =>
      withStatus(
        withGenerate(s, {
          sampling: {
            labels: settings.classLabels,
            imageSize: model.imageSize,
            previews: [],
            previewKind: settings.taesana === undefined ? 'pca' : 'taesana',
            stepMs: [],
          },
          lastPreview: undefined,
        }),
        'Sampling…',
      ),
    );
    const { result } = await client.job<Extract<Reply, { type: 'generated' }>>({
      type: 'generate',
      settings,
    });
    const sampling = result.stepMs.reduce((a, v) => a + v, 0);
    const timings = [
      ...(store.get().generate.generator?.timings ?? []),
      ...result.timings.filter((t) => t.stage !== 'sampling'),
      { stage: `sampling (${result.stepMs.length} steps)`, ms: sampling },
    ];
    store.update((s) =>
      withStatus(
        withGenerate({ ...s, phase: 'done' }, { result: { run: result, timings }, sampling: undefined }),
        `Done on ${result.device}: ${plural(result.classLabels.length, 'image')}, ` +
          `${result.sampler}${result.steps === undefined ? '' : ` ${result.steps} steps`}, ${result.nfe} network evaluations, ` +
          `guidance ${result.guidanceScale}, seed ${result.seed}.`,
      ),
    );
  });
}

/** A TAESANA preview of a running generation, into the store. */
export function onPreview(page: Page, preview: Extract<Reply, { type: 'preview' }>): void {
  page.store.update((s) => {
    const sampling = s.generate.sampling;
    const lastPreview = { kind: 'taesana' as const, step: preview.step, pictures: preview.pictures };
    return withGenerate(s, {
      lastPreview,
      ...(sampling === undefined
        ? {}
        : { sampling: { ...sampling, previews: preview.pictures, previewStep: preview.step } }),
    });
  });
}

/** The step event of a running generation, into the store. */
export function onStep(page: Page, step: Extract<Reply, { type: 'step' }>): void {
  const total = step.totalSteps === undefined ? '' : `/${step.totalSteps}`;
  page.store.update((s) => {
    const sampling = s.generate.sampling;
    const next = {
      ...s,
      steps: step.step,
      fraction: step.progress,
    };
    return withStatus(
      sampling === undefined
        ? next
        : withGenerate(next, {
            sampling: {
              ...sampling,
              previews: step.preview ?? sampling.previews,
              ...(step.preview ? { previewStep: step.step } : {}),
              stepMs: [...sampling.stepMs, step.ms],
            },
            ...(step.preview
              ? { lastPreview: { kind: 'pca' as const, step: step.step, pictures: step.preview } }
              : {}),
          }),
      `Step ${step.step}${total} · ${step.nfe} network evaluations · ${step.ms.toFixed(0)} ms this step`,
      false,
      'generate',
    );
  });
}

export function setupGenerate(page: Page): (state: PageState, previous: PageState | undefined) => void {
  const { store } = page;
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
  ui.model.append(released, group('Other', [['custom', 'Hub id or URL of a combined checkpoint…']]));
  const updateHint = (): void => {
    const value = ui.model.value;
    ui.url.hidden = value !== 'custom';
    ui.modelHint.textContent = value.startsWith('fixture:')
      ? `A tiny backbone with random weights (4×4 latents), decoded by the bundled ${value.split(':')[2]}: images look like noise, but every number matches the Node library.`
      : 'A combined checkpoint: config.json {"model_name": …} and model.safetensors with the backbone and its DC-AE (under autoencoder.). Downloaded once, then served from this browser’s cache.';
  };
  void fetch(new URL('fixtures/diffusion/index.json', new URL(import.meta.env.BASE_URL, location.origin)))
    .then((r) => r.json() as Promise<{ name: string; autoencoder: string }[]>)
    .then((fixtures) => {
      ui.model.prepend(
        group(
          'Bundled (random weights)',
          fixtures.map(({ name, autoencoder }) => [
            `fixture:${name}:${autoencoder}`,
            `${name} + ${autoencoder}`,
          ]),
        ),
      );
      ui.model.selectedIndex = 0;
      updateHint();
    });
  const picker = classPicker(
    $<HTMLInputElement>('class-search'),
    $<HTMLUListElement>('class-options'),
    $<HTMLUListElement>('class-chips'),
    $('class-note'),
  );
  ui.model.addEventListener('change', updateHint);
  ui.preview.addEventListener('change', updatePreviewNote);
  ui.previewWith.addEventListener('change', updatePreviewNote);
  updatePreviewNote();
  ui.sampler.addEventListener('change', () => updatePlaceholders(store.get().generate.generator?.info));
  ui.load.addEventListener('click', () => void runGenerate(page, picker.labels, true));
  ui.run.addEventListener('click', () => void runGenerate(page, picker.labels, false));
  $('gen-reseed').addEventListener('click', () => {
    ui.seed.value = String(Math.floor(Math.random() * 2 ** 31));
  });
  $('class-random').addEventListener('click', () => {
    const free = Array.from({ length: 1000 }, (_, i) => i).filter((i) => !picker.labels().includes(i));
    if (free.length > 0) picker.add(free[Math.floor(Math.random() * free.length)]!);
  });
  picker.set([207, 360]);
  updatePlaceholders(undefined);

  return (state, previous) => {
    const now = state.generate;
    const before = previous?.generate;
    if (now.generator !== before?.generator) {
      renderGenerator(now.generator?.info);
      updatePlaceholders(now.generator?.info);
    }
    if (
      before === undefined ||
      now.result !== before.result ||
      now.sampling !== before?.sampling ||
      now.outcome !== before?.outcome ||
      now.generator !== before?.generator
    )
      renderResults(now, before);
  };
}

function renderGenerator(model: GeneratorInfo | undefined): void {
  if (model === undefined) {
    facts(ui.modelInfo, []);
    return;
  }
  const { defaults } = model;
  const steps = defaults.steps[defaults.sampler];
  facts(ui.modelInfo, [
    ['Model', `${model.label} · ${model.name}`],
    ['Latent', `${model.latentShape.join('×')} → ${model.imageSize}×${model.imageSize} px`],
    [
      'Autoencoder',
      `${model.autoencoder.name}, f${model.autoencoder.ratio}, scaling ${model.autoencoder.scalingFactor ?? '—'}`,
    ],
    ['Samplers', model.samplers.join(', ')],
    [
      'Defaults',
      `${defaults.sampler}${steps === undefined ? '' : `, ${steps} steps`}, guidance ` +
        (defaults.guidanceScale === undefined
          ? `${DEFAULT_GUIDANCE} (the model sets none)`
          : String(defaults.guidanceScale)),
    ],
  ]);
  for (const option of ui.sampler.options)
    if (option.value !== '')
      option.textContent = `${option.value}${model.samplers.includes(option.value as SamplerName) ? '' : ' (not for this model)'}`;
}

/** Empty fields show what the model will use. */
function updatePlaceholders(model: GeneratorInfo | undefined): void {
  if (model === undefined) {
    ui.steps.placeholder = ui.guidance.placeholder = 'model default';
    return;
  }
  const sampler = (ui.sampler.value || model.defaults.sampler) as SamplerName;
  const steps = model.defaults.steps[sampler];
  ui.steps.placeholder = sampler === 'dopri5' ? 'adaptive' : steps === undefined ? 'default' : String(steps);
  ui.guidance.placeholder = String(model.defaults.guidanceScale ?? DEFAULT_GUIDANCE);
}

/** One figure per class, drawn from the running generation or else the last completed one. */
function renderResults(now: GenerateState, before: GenerateState | undefined): void {
  const { sampling, result, outcome } = now;
  const labels = sampling?.labels ?? result?.run.classLabels ?? [];
  const size = sampling?.imageSize ?? result?.run.images[0]?.width ?? 0;
  const pictures: readonly (Picture | undefined)[] = sampling
    ? sampling.previews
    : (result?.run.images ?? []);
  // The figures are rebuilt when their source changes; a running generation only redraws its previews.
  const sameSource =
    sampling !== undefined && before?.sampling !== undefined && before.sampling.labels === sampling.labels;
  if (!sameSource)
    ui.grid.replaceChildren(
      ...labels.map((label) => {
        const figure = document.createElement('figure');
        const canvas = document.createElement('canvas');
        blank(canvas);
        const caption = document.createElement('figcaption');
        caption.textContent = `${className(label)} (${label})${size > 0 ? ` · ${size}×${size}` : ''}`;
        figure.append(canvas, caption);
        return figure;
      }),
    );
  pictures.forEach((picture, i) => {
    const canvas = ui.grid.children[i]?.querySelector('canvas');
    if (canvas && picture) draw(canvas, picture);
  });
  ui.results.dataset.shows = sampling ? 'running' : result ? 'result' : 'empty';
  ui.results.dataset.outcome = outcome?.kind ?? '';
  const last = result
    ? `the last completed generation (${result.run.classLabels.map((l) => `${className(l)} (${l})`).join(', ')})`
    : undefined;
  ui.resultsNote.textContent = sampling
    ? `Sampling ${plural(sampling.labels.length, 'image')}${
        ui.preview.checked
          ? `: the x̂₀ estimate of ${sampling.previewStep === undefined ? 'each step' : `step ${sampling.previewStep}`}` +
            (sampling.previewKind === 'taesana' ? ', decoded by TAESANA' : ', as latent PCA')
          : ''
      }…`
    : outcome
      ? `${outcome.kind === 'cancelled' ? 'Cancelled' : 'Failed'}: ${last ? `showing ${last}.` : 'no generation has completed yet.'}`
      : last
        ? `Results of ${last}.`
        : 'Pick classes and Generate: one image per class.';
  ui.resultsNote.classList.toggle('warn', outcome !== undefined);
  const stepMs = sampling?.stepMs ?? result?.run.stepMs ?? [];
  drawStepChart(stepMs);
  if (sampling || !result) {
    facts(ui.facts, []);
    ui.device.textContent = '';
    showTimings(ui.timings, now.generator?.timings ?? []);
    return;
  }
  const { run } = result;
  const stats = run.latentStats;
  facts(ui.facts, [
    ['Classes', run.classLabels.map((l) => `${className(l)} (${l})`).join(', ')],
    ['Sampler', `${run.sampler}${run.steps === undefined ? ' (adaptive)' : `, ${run.steps} steps`}`],
    ['Network evaluations', String(run.nfe)],
    ['Guidance scale', String(run.guidanceScale)],
    ['Seed', String(run.seed)],
    ['Latent', `[${run.latentShape.join(', ')}], ${stats.min.toFixed(2)} … ${stats.max.toFixed(2)}`],
    ['Mean ± std', `${stats.mean.toFixed(3)} ± ${stats.std.toFixed(3)}`],
  ]);
  ui.device.textContent = `on ${run.device}`;
  showTimings(ui.timings, result.timings);
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
  ui.chart.replaceChildren(
    ...values.map((ms, b) => {
      const bar = document.createElement('span');
      bar.style.height = `${Math.max(2, (100 * ms) / longest)}%`;
      bar.title = `step ${Math.floor(b * per) + 1}: ${ms.toFixed(1)} ms`;
      return bar;
    }),
  );
  const sum = times.reduce((a, v) => a + v, 0);
  ui.summary.textContent =
    times.length === 0
      ? ''
      : `(${times.length} steps, ${(sum / times.length).toFixed(1)} ms mean, ${Math.min(...times).toFixed(1)}–${Math.max(...times).toFixed(1)} ms)`;
}
