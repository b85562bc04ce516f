/** Where a command talks: results on stdout (text, or one JSON object with --json), progress on stderr. */
export interface Io {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream;
}

export class Reporter {
  readonly #io: Io;
  readonly #json: boolean;
  readonly #quiet: boolean;
  readonly timings: Record<string, number> = {};

  constructor(io: Io, options: { json: boolean; quiet: boolean }) {
    this.#io = io;
    this.#json = options.json;
    this.#quiet = options.quiet;
  }

  /** Progress note on stderr (silenced by --quiet). */
  progress(message: string): void {
    if (!this.#quiet) this.#io.stderr.write(`${message}\n`);
  }

  /**
   * Progress of `done` of `total` units: a redrawn bar when stderr is a terminal, otherwise a
   * plain line per update (silenced by --quiet).
   */
  bar(label: string, done: number, total: number, unit: 'steps' | 'bytes' = 'steps', note = ''): void {
    if (this.#quiet) return;
    const stream = this.#io.stderr as NodeJS.WritableStream & { isTTY?: boolean };
    const amount = (n: number) => (unit === 'bytes' ? `${(n / 1e6).toFixed(1)} MB` : String(n));
    const of = (total > 0 ? `${amount(done)}/${amount(total)}` : amount(done)) + (note ? ` ${note}` : '');
    if (stream.isTTY) {
      const width = 24;
      const filled = total > 0 ? Math.round((width * Math.min(done, total)) / total) : 0;
      stream.write(`\r${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${of}\x1b[K`);
      if (total > 0 && done >= total) stream.write('\n');
    } else if (unit === 'steps' || done === total) {
      stream.write(`${label} ${of}\n`);
    }
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
    if (this.#json) this.#io.stdout.write(`${JSON.stringify(json, jsonReplacer, 2)}\n`);
    else this.#io.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** JSON has no Infinity (PSNR of identical images): write it as the string "Infinity". */
function jsonReplacer(_key: string, value: unknown): unknown {
  return typeof value === 'number' && !Number.isFinite(value) ? String(value) : value;
}

export function formatMs(ms: number | undefined): string {
  return ms === undefined ? '–' : ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(1)} ms`;
}
