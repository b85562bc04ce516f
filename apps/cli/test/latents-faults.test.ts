/**
 * Fault injection for `dcae latents` (docs/latents.md, "Fault-injection suite"): a real
 * redis-server (AOF on, loopback, started here), the built `dcae` in child processes, the tiny
 * DC-AE. Each scenario ends with `dcae latents verify`: every shard present, zero duplicate keys,
 * zero sha mismatches, zero temp files. Every wait is bounded.
 */
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdir, readdir, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeImage } from '@dcae/autoencoder/node';
import type { RgbImage } from '@dcae/autoencoder';
import { writeTar } from '@dcae/latents/node';
import { open } from 'node:fs/promises';
import { BIN, FIXTURES, runCli, tempDir } from './helpers.js';

const MODEL = join(FIXTURES, 'tiny-sana-f32');
const hasRedis = (() => {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!hasRedis)
  console.warn(
    'latents fault suite: redis-server is not installed (apt-get install redis-server); BullMQ scenarios skipped',
  );

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 60_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(25);
  }
}

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

interface Spawned {
  readonly child: ChildProcess;
  readonly output: () => string;
  readonly exit: Promise<number | null>;
  /** Signals the whole process group (the CLI and its sandboxed / onnxruntime children). */
  signal(sig: NodeJS.Signals): void;
}

const spawned: Spawned[] = [];
function spawnCli(args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(process.execPath, [BIN, ...args], {
    detached: true,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exit = new Promise<number | null>((r) =>
    child.on('exit', (code, sig) => r(code ?? (sig ? 128 : null))),
  );
  const s: Spawned = {
    child,
    output: () => out,
    exit,
    signal: (sig) => {
      try {
        process.kill(-child.pid!, sig);
      } catch {
        /* already gone */
      }
    },
  };
  spawned.push(s);
  return s;
}

/** Waits for a spawned command with a bound; kills its group if it overruns. */
async function finished(s: Spawned, timeoutMs = 90_000): Promise<number | null> {
  const timer = setTimeout(() => s.signal('SIGKILL'), timeoutMs);
  try {
    return await s.exit;
  } finally {
    clearTimeout(timer);
  }
}

class Redis {
  child: ChildProcess | undefined;
  constructor(
    readonly port: number,
    readonly dir: string,
  ) {}
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  async start(): Promise<void> {
    // AOF with fsync on every write: a kill -9 loses no acknowledged job state.
    this.child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--dir',
        this.dir,
        '--appendonly',
        'yes',
        '--appendfsync',
        'always',
        '--save',
        '',
        '--maxmemory-policy',
        'noeviction',
      ],
      { stdio: 'ignore' },
    );
    await until(
      'redis to accept connections',
      () => {
        try {
          return (
            execFileSync('redis-cli', ['-p', String(this.port), 'ping'])
              .toString()
              .trim() === 'PONG'
          );
        } catch {
          return false;
        }
      },
      10_000,
    );
  }
  async kill9(): Promise<void> {
    const child = this.child!;
    const gone = new Promise((r) => child.on('exit', r));
    child.kill('SIGKILL');
    await gone;
  }
}

let redis: Redis;
let images: string;
let root: string;

function picture(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = (i * 7 + seed * 31 + ((i / 3) % width) * 3) & 255;
  return { width, height, channels: 3, data };
}

beforeAll(async () => {
  root = await tempDir();
  images = join(root, 'images');
  for (let c = 0; c < 2; c++) {
    await mkdir(join(images, `class${c}`), { recursive: true });
    for (let i = 0; i < 8; i++)
      await writeFile(
        join(images, `class${c}`, `img${i}.png`),
        await encodeImage(picture(136 + i, 128, c * 10 + i), 'png'),
      );
  }
  if (hasRedis) {
    redis = new Redis(await freePort(), await tempDir());
    await redis.start();
  }
});

afterAll(async () => {
  for (const s of spawned) if (s.child.exitCode === null && s.child.signalCode === null) s.signal('SIGKILL');
  if (redis?.child && redis.child.exitCode === null) await redis.kill9();
});

async function plan(name: string, extra: string[] = [], input = images): Promise<string> {
  const out = join(root, name);
  const r = await runCli([
    'latents',
    'plan',
    '-m',
    MODEL,
    '--input',
    input,
    '--output',
    out,
    '--size',
    '128',
    '--shard-size',
    '4',
    '--batch',
    '1',
    ...extra,
  ]);
  expect(r.code, r.stderr).toBe(0);
  return join(out, 'plan.json');
}

async function verifyOk(planPath: string): Promise<Record<string, unknown>> {
  const r = await runCli(['latents', 'verify', '--plan', planPath, '--json']);
  const report = JSON.parse(r.stdout) as Record<string, unknown>;
  expect({ code: r.code, ...report }).toMatchObject({
    code: 0,
    ok: true,
    missing: [],
    shaMismatch: [],
    duplicateKeys: [],
    tempFiles: [],
    corrupt: [],
  });
  return report;
}

const temps = async (planPath: string) =>
  (await readdir(join(planPath, '..', '.tmp')).catch(() => [])).filter((n) => n.includes('.tar.'));
const commits = async (planPath: string) =>
  (await readdir(join(planPath, '..', 'commits')).catch(() => [])).length;
const worker = (planPath: string, extra: string[] = []) =>
  spawnCli([
    'latents',
    'worker',
    '--plan',
    planPath,
    '--redis',
    redis.url,
    '--device',
    'cpu',
    '--threads',
    '1',
    '--exit-when-done',
    '--lock-duration',
    '2',
    ...extra,
  ]);

describe.skipIf(!hasRedis)('BullMQ on a real Redis', () => {
  it('1 + 4: enqueue twice is a no-op; SIGKILL a worker mid-shard, another finishes it', async () => {
    const p = await plan('kill');
    const first = await runCli(['latents', 'enqueue', '--plan', p, '--redis', redis.url]);
    const second = await runCli(['latents', 'enqueue', '--plan', p, '--redis', redis.url]);
    expect(first.stdout).toContain('4 jobs added');
    expect(second.stdout).toContain('0 jobs added, 4 already queued');
    const a = worker(p);
    await until('worker A to be mid-shard', async () => (await temps(p)).length > 0);
    a.signal('SIGKILL');
    await a.exit;
    const b = worker(p);
    expect(await finished(b), b.output()).toBe(0);
    await verifyOk(p);
    const again = await runCli(['latents', 'enqueue', '--plan', p, '--redis', redis.url]);
    expect(again.stdout).toContain('0 jobs added');
  });

  it('2: SIGSTOP a worker past its lock, SIGCONT it: the zombie finishes late and loses', async () => {
    const p = await plan('zombie');
    await runCli(['latents', 'enqueue', '--plan', p, '--redis', redis.url]);
    // A has no --exit-when-done: after SIGCONT it finishes its shard, then a SIGTERM stops it gracefully.
    const a = spawnCli([
      'latents',
      'worker',
      '--plan',
      p,
      '--redis',
      redis.url,
      '--device',
      'cpu',
      '--threads',
      '1',
      '--lock-duration',
      '2',
    ]);
    await until('worker A to be mid-shard', async () => (await temps(p)).length > 0);
    a.signal('SIGSTOP');
    const b = worker(p);
    expect(await finished(b), b.output()).toBe(0); // B took over A's stalled shard and did the rest
    const before = await readFile(join(p, '..', 'commits', 'shard-000000.json'), 'utf8');
    a.signal('SIGCONT');
    await until(
      'the zombie to finish its shard late',
      () => /Missing lock for job \S+\. moveToFinished/.test(a.output()),
      30_000,
    );
    process.kill(a.child.pid!, 'SIGTERM');
    expect(await finished(a), a.output()).toBe(0);
    expect(a.output()).not.toMatch(/: done \(/); // the zombie committed nothing
    expect(await readFile(join(p, '..', 'commits', 'shard-000000.json'), 'utf8')).toBe(before);
    await verifyOk(p);
  });

  it('3: restart Redis (kill -9, AOF) mid-run', async () => {
    const p = await plan('redis-restart');
    await runCli(['latents', 'enqueue', '--plan', p, '--redis', redis.url]);
    const a = worker(p);
    await until('a first commit', async () => (await commits(p)) >= 1);
    await redis.kill9();
    await sleep(300);
    await redis.start();
    expect(await finished(a), a.output()).toBe(0);
    await verifyOk(p);
  });
});

describe('static partitions and local runs', () => {
  it('5: two runners given the same index (JOB_COMPLETION_INDEX) both succeed, one shard results', async () => {
    const p = await plan('same-index');
    const [a, b] = [
      spawnCli(['latents', 'run', '--plan', p, '--device', 'cpu'], { JOB_COMPLETION_INDEX: '1' }),
      spawnCli(['latents', 'run', '--plan', p, '--index', '1', '--device', 'cpu']),
    ];
    expect(await finished(a), a.output()).toBe(0);
    expect(await finished(b), b.output()).toBe(0);
    const rest = await runCli([
      'latents',
      'run',
      '--plan',
      p,
      '--rank',
      '0',
      '--world',
      '1',
      '--device',
      'cpu',
      '--json',
    ]);
    expect(rest.code, rest.stderr).toBe(0);
    expect(JSON.parse(rest.stdout)).toMatchObject({ committed: 1, done: 3 });
    await verifyOk(p);
  });

  it('9: SIGKILL `latents run` and rerun it: it resumes and skips committed shards', async () => {
    const p = await plan('resume');
    const a = spawnCli(['latents', 'run', '--plan', p, '--device', 'cpu']);
    await until('a first commit', async () => (await commits(p)) >= 1);
    a.signal('SIGKILL');
    await a.exit;
    const done = await commits(p);
    expect(done).toBeLessThan(4);
    const rerun = await runCli(['latents', 'run', '--plan', p, '--device', 'cpu', '--json']);
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(JSON.parse(rerun.stdout)).toMatchObject({ committed: done, done: 4 - done });
    await verifyOk(p);
  });

  it('7 + 8: a corrupt image inside an input shard and a truncated input tar are skipped with reasons', async () => {
    const wds = join(root, 'wds');
    await mkdir(wds, { recursive: true });
    const write = async (path: string, samples: { key: string; data: Uint8Array }[]) => {
      const handle = await open(path, 'w');
      await writeTar(
        handle,
        (async function* () {
          for (const s of samples) {
            yield { name: `${s.key}.jpg`, data: s.data };
            yield { name: `${s.key}.txt`, data: new TextEncoder().encode(`caption ${s.key}`) };
          }
        })(),
      );
      await handle.close();
    };
    const jpeg = (seed: number) => encodeImage(picture(128, 140, seed), 'jpeg');
    const bad = (await jpeg(3)).subarray(0, 400);
    await write(join(wds, '00000.tar'), [
      { key: 'a0', data: await jpeg(1) },
      { key: 'a1', data: bad },
      { key: 'a2', data: await jpeg(2) },
    ]);
    await write(join(wds, '00001.tar'), [
      { key: 'b0', data: await jpeg(4) },
      { key: 'b1', data: await jpeg(5) },
      { key: 'b2', data: await jpeg(6) },
    ]);
    const size = (await readFile(join(wds, '00001.tar'))).length;
    await truncate(join(wds, '00001.tar'), Math.floor(size * 0.6));
    const p = await plan('bad-inputs', ['--dtype', 'fp16'], wds);
    const r = await runCli(['latents', 'run', '--plan', p, '--device', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const c0 = JSON.parse(await readFile(join(p, '..', 'commits', 'shard-000000.json'), 'utf8'));
    const c1 = JSON.parse(await readFile(join(p, '..', 'commits', 'shard-000001.json'), 'utf8'));
    expect(c0.keys).toEqual(['a0', 'a2']);
    expect(c0.skipped).toMatchObject([{ key: 'a1', code: 'IMAGE_CORRUPT' }]);
    expect(c1.skipped.at(-1)).toMatchObject({ code: 'TRUNCATED_DATA' });
    const report = await verifyOk(p);
    expect(report.skipped).toBe(c0.skipped.length + c1.skipped.length);
  });

  it('6: disk full on the output volume (a small tmpfs): typed error, no temp files, rerun completes', async (ctx) => {
    const mnt = join(root, 'tmpfs');
    await mkdir(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', mnt], { stdio: 'pipe' });
    } catch (error) {
      console.warn(
        `latents fault 6 skipped: cannot mount a tmpfs here (${String((error as Error).message).split('\n')[0]}); CI runs as root`,
      );
      ctx.skip();
      return;
    }
    try {
      const out = join(mnt, 'out');
      const r0 = await runCli([
        'latents',
        'plan',
        '-m',
        MODEL,
        '--input',
        images,
        '--output',
        out,
        '--size',
        '128',
        '--shard-size',
        '4',
      ]);
      expect(r0.code, r0.stderr).toBe(0);
      const p = join(out, 'plan.json');
      // Leave room for about one shard.
      let filler = 0;
      for (;;) {
        try {
          await writeFile(join(mnt, `filler${filler}`), new Uint8Array(4096));
          filler++;
        } catch {
          break;
        }
      }
      for (let i = 0; i < 3 && filler > 0; i++) await rm(join(mnt, `filler${--filler}`));
      const full = await runCli(['latents', 'run', '--plan', p, '--device', 'cpu']);
      expect(full.code).not.toBe(0);
      expect(full.stderr).toMatch(/DISK_FULL|OUTPUT_UNWRITABLE/);
      expect(await temps(p)).toEqual([]);
      for (let i = 0; i < filler; i++) await rm(join(mnt, `filler${i}`));
      const rerun = await runCli(['latents', 'run', '--plan', p, '--device', 'cpu']);
      expect(rerun.code, rerun.stderr).toBe(0);
      await verifyOk(p);
    } finally {
      execFileSync('umount', ['-l', mnt]);
    }
  });
});
