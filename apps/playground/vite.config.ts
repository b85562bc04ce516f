import { defaultClientConditions, defineConfig } from 'vite';
import { playgroundAssets, securityHeaders } from './build/assets.js';

export default defineConfig({
  resolve: {
    // Workspace packages from their TypeScript sources; onnxruntime-web's build that loads its
    // wasm from `wasmPaths` (served from /ort/ by playgroundAssets) instead of bundling a copy.
    conditions: ['@dcae/source', 'onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
  },
  worker: { format: 'es' },
  plugins: [playgroundAssets()],
  server: { headers: securityHeaders('dev') },
  preview: { headers: securityHeaders('production') },
  build: { target: 'es2022', chunkSizeWarningLimit: 1024 },
});
