import type { Dim, GraphBuilder, Value } from '@dcae/core/onnx';

/** The two graphs of an autoencoder. */
export type AutoencoderPart = 'encoder' | 'decoder';

/**
 * Input and output names of every family's encoder and decoder graphs, compatible with optimum's
 * `vae_encoder` / `vae_decoder` ONNX exports. The part runner feeds and reads these names.
 */
export const ENCODER_IO = { input: 'sample', output: 'latent_sample' } as const;
export const DECODER_IO = { input: 'latent_sample', output: 'sample' } as const;

/** Compute and I/O dtype of a graph. */
export type GraphDType = 'float32' | 'float16';

/** The dtypes at a graph's boundary: `io` of its inputs and outputs, `dtype` of its compute. */
export interface BoundaryDTypes {
  /** @defaultValue 'float32' */
  readonly io?: GraphDType | undefined;
  /** @defaultValue 'float32' */
  readonly dtype?: GraphDType | undefined;
}

/** The graph input `name` in the I/O dtype, cast to the compute dtype. */
export function graphInput(
  g: GraphBuilder,
  name: string,
  shape: readonly Dim[],
  dtypes: BoundaryDTypes,
): Value {
  const x = g.input(name, dtypes.io ?? 'float32', shape);
  const dtype = dtypes.dtype ?? 'float32';
  return x.dtype === dtype ? x : g.root.cast(x, dtype);
}

/** `y` as the graph output `name`, cast to the I/O dtype. */
export function graphOutput(
  g: GraphBuilder,
  y: Value,
  name: string,
  shape: readonly Dim[],
  dtypes: BoundaryDTypes,
): void {
  const io = dtypes.io ?? 'float32';
  g.output(y.dtype === io ? y : g.root.cast(y, io), name, shape);
}
