import { GraphBuilder } from '@dcae/core/onnx';
import type { OnnxModel, ParamResolver, Value } from '@dcae/core/onnx';
import type { DcAeConfig } from './config.js';
import { spatialCompressionRatio } from './config.js';
import { buildDecoder } from './decoder.js';
import { buildEncoder } from './encoder.js';

/** Input and output names, compatible with optimum's `vae_encoder` / `vae_decoder` ONNX exports. */
export const ENCODER_IO = { input: 'sample', output: 'latent_sample' } as const;
export const DECODER_IO = { input: 'latent_sample', output: 'sample' } as const;

export interface DcAeGraphOptions {
  /** Where the graph's weights come from (see `checkpointParams`). */
  readonly params: ParamResolver;
  /**
   * Also output every stage's activations, named like the golden fixtures' intermediates
   * (`encoder.conv_in`, `encoder.down_blocks.S`, `decoder.conv_in+in_shortcut`, `decoder.up_blocks.S`).
   * @defaultValue false
   */
  readonly intermediates?: boolean;
  /** Stored in the model's metadata_props. */
  readonly metadata?: Readonly<Record<string, string>>;
}

function graph(name: string, config: DcAeConfig, options: DcAeGraphOptions): GraphBuilder {
  const scaling = config.scalingFactor;
  return new GraphBuilder({
    name,
    params: options.params,
    metadata: {
      spatial_compression_ratio: String(spatialCompressionRatio(config)),
      latent_channels: String(config.latentChannels),
      ...(scaling === undefined ? {} : { scaling_factor: String(scaling) }),
      ...options.metadata,
    },
  });
}

const tapInto = (g: GraphBuilder, enabled: boolean | undefined) =>
  enabled ? (name: string, value: Value) => g.output(value, name, undefined) : undefined;

/** `sample` [B, inC, H, W] in [-1, 1] → `latent_sample` [B, c, H/f, W/f] (unscaled). */
export function buildEncoderGraph(config: DcAeConfig, options: DcAeGraphOptions): OnnxModel {
  const g = graph('dcae_encoder', config, options);
  const x = g.input(ENCODER_IO.input, 'float32', ['batch_size', config.inChannels, 'height', 'width']);
  const z = buildEncoder(g.root.child('encoder'), x, config, tapInto(g, options.intermediates));
  g.output(z, ENCODER_IO.output, ['batch_size', config.latentChannels, 'latent_height', 'latent_width']);
  return g.build();
}

/** `latent_sample` [B, c, h, w] (unscaled) → `sample` [B, inC, f·h, f·w], not clamped. */
export function buildDecoderGraph(config: DcAeConfig, options: DcAeGraphOptions): OnnxModel {
  const g = graph('dcae_decoder', config, options);
  const z = g.input(DECODER_IO.input, 'float32', [
    'batch_size',
    config.latentChannels,
    'latent_height',
    'latent_width',
  ]);
  const y = buildDecoder(g.root.child('decoder'), z, config, tapInto(g, options.intermediates));
  g.output(y, DECODER_IO.output, ['batch_size', config.inChannels, 'height', 'width']);
  return g.build();
}
