/**
 * Initializers of kind 'external' pointing into a safetensors-style weights file, at offsets that
 * are not 4-byte aligned (as in real checkpoints, whose header length is arbitrary), loaded by
 * onnxruntime-node from in-memory bytes and from a model file next to the weights on disk.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, externalLocations, serializeModel } from '@dcae/core/onnx';
import type { InitializerData, OnnxModel } from '@dcae/core/onnx';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Nd, conv2d, gemm } from './onnx-reference.js';
import { expectClose, randomF32, runModel } from './onnx-support.js';

const LOCATION = 'w.safetensors';

interface Entry {
  readonly name: string;
  readonly tensor: HostTensor;
  readonly st: 'F32' | 'U8';
}

/** A safetensors file: u64-LE header length, JSON header padded with spaces to `headerLength`, data. */
function safetensors(
  entries: readonly Entry[],
  headerLength: number,
): { bytes: Buffer; offsets: Map<string, [number, number]> } {
  const header: Record<string, unknown> = {};
  const offsets = new Map<string, [number, number]>();
  let cursor = 0;
  for (const { name, tensor, st } of entries) {
    const length = tensor.data.byteLength;
    header[name] = { dtype: st, shape: tensor.shape, data_offsets: [cursor, cursor + length] };
    offsets.set(name, [8 + headerLength + cursor, length]);
    cursor += length;
  }
  const json = JSON.stringify(header);
  expect(json.length).toBeLessThanOrEqual(headerLength);
  const bytes = Buffer.alloc(8 + headerLength + cursor);
  bytes.writeBigUInt64LE(BigInt(headerLength), 0);
  bytes.write(json.padEnd(headerLength, ' '), 8, 'utf8');
  for (const { name, tensor } of entries) {
    const [start] = offsets.get(name)!;
    bytes.set(new Uint8Array(tensor.data.buffer, tensor.data.byteOffset, tensor.data.byteLength), start);
  }
  return { bytes, offsets };
}

const weight = randomF32([4, 3], 1);
const bias = randomF32([4], 2);
const kernel = randomF32([2, 4, 3, 3], 3);
const filler: HostTensor = { dtype: 'uint8', shape: [2], data: Uint8Array.from([0xab, 0xcd]) };
// 8 + 401 = 409 ≡ 1 (mod 4): proj.weight starts at 409 ≡ 1, proj.bias at 409 + 48 + 2 = 459 ≡ 3.
const file = safetensors(
  [
    { name: 'proj.weight', tensor: weight, st: 'F32' },
    { name: 'filler', tensor: filler, st: 'U8' },
    { name: 'proj.bias', tensor: bias, st: 'F32' },
    { name: 'conv.weight', tensor: kernel, st: 'F32' },
  ],
  401,
);

function external(name: string, tensor: HostTensor): InitializerData {
  const [offset, length] = file.offsets.get(name)!;
  return { kind: 'external', dtype: 'float32', shape: tensor.shape, location: LOCATION, offset, length };
}

/** y = x·Wᵀ + b with W, b external; z = conv(image, K) with K external and an inline bias. */
function buildModel(): OnnxModel {
  const g = new GraphBuilder({
    name: 'external',
    params: (key) => external(key, { 'proj.weight': weight, 'proj.bias': bias, 'conv.weight': kernel }[key]!),
  });
  const x = g.input('x', 'float32', ['n', 3]);
  const image = g.input('image', 'float32', [1, 4, 5, 5]);
  const proj = g.root.child('proj');
  g.output(proj.gemm(x, proj.param('weight', [4, 3]), proj.param('bias', [4]), { transB: true }), 'y', [
    'n',
    4,
  ]);
  const conv = g.root.child('conv');
  const convBias = conv.constant([0.5, -0.25]);
  g.output(
    conv.conv(image, conv.param('weight', [2, 4, 3, 3]), convBias, { pads: [1, 1, 1, 1] }),
    'z',
    [1, 2, 5, 5],
  );
  return g.build();
}

const x = randomF32([3, 3], 4);
const image = randomF32([1, 4, 5, 5], 5);
const expectedY = gemm(Nd.of(x), Nd.of(weight), Nd.of(bias), { transB: true });
const expectedZ = conv2d(Nd.of(image), Nd.of(kernel), new Nd([2], [0.5, -0.25]), { pads: [1, 1, 1, 1] });

describe('external initializers in a safetensors file at unaligned offsets', () => {
  let dir = '';
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dcae-external-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('the fixture really is unaligned', () => {
    expect(file.offsets.get('proj.weight')![0] % 4).toBe(1);
    expect(file.offsets.get('proj.bias')![0] % 4).toBe(3);
    expect(file.offsets.get('conv.weight')![0] % 4).toBe(3);
    const model = buildModel();
    expect(externalLocations(model)).toEqual([LOCATION]);
    expect(model.graph.initializers.filter((i) => i.data.kind === 'external').map((i) => i.name)).toEqual([
      'proj.weight',
      'proj.bias',
      'conv.weight',
    ]);
  });

  it('loads from model bytes with the weights passed as externalData', async () => {
    const out = await runModel(
      serializeModel(buildModel()),
      { x, image },
      { externalData: [{ path: LOCATION, data: file.bytes }] },
    );
    expectClose(out.y!, expectedY);
    expectClose(out.z!, expectedZ);
  });

  it('loads from a model file next to the weights file', async () => {
    await writeFile(join(dir, LOCATION), file.bytes);
    await writeFile(join(dir, 'model.onnx'), serializeModel(buildModel()));
    const out = await runModel(join(dir, 'model.onnx'), { x, image });
    expectClose(out.y!, expectedY);
    expectClose(out.z!, expectedZ);
  });

  it('fails to load when the weights are not supplied', async () => {
    const empty = await mkdtemp(join(tmpdir(), 'dcae-external-missing-'));
    try {
      await writeFile(join(empty, 'model.onnx'), serializeModel(buildModel()));
      await expect(runModel(join(empty, 'model.onnx'), { x, image })).rejects.toThrow(/w\.safetensors/);
    } finally {
      await rm(empty, { recursive: true, force: true });
    }
  });

  it('fails to load when the weights file is shorter than an initializer claims', async () => {
    const truncated = file.bytes.subarray(0, file.offsets.get('conv.weight')![0] + 10);
    await expect(
      runModel(
        serializeModel(buildModel()),
        { x, image },
        { externalData: [{ path: LOCATION, data: truncated }] },
      ),
    ).rejects.toThrow(/conv\.weight.*out of bounds/);
  });
});
