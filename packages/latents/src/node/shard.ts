import { createReadStream } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Readable } from 'node:stream';
import { DcaeError, float16ArrayToFloat32, float32ArrayToFloat16 } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { imageToTensor, tensorToImages } from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';
import { decodeImage, encodeImage } from '@dcae/autoencoder/node';
import { sanitizeKey } from '../keys.js';
import { latentContractMetadata } from '../latent-contract.js';
import { encodeNpy, parseNpy } from '../npy.js';
import type { CommitRecord, CommittedFile, LatentPlan, PlanShard, SkippedSample } from '../plan-types.js';
import { centerCrop } from '../preprocess.js';
import type { CropBox } from '../preprocess.js';
import { readImageParquet } from './parquet.js';
import { groupSamples, readTar, writeTar } from './tar.js';
import type { TarEntry } from './tar.js';
import { newAttemptId, sha256Bytes, writeError } from './store.js';
import type { ShardStore } from './store.js';

/** The model calls a shard needs: a loaded DC-AE (`loadAutoencoder`) satisfies it. */
export interface ShardModel {
  readonly name: string;
  readonly scalingFactor: number | undefined;
  /** The precision the model computes in (the contract's `dcae.dtype`); absent: not recorded. */
  readonly dtype?: 'fp32' | 'fp16' | 'int8';
  encode(images: HostTensor<'float32'>, options?: { signal?: AbortSignal }): Promise<HostTensor<'float32'>>;
  decode(latents: HostTensor<'float32'>, options?: { signal?: AbortSignal }): Promise<HostTensor<'float32'>>;
}

export interface ShardContext {
  readonly store: ShardStore;
  /** Opens (or returns the already open) model; called only when the shard has work to do. */
  readonly model: () => Promise<ShardModel>;
  readonly attemptId?: string;
  readonly signal?: AbortSignal;
  /** Samples done so far (read, preprocessed and encoded) and the total when known. */
  readonly onProgress?: (done: number, total: number | undefined) => void;
}

export interface ShardResult {
  /** `done`: this attempt committed it; `committed`: a commit record already existed (skip check); `lost`: another attempt won the publish race. */
  readonly status: 'done' | 'committed' | 'lost';
  readonly record: CommitRecord;
}

interface InputSample {
  readonly key: string;
  readonly source: string;
  readonly image?: Uint8Array;
  readonly latent?: Uint8Array;
  readonly meta: Record<string, unknown>;
  /** npy-tree relative path (class folder + stem). */
  readonly treePath?: string;
  readonly error?: { code: string; reason: string };
}

const IMAGE_EXTS = ['jpg', 'jpeg', 'png', 'webp'];

async function* inputSamples(plan: LatentPlan, shard: PlanShard): AsyncGenerator<InputSample> {
  const root = plan.input.root;
  if (shard.source.kind === 'files') {
    for (const file of shard.source.files) {
      const stem = basename(file.path).replace(/\.[^.]+$/, '');
      const meta: Record<string, unknown> = { path: file.path };
      if (file.label !== undefined) meta.label = file.label;
      if (file.className !== undefined) meta.class = file.className;
      const treePath = `${file.className !== undefined ? `${file.className}/` : ''}${stem}.npy`;
      try {
        yield {
          key: file.key,
          source: file.path,
          image: await readFile(join(root, file.path)),
          meta,
          treePath,
        };
      } catch (cause) {
        yield {
          key: file.key,
          source: file.path,
          meta,
          treePath,
          error: { code: 'FILE_READ', reason: (cause as Error).message },
        };
      }
    }
    return;
  }
  if (shard.source.kind === 'parquet') {
    yield* parquetSamples(root, shard.source.path);
    return;
  }
  const tarPath = join(root, shard.source.path);
  const stream: Readable = createReadStream(tarPath);
  const seen = new Set<string>();
  try {
    for await (const sample of groupSamples(readTar(stream, tarPath))) {
      const rawKey = sample.key.split('/').pop()!;
      const key = sanitizeKey(sample.key);
      const meta: Record<string, unknown> = { tar: shard.source.path, tarKey: sample.key };
      const text = (ext: string): string | undefined => {
        const bytes = sample.files.get(ext);
        return bytes ? new TextDecoder().decode(bytes) : undefined;
      };
      if (plan.kind === 'encode') {
        const caption = text('txt');
        const cls = text('cls');
        const json = text('json');
        if (caption !== undefined) meta.caption = caption;
        if (cls !== undefined && /^\s*-?\d+\s*$/.test(cls)) meta.label = Number(cls);
        if (json !== undefined) {
          try {
            meta.meta = JSON.parse(json) as unknown;
          } catch {
            meta.meta = json;
          }
        }
      } else {
        const json = text('json');
        if (json !== undefined) {
          try {
            Object.assign(meta, { latent: JSON.parse(json) as unknown });
          } catch {
            /* a broken sidecar is carried as missing */
          }
        }
      }
      if (seen.has(key)) {
        yield {
          key,
          source: `${shard.source.path}:${sample.key}`,
          meta,
          error: {
            code: 'DUPLICATE_KEY',
            reason: `key ${sample.key} appears twice in the input shard; the first one is kept`,
          },
        };
        continue;
      }
      seen.add(key);
      const image = IMAGE_EXTS.map((e) => sample.files.get(e)).find((b) => b !== undefined);
      const latent = sample.files.get('npy');
      const payload = plan.kind === 'encode' ? image : latent;
      if (!payload) {
        const wanted = plan.kind === 'encode' ? IMAGE_EXTS.join('/') : 'npy';
        yield {
          key,
          source: `${shard.source.path}:${sample.key}`,
          meta,
          error: {
            code: 'UNSUPPORTED_FORMAT',
            reason: `no .${wanted} member (found ${[...sample.files.keys()].map((e) => `.${e}`).join(', ') || 'nothing'})`,
          },
        };
        continue;
      }
      yield {
        key,
        source: `${shard.source.path}:${sample.key}`,
        meta,
        treePath: `${rawKey.replace(/[^A-Za-z0-9_-]/g, '_')}.npy`,
        ...(plan.kind === 'encode' ? { image } : { latent }),
      };
    }
  } catch (cause) {
    // A damaged input tar: keep what was read, record the rest as skipped; the shard still commits.
    const error = DcaeError.is(cause) ? cause : writeError(cause, tarPath);
    yield {
      key: '(rest of tar)',
      source: shard.source.path,
      meta: {},
      error: { code: error.code, reason: error.message },
    };
  }
}

/**
 * img2dataset parquet rows in file order (docs/latents.md, "Inputs"): `key` names the sample,
 * `caption` and the other columns go to the `.json`; a row whose `status` is not `success`, or
 * that has no image bytes, is skipped with the reason. A file that fails to read (cut short
 * after planning, damaged) keeps the rows read before and records the rest as skipped.
 */
async function* parquetSamples(root: string, path: string): AsyncGenerator<InputSample> {
  const seen = new Set<string>();
  try {
    for await (const row of readImageParquet(join(root, path), path)) {
      const key = sanitizeKey(row.key);
      const source = `${path}:${row.row}`;
      const meta: Record<string, unknown> = { parquet: path, row: row.row, parquetKey: row.key };
      if (row.caption !== undefined) meta.caption = row.caption;
      if (row.status !== undefined) meta.status = row.status;
      meta.meta = row.meta;
      const skip = (code: string, reason: string): InputSample => ({
        key,
        source,
        meta,
        error: { code, reason },
      });
      if (seen.has(key)) {
        yield skip(
          'DUPLICATE_KEY',
          `key ${row.key} appears twice in the input parquet; the first one is kept`,
        );
        continue;
      }
      seen.add(key);
      if (row.status !== undefined && row.status !== 'success') {
        yield skip(
          'FILE_NOT_FOUND',
          `img2dataset status "${row.status}"${row.errorMessage ? `: ${row.errorMessage}` : ''} (no image was stored for this row)`,
        );
        continue;
      }
      if (row.image === undefined) {
        yield skip('UNSUPPORTED_FORMAT', 'the row has no image bytes (its image column is null or empty)');
        continue;
      }
      yield { key, source, meta, image: row.image, treePath: `${key}.npy` };
    }
  } catch (cause) {
    const error = DcaeError.is(cause) ? cause : writeError(cause, join(root, path));
    yield {
      key: '(rest of parquet)',
      source: path,
      meta: {},
      error: { code: error.code, reason: error.message },
    };
  }
}

interface Prepared {
  readonly sample: InputSample;
  readonly tensor: HostTensor<'float32'>;
  readonly crop?: CropBox;
}

function stack(items: readonly HostTensor<'float32'>[]): HostTensor<'float32'> {
  const [n, ...rest] = [items.length, ...items[0]!.shape.slice(1)];
  const per = items[0]!.data.length;
  const data = new Float32Array(n * per);
  items.forEach((t, i) => data.set(t.data, i * per));
  return { dtype: 'float32', shape: [n, ...rest], data };
}

/**
 * Produces shard `index` of `plan` under any engine (docs/latents.md, "processShard"):
 * 1. skip check: an existing commit record is returned at once;
 * 2. read the inputs, preprocess, encode (or decode) in batches, recording bad samples as skipped;
 * 3. write an attempt-unique temp, fsync, publish first-writer-wins;
 * 4. write the commit record (first-writer-wins) describing the canonical bytes; sweep temps.
 * Safe to run any number of times, concurrently, on any machine sharing the store.
 */
export async function processShard(plan: LatentPlan, index: number, ctx: ShardContext): Promise<ShardResult> {
  const shard = plan.shards[index];
  if (!shard) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Shard ${index} is not in the plan (it has ${plan.shards.length}: 0..${plan.shards.length - 1}).`,
    );
  }
  const { store } = ctx;
  const existing = await store.readCommit(shard.name);
  if (existing && existing.runId !== plan.runId) {
    throw new DcaeError(
      'OUTPUT_EXISTS',
      `${store.url} already holds ${shard.name} of another run (${existing.runId}; this plan is ${plan.runId}): write each plan to its own output folder or prefix.`,
      { source: store.url },
    );
  }
  if (existing) {
    await store.sweepTemps(shard.name);
    return { status: 'committed', record: existing };
  }
  await store.checkWritable?.();
  const started = performance.now();
  const attemptId = ctx.attemptId ?? newAttemptId();
  const model = await ctx.model();
  const skipped: SkippedSample[] = [];
  const keys: string[] = [];
  const files: CommittedFile[] = [];
  let done = 0;
  const total =
    shard.source.kind === 'files'
      ? shard.source.files.length
      : shard.source.kind === 'parquet'
        ? shard.source.rows
        : undefined;
  // Scaled only when there is a factor to apply: a model without one stores its raw output and
  // says so (`scaled: false`, latent space `autoencoder`), so no reader divides by a missing factor.
  const scaled = plan.scale && plan.kind === 'encode' && model.scalingFactor !== undefined;
  const scaling = scaled ? model.scalingFactor : 1;
  const latentMetadata =
    plan.kind === 'encode'
      ? latentContractMetadata({
          modelName: model.name,
          scalingFactor: model.scalingFactor,
          scaled,
          ...(model.dtype !== undefined ? { computeDtype: model.dtype } : {}),
        })
      : undefined;
  const outExt = plan.kind === 'encode' ? 'npy' : 'png';

  const skip = (s: InputSample, code: string, reason: string): void => {
    skipped.push({ key: s.key, source: s.source, code, reason });
  };

  // Prepared samples → output members, batch by batch.
  async function* outputs(): AsyncGenerator<{
    sample: InputSample;
    data: Uint8Array;
    json: Record<string, unknown>;
  }> {
    let batch: Prepared[] = [];
    const flush = async function* (): AsyncGenerator<{
      sample: InputSample;
      data: Uint8Array;
      json: Record<string, unknown>;
    }> {
      if (batch.length === 0) return;
      const items = batch;
      batch = [];
      const input = stack(items.map((p) => p.tensor));
      if (plan.kind === 'encode') {
        const latent = await model.encode(input, { signal: ctx.signal });
        const per = latent.data.length / items.length;
        const shape = latent.shape.slice(1);
        for (let i = 0; i < items.length; i++) {
          const values = latent.data.subarray(i * per, (i + 1) * per);
          const stored = new Float32Array(per);
          for (let j = 0; j < per; j++) stored[j] = values[j]! * scaling;
          if (!stored.every(Number.isFinite)) {
            skip(items[i]!.sample, 'NON_FINITE_OUTPUT', 'the encoder produced NaN or Infinity');
            continue;
          }
          const data =
            plan.dtype === 'fp16'
              ? encodeNpy('float16', shape, float32ArrayToFloat16(stored))
              : encodeNpy('float32', shape, stored);
          yield {
            sample: items[i]!.sample,
            data,
            json: {
              key: items[i]!.sample.key,
              ...items[i]!.sample.meta,
              crop: items[i]!.crop,
              size: plan.size,
              shape,
              dtype: plan.dtype,
              scaled,
              scalingFactor: model.scalingFactor ?? null,
              model: model.name,
              preprocessing: plan.preprocessing,
              latentMetadata,
            },
          };
        }
      } else {
        const images = await model.decode(input, { signal: ctx.signal }).then(
          (t) => tensorToImages(t),
          (error: unknown) => {
            throw error;
          },
        );
        for (let i = 0; i < items.length; i++) {
          const image: RgbImage = images[i]!;
          yield {
            sample: items[i]!.sample,
            data: await encodeImage(image, 'png'),
            json: {
              key: items[i]!.sample.key,
              ...items[i]!.sample.meta,
              width: image.width,
              height: image.height,
              model: model.name,
            },
          };
        }
      }
      done += items.length;
      ctx.onProgress?.(done, total);
    };
    for await (const sample of inputSamples(plan, shard!)) {
      ctx.signal?.throwIfAborted();
      if (sample.error) {
        skip(sample, sample.error.code, sample.error.reason);
        continue;
      }
      try {
        let prepared: Prepared;
        if (plan.kind === 'encode') {
          const rgb = await decodeImage(sample.image!, { source: sample.source });
          const { image, crop } = centerCrop(rgb, plan.size);
          prepared = { sample, tensor: imageToTensor(image), crop };
        } else {
          const npy = parseNpy(sample.latent!, sample.source);
          const values =
            npy.dtype === 'float16'
              ? float16ArrayToFloat32(npy.data as Uint16Array)
              : (npy.data as Float32Array);
          const info = (sample.meta.latent ?? {}) as { scaled?: boolean; scalingFactor?: number | null };
          const factor =
            info.scaled === true && typeof info.scalingFactor === 'number' ? info.scalingFactor : 1;
          const unscaled = new Float32Array(values.length);
          for (let j = 0; j < values.length; j++) unscaled[j] = values[j]! / factor;
          prepared = {
            sample,
            tensor: {
              dtype: 'float32',
              shape: [1, ...npy.shape.slice(npy.shape.length === 4 ? 1 : 0)],
              data: unscaled,
            },
          };
        }
        if (batch.length > 0 && batch[0]!.tensor.shape.join() !== prepared.tensor.shape.join())
          yield* flush();
        batch.push(prepared);
        if (batch.length >= plan.batchSize) yield* flush();
      } catch (cause) {
        if (ctx.signal?.aborted) throw cause;
        const error = DcaeError.is(cause) ? cause : new DcaeError('IMAGE_CORRUPT', (cause as Error).message);
        skip(sample, error.code, error.message);
      }
    }
    yield* flush();
  }

  let result: { sha256: string; bytes: number; won: boolean };
  let location: string;
  if (plan.layout === 'wds') {
    location = `${shard.name}.tar`;
    const temp = await store.createTemp(location, attemptId);
    try {
      const entries = async function* (): AsyncGenerator<TarEntry> {
        for await (const out of outputs()) {
          keys.push(out.sample.key);
          yield { name: `${out.sample.key}.${outExt}`, data: out.data };
          yield { name: `${out.sample.key}.json`, data: new TextEncoder().encode(JSON.stringify(out.json)) };
        }
      };
      await writeTar(temp.handle, entries()).catch((cause: unknown) => {
        throw DcaeError.is(cause) ? cause : writeError(cause, temp.path);
      });
      await temp.handle.sync().catch((cause: unknown) => {
        throw writeError(cause, temp.path);
      });
      await temp.handle.close();
    } catch (error) {
      await temp.handle.close().catch(() => undefined);
      await unlink(temp.path).catch(() => undefined);
      throw error;
    }
    result = await store.publish(temp, location);
  } else {
    // npy-tree: one .npy per image under its class folder, each published first-writer-wins.
    location = `commits/${shard.name}.json`;
    for await (const out of outputs()) {
      const path = out.sample.treePath!;
      const temp = await store.createTemp(`${shard.name}~${keys.length}.npy`, attemptId);
      try {
        await temp.handle.writeFile(out.data);
        await temp.handle.sync();
        await temp.handle.close();
      } catch (cause) {
        await temp.handle.close().catch(() => undefined);
        await unlink(temp.path).catch(() => undefined);
        throw writeError(cause, temp.path);
      }
      const published = await store.publish(temp, path);
      keys.push(out.sample.key);
      files.push({ path, sha256: published.sha256, bytes: published.bytes });
    }
    const listing = files.map((f) => `${f.path} ${f.sha256}\n`).join('');
    result = {
      won: true,
      sha256: sha256Bytes(new TextEncoder().encode(listing)),
      bytes: files.reduce((a, f) => a + f.bytes, 0),
    };
  }
  const record: CommitRecord = {
    version: 1,
    runId: plan.runId,
    shard: index,
    name: shard.name,
    location,
    sha256: result.sha256,
    bytes: result.bytes,
    nsamples: keys.length,
    keys,
    skipped,
    ...(plan.layout === 'npy-tree' ? { files } : {}),
    model: { source: plan.model.source, name: model.name, scalingFactor: model.scalingFactor ?? null },
    kind: plan.kind,
    layout: plan.layout,
    dtype: plan.dtype,
    size: plan.size,
    scaled,
    ...(latentMetadata ? { latentMetadata } : {}),
    preprocessing: plan.preprocessing,
    attemptId,
    committedAt: new Date().toISOString(),
    elapsedMs: Math.round(performance.now() - started),
  };
  // When we lost the data race the canonical tar is the winner's: describe it, not ours (a GPU
  // may not produce identical bytes twice); its keys are the same plan keys in the same order.
  const committed = await store.commit(
    result.won ? record : { ...record, sha256: result.sha256, bytes: result.bytes },
  );
  await store.sweepTemps(shard.name);
  return { status: result.won ? 'done' : 'lost', record: committed.record };
}
