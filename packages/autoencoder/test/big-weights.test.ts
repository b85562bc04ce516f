import type { ByteSource } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Autoencoder, DcAeConfig, ModelFiles } from '../src/index.js';
import { DC_AE_PRESETS, dcAeCheckpointLayout, loadAutoencoder, planRun } from '../src/index.js';

/**
 * The real f128c512 decoder at full size, without its 2.8 GB of weights: the checkpoint is virtual,
 * a safetensors header whose data reads as zeros, which is all that loading, graph building and
 * export planning touch (plus the BatchNorm folds). Running such a model and measuring its memory
 * is the `ae-tiling` bench's job.
 */

const WEIGHTS = 'diffusion_pytorch_model.safetensors';

/** A diffusers checkpoint of `config`'s `parts` whose tensor data is never stored. */
function virtualCheckpoint(
  name: string,
  config: DcAeConfig,
  parts: readonly string[],
): { files: ModelFiles; dataBytes: number; reads: () => number } {
  const params = dcAeCheckpointLayout(config).params.filter((p) =>
    parts.some((part) => p.key.startsWith(`${part}.`)),
  );
  const header: Record<string, unknown> = {};
  let cursor = 0;
  for (const p of params) {
    const length = p.role === 'counter' ? 8 : p.shape.reduce((a, b) => a * b, 1) * 4;
    header[p.key] = {
      dtype: p.role === 'counter' ? 'I64' : 'F32',
      shape: p.shape,
      data_offsets: [cursor, cursor + length],
    };
    cursor += length;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const head = new Uint8Array(8 + json.byteLength);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.byteLength), true);
  head.set(json, 8);
  let readBytes = 0;
  const source: ByteSource = {
    name: `${name}/${WEIGHTS}`,
    size: head.byteLength + cursor,
    read: async (offset, length) => {
      readBytes += length;
      const out = new Uint8Array(length);
      if (offset < head.byteLength) out.set(head.subarray(offset, offset + length));
      return out;
    },
  };
  const files: ModelFiles = {
    name,
    list: async () => [WEIGHTS],
    readText: async () => {
      throw new Error('no config.json: the config is passed in');
    },
    byteSource: async () => source,
    externalDataLocation: () => `/nonexistent/${WEIGHTS}`,
  };
  return { files, dataBytes: cursor, reads: () => readBytes };
}

/** Loading never starts a session, so no runtime is needed. */
const noRuntime = {
  specificationVersion: 'v1',
  name: 'none',
  devices: ['cpu'],
  createSession: () => Promise.reject(new Error('not in this test')),
  dispose: async () => undefined,
} as const satisfies RuntimeV1;

describe('dc-ae-f128c512-in-1.0 decoder at full size (virtual weights)', () => {
  const config = DC_AE_PRESETS['dc-ae-f128c512-in-1.0'];
  const checkpoint = virtualCheckpoint('f128c512', config, ['decoder']);
  let ae: Autoencoder;
  let readAtLoad = 0;
  beforeAll(async () => {
    ae = await loadAutoencoder(checkpoint.files, { runtime: noRuntime, config, parts: ['decoder'] });
    readAtLoad = checkpoint.reads();
  });
  afterAll(async () => {
    await ae?.dispose();
  });

  it('binds the decoder alone, reading only the header', () => {
    expect(checkpoint.dataBytes / 2.82e9).toBeCloseTo(1, 2);
    expect(ae.parts).toEqual(['decoder']);
    expect(readAtLoad).toBeLessThan(1e6);
  });

  it('builds the graph over external data into the checkpoint; only the BatchNorm folds are inline', async () => {
    const model = await ae.buildGraph('decoder');
    const weights = model.graph.initializers.filter((i) => !i.name.startsWith('/'));
    const inline = weights.filter((i) => i.data.kind === 'inline').map((i) => i.name);
    const folds = dcAeCheckpointLayout(config).folds.flatMap((f) => [f.conv, f.bias]);
    expect(inline.sort()).toEqual(folds.filter((k) => k.startsWith('decoder.')).sort());
    expect(inline).toHaveLength(30); // 15 ResBlocks with BatchNorm in stages 1 and 2
    const external = model.graph.initializers.reduce(
      (sum, i) => sum + (i.data.kind === 'external' ? i.data.length : 0),
      0,
    );
    expect(external / checkpoint.dataBytes).toBeGreaterThan(0.95);
  });

  it("exports to decoder.onnx_data next to decoder.onnx ('auto' goes external over 1 GiB)", async () => {
    const files = await ae.onnxFiles();
    expect(files.map((f) => f.name)).toEqual(['decoder.onnx', 'decoder.onnx_data']);
    expect(files[0]!.size).toBeLessThan(1e6);
    expect(files[1]!.size / checkpoint.dataBytes).toBeCloseTo(1, 2);
    // Planning the files reads the folds only; the data is produced while writing.
    expect(checkpoint.reads()).toBeLessThan(0.1 * checkpoint.dataBytes);
  });
});

describe.each([
  ['dc-ae-f64c128-in-1.0', 64],
  ['dc-ae-f128c512-in-1.0', 128],
] as const)('%s tiling', (preset, f) => {
  it('keeps tile size and stride multiples of f', () => {
    const config = DC_AE_PRESETS[preset];
    const plan = planRun(config, 'decode', [1, config.latentChannels, 8192 / f, 4096 / f], {
      tiling: 'always',
    });
    expect(plan.tiles!.stride % f).toBe(0);
    expect(plan.tiles!.tileSize % f).toBe(0);
    expect(plan.tiles!.overlap).toBeGreaterThanOrEqual(64);
  });
});
