import type { Module, Value } from '@dcae/core/onnx';
import { activation } from '../base/layers.js';
import { conv2d, dcUpBlock, efficientVitBlock, repeatChannels, resBlock, rmsNorm2d } from './blocks.js';
import type { DcAeConfig } from './config.js';
import type { StageTap } from './encoder.js';

/**
 * diffusers `Decoder.forward`: conv_in plus the channel-repeat shortcut, the up-block stages from
 * the deepest (an upsample first except in the last or an empty stage, then the blocks), norm_out,
 * the conv activation and conv_out. [B, latentChannels, h, w] → [B, inC, f·h, f·w], not clamped.
 */
export function buildDecoder(
  m: Module,
  z: Value,
  config: DcAeConfig,
  tap: StageTap = () => undefined,
): Value {
  const {
    blockTypes,
    blockOutChannels: widths,
    layersPerBlock: depths,
    qkvMultiscales,
    upsample,
  } = config.decoder;
  const { normTypes, actFns } = config.decoder;
  const n = widths.length;
  const c = config.latentChannels;

  let h = conv2d(m.child('conv_in'), z, c, widths[n - 1]!, { kernel: 3 });
  if (config.decoder.inShortcut) h = m.add(h, repeatChannels(m, z, c, widths[n - 1]! / c));
  tap('decoder.conv_in+in_shortcut', h);

  for (let s = n - 1; s >= 0; s--) {
    const depth = depths[s]!;
    if (depth === 0) continue;
    const stage = m.child('up_blocks').child(s);
    const width = widths[s]!;
    const hasUpsample = s < n - 1;
    if (hasUpsample)
      h = dcUpBlock(stage.child(0), h, widths[s + 1]!, width, { mode: upsample, shortcut: true });
    for (let j = 0; j < depth; j++) {
      const block = stage.child(hasUpsample ? j + 1 : j);
      h =
        blockTypes[s] === 'ResBlock'
          ? resBlock(block, h, width, { norm: normTypes[s]!, act: actFns[s]! })
          : efficientVitBlock(block, h, width, {
              headDim: config.attentionHeadDim,
              kernels: qkvMultiscales[s]!,
              norm: normTypes[s]!,
            });
    }
    tap(`decoder.up_blocks.${s}`, h);
  }

  // With an empty stage 0, conv_out is a DCUpBlock2d without shortcut that doubles the size.
  const head = depths[0]! > 0 ? widths[0]! : widths[1]!;
  h = rmsNorm2d(m.child('norm_out'), h, head);
  h = activation(m, h, config.decoder.convActFn);
  return depths[0]! > 0
    ? conv2d(m.child('conv_out'), h, head, config.inChannels, { kernel: 3 })
    : dcUpBlock(m.child('conv_out'), h, head, config.inChannels, { mode: upsample, shortcut: false });
}
