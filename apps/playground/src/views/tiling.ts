/**
 * The tiling controls of the Encode → decode view: `auto` (the library's default), `off` or `on`
 * with a tile size and overlap. Empty fields mean the library's default geometry for the loaded
 * model (shown as the placeholders). The fields are checked as you type with the library's own
 * rules (`planRun` of @dcae/autoencoder) for the loaded model.
 */
import type { ExecutionOptions, RunPlan } from '@dcae/autoencoder';
import { DEFAULT_MEMORY_BUDGET_BYTES, defaultTileGeometry, planRun } from '@dcae/autoencoder';
import { $, mebibytes, plural } from '../dom.js';
import type { ModelInfo, RunResult } from '../protocol.js';
import { JobError } from '../worker-client.js';

const ui = {
  tiling: $<HTMLSelectElement>('tiling'),
  tileSize: $<HTMLInputElement>('tile-size'),
  tileOverlap: $<HTMLInputElement>('tile-overlap'),
  memoryBudget: $<HTMLInputElement>('memory-budget'),
  note: $('tiling-note'),
};

/** The compression ratio assumed before a model is loaded (every released DC-AE is f32 or f64). */
const DEFAULT_RATIO = 32;

export function setupTiling(onChange: () => void): void {
  for (const input of [ui.tiling, ui.tileSize, ui.tileOverlap, ui.memoryBudget])
    input.addEventListener('input', onChange);
  ui.memoryBudget.placeholder = String(DEFAULT_MEMORY_BUDGET_BYTES / 2 ** 20);
}

/** A field's number, or `fallback` when it is empty. */
function field(input: HTMLInputElement, fallback: number): number {
  return input.value.trim() === '' ? fallback : Number(input.value);
}

/** The tiling controls as the library's options (the library checks them against the model). */
export function executionOptions(model: ModelInfo): ExecutionOptions {
  if (ui.tiling.value === 'off') return { tiling: 'never' };
  if (ui.tiling.value === 'auto') return { tiling: 'auto', memoryBudgetBytes: memoryBudgetBytes() };
  const defaults = defaultTileGeometry(model.ratio);
  const geometry = {
    tileSize: field(ui.tileSize, defaults.tileSize),
    overlap: field(ui.tileOverlap, defaults.overlap),
  };
  if (!Number.isFinite(geometry.tileSize) || !Number.isFinite(geometry.overlap))
    throw new JobError('INVALID_ARGUMENT', 'The tile size and overlap must be numbers of pixels.');
  return { tiling: geometry };
}

/** The budget field (MiB) in bytes; empty means the library's default. */
function memoryBudgetBytes(): number | undefined {
  const text = ui.memoryBudget.value.trim();
  return text === '' ? undefined : Number(text) * 2 ** 20;
}

/** Enables the fields the mode uses, shows the defaults as placeholders and checks the values. */
export function renderTiling(model: ModelInfo | undefined): void {
  const mode = ui.tiling.value;
  ui.tileSize.disabled = ui.tileOverlap.disabled = mode !== 'on';
  ui.memoryBudget.disabled = mode !== 'auto';
  const f = model?.ratio;
  const defaults = defaultTileGeometry(f ?? DEFAULT_RATIO);
  ui.tileSize.placeholder = String(defaults.tileSize);
  ui.tileOverlap.placeholder = String(defaults.overlap);
  let problem: string | undefined;
  let text: string;
  if (mode === 'off') text = 'Every image runs whole, however large.';
  else if (mode === 'auto') {
    const budget = memoryBudgetBytes();
    if (budget !== undefined && !(budget > 0))
      problem = 'The memory budget must be a positive number of MiB.';
    text =
      `Whole images, unless one run's estimated activations exceed ${mebibytes(budget ?? DEFAULT_MEMORY_BUDGET_BYTES)}: ` +
      `then tiles of ${defaults.tileSize} px, overlap ${defaults.overlap} px.`;
  } else {
    const tileSize = field(ui.tileSize, defaults.tileSize);
    const overlap = field(ui.tileOverlap, defaults.overlap);
    text =
      f === undefined
        ? `Tile size: a multiple of the model’s compression ratio f (empty: ${defaults.tileSize} px); it is checked once a model is loaded.`
        : `Tile size: a multiple of f = ${f} px; overlap: 0 to tile size − 1, leaving a stride of at least ${f} px (empty: ${defaults.tileSize} and ${defaults.overlap} px).`;
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
  ui.note.textContent = problem ?? text;
  ui.note.classList.toggle('warn', invalid);
}

/** How one encode or decode ran, for the results. */
export function describePlan(plan: RunPlan): string {
  const runs = plural(plan.runs, 'run');
  if (plan.tiles === undefined)
    return `whole image (${runs}, ~${mebibytes(plan.estimatedBytes)} activations)`;
  const { rows, columns, tileSize, overlap, stride } = plan.tiles;
  return `tiled: ${rows}×${columns} = ${rows * columns} tiles of ${tileSize} px, overlap ${overlap} px, stride ${stride} px (${runs})`;
}

export function tiledNote(plans: RunResult['plans']): string {
  const { encode, decode } = plans;
  if (encode.tiles === undefined && decode.tiles === undefined) return '';
  return `; tiled: ${encode.runs} encoder and ${decode.runs} decoder runs`;
}
