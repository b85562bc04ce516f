import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DcaeError } from '@dcae/core';
import { makePlan, processShard, runShards, S3Store, verify } from '@dcae/latents/node';
import { startFakeS3 } from './fake-s3.js';
import type { FakeS3 } from './fake-s3.js';
import { imageFolder, tempDir, TINY_MODEL } from './helpers.js';
import { tinyModel } from './model.js';

let s3: FakeS3;
let client: S3Client;
beforeAll(async () => {
  s3 = await startFakeS3();
  client = new S3Client({
    endpoint: s3.endpoint,
    forcePathStyle: true,
    region: 'us-east-1',
    credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
  });
});
afterAll(async () => {
  client?.destroy();
  await s3?.close();
});

describe('S3 store (@aws-sdk/client-s3 against a local fake S3)', () => {
  it('conditional writes: the first writer wins, a second put learns it lost', async () => {
    const store = new S3Store('s3://bucket/cond', { client });
    const publish = async (text: string) => {
      const temp = await store.createTemp('a.tar', `t${text}`);
      await temp.handle.writeFile(text);
      await temp.handle.close();
      return store.publish(temp, 'a.tar');
    };
    const first = await publish('first');
    const second = await publish('second!');
    expect(first.won).toBe(true);
    expect(second).toMatchObject({ won: false, sha256: first.sha256, bytes: 5 });
    expect(s3.objects.get('bucket/cond/a.tar')?.toString()).toBe('first');
    expect(s3.log.filter((l) => l.startsWith('PUT /bucket/cond/a.tar'))).toHaveLength(2);
  });

  it('runs a plan into a bucket with multipart uploads; concurrent attempts of one shard give one commit; verify passes', async () => {
    const dir = await tempDir();
    await imageFolder(join(dir, 'in'), 2, 2);
    const plan = await makePlan({
      model: TINY_MODEL,
      input: join(dir, 'in'),
      output: 's3://bucket/run',
      size: 64,
      shardSize: 2,
    });
    const store = new S3Store(plan.output, { client, partSize: 1024 });
    const model = tinyModel(plan);
    // Two attempts of shard 0 at once (duplicate delivery): exactly one commits.
    const [a, b] = await Promise.all([
      processShard(plan, 0, { store, model }),
      processShard(plan, 0, { store, model }),
    ]);
    expect([a.status, b.status].sort()).toEqual(['done', 'lost']);
    expect(a.record.sha256).toBe(b.record.sha256);
    await runShards(plan, [0, 1], { store, model });
    expect(s3.log.some((l) => l.includes('?uploads'))).toBe(true); // multipart was used
    expect(s3.uploads.size).toBe(0);
    const report = await verify(plan, store);
    expect(report).toMatchObject({ ok: true, present: 2, samples: 4, duplicateKeys: [], tempFiles: [] });
    expect([...s3.objects.keys()].filter((k) => k.startsWith('bucket/run/')).sort()).toEqual([
      'bucket/run/commits/shard-000000.json',
      'bucket/run/commits/shard-000001.json',
      'bucket/run/manifest.jsonl',
      'bucket/run/shard-000000.tar',
      'bucket/run/shard-000001.tar',
      'bucket/run/wids-meta.json',
    ]);
  });

  it('a store without conditional writes (ignores or rejects If-None-Match) is refused before any shard is written', async () => {
    const dir = await tempDir();
    await imageFolder(join(dir, 'in'), 1, 2);
    for (const mode of ['ignore', 'reject'] as const) {
      const fake = await startFakeS3({ conditionalWrites: mode });
      const c = new S3Client({
        endpoint: fake.endpoint,
        forcePathStyle: true,
        region: 'us-east-1',
        credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
      });
      try {
        const plan = await makePlan({
          model: TINY_MODEL,
          input: join(dir, 'in'),
          output: `s3://bucket/${mode}`,
          size: 64,
        });
        const store = new S3Store(plan.output, { client: c });
        const error = await processShard(plan, 0, { store, model: tinyModel(plan) }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(DcaeError.is(error), String(error)).toBe(true);
        expect((error as DcaeError).code).toBe('OUTPUT_UNWRITABLE');
        expect((error as DcaeError).message).toMatch(
          mode === 'ignore'
            ? /accepted a second PutObject with If-None-Match/
            : /rejected a PutObject .*HTTP 501/,
        );
        // Nothing written: no shard, no commit record, the probe deleted, no upload left.
        expect([...fake.objects.keys()]).toEqual([]);
        expect(fake.uploads.size).toBe(0);
        // Publishing directly is refused the same way, and the local temp is removed.
        const temp = await store.createTemp('x.tar', 'direct');
        await temp.handle.writeFile('x');
        await temp.handle.close();
        await expect(store.publish(temp, 'x.tar')).rejects.toMatchObject({ code: 'OUTPUT_UNWRITABLE' });
        expect(fake.objects.has('bucket/ignore/x.tar') || fake.objects.has('bucket/reject/x.tar')).toBe(
          false,
        );
      } finally {
        c.destroy();
        await fake.close();
      }
    }
    // A store that honours the header passes the probe once per store object and keeps no probe.
    const store = new S3Store('s3://bucket/probe', { client });
    await store.checkWritable();
    await store.checkWritable();
    expect(s3.log.filter((l) => l.startsWith('PUT /bucket/probe/.dcae-probe/'))).toHaveLength(2);
    expect(s3.log.filter((l) => l.startsWith('DELETE /bucket/probe/.dcae-probe/'))).toHaveLength(1);
    expect([...s3.objects.keys()].filter((k) => k.includes('.dcae-probe'))).toEqual([]);
  });
});
