import { GraphBuilder } from '@dcae/core/onnx';
import type { Module, OnnxModel, ParamResolver, Value } from '@dcae/core/onnx';
import { DECODER_IO, ENCODER_IO, graphInput, graphOutput } from '../base/io.js';
import type { GraphDType } from '../base/io.js';
import { conv2d, downsample, groupNorm, midBlock, resnetBlock, upsample } from './blocks.js';
import type { SdVaeConfig } from './config.js';
import { sdVaeCompressionRatio } from './config.js';

/**
 * The encoder and decoder graphs of a diffusers `AutoencoderKL` (`models/autoencoders/vae.py`
 * `Encoder` / `Decoder`, `autoencoder_kl.py`). Module paths are the checkpoint keys. Inputs and
 * outputs are named as the DC-AE graphs' (optimum's `vae_encoder` / `vae_decoder`).
 */
export interface SdVaeGraphOptions {
  readonly params: ParamResolver;
  /** Also output every stage's activations (`encoder.conv_in`, `encoder.down_blocks.i`, `encoder.mid_block`, …). */
  readonly intermediates?: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
  /** Input and output dtype (compute is float32). @defaultValue 'float32' */
  readonly io?: GraphDType;
}

type Tap = ((name: string, value: Value) => void) | undefined;

function graph(name: string, config: SdVaeConfig, options: SdVaeGraphOptions): GraphBuilder {
  return new GraphBuilder({
    name,
    params: options.params,
    metadata: {
      architecture: 'AutoencoderKL',
      spatial_compression_ratio: String(sdVaeCompressionRatio(config)),
      latent_channels: String(config.latentChannels),
      scaling_factor: String(config.scalingFactor),
      ...(config.shiftFactor === undefined ? {} : { shift_factor: String(config.shiftFactor) }),
      dtype: 'float32',
      ...options.metadata,
    },
  });
}

const tapInto = (g: GraphBuilder, enabled: boolean | undefined): Tap =>
  enabled ? (name, value) => g.output(value, name, undefined) : undefined;

/** GroupNorm, SiLU (always SiLU here, whatever `act_fn` says), 3×3 conv. */
function head(m: Module, x: Value, inC: number, outC: number, groups: number): Value {
  const h = m.silu(groupNorm(m.child('conv_norm_out'), x, inC, groups));
  return conv2d(m.child('conv_out'), h, inC, outC, { kernel: 3 });
}

/**
 * `Encoder` + `quant_conv` + the posterior's mean: conv_in, the down blocks (ResNets, stride-2
 * conv except in the last), the mid block, GroupNorm + SiLU + conv_out to 2·c moments; the first
 * c channels are the mean (`latent_dist.mode()`), the rest the log-variance, which is dropped.
 */
export function encodeSdVae(m: Module, x: Value, config: SdVaeConfig, tap?: Tap): Value {
  const e = m.child('encoder');
  const widths = config.blockOutChannels;
  const spec = { groups: config.normNumGroups, act: config.act };
  let h = conv2d(e.child('conv_in'), x, config.inChannels, widths[0]!, { kernel: 3 });
  tap?.('encoder.conv_in', h);
  widths.forEach((outC, i) => {
    const block = e.child('down_blocks').child(i);
    let inC = i === 0 ? widths[0]! : widths[i - 1]!;
    for (let j = 0; j < config.layersPerBlock; j++) {
      h = resnetBlock(block.child('resnets').child(j), h, inC, outC, spec);
      inC = outC;
    }
    if (i < widths.length - 1) h = downsample(block.child('downsamplers').child(0), h, outC);
    tap?.(`encoder.down_blocks.${i}`, h);
  });
  const c = widths.at(-1)!;
  h = midBlock(e.child('mid_block'), h, c, { ...spec, attention: config.midBlockAddAttention });
  tap?.('encoder.mid_block', h);
  const latent = config.latentChannels;
  let moments = head(e, h, c, 2 * latent, config.normNumGroups);
  if (config.useQuantConv)
    moments = conv2d(m.child('quant_conv'), moments, 2 * latent, 2 * latent, { kernel: 1 });
  return m.slice(moments, [0], [latent], [1]);
}

/**
 * `post_quant_conv` + `Decoder`: conv_in, the mid block, the up blocks (layers_per_block + 1
 * ResNets, nearest ×2 + conv except in the last), GroupNorm + SiLU + conv_out.
 */
export function decodeSdVae(m: Module, z: Value, config: SdVaeConfig, tap?: Tap): Value {
  const latent = config.latentChannels;
  const spec = { groups: config.normNumGroups, act: config.act };
  const h0 = config.usePostQuantConv
    ? conv2d(m.child('post_quant_conv'), z, latent, latent, { kernel: 1 })
    : z;
  const d = m.child('decoder');
  const reversed = [...config.blockOutChannels].reverse();
  let h = conv2d(d.child('conv_in'), h0, latent, reversed[0]!, { kernel: 3 });
  tap?.('decoder.conv_in', h);
  h = midBlock(d.child('mid_block'), h, reversed[0]!, { ...spec, attention: config.midBlockAddAttention });
  tap?.('decoder.mid_block', h);
  reversed.forEach((outC, i) => {
    const block = d.child('up_blocks').child(i);
    let inC = i === 0 ? reversed[0]! : reversed[i - 1]!;
    for (let j = 0; j <= config.layersPerBlock; j++) {
      h = resnetBlock(block.child('resnets').child(j), h, inC, outC, spec);
      inC = outC;
    }
    if (i < reversed.length - 1) h = upsample(block.child('upsamplers').child(0), h, outC);
    tap?.(`decoder.up_blocks.${i}`, h);
  });
  return head(d, h, reversed.at(-1)!, config.outChannels, config.normNumGroups);
}

/** `sample` [B, inC, H, W] in [-1, 1] → `latent_sample` [B, c, H/f, W/f]: the posterior mean, unscaled. */
export function buildSdVaeEncoderGraph(config: SdVaeConfig, options: SdVaeGraphOptions): OnnxModel {
  const g = graph('sd_vae_encoder', config, options);
  // Compute is float32 whatever `options` holds: only the I/O dtype is passed on.
  const x = graphInput(g, ENCODER_IO.input, ['batch_size', config.inChannels, 'height', 'width'], {
    io: options.io,
  });
  const z = encodeSdVae(g.root, x, config, tapInto(g, options.intermediates));
  graphOutput(
    g,
    z,
    ENCODER_IO.output,
    ['batch_size', config.latentChannels, 'latent_height', 'latent_width'],
    options,
  );
  return g.build();
}

/** `latent_sample` [B, c, h, w] (unscaled) → `sample` [B, outC, f·h, f·w], not clamped. */
export function buildSdVaeDecoderGraph(config: SdVaeConfig, options: SdVaeGraphOptions): OnnxModel {
  const g = graph('sd_vae_decoder', config, options);
  const shape = ['batch_size', config.latentChannels, 'latent_height', 'latent_width'];
  const z = graphInput(g, DECODER_IO.input, shape, { io: options.io });
  const y = decodeSdVae(g.root, z, config, tapInto(g, options.intermediates));
  graphOutput(g, y, DECODER_IO.output, ['batch_size', config.outChannels, 'height', 'width'], options);
  return g.build();
}
