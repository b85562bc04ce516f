import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.preset.js';

export default defineConfig(
  packageBuild({
    platform: 'neutral',
    entry: { 'node/index': 'src/node/index.ts', 'web/index': 'src/web/index.ts' },
  }),
);
