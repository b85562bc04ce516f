import type { DcAeConfig } from '@dcae/autoencoder';

/**
 * A DcAeConfig as diffusers' `AutoencoderDC` config.json (the field names of its `__init__`), for
 * checkpoints whose input had no diffusers config (original efficientvit format). A diffusers input
 * keeps its own config.json byte for byte instead.
 */
export function dcAeConfigToDiffusersJson(config: DcAeConfig): Record<string, unknown> {
  const { encoder, decoder } = config;
  return {
    _class_name: 'AutoencoderDC',
    _diffusers_version: '0.32.0',
    in_channels: config.inChannels,
    latent_channels: config.latentChannels,
    attention_head_dim: config.attentionHeadDim,
    encoder_block_types: [...encoder.blockTypes],
    decoder_block_types: [...decoder.blockTypes],
    encoder_block_out_channels: [...encoder.blockOutChannels],
    decoder_block_out_channels: [...decoder.blockOutChannels],
    encoder_layers_per_block: [...encoder.layersPerBlock],
    decoder_layers_per_block: [...decoder.layersPerBlock],
    encoder_qkv_multiscales: encoder.qkvMultiscales.map((k) => [...k]),
    decoder_qkv_multiscales: decoder.qkvMultiscales.map((k) => [...k]),
    upsample_block_type: decoder.upsample === 'interpolate' ? 'interpolate' : 'pixel_shuffle',
    downsample_block_type: encoder.downsample === 'pixel_unshuffle' ? 'pixel_unshuffle' : 'Conv',
    decoder_norm_types: [...decoder.normTypes],
    decoder_act_fns: [...decoder.actFns],
    encoder_out_shortcut: encoder.outShortcut,
    decoder_in_shortcut: decoder.inShortcut,
    decoder_conv_act_fn: decoder.convActFn,
    ...(config.scalingFactor !== undefined ? { scaling_factor: config.scalingFactor } : {}),
  };
}
