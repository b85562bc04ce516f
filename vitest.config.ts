import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    projects: [
      'packages/*/vitest.config.ts',
      'apps/*/vitest.config.ts',
      'tooling/vitest.config.ts',
      // onnxruntime-web in headless Chromium (vitest browser mode)
      'packages/runtime-adapters/vitest.browser.config.ts',
      'packages/autoencoder/vitest.browser.config.ts',
      'packages/train/vitest.browser.config.ts',
    ],
    reporters: ['default', './tooling/summary-reporter.js'],
  },
});
