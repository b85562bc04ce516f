import { describe, expect, it } from 'vitest';
import { DcaeError } from '../src/errors.js';
import {
  GraphBuilder,
  describeModel,
  externalLocations,
  initializerDType,
  initializerShape,
  ONNX_IR_VERSION,
  ONNX_OPSET,
} from '../src/onnx/index.js';
import type { InitializerData, OnnxModel } from '../src/onnx/index.js';

const zeros = (shape: readonly number[]): InitializerData => ({
  kind: 'inline',
  tensor: { dtype: 'float32', shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) },
});

function thrown(f: () => unknown): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error('expected a throw');
}

describe('GraphBuilder', () => {
  it('names modules by checkpoint path and nodes by module path, unique within the graph', () => {
    const g = new GraphBuilder({ name: 'names', params: (_key, shape) => zeros(shape) });
    const x = g.input('x', 'float32', [1, 4, 8, 8]);
    const block = g.root.child('encoder').child('down_blocks').child(1);
    expect(block.path).toBe('encoder.down_blocks.1');
    expect(g.root.path).toBe('');
    const conv = block.child('conv');
    const y = conv.conv(x, conv.param('weight', [4, 4, 3, 3]), conv.param('bias', [4]), {
      pads: [1, 1, 1, 1],
    });
    const z = conv.conv(y, conv.param('weight', [4, 4, 3, 3]));
    g.output(z, 'out', [1, 4, 6, 6]);
    const { graph } = g.build();
    expect(graph.nodes.map((n) => [n.name, n.opType, n.inputs, n.outputs])).toEqual([
      [
        '/encoder/down_blocks/1/conv/Conv',
        'Conv',
        ['x', 'encoder.down_blocks.1.conv.weight', 'encoder.down_blocks.1.conv.bias'],
        ['/encoder/down_blocks/1/conv/Conv_output_0'],
      ],
      [
        '/encoder/down_blocks/1/conv/Conv_1',
        'Conv',
        ['/encoder/down_blocks/1/conv/Conv_output_0', 'encoder.down_blocks.1.conv.weight'],
        ['/encoder/down_blocks/1/conv/Conv_1_output_0'],
      ],
      ['/out/Identity', 'Identity', ['/encoder/down_blocks/1/conv/Conv_1_output_0'], ['out']],
    ]);
    // The weight is bound once, even though it was asked for twice.
    expect(graph.initializers.map((i) => i.name)).toEqual([
      'encoder.down_blocks.1.conv.weight',
      'encoder.down_blocks.1.conv.bias',
    ]);
  });

  it('passes each parameter’s checkpoint key and expected shape to the resolver; root params have no prefix', () => {
    const asked: [string, readonly number[]][] = [];
    const g = new GraphBuilder({
      name: 'keys',
      params: (key, shape) => {
        asked.push([key, shape]);
        return zeros(shape);
      },
    });
    const x = g.input('x', 'float32', [2]);
    g.output(g.root.add(g.root.param('scale', [2]), g.root.child('a').child(0).param('b', [1])), 'y', [2]);
    void x;
    expect(asked).toEqual([
      ['scale', [2]],
      ['a.0.b', [1]],
    ]);
  });

  it('rejects a parameter without a resolver, naming the key and shape', () => {
    const g = new GraphBuilder({ name: 'no_params' });
    const error = thrown(() => g.root.child('proj').param('weight', [4, 3]));
    expect(DcaeError.is(error, 'GRAPH_INVALID')).toBe(true);
    expect((error as Error).message).toContain('"proj.weight" [4, 3]');
  });

  it('rejects duplicate value names', () => {
    const g = new GraphBuilder({ name: 'dup' });
    g.input('x', 'float32', [1]);
    expect(
      DcaeError.is(
        thrown(() => g.input('x', 'float32', [1])),
        'GRAPH_INVALID',
      ),
    ).toBe(true);
    expect(
      DcaeError.is(
        thrown(() => g.initializer('x', zeros([1]))),
        'GRAPH_INVALID',
      ),
    ).toBe(true);
    // uniqueInitializer picks a free name instead.
    expect(g.uniqueInitializer('x', zeros([1])).name).toBe('x_1');
  });

  it('inserts an Identity only when the output name differs from the value’s', () => {
    const g = new GraphBuilder({ name: 'outputs' });
    const x = g.input('x', 'float32', [1]);
    const y = g.root.relu(x);
    g.output(y, y.name, [1]);
    g.output(y, 'renamed', [1]);
    const { graph } = g.build();
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Relu', 'Identity']);
    expect(graph.outputs.map((o) => o.name)).toEqual([y.name, 'renamed']);
  });

  it('needs at least one output', () => {
    const g = new GraphBuilder({ name: 'empty' });
    g.input('x', 'float32', [1]);
    expect(() => g.build()).toThrow(/no outputs/);
  });

  it('builds a model snapshot with opset 18 / IR 8 that later edits do not change', () => {
    const g = new GraphBuilder({ name: 'snap', metadata: { k: 'v' } });
    const x = g.input('x', 'float32', [1]);
    g.output(g.root.neg(x), 'y', [1]);
    const first = g.build();
    g.output(g.root.abs(x), 'z', [1]);
    expect(first.graph.nodes.map((n) => n.opType)).toEqual(['Neg', 'Identity']);
    expect(first.graph.outputs).toHaveLength(1);
    expect([first.opset, first.irVersion, first.producer, first.metadata]).toEqual([
      ONNX_OPSET,
      ONNX_IR_VERSION,
      'dcae',
      { k: 'v' },
    ]);
    expect([ONNX_OPSET, ONNX_IR_VERSION]).toEqual([18, 8]);
  });

  it('if: branches must return the same number of values; outer values are wrapped in an Identity', () => {
    const g = new GraphBuilder({ name: 'if' });
    const x = g.input('x', 'float32', [1]);
    const cond = g.input('c', 'bool', [1]);
    const m = g.root.child('m');
    expect(() =>
      m.if(
        cond,
        (t) => [t.neg(x)],
        (e) => [e.neg(x), e.abs(x)],
      ),
    ).toThrow(/branches return 1 and 2 values/);
    const [y] = m.if(
      cond,
      () => [x],
      (e) => [e.cast(e.neg(x), 'int32')],
    );
    expect(y!.dtype).toBe('float32');
    g.output(y!, 'y', [1]);
    const ifNode = g.build().graph.nodes.find((n) => n.opType === 'If')!;
    const then = ifNode.attributes.then_branch!;
    expect(then.kind).toBe('graph');
    if (then.kind !== 'graph') return;
    expect(then.value.nodes.map((n) => [n.opType, n.inputs])).toEqual([['Identity', ['x']]]);
    expect(then.value.outputs).toEqual([
      { name: then.value.nodes[0]!.outputs[0], dtype: 'float32', shape: undefined },
    ]);
  });

  it('rounds number constants to float16/bfloat16 bits', () => {
    const g = new GraphBuilder({ name: 'f16' });
    const half = g.root.constant([1, 1e-8, 70000, -0.1], 'float16');
    const brain = g.root.constant(3.14159, 'bfloat16');
    g.output(half, 'half', [4]);
    const initializers = g.build().graph.initializers;
    const data = (name: string) => {
      const init = initializers.find((i) => i.name === name)!.data;
      return init.kind === 'inline' ? init.tensor : undefined;
    };
    expect([half.dtype, brain.dtype]).toEqual(['float16', 'bfloat16']);
    // 1 = 0x3c00; 1e-8 is below half the smallest subnormal (2^-25) → +0; 70000 overflows → +Inf; -0.1 → 0xae66.
    expect([...(data(half.name)!.data as Uint16Array)]).toEqual([0x3c00, 0x0000, 0x7c00, 0xae66]);
    // bfloat16 keeps the float32 top half, rounded: 3.14159 = 0x40490fd0 → 0x4049.
    expect([...(data(brain.name)!.data as Uint16Array)]).toEqual([0x4049]);
    expect(data(brain.name)!.shape).toEqual([]);
  });
});

describe('model helpers', () => {
  const external: InitializerData = {
    kind: 'external',
    dtype: 'bfloat16',
    shape: [3, 2],
    location: 'b.safetensors',
    offset: 8,
    length: 12,
  };

  it('initializerShape / initializerDType read both kinds', () => {
    expect([initializerShape(zeros([2, 5])), initializerDType(zeros([2, 5]))]).toEqual([[2, 5], 'float32']);
    expect([initializerShape(external), initializerDType(external)]).toEqual([[3, 2], 'bfloat16']);
  });

  it('externalLocations lists every file, subgraphs included, sorted and unique', () => {
    const sub = {
      name: 'sub',
      nodes: [],
      initializers: [{ name: 's', data: external }],
      inputs: [],
      outputs: [],
    };
    const model: OnnxModel = {
      opset: 18,
      irVersion: 8,
      producer: 'test',
      metadata: {},
      graph: {
        name: 'main',
        inputs: [],
        outputs: [],
        initializers: [
          { name: 'a', data: { ...external, location: 'z.safetensors' } },
          { name: 'b', data: zeros([1]) },
          { name: 'c', data: { ...external, location: 'z.safetensors', offset: 20 } },
        ],
        nodes: [
          {
            name: 'if',
            opType: 'If',
            inputs: ['c'],
            outputs: ['o'],
            attributes: { then_branch: { kind: 'graph', value: sub } },
          },
        ],
      },
    };
    expect(externalLocations(model)).toEqual(['b.safetensors', 'z.safetensors']);
  });
});

describe('describeModel', () => {
  it('prints one line per input, initializer, node and output, with subgraphs indented', () => {
    const g = new GraphBuilder({ name: 'dump' });
    const x = g.input('sample', 'float32', ['batch', 2, 'h', 'w']);
    const m = g.root.child('conv_in');
    const w = g.initializer('conv_in.weight', {
      kind: 'external',
      dtype: 'float32',
      shape: [4, 2, 3, 3],
      location: 'model.safetensors',
      offset: 1024,
      length: 288,
    });
    const y = m.conv(x, w, undefined, { pads: [1, 1, 1, 1] });
    const [z] = m.if(
      m.greater(m.shape(y, 2, 3), m.constant([8], 'int64')),
      (t) => [t.relu(y)],
      (e) => [e.mul(y, e.constant(0.5))],
    );
    g.output(z!, 'latent', ['batch', 4, 'h', 'w']);
    expect(describeModel(g.build())).toMatchInlineSnapshot(`
      "model dump (opset 18, ir 8)
      input  sample: float32 [batch, 2, h, w]
      init   conv_in.weight: float32 [4, 2, 3, 3] @ model.safetensors+1024
      init   /conv_in/Constant: int64 [1]
      init   /conv_in/else_branch/Constant: float32 []
      node   /conv_in/Conv: /conv_in/Conv_output_0 = Conv(sample, conv_in.weight) {dilations=[1, 1], group=1, pads=[1, 1, 1, 1], strides=[1, 1]}
      node   /conv_in/Shape: /conv_in/Shape_output_0 = Shape(/conv_in/Conv_output_0) {end=3, start=2}
      node   /conv_in/Greater: /conv_in/Greater_output_0 = Greater(/conv_in/Shape_output_0, /conv_in/Constant)
      node   /conv_in/If: /conv_in/If_output_0 = If(/conv_in/Greater_output_0)
        else_branch:
          node   /conv_in/else_branch/Mul: /conv_in/else_branch/Mul_output_0 = Mul(/conv_in/Conv_output_0, /conv_in/else_branch/Constant)
          output /conv_in/else_branch/Mul_output_0: float32 [?]
        then_branch:
          node   /conv_in/then_branch/Relu: /conv_in/then_branch/Relu_output_0 = Relu(/conv_in/Conv_output_0)
          output /conv_in/then_branch/Relu_output_0: float32 [?]
      node   /latent/Identity: latent = Identity(/conv_in/If_output_0)
      output latent: float32 [batch, 4, h, w]"
    `);
  });
});
