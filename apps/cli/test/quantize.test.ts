import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIXTURES, maxAbsDiff, readTensor, REPO, runCli, tempDir } from './helpers.js';

const model = join(FIXTURES, 'tiny-sana-f32');
const photos = ['astronaut', 'coffee', 'rocket'].map((n) =>
  join(REPO, 'fixtures/photos', `calibration-${n}.png`),
);
const heldout = join(REPO, 'fixtures/photos/heldout-chelsea.png');

describe('quantize and --dtype int8', () => {
  it('writes quantization.json, the calibration photos and int8 graphs; encode --dtype int8 uses them', async () => {
    const out = join(await tempDir(), 'int8');
    const q = await runCli([
      'quantize',
      '--model',
      model,
      '--calibration',
      ...photos,
      '--calibration-size',
      '64',
      '-o',
      out,
      '--json',
      '-q',
    ]);
    expect(q.stderr).toBe('');
    expect(q.code).toBe(0);
    const report = JSON.parse(q.stdout) as {
      files: string[];
      calibration: string[];
      tensors: Record<string, number>;
    };
    expect(report.tensors.encoder).toBeGreaterThan(10);
    expect((await readdir(out)).sort()).toEqual(
      [...report.calibration, 'decoder.onnx', 'encoder.onnx', 'quantization.json'].sort(),
    );
    const spec = JSON.parse(await readFile(join(out, 'quantization.json'), 'utf8')) as { format: string };
    expect(spec.format).toBe('dcae-qdq-int8');

    const dir = await tempDir();
    const [z8, z32] = [join(dir, 'z8.safetensors'), join(dir, 'z32.safetensors')];
    const args = (dtype: string, o: string) => [
      'encode',
      '--model',
      model,
      '--fit',
      'crop',
      heldout,
      '-o',
      o,
      '-q',
      '--dtype',
      dtype,
    ];
    const int8 = await runCli([...args('int8', z8), '--quantization', join(out, 'quantization.json')]);
    expect(int8.stderr).toBe('');
    expect(int8.code).toBe(0);
    expect((await runCli(args('fp32', z32))).code).toBe(0);
    const [a, b] = [await readTensor(z8, 'latent'), await readTensor(z32, 'latent')];
    const scale = Math.max(...b.data.map(Math.abs));
    expect(maxAbsDiff(a, b) / scale).toBeGreaterThan(0); // really quantized
    expect(maxAbsDiff(a, b) / scale).toBeLessThan(0.3);
  }, 120_000);

  it('refuses --dtype int8 without ranges (exit 6, QUANTIZATION_MISSING) and --quantization without int8', async () => {
    const dir = await tempDir();
    const missing = await runCli([
      'encode',
      '--model',
      model,
      heldout,
      '-o',
      join(dir, 'z.safetensors'),
      '--dtype',
      'int8',
    ]);
    expect(missing.code).toBe(6);
    expect(missing.stderr).toMatch(/QUANTIZATION_MISSING[\s\S]*dcae quantize/);
    const stray = await runCli([
      'encode',
      '--model',
      model,
      heldout,
      '-o',
      join(dir, 'z.safetensors'),
      '--quantization',
      'q.json',
    ]);
    expect(stray.code).toBe(2);
    expect(stray.stderr).toMatch(/only used with --dtype int8/);
  });
});
