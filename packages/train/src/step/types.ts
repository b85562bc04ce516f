import type { DcAeConfig } from '@dcae/autoencoder';
import type { HostTensor } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import type { DiscriminatorSpec } from '../gan/discriminator.js';

/** Loss terms and their weights, e.g. { l1: 1 } or { l1: 1, ssim: 0.2 }. Names: 'l1' | 'mse' | 'ssim' | 'msssim' | 'gradient' | 'frequency' | 'perceptual' | 'gan'. */
export type LossWeights = Readonly<Partial<Record<LossName, number>>>;
export type LossName = 'l1' | 'mse' | 'ssim' | 'msssim' | 'gradient' | 'frequency' | 'perceptual' | 'gan';

export interface OptimizerSpec {
  readonly kind: 'adamw' | 'sgd';
  readonly betas?: readonly [number, number]; // adamw, default [0.9, 0.999]
  readonly eps?: number; // default 1e-8
  readonly weightDecay?: number; // decoupled (AdamW), default 0
  readonly clipGradNorm?: number; // global-norm clipping, off when undefined
}

export interface TrainStepOptions {
  /** Model weights by checkpoint key in the DIFFUSERS layout (float32), e.g. from loadAutoencoder's files. */
  readonly weights: ReadonlyMap<string, HostTensor>;
  /** Parsed DcAeConfig (from @dcae/autoencoder). */
  readonly config: DcAeConfig;
  readonly batch: number;
  readonly height: number;
  readonly width: number;
  readonly loss: LossWeights;
  /** Key globs of trainable tensors (diffusers key names), e.g. ['decoder.conv_out.*', 'decoder.norm_out.*']; ['*'] = all. */
  readonly trainable: readonly string[];
  readonly optimizer: OptimizerSpec;
  /** Optional user-supplied perceptual-net weights (safetensors path or tensors); error PERCEPTUAL_WEIGHTS_MISSING when 'perceptual' is requested without them. */
  readonly perceptualWeights?: ReadonlyMap<string, HostTensor>;
  /**
   * The PatchGAN discriminator of the `gan` term (used only when `loss.gan` > 0): its spec (defaults
   * filled in), and either its weights or the seed that initialises them. Its optimizer is AdamW
   * with `spec.betas` and the generator optimizer's eps and weight decay, at the same learning rate.
   */
  readonly discriminator?: {
    readonly spec?: Partial<DiscriminatorSpec>;
    readonly weights?: ReadonlyMap<string, HostTensor>;
    readonly seed?: number;
  };
}

/** What one discriminator step reported (steps where the GAN term is active). */
export interface DiscriminatorStepResult {
  /** Hinge loss mean(relu(1 − D(x))) + mean(relu(1 + D(x̂))). */
  readonly loss: number;
  /** Mean patch logit on the real batch and on the reconstruction. */
  readonly real: number;
  readonly fake: number;
  readonly gradNorm: number;
}

/** The discriminator's weights and AdamW state (saved beside a checkpoint). */
export interface DiscriminatorState {
  readonly spec: DiscriminatorSpec;
  readonly weights: ReadonlyMap<string, HostTensor>;
  readonly optimizer: OptimizerState;
}

export interface StepResult {
  readonly loss: number; // weighted total
  readonly terms: Readonly<Record<string, number>>; // each loss term, unweighted
  readonly gradNorm?: number; // global grad norm before clipping
  readonly discriminator?: DiscriminatorStepResult; // when the GAN term trained the discriminator this step
}

export interface OptimizerState {
  readonly step: number; // number of completed optimizer steps
  readonly tensors: ReadonlyMap<string, HostTensor>; // e.g. 'exp_avg.<key>', 'exp_avg_sq.<key>'
}

export interface TrainStepRunner {
  readonly trainableKeys: readonly string[];
  readonly frozenKeys: readonly string[];
  /** One optimizer step on batch [B,3,H,W] float32 in [-1,1] (B,H,W as given at creation). */
  step(
    batch: HostTensor,
    options: { readonly lr: number; readonly signal?: AbortSignal },
  ): Promise<StepResult>;
  /** Every weight (trainable ones updated, frozen ones the exact input objects), by diffusers key. */
  weights(): ReadonlyMap<string, HostTensor>;
  optimizerState(): OptimizerState;
  restoreOptimizerState(state: OptimizerState): void;
  /** decode(encode(x)) with the current weights, any batch/size the model accepts (used for eval/previews). */
  reconstruct(batch: HostTensor): Promise<HostTensor>;
  /** The discriminator's weights and optimizer state (runners with a `gan` term), else undefined. */
  discriminatorState?(): DiscriminatorState | undefined;
  /** Restores what `discriminatorState()` returned (names, shapes and spec checked). */
  restoreDiscriminatorState?(state: DiscriminatorState): void;
  dispose(): Promise<void>;
}

export declare function createTrainStepRunner(
  runtime: RuntimeV1,
  options: TrainStepOptions,
): Promise<TrainStepRunner>;
