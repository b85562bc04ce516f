import type { Scenario } from '../scenario.js';
import { graphBuild } from './graph-build.js';
import { matmulPeak } from './matmul-peak.js';
import { safetensorsRead } from './safetensors-read.js';

/**
 * Every scenario, in the order `pnpm bench` runs them. To add one, write `scenarios/<name>.ts`
 * exporting a `Scenario` and list it here.
 */
export const SCENARIOS: readonly Scenario[] = [safetensorsRead, graphBuild, matmulPeak];
