import type { Scenario } from '../scenario.js';
import { aeLatency } from './ae-latency.js';
import { aeTiling } from './ae-tiling.js';
import { diffusionTokens } from './diffusion-tokens.js';
import { gpu } from './gpu.js';
import { graphBuild } from './graph-build.js';
import { int8 } from './int8.js';
import { latents } from './latents.js';
import { matmulPeak } from './matmul-peak.js';
import { pixelShuffleScenario } from './pixel-shuffle.js';
import { safetensorsRead } from './safetensors-read.js';
import { sdVaeVsDcae } from './sd-vae-vs-dcae.js';
import { runtimes } from './runtimes.js';
import { soak } from './soak.js';
import { taesanaVsDcae } from './taesana-vs-dcae.js';
import { trainStep } from './train-step.js';
import { wasmOps } from './wasm-ops.js';

/**
 * Every scenario, in the order `pnpm bench` runs them. To add one, write `scenarios/<name>.ts`
 * exporting a `Scenario` and list it here.
 */
export const SCENARIOS: readonly Scenario[] = [
  safetensorsRead,
  graphBuild,
  matmulPeak,
  diffusionTokens,
  aeTiling,
  aeLatency,
  int8,
  sdVaeVsDcae,
  taesanaVsDcae,
  runtimes,
  wasmOps,
  pixelShuffleScenario,
  gpu,
  trainStep,
  soak,
  latents,
];
