import { defineProject } from 'vitest/config';
import { vitestProject } from '../../tooling/vitest.preset.js';

// test/**/*.browser.test.ts run in Chromium: vitest.browser.config.ts.
export default defineProject(vitestProject('runtime-adapters', { exclude: ['test/**/*.browser.test.ts'] }));
