/**
 * onnxruntime as a second, independent reader of serializeModel's output: what it reports about
 * inputs and outputs, and attribute kinds the op helpers do not otherwise exercise.
 */
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { f32, runModel } from './onnx-support.js';

describe('serialized models as onnxruntime reads them', () => {
  it('keeps input/output names, element types and symbolic dims', async () => {
    const g = new GraphBuilder({ name: 'io', metadata: { note: 'x' } });
    const x = g.input('sample', 'float32', ['batch', 3, 'height', 'width']);
    const ids = g.input('ids', 'int64', ['n']);
    const m = g.root.child('net');
    g.output(m.relu(x), 'image', ['batch', 3, 'height', 'width']);
    g.output(m.cast(ids, 'int32'), 'ids32', ['n']);
    g.output(m.greater(ids, m.constant([0], 'int64')), 'positive', ['n']);
    const session = await ort.InferenceSession.create(serializeModel(g.build()));
    try {
      expect(session.inputNames).toEqual(['sample', 'ids']);
      expect(session.outputNames).toEqual(['image', 'ids32', 'positive']);
      expect(session.inputMetadata).toEqual([
        { name: 'sample', isTensor: true, type: 'float32', shape: ['batch', 3, 'height', 'width'] },
        { name: 'ids', isTensor: true, type: 'int64', shape: ['n'] },
      ]);
      expect(session.outputMetadata.map((o) => (o.isTensor ? [o.name, o.type, o.shape] : o.name))).toEqual([
        ['image', 'float32', ['batch', 3, 'height', 'width']],
        ['ids32', 'int32', ['n']],
        ['positive', 'bool', ['n']],
      ]);
    } finally {
      await session.release();
    }
  });

  it('encodes float-list and float attributes onnxruntime can read (op() escape hatch)', async () => {
    const g = new GraphBuilder({ name: 'attrs' });
    const x = g.input('x', 'float32', [3]);
    const m = g.root;
    const c = m.op(
      'Constant',
      [],
      { value_floats: { kind: 'floats', value: [1.5, -2, 0.25] } },
      { dtype: 'float32' },
    )[0]!;
    const leaky = m.op('LeakyRelu', [x], { alpha: { kind: 'float', value: 0.125 } })[0]!;
    g.output(m.add(c, leaky), 'y', [3]);
    const out = await runModel(g.build(), { x: f32([3], [4, -8, -1]) });
    expect(out.y!.values).toEqual([1.5 + 4, -2 - 1, 0.25 - 0.125]);
  });
});
