import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { existsSync } from 'node:fs';
import { modelTinyPath } from '@dcae/model-tiny';
import {
  DIFFUSION_FIXTURES_DIR,
  FIXTURES_DIR,
  listDiffusionFixtures,
  listFixtures,
  listTaesanaFixtures,
  MODEL_TINY_DIR,
  MODEL_TINY_FILES,
} from '../build/assets.js';
import { DEFAULT_MODEL_CARD, DEFAULT_MODEL_PATH, DEFAULT_MODEL_PHOTOS } from '../src/model-source.js';

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

it('serves the tiny diffusion backbones, each with a bundled DC-AE of its latent channels', () => {
  const fixtures = listDiffusionFixtures();
  expect(fixtures.map((f) => [f.name, f.autoencoder])).toEqual([
    ['tiny-dit', 'tiny-in-f32'],
    ['tiny-dit-c32', 'dcae15-tiny-f32'],
    ['tiny-uvit', 'tiny-in-f32'],
  ]);
  const autoencoders = listFixtures().map((f) => f.name);
  for (const { name, autoencoder, files } of fixtures) {
    expect(files).toEqual(['config.json', 'model.safetensors']);
    expect(autoencoders).toContain(autoencoder);
    const backbone = json(join(DIFFUSION_FIXTURES_DIR, name, 'config.json'));
    const ae = json(join(FIXTURES_DIR, autoencoder, 'config.json'));
    expect(ae.latent_channels).toBe(backbone.in_channels);
    // generate() divides by the autoencoder's scaling factor: the tiny backbones have no preset to supply one.
    expect(ae.scaling_factor).toBeGreaterThan(0);
  }
});

it('serves the TAESANA fixture (decoder and descriptor) for the Generate previews', () => {
  expect(listTaesanaFixtures()).toEqual([
    { name: 'taesana-randinit', files: ['config.json', 'taesana_decoder.pth'] },
  ]);
});

it('serves the default model from its package folder: config, weights, model card and held-out photos', () => {
  expect(MODEL_TINY_DIR).toBe(modelTinyPath());
  for (const file of MODEL_TINY_FILES) expect(existsSync(join(MODEL_TINY_DIR, file)), file).toBe(true);
  expect(json(join(MODEL_TINY_DIR, 'config.json'))._class_name).toBe('AutoencoderDC');
  // Every path the page asks for is one the server answers.
  const served = MODEL_TINY_FILES.map((f) => `models/model-tiny/${f}`);
  expect(DEFAULT_MODEL_PATH).toBe('models/model-tiny/');
  expect(served).toContain(DEFAULT_MODEL_CARD);
  for (const photo of DEFAULT_MODEL_PHOTOS) expect(served).toContain(photo.path);
});
