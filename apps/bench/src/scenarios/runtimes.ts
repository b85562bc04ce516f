import { createRng } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { loadAutoencoder } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import type { Scenario } from '../scenario.js';
import { fixtureFolder } from './soak.js';

/**
 * The same model and input on onnxruntime-node (CPU) and on onnxruntime-web's wasm backend inside
 * Node, side by side. onnxruntime-web's thread count is fixed for the life of a process, so one run
 * measures one web thread count (`threads`, 2 by default); Chromium's wasm is measured by the
 * playground's end-to-end test, not here.
 */
export const runtimes: Scenario = {
  name: 'runtimes',
  title: 'onnxruntime-node vs onnxruntime-web (wasm, in Node): same model, same input',
  description:
    'Encodes and decodes with the tiny sana fixture architecture (real graph structure, tiny widths) at 256² ' +
    '(quick: 96×64) through `createNodeRuntime()` (CPU, 2 threads) and `createWebRuntime({ devices: ["wasm"], ' +
    'threads: 2 })` in the same process, cases interleaved in rounds. Ratios: web ÷ node median time.',
  async run(context) {
    const [height, width] = context.quick ? [96, 64] : [256, 256];
    const folder = fixtureFolder('tiny-sana-f32');
    const sample = createRng(5).fillUniform(new Float32Array(3 * height * width), -1, 1);
    const image = { dtype: 'float32' as const, shape: [1, 3, height, width], data: sample };
    const node = createNodeRuntime({ threads: 2 });
    const web = await createWebRuntime({ devices: ['wasm'], threads: 2 });
    const load = (runtime: RuntimeV1) => loadAutoencoder(folder, { runtime, tiling: 'never' });
    const models = { node: await load(node), web: await load(web) };
    try {
      const latent = await models.node.encode(image);
      const series = await context.compare(
        (['node', 'web'] as const).flatMap((name) => [
          { name: `${name} encode`, run: () => models[name].encode(image) },
          { name: `${name} decode`, run: () => models[name].decode(latent) },
        ]),
      );
      return {
        params: { model: 'tiny-sana-f32', height, width, threads: 2, web: web.name, node: node.name },
        series,
        ratios: [
          { of: 'web encode', to: 'node encode' },
          { of: 'web decode', to: 'node decode' },
        ],
        notes: [
          'Chromium wasm (1 and 2 threads) is exercised by the playground e2e test; see apps/playground.',
        ],
      };
    } finally {
      await models.node.dispose();
      await models.web.dispose();
      await node.dispose();
      await web.dispose();
    }
  },
};
