import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.preset.js';

export default defineConfig([
  // The bench itself; its clean keeps the browser bundle, which the second build writes.
  // playwright-core, a devDependency, is loaded from node_modules when Chromium cases run.
  {
    ...packageBuild({
      platform: 'node',
      entry: { main: 'src/main.ts', fuzz: 'src/fuzz.ts', 'latents-processor': 'src/latents-processor.ts' },
    }),
    clean: ['!browser/**'],
    external: ['playwright-core'],
  },
  // The page of the `runtimes` scenario's Chromium cases: one file with the dcae packages in it;
  // onnxruntime-web stays external (the page's import map points it at the package's own files).
  {
    entry: { runner: 'browser/runner.ts' },
    format: ['esm'],
    platform: 'browser',
    target: 'chrome120',
    outDir: 'dist/browser',
    clean: true,
    dts: false,
    sourcemap: true,
    splitting: false,
    treeshake: true,
    noExternal: [/^@dcae\//],
    external: ['onnxruntime-web'],
  },
]);
