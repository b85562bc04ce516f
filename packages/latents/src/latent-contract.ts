import { formatLatentMetadata } from '@dcae/autoencoder';
import type { LatentMetadata } from '@dcae/autoencoder';

/**
 * The latent file contract of docs/latent-format.md (`dcae.*` keys, what `dcae encode` writes into
 * a `.safetensors` file), for latents stored by `dcae latents`. Every sample's `.json`, every
 * commit record and the manifest's dataset line carry it as `latentMetadata`, verbatim: the same
 * keys, the same meanings, so `save_file({"latent": z}, path, metadata=sample["latentMetadata"])`
 * in Python, or `parseLatentMetadata` in TypeScript, reads them as a dcae latent file's.
 *
 * How the flat fields of the `.json` relate to it (docs/latents.md, "Formats"):
 * - `scaled: true` ⇔ `dcae.latent_space` = `diffusion`, multiplied by `dcae.scaling_factor`;
 * - `model` (the resolved name, `org/name@revision` for Hub models) ⇔ `dcae.model`, with a pinned
 *   40-hex commit split off into `dcae.revision`;
 * - `dtype` is the STORED dtype of the `.npy` (`fp32`/`fp16`); `dcae.dtype` is, as the contract
 *   says, the precision the encoder computed in (absent when the model does not say);
 * - `dcae.original_size` is never set: latents are centre crops, nothing is padded.
 */
export interface LatentContractInput {
  /** The resolved model name (`ShardModel.name`). */
  readonly modelName: string;
  readonly scalingFactor: number | undefined;
  /** Whether the stored values were multiplied by `scalingFactor`. */
  readonly scaled: boolean;
  /** The precision the model computed in, when known. */
  readonly computeDtype?: LatentMetadata['dtype'];
}

const COMMIT = /^[0-9a-f]{40}$/i;

/** The contract's `dcae.*` strings for a stored latent. */
export function latentContractMetadata(input: LatentContractInput): Record<string, string> {
  const at = input.modelName.lastIndexOf('@');
  const revision = at > 0 ? input.modelName.slice(at + 1) : '';
  const pinned = COMMIT.test(revision);
  return formatLatentMetadata({
    model: pinned ? input.modelName.slice(0, at) : input.modelName,
    ...(pinned ? { revision } : {}),
    space: input.scaled ? 'diffusion' : 'autoencoder',
    ...(input.scalingFactor !== undefined ? { scalingFactor: input.scalingFactor } : {}),
    ...(input.computeDtype !== undefined ? { dtype: input.computeDtype } : {}),
  });
}
