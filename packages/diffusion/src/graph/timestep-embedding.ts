import { f32 } from '../schedules/float32.js';

const MAX_PERIOD = 10000;

/**
 * upstream `timestep_embedding(t, dim)` (DiT `TimestepEmbedder`, UViT): [cos(t·ω_i), sin(t·ω_i)]
 * with ω_i = exp(−ln(10000)·i/half), i < half = ⌊dim/2⌋, a zero column appended when dim is odd.
 * The frequencies and t·ω are float32 as torch computes them; cos/sin are evaluated in float64 and
 * rounded, which is closer to exact than torch's float32 kernels (differences are last-bit).
 * Computed on the host so no device evaluates sin/cos of arguments up to 1000 in reduced precision.
 */
export function timestepEmbedding(t: ArrayLike<number>, dim: number): Float32Array {
  const half = Math.floor(dim / 2);
  const negLogPeriod = f32(-Math.log(MAX_PERIOD));
  const freqs = Float32Array.from({ length: half }, (_, i) => Math.exp(f32(f32(negLogPeriod * i) / half)));
  const out = new Float32Array(t.length * dim);
  for (let b = 0; b < t.length; b++) {
    const time = f32(t[b]!);
    for (let i = 0; i < half; i++) {
      const arg = f32(time * freqs[i]!);
      out[b * dim + i] = Math.cos(arg);
      out[b * dim + half + i] = Math.sin(arg);
    }
  }
  return out;
}
