/** The backbone architectures of the released diffusion models (configs only; see config.ts for parsing). */

/** What the network predicts: the noise ε (DiT, UViT) or the flow velocity (USiT). */
export type Prediction = 'epsilon' | 'velocity';

interface BackboneCommon {
  readonly hiddenSize: number;
  /** DiT: number of blocks. UViT: upstream's `depth` = depth/2 in-blocks + 1 mid-block + depth/2 out-blocks. */
  readonly depth: number;
  readonly numHeads: number;
  readonly patchSize: number;
  /** Latent channels. */
  readonly inChannels: number;
  /** Latent height = width. */
  readonly inputSize: number;
  /** Classes 0 … numClasses−1; the null class (for guidance) is `numClasses`. */
  readonly numClasses: number;
  /** > 0 means the label table has the extra null-class row used by classifier-free guidance. */
  readonly classDropoutProb: number;
  readonly mlpRatio: number;
  readonly prediction: Prediction;
  /** Prefix of the backbone's keys in the weights file, e.g. `diffusion_model.`. */
  readonly keyPrefix: string;
}

/** DiT (facebookresearch/DiT as copied into efficientvit `diffusioncore/models/dit.py`). */
export interface DitConfig extends BackboneCommon {
  readonly family: 'dit';
  /** Output channels 2C: ε̂ then the learned-range variance value. */
  readonly learnSigma: true;
}

/** UViT (efficientvit `diffusioncore/models/uvit.py`; USiT is the same network read as a velocity model). */
export interface UvitConfig extends BackboneCommon {
  readonly family: 'uvit';
  readonly qkvBias: boolean;
}

export type BackboneConfig = DitConfig | UvitConfig;
