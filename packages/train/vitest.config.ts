import { configDefaults, defineProject } from 'vitest/config';
import { vitestProject } from '../../tooling/vitest.preset.js';

// Browser tests (test/**/*.browser.test.ts) run in vitest.browser.config.ts.
export default defineProject(
  vitestProject('train', { exclude: [...configDefaults.exclude, 'test/**/*.browser.test.ts'] }),
);
