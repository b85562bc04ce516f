/** Where a command talks: results on stdout (text, or one JSON object with --json), progress on stderr. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

/** How a command reports: `json` results, `quiet` progress; `now` is the clock that paces bars (ms). */
export interface ReporterOptions {
  readonly json: boolean;
  readonly quiet: boolean;
  /** @defaultValue performance.now */
  readonly now?: () => number;
}

/** Least time between two redraws of a terminal bar, and between two plain progress lines (ms). */
const REDRAW_MS = 100;
const PLAIN_LINE_MS = 2000;
/** Widest bar, and narrowest worth drawing, in characters. */
const BAR_WIDTH = 24;
const MIN_BAR_WIDTH = 8;

type ProgressStream = NodeJS.WritableStream & { isTTY?: boolean; columns?: number };

/** The bar last drawn: which, how far, when, and whether its terminal line is still open. */
interface BarState {
  readonly label: string;
  readonly done: number;
  readonly at: number;
  readonly finished: boolean;
  open: boolean;
}

export class Reporter {
  readonly #io: Io;
  readonly #json: boolean;
  readonly #quiet: boolean;
  readonly #now: () => number;
  #bar: BarState | undefined;
  readonly timings: Record<string, number> = {};

  constructor(io: Io, options: ReporterOptions) {
    this.#io = io;
    this.#json = options.json;
    this.#quiet = options.quiet;
    this.#now = options.now ?? (() => performance.now());
  }

  /** Progress note on stderr (silenced by --quiet). */
  progress(message: string): void {
    if (this.#quiet) return;
    this.#endBarLine();
    this.#io.stderr.write(`${message}\n`);
  }

  /**
   * Progress of `done` of `total` units (`total` 0: unknown) with an optional `note` (speed, time
   * left): on a terminal, one line redrawn in place (at most every 100 ms, clamped to its width)
   * and ended when done; otherwise a plain line at the start, at most every 2 s, and at the end.
   * Silenced by --quiet.
   */
  bar(label: string, done: number, total: number, unit: 'steps' | 'bytes' = 'steps', note = ''): void {
    if (this.#quiet) return;
    const stream = this.#io.stderr as ProgressStream;
    const now = this.#now();
    const last = this.#bar;
    const finished = total > 0 && done >= total;
    const fresh = last === undefined || last.label !== label || done < last.done;
    if (
      !fresh &&
      (last.finished || (!finished && now - last.at < (stream.isTTY ? REDRAW_MS : PLAIN_LINE_MS)))
    ) {
      return;
    }
    if (fresh) this.#endBarLine();
    const text = { label, details: barDetails(done, total, unit, note) };
    if (stream.isTTY) {
      // A terminal of unknown size (a pseudo-terminal nobody sized) says 0 columns.
      const columns = stream.columns !== undefined && stream.columns > 0 ? stream.columns : 80;
      stream.write(`\r${barLine(text, done, total, columns - 1)}\x1b[K${finished ? '\n' : ''}`);
    } else {
      stream.write(`${text.label} ${text.details}\n`);
    }
    this.#bar = { label, done, at: now, finished, open: stream.isTTY === true && !finished };
  }

  /** Ends a terminal bar's line left open, so that the next output starts on a line of its own. */
  #endBarLine(): void {
    if (this.#bar?.open !== true) return;
    this.#bar.open = false;
    this.#io.stderr.write('\n');
  }

  /** Runs one step, reporting it on stderr and recording its wall time in ms under `name`. */
  async step<T>(name: string, label: string, work: () => Promise<T>): Promise<T> {
    this.progress(`${label}…`);
    const start = performance.now();
    const result = await work();
    this.timings[name] = Math.round((performance.now() - start) * 10) / 10;
    return result;
  }

  /** The command's result: `text` lines for people, or `json` as one object for programs. */
  result(text: string, json: Record<string, unknown>): void {
    this.#endBarLine();
    if (this.#json) this.#io.stdout.write(`${JSON.stringify(json, jsonReplacer, 2)}\n`);
    else this.#io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** `3/8 37% note`, or `1.5 MB note` where the total is unknown. */
function barDetails(done: number, total: number, unit: 'steps' | 'bytes', note: string): string {
  const amount = (n: number): string => (unit === 'bytes' ? `${(n / 1e6).toFixed(1)} MB` : String(n));
  const parts =
    total > 0
      ? [`${amount(done)}/${amount(total)}`, `${Math.floor((100 * Math.min(done, total)) / total)}%`]
      : [amount(done)];
  return [...parts, ...(note ? [note] : [])].join(' ');
}

/** `label [####....] details` in at most `width` characters: the bar narrows, then goes, then the text is cut. */
function barLine(
  text: { label: string; details: string },
  done: number,
  total: number,
  width: number,
): string {
  const plain = `${text.label} ${text.details}`;
  const barWidth = Math.min(BAR_WIDTH, width - plain.length - 3);
  if (total > 0 && barWidth >= MIN_BAR_WIDTH) {
    const filled = Math.round((barWidth * Math.min(done, total)) / total);
    return `${text.label} [${'#'.repeat(filled)}${'.'.repeat(barWidth - filled)}] ${text.details}`;
  }
  return plain.length <= width ? plain : `${plain.slice(0, Math.max(0, width - 1))}…`;
}

/** JSON has no Infinity (PSNR of identical images): write it as the string "Infinity". */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

export function formatMs(ms: number | undefined): string {
  return ms === undefined ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}
