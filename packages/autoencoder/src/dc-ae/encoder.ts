import { conv2d } from '../base/layers.js';
import type { Module, Value } from '@dcae/core/onnx';
import { channelAverage, dcDownBlock, efficientVitBlock, resBlock } from './blocks.js';
import type { DcAeConfig } from './config.js';

/** Called with each stage's output, for debug graphs that expose intermediates. */
export type StageTap = (name: string, value: Value) => void;

/**
 * diffusers `Encoder.forward`: conv_in, the down-block stages (blocks, then a downsample except in
 * the last or an empty stage), conv_out plus the channel-averaging shortcut.
 * [B, inC, H, W] → [B, latentChannels, H/f, W/f]; the latent is not scaled.
 */
export function buildEncoder(
  m: Module,
  x: Value,
  config: DcAeConfig,
  tap: StageTap = () => undefined,
): Value {
  const {
    blockTypes,
    blockOutChannels: widths,
    layersPerBlock: depths,
    qkvMultiscales,
    downsample,
  } = config.encoder;
  const n = widths.length;

  // With an empty stage 0, conv_in is a DCDownBlock2d without shortcut that already halves the size.
  let h =
    depths[0]! > 0
      ? conv2d(m.child('conv_in'), x, config.inChannels, widths[0]!, { kernel: 3 })
      : dcDownBlock(m.child('conv_in'), x, config.inChannels, widths[1]!, {
          mode: downsample,
          shortcut: false,
        });
  tap('encoder.conv_in', h);

  for (let s = 0; s < n; s++) {
    const depth = depths[s]!;
    if (depth === 0) continue;
    const stage = m.child('down_blocks').child(s);
    const c = widths[s]!;
    for (let i = 0; i < depth; i++) {
      h =
        blockTypes[s] === 'ResBlock'
          ? resBlock(stage.child(i), h, c, { norm: 'rms_norm', act: 'silu' })
          : efficientVitBlock(stage.child(i), h, c, {
              headDim: config.attentionHeadDim,
              kernels: qkvMultiscales[s]!,
              norm: 'rms_norm',
            });
    }
    if (s < n - 1)
      h = dcDownBlock(stage.child(depth), h, c, widths[s + 1]!, { mode: downsample, shortcut: true });
    tap(`encoder.down_blocks.${s}`, h);
  }

  const last = widths[n - 1]!;
  const latent = conv2d(m.child('conv_out'), h, last, config.latentChannels, { kernel: 3 });
  if (!config.encoder.outShortcut) return latent;
  return m.add(latent, channelAverage(m, h, last, last / config.latentChannels));
}
