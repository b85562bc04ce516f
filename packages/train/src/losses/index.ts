import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import type { AttributeValue } from '@dcae/core/onnx';
import type { Emit } from '../autodiff/grad.js';
import type { LossName, LossWeights } from '../step/types.js';
import { perceptualLoss } from './perceptual.js';

/**
 * Reconstruction losses as graph nodes over images in [-1, 1] (docs/training.md, "Losses"). Each
 * term is a scalar; the fixed filters (Gaussian window, Sobel, DCT, pooling) are constant
 * depthwise convolutions, so the same VJP rules differentiate them and only dX flows through them.
 */

const int = (value: number): AttributeValue => ({ kind: 'int', value });
const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });

export const LOSS_NAMES: readonly LossName[] = [
  'l1',
  'mse',
  'ssim',
  'msssim',
  'gradient',
  'frequency',
  'perceptual',
  'gan',
];

/** SSIM constants for a data range of 2 ([-1, 1]): C1 = (0.01·2)², C2 = (0.03·2)². */
const SSIM_C1 = (0.01 * 2) ** 2;
const SSIM_C2 = (0.03 * 2) ** 2;
/** MS-SSIM scale weights (Wang et al. 2003). */
const MSSSIM_WEIGHTS = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];

function allAxes(e: Emit, v: string): number[] {
  return e.shape(v).map((_, i) => i);
}

function mean(e: Emit, v: string): string {
  return e.reduceMean(v, allAxes(e, v), false);
}

/** A depthwise conv over every channel of `x` with one constant [k, k] filter set [F, k, k]. */
function depthwise(
  e: Emit,
  x: string,
  filters: readonly (readonly number[])[],
  k: number,
  stride = 1,
  pad = 0,
): string {
  const c = e.shape(x)[1]!;
  const f = filters.length;
  const data = new Float32Array(c * f * k * k);
  for (let ch = 0; ch < c; ch++) for (let i = 0; i < f; i++) data.set(filters[i]!, (ch * f + i) * k * k);
  const weight: HostTensor = { dtype: 'float32', shape: [c * f, 1, k, k], data };
  return e.g.op1('Conv', [x, e.g.constant(weight)], {
    dilations: ints([1, 1]),
    group: int(c),
    pads: ints([pad, pad, pad, pad]),
    strides: ints([stride, stride]),
  });
}

function gaussianWindow(size: number, sigma: number): number[] {
  const half = (size - 1) / 2;
  const g = Array.from({ length: size }, (_, i) => Math.exp(-((i - half) ** 2) / (2 * sigma * sigma)));
  const s = g.reduce((a, b) => a + b, 0);
  const w: number[] = [];
  for (let i = 0; i < size; i++) for (let j = 0; j < size; j++) w.push((g[i]! / s) * (g[j]! / s));
  return w;
}

/** Window size for an image of this size: 11, or the largest odd size that fits. */
function windowFor(h: number, w: number): number {
  const m = Math.min(11, h, w);
  return m % 2 === 1 ? m : m - 1;
}

/** Mean SSIM and mean contrast-structure term of x against y (Gaussian window, valid positions). */
function ssimParts(e: Emit, x: string, y: string): { ssim: string; cs: string } {
  const [, , h, w] = e.shape(x) as [number, number, number, number];
  const k = windowFor(h, w);
  const win = [gaussianWindow(k, 1.5 * (k / 11))];
  const blur = (v: string): string => depthwise(e, v, win, k);
  const mx = blur(x);
  const my = blur(y);
  const mxx = e.mul(mx, mx);
  const myy = e.mul(my, my);
  const mxy = e.mul(mx, my);
  const sxx = e.sub(blur(e.mul(x, x)), mxx);
  const syy = e.sub(blur(e.mul(y, y)), myy);
  const sxy = e.sub(blur(e.mul(x, y)), mxy);
  const c1 = e.f32(SSIM_C1);
  const c2 = e.f32(SSIM_C2);
  const cs = e.div(e.add(e.scale(sxy, 2), c2), e.add(e.add(sxx, syy), c2));
  const lum = e.div(e.add(e.scale(mxy, 2), c1), e.add(e.add(mxx, myy), c1));
  return { ssim: mean(e, e.mul(lum, cs)), cs: mean(e, cs) };
}

/** 1 − SSIM. */
export function ssimLoss(e: Emit, x: string, y: string): string {
  return e.sub(e.f32(1), ssimParts(e, x, y).ssim);
}

/** 1 − MS-SSIM over as many of the 5 scales as the image allows (≥ 11 px per side), weights renormalised. */
export function msssimLoss(e: Emit, x: string, y: string): string {
  const [, , h, w] = e.shape(x) as [number, number, number, number];
  let scales = 1;
  while (scales < 5 && Math.min(h, w) >> scales >= 11) scales++;
  const weights = MSSSIM_WEIGHTS.slice(0, scales);
  const total = weights.reduce((a, b) => a + b, 0);
  const avg = [[0.25, 0.25, 0.25, 0.25]];
  let [a, b] = [x, y];
  let product: string | undefined;
  for (let s = 0; s < scales; s++) {
    const parts = ssimParts(e, a, b);
    const term = s === scales - 1 ? parts.ssim : parts.cs;
    // relu(·) + 1e-8 keeps the fractional power real and finite (as pytorch_msssim does).
    const positive = e.add(e.g.op1('Relu', [term]), e.f32(1e-8));
    const powered = e.g.op1('Pow', [positive, e.f32(weights[s]! / total)]);
    product = product ? e.mul(product, powered) : powered;
    if (s < scales - 1) {
      a = depthwise(e, a, avg, 2, 2);
      b = depthwise(e, b, avg, 2, 2);
    }
  }
  return e.sub(e.f32(1), product!);
}

/** Mean |Sobel(x) − Sobel(y)| over both directions. */
export function gradientLoss(e: Emit, x: string, y: string): string {
  const sobel = [
    [-1, 0, 1, -2, 0, 2, -1, 0, 1].map((v) => v / 8),
    [-1, -2, -1, 0, 0, 0, 1, 2, 1].map((v) => v / 8),
  ];
  const d = e.sub(depthwise(e, x, sobel, 3, 1, 1), depthwise(e, y, sobel, 3, 1, 1));
  return mean(e, e.g.op1('Abs', [d]));
}

/** Mean |DCT(x) − DCT(y)| of the 8×8 block DCT-II (orthonormal), a stride-8 constant conv. */
export function frequencyLoss(e: Emit, x: string, y: string): string {
  const n = 8;
  const basis: number[][] = [];
  const c = (k: number): number => (k === 0 ? Math.sqrt(1 / n) : Math.sqrt(2 / n));
  for (let u = 0; u < n; u++)
    for (let v = 0; v < n; v++) {
      const f: number[] = [];
      for (let i = 0; i < n; i++)
        for (let j = 0; j < n; j++)
          f.push(
            c(u) *
              c(v) *
              Math.cos(((2 * i + 1) * u * Math.PI) / (2 * n)) *
              Math.cos(((2 * j + 1) * v * Math.PI) / (2 * n)),
          );
      basis.push(f);
    }
  const [, , h, w] = e.shape(x) as [number, number, number, number];
  if (h < n || w < n)
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `The frequency loss needs images of at least 8×8 pixels; got ${h}×${w}.`,
    );
  const d = e.sub(depthwise(e, x, basis, n, n), depthwise(e, y, basis, n, n));
  return mean(e, e.g.op1('Abs', [d]));
}

export interface LossGraph {
  /** Σ weight · term. */
  readonly total: string;
  /** Each term, unweighted, by name. */
  readonly terms: ReadonlyMap<string, string>;
}

/**
 * The weighted loss of reconstruction `recon` against target `target` ([B, C, H, W]). Terms with
 * weight 0 are skipped. `perceptual` needs user-supplied weights; `gan` is added by the step builder
 * (it needs the discriminator, src/gan/).
 */
export function buildLoss(
  e: Emit,
  recon: string,
  target: string,
  weights: LossWeights,
  options: { perceptualWeights?: ReadonlyMap<string, HostTensor> } = {},
): LossGraph {
  const terms = new Map<string, string>();
  const entries = Object.entries(weights).filter(([, w]) => w !== undefined && w !== 0) as [
    LossName,
    number,
  ][];
  if (entries.length === 0)
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `The loss has no term with a non-zero weight; give e.g. { l1: 1 } (terms: ${LOSS_NAMES.join(', ')}).`,
    );
  for (const [name, w] of entries) {
    if (!Number.isFinite(w))
      throw new DcaeError('INVALID_ARGUMENT', `Loss weight ${name} is ${w}; expected a finite number.`);
    switch (name) {
      case 'l1':
        terms.set(name, mean(e, e.g.op1('Abs', [e.sub(recon, target)])));
        break;
      case 'mse': {
        const d = e.sub(recon, target);
        terms.set(name, mean(e, e.mul(d, d)));
        break;
      }
      case 'ssim':
        terms.set(name, ssimLoss(e, recon, target));
        break;
      case 'msssim':
        terms.set(name, msssimLoss(e, recon, target));
        break;
      case 'gradient':
        terms.set(name, gradientLoss(e, recon, target));
        break;
      case 'frequency':
        terms.set(name, frequencyLoss(e, recon, target));
        break;
      case 'perceptual':
        if (!options.perceptualWeights || options.perceptualWeights.size === 0)
          throw new DcaeError(
            'PERCEPTUAL_WEIGHTS_MISSING',
            'The perceptual loss needs user-supplied network weights (a VGG16/LPIPS safetensors file); none were given. ' +
              'dcae ships none and downloads none: pass the file (readPerceptualWeights(path) from @dcae/train/node; keys in docs/training.md, "Losses") or drop the perceptual term.',
          );
        terms.set(name, perceptualLoss(e, recon, target, options.perceptualWeights));
        break;
      case 'gan':
        throw new DcaeError(
          'INVALID_ARGUMENT',
          'buildLoss does not build the gan term: it needs the PatchGAN discriminator, which buildTrainStep / createTrainStepRunner add when loss.gan > 0 (docs/training.md, "The GAN term").',
        );
      default:
        throw new DcaeError(
          'INVALID_ARGUMENT',
          `Unknown loss term "${String(name)}"; expected one of ${LOSS_NAMES.join(', ')}.`,
        );
    }
  }
  let total: string | undefined;
  for (const [name, w] of entries) {
    const weighted = e.scale(terms.get(name)!, w);
    total = total ? e.add(total, weighted) : weighted;
  }
  return { total: total!, terms };
}
