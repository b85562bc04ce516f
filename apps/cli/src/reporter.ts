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
