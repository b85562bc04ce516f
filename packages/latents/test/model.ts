import { loadAutoencoder } from '@dcae/autoencoder/node';
import type { LatentPlan } from '@dcae/latents';
import type { ShardModel } from '@dcae/latents/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll } from 'vitest';

const opened: { close(): Promise<void> }[] = [];
afterAll(async () => {
  for (const m of opened) await m.close();
});

/** The real tiny DC-AE on onnxruntime-node (CPU), opened once per plan kind. */
export function tinyModel(plan: Pick<LatentPlan, 'model' | 'kind'>): () => Promise<ShardModel> {
  let model: Promise<ShardModel> | undefined;
  return () =>
    (model ??= (async () => {
      const runtime = createNodeRuntime({ devices: ['cpu'], threads: 1 });
      const ae = await loadAutoencoder(plan.model.source, {
        runtime,
        parts: plan.kind === 'encode' ? ['encoder'] : ['decoder'],
      });
      opened.push({
        close: async () => {
          await ae.dispose();
          await runtime.dispose();
        },
      });
      return ae;
    })());
}
