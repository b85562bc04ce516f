import type { MacCount } from '../base/types.js';
import type { DcAeConfig, DcAeStagesConfig } from './config.js';

/**
 * Analytic multiply-accumulate counts of one DC-AE pass, from the config alone: every convolution
 * and the attention matmuls (in the branch the reference takes for that token count). Norms,
 * activations, shortcuts and reshapes are left out (they are O(C·H·W), not O(C²·H·W)). For the
 * roofline figures of the benchmarks and for `dcae info`.
 */
export type { MacCount };

/** MACs of encode and decode for one `height`×`width` image (batch 1). */
export function countMacs(config: DcAeConfig, height: number, width: number): MacCount {
  return { encoder: encoderMacs(config, height, width), decoder: decoderMacs(config, height, width) };
}

const conv = (inC: number, outC: number, kernel: number, pixels: number, groups = 1): number =>
  (inC / groups) * outC * kernel * kernel * pixels;

/** Pixels of stage `s` (stage 0 = full resolution). */
const stagePixels = (height: number, width: number, s: number): number =>
  (height / 2 ** s) * (width / 2 ** s);

function blockMacs(config: DcAeConfig, stages: DcAeStagesConfig, s: number, pixels: number): number {
  const c = stages.blockOutChannels[s]!;
  if (stages.blockTypes[s] === 'ResBlock') return 2 * conv(c, c, 3, pixels);
  // EfficientViT block: LiteMLA then GLUMBConv.
  const d = config.attentionHeadDim;
  const inner = Math.floor(c / d) * d;
  const kernels = stages.qkvMultiscales[s]!;
  let macs = conv(c, 3 * inner, 1, pixels);
  for (const k of kernels) macs += conv(3 * inner, 3 * inner, k, pixels, 3 * inner) + 3 * inner * d * pixels;
  const groups = (inner / d) * (1 + kernels.length);
  // Linear form: [v; 1]·kᵀ then ·q, (d+1)·d·N each; quadratic form: kᵀq then v·A, d·N² each.
  const attention = pixels > d ? 2 * (d + 1) * d * pixels : 2 * d * pixels * pixels;
  macs += groups * attention;
  macs += conv(groups * d, c, 1, pixels);
  macs += conv(c, 8 * c, 1, pixels) + conv(8 * c, 8 * c, 3, pixels, 8 * c) + conv(4 * c, c, 1, pixels);
  return macs;
}

function encoderMacs(config: DcAeConfig, height: number, width: number): number {
  const { blockOutChannels: widths, layersPerBlock: depths, downsample } = config.encoder;
  const n = widths.length;
  const px = (s: number): number => stagePixels(height, width, s);
  const down = (inC: number, outC: number, s: number): number =>
    downsample === 'pixel_unshuffle' ? conv(inC, outC / 4, 3, px(s)) : conv(inC, outC, 3, px(s + 1));
  let macs =
    depths[0]! > 0 ? conv(config.inChannels, widths[0]!, 3, px(0)) : down(config.inChannels, widths[1]!, 0);
  for (let s = 0; s < n; s++) {
    if (depths[s] === 0) continue;
    macs += depths[s]! * blockMacs(config, config.encoder, s, px(s));
    if (s < n - 1) macs += down(widths[s]!, widths[s + 1]!, s);
  }
  return macs + conv(widths[n - 1]!, config.latentChannels, 3, px(n - 1));
}

function decoderMacs(config: DcAeConfig, height: number, width: number): number {
  const { blockOutChannels: widths, layersPerBlock: depths, upsample } = config.decoder;
  const n = widths.length;
  const px = (s: number): number => stagePixels(height, width, s);
  // Upsample into stage s (resolution of s) from stage s + 1.
  const up = (inC: number, outC: number, s: number): number =>
    upsample === 'interpolate' ? conv(inC, outC, 3, px(s)) : conv(inC, 4 * outC, 3, px(s + 1));
  let macs = conv(config.latentChannels, widths[n - 1]!, 3, px(n - 1));
  for (let s = n - 1; s >= 0; s--) {
    if (depths[s] === 0) continue;
    if (s < n - 1) macs += up(widths[s + 1]!, widths[s]!, s);
    macs += depths[s]! * blockMacs(config, config.decoder, s, px(s));
  }
  const head = depths[0]! > 0 ? widths[0]! : widths[1]!;
  return macs + (depths[0]! > 0 ? conv(head, config.inChannels, 3, px(0)) : up(head, config.inChannels, 0));
}
