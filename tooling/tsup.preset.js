// Shared tsup preset: ESM only, declarations, Node 20 target, no bundling of dependencies.
/** @param {{ entry: Record<string, string>, platform?: 'node' | 'neutral' | 'browser', banner?: string }} options */
export function packageBuild({ entry, platform = 'neutral', banner }) {
  return {
    entry,
    format: ['esm'],
    platform,
    target: 'node20',
    dts: true,
    sourcemap: true,
    clean: true,
    splitting: true,
    treeshake: true,
    outDir: 'dist',
    ...(banner ? { banner: { js: banner } } : {}),
  };
}
