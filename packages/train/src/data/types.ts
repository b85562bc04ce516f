import type { HostTensor } from '@dcae/core';
import type { RgbImage } from '@dcae/autoencoder';

/** Where training batches come from (an image folder or a `.safetensors` sample file). */
export interface TrainData {
  /** What the data is, for logs and the trainer state: e.g. `image folder photos/ (120 train, 4 held out)`. */
  readonly description: string;
  /** Number of training items (images or samples). */
  readonly count: number;
  /** Batch of `step` (0-based): float32 [B, 3, S, S] in [−1, 1]; a pure function of (seed, step). */
  batch(step: number, signal?: AbortSignal): Promise<HostTensor<'float32'>>;
  /** Held-out images as uint8 references, in a fixed order (possibly empty). */
  evalImages(signal?: AbortSignal): Promise<readonly RgbImage[]>;
  /** Whether the held-out images are kept out of training (false: evaluation reuses training samples). */
  readonly heldOutIsSeparate: boolean;
  /** Images skipped so far because they could not be read or decoded. */
  readonly skipped: number;
  close(): Promise<void>;
}
