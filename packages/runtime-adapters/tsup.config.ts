import { defineConfig } from 'tsup';
import type { Options } from 'tsup';
import { packageBuild } from '../../tooling/tsup.preset.js';

const entry = { 'node/index': 'src/node/index.ts', 'web/index': 'src/web/index.ts' };

// The worker host is plain JavaScript and gets its own entry (dist/node/ort-host.js), found by the
// node bundle next to itself; it has no declarations.
export default defineConfig({
  ...(packageBuild({
    platform: 'node',
    entry: {
      ...entry,
      'node/ort-host': 'src/node/ort-host.js',
      'node/wasm-profile-host': 'src/node/wasm-profile-host.js',
    },
  }) as Options),
  dts: { entry },
});
