/* eslint-disable no-control-regex -- these tests read terminal control sequences */
import { execFile, execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { Reporter } from '../src/reporter.js';
import { BIN, FIXTURES, REPO, runCli, tempDir } from './helpers.js';

/** A stderr that records what is written, optionally looking like a terminal `columns` wide. */
class Capture extends Writable {
  readonly chunks: string[] = [];
  constructor(
    readonly isTTY: boolean,
    readonly columns?: number,
  ) {
    super();
  }
  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.chunks.push(chunk.toString());
    callback();
  }
  get text(): string {
    return this.chunks.join('');
  }
}

/** A reporter on `stderr` whose clock the test moves (ms). */
function reporterOn(stderr: Capture, options: { quiet?: boolean } = {}) {
  const clock = { now: 0 };
  const reporter = new Reporter(
    { stdout: new Capture(false), stderr },
    { json: false, quiet: options.quiet ?? false, now: () => clock.now },
  );
  return { reporter, clock };
}

/** Every control character except the newline. */
const CONTROL = /[\x00-\x09\x0b-\x1f\x7f]/;

/** What each redraw shows: the text between `\r` and the clear-to-end-of-line. */
function frames(text: string): string[] {
  return [...text.matchAll(/\r([^\r\n]*?)\x1b\[K/g)].map((m) => m[1]!);
}

describe('Reporter.bar on a terminal', () => {
  it('redraws one line in place with the stage, done/total and percent, and ends it with a newline', () => {
    const stderr = new Capture(true, 100);
    const { reporter, clock } = reporterOn(stderr);
    for (let done = 0; done <= 4; done++) {
      reporter.bar('encode', done, 4);
      clock.now += 200;
    }
    expect(stderr.chunks).toHaveLength(5);
    for (const chunk of stderr.chunks) expect(chunk).toMatch(/^\r.*\x1b\[K\n?$/);
    expect(frames(stderr.text)).toEqual([
      `encode [${'.'.repeat(24)}] 0/4 0%`,
      `encode [${'#'.repeat(6)}${'.'.repeat(18)}] 1/4 25%`,
      `encode [${'#'.repeat(12)}${'.'.repeat(12)}] 2/4 50%`,
      `encode [${'#'.repeat(18)}${'.'.repeat(6)}] 3/4 75%`,
      `encode [${'#'.repeat(24)}] 4/4 100%`,
    ]);
    // only the last redraw ends the line
    expect(stderr.text.split('\n')).toHaveLength(2);
    expect(stderr.text.endsWith('\x1b[K\n')).toBe(true);
  });

  it('shows bytes, speed and time left, and never draws past the terminal width', () => {
    for (const columns of [120, 60, 40, 20]) {
      const stderr = new Capture(true, columns);
      const { reporter, clock } = reporterOn(stderr);
      const label = 'download diffusion_pytorch_model.safetensors';
      for (const loaded of [0, 1_500_000, 3_000_000]) {
        reporter.bar(label, loaded, 3_000_000, 'bytes', '12.3 MB/s, 4 s left');
        clock.now += 500;
      }
      const shown = frames(stderr.text);
      expect(shown).toHaveLength(3);
      for (const frame of shown) expect(frame.length, frame).toBeLessThan(columns);
      if (columns === 120) {
        expect(shown[1]).toBe(
          `${label} [${'#'.repeat(12)}${'.'.repeat(12)}] 1.5 MB/3.0 MB 50% 12.3 MB/s, 4 s left`,
        );
      } else {
        // narrower: a shorter bar, then none, then the line cut with an ellipsis
        expect(shown[1]!.startsWith(label.slice(0, columns - 2))).toBe(true);
      }
      if (columns === 40) expect(shown[1]).toMatch(/…$/);
      expect(stderr.text.endsWith('\n')).toBe(true);
    }
  });

  it('uses 80 columns where the terminal reports none (an unsized pseudo-terminal)', () => {
    const stderr = new Capture(true, 0);
    const { reporter } = reporterOn(stderr);
    reporter.bar('decode', 1, 2);
    expect(frames(stderr.text)).toEqual([`decode [${'#'.repeat(12)}${'.'.repeat(12)}] 1/2 50%`]);
  });

  it('redraws at most every 100 ms, but always the first and the last update', () => {
    const stderr = new Capture(true, 80);
    const { reporter, clock } = reporterOn(stderr);
    for (let loaded = 0; loaded <= 1000; loaded++) {
      reporter.bar('download model.safetensors', loaded * 1000, 1_000_000, 'bytes');
      clock.now += 1; // 1000 updates in one second
    }
    const shown = frames(stderr.text);
    expect(shown.length).toBeGreaterThanOrEqual(10);
    expect(shown.length).toBeLessThanOrEqual(12);
    expect(shown[0]).toContain('0.0 MB/1.0 MB 0%');
    expect(shown.at(-1)).toContain('1.0 MB/1.0 MB 100%');
    // a repeated final update draws nothing more
    reporter.bar('download model.safetensors', 1_000_000, 1_000_000, 'bytes');
    expect(frames(stderr.text)).toHaveLength(shown.length);
  });

  it('ends an unfinished bar line before the next message or bar, so they do not share a line', () => {
    const stderr = new Capture(true, 80);
    const { reporter } = reporterOn(stderr);
    reporter.bar('download config.json', 500, 0, 'bytes'); // total unknown: never "done"
    reporter.progress('building the encoder graph…');
    reporter.bar('encode', 0, 2);
    reporter.bar('decode', 0, 2);
    expect(stderr.text).toBe(
      '\rdownload config.json 0.0 MB\x1b[K\nbuilding the encoder graph…\n' +
        `\rencode [${'.'.repeat(24)}] 0/2 0%\x1b[K\n\rdecode [${'.'.repeat(24)}] 0/2 0%\x1b[K`,
    );
  });
});

describe('Reporter.bar elsewhere (a pipe or a file)', () => {
  it('writes plain lines with no control characters: the first, the last, and at most one per 2 s between', () => {
    const stderr = new Capture(false);
    const { reporter, clock } = reporterOn(stderr);
    for (let loaded = 0; loaded <= 1000; loaded++) {
      reporter.bar('download model.safetensors', loaded * 1000, 1_000_000, 'bytes', '0.2 MB/s');
      clock.now += 5; // 1000 tiny updates over 5 s
    }
    expect(stderr.text).not.toMatch(CONTROL);
    const lines = stderr.text.trimEnd().split('\n');
    expect(lines[0]).toBe('download model.safetensors 0.0 MB/1.0 MB 0% 0.2 MB/s');
    expect(lines.at(-1)).toBe('download model.safetensors 1.0 MB/1.0 MB 100% 0.2 MB/s');
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.length).toBeLessThanOrEqual(4);
  });

  it('starts a new set of lines for each stage, and reports a restarted stage again', () => {
    const stderr = new Capture(false);
    const { reporter } = reporterOn(stderr);
    for (const stage of ['encode', 'decode', 'decode']) {
      for (let done = 0; done <= 3; done++) reporter.bar(stage, done, 3);
    }
    expect(stderr.text).toBe(
      'encode 0/3 0%\nencode 3/3 100%\ndecode 0/3 0%\ndecode 3/3 100%\ndecode 0/3 0%\ndecode 3/3 100%\n',
    );
  });

  it('is silent with --quiet', () => {
    for (const tty of [true, false]) {
      const stderr = new Capture(tty, 80);
      const { reporter } = reporterOn(stderr, { quiet: true });
      reporter.bar('encode', 1, 2);
      reporter.progress('loading');
      expect(stderr.chunks).toEqual([]);
    }
  });
});

/** `script` (util-linux) runs a command under a pseudo-terminal; absent on some systems. */
const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const quote = (arg: string): string => `'${arg.replaceAll("'", `'\\''`)}'`;

/** Runs the built CLI under a pseudo-terminal `columns` wide; resolves with all it printed. */
function runInTerminal(args: readonly string[], columns: number): Promise<string> {
  const command = `stty cols ${columns} rows 24 && exec ${[process.execPath, BIN, ...args].map(quote).join(' ')}`;
  return new Promise((resolve, reject) => {
    execFile(
      'script',
      ['-qfec', command, '/dev/null'],
      { cwd: REPO, timeout: 120_000, maxBuffer: 16 << 20 },
      (error, stdout) => (error ? reject(new Error(`${error.message}\n${stdout}`)) : resolve(stdout)),
    );
  });
}

describe('the built CLI', () => {
  const model = join(FIXTURES, 'tiny-sana-f32');
  const input = join(model, 'input.safetensors');
  // 96×64 input in 64-pixel tiles: two tiles per run
  const tiled = ['--tile', 'always', '--tile-size', '64', '--tile-overlap', '32'];

  it.skipIf(!hasScript)(
    'draws bars with control sequences on a terminal (skipped without util-linux `script`)',
    async () => {
      const dir = await tempDir();
      const args = ['reconstruct', '--model', model, input, '-o', join(dir, 'rec.safetensors'), ...tiled];
      const out = await runInTerminal(args, 30);
      expect(out).toContain('PSNR');
      for (const stage of ['encode', 'decode']) {
        const shown = frames(out).filter((f) => f.startsWith(`${stage} `));
        expect(shown[0]).toMatch(new RegExp(`^${stage} \\[\\.+\\] 0/2 0%$`));
        expect(shown.at(-1)).toMatch(new RegExp(`^${stage} \\[#+\\] 2/2 100%$`));
        for (const frame of shown) expect(frame.length).toBeLessThan(30);
      }
      // each finished bar ends its line (the terminal turns \n into \r\n)
      expect(out).toMatch(/2\/2 100%\x1b\[K\r\n/);
    },
  );

  it('writes plain progress lines when stderr is a pipe', async () => {
    const dir = await tempDir();
    const r = await runCli([
      'reconstruct',
      '--model',
      model,
      input,
      '-o',
      join(dir, 'rec.safetensors'),
      ...tiled,
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(CONTROL);
    const lines = r.stderr.split('\n');
    for (const stage of ['encode', 'decode']) {
      expect(lines).toContain(`${stage} 0/2 0%`);
      expect(lines).toContain(`${stage} 2/2 100%`);
    }
  });
});

describe('errors after a bar', () => {
  it('clear the bar line on a terminal and print plainly otherwise', async () => {
    const { main } = await import('../src/main.js');
    for (const isTTY of [true, false]) {
      const stderr = new Capture(isTTY, 80);
      // An open bar from an earlier stage, then a failing command.
      const { reporter } = reporterOn(stderr);
      reporter.bar('encode', 1, 4);
      const code = await main(['encode', '--model', join(REPO, 'no-such-model')], {
        stdout: new Capture(false),
        stderr,
        signal: new AbortController().signal,
      });
      expect(code).not.toBe(0);
      const error = stderr.text.slice(stderr.text.indexOf('encode [') + 1);
      if (isTTY) expect(error).toMatch(/\r\x1b\[Kerror\[/);
      else expect(stderr.text).toMatch(/\nerror\[/);
    }
  });
});
