/**
 * Gaussian data x₀ ~ N(μ, Σ) over C channels, independent across pixels. For such data the
 * optimal denoisers are linear and the probability-flow ODEs have closed-form solutions, so a
 * sampler driven by them can be checked against exact answers.
 *
 * Σ = Q·diag(λ)·Qᵀ; every matrix function of Σ below is applied in that eigenbasis.
 */
export interface GaussianData {
  readonly mean: readonly number[];
  /** Orthonormal columns: Q[i][j] = component i of eigenvector j. */
  readonly q: readonly (readonly number[])[];
  readonly eigenvalues: readonly number[];
}

export const CHANNELS = 3;

/** A full covariance: eigenvalues 0.25, 0.6, 1.0 along a rotated basis. */
export const CORRELATED: GaussianData = {
  mean: [0.5, -0.3, 0.1],
  q: rotation(0.7, 0.4),
  eigenvalues: [0.25, 0.6, 1.0],
};

/** A diagonal covariance (the DDPM variance output is per element, so it can only be optimal per channel). */
export const DIAGONAL: GaussianData = {
  mean: [0.5, -0.3, 0.1],
  q: [
    [1, 0, 0],
    [0, 1, 0],
    [0, 0, 1],
  ],
  eigenvalues: [0.25, 0.6, 1.0],
};

function rotation(a: number, b: number): number[][] {
  const [ca, sa, cb, sb] = [Math.cos(a), Math.sin(a), Math.cos(b), Math.sin(b)];
  const rz = [
    [ca, -sa, 0],
    [sa, ca, 0],
    [0, 0, 1],
  ];
  const rx = [
    [1, 0, 0],
    [0, cb, -sb],
    [0, sb, cb],
  ];
  return rz.map((row) => [0, 1, 2].map((j) => row.reduce((sum, v, k) => sum + v * rx[k]![j]!, 0)));
}

/**
 * y = shift + Q·diag(g(λ))·Qᵀ·(x − offset), per pixel of x [1, C, N] (channel-major).
 * `g` gets the eigenvalue and returns the gain along that eigenvector.
 */
export function applyInEigenbasis(
  data: GaussianData,
  x: ArrayLike<number>,
  offset: readonly number[],
  gain: (eigenvalue: number) => number,
  shift: readonly number[],
): Float32Array {
  const n = x.length / CHANNELS;
  const gains = data.eigenvalues.map(gain);
  const out = new Float32Array(x.length);
  const centred = [0, 0, 0];
  for (let p = 0; p < n; p++) {
    for (let i = 0; i < CHANNELS; i++) centred[i] = x[i * n + p]! - offset[i]!;
    for (let i = 0; i < CHANNELS; i++) {
      let sum = 0;
      for (let j = 0; j < CHANNELS; j++) {
        // (Qᵀ·centred)_j
        let projection = 0;
        for (let k = 0; k < CHANNELS; k++) projection += data.q[k]![j]! * centred[k]!;
        sum += data.q[i]![j]! * gains[j]! * projection;
      }
      out[i * n + p] = shift[i]! + sum;
    }
  }
  return out;
}

const scaled = (v: readonly number[], s: number) => v.map((x) => x * s);
const zero = [0, 0, 0];

/** VP: x_t = α·x₀ + σ·ε. E[ε | x_t] = σ·(α²Σ + σ²)⁻¹·(x_t − α·μ). */
export function optimalEpsilon(
  data: GaussianData,
  x: ArrayLike<number>,
  alpha: number,
  sigma: number,
): Float32Array {
  return applyInEigenbasis(
    data,
    x,
    scaled(data.mean, alpha),
    (l) => sigma / (alpha * alpha * l + sigma * sigma),
    zero,
  );
}

/** VP: Var(x₀ | x_t) along an eigenvector with eigenvalue λ. */
export function posteriorVarianceOfData(eigenvalue: number, alpha: number, sigma: number): number {
  return (eigenvalue * sigma * sigma) / (alpha * alpha * eigenvalue + sigma * sigma);
}

/** VP probability-flow ODE from (α₁, σ₁) to (α₂, σ₂): the standardised coordinate is preserved. */
export function vpFlowMap(
  data: GaussianData,
  x: ArrayLike<number>,
  from: { alpha: number; sigma: number },
  to: { alpha: number; sigma: number },
): Float32Array {
  const spread = (l: number, c: { alpha: number; sigma: number }) =>
    Math.sqrt(c.alpha * c.alpha * l + c.sigma * c.sigma);
  return applyInEigenbasis(
    data,
    x,
    scaled(data.mean, from.alpha),
    (l) => spread(l, to) / spread(l, from),
    scaled(data.mean, to.alpha),
  );
}

/** Linear flow x_t = t·x₁ + (1 − t)·x₀ (x₀ noise, x₁ data): v*(x, t) = μ + (tΣ − (1−t))·(t²Σ + (1−t)²)⁻¹·(x − tμ). */
export function optimalVelocity(data: GaussianData, x: ArrayLike<number>, t: number): Float32Array {
  const s = 1 - t;
  return applyInEigenbasis(
    data,
    x,
    scaled(data.mean, t),
    (l) => (t * l - s) / (t * t * l + s * s),
    data.mean,
  );
}

/** Linear flow from t = 0 to t = 1: x₁ = μ + Σ^½·x₀. */
export function linearFlowMap(data: GaussianData, noise: ArrayLike<number>): Float32Array {
  return applyInEigenbasis(data, noise, zero, Math.sqrt, data.mean);
}

/** Per-channel mean and the C×C covariance of x [1, C, N]. */
export function moments(x: ArrayLike<number>): { mean: number[]; cov: number[][] } {
  const n = x.length / CHANNELS;
  const mean = [0, 1, 2].map((i) => {
    let sum = 0;
    for (let p = 0; p < n; p++) sum += x[i * n + p]!;
    return sum / n;
  });
  const cov = [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) => {
      let sum = 0;
      for (let p = 0; p < n; p++) sum += (x[i * n + p]! - mean[i]!) * (x[j * n + p]! - mean[j]!);
      return sum / (n - 1);
    }),
  );
  return { mean, cov };
}

/** The covariance Q·diag(g(λ))·Qᵀ. */
export function covarianceOf(data: GaussianData, g: (eigenvalue: number) => number): number[][] {
  return [0, 1, 2].map((i) =>
    [0, 1, 2].map((j) =>
      [0, 1, 2].reduce((sum, k) => sum + data.q[i]![k]! * g(data.eigenvalues[k]!) * data.q[j]![k]!, 0),
    ),
  );
}

export function maxAbsDifference(
  a: readonly number[] | readonly number[][],
  b: readonly number[] | readonly number[][],
): number {
  const flat = (v: readonly number[] | readonly number[][]): number[] => v.flat();
  const [fa, fb] = [flat(a), flat(b)];
  return Math.max(...fa.map((v, i) => Math.abs(v - fb[i]!)));
}
