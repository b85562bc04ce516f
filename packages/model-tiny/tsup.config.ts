import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.preset.js';

export default defineConfig(packageBuild({ platform: 'node', entry: { index: 'src/index.ts' } }));
