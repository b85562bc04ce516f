import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseSafetensors, serializePth, zipStored } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  loadAutoencoder as fromFiles,
  memoryModelFiles,
  TAESANA_DECODER,
  TAESANA_ENCODER,
  TAESANA_LATENT_SCALE,
  taesanaParameters,
} from '../src/index.js';
import type { Autoencoder } from '../src/index.js';
import { loadAutoencoder } from '../src/node/index.js';
import { fixtureTolerance, maxAbsDiff } from './helpers.js';

/** fixtures/family2/taesana-randinit: the released TAESANA architecture, random fp16 weights, as torch.save wrote them. */
const DIR = resolve(import.meta.dirname, '../../../fixtures/family2/taesana-randinit');
const tensors = (file: string): Map<string, HostTensor<'float32'>> => {
  const st = parseSafetensors(readFileSync(resolve(DIR, file)), { name: file });
  return new Map([...st.header.tensors.keys()].map((k) => [k, st.tensor(k) as HostTensor<'float32'>]));
};
const meta = JSON.parse(readFileSync(resolve(DIR, 'meta.json'), 'utf8')) as {
  num_parameters: { encoder: number; decoder: number };
};
const input = tensors('input.safetensors');
const expected = tensors('expected.safetensors');
const runtime = createNodeRuntime({ threads: 1 });
afterAll(() => runtime.dispose());

const map = (t: HostTensor<'float32'>, f: (v: number) => number): HostTensor<'float32'> => ({
  dtype: 'float32',
  shape: t.shape,
  data: t.data.map(f),
});
// dcae's boundary: images in [-1, 1] (TAESANA's are [0, 1]), latents unscaled (TAESANA's are × 0.41407).
const toDcaeImage = (t: HostTensor<'float32'>) => map(t, (v) => 2 * v - 1);
const toDcaeLatent = (t: HostTensor<'float32'>) => map(t, (v) => v / TAESANA_LATENT_SCALE);

const expectClose = (actual: HostTensor<'float32'>, reference: HostTensor<'float32'>): void => {
  expect(actual.shape).toEqual(reference.shape);
  expect(maxAbsDiff(actual, reference)).toBeLessThanOrEqual(fixtureTolerance(reference));
};

describe('TAESANA read from taesana_encoder.pth / taesana_decoder.pth', () => {
  let ae: Autoencoder;
  beforeAll(async () => {
    ae = await loadAutoencoder(DIR, { runtime });
  });
  afterAll(() => ae?.dispose());

  it('is detected from the .pth file names and has the released parameter counts', () => {
    expect(ae.architecture).toBe('taesana');
    expect(ae.parts).toEqual(['encoder', 'decoder']);
    expect(ae.summary()).toMatchObject({
      format: 'pth',
      parameters: { encoder: meta.num_parameters.encoder, decoder: meta.num_parameters.decoder },
      keys: { encoder: 69, decoder: 105 },
      spatialCompressionRatio: 32,
      latentChannels: 32,
    });
    expect(taesanaParameters(TAESANA_ENCODER)).toBe(meta.num_parameters.encoder);
    expect(taesanaParameters(TAESANA_DECODER)).toBe(meta.num_parameters.decoder);
  });

  it('encode, decode and reconstruction match upstream (through the [-1, 1] and latent-scale conversions)', async () => {
    const image = toDcaeImage(input.get('image')!);
    const latent = await ae.encode(image);
    // Compared in TAESANA's own units, so the tolerance is the fixture's.
    expectClose(
      map(latent, (v) => v * TAESANA_LATENT_SCALE),
      expected.get('latent')!,
    );
    const decoded = await ae.decode(toDcaeLatent(input.get('latent')!));
    expectClose(
      map(decoded, (v) => (v + 1) / 2),
      expected.get('decoded')!,
    );
    const reconstruction = await ae.decode(latent);
    expectClose(
      map(reconstruction, (v) => (v + 1) / 2),
      expected.get('reconstruction')!,
    );
  });

  it('fp16 stays close; tiling and adaptive channels are refused', async () => {
    const half = await loadAutoencoder(DIR, { runtime, dtype: 'fp16', parts: ['decoder'] });
    try {
      const decoded = await half.decode(toDcaeLatent(input.get('latent')!));
      expect(
        maxAbsDiff(
          map(decoded, (v) => (v + 1) / 2),
          expected.get('decoded')!,
        ),
      ).toBeLessThan(0.05);
    } finally {
      await half.dispose();
    }
    const image = toDcaeImage(input.get('image')!);
    await expect(ae.encode(image, { latentChannels: 16 })).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    await expect(ae.decode(toDcaeLatent(input.get('latent')!), { tiling: 'always' })).rejects.toMatchObject({
      code: 'UNSUPPORTED',
    });
  });
});

describe('TAESANA folders', () => {
  const pth = (file: string): Uint8Array => readFileSync(resolve(DIR, file));

  it('a decoder-only folder loads the decoder; asking for the missing encoder is MODEL_NOT_FOUND', async () => {
    const files = memoryModelFiles('taesana-dec', { 'taesana_decoder.pth': pth('taesana_decoder.pth') });
    const ae = await fromFiles(files, { runtime });
    expect(ae.parts).toEqual(['decoder']);
    await ae.dispose();
    await expect(fromFiles(files, { runtime, parts: ['encoder'] })).rejects.toMatchObject({
      code: 'MODEL_NOT_FOUND',
    });
  });

  it('binds strictly: a .pth with a wrong shape or an extra tensor is WEIGHTS_MISMATCH', async () => {
    const bad = serializePth(
      {
        '0.weight': { dtype: 'float32', shape: [32, 3, 3, 3], data: new Float32Array(864) },
        extra: { dtype: 'float32', shape: [1], data: new Float32Array(1) },
      },
      'taesana_encoder',
    );
    const error = await fromFiles(memoryModelFiles('bad', { 'taesana_encoder.pth': bad }), { runtime }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({
      code: 'WEIGHTS_MISMATCH',
      message: expect.stringContaining('unused extra'),
    });
  });

  it('a hostile .pth in a TAESANA folder is refused before anything runs', async () => {
    const evil = new TextEncoder().encode('cposix\nsystem\n');
    const pickle = Uint8Array.of(0x80, 2, ...evil, 0x2e);
    const file = zipStored([{ name: 'taesana_decoder/data.pkl', data: pickle }]);
    await expect(
      fromFiles(memoryModelFiles('evil', { 'taesana_decoder.pth': file }), { runtime }),
    ).rejects.toMatchObject({
      code: 'PICKLE_FORBIDDEN',
    });
  });
});
