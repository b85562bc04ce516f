import type { Module, Value } from '@dcae/core/onnx';
import type { DitConfig } from '../config.js';
import type { AttentionKernel } from './layers.js';
import {
  attention,
  labelEmbedding,
  layerNormNoAffine,
  linear,
  mlp,
  patchEmbed,
  unpatchify,
} from './layers.js';

/** Width of DiT's timestep sinusoid (fed to `t_embedder.mlp`). */
export const DIT_FREQUENCY_DIM = 256;

const LN_EPS = 1e-6;

/**
 * DiT `forward_without_cfg(x, t, y)` (efficientvit `diffusioncore/models/dit.py`, docs/model-spec.md §4.3) under
 * module `m` (the checkpoint prefix). Inputs: x [B, C, s, s], tFreq [B, 256] (the timestep
 * sinusoid, computed on the host), labels [B] int64. Output [B, 2C, s, s]: ε̂ then the variance value.
 */
export function buildDit(
  m: Module,
  x: Value,
  tFreq: Value,
  labels: Value,
  config: DitConfig,
  kernel: AttentionKernel = 'fused',
): Value {
  const { hiddenSize: dim, inChannels, patchSize: p } = config;
  const grid = config.inputSize / p;
  const tokens = grid * grid;
  const outChannels = 2 * inChannels;

  // Conditioning c = t_embedder(t) + y_embedder(y), [B, D]; every adaLN modulation reads SiLU(c).
  const tEmbedder = m.child('t_embedder').child('mlp');
  const tEmb = linear(
    tEmbedder.child(2),
    tEmbedder.silu(linear(tEmbedder.child(0), tFreq, DIT_FREQUENCY_DIM, dim)),
    dim,
    dim,
  );
  const rows = config.numClasses + (config.classDropoutProb > 0 ? 1 : 0);
  const c = m.add(tEmb, labelEmbedding(m.child('y_embedder'), labels, rows, dim));
  const siluC = m.silu(c);

  // Patch tokens + the stored 2-D sin-cos table, [B·L, D].
  const patches = patchEmbed(m.child('x_embedder'), x, { inChannels, dim, patchSize: p, tokens });
  let h = m.reshape(m.add(m.reshape(patches, [-1, tokens, dim]), m.param('pos_embed', [1, tokens, dim])), [
    -1,
    dim,
  ]);

  const ones = m.constant(new Array<number>(dim).fill(1)); // LayerNorm without affine parameters
  const mlpHidden = Math.floor(dim * config.mlpRatio);
  for (let i = 0; i < config.depth; i++) {
    const block = m.child('blocks').child(i);
    const [shiftMsa, scaleMsa, gateMsa, shiftMlp, scaleMlp, gateMlp] = modulation(block, siluC, dim, 6);
    const attnIn = modulate(
      block,
      layerNormNoAffine(block, h, ones, LN_EPS),
      shiftMsa!,
      scaleMsa!,
      tokens,
      dim,
    );
    const attnOut = attention(block.child('attn'), attnIn, {
      tokens,
      dim,
      heads: config.numHeads,
      qkvBias: true,
      kernel,
    });
    h = m.add(h, gated(block, attnOut, gateMsa!, tokens, dim));
    const mlpIn = modulate(
      block,
      layerNormNoAffine(block, h, ones, LN_EPS),
      shiftMlp!,
      scaleMlp!,
      tokens,
      dim,
    );
    h = m.add(
      h,
      gated(block, mlp(block.child('mlp'), mlpIn, dim, mlpHidden, 'tanh', kernel), gateMlp!, tokens, dim),
    );
  }

  const final = m.child('final_layer');
  const [shift, scale] = modulation(final, siluC, dim, 2);
  const normed = modulate(final, layerNormNoAffine(final, h, ones, LN_EPS), shift!, scale!, tokens, dim);
  const out = linear(final.child('linear'), normed, dim, p * p * outChannels);
  return unpatchify(m, out, { channels: outChannels, grid, patchSize: p });
}

/** `adaLN_modulation` = Sequential(SiLU, Linear(D, n·D)) chunked into n [B, 1, D] tensors. */
function modulation(m: Module, siluC: Value, dim: number, chunks: number): Value[] {
  const params = linear(m.child('adaLN_modulation').child(1), siluC, dim, chunks * dim); // [B, n·D]
  return m.split(m.unsqueeze(params, [1]), 2, new Array<number>(chunks).fill(dim));
}

/** x·(1 + scale) + shift with per-sample shift/scale [B, 1, D], on x [B·L, D]. */
function modulate(m: Module, x: Value, shift: Value, scale: Value, tokens: number, dim: number): Value {
  const x3 = m.reshape(x, [-1, tokens, dim]);
  const y = m.add(m.mul(x3, m.add(m.constant(1), scale)), shift);
  return m.reshape(y, [-1, dim]);
}

/** gate·x with a per-sample gate [B, 1, D], on x [B·L, D]. */
function gated(m: Module, x: Value, gate: Value, tokens: number, dim: number): Value {
  return m.reshape(m.mul(m.reshape(x, [-1, tokens, dim]), gate), [-1, dim]);
}
