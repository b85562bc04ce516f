import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fileSource } from '../src/node/index.js';
import {
  blobSource,
  bytesSource,
  hostTensor,
  httpRangeSource,
  openSafetensors,
  parseSafetensors,
  serializeSafetensors,
} from '../src/index.js';

const FIXTURE_DIR = new URL('../../../fixtures/dcae/tiny-in-f32/', import.meta.url);
const fixturePath = (name: string) => fileURLToPath(new URL(name, FIXTURE_DIR));

interface Meta {
  num_state_dict_keys: number;
  state_dict_dtypes: string[];
  stats: Record<string, { shape: number[]; mean: number; max_abs: number }>;
}

describe('the real fixture tiny-in-f32 (written by the Python safetensors library)', () => {
  const meta = JSON.parse(readFileSync(fixturePath('meta.json'), 'utf8')) as Meta;

  it('diffusion_pytorch_model.safetensors: 164 keys of F32 and I64, with I64 scalar num_batches_tracked', async () => {
    const file = await openSafetensors(await fileSource(fixturePath('diffusion_pytorch_model.safetensors')));
    try {
      const { tensors, metadata } = file.header;
      expect(tensors.size).toBe(meta.num_state_dict_keys);
      expect(tensors.size).toBe(164);
      expect(new Set([...tensors.values()].map(({ dtype }) => dtype))).toEqual(
        new Set(meta.state_dict_dtypes),
      );
      expect(metadata.get('format')).toBe('pt');

      const counters = [...tensors.keys()].filter((name) => name.endsWith('num_batches_tracked'));
      expect(counters.length).toBeGreaterThan(0);
      for (const name of counters) {
        const counter = await file.readTensor(name);
        expect(counter).toMatchObject({ dtype: 'int64', shape: [] });
        expect(counter.data).toHaveLength(1);
      }
      const convIn = await file.readTensor('encoder.conv_in.conv.weight');
      expect(convIn).toMatchObject({ dtype: 'float32', shape: [4, 3, 3, 3] });

      // The file path and the in-memory path read the same bytes for every tensor.
      const inMemory = parseSafetensors(
        new Uint8Array(readFileSync(fixturePath('diffusion_pytorch_model.safetensors'))),
      );
      const differing: string[] = [];
      for (const name of tensors.keys()) {
        if (!Buffer.from(await file.readBytes(name)).equals(inMemory.tensorBytes(name))) differing.push(name);
      }
      expect(differing).toEqual([]);
    } finally {
      await file.close();
    }
  });

  it('input.safetensors "sample" [2, 3, 64, 64] has the mean and max |x| meta.json records', async () => {
    const file = await openSafetensors(await fileSource(fixturePath('input.safetensors')));
    const sample = await file.readTensor('sample');
    await file.close();
    expect(sample.shape).toEqual(meta.stats['input.sample']!.shape);
    const values = [...(sample.data as Float32Array)];
    const mean = values.reduce((a, b) => a + b, 0) / values.length;
    expect(Math.abs(mean - meta.stats['input.sample']!.mean)).toBeLessThan(1e-6);
    expect(Math.max(...values.map(Math.abs))).toBe(meta.stats['input.sample']!.max_abs);
  });
});

describe('fileSource', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcae-core-source-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('a missing file is FILE_NOT_FOUND; a directory is FILE_READ', async () => {
    await expect(fileSource(join(dir, 'nope.safetensors'))).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(fileSource(dir)).rejects.toMatchObject({ code: 'FILE_READ' });
  });

  it('reads ranges at positions and rejects ranges past the end', async () => {
    const path = join(dir, 'bytes.bin');
    await writeFile(
      path,
      Uint8Array.from({ length: 100 }, (_, i) => i),
    );
    const source = await fileSource(path);
    expect(source.size).toBe(100);
    expect([...(await source.read(95, 5))]).toEqual([95, 96, 97, 98, 99]);
    await expect(source.read(96, 5)).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    await source.close!();
    await source.close!();
  });

  it('a file truncated after opening is FILE_READ, not a short buffer', async () => {
    const path = join(dir, 'shrinks.bin');
    await writeFile(path, new Uint8Array(64));
    const source = await fileSource(path);
    await writeFile(path, new Uint8Array(10));
    await expect(source.read(0, 64)).rejects.toMatchObject({
      code: 'FILE_READ',
      message: expect.stringContaining('changed while being read'),
    });
    await source.close!();
  });
});

describe('blobSource', () => {
  it('reads a safetensors File and takes its name', async () => {
    const bytes = serializeSafetensors({ w: hostTensor('float32', [2], new Float32Array([1, 2])) });
    const file = await openSafetensors(blobSource(new File([bytes], 'w.safetensors')));
    expect(file.source.name).toBe('w.safetensors');
    expect([...(await file.readTensor('w')).data]).toEqual([1, 2]);
    expect(blobSource(new Blob([bytes])).name).toBe('blob');
  });
});

describe('httpRangeSource (a local HTTP server)', () => {
  const bytes = serializeSafetensors({
    a: hostTensor('float32', [3], new Float32Array([1, 2, 3])),
    b: hostTensor('int64', [], new BigInt64Array([7n])),
  });
  type Mode = 'ranges' | 'ignore-range' | 'short-body' | 'wrong-range' | 'missing';
  let baseUrl: string;
  let lastAuthorization: string | undefined;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    lastAuthorization = request.headers.authorization;
    const mode = request.url!.slice(1).split('?')[0] as Mode;
    const match = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? '');
    if (mode === 'missing') return response.writeHead(404).end();
    if (mode === 'ignore-range' || match === null)
      return response.writeHead(200, { 'Content-Length': bytes.length }).end(bytes);
    const first = Number(match[1]);
    const last = Math.min(Number(match[2]), bytes.length - 1);
    const body = bytes.subarray(first, last + 1);
    const claimedFirst = mode === 'wrong-range' && first > 0 ? first + 1 : first;
    const sent = mode === 'short-body' && first > 0 ? body.subarray(1) : body;
    response
      .writeHead(206, {
        'Content-Range': `bytes ${claimedFirst}-${last}/${bytes.length}`,
        'Content-Length': sent.length,
      })
      .end(sent);
  });

  beforeAll(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('learns the size from a range probe and reads tensors with range requests, sending the given headers', async () => {
    const source = await httpRangeSource(`${baseUrl}/ranges?token=secret`, {
      headers: { Authorization: 'Bearer abc' },
    });
    expect(source.size).toBe(bytes.length);
    expect(source.name).toBe(`${baseUrl}/ranges`);
    const file = await openSafetensors(source);
    expect([...(await file.readTensor('a')).data]).toEqual([1, 2, 3]);
    expect([...(await file.readTensor('b')).data]).toEqual([7n]);
    expect(lastAuthorization).toBe('Bearer abc');
    expect(await source.read(3, 0)).toHaveLength(0);
  });

  it('a server that ignores Range (200) is FILE_READ, never a silently wrong read', async () => {
    await expect(httpRangeSource(`${baseUrl}/ignore-range`)).rejects.toMatchObject({
      code: 'FILE_READ',
      message: expect.stringContaining('ignored the range request'),
    });
  });

  it('a wrong Content-Range or a short body is FILE_READ; the query string never appears in errors', async () => {
    const wrongRange = await httpRangeSource(`${baseUrl}/wrong-range?token=secret`);
    await expect(wrongRange.read(8, 4)).rejects.toMatchObject({
      code: 'FILE_READ',
      message: expect.not.stringContaining('secret'),
    });
    const shortBody = await httpRangeSource(`${baseUrl}/short-body`);
    await expect(shortBody.read(8, 4)).rejects.toMatchObject({
      code: 'FILE_READ',
      message: expect.stringContaining('received 3'),
    });
  });

  it('404 is FILE_NOT_FOUND; a network failure is FILE_READ', async () => {
    await expect(httpRangeSource(`${baseUrl}/missing`)).rejects.toMatchObject({ code: 'FILE_NOT_FOUND' });
    await expect(httpRangeSource('http://127.0.0.1:1/x')).rejects.toMatchObject({ code: 'FILE_READ' });
  });

  it('uses the fetch it is given', async () => {
    const urls: string[] = [];
    const fetchSpy: typeof fetch = (input, init) => {
      urls.push(input instanceof Request ? input.url : input.toString());
      return fetch(input, init);
    };
    const source = await httpRangeSource(`${baseUrl}/ranges`, { fetch: fetchSpy });
    await source.read(0, 8);
    expect(urls).toEqual([`${baseUrl}/ranges`, `${baseUrl}/ranges`]);
  });
});

describe('bytesSource', () => {
  it('returns copies, so changing a read never changes the source', async () => {
    const data = new Uint8Array([1, 2, 3]);
    const source = bytesSource(data);
    const read = await source.read(0, 3);
    read[0] = 9;
    expect(data[0]).toBe(1);
  });
});
