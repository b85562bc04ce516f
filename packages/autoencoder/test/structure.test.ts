import { readFileSync } from 'node:fs';
import { createRng, parseJsonConfig, zeros } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { InitializerData, OnnxModel } from '@dcae/core/onnx';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import type { DcAeConfig } from '../src/index.js';
import {
  buildDecoderGraph,
  buildEncoderGraph,
  parseDcAeConfig,
  spatialCompressionRatio,
} from '../src/index.js';
import { FIXTURE_NAMES, fixturePath } from './helpers.js';

/**
 * docs/model-spec.md §8.1 structural test: with every conv weight and bias zero and every norm weight 1 /
 * bias 0, each ResBlock and EfficientViT block is the identity (attention gives 0 / (0 + 1e-15)),
 * so from conv_in's output to the latent only the averaging shortcuts act, and from the latent to
 * norm_out's input only the duplicating shortcuts: a constant map stays the same constant.
 */
const runtime = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await runtime.dispose();
});

const K = 0.7;

/** Zero convs, unit norms; encoder conv_in's bias is K, so its output is the constant map K. */
function identityParams(key: string, shape: readonly number[]): InitializerData {
  const tensor = zeros('float32', shape);
  if (/norm(_out)?\.weight$/.test(key)) tensor.data.fill(1);
  if (/^encoder\.conv_in\.(conv\.)?bias$/.test(key)) tensor.data.fill(K);
  return { kind: 'inline', tensor };
}

async function runAll(
  model: OnnxModel,
  feeds: Record<string, HostTensor>,
): Promise<Record<string, HostTensor>> {
  const session = await runtime.createSession(serializeModel(model));
  try {
    return await session.run(feeds);
  } finally {
    await session.dispose();
  }
}

const fixture = (name: string): DcAeConfig =>
  parseDcAeConfig(parseJsonConfig(readFileSync(fixturePath(name, 'config.json'), 'utf8')));
const tinyInMix = fixture('tiny-in-f32');
const tinySana = fixture('tiny-sana-f32');

const variants: [string, DcAeConfig][] = [
  ...FIXTURE_NAMES.map((name) => [name, fixture(name)] as [string, DcAeConfig]),
  [
    'in/mix f64-like (7 stages, attention at 1×1 tokens)',
    {
      ...tinyInMix,
      latentChannels: 16,
      encoder: {
        ...tinyInMix.encoder,
        blockTypes: [...tinyInMix.encoder.blockTypes, 'EfficientViTBlock'],
        blockOutChannels: [8, 16, 32, 32, 64, 64, 128],
        layersPerBlock: [0, 1, 1, 1, 1, 1, 1],
        qkvMultiscales: Array(7).fill([]),
      },
      decoder: {
        ...tinyInMix.decoder,
        blockTypes: [...tinyInMix.decoder.blockTypes, 'EfficientViTBlock'],
        blockOutChannels: [8, 16, 32, 32, 64, 64, 128],
        layersPerBlock: [0, 1, 1, 1, 1, 1, 1],
        qkvMultiscales: Array(7).fill([]),
        normTypes: [...tinyInMix.decoder.normTypes.slice(0, 5), 'batch_norm', 'rms_norm'],
        actFns: [...tinyInMix.decoder.actFns, 'gelu'],
      },
    },
  ],
  [
    'lite-like (sana encoder, ResBlock decoder with empty stage 0 and interpolate)',
    {
      ...tinySana,
      decoder: {
        ...tinySana.decoder,
        blockTypes: Array(6).fill('ResBlock'),
        layersPerBlock: [0, 1, 2, 1, 1, 1],
        convActFn: 'silu',
      },
    },
  ],
];

describe.each(variants)('%s with identity weights', (_, config) => {
  const f = spatialCompressionRatio(config);
  const [height, width] = [2 * f, f];

  it('encoder: conv_in → latent keeps a constant map (averaging shortcuts only)', async () => {
    const model = buildEncoderGraph(config, { params: identityParams, intermediates: true });
    const sample = createRng(7).randn([2, config.inChannels, height, width]);
    const outputs = await runAll(model, { sample });
    expect(outputs.latent_sample!.shape).toEqual([2, config.latentChannels, height / f, width / f]);
    for (const [name, value] of Object.entries(outputs)) {
      for (const v of value.data as Float32Array) expect(Math.abs(v - K), name).toBeLessThan(1e-6);
    }
  });

  it('decoder: latent → norm_out input keeps a constant map (duplicating shortcuts only)', async () => {
    const model = buildDecoderGraph(config, { params: identityParams, intermediates: true });
    const latent = zeros('float32', [2, config.latentChannels, height / f, width / f]);
    latent.data.fill(K);
    const outputs = await runAll(model, { latent_sample: latent });
    expect(outputs.sample!.shape).toEqual([2, config.inChannels, height, width]);
    const stages = Object.keys(outputs).filter((name) => name !== 'sample');
    expect(stages.length).toBeGreaterThan(3);
    for (const name of stages) {
      for (const v of outputs[name]!.data as Float32Array) expect(Math.abs(v - K), name).toBeLessThan(1e-6);
    }
  });
});
