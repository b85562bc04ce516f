import { DcaeError } from '@dcae/core';
import type { CommitRecord, LatentPlan } from '../plan-types.js';
import { parseNpy } from '../npy.js';
import { groupSamples, readTar } from './tar.js';
import type { ShardStore } from './store.js';

/**
 * `wids-meta.json` and `manifest.jsonl`, derived ONLY from commit records (never from listing
 * the store, so an orphan of a zombie attempt can never enter the index), and written atomically.
 * Idempotent: the same commits always give the same bytes.
 */
export interface FinalizeResult {
  readonly complete: boolean;
  readonly shards: number;
  readonly committed: number;
  readonly samples: number;
  readonly skipped: number;
}

export function manifestLines(plan: LatentPlan, records: readonly CommitRecord[]): string {
  const first = records[0];
  const header = {
    type: 'dataset',
    runId: plan.runId,
    kind: plan.kind,
    layout: plan.layout,
    model: plan.model.source,
    modelName: first?.model.name ?? null,
    resolution: plan.size,
    dtype: plan.dtype,
    scaled: first?.scaled ?? (plan.scale && plan.kind === 'encode'),
    scalingFactor: first?.model.scalingFactor ?? null,
    ...(first?.latentMetadata ? { latentMetadata: first.latentMetadata } : {}),
    preprocessing: plan.preprocessing,
    shards: plan.shards.length,
    samples: records.reduce((a, r) => a + r.nsamples, 0),
  };
  const lines = [JSON.stringify(header)];
  for (const r of records) {
    lines.push(
      JSON.stringify({
        type: 'shard',
        shard: r.shard,
        url: r.location,
        sha256: r.sha256,
        bytes: r.bytes,
        nsamples: r.nsamples,
        skipped: r.skipped,
      }),
    );
  }
  return `${lines.join('\n')}\n`;
}

export async function finalize(plan: LatentPlan, store: ShardStore): Promise<FinalizeResult> {
  const records = (await store.listCommits())
    .filter((r) => r.runId === plan.runId)
    .sort((a, b) => a.shard - b.shard);
  const complete = records.length === plan.shards.length;
  const encoder = new TextEncoder();
  await store.putDerived('manifest.jsonl', encoder.encode(manifestLines(plan, records)));
  if (plan.layout === 'wds') {
    const meta = {
      __kind__: 'wids-v1',
      wids_version: 1,
      name: `dcae-latents-${plan.runId}`,
      shardlist: records.map((r) => ({ url: r.location, nsamples: r.nsamples, filesize: r.bytes })),
    };
    await store.putDerived('wids-meta.json', encoder.encode(`${JSON.stringify(meta, null, 1)}\n`));
  }
  return {
    complete,
    shards: plan.shards.length,
    committed: records.length,
    samples: records.reduce((a, r) => a + r.nsamples, 0),
    skipped: records.reduce((a, r) => a + r.skipped.length, 0),
  };
}

export interface VerifyReport {
  readonly ok: boolean;
  readonly shards: number;
  readonly present: number;
  readonly missing: number[];
  readonly corrupt: { shard: number; reason: string }[];
  readonly shaMismatch: number[];
  readonly duplicateKeys: string[];
  readonly samples: number;
  readonly skipped: number;
  readonly tempFiles: string[];
  /** Problems with wids-meta.json / manifest.jsonl (absent, stale or not matching the commits). */
  readonly index: string[];
}

/**
 * Re-hashes every shard against its commit record, opens every tar and every .npy, counts every
 * key across the whole dataset and looks for leftover temps. `ok` only when every planned shard
 * is present exactly once, with its sha256, and every key appears once.
 */
export async function verify(plan: LatentPlan, store: ShardStore): Promise<VerifyReport> {
  const records = new Map<number, CommitRecord>();
  for (const r of await store.listCommits()) if (r.runId === plan.runId) records.set(r.shard, r);
  const missing: number[] = [];
  const corrupt: { shard: number; reason: string }[] = [];
  const shaMismatch: number[] = [];
  const keyCount = new Map<string, number>();
  let samples = 0;
  let skipped = 0;
  for (const shard of plan.shards) {
    const record = records.get(shard.index);
    if (!record) {
      missing.push(shard.index);
      continue;
    }
    skipped += record.skipped.length;
    if (plan.layout === 'npy-tree') {
      for (const file of record.files ?? []) {
        const got = await store.hashObject(file.path);
        if (!got) corrupt.push({ shard: shard.index, reason: `${file.path} is missing` });
        else if (got.sha256 !== file.sha256) shaMismatch.push(shard.index);
        else {
          try {
            parseNpy((await store.readObject(file.path))!, file.path);
          } catch (error) {
            corrupt.push({ shard: shard.index, reason: (error as Error).message });
          }
        }
      }
      for (const key of record.keys) keyCount.set(key, (keyCount.get(key) ?? 0) + 1);
      samples += record.keys.length;
      continue;
    }
    const got = await store.hashObject(record.location);
    if (!got) {
      missing.push(shard.index);
      continue;
    }
    if (got.sha256 !== record.sha256 || got.bytes !== record.bytes) shaMismatch.push(shard.index);
    const stream = await store.openObject(record.location);
    const keysInTar: string[] = [];
    try {
      for await (const sample of groupSamples(readTar(stream!, record.location))) {
        keysInTar.push(sample.key);
        const payload = plan.kind === 'encode' ? sample.files.get('npy') : sample.files.get('png');
        if (!payload || !sample.files.has('json')) {
          corrupt.push({
            shard: shard.index,
            reason: `sample ${sample.key} lacks its .${plan.kind === 'encode' ? 'npy' : 'png'} or .json`,
          });
          continue;
        }
        if (plan.kind === 'encode') {
          const npy = parseNpy(payload, `${record.location}:${sample.key}.npy`);
          if (npy.dtype !== (plan.dtype === 'fp16' ? 'float16' : 'float32')) {
            corrupt.push({
              shard: shard.index,
              reason: `${sample.key}.npy is ${npy.dtype}, the plan says ${plan.dtype}`,
            });
          }
        }
      }
    } catch (error) {
      corrupt.push({ shard: shard.index, reason: DcaeError.is(error) ? error.message : String(error) });
    }
    if (keysInTar.join('\n') !== record.keys.join('\n')) {
      corrupt.push({
        shard: shard.index,
        reason: `the tar holds ${keysInTar.length} keys, the commit record lists ${record.keys.length} (or in another order)`,
      });
    }
    for (const key of keysInTar) keyCount.set(key, (keyCount.get(key) ?? 0) + 1);
    samples += keysInTar.length;
  }
  const duplicateKeys = [...keyCount].filter(([, n]) => n > 1).map(([k]) => k);
  const tempFiles = await store.listTemps();
  const index: string[] = [];
  const complete = missing.length === 0;
  if (complete) {
    const ordered = [...records.values()].sort((a, b) => a.shard - b.shard);
    const manifest = await store.readObject('manifest.jsonl');
    if (!manifest) index.push('manifest.jsonl is missing (run `dcae latents finalize`)');
    else if (new TextDecoder().decode(manifest) !== manifestLines(plan, ordered))
      index.push('manifest.jsonl does not match the commit records (run `dcae latents finalize`)');
    if (plan.layout === 'wds') {
      const meta = await store.readObject('wids-meta.json');
      if (!meta) index.push('wids-meta.json is missing (run `dcae latents finalize`)');
      else {
        const parsed = JSON.parse(new TextDecoder().decode(meta)) as {
          shardlist?: { url: string; nsamples: number }[];
        };
        const expect = ordered.map((r) => `${r.location}:${r.nsamples}`).join(',');
        if ((parsed.shardlist ?? []).map((s) => `${s.url}:${s.nsamples}`).join(',') !== expect) {
          index.push('wids-meta.json does not match the commit records (run `dcae latents finalize`)');
        }
      }
    }
  }
  const ok =
    missing.length === 0 &&
    corrupt.length === 0 &&
    shaMismatch.length === 0 &&
    duplicateKeys.length === 0 &&
    tempFiles.length === 0 &&
    index.length === 0;
  return {
    ok,
    shards: plan.shards.length,
    present: plan.shards.length - missing.length,
    missing,
    corrupt,
    shaMismatch,
    duplicateKeys,
    samples,
    skipped,
    tempFiles,
    index,
  };
}
