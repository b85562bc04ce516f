import type { HostTensor } from '@dcae/core';
import { serializeSafetensors } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { loadAutoencoder, memoryModelFiles } from '@dcae/autoencoder';
import type { OptimizerState, StepResult, TrainStepOptions, TrainStepRunner } from '../src/step/types.js';
import { dcAeConfigToDiffusersJson } from '../src/checkpoint/diffusers-config.js';

/**
 * TEST-ONLY step runner for the loop's tests (data order, checkpoints, resume, phases, Ctrl-C):
 * it implements the engine contract with a real optimizer (SGD or AdamW with bias correction,
 * decoupled weight decay) on a SURROGATE objective, not the autoencoder's loss:
 *   L = mean over trainable tensors of mean((w − m)²) / 2, m = the batch's mean value,
 * so the trajectory depends on the data, the lr schedule, the step count and the optimizer state,
 * which is all the loop is responsible for. `reconstruct` runs the real DC-AE (onnxruntime) with
 * the current weights. The engine's own tests cover the real gradients.
 */
export async function createSurrogateRunner(
  runtime: RuntimeV1,
  options: TrainStepOptions,
): Promise<TrainStepRunner> {
  const keys = [...options.weights.keys()];
  const trainable = new Set(options.trainable);
  const trainableKeys = keys.filter((k) => trainable.has(k));
  const frozenKeys = keys.filter((k) => !trainable.has(k));
  const weights = new Map(options.weights);
  const m = new Map<string, Float32Array>();
  const v = new Map<string, Float32Array>();
  let t = 0;
  const [b1, b2] = options.optimizer.betas ?? [0.9, 0.999];
  const eps = options.optimizer.eps ?? 1e-8;
  const wd = options.optimizer.weightDecay ?? 0;
  for (const k of trainableKeys) {
    const n = options.weights.get(k)!.data.length;
    m.set(k, new Float32Array(n));
    v.set(k, new Float32Array(n));
  }
  return {
    trainableKeys,
    frozenKeys,
    step(batch: HostTensor, { lr }): Promise<StepResult> {
      const x = batch.data as Float32Array;
      let mean = 0;
      for (const value of x) mean += value;
      mean /= x.length;
      let loss = 0;
      let norm2 = 0;
      t++;
      for (const k of trainableKeys) {
        const w = weights.get(k)!.data as Float32Array;
        const next = new Float32Array(w.length);
        const mk = m.get(k)!;
        const vk = v.get(k)!;
        let sq = 0;
        for (let i = 0; i < w.length; i++) {
          const d = w[i]! - mean;
          sq += d * d;
          const g = d / w.length / trainableKeys.length;
          norm2 += g * g;
          if (options.optimizer.kind === 'sgd') next[i] = w[i]! - lr * g;
          else {
            mk[i] = b1 * mk[i]! + (1 - b1) * g;
            vk[i] = b2 * vk[i]! + (1 - b2) * g * g;
            const mh = mk[i]! / (1 - b1 ** t);
            const vh = vk[i]! / (1 - b2 ** t);
            next[i] = w[i]! - lr * (mh / (Math.sqrt(vh) + eps) + wd * w[i]!);
          }
        }
        loss += sq / w.length / 2 / trainableKeys.length;
        weights.set(k, { dtype: 'float32', shape: weights.get(k)!.shape, data: next });
      }
      return Promise.resolve({ loss, terms: { surrogate: loss }, gradNorm: Math.sqrt(norm2) });
    },
    weights: () => weights,
    optimizerState(): OptimizerState {
      const tensors = new Map<string, HostTensor>();
      for (const k of trainableKeys) {
        const shape = weights.get(k)!.shape;
        tensors.set(`exp_avg.${k}`, { dtype: 'float32', shape, data: Float32Array.from(m.get(k)!) });
        tensors.set(`exp_avg_sq.${k}`, { dtype: 'float32', shape, data: Float32Array.from(v.get(k)!) });
      }
      return { step: t, tensors };
    },
    restoreOptimizerState(state: OptimizerState) {
      t = state.step;
      for (const k of trainableKeys) {
        m.set(k, Float32Array.from(state.tensors.get(`exp_avg.${k}`)!.data as Float32Array));
        v.set(k, Float32Array.from(state.tensors.get(`exp_avg_sq.${k}`)!.data as Float32Array));
      }
    },
    async reconstruct(batch: HostTensor): Promise<HostTensor> {
      const files = memoryModelFiles('surrogate', {
        'config.json': new TextEncoder().encode(JSON.stringify(dcAeConfigToDiffusersJson(options.config))),
        'diffusion_pytorch_model.safetensors': serializeSafetensors(weights),
      });
      const ae = await loadAutoencoder(files, { runtime });
      try {
        return await ae.decode(await ae.encode(batch as HostTensor<'float32'>));
      } finally {
        await ae.dispose();
      }
    },
    dispose: () => Promise.resolve(),
  };
}
