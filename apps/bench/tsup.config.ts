import { defineConfig } from 'tsup';
import { packageBuild } from '../../tooling/tsup.preset.js';

export default defineConfig(packageBuild({ platform: 'node', entry: { main: 'src/main.ts' } }));
