import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { extname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { RgbImage } from '@dcae/autoencoder';
import { cropDraw, heldOutSplit, SampleOrder } from '../data/plan.js';
import type { CropOptions } from '../data/plan.js';
import type { TrainData } from '../data/types.js';
import { decodeCrop, DECODE_WORKER_TAG } from './decode-worker.js';
import type { DecodeReply, DecodeRequest, DecodeTask } from './decode-worker.js';

const IMAGE_EXTENSIONS = new Set(['.png', '.jpg', '.jpeg', '.webp']);

/** Every PNG/JPEG/WebP file under `dir` (recursive, symlinks not followed), sorted by relative path. */
export async function listImages(dir: string): Promise<string[]> {
  const root = resolve(dir);
  const info = await stat(root).catch((cause: unknown) => {
    throw new DcaeError('FILE_NOT_FOUND', `--data ${dir} does not exist.`, { source: dir, cause });
  });
  if (!info.isDirectory()) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `--data ${dir} is a file; pass a folder of images or a .safetensors file with a "sample" tensor.`,
      { source: dir },
    );
  }
  const out: string[] = [];
  const walk = async (folder: string): Promise<void> => {
    const entries = await readdir(folder, { withFileTypes: true });
    for (const e of entries) {
      const path = join(folder, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.isFile() && IMAGE_EXTENSIONS.has(extname(e.name).toLowerCase())) out.push(path);
    }
  };
  await walk(root);
  return out.sort((a, b) => (relative(root, a) < relative(root, b) ? -1 : 1));
}

export interface ImageFolderOptions extends CropOptions {
  readonly batch: number;
  readonly seed: number;
  /** Images of the folder kept for evaluation (ignored with `evalDir`). */
  readonly heldOut: number;
  readonly evalSize: number;
  /** A separate folder of held-out images. */
  readonly evalDir?: string;
  /** Decoding threads; 0 decodes on the calling thread. @defaultValue min(2, cores − 1), at least 1 */
  readonly workers?: number;
  /** Called once per unreadable image, with the running count. */
  readonly onWarning?: (message: string) => void;
}

/** The worker script next to this module (dist), or undefined when running from sources without a build. */
function workerScript(): URL | undefined {
  const here = new URL(import.meta.url);
  const sibling = new URL('./decode-worker.js', here);
  if (!here.pathname.endsWith('.ts')) return sibling;
  // Running from sources (tests): use the built worker if the package has been built.
  const built = new URL('../../dist/node/decode-worker.js', here);
  return existsSync(fileURLToPath(built)) ? built : undefined;
}

/**
 * A small pool of decode workers, round robin; replies resolve per request id. A worker that dies
 * (it should not: decode errors are replies) leaves the pool, and its requests are decoded on the
 * calling thread instead, so a run never hangs on a lost reply.
 */
class DecodePool {
  readonly #workers: Worker[] = [];
  readonly #pending = new Map<
    number,
    { worker: Worker; task: DecodeRequest; done: (r: DecodeReply) => void }
  >();
  #next = 0;
  #turn = 0;

  constructor(count: number, script: URL | undefined) {
    if (script === undefined) return;
    for (let i = 0; i < count; i++) {
      // No inherited execArgv: a test runner's loader flags must not reach the worker.
      const worker = new Worker(script, { workerData: DECODE_WORKER_TAG, execArgv: [] });
      worker.on('message', (reply: DecodeReply) => {
        const entry = this.#pending.get(reply.id);
        this.#pending.delete(reply.id);
        entry?.done(reply);
      });
      const lost = (): void => {
        const index = this.#workers.indexOf(worker);
        if (index >= 0) this.#workers.splice(index, 1);
        for (const [id, entry] of this.#pending) {
          if (entry.worker !== worker) continue;
          this.#pending.delete(id);
          void decodeCrop(entry.task).then(entry.done);
        }
      };
      worker.on('error', lost);
      worker.on('exit', lost);
      this.#workers.push(worker);
    }
  }

  get threads(): number {
    return this.#workers.length;
  }

  run(request: DecodeTask): Promise<DecodeReply> {
    const id = this.#next++;
    const task: DecodeRequest = { ...request, id };
    if (this.#workers.length === 0) return decodeCrop(task);
    const worker = this.#workers[this.#turn++ % this.#workers.length]!;
    return new Promise((done) => {
      this.#pending.set(id, { worker, task, done });
      worker.postMessage(task);
    });
  }

  async close(): Promise<void> {
    const workers = this.#workers.splice(0);
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

/**
 * An image folder as training data: random crops (optionally multi-scale) with flips, in a seeded
 * order (docs/training-loop.md, "Data"); a seeded held-out split (or a separate folder) evaluated on
 * centre crops. Images are decoded in worker threads. An image that cannot be read or decoded is
 * skipped with a counted warning (the next image of the epoch order takes its place, the same way
 * in every run), never a crash; only a folder where nothing decodes is an error.
 */
export async function openImageFolder(dir: string, options: ImageFolderOptions): Promise<TrainData> {
  const all = await listImages(dir);
  if (all.length === 0) {
    throw new DcaeError(
      'DATA_EMPTY',
      `--data ${dir} holds no images (looked for .png, .jpg, .jpeg and .webp files, recursively).`,
      { source: dir },
    );
  }
  let trainFiles = all;
  let evalFiles: string[] = [];
  if (options.evalDir !== undefined) {
    evalFiles = await listImages(options.evalDir);
  } else if (options.heldOut > 0) {
    if (options.heldOut >= all.length) {
      throw new DcaeError(
        'DATA_EMPTY',
        `--data ${dir} has ${all.length} image(s), but ${options.heldOut} are to be held out; lower heldOut or add images.`,
        { source: dir, detail: { images: all.length, heldOut: options.heldOut } },
      );
    }
    const split = heldOutSplit(all.length, options.heldOut, options.seed);
    trainFiles = split.train.map((i) => all[i]!);
    evalFiles = split.heldOut.map((i) => all[i]!);
  }
  const threads = options.workers ?? Math.max(1, Math.min(2, availableParallelism() - 1));
  const pool = new DecodePool(threads, threads > 0 ? workerScript() : undefined);
  const order = new SampleOrder(trainFiles.length, options.seed);
  const bad = new Set<number>();
  let skipped = 0;
  const warn = (path: string, reason: string): void => {
    skipped++;
    options.onWarning?.(`skipping ${path} (${skipped} skipped so far): ${reason}`);
  };
  const cropOptions: CropOptions = {
    size: options.size,
    augment: options.augment,
    multiScale: options.multiScale,
  };
  let evalCache: Promise<RgbImage[]> | undefined;

  const sample = async (p: number): Promise<Uint8Array> => {
    const draw = cropDraw(options.seed, p);
    for (let k = 0; k < trainFiles.length; k++) {
      const index = order.item(p, k);
      if (bad.has(index)) continue;
      const reply = await pool.run({ path: trainFiles[index]!, draw, options: cropOptions });
      if ('data' in reply) return reply.data;
      bad.add(index);
      warn(trainFiles[index]!, reply.error);
    }
    throw new DcaeError(
      'DATA_EMPTY',
      `--data ${dir}: none of its ${trainFiles.length} training images can be decoded.`,
      {
        source: dir,
      },
    );
  };

  return {
    description: `image folder ${dir} (${trainFiles.length} training images, ${evalFiles.length} held out; ${pool.threads} decode thread(s))`,
    count: trainFiles.length,
    heldOutIsSeparate: true,
    get skipped() {
      return skipped;
    },
    async batch(step, signal) {
      const { batch, size } = options;
      const crops = await Promise.all(Array.from({ length: batch }, (_, i) => sample(step * batch + i)));
      signal?.throwIfAborted();
      return cropsToTensor(crops, size);
    },
    evalImages(signal) {
      evalCache ??= (async () => {
        const images: RgbImage[] = [];
        for (const path of evalFiles) {
          signal?.throwIfAborted();
          const reply = await pool.run({ path, evalSize: options.evalSize });
          if ('data' in reply) {
            images.push({ width: reply.width, height: reply.height, channels: 3, data: reply.data });
          } else warn(path, reply.error);
        }
        return images;
      })();
      return evalCache;
    },
    close: () => pool.close(),
  };
}

const BYTE_TO_UNIT = (() => {
  const f32 = Math.fround;
  const table = new Float32Array(256);
  for (let p = 0; p < 256; p++) table[p] = f32(f32(f32(p / 255) - 0.5) / 0.5);
  return table;
})();

/** HWC uint8 crops → float32 [B, 3, S, S] in [−1, 1] (the same values as imageToTensor). */
export function cropsToTensor(crops: readonly Uint8Array[], size: number): HostTensor<'float32'> {
  const plane = size * size;
  const out = new Float32Array(crops.length * 3 * plane);
  crops.forEach((crop, b) => {
    const base = b * 3 * plane;
    for (let i = 0; i < plane; i++) {
      out[base + i] = BYTE_TO_UNIT[crop[3 * i]!]!;
      out[base + plane + i] = BYTE_TO_UNIT[crop[3 * i + 1]!]!;
      out[base + 2 * plane + i] = BYTE_TO_UNIT[crop[3 * i + 2]!]!;
    }
  });
  return { dtype: 'float32', shape: [crops.length, 3, size, size], data: out };
}
