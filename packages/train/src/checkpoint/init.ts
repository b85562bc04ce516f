import { createRng, numel } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { dcAeCheckpointLayout } from '@dcae/autoencoder';
import type { DcAeConfig } from '@dcae/autoencoder';

/**
 * Fresh weights for a DC-AE architecture (`--init random --seed S`), every key of the diffusers
 * checkpoint layout:
 * - conv and linear weights and biases: PyTorch's default, uniform(±1/√fan_in);
 * - norm weights 1, biases 0; BatchNorm running mean 0, variance 1, `num_batches_tracked` 0 (int64);
 * - residual branches start near zero (docs/training-loop.md, "Fresh models"): the last norm of every
 *   ResBlock, attention and GLUMBConv branch gets weight `residualScale`, and the convs that run
 *   beside a shortcut (down/up-sampling convs, `encoder.conv_out` with the out shortcut,
 *   `decoder.conv_in` with the in shortcut) are scaled by it. At step 0 the model is then its
 *   shortcut paths, and training grows the branches from there.
 * The stream is seeded: the same config, seed and scale give the same bytes.
 */
export function randomDcAeWeights(
  config: DcAeConfig,
  seed: number,
  residualScale = 1e-3,
): Map<string, HostTensor> {
  const rng = createRng(seed);
  const out = new Map<string, HostTensor>();
  const branchNorm =
    /^(encoder|decoder)\.(down|up)_blocks\.\d+\.\d+\.(norm|attn\.norm_out|conv_out\.norm)\.weight$/;
  const samplerConv = /^(encoder\.down_blocks\.\d+\.\d+\.conv|decoder\.up_blocks\.\d+\.0\.conv)\.weight$/;
  const beside = (key: string): boolean =>
    samplerConv.test(key) ||
    (config.encoder.outShortcut && key === 'encoder.conv_out.weight') ||
    (config.decoder.inShortcut && key === 'decoder.conv_in.weight');
  const { params } = dcAeCheckpointLayout(config);
  const fanIn = new Map<string, number>();
  for (const p of params) {
    if (p.key.endsWith('.weight') && p.shape.length >= 2) {
      fanIn.set(
        p.key.slice(0, -'.weight'.length),
        p.shape.slice(1).reduce((a, b) => a * b, 1),
      );
    }
  }
  for (const p of params) {
    const { key, shape } = p;
    if (p.role === 'counter') {
      out.set(key, { dtype: 'int64', shape: [...shape], data: new BigInt64Array(1) });
      continue;
    }
    const data = new Float32Array(numel(shape));
    const module = key.slice(0, key.lastIndexOf('.'));
    const leaf = key.slice(key.lastIndexOf('.') + 1);
    if (p.role === 'running-stat') {
      if (leaf === 'running_var') data.fill(1);
    } else if (shape.length >= 2) {
      const bound = 1 / Math.sqrt(fanIn.get(module)!);
      rng.fillUniform(data, -bound, bound);
      if (beside(key)) for (let i = 0; i < data.length; i++) data[i]! *= residualScale;
    } else if (leaf === 'bias' && fanIn.has(module)) {
      const bound = 1 / Math.sqrt(fanIn.get(module)!);
      rng.fillUniform(data, -bound, bound);
    } else if (leaf === 'weight') {
      data.fill(branchNorm.test(key) ? residualScale : 1);
    }
    out.set(key, { dtype: 'float32', shape: [...shape], data });
  }
  return out;
}
