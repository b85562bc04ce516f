import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng, DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { RuntimeV1, SessionV1 } from '@dcae/core/runtime';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import type { AutoencoderProgress, TileGeometry } from '../src/index.js';
import { directoryModelFiles, exportOnnx, loadAutoencoder } from '../src/node/index.js';
import { fixturePath, readFixtureTensors } from './helpers.js';

/** Progress events and cancellation of loading, session setup, tiled runs and export. */

const NAME = 'tiny-sana-f32';
const TILES: TileGeometry = { tileSize: 64, overlap: 32 };
const base = createNodeRuntime({ threads: 1 });
const work = mkdtempSync(join(tmpdir(), 'dcae-progress-'));
afterAll(async () => {
  await base.dispose();
  rmSync(work, { recursive: true, force: true });
});

/** The real node runtime, counting `session.run` calls (to see that no tile runs after an abort). */
function counting(runtime: RuntimeV1): RuntimeV1 & { runs: number } {
  const wrapper = {
    runs: 0,
    specificationVersion: runtime.specificationVersion,
    name: runtime.name,
    devices: runtime.devices,
    dispose: () => runtime.dispose(),
    async createSession(model: Uint8Array, options?: Parameters<RuntimeV1['createSession']>[1]) {
      const session = await runtime.createSession(model, options);
      const counted: SessionV1 = {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        device: session.device,
        dispose: () => session.dispose(),
        run: (feeds, runOptions) => {
          wrapper.runs++;
          return session.run(feeds, runOptions);
        },
      };
      return counted;
    },
  };
  return wrapper;
}

async function rejection(promise: Promise<unknown>): Promise<DcaeError> {
  try {
    await promise;
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a DcaeError');
}

/** A random latent of h × w cells for the 8-channel fixture. */
const latent = (h: number, w: number): HostTensor<'float32'> => createRng(5).randn([1, 8, h, w]);

const brief = (e: AutoencoderProgress): string =>
  `${e.stage}${e.part ? `:${e.part}` : ''} ${e.done}/${e.total}`;

describe('progress events', () => {
  it('reports load, build, session and every tile, to the model and to the call', async () => {
    const model: string[] = [];
    const ae = await loadAutoencoder(fixturePath(NAME), {
      runtime: base,
      onProgress: (e) => model.push(brief(e)),
    });
    try {
      expect(model).toEqual(['load 0/2', 'load 1/2', 'load 2/2']);
      const call: AutoencoderProgress[] = [];
      const z = latent(4, 3); // 128 × 96 px in 64 px tiles, stride 32: 3 × 2 tiles
      await ae.decode(z, { tiling: TILES, onProgress: (e) => call.push(e) });
      const tiles = ['decode:decoder 0/6', ...[1, 2, 3, 4, 5, 6].map((k) => `decode:decoder ${k}/6`)];
      const setup = ['build:decoder 0/1', 'build:decoder 1/1', 'session:decoder 0/1', 'session:decoder 1/1'];
      expect(call.map(brief)).toEqual([...setup, ...tiles]);
      expect(call.at(-1)!.plan).toMatchObject({ tiles: { rows: 3, columns: 2 }, runs: 6 });
      expect(model.slice(3)).toEqual([...setup, ...tiles]);
      // The session exists now: a second call reports its runs only.
      const again: string[] = [];
      await ae.decode(z, { tiling: TILES, batchSize: 1, onProgress: (e) => again.push(brief(e)) });
      expect(again).toEqual(tiles);
    } finally {
      await ae.dispose();
    }
  });

  it('counts batch slices times tiles, and each converted tensor of an fp16 build', async () => {
    const ae = await loadAutoencoder(fixturePath(NAME), { runtime: base, dtype: 'fp16' });
    try {
      const events: AutoencoderProgress[] = [];
      const three = createRng(6).randn([3, 8, 4, 3]);
      await ae.decode(three, { tiling: TILES, batchSize: 2, onProgress: (e) => events.push(e) });
      const build = events.filter((e) => e.stage === 'build');
      const total = build.at(-1)!.total;
      expect(total).toBeGreaterThan(50); // one step per decoder tensor, plus the graph
      expect(build.map((e) => e.done)).toEqual([0, ...Array.from({ length: total }, (_, k) => k + 1)]);
      const runs = events.filter((e) => e.stage === 'decode');
      expect(runs.map((e) => e.done)).toEqual(Array.from({ length: 13 }, (_, k) => k)); // 2 slices × 6 tiles
      expect(runs[0]!.plan).toMatchObject({ batchSize: 2, runs: 12 });
    } finally {
      await ae.dispose();
    }
  });
});

describe('cancellation', () => {
  it('stops after the tile whose progress event aborted, with ABORTED', async () => {
    const runtime = counting(base);
    const ae = await loadAutoencoder(fixturePath(NAME), { runtime });
    try {
      const controller = new AbortController();
      const done: number[] = [];
      const error = await rejection(
        ae.decode(latent(6, 6), {
          tiling: TILES,
          signal: controller.signal,
          onProgress: (e) => {
            if (e.stage !== 'decode') return;
            done.push(e.done);
            if (e.done === 1) controller.abort();
          },
        }),
      );
      expect(error.code).toBe('ABORTED');
      expect(done).toEqual([0, 1]); // of 25 tiles
      expect(runtime.runs).toBe(1);
      // The model stays usable.
      const image = await ae.decode(latent(2, 2));
      expect(image.shape).toEqual([1, 3, 64, 64]);
    } finally {
      await ae.dispose();
    }
  });

  it('abandons an in-flight run in a worker thread at once', async () => {
    const worker = createNodeRuntime({ threads: 1, worker: 'thread' });
    const runtime = counting(worker);
    const ae = await loadAutoencoder(fixturePath(NAME), { runtime });
    try {
      const image = createRng(8).randn([1, 3, 768, 768]);
      let started = performance.now();
      await ae.encode(image, { tiling: 'never' }); // includes the session setup
      started = performance.now();
      await ae.encode(image, { tiling: 'never' });
      const runMs = performance.now() - started;
      const controller = new AbortController();
      started = performance.now();
      const error = await rejection(
        ae.encode(image, {
          tiling: 'never',
          signal: controller.signal,
          // Abort right after the run was sent to the worker.
          onProgress: (e) => e.stage === 'encode' && e.done === 0 && setTimeout(() => controller.abort(), 0),
        }),
      );
      const abortMs = performance.now() - started;
      expect(error.code).toBe('ABORTED');
      expect(runtime.runs).toBe(3);
      expect(abortMs).toBeLessThan(runMs / 2);
    } finally {
      await ae.dispose();
      await worker.dispose();
    }
  });

  it('stops waiting for a session that is still being set up, which later calls then use', async () => {
    const ae = await loadAutoencoder(fixturePath(NAME), { runtime: base });
    try {
      const controller = new AbortController();
      const pending = ae.decode(latent(2, 2), {
        signal: controller.signal,
        onProgress: (e) => e.stage === 'build' && e.done === 0 && controller.abort(),
      });
      expect((await rejection(pending)).code).toBe('ABORTED');
      const events: string[] = [];
      await ae.decode(latent(2, 2), { onProgress: (e) => events.push(e.stage) });
      expect(events).toEqual(['decode', 'decode']); // no second build or session
    } finally {
      await ae.dispose();
    }
  });

  it('aborts an export midway and leaves no file behind', async () => {
    const controller = new AbortController();
    const files = directoryModelFiles(fixturePath(NAME));
    let reads = 0;
    const watched = {
      ...files,
      byteSource: async (file: string) => {
        const source = await files.byteSource(file);
        return {
          ...source,
          read: (offset: number, length: number) => {
            if (++reads === 40) controller.abort();
            return source.read(offset, length);
          },
        };
      },
    };
    const ae = await loadAutoencoder(watched, { runtime: base });
    const target = join(work, 'export');
    try {
      const error = await rejection(
        exportOnnx(ae, target, { weights: 'external', signal: controller.signal }),
      );
      expect(error.code).toBe('ABORTED');
      expect(reads).toBeGreaterThanOrEqual(40);
      expect(existsSync(target)).toBe(false);
      expect(readdirSync(work)).toEqual([]);
    } finally {
      await ae.dispose();
    }
  });

  it('refuses a run of a part that was not loaded', async () => {
    const ae = await loadAutoencoder(fixturePath(NAME), { runtime: base, parts: ['decoder'] });
    try {
      const sample = readFixtureTensors(NAME, 'input.safetensors').get('sample')!;
      const error = await rejection(ae.encode(sample));
      expect(error.code).toBe('UNSUPPORTED');
      expect(error.message).toContain("parts including 'encoder'");
      expect((await ae.onnxFiles()).map((f) => f.name)).toEqual(['decoder.onnx']);
    } finally {
      await ae.dispose();
    }
  });
});
