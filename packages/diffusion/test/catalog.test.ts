// The released diffusion models are listed by the hub catalog (what `dcae models` prints and
// `resolveModel` recognises) and described by the presets here (backbone, autoencoder, sampling).
// They must name the same repos with the same autoencoders, or one of them is stale.
import { findKnownModel, listKnownModels } from '@dcae/hub';
import { describe, expect, it } from 'vitest';
import { DIFFUSION_PRESETS } from '../src/index.js';

describe('the diffusion catalog', () => {
  it('the hub catalog and the presets list the same diffusion repos', () => {
    const catalog = listKnownModels({ kind: 'diffusion' }).map((m) => m.id);
    const presets = Object.keys(DIFFUSION_PRESETS).map((name) => `mit-han-lab/${name}`);
    expect([...catalog].sort()).toEqual([...presets].sort());
  });

  it('each repo samples in the same autoencoder, at the same latent size, in both', () => {
    for (const preset of Object.values(DIFFUSION_PRESETS)) {
      const known = findKnownModel(`mit-han-lab/${preset.name}`);
      expect(known, preset.name).toBeDefined();
      expect(known!.layout).toBe('combined');
      expect(known!.autoencoder).toBe(preset.autoencoder);
      expect(known!.latentChannels).toBe(preset.backbone.inChannels);
      expect(known!.scalingFactor).toBe(preset.scalingFactor);
      expect(512 / known!.spatialCompressionRatio).toBe(preset.backbone.inputSize);
    }
  });
});
