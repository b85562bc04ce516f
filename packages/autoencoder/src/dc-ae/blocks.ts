import type { DType } from '@dcae/core';
import type { Module, Value } from '@dcae/core/onnx';
import type { DcAeActivation, DcAeNormType } from './config.js';
import { activation, conv2d, weight } from '../base/layers.js';

/**
 * DC-AE building blocks as ONNX subgraphs. Each mirrors the diffusers module of the same name
 * (`src/diffusers/models/autoencoders/autoencoder_dc.py` @ 58eb52c) and reads its weights from the
 * module path it is given, so `m.path` is the checkpoint key prefix. Tensors are NCHW; batch,
 * height and width are dynamic, channel counts static.
 *
 * Precision: activations have the dtype of the block input (float32, or float16 in half-precision
 * graphs). Weights stored in another dtype are cast to it. The RMSNorm statistics and the LiteMLA
 * core always run in float32 (docs/model-spec.md §2.6: ε = 1e-15 is 0 in float16, and x² and the token
 * sums overflow it); in float32 graphs those islands add no node.
 */

const NORM_EPS = 1e-5;
const ATTENTION_EPS = 1e-15;

/** `x` as `dtype`, without a node when it already is. */
function as(m: Module, x: Value, dtype: DType): Value {
  return x.dtype === dtype ? x : m.cast(x, dtype);
}

/** A bias-free `nn.Linear` weight [out, in] applied per pixel, as a 1×1 conv. */
function linearAsConv(m: Module, x: Value, inFeatures: number, outFeatures: number, bias: boolean): Value {
  const w = m.reshape(weight(m, 'weight', [outFeatures, inFeatures], x.dtype), [
    outFeatures,
    inFeatures,
    1,
    1,
  ]);
  return m.conv(x, w, bias ? weight(m, 'bias', [outFeatures], x.dtype) : undefined);
}

/**
 * RMSNorm over channels with weight and bias (diffusers `RMSNorm(C, 1e-5, bias=True)` applied
 * channels-last): y = x / √(mean_c x² + ε) · w + b. The normalisation runs in float32.
 */
export function rmsNorm2d(m: Module, x: Value, channels: number): Value {
  const x32 = as(m, x, 'float32');
  const meanSquare = m.reduceMean(m.mul(x32, x32), [1], true);
  const h = as(m, m.div(x32, m.sqrt(m.add(meanSquare, m.constant(NORM_EPS)))), x.dtype);
  const perChannel = (name: string): Value =>
    m.reshape(weight(m, name, [channels], x.dtype), [channels, 1, 1]);
  return m.add(m.mul(h, perChannel('weight')), perChannel('bias'));
}

/**
 * ResBlock: x + norm(conv2(act(conv1(x)))). [B, C, H, W] → [B, C, H, W].
 * conv2 has no bias; a BatchNorm after it is folded into it when the weights are bound
 * (`foldBatchNorm`), which gives conv2 a bias `conv2.bias` that the checkpoint does not have.
 */
export function resBlock(
  m: Module,
  x: Value,
  c: number,
  spec: { norm: DcAeNormType; act: DcAeActivation },
): Value {
  const folded = spec.norm === 'batch_norm';
  let h = conv2d(m.child('conv1'), x, c, c, { kernel: 3 });
  h = activation(m, h, spec.act);
  h = conv2d(m.child('conv2'), h, c, c, { kernel: 3, bias: folded });
  if (!folded) h = rmsNorm2d(m.child('norm'), h, c);
  return m.add(h, x);
}

export interface AttentionSpec {
  readonly headDim: number;
  /** Kernel sizes of the multi-scale qkv branches (sana: [5]). */
  readonly kernels: readonly number[];
  /** Norm after `to_out`: the decoder stage's norm type (always RMSNorm in the encoder). */
  readonly norm: DcAeNormType;
}

/**
 * LiteMLA, diffusers `SanaMultiscaleLinearAttention` + `SanaMultiscaleAttnProcessor2_0`:
 * ReLU linear attention over G groups of head dim d, plus the residual. [B, C, H, W] → same.
 */
export function liteMla(m: Module, x: Value, c: number, spec: AttentionSpec): Value {
  const d = spec.headDim;
  const heads = Math.floor(c / d);
  const inner = heads * d;
  // to_q | to_k | to_v are the row thirds of one fused 1×1 conv whose output channels are
  // interleaved per head ([q_j | k_j | v_j] for head j), not semantic q, k and v.
  const rows = ['to_q', 'to_k', 'to_v'].map((name) => weight(m.child(name), 'weight', [inner, c], x.dtype));
  const qkv = m.conv(x, m.reshape(m.concat(rows, 0), [3 * inner, c, 1, 1])); // [B, 3·inner, H, W]

  const branches = [qkv];
  spec.kernels.forEach((k, i) => {
    const branch = m.child('to_qkv_multiscale').child(i);
    const local = conv2d(branch.child('proj_in'), qkv, 3 * inner, 3 * inner, {
      kernel: k,
      groups: 3 * inner,
      bias: false,
    });
    branches.push(
      conv2d(branch.child('proj_out'), local, 3 * inner, 3 * inner, {
        kernel: 1,
        groups: 3 * heads,
        bias: false,
      }),
    );
  });
  const groups = heads * branches.length;
  // Plain branch first, then each multi-scale one; the attention core runs in float32.
  const all = as(m, branches.length > 1 ? m.concat(branches, 1) : qkv, 'float32');

  // [B, G, 3d, N], N = H·W in row-major pixel order; q, k, v are d rows each.
  const grouped = m.reshape(all, [0, groups, 3 * d, -1]);
  const [q0, k0, v] = m.split(grouped, 2, [d, d, d]) as [Value, Value, Value];
  const q = m.relu(q0);
  const k = m.relu(k0);
  const eps = m.constant(ATTENTION_EPS);

  // The reference takes the linear form when N > d and the quadratic one otherwise; both exist
  // in the graph and ONNX `If` picks one from the runtime token count.
  const tokens = m.mul(m.shape(x, 2, 3), m.shape(x, 3, 4));
  const useLinear = m.squeeze(m.greater(tokens, m.constant([d], 'int64')), [0]);
  const [attended] = m.if(
    useLinear,
    (b) => {
      // out = (v′ kᵀ) q with v′ = [v; 1]: the last row is the normaliser Σ_m k_m·q_n.
      const vPadded = b.pad(v, [0, 0, 0, 0, 0, 0, 1, 0], 1); // [B, G, d+1, N]
      const vk = b.matMul(vPadded, b.transpose(k, [0, 1, 3, 2])); // [B, G, d+1, d]
      const out = b.matMul(vk, q); // [B, G, d+1, N]
      const [num, den] = b.split(out, 2, [d, 1]) as [Value, Value];
      return [b.div(num, b.add(den, eps))];
    },
    (b) => {
      // scores[m, n] = k_m·q_n, each column normalised by its sum; out = v · scores.
      const scores = b.matMul(b.transpose(k, [0, 1, 3, 2]), q); // [B, G, N, N]
      const normalised = b.div(scores, b.add(b.reduceSum(scores, [2], true), eps));
      return [b.matMul(v, normalised)]; // [B, G, d, N]
    },
  );
  const spatial = m.concat([m.shape(x, 0, 1), m.constant([groups * d], 'int64'), m.shape(x, 2, 4)], 0);
  const h = as(m, m.reshape(attended!, spatial), x.dtype); // [B, G·d, H, W]
  // to_out has no bias; a BatchNorm norm_out is folded into it like conv2 of a ResBlock.
  const folded = spec.norm === 'batch_norm';
  let projected = linearAsConv(m.child('to_out'), h, groups * d, c, folded);
  if (!folded) projected = rmsNorm2d(m.child('norm_out'), projected, c);
  return m.add(projected, x);
}

/**
 * GLUMBConv (diffusers, in `sana_transformer.py`): 1×1 C→8C + SiLU, depthwise 3×3, value ·
 * SiLU(gate), 1×1 4C→C, RMSNorm, plus the residual. Always SiLU and RMSNorm.
 */
export function gluMbConv(m: Module, x: Value, c: number): Value {
  const hidden = 4 * c;
  let h = m.silu(conv2d(m.child('conv_inverted'), x, c, 2 * hidden, { kernel: 1 }));
  h = conv2d(m.child('conv_depth'), h, 2 * hidden, 2 * hidden, { kernel: 3, groups: 2 * hidden });
  const [value, gate] = m.split(h, 1, [hidden, hidden]) as [Value, Value];
  h = m.mul(value, m.silu(gate));
  h = conv2d(m.child('conv_point'), h, hidden, c, { kernel: 1, bias: false });
  return m.add(rmsNorm2d(m.child('norm'), h, c), x);
}

/** EfficientViTBlock: LiteMLA then GLUMBConv, each residual. */
export function efficientVitBlock(m: Module, x: Value, c: number, spec: AttentionSpec): Value {
  return gluMbConv(m.child('conv_out'), liteMla(m.child('attn'), x, c, spec), c);
}

/**
 * The pixel (un)shuffles move data only, and how they move it decides their cost: onnxruntime's
 * Transpose has fast paths for a permutation that moves one axis (whole rows at a time, or one
 * interleave); a permutation that moves two axes at once, and `DepthToSpace`, measure slower
 * (`pnpm bench pixel-shuffle`). So each is written as two one-axis Transposes with a Reshape between
 * them (which keeps the optimiser from merging them back into one). On onnxruntime-node and in
 * wasm the unshuffle is 1.3–1.9× and the shuffle 1.3–1.6× faster than the one-Transpose and
 * `DepthToSpace` forms, writing of the output included (docs/benchmarks.md,
 * "Pixel (un)shuffle"); the results are bit-identical.
 */

/** `[d0, …]` of `x` from `start` to `end` (int64), for building reshape targets. */
function dims(m: Module, x: Value, start: number, end: number): Value {
  return m.shape(x, start, end);
}

/** torch `pixel_unshuffle(x, 2)`: out[:, c·4 + 2i + j, y, x] = in[:, c, 2y + i, 2x + j] (not ONNX SpaceToDepth's order). */
export function pixelUnshuffle(m: Module, x: Value, channels: number): Value {
  const two = m.constant([2], 'int64');
  const batch = dims(m, x, 0, 1);
  const [h, w] = [m.div(dims(m, x, 2, 3), two), m.div(dims(m, x, 3, 4), two)];
  // [B, C, H/2, 2(i), W] → [B, C, 2(i), H/2, W]: moves whole rows.
  const rows = m.reshape(x, m.concat([batch, m.constant([channels], 'int64'), h, two, dims(m, x, 3, 4)], 0));
  const byRow = m.transpose(rows, [0, 1, 3, 2, 4]);
  // [B, 2C (c, i), H/2, W/2, 2(j)] → [B, 2C, 2(j), H/2, W/2]: one de-interleave.
  const columns = m.reshape(byRow, m.concat([batch, m.constant([2 * channels], 'int64'), h, w, two], 0));
  const byColumn = m.transpose(columns, [0, 1, 4, 2, 3]);
  return m.reshape(byColumn, m.concat([batch, m.constant([4 * channels], 'int64'), h, w], 0));
}

/**
 * torch `pixel_shuffle(x, 2)` (= DepthToSpace CRD) for `x` with `channels` = 4·C′ channels:
 * out[:, c, 2y + i, 2x + j] = in[:, c·4 + 2i + j, y, x].
 */
export function pixelShuffle(m: Module, x: Value, channels: number): Value {
  const two = m.constant([2], 'int64');
  const batch = dims(m, x, 0, 1);
  const [h, w] = [dims(m, x, 2, 3), dims(m, x, 3, 4)];
  // [B, 2C′ (c, i), 2(j), H, W] → [B, 2C′, H, W, 2(j)]: one interleave.
  const split = m.reshape(x, m.concat([batch, m.constant([channels / 2], 'int64'), two, h, w], 0));
  const interleaved = m.transpose(split, [0, 1, 3, 4, 2]);
  // [B, C′, 2(i), H, 2W] → [B, C′, H, 2(i), 2W]: moves whole rows.
  const rows = m.reshape(
    interleaved,
    m.concat([batch, m.constant([channels / 4], 'int64'), two, h, m.mul(w, two)], 0),
  );
  const shuffled = m.transpose(rows, [0, 1, 3, 2, 4]);
  return m.reshape(
    shuffled,
    m.concat([batch, m.constant([channels / 4], 'int64'), m.mul(h, two), m.mul(w, two)], 0),
  );
}

/** Mean over consecutive groups of `group` channels: [B, C, H, W] → [B, C / group, H, W]. */
export function channelAverage(m: Module, x: Value, channels: number, group: number): Value {
  const shape = m.concat(
    [m.shape(x, 0, 1), m.constant([channels / group, group], 'int64'), m.shape(x, 2, 4)],
    0,
  );
  return m.reduceMean(m.reshape(x, shape), [2], false);
}

/** torch `repeat_interleave(x, repeats, dim=1)`: channel k becomes channels k·R … k·R + R − 1. */
export function repeatChannels(m: Module, x: Value, channels: number, repeats: number): Value {
  const copies = m.expand(m.unsqueeze(x, [2]), [1, 1, repeats, 1, 1]); // [B, C, R, H, W]
  const shape = m.concat([m.shape(x, 0, 1), m.constant([channels * repeats], 'int64'), m.shape(x, 2, 4)], 0);
  return m.reshape(copies, shape);
}

/**
 * DCDownBlock2d: conv 3×3 + pixel-unshuffle, or conv 3×3 stride 2; with the shortcut,
 * + channel-average(pixel-unshuffle(x)). [B, inC, H, W] → [B, outC, H/2, W/2].
 */
export function dcDownBlock(
  m: Module,
  x: Value,
  inChannels: number,
  outChannels: number,
  spec: { mode: 'pixel_unshuffle' | 'conv'; shortcut: boolean },
): Value {
  const conv = m.child('conv');
  const h =
    spec.mode === 'pixel_unshuffle'
      ? pixelUnshuffle(m, conv2d(conv, x, inChannels, outChannels / 4, { kernel: 3 }), outChannels / 4)
      : conv2d(conv, x, inChannels, outChannels, { kernel: 3, stride: 2 });
  if (!spec.shortcut) return h;
  const shortcut = channelAverage(
    m,
    pixelUnshuffle(m, x, inChannels),
    4 * inChannels,
    (4 * inChannels) / outChannels,
  );
  return m.add(h, shortcut);
}

/**
 * DCUpBlock2d: conv 3×3 + pixel-shuffle, or nearest ×2 + conv 3×3; with the shortcut,
 * + pixel-shuffle(repeat-interleave(x)). [B, inC, H, W] → [B, outC, 2H, 2W].
 */
export function dcUpBlock(
  m: Module,
  x: Value,
  inChannels: number,
  outChannels: number,
  spec: { mode: 'pixel_shuffle' | 'interpolate'; shortcut: boolean },
): Value {
  const conv = m.child('conv');
  const h =
    spec.mode === 'interpolate'
      ? conv2d(conv, nearest2x(m, x), inChannels, outChannels, { kernel: 3 })
      : pixelShuffle(m, conv2d(conv, x, inChannels, 4 * outChannels, { kernel: 3 }), 4 * outChannels);
  if (!spec.shortcut) return h;
  const shortcut = pixelShuffle(
    m,
    repeatChannels(m, x, inChannels, (4 * outChannels) / inChannels),
    4 * outChannels,
  );
  return m.add(h, shortcut);
}

/** torch `F.interpolate(scale_factor=2, mode="nearest")`: source index ⌊dst / 2⌋. */
function nearest2x(m: Module, x: Value): Value {
  return m.resize(x, {
    scales: [1, 1, 2, 2],
    mode: 'nearest',
    coordinateTransformationMode: 'asymmetric',
    nearestMode: 'floor',
  });
}
