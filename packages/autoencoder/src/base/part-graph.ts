import { invariant } from '@dcae/core';
import type { SafetensorsFile } from '@dcae/core';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { AutoencoderPart, GraphDType } from './io.js';
import type { WeightBinding } from './weights.js';
import { checkpointParams, inlineInitializers } from './weights.js';

/** What a family's graph builder gets: where weights come from, and the dtypes. */
export interface FamilyGraphOptions {
  readonly params: ParamResolver;
  readonly intermediates?: boolean | undefined;
  readonly metadata: Readonly<Record<string, string>>;
  readonly dtype: GraphDType;
  readonly io?: GraphDType | undefined;
}

/** A family's graph builder: the ONNX graph of one part from its config (held by the closure). */
export type PartGraphBuilder = (
  part: AutoencoderPart,
  options: FamilyGraphOptions,
) => OnnxModel | Promise<OnnxModel>;

/** A loaded checkpoint and the family builder that turns it into graphs. */
export interface PartWeights {
  readonly name: string;
  readonly weightsFile: string;
  readonly file: SafetensorsFile;
  readonly binding: WeightBinding;
  readonly build: PartGraphBuilder;
}

/**
 * A family's checkpoint: one file for every part (DC-AE, SD-VAE), or one file per part, each with
 * its own binding of that part's tensors (e.g. TAESANA's `taesana_encoder.pth` and
 * `taesana_decoder.pth`). The runner reads each part's weights as external data of its own file.
 */
export type ModelWeights =
  PartWeights | { readonly byPart: Readonly<Partial<Record<AutoencoderPart, PartWeights>>> };

/** The loaded parts, in encoder, decoder order. */
export function loadedParts(weights: ModelWeights): readonly AutoencoderPart[] {
  if (!('byPart' in weights)) return weights.binding.parts;
  return (['encoder', 'decoder'] as const).filter((p) => weights.byPart[p] !== undefined);
}

/** The checkpoint `part` reads. */
export function weightsOfPart(weights: ModelWeights, part: AutoencoderPart): PartWeights {
  if (!('byPart' in weights)) return weights;
  const w = weights.byPart[part];
  invariant(w !== undefined, () => `no weights for the ${part}`);
  return w;
}

/** Every checkpoint file, once each. */
export function weightFiles(weights: ModelWeights): readonly PartWeights[] {
  if (!('byPart' in weights)) return [weights];
  return loadedParts(weights).map((p) => weightsOfPart(weights, p));
}

/**
 * The graph of `part` in `dtype`: weights as external data into the checkpoint (fp16: the
 * converted weights inline, `onTensor` after each), unless `params` says otherwise.
 */
export async function partGraph(
  weights: PartWeights,
  part: AutoencoderPart,
  options: {
    dtype: GraphDType;
    params?: ParamResolver | undefined;
    intermediates?: boolean | undefined;
    io?: GraphDType | undefined;
    onTensor?: ((done: number, total: number) => void) | undefined;
  },
): Promise<OnnxModel> {
  const { file, binding, weightsFile, name } = weights;
  const params =
    options.params ??
    checkpointParams(
      binding,
      await inlineInitializers(file, binding, part, options.dtype, options.onTensor),
      weightsFile,
    );
  return weights.build(part, {
    params,
    intermediates: options.intermediates,
    metadata: { model: name },
    dtype: options.dtype,
    io: options.io,
  });
}
