import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Autoencoder } from '../src/index.js';
import { exportOnnx, openAutoencoder as loadAutoencoder } from '../src/node/index.js';
import { fixturePath, maxAbsDiff, readFixtureTensors } from './helpers.js';

const runtime = createNodeRuntime({ threads: 1 });
const work = mkdtempSync(join(tmpdir(), 'dcae-export-'));
afterAll(async () => {
  await runtime.dispose();
  rmSync(work, { recursive: true, force: true });
});

describe('exportOnnx (tiny-in-f32)', () => {
  let ae: Autoencoder;
  const input = readFixtureTensors('tiny-in-f32', 'input.safetensors');
  beforeAll(async () => {
    ae = await loadAutoencoder(fixturePath('tiny-in-f32'), { runtime });
  });
  afterAll(async () => {
    await ae?.dispose();
  });

  /** Runs an exported file with plain onnxruntime: bytes plus, if present, its external data file. */
  async function runExported(
    dir: string,
    part: 'encoder' | 'decoder',
    feed: HostTensor,
  ): Promise<HostTensor<'float32'>> {
    const dataFile = `${part}.onnx_data`;
    const hasData = readdirSync(dir).includes(dataFile);
    const session = await runtime.createSession(readFileSync(join(dir, `${part}.onnx`)), {
      externalData: hasData ? [{ location: dataFile, data: join(dir, dataFile) }] : [],
    });
    try {
      const [input] = session.inputNames;
      const [output] = session.outputNames;
      expect([input, output]).toEqual(
        part === 'encoder' ? ['sample', 'latent_sample'] : ['latent_sample', 'sample'],
      );
      return (await session.run({ [input!]: feed }))[output!] as HostTensor<'float32'>;
    } finally {
      await session.dispose();
    }
  }

  it.each(['inline', 'external'] as const)(
    'writes standalone graphs with %s weights that reproduce encode and decode',
    async (weights) => {
      const dir = join(work, weights);
      const result = await exportOnnx(ae, dir, { weights });
      const expectedFiles =
        weights === 'inline'
          ? ['decoder.onnx', 'encoder.onnx']
          : ['decoder.onnx', 'decoder.onnx_data', 'encoder.onnx', 'encoder.onnx_data'];
      expect(readdirSync(dir).sort()).toEqual(expectedFiles);
      expect(result.files.map((f) => f.name).sort()).toEqual(expectedFiles);

      const sample = input.get('sample')!;
      const latent = input.get('latent')!;
      expect(
        maxAbsDiff(await runExported(dir, 'encoder', sample), await ae.encode(sample)),
      ).toBeLessThanOrEqual(1e-6);
      expect(
        maxAbsDiff(await runExported(dir, 'decoder', latent), await ae.decode(latent)),
      ).toBeLessThanOrEqual(1e-6);
    },
  );

  it('refuses to overwrite an earlier export unless asked, leaving it intact', async () => {
    const dir = join(work, 'again');
    await exportOnnx(ae, dir);
    const before = readFileSync(join(dir, 'encoder.onnx'));
    writeFileSync(join(dir, 'notes.txt'), 'kept');
    await expect(exportOnnx(ae, dir)).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
    expect(readFileSync(join(dir, 'encoder.onnx')).equals(before)).toBe(true);
    await exportOnnx(ae, dir, { overwrite: true, weights: 'external' });
    expect(readdirSync(dir).sort()).toEqual([
      'decoder.onnx',
      'decoder.onnx_data',
      'encoder.onnx',
      'encoder.onnx_data',
      'notes.txt',
    ]);
    expect(readdirSync(work).filter((name) => name.endsWith('.tmp'))).toEqual([]);
  });
});

describe('exportOnnx failures', () => {
  it('reports an unwritable target and leaves no temporary folder', async () => {
    const ae = await loadAutoencoder(fixturePath('tiny-sana-f32'), { runtime });
    try {
      const missingParent = join(work, 'no', 'such', 'parent');
      await expect(exportOnnx(ae, missingParent)).rejects.toMatchObject({ code: 'OUTPUT_UNWRITABLE' });
      writeFileSync(join(work, 'a-file'), 'x');
      await expect(exportOnnx(ae, join(work, 'a-file'))).rejects.toMatchObject({ code: 'OUTPUT_EXISTS' });
      expect(readdirSync(work).filter((name) => name.endsWith('.tmp'))).toEqual([]);
    } finally {
      await ae.dispose();
    }
  });
});
