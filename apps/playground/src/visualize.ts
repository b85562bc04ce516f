/**
 * Pictures of images and latents: RGBA buffers for canvases, computed in the worker. Pure
 * functions, no DOM.
 */
import type { RgbImage } from '@dcae/autoencoder';
import type { Picture } from './protocol.js';

export function rgbPicture(image: RgbImage): Picture {
  const { width, height, data } = image;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) {
    rgba[4 * i] = data[3 * i]!;
    rgba[4 * i + 1] = data[3 * i + 1]!;
    rgba[4 * i + 2] = data[3 * i + 2]!;
    rgba[4 * i + 3] = 255;
  }
  return { width, height, rgba };
}

/** Stops of a perceptually ordered dark-to-bright colour map (inferno-like), for values in [0, 1]. */
const HEAT: readonly (readonly [number, number, number])[] = [
  [0, 0, 4],
  [40, 11, 84],
  [101, 21, 110],
  [159, 42, 99],
  [212, 72, 66],
  [245, 125, 21],
  [250, 193, 39],
  [252, 255, 164],
];

export function heatColor(t: number): [number, number, number] {
  const x = Math.min(1, Math.max(0, t)) * (HEAT.length - 1);
  const i = Math.min(HEAT.length - 2, Math.floor(x));
  const f = x - i;
  const [a, b] = [HEAT[i]!, HEAT[i + 1]!];
  return [0, 1, 2].map((k) => Math.round(a[k]! + (b[k]! - a[k]!) * f)) as [number, number, number];
}

/**
 * Per-pixel error |a − b| averaged over R, G, B, coloured from 0 (black) to `scale` (bright): the
 * 99.5th percentile of the errors, so a few outliers do not wash the map out.
 */
export function errorHeatmap(
  a: RgbImage,
  b: RgbImage,
): { picture: Picture; scale: number; meanAbsError: number } {
  const n = a.width * a.height;
  const error = new Float32Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    const e =
      (Math.abs(a.data[3 * i]! - b.data[3 * i]!) +
        Math.abs(a.data[3 * i + 1]! - b.data[3 * i + 1]!) +
        Math.abs(a.data[3 * i + 2]! - b.data[3 * i + 2]!)) /
      3;
    error[i] = e;
    total += e;
  }
  const scale = Math.max(1, percentile(error, 0.995));
  const rgba = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    const [r, g, bl] = heatColor(error[i]! / scale);
    rgba.set([r, g, bl, 255], 4 * i);
  }
  return { picture: { width: a.width, height: a.height, rgba }, scale, meanAbsError: total / n };
}

/**
 * Every latent channel [c, h, w] as a grey tile (its own 1st–99th percentile range mapped to
 * black–white), in a near-square grid with 1-pixel gaps.
 */
export function channelGrid(latent: Float32Array, c: number, h: number, w: number): Picture {
  const columns = Math.ceil(Math.sqrt((c * h) / w));
  const rows = Math.ceil(c / columns);
  const width = columns * (w + 1) - 1;
  const height = rows * (h + 1) - 1;
  const rgba = new Uint8ClampedArray(width * height * 4);
  for (let i = 0; i < width * height; i++) rgba.set([24, 26, 32, 255], 4 * i);
  for (let ch = 0; ch < c; ch++) {
    const plane = latent.subarray(ch * h * w, (ch + 1) * h * w);
    const lo = percentile(plane, 0.01);
    const hi = percentile(plane, 0.99);
    const span = hi - lo || 1;
    const [x0, y0] = [(ch % columns) * (w + 1), Math.floor(ch / columns) * (h + 1)];
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const v = Math.round((255 * (plane[y * w + x]! - lo)) / span);
        rgba.set([v, v, v, 255], 4 * ((y0 + y) * width + x0 + x));
      }
  }
  return { width, height, rgba };
}

/**
 * The latent's three principal components over all h·w positions, as R, G and B (each
 * component's 1st–99th percentile range mapped to 0–255). Components come from power iteration
 * with deflation on the c×c covariance; each is signed so its largest loading is positive.
 * `explained` is their share of the total variance.
 */
export function pcaPicture(
  latent: Float32Array,
  c: number,
  h: number,
  w: number,
): { picture: Picture; explained: number } {
  const n = h * w;
  const mean = new Float64Array(c);
  for (let ch = 0; ch < c; ch++) {
    let s = 0;
    for (let i = 0; i < n; i++) s += latent[ch * n + i]!;
    mean[ch] = s / n;
  }
  const cov = new Float64Array(c * c);
  const column = new Float64Array(c);
  for (let i = 0; i < n; i++) {
    for (let ch = 0; ch < c; ch++) column[ch] = latent[ch * n + i]! - mean[ch]!;
    for (let a = 0; a < c; a++) {
      const va = column[a]!;
      if (va === 0) continue;
      for (let b = a; b < c; b++) cov[a * c + b] = cov[a * c + b]! + va * column[b]!;
    }
  }
  for (let a = 0; a < c; a++)
    for (let b = a; b < c; b++) {
      const v = cov[a * c + b]! / Math.max(1, n - 1);
      cov[a * c + b] = v;
      cov[b * c + a] = v;
    }
  let trace = 0;
  for (let a = 0; a < c; a++) trace += cov[a * c + a]!;

  const components: Float64Array[] = [];
  let explainedVariance = 0;
  for (let k = 0; k < Math.min(3, c); k++) {
    const { vector, value } = topEigen(cov, c, k + 1);
    components.push(vector);
    explainedVariance += Math.max(0, value);
    for (let a = 0; a < c; a++)
      for (let b = 0; b < c; b++) cov[a * c + b] = cov[a * c + b]! - value * vector[a]! * vector[b]!;
  }

  const rgba = new Uint8ClampedArray(n * 4);
  for (let i = 0; i < n; i++) rgba[4 * i + 3] = 255;
  components.forEach((vector, k) => {
    const projected = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let s = 0;
      for (let ch = 0; ch < c; ch++) s += (latent[ch * n + i]! - mean[ch]!) * vector[ch]!;
      projected[i] = s;
    }
    const lo = percentile(projected, 0.01);
    const span = percentile(projected, 0.99) - lo || 1;
    for (let i = 0; i < n; i++) rgba[4 * i + k] = Math.round((255 * (projected[i]! - lo)) / span);
  });
  return { picture: { width: w, height: h, rgba }, explained: trace > 0 ? explainedVariance / trace : 0 };
}

/** The dominant eigenpair of a symmetric c×c matrix (power iteration from a fixed start). */
function topEigen(matrix: Float64Array, c: number, seed: number): { vector: Float64Array; value: number } {
  let v = Float64Array.from({ length: c }, (_, i) => 1 + ((i * 7919 + seed * 104729) % 97) / 97);
  normalize(v);
  let value = 0;
  for (let iteration = 0; iteration < 300; iteration++) {
    const next = new Float64Array(c);
    for (let a = 0; a < c; a++) {
      let s = 0;
      for (let b = 0; b < c; b++) s += matrix[a * c + b]! * v[b]!;
      next[a] = s;
    }
    const norm = normalize(next);
    const converged = Math.abs(norm - value) <= 1e-10 * Math.max(1, norm);
    value = norm;
    v = next;
    if (norm === 0 || converged) break;
  }
  // Rayleigh quotient: the eigenvalue with its sign.
  let rayleigh = 0;
  for (let a = 0; a < c; a++) {
    let s = 0;
    for (let b = 0; b < c; b++) s += matrix[a * c + b]! * v[b]!;
    rayleigh += v[a]! * s;
  }
  let largest = 0;
  for (let a = 1; a < c; a++) if (Math.abs(v[a]!) > Math.abs(v[largest]!)) largest = a;
  if (v[largest]! < 0) v = v.map((x) => -x);
  return { vector: v, value: rayleigh };
}

function normalize(v: Float64Array): number {
  let s = 0;
  for (const x of v) s += x * x;
  const norm = Math.sqrt(s);
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] = v[i]! / norm;
  return norm;
}

/** The q-quantile (0–1) of `values` by nearest rank. */
export function percentile(values: ArrayLike<number>, q: number): number {
  if (values.length === 0) return 0;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.round(q * (sorted.length - 1))))]!;
}

/** Min, max, mean and standard deviation. */
export function stats(values: Float32Array): { min: number; max: number; mean: number; std: number } {
  let [min, max, sum, squares] = [Infinity, -Infinity, 0, 0];
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
    squares += v * v;
  }
  const mean = sum / values.length;
  return { min, max, mean, std: Math.sqrt(Math.max(0, squares / values.length - mean * mean)) };
}
