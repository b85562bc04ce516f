import type { MacCount } from '../base/types.js';
import type { SdVaeConfig } from './config.js';

/**
 * Analytic multiply-accumulate counts of one AutoencoderKL pass (batch 1), as `countMacs` counts
 * DC-AE: every convolution and the attention's projections and matmuls; norms and activations
 * are left out.
 */
export function countSdVaeMacs(config: SdVaeConfig, height: number, width: number): MacCount {
  const widths = config.blockOutChannels;
  const n = widths.length;
  const latent = config.latentChannels;
  const px = (s: number): number => (height / 2 ** s) * (width / 2 ** s);
  const conv = (inC: number, outC: number, k: number, pixels: number): number => inC * outC * k * k * pixels;
  const resnet = (inC: number, outC: number, pixels: number): number =>
    conv(inC, outC, 3, pixels) +
    conv(outC, outC, 3, pixels) +
    (inC === outC ? 0 : conv(inC, outC, 1, pixels));
  const c = widths[n - 1]!;
  const tokens = px(n - 1);
  // Two ResNets, plus q/k/v/out projections (4·C²·N) and q·kᵀ, softmax·v (2·N²·C).
  const mid =
    2 * resnet(c, c, tokens) +
    (config.midBlockAddAttention ? 4 * c * c * tokens + 2 * tokens * tokens * c : 0);

  let encoder = conv(config.inChannels, widths[0]!, 3, px(0)) + mid;
  widths.forEach((outC, s) => {
    const inC = s === 0 ? widths[0]! : widths[s - 1]!;
    encoder += resnet(inC, outC, px(s)) + (config.layersPerBlock - 1) * resnet(outC, outC, px(s));
    if (s < n - 1) encoder += conv(outC, outC, 3, px(s + 1));
  });
  encoder +=
    conv(c, 2 * latent, 3, tokens) + (config.useQuantConv ? conv(2 * latent, 2 * latent, 1, tokens) : 0);

  let decoder =
    (config.usePostQuantConv ? conv(latent, latent, 1, tokens) : 0) + conv(latent, c, 3, tokens) + mid;
  for (let s = n - 1; s >= 0; s--) {
    const inC = s === n - 1 ? c : widths[s + 1]!;
    const outC = widths[s]!;
    decoder += resnet(inC, outC, px(s)) + config.layersPerBlock * resnet(outC, outC, px(s));
    if (s > 0) decoder += conv(outC, outC, 3, px(s - 1));
  }
  decoder += conv(widths[0]!, config.outChannels, 3, px(0));
  return { encoder, decoder };
}
