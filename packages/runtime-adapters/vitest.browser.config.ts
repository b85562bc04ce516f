import { playwright } from '@vitest/browser-playwright';
import { defineProject } from 'vitest/config';

// test/**/*.browser.test.ts in headless Chromium (the system one: Debian's chromium package, never
// a downloaded browser). The page is cross-origin isolated so onnxruntime-web's wasm threads work;
// --enable-unsafe-webgpu gives WebGPU on SwiftShader even with --disable-gpu.
const crossOriginIsolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineProject({
  resolve: { conditions: ['@dcae/source'] },
  server: { headers: crossOriginIsolation },
  test: {
    name: 'runtime-adapters:chromium',
    include: ['test/**/*.browser.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    browser: {
      enabled: true,
      headless: true,
      screenshotFailures: false,
      provider: playwright({
        launchOptions: {
          executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
          args: [
            '--no-sandbox',
            '--disable-gpu',
            '--disable-quic',
            '--no-first-run',
            '--disable-background-networking',
            '--disable-component-update',
            '--disable-sync',
            '--enable-unsafe-webgpu',
          ],
        },
      }),
      instances: [{ browser: 'chromium' }],
    },
  },
});
