import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseJsonConfig, parseSafetensors, serializeSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { AUTOENCODER_MODELS, knownModel, modelCatalog } from '@dcae/hub';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { dcAeCheckpointLayout, parseDcAeConfig } from '../src/index.js';
import type { ResolveModelOptions } from '../src/node/index.js';
import { loadAutoencoder, resolveModel } from '../src/node/index.js';
import { HubTestServer, listFiles } from '../../hub/test/helpers/hub-server.js';
import { fixturePath, fixtureTolerance, maxAbsDiff, readFixtureTensors } from './helpers.js';

// End to end against a local stand-in of the Hub file API (packages/core/test/helpers/hub-server.ts)
// serving the tiny-sana-f32 fixture: download into a huggingface_hub-layout cache, load, encode,
// compare with the diffusers golden latent.

const NAME = 'tiny-sana-f32';
const CONFIG = new Uint8Array(readFileSync(fixturePath(NAME, 'config.json')));
const WEIGHTS = new Uint8Array(readFileSync(fixturePath(NAME, 'diffusion_pytorch_model.safetensors')));
const input = readFixtureTensors(NAME, 'input.safetensors');
const expected = readFixtureTensors(NAME, 'expected.safetensors');
const config = parseDcAeConfig(parseJsonConfig(new TextDecoder().decode(CONFIG)));

const runtime = createNodeRuntime({ threads: 1 });
let hub: HubTestServer;
let work: string;
let cacheDir: string;
let urlCacheDir: string;

beforeAll(async () => {
  hub = await HubTestServer.start();
  hub.addRepo('org/tiny', { 'config.json': CONFIG, 'diffusion_pytorch_model.safetensors': WEIGHTS });
  work = await mkdtemp(join(tmpdir(), 'dcae-resolve-hub-'));
});
afterAll(async () => {
  await runtime.dispose();
  await hub.close();
  await rm(work, { recursive: true, force: true });
});
beforeEach(async () => {
  cacheDir = await mkdtemp(join(work, 'hub-'));
  urlCacheDir = await mkdtemp(join(work, 'urls-'));
  hub.requests.length = 0;
  hub.faults.length = 0;
});

const hubOptions = (extra: ResolveModelOptions = {}): ResolveModelOptions => ({
  endpoint: hub.endpoint,
  cacheDir,
  urlCacheDir,
  token: false,
  env: {},
  retry: { attempts: 2, baseDelayMs: 1 },
  ...extra,
});

async function expectEncodeMatches(
  model: string,
  options: ResolveModelOptions,
  extra: { config?: typeof config; keyPrefix?: string } = {},
) {
  const ae = await loadAutoencoder(model, { runtime, hub: options, ...extra });
  try {
    const latent = await ae.encode(input.get('sample')!);
    const reference = expected.get('latent')!;
    expect(latent.shape).toEqual(reference.shape);
    expect(maxAbsDiff(latent, reference)).toBeLessThanOrEqual(fixtureTolerance(reference));
    return ae.name;
  } finally {
    await ae.dispose();
  }
}

describe("loadAutoencoder('org/tiny@main', { hub })", () => {
  it('downloads config.json then the diffusers weights into the cache, and encodes like diffusers', async () => {
    const name = await expectEncodeMatches('org/tiny@main', hubOptions());
    expect(name).toBe('org/tiny@main');
    const files = await listFiles(join(cacheDir, 'models--org--tiny', 'snapshots'));
    expect(files.map((f) => f.split('/')[1])).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    expect(hub.count('GET', /\/blobs\//)).toBe(1);
  });

  it('then works offline from the cache alone (HF_HUB_OFFLINE=1), with no request', async () => {
    await resolveModel('org/tiny', hubOptions());
    hub.requests.length = 0;
    await expectEncodeMatches('org/tiny', hubOptions({ env: { HF_HUB_OFFLINE: '1' } }));
    expect(hub.requests).toEqual([]);
  });

  it('offline without a cached snapshot fails with OFFLINE', async () => {
    await expect(
      loadAutoencoder('org/tiny', { runtime, hub: hubOptions({ offline: true }) }),
    ).rejects.toMatchObject({
      code: 'OFFLINE',
    });
  });

  it('resolves a Hub URL under the endpoint, pins the weights to the commit of config.json', async () => {
    const resolved = await resolveModel(`${hub.endpoint}/org/tiny/resolve/main/config.json`, hubOptions());
    expect(resolved).toMatchObject({
      source: { kind: 'hub', repo: 'org/tiny', revision: 'main' },
      layout: 'diffusers',
    });
    expect(resolved.commit).toMatch(/^[0-9a-f]{40}$/);
    expect(
      hub.requests
        .filter((r) => r.path.includes('diffusion_pytorch_model'))
        .every((r) => r.path.includes(resolved.commit!)),
    ).toBe(true);
  });

  it('reads a model in a repo subfolder (org/name/vae)', async () => {
    hub.addRepo('org/pipeline', {
      'model_index.json': new TextEncoder().encode('{}'),
      'vae/config.json': CONFIG,
      'vae/diffusion_pytorch_model.safetensors': WEIGHTS,
    });
    const resolved = await resolveModel('org/pipeline/vae', hubOptions());
    expect(resolved.directory).toBe(
      join(cacheDir, 'models--org--pipeline', 'snapshots', resolved.commit!, 'vae'),
    );
    await expectEncodeMatches('org/pipeline/vae', hubOptions());
  });

  it('a repo without config.json, or without the weights its config names, is MODEL_NOT_FOUND', async () => {
    hub.addRepo('org/no-config', { 'model.safetensors': WEIGHTS });
    hub.addRepo('org/no-weights', { 'config.json': CONFIG, 'model.safetensors': WEIGHTS });
    await expect(resolveModel('org/no-config', hubOptions())).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('has no config.json'),
    });
    await expect(resolveModel('org/no-weights', hubOptions())).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('diffusion_pytorch_model.safetensors'),
    });
  });

  it('download faults surface with their codes (a corrupted blob: INTEGRITY, nothing cached)', async () => {
    hub.fault({ method: 'GET', path: /\/blobs\//, action: { corrupt: true } });
    await expect(loadAutoencoder('org/tiny', { runtime, hub: hubOptions() })).rejects.toMatchObject({
      code: 'INTEGRITY',
    });
    const blobs = await listFiles(join(cacheDir, 'models--org--tiny', 'blobs'));
    expect(blobs).toHaveLength(1); // config.json only: the weights were never committed
  });
});

describe('org/name with no local folder of that name (a Hub id, or a mistyped path)', () => {
  /** An endpoint on which nothing listens (a port just freed). */
  let dead: string;
  beforeAll(async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    dead = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    await new Promise((done) => server.close(done));
  });

  it('says both at once: no local folder, and what the Hub answered', async () => {
    const error = await resolveModel('org/no-such-model', hubOptions()).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: expect.stringMatching(/HTTP_STATUS|MODEL_NOT_FOUND/) });
    expect((error as Error).message).toMatch(/^No local folder org\/no-such-model; as a Hub id: /);
  });

  it('a dead server: one try, no backoff (a mistyped path must not wait for retries)', async () => {
    const started = performance.now();
    const error = await resolveModel(
      'fixture/dcae',
      hubOptions({ endpoint: dead, retry: { attempts: 5, baseDelayMs: 2000 } }),
    ).catch((e: unknown) => e);
    expect(performance.now() - started).toBeLessThan(1500);
    expect(error).toMatchObject({ code: 'NETWORK' });
    expect((error as Error).message).toMatch(/^No local folder fixture\/dcae; as a Hub id: .*ECONNREFUSED/);
  });

  it('a cached Hub model still loads when the server is dead, with a warning', async () => {
    await resolveModel('org/tiny', hubOptions());
    const warnings: string[] = [];
    const started = performance.now();
    const resolved = await resolveModel(
      'org/tiny',
      hubOptions({
        endpoint: dead,
        retry: { attempts: 5, baseDelayMs: 2000 },
        onWarning: (w) => warnings.push(w),
      }),
    );
    expect(performance.now() - started).toBeLessThan(1500);
    expect(resolved.layout).toBe('diffusers');
    expect(warnings).toHaveLength(2);
    expect(warnings.every((w) => w.includes('Using the cached copy'))).toBe(true);
  });
});

describe('a combined diffusion checkpoint (autoencoder.* + diffusion_model.* in model.safetensors)', () => {
  /** The fixture's tensors under their original-format names, prefixed, plus a backbone tensor. */
  function combinedWeights(): Uint8Array {
    const file = parseSafetensors(WEIGHTS);
    const out = new Map<string, HostTensor>();
    for (const p of dcAeCheckpointLayout(config).params) {
      const name = `autoencoder.${p.original}`;
      if (out.has(name)) continue;
      const parts = dcAeCheckpointLayout(config)
        .params.filter((q) => q.original === p.original)
        .map((q) => file.tensor(q.key));
      const data = new Float32Array(parts.reduce((n, t) => n + t.data.length, 0));
      parts.forEach((t, i) => data.set(t.data as Float32Array, i * t.data.length));
      const shape =
        p.shape.length === 2 ? [parts.length * p.shape[0]!, p.shape[1]!, 1, 1] : [...parts[0]!.shape];
      out.set(name, { dtype: 'float32', shape, data });
    }
    out.set('diffusion_model.x_embedder.proj.weight', {
      dtype: 'float32',
      shape: [2, 2],
      data: new Float32Array(4),
    });
    return serializeSafetensors(out);
  }

  it('is recognised from its keys, and its autoencoder loads with the prefix implied', async () => {
    hub.addRepo('org/tiny-dit', {
      'config.json': new TextEncoder().encode(JSON.stringify({ model_name: 'tiny-dit-in-512px' })),
      'model.safetensors': combinedWeights(),
    });
    const resolved = await resolveModel('org/tiny-dit', hubOptions());
    expect(resolved).toMatchObject({
      layout: 'combined',
      weightsFile: 'model.safetensors',
      modelName: 'tiny-dit-in-512px',
    });
    // Not a released repo, so its architecture and prefix come from the caller.
    await expectEncodeMatches('org/tiny-dit', hubOptions(), { config, keyPrefix: 'autoencoder.' });
  });

  it('a released diffusion repo is combined with the autoencoder of the registry', async () => {
    hub.addRepo('mit-han-lab/dc-ae-f32c32-in-1.0-uvit-s-in-512px', {
      'config.json': new TextEncoder().encode(
        JSON.stringify({ model_name: 'dc-ae-f32c32-in-1.0-uvit-s-in-512px' }),
      ),
      'model.safetensors': serializeSafetensors({}),
    });
    // The caller's catalog lists the diffusion repo (the full one is `MODEL_CATALOG` of @dcae/diffusion).
    const catalog = modelCatalog(AUTOENCODER_MODELS, [
      knownModel({
        id: 'mit-han-lab/dc-ae-f32c32-in-1.0-uvit-s-in-512px',
        kind: 'diffusion',
        layout: 'combined',
        autoencoder: 'dc-ae-f32c32-in-1.0',
        description: 'UViT-S',
      }),
    ]);
    const id = 'mit-han-lab/dc-ae-f32c32-in-1.0-uvit-s-in-512px';
    const resolved = await resolveModel(id, { ...hubOptions(), catalog });
    expect(resolved).toMatchObject({
      layout: 'combined',
      known: { kind: 'diffusion', autoencoder: 'dc-ae-f32c32-in-1.0' },
    });
    // Without it the repo is unknown, and its (empty) weights make no combined checkpoint.
    expect(await resolveModel(id, hubOptions())).toMatchObject({ layout: 'original', known: undefined });
  });
});

describe('a model folder given by URL (a plain static server, another origin than the Hub)', () => {
  let files: HubTestServer;
  beforeAll(async () => {
    files = await HubTestServer.start();
  });
  afterAll(async () => {
    await files.close();
  });

  it('a folder URL and a file URL both load, from one cache folder', async () => {
    const folder = files.addStatic('tiny', {
      'config.json': CONFIG,
      'diffusion_pytorch_model.safetensors': WEIGHTS,
    });
    expect(await expectEncodeMatches(folder, hubOptions())).toBe(folder);
    files.requests.length = 0;
    await expectEncodeMatches(`${folder}diffusion_pytorch_model.safetensors`, hubOptions());
    expect(files.requests.map((r) => r.method)).toEqual(['HEAD', 'HEAD']);
  });

  it('a folder URL without its trailing slash keeps its last segment', async () => {
    const folder = files.addStatic('noslash', {
      'config.json': CONFIG,
      'diffusion_pytorch_model.safetensors': WEIGHTS,
    });
    files.requests.length = 0;
    const resolved = await resolveModel(folder.replace(/\/$/, ''), hubOptions());
    expect(resolved.source).toMatchObject({ kind: 'url', folderUrl: folder, file: undefined });
    const paths = new Set(files.requests.map((r) => r.path));
    expect([...paths].sort()).toEqual([
      `${new URL(folder).pathname}config.json`,
      `${new URL(folder).pathname}diffusion_pytorch_model.safetensors`,
    ]);
    expect(new URL(folder).pathname).toMatch(/\/noslash\/$/);
  });

  it('a file URL that does not match the config is MODEL_NOT_FOUND; a folder without config.json too', async () => {
    const folder = files.addStatic('mismatch', { 'config.json': CONFIG, 'model.safetensors': WEIGHTS });
    await expect(resolveModel(`${folder}model.safetensors`, hubOptions())).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('not model.safetensors'),
    });
    const bare = files.addStatic('bare', { 'model.safetensors': WEIGHTS });
    await expect(resolveModel(bare, hubOptions())).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('config.json'),
    });
  });
});
