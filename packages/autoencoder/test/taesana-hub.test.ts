import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { TAESANA_RELEASE } from '@dcae/hub';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ResolveModelOptions } from '../src/node/index.js';
import { loadAutoencoder, parseModelSource, resolveModel } from '../src/node/index.js';
import { HubTestServer, listFiles } from '../../hub/test/helpers/hub-server.js';
import { fixtureTolerance, maxAbsDiff } from './helpers.js';

// TAESANA from a Hub id or a folder URL, against local stand-ins of the Hub file API and of a
// static file host (packages/hub/test/helpers/hub-server.ts): folders that hold only the upstream
// files taesana_encoder.pth / taesana_decoder.pth, no config.json (docs/taesana.md).

const DIR = resolve(import.meta.dirname, '../../../fixtures/family2/taesana-randinit');
const ENCODER = new Uint8Array(readFileSync(join(DIR, 'taesana_encoder.pth')));
const DECODER = new Uint8Array(readFileSync(join(DIR, 'taesana_decoder.pth')));
const tensors = (file: string) => parseSafetensors(readFileSync(join(DIR, file)), { name: file });
const inputLatent = tensors('input.safetensors').tensor('latent') as HostTensor<'float32'>;
const decoded = tensors('expected.safetensors').tensor('decoded') as HostTensor<'float32'>;

const runtime = createNodeRuntime({ threads: 1 });
let hub: HubTestServer;
let work: string;

beforeAll(async () => {
  hub = await HubTestServer.start();
  hub.addRepo('org/taesana', {
    'taesana_encoder.pth': ENCODER,
    'taesana_decoder.pth': DECODER,
  });
  hub.addRepo('org/decoder-only', { 'taesana_decoder.pth': DECODER });
  work = await mkdtemp(join(tmpdir(), 'dcae-taesana-hub-'));
});
afterAll(async () => {
  await runtime.dispose();
  await hub.close();
  await rm(work, { recursive: true, force: true });
});

async function options(): Promise<ResolveModelOptions> {
  return {
    endpoint: hub.endpoint,
    cacheDir: await mkdtemp(join(work, 'hub-')),
    urlCacheDir: await mkdtemp(join(work, 'urls-')),
    token: false,
    env: {},
    retry: { attempts: 2, baseDelayMs: 1 },
  };
}

/** Decodes the fixture latent with the TAESANA at `model` and compares with upstream's decoder. */
async function expectDecodes(model: string, hubOptions: ResolveModelOptions): Promise<void> {
  const ae = await loadAutoencoder(model, { runtime, hub: hubOptions, parts: ['decoder'] });
  try {
    expect(ae.architecture).toBe('taesana');
    // dcae's latents are unscaled and its images in [-1, 1] (docs/taesana.md): undo both.
    const latent = { ...inputLatent, data: inputLatent.data.map((v) => v / ae.scalingFactor!) };
    const out = await ae.decode(latent);
    const image = { ...out, data: out.data.map((v) => v * 0.5 + 0.5) };
    expect(image.shape).toEqual(decoded.shape);
    expect(maxAbsDiff(image, decoded)).toBeLessThanOrEqual(fixtureTolerance(decoded));
  } finally {
    await ae.dispose();
  }
}

describe('TAESANA from the Hub (a repo with the .pth files, no config.json)', () => {
  it('resolves both files into one snapshot folder and decodes like upstream', async () => {
    const hubOptions = await options();
    const resolved = await resolveModel('org/taesana', hubOptions);
    expect(resolved).toMatchObject({ layout: undefined, weightsFile: undefined, modelName: undefined });
    expect(resolved.commit).toMatch(/^[0-9a-f]{40}$/);
    const files = await listFiles(join(hubOptions.cacheDir!, 'models--org--taesana', 'snapshots'));
    expect(files.map((f) => f.split('/')[1]).sort()).toEqual(['taesana_decoder.pth', 'taesana_encoder.pth']);
    // config.json was asked for first and is absent; then the two .pth files.
    expect(hub.count('GET', /\/blobs\//)).toBeGreaterThanOrEqual(2);
    await expectDecodes('org/taesana', hubOptions);
  });

  it('a repo with the decoder alone is TAESANA too; a Hub URL naming the .pth file names its folder', async () => {
    const hubOptions = await options();
    await expectDecodes('org/decoder-only', hubOptions);
    expect(
      parseModelSource(`${hub.endpoint}/org/decoder-only/blob/main/taesana_decoder.pth`, hubOptions),
    ).toEqual({ kind: 'hub', repo: 'org/decoder-only', revision: 'main', subfolder: undefined });
  });

  it('a repo with neither config.json nor TAESANA files stays MODEL_NOT_FOUND about config.json', async () => {
    hub.addRepo('org/empty', { 'README.md': new TextEncoder().encode('nothing here') });
    await expect(resolveModel('org/empty', await options())).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('config.json'),
    });
  });
});

describe('TAESANA from a folder URL (a plain static server, another origin than the Hub)', () => {
  let files: HubTestServer;
  beforeAll(async () => {
    files = await HubTestServer.start();
  });
  afterAll(async () => {
    await files.close();
  });

  it('a static folder with the two .pth files loads; a URL naming taesana_decoder.pth too', async () => {
    const folder = files.addStatic('taesana', {
      'taesana_encoder.pth': ENCODER,
      'taesana_decoder.pth': DECODER,
    });
    const hubOptions = await options();
    await expectDecodes(folder, hubOptions);
    expect(parseModelSource(`${folder}taesana_decoder.pth`)).toEqual({
      kind: 'url',
      folderUrl: folder,
      file: 'taesana_decoder.pth',
    });
    await expectDecodes(`${folder}taesana_decoder.pth`, hubOptions);
  });

  it('the catalog entry is the released files’ folder at the commit that added them', () => {
    expect(TAESANA_RELEASE.files).toEqual(['taesana_encoder.pth', 'taesana_decoder.pth']);
    expect(parseModelSource(TAESANA_RELEASE.url)).toEqual({
      kind: 'url',
      folderUrl: `https://raw.githubusercontent.com/madebyollin/taesd/${TAESANA_RELEASE.commit}/`,
      file: undefined,
    });
  });
});
