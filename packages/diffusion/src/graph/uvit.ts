import type { Module, Value } from '@dcae/core/onnx';
import type { UvitConfig } from '../config.js';
import type { AttentionKernel } from './layers.js';
import { attention, labelEmbedding, layerNorm, linear, mlp, patchEmbed, unpatchify } from './layers.js';

const LN_EPS = 1e-5;

/** Tokens before the patches: [label, time]. */
const EXTRAS = 2;

/**
 * UViT `forward_without_cfg(x, t, y)` (efficientvit `diffusioncore/models/uvit.py`, docs/model-spec.md §4.4)
 * under module `m` (the checkpoint prefix). Inputs: x [B, C, s, s], timeToken [B, D] (the
 * sinusoid of t, computed on the host; no time MLP), labels [B] int64. Output [B, C, s, s].
 */
export function buildUvit(
  m: Module,
  x: Value,
  timeToken: Value,
  labels: Value,
  config: UvitConfig,
  kernel: AttentionKernel = 'fused',
): Value {
  const { hiddenSize: dim, inChannels, patchSize: p } = config;
  const grid = config.inputSize / p;
  const tokens = grid * grid + EXTRAS;
  const rows = config.numClasses + (config.classDropoutProb > 0 ? 1 : 0);

  const patches = patchEmbed(m.child('patch_embed'), x, {
    inChannels,
    dim,
    patchSize: p,
    tokens: grid * grid,
  });
  const labelToken = labelEmbedding(m.child('label_emb'), labels, rows, dim);
  const sequence = m.concat(
    [m.unsqueeze(labelToken, [1]), m.unsqueeze(timeToken, [1]), m.reshape(patches, [-1, grid * grid, dim])],
    1,
  ); // [B, L+2, D]
  let h = m.reshape(m.add(sequence, m.param('pos_embed', [1, tokens, dim])), [-1, dim]);

  const blockSpec = {
    tokens,
    dim,
    heads: config.numHeads,
    qkvBias: config.qkvBias,
    mlpRatio: config.mlpRatio,
    kernel,
  };
  const skips: Value[] = [];
  const half = Math.floor(config.depth / 2);
  for (let i = 0; i < half; i++) {
    h = block(m.child('in_blocks').child(i), h, blockSpec);
    skips.push(h);
  }
  h = block(m.child('mid_block'), h, blockSpec);
  for (let i = 0; i < half; i++) {
    const out = m.child('out_blocks').child(i);
    // Long skip, LIFO: out_blocks.0 pairs with the last in-block.
    h = linear(out.child('skip_linear'), m.concat([h, skips.pop()!], 1), 2 * dim, dim);
    h = block(out, h, blockSpec);
  }

  h = layerNorm(m.child('norm'), h, dim, LN_EPS);
  const pred = linear(m.child('decoder_pred'), h, dim, p * p * inChannels); // [B·(L+2), p·p·C]
  const patchTokens = m.slice(m.reshape(pred, [-1, tokens, p * p * inChannels]), [EXTRAS], [tokens], [1]);
  return unpatchify(m, m.reshape(patchTokens, [-1, p * p * inChannels]), {
    channels: inChannels,
    grid,
    patchSize: p,
  });
}

/** Pre-norm block: x += Attn(LN(x)); x += MLP(LN(x)), erf GELU. */
function block(
  m: Module,
  x: Value,
  spec: {
    tokens: number;
    dim: number;
    heads: number;
    qkvBias: boolean;
    mlpRatio: number;
    kernel: AttentionKernel;
  },
): Value {
  const { dim } = spec;
  const h = m.add(x, attention(m.child('attn'), layerNorm(m.child('norm1'), x, dim, LN_EPS), spec));
  const hidden = Math.floor(dim * spec.mlpRatio);
  return m.add(h, mlp(m.child('mlp'), layerNorm(m.child('norm2'), h, dim, LN_EPS), dim, hidden, 'none'));
}
