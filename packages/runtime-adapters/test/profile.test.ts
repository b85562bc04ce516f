/**
 * onnxruntime's per-kernel profiles: `profileModel` (onnxruntime-node, a trace file) and
 * `profileWasmModel` (onnxruntime-web's wasm build in a child process, a trace on stdout), on one
 * small model whose weights are external, served as a file and as bytes.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { OnnxModel } from '@dcae/core/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { profileModel, profileWasmModel } from '../src/node/index.js';
import type { ModelProfile } from '../src/node/index.js';
import { randomF32 } from './onnx-support.js';

const LOCATION = 'weights.bin';
const kernel = randomF32([8, 4, 3, 3], 1);
const depthwise = randomF32([8, 1, 3, 3], 2);
const weightBytes = kernel.data.byteLength;

/** conv 3×3 (4 → 8), ReLU, depthwise 3×3: both kernels in one external file. */
function buildModel(): OnnxModel {
  const g = new GraphBuilder({
    name: 'profiled',
    params: (key) =>
      key === 'dense.weight'
        ? {
            kind: 'external',
            dtype: 'float32',
            shape: [8, 4, 3, 3],
            location: LOCATION,
            offset: 0,
            length: weightBytes,
          }
        : {
            kind: 'external',
            dtype: 'float32',
            shape: [8, 1, 3, 3],
            location: LOCATION,
            offset: weightBytes,
            length: depthwise.data.byteLength,
          },
  });
  const x = g.input('x', 'float32', [1, 4, 32, 32]);
  const dense = g.root.child('dense');
  const h = g.root.relu(
    dense.conv(x, dense.param('weight', [8, 4, 3, 3]), undefined, { pads: [1, 1, 1, 1] }),
  );
  const dw = g.root.child('dw');
  g.output(
    dw.conv(h, dw.param('weight', [8, 1, 3, 3]), undefined, { pads: [1, 1, 1, 1], group: 8 }),
    'y',
    [1, 8, 32, 32],
  );
  return g.build();
}

const file = new Uint8Array(weightBytes + depthwise.data.byteLength);
file.set(new Uint8Array(kernel.data.buffer, kernel.data.byteOffset, weightBytes), 0);
file.set(
  new Uint8Array(depthwise.data.buffer, depthwise.data.byteOffset, depthwise.data.byteLength),
  weightBytes,
);
const feeds = { x: randomF32([1, 4, 32, 32], 3) };

function expectConvs(profile: ModelProfile, runs: number): void {
  expect(profile.runs).toBe(runs);
  expect(profile.runMs).toHaveLength(runs);
  for (const ms of profile.runMs) expect(ms).toBeGreaterThan(0);
  const convs = profile.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'FusedConv');
  // The ReLU may be fused into the first Conv; both convolutions stay. onnxruntime-node's NCHWc
  // layout pads the output channels of a weight to its block size (16 with AVX-512).
  const weights = convs.map((n) => n.inputShapes[1]!).sort((a, b) => a[1]! - b[1]!);
  expect(weights.map((w) => w.slice(1))).toEqual([
    [1, 3, 3],
    [4, 3, 3],
  ]);
  for (const w of weights) expect(w[0]! % 8).toBe(0);
  expect(profile.totalUs).toBeGreaterThan(0);
  expect(profile.totalUs).toBe(profile.nodes.reduce((s, n) => s + n.durationUs, 0));
  const byOp = profile.byOpType.reduce((s, o) => s + o.durationUs, 0);
  expect(byOp).toBe(profile.totalUs);
  for (const node of profile.nodes) expect(node.provider).toBe('CPUExecutionProvider');
}

describe('profiling', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcae-profile-test-'));
    await writeFile(join(dir, LOCATION), file);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('onnxruntime-node: kernels, their input shapes and run times (weights read from their folder)', async () => {
    const profile = await profileModel(serializeModel(buildModel()), feeds, {
      runs: 2,
      threads: 1,
      externalData: [{ location: LOCATION, data: join(dir, LOCATION) }],
    });
    expectConvs(profile, 2);
  });

  it('onnxruntime-web wasm: the same profile from its stdout trace, weights from a file and as bytes', async () => {
    const before = (await readdir(tmpdir())).filter((f) => f.startsWith('dcae-wasm-profile-')).length;
    const fromFile = await profileWasmModel(serializeModel(buildModel()), feeds, {
      runs: 2,
      externalData: [{ location: LOCATION, data: join(dir, LOCATION) }],
    });
    expectConvs(fromFile, 2);
    const fromBytes = await profileWasmModel(serializeModel(buildModel()), feeds, {
      externalData: [{ location: LOCATION, data: file }],
    });
    expectConvs(fromBytes, 1);
    // The temporary folder (model and weight copies) is gone.
    const after = (await readdir(tmpdir())).filter((f) => f.startsWith('dcae-wasm-profile-')).length;
    expect(after).toBe(before);
  });

  it('wasm: a missing weights file is refused before any process starts', async () => {
    const error = await profileWasmModel(serializeModel(buildModel()), feeds, {
      externalData: [{ location: LOCATION, data: join(dir, 'absent.bin') }],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DcaeError);
    expect((error as DcaeError).code).toBe('FILE_NOT_FOUND');
  });

  it('wasm: a run that fails reports onnxruntime-web’s message', async () => {
    const error = await profileWasmModel(
      serializeModel(buildModel()),
      { x: randomF32([1, 3, 32, 32], 4) },
      {
        externalData: [{ location: LOCATION, data: file }],
      },
    ).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DcaeError);
    expect((error as DcaeError).code).toBe('RUN_FAILED');
    expect((error as DcaeError).message).toMatch(/onnxruntime-web \(wasm\) failed to profile the model: .*/);
  });
});
