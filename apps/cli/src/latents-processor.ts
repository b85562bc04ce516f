/**
 * The BullMQ sandboxed processor of `dcae latents worker`: BullMQ runs this file in a child
 * process (never on the worker's event loop, which onnxruntime-node's blocking run() would
 * freeze). The child keeps its model between jobs.
 */
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { createShardProcessor } from '@dcae/latents/node';
import type { ShardProcessor } from '@dcae/latents/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';

const DEVICES = ['cpu', 'cuda', 'webgpu'] as const;
const wanted = process.env.DCAE_LATENTS_DEVICE ?? 'auto';
const device = DEVICES.find((d) => d === wanted);
const threads = process.env.DCAE_LATENTS_THREADS ? Number(process.env.DCAE_LATENTS_THREADS) : undefined;

const processor: ShardProcessor = createShardProcessor(async (plan) => {
  const runtime = createNodeRuntime({
    devices: device === undefined ? 'auto' : [device],
    ...(threads !== undefined ? { threads } : {}),
  });
  const ae = await loadAutoencoder(plan.model.source, {
    runtime,
    parts: plan.kind === 'encode' ? ['encoder'] : ['decoder'],
  });
  return {
    name: ae.name,
    scalingFactor: ae.scalingFactor,
    encode: (x, o) => ae.encode(x, o?.signal ? { signal: o.signal } : {}),
    decode: (x, o) => ae.decode(x, o?.signal ? { signal: o.signal } : {}),
    close: async () => {
      await ae.dispose();
      await runtime.dispose();
    },
  };
});

export default processor;
