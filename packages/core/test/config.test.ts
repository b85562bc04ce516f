import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigReader, DcaeError, parseJsonConfig } from '../src/index.js';
import type { JsonValue } from '../src/index.js';

const FIXTURE_CONFIG = new URL('../../../fixtures/dcae/tiny-in-f32/config.json', import.meta.url);

function nested(depth: number): string {
  return '['.repeat(depth) + ']'.repeat(depth);
}

/** JSON.parse's result without the keys parseJsonConfig drops. */
function withoutUnsafeKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutUnsafeKeys);
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value).filter(
    ([key]) => !['__proto__', 'constructor', 'prototype'].includes(key),
  );
  return Object.fromEntries(entries.map(([key, inner]) => [key, withoutUnsafeKeys(inner)]));
}

describe('parseJsonConfig', () => {
  it('parses the fixture config like JSON.parse', () => {
    const bytes = readFileSync(FIXTURE_CONFIG);
    expect(parseJsonConfig(bytes, { source: 'config.json' })).toEqual(JSON.parse(bytes.toString('utf8')));
  });

  it('agrees with JSON.parse on any JSON text (fast-check, 1000 runs)', () => {
    fc.assert(
      fc.property(fc.json({ depthSize: 'medium' }), (text) => {
        expect(parseJsonConfig(text)).toEqual(withoutUnsafeKeys(JSON.parse(text)));
      }),
      { seed: 31, numRuns: 1000 },
    );
  });

  it('returns a value or throws a DcaeError for any string (fast-check, 1000 runs)', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json().map((json) => json.slice(0, -1)),
        ),
        (text) => {
          try {
            parseJsonConfig(text);
          } catch (error) {
            return DcaeError.is(error, 'CONFIG_NOT_JSON');
          }
          return true;
        },
      ),
      { seed: 32, numRuns: 1000 },
    );
  });

  it('D1: input over maxBytes is CONFIG_TOO_LARGE before parsing', () => {
    expect(() => parseJsonConfig(new Uint8Array(10_000_001), { source: 'big.json' })).toThrow(
      expect.objectContaining({ code: 'CONFIG_TOO_LARGE', message: expect.stringContaining('big.json') }),
    );
    expect(() => parseJsonConfig('{"a": 1}', { maxBytes: 4 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_TOO_LARGE' }),
    );
    expect(parseJsonConfig('{"a": 1}', { maxBytes: 8 })).toEqual({ a: 1 });
  });

  it('D2: nesting deeper than 64 is CONFIG_TOO_DEEP; 64 levels are fine; 100000 levels do not overflow the stack', () => {
    expect(() => parseJsonConfig(nested(65))).toThrow(expect.objectContaining({ code: 'CONFIG_TOO_DEEP' }));
    expect(() => parseJsonConfig(nested(100_000))).toThrow(
      expect.objectContaining({ code: 'CONFIG_TOO_DEEP' }),
    );
    expect(() => parseJsonConfig(nested(64))).not.toThrow();
    expect(() => parseJsonConfig(`{"a":${nested(3)}}`, { maxDepth: 3 })).toThrow(
      expect.objectContaining({ code: 'CONFIG_TOO_DEEP' }),
    );
  });

  it('D3: __proto__, constructor and prototype keys are dropped at every level', () => {
    const text =
      '{"__proto__": {"polluted": true}, "constructor": {"prototype": 1}, "a": {"__proto__": [1], "prototype": 2, "b": 3}}';
    const config = parseJsonConfig(text) as Record<string, unknown>;
    expect(config).toEqual({ a: { b: 3 } });
    expect(Object.getPrototypeOf(config)).toBe(Object.prototype);
    const merged = Object.assign({}, config);
    expect((merged as { polluted?: boolean }).polluted).toBeUndefined();
    expect(({} as { polluted?: boolean }).polluted).toBeUndefined();
  });

  it('invalid JSON is CONFIG_NOT_JSON naming the line and column', () => {
    const text = '{\n  "a": 1,\n  "b": tru\n}';
    expect(() => parseJsonConfig(text, { source: 'config.json' })).toThrow(
      expect.objectContaining({
        code: 'CONFIG_NOT_JSON',
        message: expect.stringMatching(/config\.json.*line 3, column 8/),
      }),
    );
    for (const bad of [
      '',
      '{"a":1} x',
      '{"a":1,}',
      "{'a':1}",
      '{"a":01}',
      '{"a":"\\x"}',
      '{"a":"\\ud800"}',
      'NaN',
    ]) {
      expect(() => parseJsonConfig(bad)).toThrow(expect.objectContaining({ code: 'CONFIG_NOT_JSON' }));
    }
  });

  it('a key repeated in one object is CONFIG_NOT_JSON (JSON.parse would silently keep the last)', () => {
    expect(() => parseJsonConfig('{"a": 1, "a": 2}')).toThrow(
      expect.objectContaining({
        code: 'CONFIG_NOT_JSON',
        message: expect.stringContaining('"a" appears twice'),
      }),
    );
  });

  it('decodes UTF-8 strictly and ignores a leading BOM', () => {
    expect(() => parseJsonConfig(new Uint8Array([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).toThrow(
      expect.objectContaining({ code: 'CONFIG_NOT_JSON', message: expect.stringContaining('UTF-8') }),
    );
    expect(
      parseJsonConfig(new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('{"é":1}')])),
    ).toEqual({ é: 1 });
    expect(parseJsonConfig('\uFEFF[1]')).toEqual([1]);
  });
});

describe('ConfigReader', () => {
  const config = (value: JsonValue) => new ConfigReader(value, 'config.json');

  it('reads the fixture DC-AE config with every field typed and no unknown field', () => {
    const r = config(parseJsonConfig(readFileSync(FIXTURE_CONFIG)));
    const stages = 6;
    expect(r.int('latent_channels', { min: 1, max: 4096 })).toBe(8);
    expect(r.int('in_channels', { min: 1, max: 16, default: 3 })).toBe(3);
    expect(r.int('attention_head_dim', { min: 1, max: 1024 })).toBe(16);
    expect(
      r.stringOrList('encoder_block_types', { oneOf: ['ResBlock', 'EfficientViTBlock'], length: stages }),
    ).toHaveLength(6);
    expect(
      r.stringOrList('decoder_block_types', { oneOf: ['ResBlock', 'EfficientViTBlock'], length: stages })[3],
    ).toBe('EfficientViTBlock');
    expect(r.intList('encoder_block_out_channels', { min: 1, max: 65536, length: stages })).toEqual([
      8, 16, 32, 32, 64, 64,
    ]);
    r.intList('decoder_block_out_channels', { min: 1, max: 65536, length: stages });
    r.intList('encoder_layers_per_block', { min: 0, max: 64, length: stages });
    expect(r.intList('decoder_layers_per_block', { min: 0, max: 64, length: stages })).toEqual([
      0, 2, 3, 1, 1, 1,
    ]);
    expect(r.intLists('encoder_qkv_multiscales', { min: 1, max: 31, length: stages })).toEqual([
      [],
      [],
      [],
      [],
      [],
      [],
    ]);
    r.intLists('decoder_qkv_multiscales', { min: 1, max: 31, length: stages });
    expect(r.string('upsample_block_type')).toBe('pixel_shuffle');
    r.string('downsample_block_type');
    r.stringOrList('decoder_norm_types', { oneOf: ['batch_norm', 'rms_norm'], length: stages });
    expect(r.stringOrList('decoder_act_fns', { oneOf: ['relu', 'silu'], length: stages })).toEqual([
      'relu',
      'relu',
      'relu',
      'silu',
      'silu',
      'silu',
    ]);
    expect(r.bool('encoder_out_shortcut', { default: true })).toBe(true);
    r.bool('decoder_in_shortcut');
    expect(r.string('decoder_conv_act_fn', { oneOf: ['relu', 'silu'] })).toBe('relu');
    expect(r.number('scaling_factor', { min: 0 })).toBe(0.3189);
    expect(() => r.finish({ ignorePrefix: '_' })).not.toThrow();
  });

  it('applies defaults to absent fields and expands a single string to a list', () => {
    const r = config({ decoder_act_fns: 'silu', multiscales: [[5], []] });
    expect(r.int('in_channels', { min: 1, max: 16, default: 3 })).toBe(3);
    expect(r.stringOrList('decoder_act_fns', { oneOf: ['silu', 'relu'], length: 3 })).toEqual([
      'silu',
      'silu',
      'silu',
    ]);
    expect(
      r.stringOrList('decoder_norm_types', {
        oneOf: ['rms_norm', 'batch_norm'],
        length: 2,
        default: 'rms_norm',
      }),
    ).toEqual(['rms_norm', 'rms_norm']);
    expect(r.intLists('multiscales', { min: 1, max: 9 })).toEqual([[5], []]);
    expect(r.number('scaling_factor', { default: 1 })).toBe(1);
    expect(r.has('in_channels')).toBe(false);
    r.finish();
  });

  it('D4: collects every bad, missing and unknown field into one CONFIG_VALUE error', () => {
    const r = config({
      layers: 1e9,
      channels: -1,
      ratio: 'NaN',
      flag: 'yes',
      kind: 'Conv2',
      widths: [8, 16.5],
      acts: ['silu', 'gelu'],
      latent_channel: 4,
      _class_name: 'AutoencoderDC',
      extra_ok: 1,
    });
    r.int('layers', { min: 0, max: 64 });
    r.int('channels', { min: 1, max: 4096 });
    r.number('ratio');
    r.bool('flag');
    r.string('kind', { oneOf: ['Conv', 'pixel_unshuffle'] });
    r.intList('widths', { min: 1, max: 4096, length: 2 });
    r.stringOrList('acts', { oneOf: ['silu', 'relu'], length: 2 });
    r.int('latent_channels', { min: 1, max: 4096 });
    r.report('widths', 'needs one entry per stage');
    let error: unknown;
    try {
      r.finish({ allowUnknown: ['extra_ok'], ignorePrefix: '_' });
    } catch (caught) {
      error = caught;
    }
    expect(DcaeError.is(error, 'CONFIG_VALUE')).toBe(true);
    const { message, detail } = error as DcaeError;
    const fields = (detail!.problems as { field: string }[]).map(({ field }) => field);
    expect(fields).toEqual([
      'layers',
      'channels',
      'ratio',
      'flag',
      'kind',
      'widths',
      'acts',
      'latent_channels',
      'widths',
      'latent_channel',
    ]);
    expect(message).toContain('config.json has 10 invalid fields');
    expect(message).toContain('"layers": expected an integer in [0, 64], found 1000000000');
    expect(message).toContain('"channels": expected an integer in [1, 4096], found -1');
    expect(message).toContain('"ratio": expected a finite number, found "NaN"');
    expect(message).toContain('"kind": expected one of "Conv", "pixel_unshuffle", found "Conv2"');
    expect(message).toContain(
      '"latent_channels": expected an integer in [1, 4096], found nothing (the field is required)',
    );
    expect(message).toContain('"latent_channel": unknown field (did you mean "latent_channels"?)');
    expect(message).not.toContain('_class_name');
    expect(message).not.toContain('extra_ok');
  });

  it('a single problem gives a one-line message', () => {
    const r = config({ scaling_factor: null });
    r.number('scaling_factor', { default: 1 });
    expect(() => r.finish()).toThrow('config.json: "scaling_factor": expected a finite number, found null.');
  });

  it('rejects a config that is not an object', () => {
    for (const value of [null, [], 3, 'x']) {
      expect(() => config(value)).toThrow(expect.objectContaining({ code: 'CONFIG_VALUE' }));
    }
  });

  it('reads only own fields: "constructor" or "toString" are absent unless the config has them', () => {
    const r = config(parseJsonConfig('{"toString": 3}'));
    expect(r.has('constructor')).toBe(false);
    expect(r.int('toString', { min: 0, max: 9 })).toBe(3);
    r.finish();
  });
});
