import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { imageToTensor } from '@dcae/autoencoder';
import { decodeImage, encodeImage, loadAutoencoder } from '@dcae/autoencoder/node';
import { centerCrop, encodeNpy, latentContractMetadata } from '@dcae/latents';
import {
  enqueuePlan,
  makePlan,
  PosixStore,
  runShards,
  startWorker,
  writePlan,
  writeTar,
} from '@dcae/latents/node';
import { summarize } from '../measure.js';
import type { Figure, Scenario, Series, Skipped } from '../scenario.js';
import { fixtureFolder } from './soak.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Bytes one sample takes in a latent tar: `<key>.npy` (v1.0 header) + `<key>.json`, with tar headers. */
async function tarBytesPerSample(
  dir: string,
  shape: number[],
  dtype: 'float32' | 'float16',
  json: string,
): Promise<number> {
  const count = shape.reduce((a, b) => a * b, 1);
  const npy =
    dtype === 'float32'
      ? encodeNpy('float32', shape, new Float32Array(count))
      : encodeNpy('float16', shape, new Uint16Array(count));
  const path = join(dir, `probe-${dtype}-${shape.join('x')}.tar`);
  const handle = await open(path, 'w');
  try {
    const samples = 100;
    const result = await writeTar(
      handle,
      (async function* () {
        for (let i = 0; i < samples; i++) {
          yield { name: `${String(i).padStart(9, '0')}.npy`, data: npy };
          yield { name: `${String(i).padStart(9, '0')}.json`, data: new TextEncoder().encode(json) };
        }
      })(),
    );
    return (result.bytes - 1024) / samples; // minus the end-of-archive blocks
  } finally {
    await handle.close();
  }
}

/**
 * `latents`: dataset pre-encoding throughput on the tiny DC-AE (docs/latents.md). Images per second
 * through BullMQ (one worker, 1/2/4 sandboxed child processes, a real redis-server started here)
 * against the same images through a plain in-process encode loop; the queue's overhead per shard;
 * and the bytes each stored sample takes for fp32 and fp16 (the tiny model, and a 512² f32c32 latent).
 */
export const latents: Scenario = {
  name: 'latents',
  title:
    'dcae latents: images/s for 1/2/4 BullMQ workers vs a plain encode loop; queue overhead; bytes/sample',
  description:
    'Tiny DC-AE (tiny-sana-f32), CPU, 1 thread per process. "plain loop": decode + center crop + encode one image at a time in this process (model already loaded). ' +
    '"bullmq ×N": enqueue the plan, one worker with N sandboxed children, wall time from enqueue to the last commit record (includes each child loading the model). ' +
    'Queue overhead per shard = (bullmq ×1 wall − Σ time inside processShard) / shards. Bytes per sample are measured on written tars.',
  async run(ctx) {
    const quick = ctx.quick;
    const count = quick ? 8 : 48;
    const size = quick ? 64 : 128;
    const shardSize = quick ? 2 : 4;
    const workerCounts = quick ? [1, 2] : [1, 2, 4];
    const model = fixtureFolder('tiny-sana-f32');
    const dir = await mkdtemp(join(tmpdir(), 'dcae-bench-latents-'));
    const series: Series[] = [];
    const figures: Figure[] = [];
    const notes: string[] = [];
    const skipped: Skipped[] = [];
    try {
      const images = join(dir, 'images');
      await mkdir(join(images, 'c0'), { recursive: true });
      for (let i = 0; i < count; i++) {
        const w = size + 16 + (i % 5) * 4;
        const data = new Uint8Array(w * size * 3);
        for (let j = 0; j < data.length; j++) data[j] = (j * 7 + i * 13) & 255;
        await writeFile(
          join(images, 'c0', `img${i}.png`),
          await encodeImage({ width: w, height: size, channels: 3, data }, 'png'),
        );
      }

      // The plain encode loop (the baseline): same preprocessing, model loaded once.
      const runtime = await ctx.runtime();
      const ae = await loadAutoencoder(model, { runtime, parts: ['encoder'] });
      const { readFile } = await import('node:fs/promises');
      const loopStart = performance.now();
      for (let i = 0; i < count; i++) {
        const rgb = await decodeImage(await readFile(join(images, 'c0', `img${i}.png`)));
        await ae.encode(imageToTensor(centerCrop(rgb, size).image));
      }
      const loopMs = performance.now() - loopStart;
      await ae.dispose();
      series.push(summarize('plain encode loop', [loopMs]));
      figures.push({ name: 'plain encode loop', value: count / (loopMs / 1000), unit: 'images/s' });

      // The same through processShard in this process (no queue), for the fp32/fp16 bytes.
      const bytes: Record<string, number> = {};
      for (const dtype of ['fp32', 'fp16'] as const) {
        const plan = await makePlan({
          model,
          input: images,
          output: join(dir, `local-${dtype}`),
          size,
          shardSize,
          dtype,
        });
        const ae2 = await loadAutoencoder(model, { runtime, parts: ['encoder'] });
        const { results } = await runShards(
          plan,
          plan.shards.map((s) => s.index),
          { store: new PosixStore(plan.output), model: async () => ae2 },
        );
        await ae2.dispose();
        const total = results.reduce((a, r) => a + r.record.bytes, 0);
        const samples = results.reduce((a, r) => a + r.record.nsamples, 0);
        bytes[dtype] = total / samples;
        figures.push({
          name: `bytes/sample, tiny model ${size}² ${dtype} (latent 8×${size / 32}×${size / 32}, tar incl. .json)`,
          value: Math.round(total / samples),
          unit: 'B',
        });
      }
      const json = JSON.stringify({
        key: '000000000',
        path: 'n01440764/n01440764_10026.JPEG',
        label: 0,
        class: 'n01440764',
        crop: {
          source: { width: 500, height: 375 },
          resized: { width: 683, height: 512 },
          left: 85,
          top: 0,
          size: 512,
        },
        size: 512,
        shape: [32, 16, 16],
        dtype: 'fp16',
        scaled: true,
        scalingFactor: 0.41407,
        model: 'mit-han-lab/dc-ae-f32c32-in-1.0-diffusers',
        preprocessing: 'adm-center-crop-v1',
        latentMetadata: latentContractMetadata({
          modelName: 'mit-han-lab/dc-ae-f32c32-in-1.0-diffusers',
          scalingFactor: 0.41407,
          scaled: true,
          computeDtype: 'fp32',
        }),
      });
      for (const dtype of ['float32', 'float16'] as const) {
        const b = await tarBytesPerSample(dir, [32, 16, 16], dtype, json);
        figures.push({
          name: `bytes/sample, f32c32 512² ${dtype} (32×16×16, tar incl. .json)`,
          value: Math.round(b),
          unit: 'B',
        });
        figures.push({
          name: `tar + npy + json overhead at 512² ${dtype}`,
          value: Math.round((b / (8192 * (dtype === 'float32' ? 4 : 2)) - 1) * 1000) / 10,
          unit: '%',
        });
      }

      // BullMQ: a real redis-server on loopback.
      let hasRedis = true;
      try {
        execFileSync('redis-server', ['--version'], { stdio: 'ignore' });
      } catch {
        hasRedis = false;
      }
      if (!hasRedis) {
        for (const n of workerCounts)
          skipped.push({
            name: `bullmq ×${n}`,
            reason: 'redis-server is not installed (apt-get install redis-server)',
          });
      } else {
        const port = await freePort();
        const redisDir = join(dir, 'redis');
        await mkdir(redisDir);
        const redis = spawn(
          'redis-server',
          [
            '--port',
            String(port),
            '--bind',
            '127.0.0.1',
            '--dir',
            redisDir,
            '--appendonly',
            'yes',
            '--save',
            '',
          ],
          { stdio: 'ignore' },
        );
        const url = `redis://127.0.0.1:${port}`;
        try {
          for (let i = 0; i < 100; i++) {
            try {
              if (
                execFileSync('redis-cli', ['-p', String(port), 'ping'])
                  .toString()
                  .trim() === 'PONG'
              )
                break;
            } catch {
              /* starting */
            }
            await sleep(50);
          }
          const processorFile = new URL('./latents-processor.js', import.meta.url);
          for (const n of workerCounts) {
            const plan = await makePlan({
              model,
              input: images,
              output: join(dir, `bullmq-${n}`),
              size,
              shardSize,
            });
            const planPath = join(plan.output, 'plan.json');
            await writePlan(planPath, plan);
            const store = new PosixStore(plan.output);
            const start = performance.now();
            await enqueuePlan(planPath, plan, url);
            const worker = startWorker({
              plan,
              redis: url,
              processorFile,
              concurrency: n,
              lockDurationMs: 30_000,
            });
            const deadline = Date.now() + 300_000;
            let records = await store.listCommits();
            while (records.length < plan.shards.length && Date.now() < deadline) {
              await sleep(50);
              records = await store.listCommits();
            }
            const wallMs = performance.now() - start;
            await worker.close();
            if (records.length < plan.shards.length) {
              skipped.push({
                name: `bullmq ×${n}`,
                reason: `only ${records.length}/${plan.shards.length} shards committed within 300 s`,
              });
              continue;
            }
            series.push(summarize(`bullmq ×${n}`, [wallMs]));
            figures.push({ name: `bullmq ×${n} workers`, value: count / (wallMs / 1000), unit: 'images/s' });
            if (n === 1) {
              const inside = records.reduce((a, r) => a + r.elapsedMs, 0);
              figures.push({
                name: 'queue overhead per shard (bullmq ×1)',
                value: Math.round((wallMs - inside) / plan.shards.length),
                unit: 'ms',
              });
              const first = records.reduce((a, r) => Math.max(a, r.elapsedMs), 0);
              notes.push(
                `bullmq ×1: ${plan.shards.length} shards of ${shardSize}; the slowest shard (${first} ms) includes the child's model load.`,
              );
            }
          }
        } finally {
          redis.kill('SIGKILL');
        }
      }
      notes.push(
        `bytes/sample: fp16 ÷ fp32 on the tiny model = ${(bytes.fp16! / bytes.fp32!).toFixed(2)} (the .json and tar headers do not shrink).`,
      );
      return {
        params: {
          images: count,
          size,
          shardSize,
          model: 'tiny-sana-f32',
          workers: workerCounts.join('/'),
          threadsPerProcess: 1,
        },
        series,
        ratios: workerCounts.map((n) => ({ of: `bullmq ×${n}`, to: 'plain encode loop' })),
        figures,
        notes,
        skipped,
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
