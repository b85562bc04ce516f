import type { Module, Value } from '@dcae/core/onnx';

/**
 * Transformer pieces shared by DiT and UViT. Token activations are kept as a [B·L, D] matrix so
 * every Linear is one Gemm on the checkpoint's [out, in] weight (transB), with no transposed copy.
 */

/** `nn.Linear` (keys `<path>.weight` [out, in], `<path>.bias` [out]) on x [N, in] → [N, out]. */
export function linear(m: Module, x: Value, inFeatures: number, outFeatures: number, bias = true): Value {
  const weight = m.param('weight', [outFeatures, inFeatures]);
  return m.gemm(x, weight, bias ? m.param('bias', [outFeatures]) : undefined, { transB: true });
}

/** `nn.LayerNorm(dim)` over the last axis, with its affine weight/bias from the checkpoint. */
export function layerNorm(m: Module, x: Value, dim: number, epsilon: number): Value {
  return m.layerNorm(x, m.param('weight', [dim]), m.param('bias', [dim]), { epsilon });
}

/** `nn.LayerNorm(dim, elementwise_affine=False)`; `ones` is a [dim] vector of ones shared by the graph. */
export function layerNormNoAffine(m: Module, x: Value, ones: Value, epsilon: number): Value {
  return m.layerNorm(x, ones, undefined, { epsilon });
}

/**
 * Which kernels the backbone graphs use: `'fused'` is one onnxruntime `MultiHeadAttention` per block
 * and `FastGelu` for DiT's tanh GELU (com.microsoft; CPU, wasm and WebGPU providers);
 * `'standard'` only default-domain ops (attention as MatMul → Softmax → MatMul over [B, H, L, hd]),
 * for runtimes without onnxruntime's contrib ops.
 */
export type AttentionKernel = 'fused' | 'standard';

/**
 * Multi-head self-attention (timm `Attention`; UViT's `Attention`), x [B·L, D] → [B·L, D]. The qkv
 * output is split as (3, heads, head_dim) along the feature axis; softmax((q·scale)·kᵀ)·v; heads
 * are concatenated head-major before `proj`.
 */
export function attention(
  m: Module,
  x: Value,
  spec: { tokens: number; dim: number; heads: number; qkvBias: boolean; kernel?: AttentionKernel },
): Value {
  const { tokens, dim, heads } = spec;
  const headDim = dim / heads;
  const qkv = linear(m.child('qkv'), x, dim, 3 * dim, spec.qkvBias); // [B·L, 3D]
  let merged: Value; // [B·L, D], heads concatenated
  if ((spec.kernel ?? 'fused') === 'fused') {
    // q, k, v are the three D-wide thirds of qkv, each already (heads, head_dim) head-major as
    // MultiHeadAttention takes them: no transposes around the kernel (docs/benchmarks.md, backbone).
    const [q, k, v] = m.split(m.reshape(qkv, [-1, tokens, 3 * dim]), 2, [dim, dim, dim]) as [
      Value,
      Value,
      Value,
    ];
    merged = m.reshape(m.multiHeadAttention(q, k, v, { heads, scale: headDim ** -0.5 }), [-1, dim]);
  } else {
    const split = m.transpose(m.reshape(qkv, [-1, tokens, 3, heads, headDim]), [2, 0, 3, 1, 4]); // [3, B, H, L, hd]
    const [q, k, v] = m.split(split, 0, [1, 1, 1]).map((part) => m.squeeze(part, [0])) as [
      Value,
      Value,
      Value,
    ];
    const scores = m.matMul(m.mul(q, m.constant(headDim ** -0.5)), m.transpose(k, [0, 1, 3, 2])); // [B, H, L, L]
    const out = m.matMul(m.softmax(scores, -1), v); // [B, H, L, hd]
    merged = m.reshape(m.transpose(out, [0, 2, 1, 3]), [-1, dim]);
  }
  return linear(m.child('proj'), merged, dim, dim);
}

/**
 * timm `Mlp`: fc1 → GELU → fc2. With the fused kernels the tanh GELU is onnxruntime's `FastGelu`
 * (its CPU optimiser fuses the erf pattern of `gelu()`, but no tanh pattern).
 */
export function mlp(
  m: Module,
  x: Value,
  dim: number,
  hidden: number,
  gelu: 'none' | 'tanh',
  kernel: AttentionKernel = 'fused',
): Value {
  const fc1 = linear(m.child('fc1'), x, dim, hidden);
  const h = gelu === 'tanh' && kernel === 'fused' ? m.fastGelu(fc1) : m.gelu(fc1, gelu);
  return linear(m.child('fc2'), h, hidden, dim);
}

/**
 * timm `PatchEmbed` (conv k = s = p, `<path>.proj`) on x [B, C, H, W] → tokens [B·L, D], row-major
 * over the (H/p)×(W/p) grid.
 */
export function patchEmbed(
  m: Module,
  x: Value,
  spec: { inChannels: number; dim: number; patchSize: number; tokens: number },
): Value {
  const { inChannels, dim, patchSize: p, tokens } = spec;
  const proj = m.child('proj');
  const y = proj.conv(x, proj.param('weight', [dim, inChannels, p, p]), proj.param('bias', [dim]), {
    strides: [p, p],
  });
  return m.reshape(m.transpose(m.reshape(y, [0, dim, tokens]), [0, 2, 1]), [-1, dim]);
}

/**
 * Inverse of the patch embedding: tokens [B·L, p·p·C] (features ordered (p1, p2, C)) →
 * [B, C, h·p, w·p] (DiT `unpatchify`, UViT's `B (h w) (p1 p2 C) -> B C (h p1) (w p2)`).
 */
export function unpatchify(
  m: Module,
  x: Value,
  spec: { channels: number; grid: number; patchSize: number },
): Value {
  const { channels, grid, patchSize: p } = spec;
  const blocks = m.reshape(x, [-1, grid, grid, p, p, channels]);
  return m.reshape(m.transpose(blocks, [0, 5, 1, 3, 2, 4]), [-1, channels, grid * p, grid * p]);
}

/** `nn.Embedding` lookup (`<path>.embedding_table.weight` [rows, D]) of int64 labels [B] → [B, D]. */
export function labelEmbedding(m: Module, labels: Value, rows: number, dim: number): Value {
  return m.gather(m.param('embedding_table.weight', [rows, dim]), labels, 0);
}
