import { defineProject } from 'vitest/config';
import adapters from '../runtime-adapters/vitest.browser.config.js';

// test/**/*.browser.test.ts in headless Chromium with runtime-adapters' browser setup (the system
// Chromium, a cross-origin isolated page, WebGPU on SwiftShader).
export default defineProject({ ...adapters, test: { ...adapters.test, name: 'train:chromium' } });
