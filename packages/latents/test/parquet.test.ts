import { mkdir, readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { parquetWriteBuffer } from 'hyparquet-writer';
import type { ColumnSource } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';
import { DcaeError } from '@dcae/core';
import { encodeImage } from '@dcae/autoencoder/node';
import {
  inspectImageParquet,
  makePlan,
  PosixStore,
  processShard,
  readImageParquet,
  readTarFile,
  runShards,
  verify,
} from '@dcae/latents/node';
import { corruptJpeg, imageFolder, picture, tempDir, TINY_MODEL } from './helpers.js';
import { tinyModel } from './model.js';

/*
 * The parquet fixtures are generated here, with hyparquet-writer (a devDependency; no pyarrow on
 * this project's machines), in the shape img2dataset's `--output_format parquet` writes: one row
 * per sample with `key`, `caption`, `url`, `status`, `error_message`, int64 `width`/`height` and
 * the image bytes in a binary `jpg` column (null for a failed download), snappy-compressed.
 */

interface Row {
  readonly key: string;
  readonly image: Uint8Array | null;
  readonly status?: string;
  readonly error?: string | null;
}

async function jpeg(seed: number): Promise<Uint8Array> {
  return encodeImage(picture(72 + seed, 64, seed), 'jpeg');
}

function img2datasetParquet(rows: readonly Row[], extra: ColumnSource[] = [], rowGroupSize = 2): Uint8Array {
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'key', data: rows.map((r) => r.key), type: 'STRING' },
      { name: 'caption', data: rows.map((r) => `a photo of ${r.key}`), type: 'STRING' },
      { name: 'url', data: rows.map((r) => `https://example.com/${r.key}.jpg`), type: 'STRING' },
      { name: 'status', data: rows.map((r) => r.status ?? 'success'), type: 'STRING' },
      { name: 'error_message', data: rows.map((r) => r.error ?? null), type: 'STRING' },
      { name: 'width', data: rows.map((r) => (r.image ? 72n : null)), type: 'INT64' },
      { name: 'height', data: rows.map((r) => (r.image ? 64n : null)), type: 'INT64' },
      { name: 'jpg', data: rows.map((r) => r.image), type: 'BYTE_ARRAY' },
      ...extra,
    ],
    rowGroupSize,
  });
  return new Uint8Array(buffer);
}

async function expectCode(promise: Promise<unknown>, code: string, text?: RegExp): Promise<DcaeError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(DcaeError.is(error), String(error)).toBe(true);
  expect((error as DcaeError).code).toBe(code);
  if (text) expect((error as DcaeError).message).toMatch(text);
  return error as DcaeError;
}

describe('img2dataset parquet input (hyparquet)', () => {
  it('output shard i = parquet file i in row order; captions and columns in the .json; failed and corrupt rows skipped with the reason', async () => {
    const dir = await tempDir();
    const input = join(dir, 'laion');
    await mkdir(input, { recursive: true });
    await writeFile(
      join(input, '00000.parquet'),
      img2datasetParquet([
        { key: '000000002', image: await jpeg(2) },
        { key: '000000000', image: await jpeg(0) },
        { key: '000000001', image: null, status: 'failed_to_download', error: 'HTTP Error 404' },
        { key: '000000003', image: await corruptJpeg() },
        { key: '000000004', image: await jpeg(4) },
      ]),
    );
    await writeFile(
      join(input, '00001.parquet'),
      img2datasetParquet([
        { key: '000010001', image: await jpeg(11) },
        { key: '000010000', image: await jpeg(10) },
      ]),
    );
    // img2dataset's own side file sits next to the shards and is not a parquet.
    await writeFile(join(input, '00000_stats.json'), '{"count": 5}');

    const rows = [];
    for await (const row of readImageParquet(join(input, '00000.parquet'))) rows.push(row);
    expect(rows.map((r) => [r.row, r.key, r.status])).toEqual([
      [0, '000000002', 'success'],
      [1, '000000000', 'success'],
      [2, '000000001', 'failed_to_download'],
      [3, '000000003', 'success'],
      [4, '000000004', 'success'],
    ]);
    expect(rows[0]!.image).toEqual(await jpeg(2));
    expect(rows[2]!.image).toBeUndefined();
    expect(rows[0]!.meta).toEqual({ url: 'https://example.com/000000002.jpg', width: 72, height: 64 });

    const plan = await makePlan({
      model: TINY_MODEL,
      input,
      output: join(dir, 'out'),
      size: 64,
      batchSize: 2,
    });
    expect(plan.input.kind).toBe('img2dataset-parquet');
    expect(plan.shards.map((s) => s.source)).toEqual([
      { kind: 'parquet', path: '00000.parquet', rows: 5 },
      { kind: 'parquet', path: '00001.parquet', rows: 2 },
    ]);
    const store = new PosixStore(plan.output);
    const { results, finalized } = await runShards(plan, [0, 1], { store, model: tinyModel(plan) });
    expect(finalized?.complete).toBe(true);
    expect(results.map((r) => r.record.keys)).toEqual([
      ['000000002', '000000000', '000000004'],
      ['000010001', '000010000'],
    ]);
    expect(results[0]!.record.skipped.map((s) => [s.key, s.source, s.code])).toEqual([
      ['000000001', '00000.parquet:2', 'FILE_NOT_FOUND'],
      ['000000003', '00000.parquet:3', 'IMAGE_CORRUPT'],
    ]);
    expect(results[0]!.record.skipped[0]!.reason).toMatch(/failed_to_download.*HTTP Error 404/);

    const json: Record<string, unknown>[] = [];
    const names: string[] = [];
    for await (const e of readTarFile(join(plan.output, 'shard-000000.tar'))) {
      names.push(e.name);
      if (e.name.endsWith('.json'))
        json.push(JSON.parse(new TextDecoder().decode(e.data)) as Record<string, unknown>);
    }
    expect(names).toEqual([
      '000000002.npy',
      '000000002.json',
      '000000000.npy',
      '000000000.json',
      '000000004.npy',
      '000000004.json',
    ]);
    expect(json[1]).toMatchObject({
      key: '000000000',
      parquet: '00000.parquet',
      row: 1,
      parquetKey: '000000000',
      caption: 'a photo of 000000000',
      status: 'success',
      meta: { url: 'https://example.com/000000000.jpg', width: 72, height: 64 },
      size: 64,
      dtype: 'fp32',
    });
    expect(await verify(plan, store)).toMatchObject({ ok: true, samples: 5, skipped: 2, duplicateKeys: [] });
  });

  it('refuses hostile files with typed errors: not parquet, cut short, wrong schema', async () => {
    const dir = await tempDir();
    const good = img2datasetParquet([{ key: 'a', image: await jpeg(1) }]);
    const path = (name: string) => join(dir, name);

    await writeFile(path('text.parquet'), 'key,url\na,https://example.com\n');
    await expectCode(inspectImageParquet(path('text.parquet')), 'UNSUPPORTED_FORMAT', /not a parquet file/);

    await writeFile(path('cut.parquet'), good.subarray(0, Math.floor(good.length * 0.7)));
    await expectCode(inspectImageParquet(path('cut.parquet')), 'TRUNCATED_DATA', /cut short/);
    await writeFile(path('tiny.parquet'), good.subarray(0, 5));
    await expectCode(inspectImageParquet(path('tiny.parquet')), 'TRUNCATED_DATA');

    // The footer's magic is intact but its length field points outside the file.
    const badFooter = new Uint8Array(good);
    new DataView(badFooter.buffer).setUint32(badFooter.length - 8, 0x7fffffff, true);
    await writeFile(path('footer.parquet'), badFooter);
    await expectCode(
      inspectImageParquet(path('footer.parquet')),
      'UNSUPPORTED_FORMAT',
      /cannot be read as parquet/,
    );

    // img2dataset's metadata-only side file (webdataset/files output formats): no image column.
    const metaOnly = parquetWriteBuffer({
      columnData: [
        { name: 'key', data: ['a'], type: 'STRING' },
        { name: 'url', data: ['https://example.com/a.jpg'], type: 'STRING' },
      ],
    });
    await writeFile(path('meta.parquet'), new Uint8Array(metaOnly));
    const noImage = await expectCode(
      inspectImageParquet(path('meta.parquet')),
      'UNSUPPORTED_FORMAT',
      /no image column/,
    );
    expect(noImage.detail).toMatchObject({ actual: ['key', 'url'] });

    const intImage = parquetWriteBuffer({ columnData: [{ name: 'jpg', data: [1, 2], type: 'INT32' }] });
    await writeFile(path('int-image.parquet'), new Uint8Array(intImage));
    await expectCode(
      inspectImageParquet(path('int-image.parquet')),
      'UNSUPPORTED_FORMAT',
      /column jpg holds INT32/,
    );

    const intKey = parquetWriteBuffer({
      columnData: [
        { name: 'key', data: [7], type: 'INT32' },
        { name: 'jpg', data: [await jpeg(1)], type: 'BYTE_ARRAY' },
      ],
    });
    await writeFile(path('int-key.parquet'), new Uint8Array(intKey));
    await expectCode(
      inspectImageParquet(path('int-key.parquet')),
      'UNSUPPORTED_FORMAT',
      /column key holds INT32/,
    );

    // Codecs: gzip is read (node:zlib); zstd (no zstd in Node 20's zlib) is refused at plan time.
    const rows = [{ key: 'g', image: await jpeg(3) }];
    const gzip = parquetWriteBuffer({
      columnData: [
        { name: 'key', data: rows.map((r) => r.key), type: 'STRING' },
        { name: 'jpg', data: rows.map((r) => r.image), type: 'BYTE_ARRAY' },
      ],
      codec: 'GZIP',
      compressors: { GZIP: (input: Uint8Array) => new Uint8Array(gzipSync(input)) },
    });
    await writeFile(path('gzip.parquet'), new Uint8Array(gzip));
    const read = [];
    for await (const row of readImageParquet(path('gzip.parquet'))) read.push(row);
    expect(read.map((r) => [r.key, r.image])).toEqual([['g', await jpeg(3)]]);
    // A file whose pages claim ZSTD (the bytes are irrelevant: the footer is checked first).
    const zstd = parquetWriteBuffer({
      columnData: [{ name: 'jpg', data: [await jpeg(3)], type: 'BYTE_ARRAY' }],
      codec: 'ZSTD',
      compressors: { ZSTD: (input: Uint8Array) => input },
    });
    await writeFile(path('zstd.parquet'), new Uint8Array(zstd));
    await expectCode(inspectImageParquet(path('zstd.parquet')), 'UNSUPPORTED_FORMAT', /compressed with ZSTD/);

    // Planning a folder: a cut-short shard is reported, never skipped silently.
    const folder = path('folder');
    await mkdir(folder);
    await writeFile(join(folder, '00000.parquet'), good);
    await writeFile(join(folder, '00001.parquet'), good.subarray(0, good.length - 3));
    await expectCode(
      makePlan({ model: TINY_MODEL, input: folder, output: path('o1'), size: 64 }),
      'TRUNCATED_DATA',
    );
    // Image parquets mixed with metadata-only ones: refused.
    await writeFile(join(folder, '00001.parquet'), new Uint8Array(metaOnly));
    await expectCode(
      makePlan({ model: TINY_MODEL, input: folder, output: path('o2'), size: 64 }),
      'UNSUPPORTED_FORMAT',
      /mixes/,
    );
    // One metadata-only parquet given as the input: refused.
    await expectCode(
      makePlan({ model: TINY_MODEL, input: path('meta.parquet'), output: path('o3'), size: 64 }),
      'UNSUPPORTED_FORMAT',
      /no image column/,
    );
  });

  it('metadata-only parquet side files next to images are ignored; a parquet cut short after planning keeps the shard committing', async () => {
    const dir = await tempDir();
    // img2dataset --output_format files: images in folders plus NNNNN.parquet side files.
    const files = join(dir, 'files');
    await imageFolder(files, 1, 2);
    await writeFile(
      join(files, '00000.parquet'),
      new Uint8Array(parquetWriteBuffer({ columnData: [{ name: 'key', data: ['x'], type: 'STRING' }] })),
    );
    const folderPlan = await makePlan({ model: TINY_MODEL, input: files, output: join(dir, 'o1'), size: 64 });
    expect(folderPlan.input.kind).toBe('image-folder');

    const one = join(dir, 'one.parquet');
    const bytes = img2datasetParquet([
      { key: 'a', image: await jpeg(1) },
      { key: 'b', image: await jpeg(2) },
    ]);
    await writeFile(one, bytes);
    const plan = await makePlan({ model: TINY_MODEL, input: one, output: join(dir, 'o2'), size: 64 });
    expect(plan.shards).toEqual([
      { index: 0, name: 'shard-000000', source: { kind: 'parquet', path: 'one.parquet', rows: 2 } },
    ]);
    await truncate(one, bytes.length - 10);
    const store = new PosixStore(plan.output);
    const result = await processShard(plan, 0, { store, model: tinyModel(plan) });
    expect(result.status).toBe('done');
    expect(result.record.keys).toEqual([]);
    expect(result.record.skipped).toMatchObject([
      { key: '(rest of parquet)', source: 'one.parquet', code: 'TRUNCATED_DATA' },
    ]);
    expect(
      (await readFile(join(plan.output, 'commits', 'shard-000000.json'), 'utf8')).length,
    ).toBeGreaterThan(0);
  });
});
