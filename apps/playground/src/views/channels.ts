/**
 * The latent-channel slider of the Encode → decode view (docs/dc-ae-1.5.md): on a model with
 * adaptive latent channels (the DC-AE 1.5 layout) the last run's latent is re-decoded from its
 * first N channels as the slider moves, showing what the structured latent holds: coarse structure
 * in the first channels, detail in the rest. The image is encoded once (by the run); moving the
 * slider only decodes. Moves are debounced, at most one re-decode runs at a time, and one that is
 * overtaken by a newer slider value is cancelled and its result dropped. Everything it shows comes
 * from the store (`reconstruct.channels`); other models get the slider disabled, with the reason.
 */
import { $ } from '../dom.js';
import type { Page } from '../jobs.js';
import { toJobError } from '../jobs.js';
import type { ModelInfo, Reply, RunResult } from '../protocol.js';
import type { ChannelsState, PageState } from '../state.js';
import { withReconstruct } from '../state.js';

/** Quiet time after the last slider move before a re-decode starts. */
export const CHANNELS_DEBOUNCE_MS = 150;

const ui = {
  slider: $<HTMLInputElement>('channels-slider'),
  value: $<HTMLOutputElement>('channels-value'),
  note: $('channels-note'),
  caption: $('reconstruction-channels'),
};

/** The slider state of a fresh run of `model`, or undefined when the model cannot drop channels. */
export function channelsForRun(model: ModelInfo): ChannelsState | undefined {
  return model.adaptiveLatentChannels
    ? { total: model.latentChannels, wanted: model.latentChannels, started: 0 }
    : undefined;
}

function withChannels(state: PageState, change: Partial<ChannelsState>): PageState {
  const channels = state.reconstruct.channels;
  return channels === undefined ? state : withReconstruct(state, { channels: { ...channels, ...change } });
}

export function setupChannels(page: Page): (state: PageState, previous: PageState | undefined) => void {
  const { store, client } = page;
  let timer: ReturnType<typeof setTimeout> | undefined;
  /** The re-decode in flight: its channel count and the run whose latent it decodes. */
  let inFlight: { channels: number; run: RunResult } | undefined;

  /** Starts the re-decode the slider asks for, or cancels the one in flight when it is stale. */
  const pump = (): void => {
    const state = store.get();
    const run = state.reconstruct.result?.run;
    const channels = state.reconstruct.channels;
    if (inFlight !== undefined) {
      if (inFlight.run !== run || inFlight.channels !== channels?.wanted) client.abandon();
      return; // its end pumps again
    }
    if (run === undefined || channels === undefined || state.busy || client.busy) return;
    const { wanted, total } = channels;
    if (wanted === (channels.shown?.channels ?? total)) return;
    if (wanted === total) {
      // All channels: the run's own decode.
      store.update((s) => withChannels(s, { shown: undefined, error: undefined }));
      return;
    }
    inFlight = { channels: wanted, run };
    store.update((s) =>
      withChannels(s, { decoding: wanted, started: channels.started + 1, error: undefined }),
    );
    client
      .job<Extract<Reply, { type: 'channels-decoded' }>>({ type: 'decode-channels', channels: wanted })
      .then(
        ({ result }) =>
          store.update((s) =>
            // Only the decode of the current run and slider value is shown; an overtaken one is dropped.
            s.reconstruct.result?.run === run && s.reconstruct.channels?.wanted === result.channels
              ? withChannels(s, { shown: result })
              : s,
          ),
        (error: unknown) => {
          const failure = toJobError(error);
          if (failure.code !== 'ABORTED')
            store.update((s) =>
              s.reconstruct.result?.run === run
                ? withChannels(s, { error: { code: failure.code, message: failure.message } })
                : s,
            );
        },
      )
      .finally(() => {
        inFlight = undefined;
        store.update((s) => withChannels(s, { decoding: undefined }));
        pump();
      });
  };

  ui.slider.addEventListener('input', () => {
    const wanted = Number(ui.slider.value);
    store.update((s) => withChannels(s, { wanted }));
    clearTimeout(timer);
    timer = setTimeout(pump, CHANNELS_DEBOUNCE_MS);
  });

  return (state, previous) => {
    const now = state.reconstruct;
    const before = previous?.reconstruct;
    if (
      previous !== undefined &&
      now.channels === before?.channels &&
      now.model === before?.model &&
      now.shows === before?.shows &&
      state.busy === previous.busy
    )
      return;
    // A job that ended may leave the slider wanting another decode.
    if (previous !== undefined && previous.busy && !state.busy) setTimeout(pump, 0);
    render(state);
  };
}

function render(state: PageState): void {
  const { channels, model, shows, result } = state.reconstruct;
  const showing = shows === 'result' && result !== undefined;
  if (channels === undefined || !showing) {
    ui.slider.disabled = true;
    ui.value.textContent = '';
    ui.caption.textContent = '';
    const info = model?.info;
    ui.note.textContent =
      info === undefined
        ? 'Load a model: on a DC-AE 1.5 model, this slider decodes the latent from its first channels only.'
        : !info.adaptiveLatentChannels
          ? (info.adaptiveChannelsNote ?? `${info.name} cannot decode its first latent channels alone.`)
          : 'Encode → decode, then move the slider: the latent is re-decoded from its first N channels.';
    ui.note.classList.remove('warn');
    return;
  }
  const { total, wanted, shown, decoding, error } = channels;
  ui.slider.max = String(total);
  ui.slider.value = String(wanted);
  ui.slider.disabled = state.busy;
  ui.value.textContent = `${wanted} of ${total}`;
  const count = shown?.channels ?? total;
  ui.caption.textContent =
    count === total ? `(all ${total} channels)` : `(first ${count} of ${total} channels)`;
  const parts: string[] = [];
  if (error !== undefined) parts.push(`${error.code}: ${error.message}`);
  else if (decoding !== undefined) parts.push(`Decoding from the first ${decoding} channels…`);
  if (shown !== undefined) {
    const reference = shown.reference;
    parts.push(
      `First ${shown.channels} of ${total} channels (the rest as zeros): PSNR ${shown.metrics.psnr.toFixed(2)} dB, ` +
        `SSIM ${shown.metrics.ssim.toFixed(4)}, decoded in ${shown.ms.toFixed(0)} ms.` +
        (reference === undefined
          ? ''
          : ` ${reference.maxAbsDiff <= reference.tolerance ? '✓ matches' : '✗ differs from'} the PyTorch reference ` +
            `(max |Δ| ${reference.maxAbsDiff.toExponential(2)}).`),
    );
  } else if (decoding === undefined && error === undefined)
    parts.push(
      `All ${total} channels. Move the slider to decode the same latent from its first channels only: ` +
        'the first ones carry the coarse structure, the rest the detail.',
    );
  ui.note.textContent = parts.join(' ');
  ui.note.classList.toggle('warn', error !== undefined);
}
