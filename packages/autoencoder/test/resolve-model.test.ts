import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serializeSafetensors } from '@dcae/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AUTOENCODER_CATALOG, AUTOENCODER_MODELS, knownModel, modelCatalog } from '@dcae/hub';
import {
  COMBINED_AUTOENCODER_PREFIX,
  DC_AE_PRESETS,
  findKnownModel,
  KNOWN_MODELS,
  listKnownModels,
  spatialCompressionRatio,
} from '../src/index.js';
import { autoencoderLoadDefaults, parseModelSource, resolveModel } from '../src/node/index.js';
import { fixturePath } from './helpers.js';

describe('parseModelSource', () => {
  it.each([
    [
      'mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers',
      {
        kind: 'hub',
        repo: 'mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers',
        revision: undefined,
        subfolder: undefined,
      },
    ],
    ['org/name@v1.0', { kind: 'hub', repo: 'org/name', revision: 'v1.0', subfolder: undefined }],
    ['org/name@refs/pr/2', { kind: 'hub', repo: 'org/name', revision: 'refs/pr/2', subfolder: undefined }],
    [
      'Efficient-Large-Model/Sana_600M_1024px_diffusers/vae',
      {
        kind: 'hub',
        repo: 'Efficient-Large-Model/Sana_600M_1024px_diffusers',
        revision: undefined,
        subfolder: 'vae',
      },
    ],
    [
      'https://huggingface.co/org/name',
      { kind: 'hub', repo: 'org/name', revision: undefined, subfolder: undefined },
    ],
    [
      'https://huggingface.co/org/name/tree/main/vae',
      { kind: 'hub', repo: 'org/name', revision: 'main', subfolder: 'vae' },
    ],
    [
      'https://huggingface.co/org/name/resolve/v2/diffusion_pytorch_model.safetensors',
      { kind: 'hub', repo: 'org/name', revision: 'v2', subfolder: undefined },
    ],
    [
      'https://huggingface.co/org/name/blob/main/vae/config.json',
      { kind: 'hub', repo: 'org/name', revision: 'main', subfolder: 'vae' },
    ],
    [
      'https://example.com/models/tiny/',
      { kind: 'url', folderUrl: 'https://example.com/models/tiny/', file: undefined },
    ],
    [
      'https://example.com/models/tiny/model.safetensors',
      { kind: 'url', folderUrl: 'https://example.com/models/tiny/', file: 'model.safetensors' },
    ],
    ['http://127.0.0.1:8080/m/', { kind: 'url', folderUrl: 'http://127.0.0.1:8080/m/', file: undefined }],
    // Without the trailing slash, a last segment that is no model file is the folder itself.
    [
      'https://example.com/models/tiny-sana-f32',
      { kind: 'url', folderUrl: 'https://example.com/models/tiny-sana-f32/', file: undefined },
    ],
    [
      'https://example.com/models/tiny/config.json',
      { kind: 'url', folderUrl: 'https://example.com/models/tiny/', file: 'config.json' },
    ],
    ['./org/name', { kind: 'folder', path: './org/name' }],
    ['/abs/org/name', { kind: 'folder', path: '/abs/org/name' }],
    ['~/models/x', { kind: 'folder', path: '~/models/x' }],
    ['C:\\models\\x', { kind: 'folder', path: 'C:\\models\\x' }],
    ['models', { kind: 'folder', path: 'models' }],
    ['not a/hub id', { kind: 'folder', path: 'not a/hub id' }],
  ])('%s', (text, expected) => {
    expect(parseModelSource(text)).toEqual(expected);
  });

  it('uses the configured endpoint for Hub URLs', () => {
    expect(
      parseModelSource('http://127.0.0.1:5/org/x/resolve/main/config.json', {
        endpoint: 'http://127.0.0.1:5',
      }),
    ).toEqual({
      kind: 'hub',
      repo: 'org/x',
      revision: 'main',
      subfolder: undefined,
    });
  });

  it.each([
    ['http://example.com/m/', 'INVALID_ARGUMENT', 'only https:'],
    ['ftp://example.com/m/', 'INVALID_ARGUMENT', 'only https:'],
    ['https://user:pw@example.com/m/', 'INVALID_ARGUMENT', 'credentials'],
    ['https://example.com/m/model.safetensors?sig=abc', 'INVALID_ARGUMENT', 'query string'],
    ['org/name@..', 'INVALID_ARGUMENT', 'revision'],
    ['org/name/../../etc', 'UNSAFE_PATH', '".." part'],
  ])('%s is %s', (text, code, says) => {
    let error: unknown;
    try {
      parseModelSource(text);
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code, message: expect.stringContaining(says) });
  });
});

/**
 * A catalog with one released diffusion repo, as a caller composes it (the full one is
 * `MODEL_CATALOG` of `@dcae/diffusion`, which this package cannot import).
 */
const WITH_DIT = modelCatalog(AUTOENCODER_MODELS, [
  knownModel({
    id: 'mit-han-lab/dc-ae-f32c32-in-1.0-dit-xl-in-512px',
    kind: 'diffusion',
    layout: 'combined',
    autoencoder: 'dc-ae-f32c32-in-1.0',
    description: 'DiT-XL',
  }),
]);

describe('the catalog of released autoencoders', () => {
  it('lists every released autoencoder in both formats, the 256px variant and DC-AE 1.5; no diffusion model', () => {
    const { find, list, models } = AUTOENCODER_CATALOG;
    expect(list({ kind: 'autoencoder' })).toHaveLength(19);
    expect(models).toHaveLength(19);
    expect(list({ kind: 'autoencoder', layout: 'diffusers' })).toHaveLength(8);
    expect(list({ layout: 'combined' })).toHaveLength(0);
    expect(new Set(models.map((m) => m.id)).size).toBe(models.length);
    for (const model of list({ layout: 'diffusers' })) {
      expect(find(model.id.replace(/-diffusers$/, ''))).toMatchObject({
        layout: 'original',
        autoencoder: model.autoencoder,
      });
      expect(model.files).toEqual(['config.json', 'diffusion_pytorch_model.safetensors']);
    }
    // The deprecated functions of this package are the same list.
    expect(KNOWN_MODELS).toBe(AUTOENCODER_MODELS);
    expect(listKnownModels({ layout: 'original' })).toEqual(list({ layout: 'original' }));
    expect(findKnownModel('dc-ae-f32c32-sana-1.1')).toBe(find('dc-ae-f32c32-sana-1.1'));
  });

  it('takes architecture facts from the presets (docs/model-spec.md §1.1: f, c, scaling factor)', () => {
    const { find } = AUTOENCODER_CATALOG;
    expect(find('mit-han-lab/dc-ae-f64c128-mix-1.0-diffusers')).toMatchObject({
      spatialCompressionRatio: 64,
      latentChannels: 128,
      scalingFactor: 0.4538,
    });
    expect(find('mit-han-lab/dc-ae-f128c512-in-1.0')).toMatchObject({
      spatialCompressionRatio: 128,
      latentChannels: 512,
      scalingFactor: 0.4883,
    });
    expect(find('mit-han-lab/dc-ae-f32c32-in-1.0-256px')?.scalingFactor).toBeUndefined();
    // DC-AE 1.5 lives under dc-ai/ (DC-Gen's registry); only f64c128-1.5 has a published factor.
    expect(find('dc-ae-f64c128-1.5')).toMatchObject({
      id: 'dc-ai/dc-ae-f64c128-1.5',
      layout: 'original',
      spatialCompressionRatio: 64,
      latentChannels: 128,
      scalingFactor: 0.5935,
    });
    expect(find('dc-ai/dc-ae-f32c128-1.5')).toMatchObject({ spatialCompressionRatio: 32 });
    expect(find('dc-ai/dc-ae-f32c128-1.5')?.scalingFactor).toBeUndefined();
    for (const model of AUTOENCODER_CATALOG.models) {
      const preset = DC_AE_PRESETS[model.autoencoder];
      expect(model.spatialCompressionRatio).toBe(spatialCompressionRatio(preset));
      expect(model.latentChannels).toBe(preset.latentChannels);
    }
  });

  it('a composed catalog finds a diffusion repo by id and by model_name, ignores @revision, and refuses an id listed twice', () => {
    expect(WITH_DIT.find('dc-ae-f32c32-in-1.0-dit-xl-in-512px@main')).toMatchObject({
      id: 'mit-han-lab/dc-ae-f32c32-in-1.0-dit-xl-in-512px',
      kind: 'diffusion',
      layout: 'combined',
      scalingFactor: 0.3189,
      files: ['config.json', 'model.safetensors'],
    });
    expect(WITH_DIT.find('someone/dc-ae-f32c32-in-1.0')).toBeUndefined();
    expect(AUTOENCODER_CATALOG.find('dc-ae-f32c32-in-1.0-dit-xl-in-512px')).toBeUndefined();
    expect(() => modelCatalog(AUTOENCODER_MODELS, AUTOENCODER_MODELS.slice(0, 1))).toThrow(
      expect.objectContaining({ code: 'INVALID_ARGUMENT' }),
    );
  });
});

describe('resolveModel on local folders', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcae-resolve-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('uses a folder in place and reads its layout from config.json', async () => {
    const resolved = await resolveModel(fixturePath('tiny-sana-f32'));
    expect(resolved).toMatchObject({
      source: { kind: 'folder' },
      directory: fixturePath('tiny-sana-f32'),
      layout: 'diffusers',
      weightsFile: 'diffusion_pytorch_model.safetensors',
      commit: undefined,
      known: undefined,
    });
    expect(autoencoderLoadDefaults(resolved)).toEqual({});
  });

  it('an org/name that exists as a relative folder is that folder, not a Hub repo', async () => {
    const cwd = process.cwd();
    await mkdir(join(dir, 'org', 'name'), { recursive: true });
    process.chdir(dir);
    try {
      expect((await resolveModel('org/name', { offline: true, env: {} })).source).toEqual({
        kind: 'folder',
        path: 'org/name',
      });
    } finally {
      process.chdir(cwd);
    }
  });

  it('recognises original and combined layouts: a released diffusion name, or autoencoder.+diffusion_model. keys', async () => {
    const write = async (name: string, modelName: string, keys: string[]) => {
      const folder = join(dir, name);
      await mkdir(folder, { recursive: true });
      await writeFile(join(folder, 'config.json'), JSON.stringify({ model_name: modelName }));
      const tensors = Object.fromEntries(
        keys.map((k) => [k, { dtype: 'float32', shape: [1], data: new Float32Array(1) } as const]),
      );
      await writeFile(join(folder, 'model.safetensors'), serializeSafetensors(tensors));
      return folder;
    };
    const original = await resolveModel(await write('orig', 'dc-ae-f32c32-sana-1.0', ['encoder.x']));
    expect(original).toMatchObject({
      layout: 'original',
      weightsFile: 'model.safetensors',
      modelName: 'dc-ae-f32c32-sana-1.0',
    });
    expect(original.known?.id).toBe('mit-han-lab/dc-ae-f32c32-sana-1.0');

    const dit = await write('dit', 'dc-ae-f32c32-in-1.0-dit-xl-in-512px', ['x']);
    const released = await resolveModel(dit, { catalog: WITH_DIT });
    expect(released).toMatchObject({ layout: 'combined', known: { kind: 'diffusion' } });
    // Without a catalog that lists it, the released name is unknown, and its keys are no combined checkpoint.
    expect(await resolveModel(dit)).toMatchObject({ layout: 'original', known: undefined });
    expect(autoencoderLoadDefaults(released)).toEqual({
      config: DC_AE_PRESETS['dc-ae-f32c32-in-1.0'],
      keyPrefix: COMBINED_AUTOENCODER_PREFIX,
    });

    const byKeys = await resolveModel(
      await write('custom', 'my-own-dit', ['autoencoder.encoder.x', 'diffusion_model.y']),
    );
    expect(byKeys).toMatchObject({ layout: 'combined', known: undefined });
    // Not released: the caller names the architecture and the prefix.
    expect(autoencoderLoadDefaults(byKeys)).toEqual({});

    expect((await resolveModel(await write('other', 'my-own-ae', ['encoder.x']))).layout).toBe('original');
  });

  it('a missing folder is MODEL_NOT_FOUND saying what a model argument may be', async () => {
    await expect(resolveModel(join(dir, 'nope'))).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
      message: expect.stringContaining('Hub id'),
    });
  });
});
