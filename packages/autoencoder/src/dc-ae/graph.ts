import { GraphBuilder } from '@dcae/core/onnx';
import type { OnnxModel, ParamResolver, Value } from '@dcae/core/onnx';
import type { DcAeConfig } from './config.js';
import { spatialCompressionRatio } from './config.js';
import { buildDecoder } from './decoder.js';
import { buildEncoder } from './encoder.js';

import type { GraphDType } from '../base/io.js';
import { DECODER_IO, ENCODER_IO, graphInput, graphOutput } from '../base/io.js';

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
  /**
   * Weights and activations: `'float16'` keeps the RMSNorm statistics and the attention core in
   * float32 (Cast islands, see `blocks.ts`). Recorded as metadata `dtype`.
   * @defaultValue 'float32'
   */
  readonly dtype?: GraphDType;
  /** The input's and output's dtype; casts at the graph boundary when it differs from `dtype`. @defaultValue 'float32' */
  readonly io?: GraphDType;
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
      dtype: options.dtype ?? 'float32',
      ...options.metadata,
    },
  });
}

const tapInto = (g: GraphBuilder, enabled: boolean | undefined) =>
  enabled ? (name: string, value: Value) => g.output(value, name, undefined) : undefined;

/** `sample` [B, inC, H, W] in [-1, 1] → `latent_sample` [B, c, H/f, W/f] (unscaled). */
export function buildEncoderGraph(config: DcAeConfig, options: DcAeGraphOptions): OnnxModel {
  const g = graph('dcae_encoder', config, options);
  const x = graphInput(g, ENCODER_IO.input, ['batch_size', config.inChannels, 'height', 'width'], options);
  const z = buildEncoder(g.root.child('encoder'), x, config, tapInto(g, options.intermediates));
  const shape = ['batch_size', config.latentChannels, 'latent_height', 'latent_width'];
  graphOutput(g, z, ENCODER_IO.output, shape, options);
  return g.build();
}

/** `latent_sample` [B, c, h, w] (unscaled) → `sample` [B, inC, f·h, f·w], not clamped. */
export function buildDecoderGraph(config: DcAeConfig, options: DcAeGraphOptions): OnnxModel {
  const g = graph('dcae_decoder', config, options);
  const shape = ['batch_size', config.latentChannels, 'latent_height', 'latent_width'];
  const z = graphInput(g, DECODER_IO.input, shape, options);
  const y = buildDecoder(g.root.child('decoder'), z, config, tapInto(g, options.intermediates));
  graphOutput(g, y, DECODER_IO.output, ['batch_size', config.inChannels, 'height', 'width'], options);
  return g.build();
}
