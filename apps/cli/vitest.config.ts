import { defineProject } from 'vitest/config';
import { vitestProject } from '../../tooling/vitest.preset.js';

// The tests run the built `dcae` (dist/bin.js) as a child process; the global setup rebuilds it
// when a source file is newer (its dependencies' dist/ must be built: `pnpm run build`).
export default defineProject(vitestProject('cli', { globalSetup: ['./test/global-setup.ts'] }));
