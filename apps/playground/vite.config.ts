import { defineConfig } from 'vite';

const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  resolve: { conditions: ['@dcae/source'] },
  server: { headers: crossOriginIsolation },
  preview: { headers: crossOriginIsolation },
});
