// The released diffusion models are listed once, by the presets (backbone, autoencoder, sampling);
// the catalog entries (what `dcae models` prints and `resolveModel` recognises) are derived from
// them, so these tests check the derivation and that each preset agrees with the published facts
// of its autoencoder (docs/ARCHITECTURE.md, "the catalog").
import { sameModel } from '@dcae/autoencoder';
import { AUTOENCODER_MODELS, CATALOG_AUTOENCODER_FACTS } from '@dcae/hub';
import { describe, expect, it } from 'vitest';
import { DIFFUSION_MODELS, DIFFUSION_PRESETS, MODEL_CATALOG } from '../src/index.js';

describe('the diffusion catalog', () => {
  it('lists each preset once, as a combined mit-han-lab repo, after the autoencoders', () => {
    expect(DIFFUSION_MODELS.map((m) => m.id)).toEqual(
      Object.keys(DIFFUSION_PRESETS).map((name) => `mit-han-lab/${name}`),
    );
    expect(DIFFUSION_MODELS).toHaveLength(11);
    expect(MODEL_CATALOG.models).toEqual([...AUTOENCODER_MODELS, ...DIFFUSION_MODELS]);
    expect(MODEL_CATALOG.list({ kind: 'diffusion' })).toEqual(DIFFUSION_MODELS);
    expect(MODEL_CATALOG.list({ layout: 'combined' })).toHaveLength(11);
    for (const model of DIFFUSION_MODELS) {
      expect(model).toMatchObject({
        kind: 'diffusion',
        layout: 'combined',
        files: ['config.json', 'model.safetensors'],
      });
    }
  });

  it('each preset samples in latents of its autoencoder: channels, 512 px / f, scaling factor', () => {
    for (const preset of Object.values(DIFFUSION_PRESETS)) {
      const facts = CATALOG_AUTOENCODER_FACTS[preset.autoencoder];
      expect(preset.backbone.inChannels, preset.name).toBe(facts.c);
      expect(512 / facts.f, preset.name).toBe(preset.backbone.inputSize);
      expect(preset.scalingFactor, preset.name).toBe(facts.scalingFactor);
      const known = MODEL_CATALOG.find(`mit-han-lab/${preset.name}`);
      expect(known, preset.name).toMatchObject({
        autoencoder: preset.autoencoder,
        latentChannels: preset.backbone.inChannels,
        scalingFactor: preset.scalingFactor,
      });
    }
  });

  it('finds a diffusion repo by id, by its config.json model_name, and ignores @revision', () => {
    expect(MODEL_CATALOG.find('dc-ae-f32c32-in-1.0-dit-xl-in-512px')).toMatchObject({
      id: 'mit-han-lab/dc-ae-f32c32-in-1.0-dit-xl-in-512px',
      autoencoder: 'dc-ae-f32c32-in-1.0',
      scalingFactor: 0.3189,
      description: 'DiT-XL, class-conditional ImageNet 512×512, in the latent space of dc-ae-f32c32-in-1.0',
    });
    expect(
      MODEL_CATALOG.find('mit-han-lab/dc-ae-f64c128-in-1.0-uvit-2b-in-512px-train2000k@main'),
    ).toMatchObject({
      autoencoder: 'dc-ae-f64c128-in-1.0',
      description: expect.stringMatching(/^UViT-2B \(2000k steps\), /),
    });
    expect(MODEL_CATALOG.find('dc-ae-f32c32-in-1.0-dit-xl-in-512px-trainbs1024')?.description).toMatch(
      /^DiT-XL \(batch 1024\), /,
    );
    expect(MODEL_CATALOG.find('mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers')?.kind).toBe('autoencoder');
    expect(MODEL_CATALOG.find('someone/dc-ae-f32c32-in-1.0-dit-xl-in-512px')).toBeUndefined();
  });

  it('a latent of a released diffusion model belongs to its autoencoder when the catalog says so', () => {
    const dit = 'mit-han-lab/dc-ae-f32c32-in-1.0-dit-xl-in-512px';
    expect(sameModel(dit, 'mit-han-lab/dc-ae-f32c32-in-1.0-diffusers', MODEL_CATALOG)).toBe(true);
    expect(sameModel(dit, './models/dc-ae-f32c32-in-1.0/', MODEL_CATALOG)).toBe(true);
    expect(sameModel(dit, 'mit-han-lab/dc-ae-f64c128-in-1.0-diffusers', MODEL_CATALOG)).toBe(false);
    // The autoencoder catalog alone does not know the diffusion repo.
    expect(sameModel(dit, 'mit-han-lab/dc-ae-f32c32-in-1.0-diffusers')).toBe(false);
  });
});
