import { defineProject } from 'vitest/config';
import adapters from '../runtime-adapters/vitest.browser.config.js';

// test/**/*.browser.test.ts in headless Chromium with runtime-adapters' browser setup (the system
// Chromium, a cross-origin isolated page, WebGPU on SwiftShader), which also brings the Playwright
// provider, a dependency of that package. The tests read the repository's fixtures through
// vitest's commands.readFile, within Vite's default server.fs.allow (the workspace root).
export default defineProject({ ...adapters, test: { ...adapters.test, name: 'autoencoder:chromium' } });
