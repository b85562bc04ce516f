import { readFileSync } from 'node:fs';
import { parseJsonConfig, parseSafetensors } from '@dcae/core';
import { describe, expect, it } from 'vitest';
import type { DcAeConfig } from '../src/index.js';
import {
  buildDecoderGraph,
  buildEncoderGraph,
  countParameters,
  DC_AE_PRESET_NAMES,
  DC_AE_PRESETS,
  dcAeCheckpointLayout,
  originalKeyFlags,
  originalToDiffusersKey,
  parseDcAeConfig,
} from '../src/index.js';
import { FIXTURE_NAMES, fixturePath } from './helpers.js';

const fixtureConfig = (name: string): DcAeConfig =>
  parseDcAeConfig(parseJsonConfig(readFileSync(fixturePath(name, 'config.json'), 'utf8')));

const fixtureMeta = (name: string) =>
  JSON.parse(readFileSync(fixturePath(name, 'meta.json'), 'utf8')) as {
    num_parameters: number;
    num_state_dict_keys: number;
    efficientvit_crosscheck: { 'original keys': number };
  };

/** Distinct original-format keys (to_q/to_k/to_v share the fused qkv). */
const originalKeyCount = (config: DcAeConfig) =>
  new Set(dcAeCheckpointLayout(config).params.map((p) => p.original)).size;

describe('checkpoint layout of the released architectures (docs/model-spec.md §1.2, §3)', () => {
  it.each([
    ['dc-ae-f32c32-in-1.0', 362, 338, 123.17, 200.18, 323.36],
    ['dc-ae-f32c32-mix-1.0', 362, 338, 123.17, 200.18, 323.36],
    ['dc-ae-f64c128-in-1.0', 418, 386, 264.55, 412.35, 676.9],
    ['dc-ae-f128c512-in-1.0', 474, 434, 415.66, 705.02, 1120.68],
    ['dc-ae-f32c32-sana-1.0', 375, 339, 153.03, 159.22, 312.25],
  ] as const)(
    '%s: %i diffusers keys, %i original keys, %f M + %f M = %f M parameters',
    (name, keys, original, enc, dec, total) => {
      const config = DC_AE_PRESETS[name];
      const layout = dcAeCheckpointLayout(config);
      expect(layout.params).toHaveLength(keys);
      expect(originalKeyCount(config)).toBe(original);
      const counts = countParameters(layout);
      expect((counts.encoder / 1e6).toFixed(2)).toBe(enc.toFixed(2));
      expect((counts.decoder / 1e6).toFixed(2)).toBe(dec.toFixed(2));
      expect((counts.total / 1e6).toFixed(2)).toBe(total.toFixed(2));
    },
  );

  it('in/mix f32c32 has 45 BatchNorm buffers in 15 BatchNorms, folded into 15 convs', () => {
    const layout = dcAeCheckpointLayout(DC_AE_PRESETS['dc-ae-f32c32-in-1.0']);
    expect(layout.params.filter((p) => p.role !== 'weight')).toHaveLength(45);
    expect(layout.folds).toHaveLength(15);
    expect(layout.folds[0]).toEqual({
      conv: 'decoder.up_blocks.1.1.conv2.weight',
      norm: 'decoder.up_blocks.1.1.norm',
      bias: 'decoder.up_blocks.1.1.conv2.bias',
    });
  });

  it('spells the keys of spec Appendix A (samples of each module kind)', () => {
    const inMix = dcAeCheckpointLayout(DC_AE_PRESETS['dc-ae-f32c32-in-1.0']).params;
    const find = (key: string) => inMix.find((p) => p.key === key);
    expect(find('encoder.conv_in.conv.weight')).toMatchObject({
      shape: [64, 3, 3, 3],
      original: 'encoder.project_in.conv.conv.weight',
    });
    expect(find('encoder.down_blocks.2.8.conv.weight')).toMatchObject({
      shape: [128, 512, 3, 3],
      original: 'encoder.stages.2.op_list.8.main.conv.conv.weight',
    });
    expect(find('decoder.up_blocks.4.0.conv.weight')).toMatchObject({
      shape: [4096, 1024, 3, 3],
      original: 'decoder.stages.4.op_list.0.main.conv.conv.weight',
    });
    expect(find('decoder.up_blocks.2.10.norm.num_batches_tracked')).toMatchObject({
      shape: [],
      role: 'counter',
    });
    expect(find('decoder.conv_out.conv.weight')).toMatchObject({
      shape: [12, 256, 3, 3],
      original: 'decoder.project_out.op_list.2.conv.conv.weight',
    });
    const sana = dcAeCheckpointLayout(DC_AE_PRESETS['dc-ae-f32c32-sana-1.0']).params;
    expect(
      sana.find((p) => p.key === 'encoder.down_blocks.4.2.attn.to_qkv_multiscale.0.proj_out.weight'),
    ).toMatchObject({
      shape: [3072, 32, 1, 1],
      original: 'encoder.stages.4.op_list.2.context_module.main.aggreg.0.1.weight',
    });
    expect(sana.find((p) => p.key === 'decoder.up_blocks.3.1.attn.to_out.weight')).toMatchObject({
      shape: [512, 1024],
      original: 'decoder.stages.3.op_list.1.context_module.main.proj.conv.weight',
    });
  });
});

describe('original → diffusers key mapping (docs/model-spec.md §3.3)', () => {
  const configs: [string, DcAeConfig][] = [
    ...DC_AE_PRESET_NAMES.map((name) => [name, DC_AE_PRESETS[name]] as [string, DcAeConfig]),
    ...FIXTURE_NAMES.map((name) => [name, fixtureConfig(name)] as [string, DcAeConfig]),
  ];

  it.each(configs)('maps every original key of %s one-to-one onto its diffusers keys', (_, config) => {
    const layout = dcAeCheckpointLayout(config);
    const flags = originalKeyFlags(config);
    const mapped = [...new Set(layout.params.map((p) => p.original))].flatMap((o) =>
      originalToDiffusersKey(o, flags).map((m) => m.key),
    );
    expect(mapped).toEqual(layout.params.map((p) => p.key));
  });

  it('splits the fused qkv into row thirds and squeezes proj', () => {
    const flags = { encoderConvInIsBlock: false, decoderConvOutIsBlock: false };
    expect(
      originalToDiffusersKey('decoder.stages.3.op_list.1.context_module.main.qkv.conv.weight', flags),
    ).toEqual([
      { key: 'decoder.up_blocks.3.1.attn.to_q.weight', rows: { index: 0, of: 3 } },
      { key: 'decoder.up_blocks.3.1.attn.to_k.weight', rows: { index: 1, of: 3 } },
      { key: 'decoder.up_blocks.3.1.attn.to_v.weight', rows: { index: 2, of: 3 } },
    ]);
    expect(
      originalToDiffusersKey('encoder.stages.5.op_list.0.context_module.main.proj.conv.weight', flags),
    ).toEqual([{ key: 'encoder.down_blocks.5.0.attn.to_out.weight' }]);
  });

  it('chooses the conv_in / conv_out variants from the config', () => {
    const inMix = originalKeyFlags(DC_AE_PRESETS['dc-ae-f32c32-in-1.0']);
    const sana = originalKeyFlags(DC_AE_PRESETS['dc-ae-f32c32-sana-1.0']);
    const lite = originalKeyFlags(DC_AE_PRESETS['dc-ae-lite-f32c32']);
    expect(originalToDiffusersKey('encoder.project_in.conv.conv.bias', inMix)[0]!.key).toBe(
      'encoder.conv_in.conv.bias',
    );
    expect(originalToDiffusersKey('encoder.project_in.conv.bias', sana)[0]!.key).toBe('encoder.conv_in.bias');
    expect(originalToDiffusersKey('decoder.project_out.op_list.2.conv.bias', sana)[0]!.key).toBe(
      'decoder.conv_out.bias',
    );
    expect(originalToDiffusersKey('decoder.project_out.op_list.2.conv.conv.bias', lite)[0]!.key).toBe(
      'decoder.conv_out.conv.bias',
    );
  });
});

describe.each(FIXTURE_NAMES)('%s layout', (name) => {
  const config = fixtureConfig(name);
  const layout = dcAeCheckpointLayout(config);

  it('lists exactly the fixture checkpoint tensors, shapes and parameter count', () => {
    const file = parseSafetensors(readFileSync(fixturePath(name, 'diffusion_pytorch_model.safetensors')));
    const inFile = [...file.header.tensors]
      .map(([key, info]) => `${key} ${JSON.stringify(info.shape)}`)
      .sort();
    expect(layout.params.map((p) => `${p.key} ${JSON.stringify(p.shape)}`).sort()).toEqual(inFile);
    const meta = fixtureMeta(name);
    expect(layout.params).toHaveLength(meta.num_state_dict_keys);
    expect(countParameters(layout).total).toBe(meta.num_parameters);
    expect(originalKeyCount(config)).toBe(meta.efficientvit_crosscheck['original keys']);
  });
});

describe('graph ↔ layout agreement', () => {
  const tinyIn = fixtureConfig('tiny-in-f32');
  const batchNormAttention: DcAeConfig = {
    ...tinyIn,
    decoder: {
      ...tinyIn.decoder,
      normTypes: Array(6).fill('batch_norm'),
      qkvMultiscales: Array(6).fill([3]),
    },
  };
  const configs: [string, DcAeConfig][] = [
    ...DC_AE_PRESET_NAMES.map((name) => [name, DC_AE_PRESETS[name]] as [string, DcAeConfig]),
    ...FIXTURE_NAMES.map((name) => [name, fixtureConfig(name)] as [string, DcAeConfig]),
    ['BatchNorm after the attention, multi-scale kernel 3', batchNormAttention],
  ];

  it.each(configs)(
    '%s: the graphs read every parameter once, BatchNorms only through their folds',
    (_, config) => {
      const layout = dcAeCheckpointLayout(config);
      const read: string[] = [];
      const params = (key: string, shape: readonly number[]) => {
        read.push(key);
        const length = 4 * shape.reduce((a, b) => a * b, 1);
        return {
          kind: 'external' as const,
          dtype: 'float32' as const,
          shape,
          location: 'w',
          offset: 0,
          length,
        };
      };
      buildEncoderGraph(config, { params });
      buildDecoderGraph(config, { params });
      const stats = ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked'];
      const folded = new Set(layout.folds.flatMap((f) => stats.map((s) => `${f.norm}.${s}`)));
      const expected = [
        ...layout.params.map((p) => p.key).filter((k) => !folded.has(k)),
        ...layout.folds.map((f) => f.bias),
      ];
      expect([...read].sort()).toEqual(expected.sort());
    },
  );
});
