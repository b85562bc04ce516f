/**
 * TAESANA (madebyollin/taesd `F32Encoder` / `F32Decoder` with 32 latent channels): a tiny conv
 * autoencoder for the f32c32 latents of Sana's DC-AE, used for fast previews and approximate
 * decodes. Each network is one `nn.Sequential`; a layer's index is its state_dict key prefix
 * (`4.conv.0.weight`). The layer lists below are data; the graph builder and the weight binder
 * both read them. See docs/taesana.md.
 */

/** A layer of the Sequential. `block`: `Block(c, c)` = conv-ReLU-conv-ReLU-conv, identity skip, ReLU after the sum. */
export type TaesanaLayer =
  | {
      readonly kind: 'conv';
      readonly in: number;
      readonly out: number;
      readonly stride: 1 | 2;
      readonly bias: boolean;
    }
  | { readonly kind: 'relu' }
  | { readonly kind: 'block'; readonly channels: number }
  | { readonly kind: 'clamp' }
  | { readonly kind: 'upsample' };

export const TAESANA_LATENT_CHANNELS = 32;
export const TAESANA_COMPRESSION = 32;
export const TAESANA_FILES = { encoder: 'taesana_encoder.pth', decoder: 'taesana_decoder.pth' } as const;

/**
 * Sana's diffusion space is the DC-AE f32c32-sana latent × 0.41407, and TAESANA works in that
 * space (docs/taesana.md explains how this was decided). dcae's latents are unscaled everywhere,
 * so the TAESANA graphs divide their encoder output by it and multiply their decoder input by it.
 */
export const TAESANA_LATENT_SCALE = 0.41407;

const conv = (inC: number, outC: number, stride: 1 | 2 = 1, bias = true): TaesanaLayer => ({
  kind: 'conv',
  in: inC,
  out: outC,
  stride,
  bias,
});
const relu: TaesanaLayer = { kind: 'relu' };
const up: TaesanaLayer = { kind: 'upsample' };
const block = (c: number, count = 1): TaesanaLayer[] =>
  Array.from({ length: count }, () => ({ kind: 'block', channels: c }));

/** Five stride-2 convs: 32× down. The first two convs have a bias, the later stride-2 convs none. */
export const TAESANA_ENCODER: readonly TaesanaLayer[] = [
  conv(3, 32, 2),
  relu,
  conv(32, 64, 2),
  relu,
  ...block(64),
  conv(64, 64, 2, false),
  ...block(64, 3),
  conv(64, 64, 2, false),
  ...block(64, 3),
  conv(64, 64, 2, false),
  ...block(64, 3),
  conv(64, TAESANA_LATENT_CHANNELS),
];

/** 3·tanh(x/3) on the latent, then five nearest ×2 upsamplings, each followed by a bias-free conv. */
export const TAESANA_DECODER: readonly TaesanaLayer[] = [
  { kind: 'clamp' },
  conv(TAESANA_LATENT_CHANNELS, 256),
  relu,
  ...block(256, 3),
  up,
  conv(256, 128, 1, false),
  ...block(128, 3),
  up,
  conv(128, 64, 1, false),
  ...block(64, 3),
  up,
  conv(64, 64, 1, false),
  ...block(64, 3),
  up,
  conv(64, 64, 1, false),
  ...block(64, 3),
  up,
  conv(64, 64, 1, false),
  ...block(64),
  conv(64, 3),
];

/** Every tensor of one network's state_dict: key → shape, in order. */
export function taesanaStateDict(layers: readonly TaesanaLayer[]): Map<string, readonly number[]> {
  const keys = new Map<string, readonly number[]>();
  layers.forEach((layer, i) => {
    if (layer.kind === 'conv') {
      keys.set(`${i}.weight`, [layer.out, layer.in, 3, 3]);
      if (layer.bias) keys.set(`${i}.bias`, [layer.out]);
    } else if (layer.kind === 'block') {
      for (const j of [0, 2, 4]) {
        keys.set(`${i}.conv.${j}.weight`, [layer.channels, layer.channels, 3, 3]);
        keys.set(`${i}.conv.${j}.bias`, [layer.channels]);
      }
    }
  });
  return keys;
}

/** Learned parameters of one network. */
export function taesanaParameters(layers: readonly TaesanaLayer[]): number {
  let total = 0;
  for (const shape of taesanaStateDict(layers).values()) total += shape.reduce((a, b) => a * b, 1);
  return total;
}
