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
