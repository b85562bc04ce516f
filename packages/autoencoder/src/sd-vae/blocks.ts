import type { Module, Value } from '@dcae/core/onnx';
import type { Activation } from '../base/layers.js';
import { activation } from '../base/layers.js';

/**
 * AutoencoderKL building blocks as ONNX subgraphs, each mirroring the diffusers module of the same
 * name (`models/resnet.py`, `models/attention_processor.py`, `models/upsampling.py`,
 * `models/downsampling.py`) and reading its weights from the module path it is given. Tensors are
 * NCHW float32; batch, height and width are dynamic.
 */

/** ε of every GroupNorm of the VAE (diffusers `resnet_eps=1e-6`, also the attention's group_norm). */
const GROUP_NORM_EPS = 1e-6;

/** The checkpoint tensor `<m>.<name>` as float32 (F16 / BF16 checkpoints are cast in the graph). */
function weight(m: Module, name: string, shape: readonly number[]): Value {
  const w = m.param(name, shape);
  return w.dtype === 'float32' ? w : m.cast(w, 'float32');
}

/** `nn.Conv2d(inC, outC, k, stride, padding=k//2)`; `pads` overrides the padding ([top, left, bottom, right]). */
export function conv2d(
  m: Module,
  x: Value,
  inC: number,
  outC: number,
  spec: { kernel: number; stride?: number; pads?: readonly number[] },
): Value {
  const { kernel: k, stride = 1 } = spec;
  const p = Math.floor(k / 2);
  return m.conv(x, weight(m, 'weight', [outC, inC, k, k]), weight(m, 'bias', [outC]), {
    strides: [stride, stride],
    pads: spec.pads ?? [p, p, p, p],
  });
}

/**
 * `nn.GroupNorm(groups, C, eps=1e-6)`: each (image, group) normalised over its C/G channels and all
 * pixels, then a per-channel affine. The statistics are an InstanceNormalization of the input
 * viewed as [B, G, C/G·H·W] (unit scale, zero shift).
 */
export function groupNorm(m: Module, x: Value, channels: number, groups: number): Value {
  const grouped = m.reshape(x, [0, groups, -1]);
  const ones = m.constant(new Array<number>(groups).fill(1));
  const zeros = m.constant(new Array<number>(groups).fill(0));
  const [normalised] = m.op('InstanceNormalization', [grouped, ones, zeros], {
    epsilon: { kind: 'float', value: GROUP_NORM_EPS },
  });
  const h = m.reshape(normalised!, m.shape(x));
  const perChannel = (name: string): Value => m.reshape(weight(m, name, [channels]), [channels, 1, 1]);
  return m.add(m.mul(h, perChannel('weight')), perChannel('bias'));
}

/**
 * `ResnetBlock2D` (pre-norm, no time embedding, output scale 1):
 * shortcut(x) + conv2(act(norm2(conv1(act(norm1(x)))))), with a 1×1 `conv_shortcut` when the
 * width changes. [B, inC, H, W] → [B, outC, H, W].
 */
export function resnetBlock(
  m: Module,
  x: Value,
  inC: number,
  outC: number,
  spec: { groups: number; act: Activation },
): Value {
  const { groups, act } = spec;
  let h = activation(m, groupNorm(m.child('norm1'), x, inC, groups), act);
  h = conv2d(m.child('conv1'), h, inC, outC, { kernel: 3 });
  h = activation(m, groupNorm(m.child('norm2'), h, outC, groups), act);
  h = conv2d(m.child('conv2'), h, outC, outC, { kernel: 3 });
  const shortcut = inC === outC ? x : conv2d(m.child('conv_shortcut'), x, inC, outC, { kernel: 1 });
  return m.add(shortcut, h);
}

/**
 * The mid block's `Attention` (one head of width C over the H·W pixels, `AttnProcessor2_0`):
 * x + to_out(softmax(q kᵀ / √C) v), with q, k, v = to_q/to_k/to_v(group_norm(x)) per pixel.
 * to_q | to_k | to_v run as one 1×1 conv. [B, C, H, W] → same.
 */
export function midAttention(m: Module, x: Value, c: number, groups: number): Value {
  const h = groupNorm(m.child('group_norm'), x, c, groups);
  const names = ['to_q', 'to_k', 'to_v'];
  const w = m.concat(
    names.map((n) => weight(m.child(n), 'weight', [c, c])),
    0,
  );
  const b = m.concat(
    names.map((n) => weight(m.child(n), 'bias', [c])),
    0,
  );
  const qkv = m.reshape(m.conv(h, m.reshape(w, [3 * c, c, 1, 1]), b), [0, 3 * c, -1]); // [B, 3C, N]
  const [q, k, v] = m.split(qkv, 1, [c, c, c]) as [Value, Value, Value];
  const tokens = (t: Value): Value => m.transpose(t, [0, 2, 1]); // [B, N, C]
  const scores = m.matMul(m.mul(tokens(q), m.constant(1 / Math.sqrt(c))), k); // [B, N, N]: q_n · k_m / √C
  const attended = m.matMul(m.softmax(scores, -1), tokens(v)); // [B, N, C]
  const spatial = m.reshape(m.transpose(attended, [0, 2, 1]), m.shape(x)); // [B, C, H, W]
  const out = m.child('to_out').child(0);
  const projected = m.conv(
    spatial,
    m.reshape(weight(out, 'weight', [c, c]), [c, c, 1, 1]),
    weight(out, 'bias', [c]),
  );
  return m.add(projected, x);
}

/** `UNetMidBlock2D`: ResNet, attention (unless disabled), ResNet, at constant width. */
export function midBlock(
  m: Module,
  x: Value,
  c: number,
  spec: { groups: number; act: Activation; attention: boolean },
): Value {
  const resnets = m.child('resnets');
  let h = resnetBlock(resnets.child(0), x, c, c, spec);
  if (spec.attention) h = midAttention(m.child('attentions').child(0), h, c, spec.groups);
  return resnetBlock(resnets.child(1), h, c, c, spec);
}

/**
 * `Downsample2D(use_conv=True, padding=0)`: zero pad one row at the bottom and one column at the
 * right (`F.pad(x, (0, 1, 0, 1))`), then a 3×3 conv of stride 2 without padding. [B, C, H, W] →
 * [B, C, H/2, W/2].
 */
export function downsample(m: Module, x: Value, c: number): Value {
  return conv2d(m.child('conv'), x, c, c, { kernel: 3, stride: 2, pads: [0, 0, 1, 1] });
}

/** `Upsample2D(use_conv=True)`: nearest ×2 (source index ⌊dst / 2⌋), then a 3×3 conv. */
export function upsample(m: Module, x: Value, c: number): Value {
  const doubled = m.resize(x, {
    scales: [1, 1, 2, 2],
    mode: 'nearest',
    coordinateTransformationMode: 'asymmetric',
    nearestMode: 'floor',
  });
  return conv2d(m.child('conv'), doubled, c, c, { kernel: 3 });
}
