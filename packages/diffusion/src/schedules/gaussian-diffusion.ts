import { DcaeError } from '@dcae/core';

/**
 * The improved-DDPM tables DiT samples with (DiT `diffusion/gaussian_diffusion.py` and
 * `respace.py`, docs/model-spec.md §4.5.1), all float64 as upstream computes them with numpy. Index k is the
 * respaced step; the network sees time `timestepMap[k]`, the original step index.
 */
export interface DdpmSchedule {
  /** Original step indices kept, ascending. */
  readonly timestepMap: readonly number[];
  readonly betas: Float64Array;
  readonly alphasCumprod: Float64Array;
  readonly alphasCumprodPrev: Float64Array;
  readonly sqrtRecipAlphasCumprod: Float64Array;
  readonly sqrtRecipm1AlphasCumprod: Float64Array;
  readonly posteriorVariance: Float64Array;
  /** log of the posterior variance with entry 0 replaced by entry 1 (which is never 0). */
  readonly posteriorLogVarianceClipped: Float64Array;
  readonly posteriorMeanCoef1: Float64Array;
  readonly posteriorMeanCoef2: Float64Array;
  /** log β′: the upper end of the learned variance range. */
  readonly logBetas: Float64Array;
}

/** Upstream's diffusion length. */
export const DDPM_TRAIN_STEPS = 1000;

/** `np.linspace(1e-4, 0.02, n)` scaled by 1000/n: DiT's "linear" schedule. */
export function linearBetas(numTimesteps = DDPM_TRAIN_STEPS): Float64Array {
  const scale = 1000 / numTimesteps;
  const start = scale * 0.0001;
  const end = scale * 0.02;
  const step = (end - start) / (numTimesteps - 1);
  const betas = Float64Array.from({ length: numTimesteps }, (_, i) => i * step + start);
  betas[numTimesteps - 1] = end; // numpy writes the endpoint exactly
  return betas;
}

/**
 * The kept timesteps of respacing to `steps` (upstream `space_timesteps(n, [steps])`): a cumulative
 * float stride (n−1)/(steps−1) rounded half-to-even like Python's `round`.
 */
export function spaceTimesteps(numTimesteps: number, steps: number): number[] {
  if (!Number.isInteger(steps) || steps < 1 || steps > numTimesteps) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `DDPM steps must be an integer in [1, ${numTimesteps}], got ${steps}.`,
      { detail: { steps } },
    );
  }
  if (steps === 1) return [0];
  const stride = (numTimesteps - 1) / (steps - 1);
  const kept = new Set<number>();
  let index = 0;
  for (let k = 0; k < steps; k++) {
    kept.add(roundHalfEven(index));
    index += stride;
  }
  return [...kept].sort((a, b) => a - b);
}

function roundHalfEven(x: number): number {
  const floor = Math.floor(x);
  const diff = x - floor;
  if (diff > 0.5) return floor + 1;
  if (diff < 0.5) return floor;
  return floor % 2 === 0 ? floor : floor + 1;
}

/** The schedule respaced to `steps` (upstream `SpacedDiffusion(space_timesteps(1000, [steps]), …)`). */
export function ddpmSchedule(steps: number, baseBetas: Float64Array = linearBetas()): DdpmSchedule {
  const baseAlphasCumprod = cumprod(baseBetas.map((beta) => 1 - beta));
  const kept = new Set(spaceTimesteps(baseBetas.length, steps));
  const timestepMap: number[] = [];
  const betas: number[] = [];
  let lastAlphaCumprod = 1;
  baseAlphasCumprod.forEach((alphaCumprod, i) => {
    if (!kept.has(i)) return;
    betas.push(1 - alphaCumprod / lastAlphaCumprod);
    lastAlphaCumprod = alphaCumprod;
    timestepMap.push(i);
  });
  return { timestepMap, ...gaussianDiffusionTables(Float64Array.from(betas)) };
}

/** The derived tables of `GaussianDiffusion.__init__` for a beta schedule, in upstream's operation order. */
function gaussianDiffusionTables(betas: Float64Array): Omit<DdpmSchedule, 'timestepMap'> {
  const n = betas.length;
  const alphas = betas.map((beta) => 1 - beta);
  const alphasCumprod = cumprod(alphas);
  const alphasCumprodPrev = Float64Array.from({ length: n }, (_, k) => (k === 0 ? 1 : alphasCumprod[k - 1]!));
  const table = (f: (k: number) => number) => Float64Array.from({ length: n }, (_, k) => f(k));
  const posteriorVariance = table((k) => (betas[k]! * (1 - alphasCumprodPrev[k]!)) / (1 - alphasCumprod[k]!));
  return {
    betas,
    alphasCumprod,
    alphasCumprodPrev,
    sqrtRecipAlphasCumprod: table((k) => Math.sqrt(1 / alphasCumprod[k]!)),
    sqrtRecipm1AlphasCumprod: table((k) => Math.sqrt(1 / alphasCumprod[k]! - 1)),
    posteriorVariance,
    posteriorLogVarianceClipped: table((k) => Math.log(posteriorVariance[n > 1 && k === 0 ? 1 : k]!)),
    posteriorMeanCoef1: table(
      (k) => (betas[k]! * Math.sqrt(alphasCumprodPrev[k]!)) / (1 - alphasCumprod[k]!),
    ),
    posteriorMeanCoef2: table(
      (k) => ((1 - alphasCumprodPrev[k]!) * Math.sqrt(alphas[k]!)) / (1 - alphasCumprod[k]!),
    ),
    logBetas: betas.map(Math.log),
  };
}

function cumprod(values: Float64Array): Float64Array {
  const result = new Float64Array(values.length);
  let product = 1;
  values.forEach((value, i) => (result[i] = product *= value));
  return result;
}
