import { readFileSync } from 'node:fs';
import { DcaeError, parseSafetensors, serializeSafetensors } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Autoencoder } from '../src/index.js';
import { loadAutoencoder, memoryModelFiles } from '../src/index.js';
import { fixturePath, readFixtureTensors } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await runtime.dispose();
});

const NAME = 'tiny-sana-f32';
const configBytes = readFileSync(fixturePath(NAME, 'config.json'));
const weightBytes = readFileSync(fixturePath(NAME, 'diffusion_pytorch_model.safetensors'));

/** The fixture folder in memory with its weights edited by `edit`. */
function withWeights(edit: (tensors: Map<string, HostTensor>) => void) {
  const file = parseSafetensors(weightBytes);
  const tensors = new Map<string, HostTensor>();
  for (const key of file.header.tensors.keys()) tensors.set(key, file.tensor(key));
  edit(tensors);
  return memoryModelFiles(NAME, {
    'config.json': configBytes,
    'diffusion_pytorch_model.safetensors': serializeSafetensors(tensors),
  });
}

async function rejection(promise: Promise<unknown>): Promise<DcaeError> {
  try {
    await promise;
  } catch (error) {
    if (DcaeError.is(error)) return error;
    throw error;
  }
  throw new Error('expected a DcaeError');
}

describe('loading bad weights', () => {
  it('lists every missing, unused, mis-shaped and non-float tensor in one WEIGHTS_MISMATCH', async () => {
    const files = withWeights((tensors) => {
      tensors.delete('decoder.norm_out.bias');
      tensors.delete('encoder.down_blocks.3.0.attn.to_k.weight');
      tensors.set('encoder.extra.weight', { dtype: 'float32', shape: [2], data: new Float32Array(2) });
      tensors.set('encoder.conv_out.weight', {
        dtype: 'float32',
        shape: [16, 64, 3, 3],
        data: new Float32Array(16 * 64 * 9),
      });
      const bias = tensors.get('decoder.conv_out.bias')!;
      tensors.set('decoder.conv_out.bias', {
        dtype: 'int32',
        shape: bias.shape,
        data: Int32Array.from(bias.data as Float32Array),
      });
    });
    const error = await rejection(loadAutoencoder(files, { runtime }));
    expect(error.code).toBe('WEIGHTS_MISMATCH');
    expect(error.message).toContain('missing decoder.norm_out.bias expected [8]');
    expect(error.message).toContain('missing encoder.down_blocks.3.0.attn.to_k.weight expected [32, 32]');
    expect(error.message).toContain('unused  encoder.extra.weight [2]');
    expect(error.message).toContain(
      'shape   encoder.conv_out.weight expected [8, 64, 3, 3], found [16, 64, 3, 3]',
    );
    expect(error.message).toContain(
      'dtype   decoder.conv_out.bias is I32; DC-AE weights must be F32, F16 or BF16',
    );
    expect(error.detail?.problems).toHaveLength(5);
  });

  it('names the original key for original-format checkpoints', async () => {
    const files = memoryModelFiles('f32', {
      'config.json': new TextEncoder().encode('{"model_name": "dc-ae-f32c32-sana-1.0"}'),
      'model.safetensors': weightBytes,
    });
    const error = await rejection(loadAutoencoder(files, { runtime }));
    expect(error.code).toBe('WEIGHTS_MISMATCH');
    expect(error.message).toContain(
      'shape   encoder.conv_in.weight expected [128, 3, 3, 3], found [8, 3, 3, 3]',
    );
    expect(error.message).toContain(
      'missing encoder.stages.0.op_list.1.main.conv1.conv.weight (diffusers encoder.down_blocks.0.1.conv1.weight) expected [128, 128, 3, 3]',
    );
    expect(error.message).toContain(
      'missing encoder.stages.3.op_list.1.context_module.main.qkv.conv.weight (diffusers encoder.down_blocks.3.1.attn.to_q|to_k|to_v.weight) expected [1536, 512, 1, 1]',
    );
    expect(error.message).toMatch(/… and \d+ more/);
  });

  it('rejects a folder without weights, naming what it found', async () => {
    const error = await rejection(
      loadAutoencoder(memoryModelFiles('empty', { 'config.json': configBytes }), { runtime }),
    );
    expect(error.code).toBe('MODEL_NOT_FOUND');
    expect(error.message).toContain('diffusion_pytorch_model.safetensors');
    expect(error.message).toContain('config.json');
  });

  it('rejects a config.json of another model class', async () => {
    const files = memoryModelFiles('kl', {
      'config.json': new TextEncoder().encode('{"_class_name": "VQModel", "latent_channels": 4}'),
      'diffusion_pytorch_model.safetensors': weightBytes,
    });
    expect((await rejection(loadAutoencoder(files, { runtime }))).code).toBe('CONFIG_VALUE');
  });

  it('stops before reading when the signal is already aborted', async () => {
    const files = withWeights(() => undefined);
    const error = await rejection(loadAutoencoder(files, { runtime, signal: AbortSignal.abort() }));
    expect(error.code).toBe('ABORTED');
  });
});

describe('bad inputs to a loaded model', () => {
  let ae: Autoencoder;
  const sample = readFixtureTensors(NAME, 'input.safetensors').get('sample')!;
  beforeAll(async () => {
    ae = await loadAutoencoder(
      withWeights(() => undefined),
      { runtime },
    );
  });
  afterAll(async () => {
    await ae?.dispose();
  });

  const image = (shape: number[], fill = 0): HostTensor<'float32'> => {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(fill);
    return { dtype: 'float32', shape, data };
  };

  it('says which sizes would work when H or W is not a multiple of f', async () => {
    const error = await rejection(ae.encode(image([1, 3, 70, 64])));
    expect(error.code).toBe('INPUT_SIZE');
    // Sizes are W×H, as everywhere dcae prints them: 64 wide, 70 high.
    expect(error.message).toContain('cannot encode 64×70 (W×H)');
    expect(error.message).toContain('64×64 (crop)');
    expect(error.message).toContain('64×96 (pad)');
    expect(() => ae.latentShape(100, 64)).toThrow(/multiples of 32/);
    expect((await rejection(ae.decode(image([1, 8, 0, 2])))).code).toBe('INPUT_SIZE');
    expect(ae.latentShape(96, 64)).toEqual([8, 3, 2]);
  });

  it('rejects wrong ranks, channel counts, dtypes and non-finite values', async () => {
    expect((await rejection(ae.encode(image([3, 64, 64])))).code).toBe('SHAPE_MISMATCH');
    expect((await rejection(ae.encode(image([1, 4, 64, 64])))).code).toBe('SHAPE_MISMATCH');
    expect((await rejection(ae.decode(image([1, 3, 2, 2])))).code).toBe('SHAPE_MISMATCH');
    const half = {
      dtype: 'float16',
      shape: [1, 3, 32, 32],
      data: new Uint16Array(3 * 32 * 32),
    } as unknown as HostTensor<'float32'>;
    expect((await rejection(ae.encode(half))).code).toBe('DTYPE_UNSUPPORTED');
    const nan = image([1, 3, 32, 32]);
    nan.data[5] = Number.NaN;
    expect((await rejection(ae.encode(nan))).message).toContain('flat index 5');
  });

  it('checks its arguments at the API boundary: a missing or non-tensor argument says what to pass', async () => {
    const missing = await rejection(ae.encode(undefined as unknown as HostTensor<'float32'>));
    expect(missing.code).toBe('INVALID_ARGUMENT');
    expect(missing.message).toMatch(
      /^encode\(images\): images must be a float32 tensor \{ dtype, shape, data \}/,
    );
    expect(missing.message).toContain('got undefined');
    expect(missing.message).toMatch(/readImage\(path\).*imageToTensor\(image\)/);
    expect(missing.message).not.toContain('toFloat32');
    const array = await rejection(ae.decode([1, 2, 3] as unknown as HostTensor<'float32'>));
    expect(array.message).toMatch(/^decode\(latents\): .*got an array/);
    const noData = await rejection(
      ae.encode({ dtype: 'float32', shape: [1, 3, 32, 32], data: [0] } as unknown as HostTensor<'float32'>),
    );
    expect(noData.message).toMatch(/images\.data a typed array/);
    const half = { dtype: 'float16', shape: [1, 3, 32, 32], data: new Uint16Array(3072) };
    const halfError = await rejection(ae.encode(half as unknown as HostTensor<'float32'>));
    expect(halfError.message).toMatch(/must be float32, found float16\. Convert it with toFloat32\(\)/);
  });

  it('reports its geometry and parameters', () => {
    const keys = [...parseSafetensors(weightBytes).header.tensors.keys()];
    const count = (prefix: string) => keys.filter((k) => k.startsWith(prefix)).length;
    expect(ae.summary()).toEqual({
      name: NAME,
      format: 'diffusers',
      parameters: { encoder: 384896, decoder: 403435, total: 788331 },
      keys: { checkpoint: keys.length, encoder: count('encoder.'), decoder: count('decoder.') },
      spatialCompressionRatio: 32,
      latentChannels: 8,
      scalingFactor: 0.41407,
    });
  });

  it('rejects an aborted call with ABORTED', async () => {
    expect((await rejection(ae.encode(sample, { signal: AbortSignal.abort() }))).code).toBe('ABORTED');
  });

  it('refuses to run after dispose', async () => {
    const other = await loadAutoencoder(
      withWeights(() => undefined),
      { runtime },
    );
    await other.encode(sample);
    await other.dispose();
    await other.dispose();
    expect((await rejection(other.encode(sample))).code).toBe('SESSION_DISPOSED');
  });
});
