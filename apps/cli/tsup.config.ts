import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.preset.js';

export default defineConfig(
  packageBuild({
    platform: 'node',
    entry: { bin: 'src/bin.ts', 'latents-processor': 'src/latents-processor.ts' },
  }),
);
