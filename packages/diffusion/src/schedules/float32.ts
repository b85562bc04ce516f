/**
 * float32 arithmetic as PyTorch does it on CPU: every operation rounds its result to float32.
 * Used where upstream computes a schedule in float32, so that the grids match it bit for bit
 * (up to the last-bit differences of `exp`/`log` between libm implementations).
 */
export const f32 = Math.fround;

/**
 * `torch.linspace(start, end, steps)` in float32: the first half counts up from `start`, the second
 * half down from `end` (ATen's symmetric linspace kernel), so both endpoints are exact.
 */
export function linspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const s = f32(start);
  const e = f32(end);
  const step = steps > 1 ? f32(f32(e - s) / (steps - 1)) : 0;
  const halfway = Math.floor(steps / 2);
  return Float32Array.from({ length: steps }, (_, i) =>
    i < halfway ? f32(s + f32(step * i)) : f32(e - f32(step * (steps - i - 1))),
  );
}

/** `torch.logaddexp(a, b)` in float32. */
export function logAddExp(a: number, b: number): number {
  const max = Math.max(a, b);
  return f32(max + f32(Math.log1p(f32(Math.exp(f32(-Math.abs(f32(a - b))))))));
}
