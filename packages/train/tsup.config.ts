import { defineConfig } from 'tsup';
import type { Options } from 'tsup';
import { packageBuild } from '../../tooling/tsup.preset.js';

const entry = { index: 'src/index.ts', 'node/index': 'src/node/index.ts' };

// The image decode worker gets its own entry (dist/node/decode-worker.js), found by the data source
// next to itself.
export default defineConfig({
  ...(packageBuild({
    platform: 'neutral',
    entry: { ...entry, 'node/decode-worker': 'src/node/decode-worker.ts' },
  }) as Options),
  dts: { entry },
});
