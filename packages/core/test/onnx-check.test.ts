/**
 * T5 (core part): crafted models for docs/reliability.md §9 B1–B13, each rejected by checkModel() with
 * its code, and inspectModel()'s view of valid models. The onnxruntime side is in
 * packages/runtime-adapters/test/onnx-untrusted.test.ts.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { DcaeErrorCode } from '../src/errors.js';
import { DcaeError } from '../src/errors.js';
import type { CheckModelOptions } from '../src/onnx/index.js';
import { checkModel, GraphBuilder, inspectModel, serializeModel } from '../src/onnx/index.js';
import type { CraftGraph } from './onnx-craft.js';
import { craftModel, externalIdentity, f32Bytes, identityModel } from './onnx-craft.js';

function codeOf(model: Uint8Array, options: CheckModelOptions = {}): DcaeErrorCode | 'accepted' {
  try {
    checkModel(model, options);
    return 'accepted';
  } catch (error) {
    if (DcaeError.is(error)) return error.code;
    throw error;
  }
}

function errorOf(model: Uint8Array, options: CheckModelOptions = {}): DcaeError {
  try {
    checkModel(model, options);
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
  throw new Error('checkModel accepted the model');
}

const W = { location: 'w.bin', size: 16 };
const valid = identityModel({ name: 'W', dims: [4], raw: f32Bytes([1, 2, 3, 4]) });

describe('inspectModel', () => {
  it('reads opsets, inputs, outputs, nodes and tensors of a GraphBuilder model', () => {
    const g = new GraphBuilder({ name: 'm' });
    const x = g.input('x', 'float32', ['batch', 3]);
    const w = g.initializer('w', {
      kind: 'external',
      dtype: 'float16',
      shape: [3, 2],
      location: 'p.safetensors',
      offset: 8,
      length: 12,
    });
    const y = g.root.child('proj').matMul(g.root.child('proj').cast(x, 'float16'), w);
    g.output(y, 'y', ['batch', 2]);
    const bytes = serializeModel(g.build());
    const m = inspectModel(bytes);
    expect(m.byteLength).toBe(bytes.length);
    expect(m.irVersion).toBe(8);
    expect(m.producer).toBe('dcae');
    expect(m.opsetImports).toEqual([{ domain: '', version: 18 }]);
    expect(m.inputs).toEqual([{ name: 'x', dtype: 'float32', dims: ['batch', 3] }]);
    expect(m.outputs).toEqual([{ name: 'y', dtype: 'float16', dims: ['batch', 2] }]);
    expect(m.nodes.map((n) => [n.index, n.opType, n.domain, n.path])).toEqual([
      [0, 'Cast', '', 'graph.node[0]'],
      [1, 'MatMul', '', 'graph.node[1]'],
      [2, 'Identity', '', 'graph.node[2]'],
    ]);
    expect(m.tensors).toEqual([
      {
        name: 'w',
        path: 'graph.initializer[0] "w"',
        dataType: 10,
        dtype: 'float16',
        dims: [3, 2],
        storage: {
          kind: 'external',
          entries: [
            ['location', 'p.safetensors'],
            ['offset', '8'],
            ['length', '12'],
          ],
          location: 'p.safetensors',
          offset: 8,
          length: 12,
        },
      },
    ]);
    expect(m.usesFloat16).toBe(true);
    expect(m.externalLocations).toEqual(['p.safetensors']);
    expect(checkModel(bytes, { externalData: [{ location: 'p.safetensors', size: 20 }] })).toEqual(m);
  });

  it('walks If branches and model-local functions, naming where each node sits', () => {
    const branch = (op: string): CraftGraph => ({
      nodes: [{ opType: op, inputs: ['x'], outputs: ['b'] }],
      outputs: [{ name: 'b' }],
    });
    const model = craftModel({
      graph: {
        nodes: [
          {
            opType: 'If',
            name: 'cond',
            inputs: ['c'],
            outputs: ['y'],
            graphs: { then_branch: branch('Relu'), else_branch: branch('Neg') },
          },
          { opType: 'Gelu2', domain: 'my.fn', inputs: ['y'], outputs: ['z'] },
        ],
        inputs: [
          { name: 'c', elemType: 9, dims: [] },
          { name: 'x', dims: [2] },
        ],
        outputs: [{ name: 'z' }],
      },
      functions: [
        { domain: 'my.fn', name: 'Gelu2', nodes: [{ opType: 'Erf', inputs: ['a'], outputs: ['b'] }] },
      ],
    });
    const m = inspectModel(model);
    expect(m.nodes.map((n) => n.path)).toEqual([
      'graph.node[0]',
      'graph.node[0](If).then_branch.node[0]',
      'graph.node[0](If).else_branch.node[0]',
      'graph.node[1]',
      'function(my.fn.Gelu2).node[0]',
    ]);
    expect(m.functions).toEqual([{ domain: 'my.fn', name: 'Gelu2' }]);
    // A call of a model-local function passes when its body does.
    expect(codeOf(model)).toBe('accepted');
  });
});

describe('B1 MODEL_TOO_LARGE', () => {
  it('refuses bytes over the protobuf limit (given as a parameter) before parsing them', () => {
    const garbage = new Uint8Array(1000).fill(0xff);
    expect(codeOf(garbage, { maxModelBytes: 999 })).toBe('MODEL_TOO_LARGE');
  });

  it('refuses a model whose external data would pass the total limit (4 GB in browsers)', () => {
    // W declares 5 GiB of external float32; nothing of that size is allocated.
    const big = identityModel({
      name: 'W',
      dims: [1280, 1024, 1024],
      external: [
        ['location', 'w.bin'],
        ['offset', '0'],
        ['length', String(5 * 2 ** 30)],
      ],
    });
    const files = [{ location: 'w.bin' }];
    expect(codeOf(big, { externalData: files })).toBe('accepted');
    const error = errorOf(big, { externalData: files, maxTotalBytes: 2 ** 32 });
    expect(error.code).toBe('MODEL_TOO_LARGE');
    expect(error.message).toMatch(/with its external data: \d+ bytes, over the limit of 4294967296/);
  });
});

describe('B2 PROTOBUF_PARSE', () => {
  const cases: [string, Uint8Array][] = [
    ['garbage', new Uint8Array([0x4f, 0x4e, 0x4e, 0x58, 0xff, 0xff, 0xff])],
    ['an 11-byte varint', new Uint8Array([0x08, ...new Array<number>(11).fill(0xff)])],
    ['a length past the end', new Uint8Array([0x3a, 0x7f, 0x00])],
    ['the graph as a varint (wrong wire type)', new Uint8Array([0x38, 0x01])],
    ['a group wire type', new Uint8Array([0x3b, 0x00])],
    ['field number 0', new Uint8Array([0x02, 0x00])],
    ['no graph at all', new Uint8Array([0x08, 0x08])],
    [
      'invalid UTF-8 in a name',
      craftModel({ graph: { nodes: [{ opType: 'Relu\xff', inputs: [], outputs: [] }], outputs: [] } }).map(
        (b) => (b === 0xc3 ? 0xff : b),
      ),
    ],
  ];
  it.each(cases)('rejects %s', (_, bytes) => {
    const error = errorOf(bytes);
    expect(error.code).toBe('PROTOBUF_PARSE');
    expect(error.message).toMatch(
      /not a valid ONNX protobuf at byte \d+ \(.+\): .+; download or export it again/,
    );
  });

  it('rejects every cut inside the graph message', () => {
    // ir_version (2 bytes) and producer_name "craft" (7) come first, the opset import (6) last.
    const graphEnd = valid.length - 6;
    expect(codeOf(valid.subarray(0, graphEnd))).toBe('accepted');
    for (let end = 10; end < graphEnd; end++)
      expect(codeOf(valid.subarray(0, end)), `cut at ${end}`).toBe('PROTOBUF_PARSE');
  });

  it('stops at the nesting depth limit', () => {
    let graph: CraftGraph = {
      nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
      outputs: [{ name: 'y' }],
    };
    for (let i = 0; i < 40; i++)
      graph = {
        nodes: [{ opType: 'If', inputs: ['c'], outputs: ['y'], graphs: { then_branch: graph } }],
        outputs: [{ name: 'y' }],
      };
    const deep = craftModel({ graph });
    expect(errorOf(deep).message).toMatch(/nested more than 100 levels deep/);
    expect(codeOf(deep, { maxDepth: 200 })).toBe('accepted');
  });
});

describe('B3–B5, B7, B8 EXTERNAL_DATA_PATH', () => {
  it.each([
    ['../secret.bin', /climbs out of the model folder/],
    ['sub/../../secret.bin', /climbs out/],
    ['/etc/passwd', /absolute path/],
    ['C:\\secret.bin', /backslash/],
    ['C:/secret.bin', /":"/],
    ['\\\\host\\share\\w.bin', /backslash/],
    ['sub\\w.bin', /backslash/],
    ['*/_ORT_MEM_ADDR_/*', /in-memory address marker/],
    ['', /is empty/],
    ['w\u0000.bin', /control character/],
  ])('rejects location %j', (location, why) => {
    const error = errorOf(externalIdentity(location), { externalData: [{ location, size: 16 }] });
    expect(error.code).toBe('EXTERNAL_DATA_PATH');
    expect(error.message).toMatch(why);
    expect(error.message).toContain('tensor graph.initializer[0] "W"');
  });

  it.each(['w.bin', 'sub/w.bin', './w.bin', 'a..b.bin'])('accepts location %j', (location) => {
    expect(codeOf(externalIdentity(location), { externalData: [{ location, size: 16 }] })).toBe('accepted');
  });

  it('rejects a duplicate location key (B8)', () => {
    const model = identityModel({
      name: 'W',
      dims: [4],
      external: [
        ['location', 'w.bin'],
        ['offset', '0'],
        ['length', '16'],
        ['location', '../x.bin'],
      ],
    });
    const error = errorOf(model, { externalData: [W] });
    expect(error.code).toBe('EXTERNAL_DATA_PATH');
    expect(error.message).toMatch(/key "location" more than once/);
  });
});

describe('B9 EXTERNAL_DATA_RANGE', () => {
  it('rejects an offset or length past the end of a file of known size', () => {
    expect(codeOf(externalIdentity('w.bin', { offset: '8' }), { externalData: [W] })).toBe(
      'EXTERNAL_DATA_RANGE',
    );
    expect(codeOf(externalIdentity('w.bin', { offset: '4096' }), { externalData: [W] })).toBe(
      'EXTERNAL_DATA_RANGE',
    );
    // The same model passes when the file is big enough, or its size is unknown (a URL).
    expect(
      codeOf(externalIdentity('w.bin', { offset: '8' }), { externalData: [{ location: 'w.bin', size: 24 }] }),
    ).toBe('accepted');
    expect(
      codeOf(externalIdentity('w.bin', { offset: '8' }), { externalData: [{ location: 'w.bin' }] }),
    ).toBe('accepted');
  });

  it('rejects a length that is not shape × dtype size', () => {
    const error = errorOf(externalIdentity('w.bin', { length: '12' }), { externalData: [W] });
    expect(error.code).toBe('EXTERNAL_DATA_RANGE');
    expect(error.message).toMatch(/length is 12 bytes but \[4\] float32 needs 16/);
  });

  it.each(['-4', '1e3', '0x10', '99999999999999999999'])('rejects offset %j', (offset) => {
    expect(codeOf(externalIdentity('w.bin', { offset }), { externalData: [W] })).toBe('EXTERNAL_DATA_RANGE');
  });
});

describe('B10 external data with no files given', () => {
  it('refuses a model from bytes with external data when the caller gives no files', () => {
    const error = errorOf(externalIdentity('w.bin'));
    expect(error.code).toBe('EXTERNAL_DATA_PATH');
    expect(error.message).toMatch(/resolve them against its working directory/);
    expect(errorOf(externalIdentity('w.bin'), { externalData: [{ location: 'v.bin' }] }).message).toMatch(
      /"w\.bin" but options\.externalData has no entry for it \(given: \["v\.bin"\]\)/,
    );
  });
});

describe('B11 TENSOR_DATA_SIZE', () => {
  it('rejects raw_data of the wrong size', () => {
    const error = errorOf(identityModel({ name: 'W', dims: [4], raw: new Uint8Array(3) }));
    expect(error.code).toBe('TENSOR_DATA_SIZE');
    expect(error.message).toMatch(/raw_data holds 3 bytes but \[4\] float32 needs 16/);
  });

  it('rejects typed data of the wrong count and a tensor without data', () => {
    expect(codeOf(identityModel({ name: 'W', dims: [4], floatData: [1, 2, 3] }))).toBe('TENSOR_DATA_SIZE');
    expect(codeOf(identityModel({ name: 'W', dims: [4], floatData: [1, 2, 3, 4] }))).toBe('accepted');
    expect(codeOf(identityModel({ name: 'W', dims: [4] }))).toBe('TENSOR_DATA_SIZE');
    expect(codeOf(identityModel({ name: 'W', dims: [0] }))).toBe('accepted');
  });
});

describe('B12 DIM_LIMIT', () => {
  it('rejects negative dims and element counts past the limit', () => {
    expect(errorOf(identityModel({ name: 'W', dims: [-1], raw: new Uint8Array(4) })).message).toMatch(
      /negative dim in \[-1\]/,
    );
    const overflow = identityModel({ name: 'W', dims: [2n ** 32n, 2n ** 32n], raw: new Uint8Array(4) });
    expect(errorOf(overflow).message).toMatch(/over the limit of 1099511627776/);
    const wrapping = identityModel({ name: 'W', dims: [2n ** 62n, 4n], raw: new Uint8Array(4) });
    expect(codeOf(wrapping)).toBe('DIM_LIMIT');
    expect(
      codeOf(identityModel({ name: 'W', dims: [2, 2], raw: new Uint8Array(16) }), { maxTensorElements: 3 }),
    ).toBe('DIM_LIMIT');
  });

  it('rejects a negative dim in a graph input', () => {
    const model = craftModel({
      graph: {
        nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
        inputs: [{ name: 'x', dims: [-5, 3] }],
        outputs: [{ name: 'y' }],
      },
    });
    expect(errorOf(model).message).toMatch(/input\/output "x" has dim -5/);
  });
});

describe('B13 UNSUPPORTED_OP', () => {
  const withNode = (opType: string, domain?: string) =>
    craftModel({
      graph: {
        nodes: [
          { opType: 'Relu', inputs: ['x'], outputs: ['a'] },
          { opType, domain, name: 'evil', inputs: ['a'], outputs: ['y'] },
        ],
        outputs: [{ name: 'y' }],
      },
    });

  it.each([
    ['ZipMap', 'ai.onnx.ml'],
    ['Gradient', 'ai.onnx.preview.training'],
    ['FusedConv', 'com.microsoft'],
    ['Evil', 'com.example'],
    ['Loop', ''],
    ['StringNormalizer', ''],
  ])('rejects %s from %j, naming the node', (op, domain) => {
    const error = errorOf(withNode(op, domain));
    expect(error.code).toBe('UNSUPPORTED_OP');
    expect(error.message).toContain(
      `node 1 "evil" at graph.node[1] uses op ${op} from domain "${domain || 'ai.onnx'}"`,
    );
  });

  it('finds ops inside subgraphs and accepts allowed ops and an extended list', () => {
    const inIf = craftModel({
      graph: {
        nodes: [
          {
            opType: 'If',
            inputs: ['c'],
            outputs: ['y'],
            graphs: {
              then_branch: {
                nodes: [{ opType: 'TfIdfVectorizer', inputs: [], outputs: ['b'] }],
                outputs: [{ name: 'b' }],
              },
            },
          },
        ],
        outputs: [{ name: 'y' }],
      },
    });
    expect(errorOf(inIf).message).toContain(
      'node 0 "TfIdfVectorizer_node" at graph.node[0](If).then_branch.node[0]',
    );
    expect(codeOf(withNode('Relu', 'ai.onnx'))).toBe('accepted');
    expect(codeOf(withNode('Loop'), { allowedOps: new Set(['Relu', 'Loop']) })).toBe('accepted');
  });

  it("accepts only the listed com.microsoft ops (the backbones' fused attention), and only in that domain", () => {
    expect(codeOf(withNode('MultiHeadAttention', 'com.microsoft'))).toBe('accepted');
    expect(codeOf(withNode('MultiHeadAttention', ''))).toBe('UNSUPPORTED_OP');
    expect(codeOf(withNode('MultiHeadAttention', 'com.example'))).toBe('UNSUPPORTED_OP');
    expect(codeOf(withNode('MultiHeadAttention', 'com.microsoft'), { allowedContribOps: new Set() })).toBe(
      'UNSUPPORTED_OP',
    );
    expect(codeOf(withNode('FastGelu', 'com.microsoft'))).toBe('accepted');
    expect(
      codeOf(withNode('Attention', 'com.microsoft'), { allowedContribOps: new Set(['Attention']) }),
    ).toBe('accepted');
    expect(errorOf(withNode('Attention', 'com.microsoft')).message).toContain(
      'only the default ONNX domain and com.microsoft FastGelu, MultiHeadAttention are allowed',
    );
  });
});

describe('dcae models', () => {
  it('pass checkModel with their external data', () => {
    const g = new GraphBuilder({ name: 'conv' });
    const x = g.input('x', 'float32', [1, 3, 'h', 'w']);
    const weight = g.initializer('weight', {
      kind: 'external',
      dtype: 'float32',
      shape: [4, 3, 3, 3],
      location: 'm.safetensors',
      offset: 100,
      length: 432,
    });
    g.output(g.root.conv(x, weight, undefined, { pads: [1, 1, 1, 1] }), 'y', [1, 4, 'h', 'w']);
    const model = serializeModel(g.build());
    expect(codeOf(model, { externalData: [{ location: 'm.safetensors', size: 532 }] })).toBe('accepted');
    expect(codeOf(model, { externalData: [{ location: 'm.safetensors', size: 531 }] })).toBe(
      'EXTERNAL_DATA_RANGE',
    );
  });
});

describe('fuzz', () => {
  const base = craftModel({
    graph: {
      nodes: [
        {
          opType: 'If',
          inputs: ['c'],
          outputs: ['y'],
          graphs: {
            then_branch: {
              nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['b'] }],
              outputs: [{ name: 'b', dims: [2] }],
            },
          },
        },
      ],
      initializers: [
        { name: 'W', dims: [2], raw: f32Bytes([1, 2]) },
        {
          name: 'V',
          dims: [4],
          external: [
            ['location', 'w.bin'],
            ['offset', '0'],
            ['length', '16'],
          ],
        },
      ],
      inputs: [{ name: 'x', dims: ['n', 2] }],
      outputs: [{ name: 'y', dims: [2] }],
    },
  });
  type Mutation =
    | { kind: 'set'; at: number; value: number }
    | { kind: 'cut'; at: number }
    | { kind: 'insert'; at: number; bytes: Uint8Array }
    | { kind: 'splice'; from: number; to: number; length: number };
  const mutation: fc.Arbitrary<Mutation> = fc.oneof(
    fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
    fc.record({ kind: fc.constant('cut' as const), at: fc.nat() }),
    fc.record({
      kind: fc.constant('insert' as const),
      at: fc.nat(),
      bytes: fc.uint8Array({ maxLength: 12 }),
    }),
    fc.record({
      kind: fc.constant('splice' as const),
      from: fc.nat(),
      to: fc.nat(),
      length: fc.integer({ min: 1, max: 40 }),
    }),
  );
  const apply = (bytes: Uint8Array, m: Mutation): Uint8Array => {
    const n = bytes.length;
    switch (m.kind) {
      case 'set': {
        const out = bytes.slice();
        out[m.at % n] = m.value;
        return out;
      }
      case 'cut':
        return bytes.subarray(0, m.at % n);
      case 'insert':
        return Uint8Array.from([...bytes.subarray(0, m.at % n), ...m.bytes, ...bytes.subarray(m.at % n)]);
      case 'splice': {
        const out = bytes.slice();
        out.copyWithin(m.to % n, m.from % n, (m.from % n) + m.length);
        return out;
      }
    }
  };

  it('random mutations of a valid model give an inspection or a DcaeError, never anything else', () => {
    expect(codeOf(base, { externalData: [{ location: 'w.bin', size: 16 }] })).toBe('accepted');
    const started = Date.now();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        let bytes = base;
        for (const m of mutations) bytes = apply(bytes, m);
        try {
          checkModel(bytes, { externalData: [{ location: 'w.bin', size: 16 }] });
        } catch (error) {
          if (!(error instanceof DcaeError)) throw error;
        }
      }),
      { seed: 20261126, numRuns: 3000 },
    );
    expect(Date.now() - started).toBeLessThan(10_000);
  });
});
