import { execFileSync } from 'node:child_process';
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { centerCrop, parseNpy } from '@dcae/latents';
import { makePlan, PosixStore, processShard, readTarFile, runShards, verify } from '@dcae/latents/node';
import { corruptJpeg, hasNumpy, imageFolder, png, REPO, tempDir, TINY_MODEL, wdsTar } from './helpers.js';
import { tinyModel } from './model.js';

const numpy = hasNumpy();

describe('dcae latents on one machine (tiny DC-AE, real onnxruntime)', () => {
  it('image folder → WebDataset latent shards, manifest, wids-meta; bad images skipped with a reason; Python reads it', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in');
    await imageFolder(input, 2, 3);
    await writeFile(join(input, 'n00001', 'broken.jpg'), await corruptJpeg());
    const plan = await makePlan({
      model: TINY_MODEL,
      input,
      output: join(dir, 'out'),
      size: 64,
      shardSize: 4,
      batchSize: 3,
    });
    expect(plan.shards).toHaveLength(2);
    const store = new PosixStore(plan.output);
    const { results, finalized } = await runShards(plan, [0, 1], { store, model: tinyModel(plan) });
    expect(results.map((r) => r.status)).toEqual(['done', 'done']);
    expect(finalized?.complete).toBe(true);
    const skipped = results.flatMap((r) => r.record.skipped);
    expect(skipped).toHaveLength(1);
    expect(skipped[0]).toMatchObject({ source: 'n00001/broken.jpg', code: 'IMAGE_CORRUPT' });
    const report = await verify(plan, store);
    expect(report).toMatchObject({ ok: true, samples: 6, skipped: 1, duplicateKeys: [], tempFiles: [] });

    // Members: <key>.npy (float32 [8, 2, 2], scaled) + <key>.json, keys without dots.
    const members: string[] = [];
    for await (const e of readTarFile(join(plan.output, 'shard-000000.tar'))) {
      members.push(e.name);
      if (e.name.endsWith('.npy')) expect(parseNpy(e.data).shape).toEqual([8, 2, 2]);
      if (e.name.endsWith('.json'))
        expect(JSON.parse(new TextDecoder().decode(e.data))).toMatchObject({
          scaled: true,
          scalingFactor: 0.41407,
          size: 64,
          label: 0,
          class: 'n00000',
        });
    }
    expect(members.filter((m) => m.split('.').length !== 2)).toEqual([]);
    const manifest = (await readFile(join(plan.output, 'manifest.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(manifest[0]).toMatchObject({
      type: 'dataset',
      runId: plan.runId,
      resolution: 64,
      dtype: 'fp32',
      scalingFactor: 0.41407,
      preprocessing: 'adm-center-crop-v1',
    });
    expect(manifest.slice(1).map((m) => m.url as string)).toEqual(['shard-000000.tar', 'shard-000001.tar']);
    const wids = JSON.parse(await readFile(join(plan.output, 'wids-meta.json'), 'utf8'));
    expect(wids.shardlist.map((s: { nsamples: number }) => s.nsamples)).toEqual([3, 3]); // broken.jpg was in shard 0

    // A rerun skips every committed shard and writes nothing new.
    const again = await runShards(plan, [0, 1], { store, model: tinyModel(plan) });
    expect(again.results.map((r) => r.status)).toEqual(['committed', 'committed']);

    if (numpy) {
      const out = execFileSync('python3', [join(REPO, 'docs/latents-reader.py'), plan.output]).toString();
      expect(out).toContain('6 samples');
      expect(out).toContain('(8, 2, 2) float32');
    }
  });

  it('the same latents as a plain encode: stored value = encoder output × scaling factor (fp32) and fp16 within its rounding', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in');
    await imageFolder(input, 1, 2);
    const p32 = await makePlan({ model: TINY_MODEL, input, output: join(dir, 'o32'), size: 64 });
    const p16 = await makePlan({
      model: TINY_MODEL,
      input,
      output: join(dir, 'o16'),
      size: 64,
      dtype: 'fp16',
      layout: 'npy-tree',
    });
    const model = tinyModel(p32);
    const r32 = await processShard(p32, 0, { store: new PosixStore(p32.output), model });
    const r16 = (await runShards(p16, [0], { store: new PosixStore(p16.output), model })).results[0]!;
    expect(r32.record.nsamples).toBe(2);
    // npy-tree: <class>/<stem>.npy, as efficientvit's DatasetFolder(np.load) reads it.
    expect(r16.record.files!.map((f) => f.path)).toEqual(['n00000/img.0_0.npy', 'n00000/img.0_1.npy']);
    expect(await verify(p16, new PosixStore(p16.output))).toMatchObject({ ok: true, samples: 2 });
    const first32: number[] = [];
    for await (const e of readTarFile(join(p32.output, 'shard-000000.tar')))
      if (e.name.endsWith('.npy') && first32.length === 0) first32.push(...parseNpy(e.data).data);
    // A plain encode of the same file through the same preprocessing gives the stored latent.
    const { decodeImage } = await import('@dcae/autoencoder/node');
    const { imageToTensor } = await import('@dcae/autoencoder');
    const rgb = await decodeImage(await readFile(join(input, 'n00000/img.0_0.png')));
    const plain = await (await model()).encode(imageToTensor(centerCrop(rgb, 64).image));
    expect(first32).toHaveLength(plain.data.length);
    // Batched (2 images) vs single runs differ in the last float bits: the project tolerance.
    for (let i = 0; i < plain.data.length; i++)
      expect(Math.abs(first32[i]! - plain.data[i]! * 0.41407)).toBeLessThanOrEqual(1e-4);
    const npy16 = parseNpy(await readFile(join(p16.output, 'n00000/img.0_0.npy')));
    expect(npy16.dtype).toBe('float16');
    const { float16ArrayToFloat32 } = await import('@dcae/core');
    const f16 = float16ArrayToFloat32(npy16.data as Uint16Array);
    for (let i = 0; i < f16.length; i++)
      expect(Math.abs(f16[i]! - first32[i]!)).toBeLessThanOrEqual(Math.abs(first32[i]!) * 2 ** -10 + 1e-7);
  });

  it('WebDataset input: output shard i = input shard i in the same key order; a truncated tar keeps what it read', async () => {
    const dir = await tempDir();
    const input = join(dir, 'wds');
    const keysA = ['000010', '000011', '000012'];
    const keysB = ['000020', 'sub/000021', '000022'];
    await wdsTar(
      join(input, '00000.tar'),
      await Promise.all(keysA.map(async (key, i) => ({ key, image: await png(64, 80, i) }))),
    );
    await wdsTar(
      join(input, '00001.tar'),
      await Promise.all(
        keysB.map(async (key, i) => ({ key, image: i === 2 ? await corruptJpeg() : await png(90, 64, i) })),
      ),
    );
    await writeFile(join(input, '00001.parquet'), 'img2dataset metadata (not read)');
    const plan = await makePlan({ model: TINY_MODEL, input, output: join(dir, 'out'), size: 64 });
    expect(plan.input.kind).toBe('webdataset');
    // Truncate input shard 0 in the middle of its second image.
    const tarA = join(input, '00000.tar');
    const full = (await readFile(tarA)).length;
    await truncate(tarA, Math.floor(full * 0.5));
    const store = new PosixStore(plan.output);
    const { results } = await runShards(plan, [0, 1], { store, model: tinyModel(plan) });
    const keysOut = async (name: string) => {
      const keys: string[] = [];
      for await (const e of readTarFile(join(plan.output, name)))
        if (e.name.endsWith('.npy')) keys.push(e.name.slice(0, -4));
      return keys;
    };
    const out0 = await keysOut('shard-000000.tar');
    expect(keysA.slice(0, out0.length)).toEqual(out0);
    expect(out0.length).toBeLessThan(3);
    expect(results[0]!.record.skipped.at(-1)).toMatchObject({ code: 'TRUNCATED_DATA' });
    const out1 = await keysOut('shard-000001.tar');
    expect(out1[0]).toBe('000020');
    expect(out1[1]).toMatch(/^sub_000021_[0-9a-f]{8}$/);
    expect(out1).toHaveLength(2);
    expect(results[1]!.record.skipped).toMatchObject([{ key: '000022', code: 'IMAGE_CORRUPT' }]);
    expect(await verify(plan, store)).toMatchObject({ ok: true, duplicateKeys: [], tempFiles: [] });
  });

  it('decode-shards: latent shards → PNG shards, shard i from shard i, same keys; scaled latents are unscaled first', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in');
    await imageFolder(input, 1, 3);
    const enc = await makePlan({
      model: TINY_MODEL,
      input,
      output: join(dir, 'latents'),
      size: 64,
      shardSize: 2,
      dtype: 'fp16',
    });
    await runShards(enc, [0, 1], { store: new PosixStore(enc.output), model: tinyModel(enc) });
    const dec = await makePlan({
      kind: 'decode',
      model: TINY_MODEL,
      input: enc.output,
      output: join(dir, 'images'),
    });
    expect(dec.shards.map((s) => (s.source.kind === 'tar' ? s.source.path : ''))).toEqual([
      'shard-000000.tar',
      'shard-000001.tar',
    ]);
    const store = new PosixStore(dec.output);
    const { results } = await runShards(dec, [0, 1], { store, model: tinyModel(dec) });
    expect(results.map((r) => r.record.keys)).toEqual(
      (await new PosixStore(enc.output).listCommits()).map((r) => r.keys),
    );
    const { decodeImage } = await import('@dcae/autoencoder/node');
    const { tensorToImages } = await import('@dcae/autoencoder');
    const { float16ArrayToFloat32 } = await import('@dcae/core');
    let latent: Float32Array | undefined;
    for await (const e of readTarFile(join(enc.output, 'shard-000000.tar'))) {
      if (e.name.endsWith('.npy') && !latent)
        latent = float16ArrayToFloat32(parseNpy(e.data).data as Uint16Array).map((v) => v / 0.41407);
    }
    const expected = tensorToImages(
      await (await tinyModel(dec)()).decode({ dtype: 'float32', shape: [1, 8, 2, 2], data: latent! }),
    )[0]!;
    let first: Uint8Array | undefined;
    for await (const e of readTarFile(join(dec.output, 'shard-000000.tar'))) {
      if (e.name.endsWith('.png')) {
        const image = await decodeImage(e.data);
        expect(image).toMatchObject({ width: 64, height: 64 });
        first ??= image.data;
      }
    }
    // Batched vs single decoder runs may differ in the last float bits: at most one level per pixel.
    expect(Math.max(...first!.map((v, i) => Math.abs(v - expected.data[i]!)))).toBeLessThanOrEqual(1);
    expect(await verify(dec, store)).toMatchObject({ ok: true, samples: 3 });
  });

  it('verify catches a missing shard, a changed byte and a leftover temp', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in');
    await imageFolder(input, 1, 2);
    const plan = await makePlan({
      model: TINY_MODEL,
      input,
      output: join(dir, 'out'),
      size: 64,
      shardSize: 1,
    });
    const store = new PosixStore(plan.output);
    await runShards(plan, [0], { store, model: tinyModel(plan) });
    expect(await verify(plan, store)).toMatchObject({ ok: false, missing: [1] });
    await runShards(plan, [1], { store, model: tinyModel(plan) });
    expect((await verify(plan, store)).ok).toBe(true);
    const tar = join(plan.output, 'shard-000001.tar');
    const bytes = await readFile(tar);
    bytes[600] = bytes[600]! ^ 1;
    await writeFile(tar, bytes);
    await writeFile(join(plan.output, '.tmp', 'shard-000000.tar.zombie.tmp'), 'x');
    const report = await verify(plan, store);
    expect(report.ok).toBe(false);
    expect(report.shaMismatch).toEqual([1]);
    expect(report.tempFiles).toHaveLength(1);
    // Another plan (another runId) into the same folder is refused, never mixed in.
    const other = await makePlan({
      model: TINY_MODEL,
      input,
      output: plan.output,
      size: 64,
      shardSize: 1,
      dtype: 'fp16',
    });
    await expect(processShard(other, 0, { store, model: tinyModel(other) })).rejects.toMatchObject({
      code: 'OUTPUT_EXISTS',
    });
  });
});
