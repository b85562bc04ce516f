/**
 * What only the node adapter does: settings, device detection and fallback, files as external data,
 * telemetry hygiene, and where sessions run (event loop, abort during a run, worker lifetime).
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, realpath, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { NodeRuntime, NodeRuntimeSettings } from '../src/node/index.js';
import { createNodeRuntime, listNodeDevices } from '../src/node/index.js';
import { planExternalData } from '../src/node/external-data.js';

const folder = await mkdtemp(join(tmpdir(), 'dcae-node-runtime-'));
afterAll(() => rm(folder, { recursive: true, force: true }));

const runtimes: NodeRuntime[] = [];
function runtime(settings: NodeRuntimeSettings = {}): NodeRuntime {
  const created = createNodeRuntime({ threads: 1, ...settings });
  runtimes.push(created);
  return created;
}
afterEach(async () => {
  await Promise.all(runtimes.splice(0).map((r) => r.dispose()));
});

const identity = (() => {
  const g = new GraphBuilder({ name: 'identity' });
  g.output(g.root.identity(g.input('x', 'float32', ['n'])), 'y', ['n']);
  return serializeModel(g.build());
})();

function f32(shape: readonly number[], values: ArrayLike<number>): HostTensor<'float32'> {
  return { dtype: 'float32', shape, data: Float32Array.from(values) };
}

async function codeOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    expect(DcaeError.is(error), String(error)).toBe(true);
    return (error as DcaeError).code;
  }
  return 'resolved';
}

async function messageOf(promise: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (error) {
    return (error as Error).message;
  }
  return 'resolved';
}

describe('settings', () => {
  it.each([
    { devices: [] },
    { devices: ['gpu'] },
    { devices: ['cpu', 'cpu'] },
    { threads: 0 },
    { threads: 1.5 },
    { graphOptimization: 'max' },
    { worker: 'yes' },
  ])('rejects %j with INVALID_ARGUMENT', async (settings) => {
    expect(await codeOf(() => createNodeRuntime(settings as NodeRuntimeSettings))).toBe('INVALID_ARGUMENT');
  });

  it('rejects an unknown per-session graphOptimization with INVALID_ARGUMENT', async () => {
    expect(await codeOf(runtime().createSession(identity, { graphOptimization: 'max' as 'all' }))).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('names itself after the installed onnxruntime-node and defaults to in-process cpu', () => {
    const r = runtime();
    expect(r.name).toMatch(/^onnxruntime-node@1\.\d+\.\d+$/);
    expect(r.devices).toEqual(['cpu']);
    expect(r.worker).toBe(false);
    expect(runtime({ worker: true }).worker).toBe('thread');
  });

  it('rejects a model over 2 GB with MODEL_TOO_LARGE before onnxruntime sees it', async () => {
    const error = await runtime()
      .createSession(new Uint8Array(2 ** 31))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: 'MODEL_TOO_LARGE',
      message: expect.stringMatching(/2147483648 bytes.*external data/),
    });
  });
});

describe('devices', () => {
  const devices = listNodeDevices();
  const cuda = devices.find((d) => d.device === 'cuda')!;

  it('lists cuda, webgpu and cpu, best first, each with a reason', () => {
    expect(devices.map((d) => d.device)).toEqual(['cuda', 'webgpu', 'cpu']);
    for (const status of devices) expect(status.reason).toMatch(/\S/);
    expect(devices[2]).toMatchObject({ device: 'cpu', available: true, auto: true });
  });

  it.runIf(!cuda.available && /providers_cuda/.test(cuda.reason))(
    'explains how to install the CUDA provider libraries when cuda is requested without them (DEVICE_UNAVAILABLE)',
    async () => {
      expect(await codeOf(() => createNodeRuntime({ devices: ['cuda'] }))).toBe('DEVICE_UNAVAILABLE');
      const message = await messageOf(() => createNodeRuntime({ devices: ['cuda', 'cpu'] }));
      expect(message).toMatch(/ONNXRUNTIME_NODE_INSTALL=cuda12/);
      expect(message).toMatch(/CUDA 12 and cuDNN 9/);
    },
  );

  it("'auto' tries what is installed, best first, and records why it skips the rest", () => {
    const r = runtime({ devices: 'auto' });
    expect(r.deviceReport.map((d) => d.device)).toEqual(['cuda', 'webgpu', 'cpu']);
    expect(r.devices).toEqual(devices.filter((d) => d.auto).map((d) => d.device));
    expect(r.devices.at(-1)).toBe('cpu');
    for (const decision of r.deviceReport) {
      expect(decision.selected).toBe(devices.find((d) => d.device === decision.device)!.auto);
      expect(decision.reason).toMatch(/\S/);
    }
  });

  describe('webgpu', () => {
    const vulkanLoader = ['/usr/lib/x86_64-linux-gnu', '/usr/lib64', '/usr/lib'].some((dir) =>
      existsSync(join(dir, 'libvulkan.so.1')),
    );
    const saved = process.env.VK_ICD_FILENAMES;
    afterEach(() => {
      if (saved === undefined) delete process.env.VK_ICD_FILENAMES;
      else process.env.VK_ICD_FILENAMES = saved;
    });

    it.runIf(process.platform === 'linux')(
      'is unavailable without a Vulkan driver, and explicit webgpu then throws DEVICE_UNAVAILABLE',
      async () => {
        process.env.VK_ICD_FILENAMES = join(folder, 'missing_icd.json');
        expect(listNodeDevices()[1]).toMatchObject({ device: 'webgpu', available: false, auto: false });
        expect(await messageOf(() => createNodeRuntime({ devices: ['webgpu'] }))).toMatch(
          /webgpu.*(Vulkan|libvulkan)/,
        );
        expect(runtime({ devices: 'auto' }).devices).not.toContain('webgpu');
      },
    );

    it.runIf(process.platform === 'linux' && vulkanLoader)(
      "skips a software-only driver in 'auto'; listed explicitly, a failing webgpu session falls back to cpu and is deselected",
      async () => {
        // A software-driver manifest whose library does not exist: detected, but no adapter starts.
        const icd = join(folder, 'lvp_icd.x86_64.json');
        await writeFile(
          icd,
          JSON.stringify({
            file_format_version: '1.0.0',
            ICD: { library_path: join(folder, 'libvulkan_lvp.so'), api_version: '1.3.0' },
          }),
        );
        process.env.VK_ICD_FILENAMES = icd;
        expect(listNodeDevices()[1]).toMatchObject({ device: 'webgpu', available: true, auto: false });
        expect(runtime({ devices: 'auto' }).deviceReport[1]).toMatchObject({
          device: 'webgpu',
          selected: false,
          reason: expect.stringMatching(/software/),
        });

        const r = runtime({ devices: ['webgpu', 'cpu'] });
        expect(r.devices).toEqual(['webgpu', 'cpu']);
        const session = await r.createSession(identity);
        expect(session.device).toBe('cpu');
        expect(r.devices).toEqual(['cpu']);
        expect(r.deviceReport[0]).toMatchObject({
          device: 'webgpu',
          selected: false,
          reason: expect.stringMatching(/^Session creation failed: /),
        });
        expect([...(await session.run({ x: f32([2], [1, 2]) })).y!.data]).toEqual([1, 2]);
      },
    );
  });
});

describe('external data files', () => {
  it('rejects a missing file with FILE_NOT_FOUND, a repeated location and a non-byte data value with INVALID_ARGUMENT', async () => {
    const r = runtime();
    const missing = join(folder, 'nope.bin');
    const error = await messageOf(
      r.createSession(identity, { externalData: [{ location: 'nope.bin', data: missing }] }),
    );
    expect(error).toContain(missing);
    expect(
      await codeOf(r.createSession(identity, { externalData: [{ location: 'nope.bin', data: missing }] })),
    ).toBe('FILE_NOT_FOUND');
    const twice = [
      { location: 'a.bin', data: new Uint8Array(4) },
      { location: 'a.bin', data: new Uint8Array(4) },
    ];
    expect(await codeOf(r.createSession(identity, { externalData: twice }))).toBe('INVALID_ARGUMENT');
    const floats = [{ location: 'a.bin', data: new Float32Array(1) as unknown as Uint8Array }];
    expect(await codeOf(r.createSession(identity, { externalData: floats }))).toBe('INVALID_ARGUMENT');
  });
});

describe('external data plan', () => {
  it('lets onnxruntime read the files itself only when all are paths named like their locations in one folder', async () => {
    const dir = await mkdtemp(join(folder, 'plan-'));
    const other = await mkdtemp(join(folder, 'plan-other-'));
    for (const [d, name] of [
      [dir, 'a.bin'],
      [dir, 'b.bin'],
      [dir, 'renamed.bin'],
      [other, 'c.bin'],
    ] as const) {
      await writeFile(join(d, name), new Uint8Array(4));
    }
    await symlink(join(other, 'c.bin'), join(dir, 'c.bin'));
    const path = (d: string, name: string) => join(d, name);

    const fast = await planExternalData([
      { location: 'a.bin', data: path(dir, 'a.bin') },
      { location: 'b.bin', data: path(dir, 'b.bin') },
    ]);
    expect(fast.plan).toEqual({ externalBytes: [], externalFiles: [], externalFolder: await realpath(dir) });
    expect(fast.sizes).toEqual([
      { location: 'a.bin', size: 4 },
      { location: 'b.bin', size: 4 },
    ]);
    // A symlink counts as its target, and c.bin really lives outside the folder it is named in.
    await expect(planExternalData([{ location: 'c.bin', data: path(dir, 'c.bin') }])).rejects.toMatchObject({
      code: 'EXTERNAL_DATA_PATH',
    });

    const renamed = await planExternalData([{ location: 'a.bin', data: path(dir, 'renamed.bin') }]);
    expect(renamed.plan).toMatchObject({
      externalFolder: undefined,
      externalFiles: [{ location: 'a.bin', path: path(await realpath(dir), 'renamed.bin') }],
    });
    const split = await planExternalData([
      { location: 'a.bin', data: path(dir, 'a.bin') },
      { location: 'c.bin', data: path(other, 'c.bin') },
    ]);
    expect(split.plan.externalFolder).toBeUndefined();
    const mixed = await planExternalData([
      { location: 'a.bin', data: path(dir, 'a.bin') },
      { location: 'x.bin', data: new Uint8Array(4) },
    ]);
    expect(mixed.plan).toMatchObject({
      externalFolder: undefined,
      externalFiles: [{ location: 'a.bin' }],
      externalBytes: [{ location: 'x.bin' }],
    });
  });
});

describe('telemetry', () => {
  it('sets ORT_DISABLE_TELEMETRY unless the user did, so onnxruntime writes nothing to ~/.cache', async () => {
    const home = await mkdtemp(join(folder, 'home-'));
    const saved = { home: process.env.HOME, xdg: process.env.XDG_CACHE_HOME };
    process.env.HOME = home;
    delete process.env.XDG_CACHE_HOME;
    try {
      // A 'process' worker starts with this environment, so onnxruntime initialises afresh in it.
      const r = runtime({ worker: 'process' });
      expect(process.env.ORT_DISABLE_TELEMETRY).toBe('1');
      const session = await r.createSession(identity);
      await session.run({ x: f32([1], [1]) });
      await r.dispose();
      expect(await readdir(home)).toEqual([]);
    } finally {
      process.env.HOME = saved.home;
      if (saved.xdg !== undefined) process.env.XDG_CACHE_HOME = saved.xdg;
    }
  });
});

/**
 * A conv stack whose run time grows with its spatial size while its tensors stay small:
 * [1,1,h,w] → Conv 1→128 → 8 × Conv 128→128 (one shared weight) → Conv 128→1.
 */
const slowModel = (() => {
  const g = new GraphBuilder({ name: 'slow' });
  const m = g.root;
  const weight = (shape: number[], seed: number): HostTensor<'float32'> => {
    let s = seed;
    const values = Array.from(
      { length: shape.reduce((a, b) => a * b, 1) },
      () => ((s = (s * 16807) % 2147483647) / 2147483647 - 0.5) * 0.1,
    );
    return f32(shape, values);
  };
  let x = m.conv(
    g.input('x', 'float32', [1, 1, 'h', 'w']),
    m.constant(weight([128, 1, 3, 3], 1)),
    undefined,
    { pads: [1, 1, 1, 1] },
  );
  const shared = m.constant(weight([128, 128, 3, 3], 2));
  for (let i = 0; i < 8; i++) x = m.conv(x, shared, undefined, { pads: [1, 1, 1, 1] });
  g.output(m.conv(x, m.constant(weight([1, 128, 3, 3], 3)), undefined, { pads: [1, 1, 1, 1] }), 'y', [
    1,
    1,
    'h',
    'w',
  ]);
  return serializeModel(g.build());
})();

const image = (side: number): HostTensor<'float32'> =>
  f32([1, 1, side, side], new Float32Array(side * side).fill(0.5));

/** The side at which one run of `slowModel` takes about `ms` here (measured in-process). */
let slowSide = 64;
/**
 * "At once" after an abort: well under the ~1.35 s the calibrated run still has left 150 ms in,
 * with room for a loaded 2-core CI machine.
 */
const AT_ONCE_MS = 750;
beforeAll(async () => {
  const r = createNodeRuntime({ threads: 1 });
  const session = await r.createSession(slowModel);
  await session.run({ x: image(32) });
  const started = performance.now();
  await session.run({ x: image(64) });
  const perPixel = (performance.now() - started) / (64 * 64);
  slowSide = Math.min(1024, Math.max(64, Math.round(Math.sqrt(1500 / perPixel))));
  await r.dispose();
});

/** Counts 10 ms ticks while `work` runs. */
async function ticksDuring<T>(work: () => Promise<T>): Promise<{ ticks: number; ms: number; result: T }> {
  let ticks = 0;
  const timer = setInterval(() => ticks++, 10);
  const started = performance.now();
  try {
    const result = await work();
    return { ticks, ms: performance.now() - started, result };
  } finally {
    clearInterval(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  for (const started = performance.now(); !condition(); await sleep(10)) {
    if (performance.now() - started > timeoutMs) expect.fail(`condition not met within ${timeoutMs} ms`);
  }
}

/** Live child processes of this process running the worker host (Linux /proc). */
function workerPids(): number[] {
  return readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .flatMap((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
        const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        const command = readFileSync(`/proc/${name}/cmdline`, 'utf8');
        return Number(ppid) === process.pid && state !== 'Z' && command.includes('ort-host.js')
          ? [Number(name)]
          : [];
      } catch {
        return [];
      }
    });
}

describe('where sessions run', () => {
  it('in-process, run() blocks the event loop (the reason for worker mode)', async () => {
    const session = await runtime().createSession(slowModel);
    const { ticks, ms } = await ticksDuring(() => session.run({ x: image(slowSide) }));
    expect(ms).toBeGreaterThan(500);
    expect(ticks).toBeLessThanOrEqual(2);
  });

  it.each(['thread', 'process'] as const)(
    'a %s worker keeps the event loop responsive during a long run',
    async (worker) => {
      const session = await runtime({ worker }).createSession(slowModel);
      const { ticks, ms, result } = await ticksDuring(() => session.run({ x: image(slowSide) }));
      expect(ms).toBeGreaterThan(500);
      expect(ticks).toBeGreaterThan(ms / 10 / 3);
      expect(result.y!.shape).toEqual([1, 1, slowSide, slowSide]);
    },
  );

  it('in-process, an abort during the run is reported when the run returns, without outputs', async () => {
    const session = await runtime().createSession(identity);
    const controller = new AbortController();
    const running = session.run({ x: f32([1], [1]) }, { signal: controller.signal });
    controller.abort();
    expect(await codeOf(running)).toBe('ABORTED');
  });

  it('a thread worker rejects an aborted run at once, finishes the native call, and runs the next request after it', async () => {
    const session = await runtime({ worker: 'thread' }).createSession(slowModel);
    const controller = new AbortController();
    const running = session.run({ x: image(slowSide) }, { signal: controller.signal });
    await sleep(150);
    const aborted = performance.now();
    controller.abort();
    expect(await codeOf(running)).toBe('ABORTED');
    expect(performance.now() - aborted).toBeLessThan(AT_ONCE_MS);
    const { y } = await session.run({ x: image(4) });
    expect(y!.shape).toEqual([1, 1, 4, 4]);
  });

  it.runIf(process.platform === 'linux')(
    'a process worker is killed by an abort during a run; the next run starts a new one and recreates the session there',
    async () => {
      const r = runtime({ worker: 'process' });
      const session = await r.createSession(slowModel);
      const other = await r.createSession(identity);
      const [first] = workerPids();
      expect(workerPids()).toHaveLength(1);

      const controller = new AbortController();
      const running = session.run({ x: image(slowSide) }, { signal: controller.signal });
      await sleep(150);
      const aborted = performance.now();
      controller.abort();
      expect(await codeOf(running)).toBe('ABORTED');
      expect(performance.now() - aborted).toBeLessThan(AT_ONCE_MS);
      // Had it only been left to finish, the worker would still be alive (idle) afterwards.
      await until(() => !workerPids().includes(first!));

      const { y } = await session.run({ x: image(4) });
      expect(y!.shape).toEqual([1, 1, 4, 4]);
      expect([...(await other.run({ x: f32([2], [7, 8]) })).y!.data]).toEqual([7, 8]);
      expect(workerPids()).toHaveLength(1);
      expect(workerPids()).not.toContain(first);
    },
  );

  it.runIf(process.platform === 'linux')(
    'a process worker that dies during a run fails that run with RUN_FAILED and is replaced for the next',
    async () => {
      const before = workerPids();
      const session = await runtime({ worker: 'process' }).createSession(slowModel);
      const [pid] = workerPids().filter((p) => !before.includes(p));
      const running = session.run({ x: image(slowSide) });
      await sleep(150);
      process.kill(pid!, 'SIGSEGV');
      const error = await running.catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'RUN_FAILED', message: expect.stringMatching(/signal SIGSEGV/) });
      const { y } = await session.run({ x: image(4) });
      expect(y!.shape).toEqual([1, 1, 4, 4]);
    },
  );

  it.each(['thread', 'process'] as const)(
    'a %s worker: aborting a queued request leaves the running one alone',
    async (worker) => {
      const session = await runtime({ worker }).createSession(slowModel);
      const first = session.run({ x: image(Math.round(slowSide / 3)) });
      const controller = new AbortController();
      const second = session.run({ x: image(4) }, { signal: controller.signal });
      controller.abort();
      expect(await codeOf(second)).toBe('ABORTED');
      expect((await first).y!.shape[2]).toBe(Math.round(slowSide / 3));
    },
  );

  it('disposing a thread-worker runtime during a run waits for the run instead of crashing the process', async () => {
    const r = runtime({ worker: 'thread' });
    const session = await r.createSession(slowModel);
    const running = session.run({ x: image(Math.round(slowSide / 2)) });
    await sleep(50);
    await r.dispose();
    expect((await running).y!.shape).toEqual([1, 1, Math.round(slowSide / 2), Math.round(slowSide / 2)]);
    expect(await codeOf(session.run({ x: image(4) }))).toBe('SESSION_DISPOSED');
  });
});
