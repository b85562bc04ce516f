/**
 * Learning rate at `step` (0-based, the step about to run): linear warm-up from lr/warmup to lr over
 * `warmupSteps`, then cosine decay to `lr · minLrRatio` at `totalSteps`.
 */
export function learningRate(
  step: number,
  options: {
    readonly lr: number;
    readonly warmupSteps: number;
    readonly totalSteps: number;
    readonly minLrRatio: number;
  },
): number {
  const { lr, warmupSteps, totalSteps, minLrRatio } = options;
  if (step < warmupSteps) return (lr * (step + 1)) / warmupSteps;
  const span = Math.max(1, totalSteps - warmupSteps);
  const t = Math.min(1, (step - warmupSteps) / span);
  const min = lr * minLrRatio;
  return min + (lr - min) * 0.5 * (1 + Math.cos(Math.PI * t));
}
