import { createRng } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { InitializerData, OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { Scenario } from '../scenario.js';

/**
 * `layers` × (3×3 Conv + SiLU) at `channels` channels over a dynamic [batch, C, height, width]
 * input: the shape of a deep conv stack, with one weight and one bias per layer.
 */
export function convStack(layers: number, channels: number, params: ParamResolver): OnnxModel {
  const g = new GraphBuilder({ name: 'conv_stack', params });
  let x = g.input('x', 'float32', ['batch', channels, 'height', 'width']);
  for (let i = 0; i < layers; i++) {
    const layer = g.root.child('layers').child(i);
    const w = layer.param('weight', [channels, channels, 3, 3]);
    const b = layer.param('bias', [channels]);
    x = layer.silu(layer.conv(x, w, b, { pads: [1, 1, 1, 1] }));
  }
  g.output(x, 'y', ['batch', channels, 'height', 'width']);
  return g.build();
}

const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

export const graphBuild: Scenario = {
  name: 'graph-build',
  title: 'ONNX graph build + serialize: inline vs external weights',
  description:
    'Builds a stack of 3×3 convolutions (Conv + SiLU per layer) with `GraphBuilder` and encodes it with ' +
    '`serializeModel`, once with every weight inline (float32 `raw_data`, copied into the protobuf) and once ' +
    'with every weight as external data pointing into a safetensors file (only offsets are written). ' +
    'Weights are generated before timing. Serialize throughput is MB of protobuf written per second.',
  async run(context) {
    const [layers, channels] = context.quick ? [8, 32] : [100, 256];
    const rng = createRng(7);
    const weights = new Map<string, HostTensor<'float32'>>();
    // Resolvers remember each key's tensor so both variants describe the same checkpoint.
    const tensorFor = (key: string, shape: readonly number[]): HostTensor<'float32'> => {
      let t = weights.get(key);
      if (!t) {
        t = { dtype: 'float32', shape, data: rng.fillUniform(new Float32Array(numel(shape)), -0.05, 0.05) };
        weights.set(key, t);
      }
      return t;
    };
    const inline: ParamResolver = (key, shape) => ({ kind: 'inline', tensor: tensorFor(key, shape) });
    const offsets = new Map<string, number>();
    let fileCursor = 8 + 4096; // as if after a safetensors header
    const external: ParamResolver = (key, shape): InitializerData => {
      const length = numel(shape) * 4;
      let offset = offsets.get(key);
      if (offset === undefined) {
        offset = fileCursor;
        offsets.set(key, offset);
        fileCursor += length;
      }
      return {
        kind: 'external',
        dtype: 'float32',
        shape,
        location: 'diffusion_pytorch_model.safetensors',
        offset,
        length,
      };
    };

    context.log(`generating ${layers} layers of ${channels}×${channels}×3×3 float32 weights`);
    const inlineModel = convStack(layers, channels, inline);
    const externalModel = convStack(layers, channels, external);
    const weightBytes = [...weights.values()].reduce((s, t) => s + t.data.byteLength, 0);
    const inlineBytes = serializeModel(inlineModel).byteLength;
    const externalBytes = serializeModel(externalModel).byteLength;
    if (inlineBytes < weightBytes || externalBytes >= weightBytes) {
      throw new Error(
        `unexpected model sizes: inline ${inlineBytes} B, external ${externalBytes} B, weights ${weightBytes} B`,
      );
    }

    const series = await context.compare([
      { name: 'inline build', run: () => convStack(layers, channels, inline) },
      {
        name: 'inline serialize',
        work: { amount: inlineBytes / 1e6, unit: 'MB' },
        run: () => serializeModel(inlineModel),
      },
      { name: 'external build', run: () => convStack(layers, channels, external) },
      {
        name: 'external serialize',
        work: { amount: externalBytes / 1e6, unit: 'MB' },
        run: () => serializeModel(externalModel),
      },
    ]);
    return {
      params: { layers, channels, kernel: '3x3', nodesPerLayer: 3 },
      series,
      ratios: [
        { of: 'external build', to: 'inline build' },
        { of: 'external serialize', to: 'inline serialize' },
      ],
      figures: [
        { name: 'weights', value: weightBytes / 1e6, unit: 'MB' },
        { name: 'inline model', value: inlineBytes / 1e6, unit: 'MB' },
        { name: 'external model', value: externalBytes / 1e6, unit: 'MB' },
        { name: 'nodes', value: inlineModel.graph.nodes.length, unit: '' },
      ],
    };
  },
};
