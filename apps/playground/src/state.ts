/**
 * The page's one store. Everything the page shows is a function of this state: controls write to
 * it, the worker's replies write to it, and the views render from it. Results are kept whole (the
 * last completed job of each view), so a view never mixes one run's pictures with another's
 * numbers: it shows the last completed job, the job running now, or says that a job was cancelled
 * or failed (and then which completed job it still shows).
 */
import type { RgbImage } from '@dcae/autoencoder';
import type {
  ChannelDecode,
  GenerateResult,
  GeneratorInfo,
  ModelInfo,
  Picture,
  RunResult,
  RuntimeInfo,
  Timings,
} from './protocol.js';

export type View = 'reconstruct' | 'generate';
export type Tab = 'fixture' | 'hub' | 'url' | 'folder';
export type Phase = 'starting' | 'idle' | 'running' | 'done' | 'cancelled' | 'error';

export interface PageError {
  readonly code: string;
  readonly message: string;
}

/** The image the next Encode → decode uses. */
export type ImageChoice =
  | { readonly kind: 'fixture-sample' }
  | {
      readonly kind: 'image';
      /** A drawn sample's id, or `file`. */
      readonly id: string;
      readonly label: string;
      readonly image: RgbImage;
      /** Share of pixels that were not opaque (their alpha is dropped). */
      readonly transparent: number;
      /** How the last run fitted it to the model (set when a run starts). */
      readonly prepared?: string;
    }
  /** The last upload was refused: nothing is chosen until the user picks again. */
  | { readonly kind: 'rejected'; readonly label: string; readonly error: PageError };

/** A model in the worker, under the key of the controls that chose it. */
export interface Loaded<T> {
  readonly key: string;
  readonly info: T;
  readonly timings: Timings;
}

/** How a job that did not complete ended; the view keeps showing the last completed job under it. */
export interface Outcome {
  readonly kind: 'cancelled' | 'error';
  readonly text: string;
}

/**
 * The latent-channel slider of a run on a model with adaptive latent channels: the run's latent
 * re-decoded from its first `wanted` channels (docs/dc-ae-1.5.md).
 */
export interface ChannelsState {
  /** The model's latent channels; the run's own decode used all of them. */
  readonly total: number;
  /** The slider: show the decode of the first `wanted` channels. */
  readonly wanted: number;
  /** The last re-decode that completed for `wanted`; undefined shows the run's own decode. */
  readonly shown?: ChannelDecode;
  /** The channel count being decoded now. */
  readonly decoding?: number;
  /** Re-decodes started for this run (superseded ones included). */
  readonly started: number;
  readonly error?: PageError;
}

export interface ReconstructState {
  readonly tab: Tab;
  readonly folder?: { readonly name: string; readonly files: readonly File[] };
  readonly model?: Loaded<ModelInfo>;
  readonly image: ImageChoice;
  /** The bundled fixture's reference input, for its preview (only while a fixture is chosen). */
  readonly reference?: { readonly name: string; readonly image: RgbImage };
  /** The default model's held-out photos, once fetched and decoded (offered with every model). */
  readonly photos?: readonly { readonly id: string; readonly label: string; readonly image: RgbImage }[];
  /** The last completed run, whole: every results panel draws from it. */
  readonly result?: { readonly run: RunResult; readonly label: string; readonly timings: Timings };
  /** The channel slider of that run; undefined when its model cannot drop latent channels. */
  readonly channels?: ChannelsState;
  /** What the results area shows: the last completed run, or the chosen image before it runs. */
  readonly shows: 'result' | 'preview';
  readonly outcome?: Outcome;
}

export interface GenerateState {
  readonly generator?: Loaded<GeneratorInfo>;
  /** The last completed generation, whole (images, facts, step times). */
  readonly result?: { readonly run: GenerateResult; readonly timings: Timings };
  /** The generation running now: its classes, x̂₀ previews and step times. */
  readonly sampling?: {
    readonly labels: readonly number[];
    readonly imageSize: number;
    readonly previews: readonly (Picture | undefined)[];
    /** How the previews are drawn: the latent's principal components, or decoded by TAESANA. */
    readonly previewKind: PreviewKind;
    /** The step the previews show. */
    readonly previewStep?: number;
    readonly stepMs: readonly number[];
  };
  /** The newest x̂₀ preview of the last generation (kept after it completes, for scripts and tests). */
  readonly lastPreview?: {
    readonly kind: PreviewKind;
    readonly step: number;
    readonly pictures: readonly Picture[];
  };
  readonly outcome?: Outcome;
}

export type PreviewKind = 'pca' | 'taesana';

export interface Status {
  readonly text: string;
  readonly error: boolean;
}

export interface PageState {
  readonly phase: Phase;
  readonly view: View;
  /** The view whose controls show the current (or last) job. */
  readonly jobView: View;
  /** Jobs started by the buttons. */
  readonly jobs: number;
  readonly busy: boolean;
  readonly status: Readonly<Record<View, Status>>;
  /** Progress of the running job, 0–1. */
  readonly fraction: number;
  readonly progress: readonly { readonly stage: string; readonly done?: number; readonly total?: number }[];
  /** Sampler steps of the current or last generation. */
  readonly steps: number;
  readonly cancelMs?: number;
  /** performance.now() of the last Cancel click of the running job. */
  readonly cancelledAt?: number;
  /** The last error, shown in the banner at the top until the next job starts. */
  readonly error?: PageError;
  readonly runtime?: RuntimeInfo;
  readonly reconstruct: ReconstructState;
  readonly generate: GenerateState;
}

export type Listener = (state: PageState, previous: PageState) => void;

export interface Store {
  get(): PageState;
  /** Replaces the state with `change(state)` and tells every listener. */
  update(change: (state: PageState) => PageState): void;
  subscribe(listener: Listener): void;
}

export const INITIAL_STATE: PageState = {
  phase: 'starting',
  view: 'reconstruct',
  jobView: 'reconstruct',
  jobs: 0,
  busy: false,
  status: {
    reconstruct: { text: 'Starting the inference worker…', error: false },
    generate: { text: 'Load a diffusion model, pick classes, Generate.', error: false },
  },
  fraction: 0,
  progress: [],
  steps: 0,
  reconstruct: { tab: 'fixture', image: { kind: 'fixture-sample' }, shows: 'preview' },
  generate: {},
};

export function createStore(initial: PageState = INITIAL_STATE): Store {
  let state = initial;
  const listeners: Listener[] = [];
  return {
    get: () => state,
    update(change) {
      const previous = state;
      state = change(state);
      if (state !== previous) for (const listener of listeners) listener(state, previous);
    },
    subscribe(listener) {
      listeners.push(listener);
    },
  };
}

/** `state` with the reconstruct part changed. */
export function withReconstruct(state: PageState, change: Partial<ReconstructState>): PageState {
  return { ...state, reconstruct: { ...state.reconstruct, ...change } };
}

/** `state` with the generate part changed. */
export function withGenerate(state: PageState, change: Partial<GenerateState>): PageState {
  return { ...state, generate: { ...state.generate, ...change } };
}

/** `state` with `view`'s status line set. */
export function withStatus(state: PageState, text: string, error = false, view = state.jobView): PageState {
  return { ...state, status: { ...state.status, [view]: { text, error } } };
}

/** The sentence under the image controls: always about the chosen image (or the refused upload). */
export function imageNote(image: ImageChoice): string {
  if (image.kind === 'fixture-sample')
    return 'The fixture’s own input tensor, fed exactly: results are compared with the PyTorch reference.';
  if (image.kind === 'rejected')
    return `${image.label} was refused (${image.error.code}): ${image.error.message} No image is chosen; pick a sample or another file.`;
  const alpha =
    image.transparent > 0
      ? ` It has transparency (${percent(image.transparent)} of its pixels): the alpha channel is dropped, the model sees RGB only.`
      : '';
  const size = `${image.label}: ${image.image.width}×${image.image.height}`;
  return `${image.prepared === undefined ? `${size}; fitted to the model's compression ratio when you run.` : `${image.label}: ${image.prepared}.`}${alpha}`;
}

function percent(share: number): string {
  return share >= 0.01 ? `${Math.round(share * 100)}%` : '<1%';
}
