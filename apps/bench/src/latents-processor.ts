/** Sandboxed BullMQ processor of the `latents` bench scenario (the same contract as `dcae latents worker`). */
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { createShardProcessor } from '@dcae/latents/node';
import type { ShardProcessor } from '@dcae/latents/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';

const processor: ShardProcessor = createShardProcessor(async (plan) => {
  const runtime = createNodeRuntime({ devices: ['cpu'], threads: 1 });
  const ae = await loadAutoencoder(plan.model.source, { runtime, parts: ['encoder'] });
  return {
    name: ae.name,
    scalingFactor: ae.scalingFactor,
    encode: (x) => ae.encode(x),
    decode: (x) => ae.decode(x),
    close: async () => {
      await ae.dispose();
      await runtime.dispose();
    },
  };
});

export default processor;
