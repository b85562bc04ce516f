import { spawn } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { serializeSafetensors } from '@dcae/core';
import { cropImage, reconstructionMetrics, tensorToImages } from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';
import { encodeImage, readImage } from '@dcae/autoencoder/node';
import { describe, expect, it } from 'vitest';
import {
  BIN,
  FIXTURES,
  MODELS,
  REPO,
  maxAbsDiff,
  readMetadata,
  readTensor,
  runCli,
  tempDir,
  tolerance,
} from './helpers.js';

const model = (name: string) => join(FIXTURES, name);

/** Every file in `dir` (temporary files included), to prove that a failed command left nothing. */
async function listing(dir: string): Promise<string[]> {
  return (await readdir(dir)).sort();
}

function expectFailure(result: { code: number; stderr: string }, code: string, exitCode?: number): void {
  expect(result.code, result.stderr).not.toBe(0);
  if (exitCode !== undefined) expect(result.code, result.stderr).toBe(exitCode);
  expect(result.stderr).toMatch(new RegExp(`^error\\[${code}\\]: .+`, 'm'));
  expect(result.stderr).not.toMatch(/^\s+at /m); // no stack without --debug
}

describe('usage', () => {
  it('prints help with every command and exits 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const cmd of ['info', 'encode', 'decode', 'reconstruct', 'convert']) expect(r.stdout).toContain(cmd);
  });

  it.each([
    [[], 'no command'],
    [['frobnicate'], 'unknown command'],
    [['generate', '--class', '1', '-o', 'x.png'], 'missing --model (generate has no default model)'],
    [['info', '--model', 'x', '--threads', 'many'], 'bad --threads'],
    [['info', '--model', 'x', '--device', 'tpu'], 'bad --device'],
    [['encode', '--model', 'x', 'in.png', '-o', 'o.safetensors', '--fit', 'stretch'], 'bad --fit'],
  ])('%j (%s) → exit 2, error[INVALID_ARGUMENT]', async (args) => {
    const r = await runCli(args);
    expectFailure(r, 'INVALID_ARGUMENT', 2);
  });

  it('--json errors are also a JSON object on stdout', async () => {
    const r = await runCli(['info', '--model', join(REPO, 'does-not-exist'), '--json']);
    expect(r.code).not.toBe(0);
    const out = JSON.parse(r.stdout) as { error: { code: string; exitCode: number } };
    expect(out.error.exitCode).toBe(r.code);
    expect(r.stderr).toContain(`error[${out.error.code}]`);
  });
});

describe.each(MODELS)('%s', (name) => {
  const dir = model(name);
  const input = join(dir, 'input.safetensors');
  const expected = join(dir, 'expected.safetensors');

  it('info prints the summary, the latent shape for --size and the devices', async () => {
    // --size is W×H: 96 wide, 64 high → latent [1, 8, h = 2, w = 3].
    const text = await runCli(['info', '--model', dir, '--size', '96x64']);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('96x64 → latent [1, 8, 2, 3]');
    expect(text.stdout).toContain('cpu');
    const r = await runCli(['info', '--model', dir, '--size', '100x70', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout);
    expect(info.spatialCompressionRatio).toBe(32);
    expect(info.latentChannels).toBe(8);
    expect(info.size.crop).toMatchObject({ width: 96, height: 64, latentShape: [1, 8, 2, 3] });
    expect(info.size.pad).toMatchObject({ width: 128, height: 96, latentShape: [1, 8, 3, 4] });
    expect(info.devices.map((d: { device: string }) => d.device)).toContain('cpu');
  });

  it('encode of input "sample" matches expected "latent"', async () => {
    const out = join(await tempDir(), 'latent.safetensors');
    const r = await runCli(['encode', '--model', dir, input, '-o', out, '--json', '--threads', '1']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).latent.shape).toEqual((await readTensor(expected, 'latent')).shape);
    const latent = await readTensor(out, 'latent');
    const want = await readTensor(expected, 'latent');
    expect(latent.shape).toEqual(want.shape);
    expect(maxAbsDiff(latent, want)).toBeLessThanOrEqual(tolerance(want));
    expect((await readMetadata(out)).get('dcae.scaling_factor')).toBe(
      String(JSON.parse(await readFile(join(dir, 'config.json'), 'utf8')).scaling_factor),
    );
  });

  it('decode of input "latent" to .safetensors matches expected "decoded"', async () => {
    const out = join(await tempDir(), 'sample.safetensors');
    const r = await runCli(['decode', '--model', dir, input, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    const sample = await readTensor(out, 'sample');
    const want = await readTensor(expected, 'decoded');
    expect(sample.shape).toEqual(want.shape);
    expect(maxAbsDiff(sample, want)).toBeLessThanOrEqual(tolerance(want));
  });

  it('decode to PNG writes one quantised image per batch item', async () => {
    const tmp = await tempDir();
    const r = await runCli(['decode', '--model', dir, input, '-o', join(tmp, 'out.png'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const want = tensorToImages(await readTensor(expected, 'decoded'));
    const paths: string[] = JSON.parse(r.stdout).outputs;
    expect(paths).toEqual(
      want.length === 1 ? [join(tmp, 'out.png')] : want.map((_, i) => join(tmp, `out-${i}.png`)),
    );
    for (const [i, path] of paths.entries()) {
      const img = await readImage(path);
      const ref = want[i]!;
      expect([img.width, img.height]).toEqual([ref.width, ref.height]);
      // the decoded values agree within 2e-4, so a byte differs by at most 1 (at a rounding boundary)
      const diff = img.data.reduce((m, v, k) => Math.max(m, Math.abs(v - ref.data[k]!)), 0);
      expect(diff).toBeLessThanOrEqual(1);
    }
  });

  it('reconstruct prints PSNR and SSIM equal to the library metrics of what it wrote', async () => {
    const tmp = await tempDir();
    const r = await runCli(['reconstruct', '--model', dir, input, '-o', join(tmp, 'rec.png'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    const references = tensorToImages(await readTensor(input, 'sample'));
    const written = await Promise.all((report.outputs as string[]).map((p) => readImage(p)));
    const metrics = reconstructionMetrics(references, written);
    expect(report.psnr).toBeCloseTo(metrics.psnr, 10);
    expect(report.ssim).toBeCloseTo(metrics.ssim, 12);
    // and close to the metrics of PyTorch's reconstruction
    const torch = reconstructionMetrics(
      references,
      tensorToImages(await readTensor(expected, 'reconstruction')),
    );
    expect(Math.abs(report.psnr - torch.psnr)).toBeLessThan(0.05);
    expect(Math.abs(report.ssim - torch.ssim)).toBeLessThan(1e-3);
    for (const key of ['load', 'encode', 'decode']) expect(report.timingsMs[key]).toBeGreaterThan(0);

    const text = await runCli(['reconstruct', '--model', dir, input, '-o', join(tmp, 'rec.safetensors')]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toMatch(/PSNR \d+\.\d+ dB/);
    expect(text.stdout).toMatch(/SSIM 0\.\d+/);
    expect(text.stdout).toMatch(/timings: load .* encode .* decode/);
    const rec = await readTensor(join(tmp, 'rec.safetensors'), 'sample');
    const want = await readTensor(expected, 'reconstruction');
    expect(maxAbsDiff(rec, want)).toBeLessThanOrEqual(tolerance(want));
  });
});

/** The first image of a fixture's `sample`, as an 8-bit image. */
async function fixtureImage(name: string): Promise<RgbImage> {
  return tensorToImages(await readTensor(join(model(name), 'input.safetensors'), 'sample'))[0]!;
}

describe('images', () => {
  const sana = model('tiny-sana-f32');

  it('encode → decode of a PNG goes through the image helpers and round-trips the size', async () => {
    const tmp = await tempDir();
    const png = join(tmp, 'in.png');
    await writeFile(png, await encodeImage(await fixtureImage('tiny-sana-f32'), 'png'));
    const latent = join(tmp, 'in.safetensors');
    expect((await runCli(['encode', '--model', sana, png, '-o', latent])).code).toBe(0);
    expect((await readTensor(latent, 'latent')).shape).toEqual([1, 8, 3, 2]);
    const out = join(tmp, 'out.webp');
    const r = await runCli(['decode', '--model', sana, latent, '-o', out]);
    expect(r.code, r.stderr).toBe(0);
    expect(await readImage(out)).toMatchObject({ width: 64, height: 96 });
  });

  it('reconstruct pads a non-multiple image by default and crops the result back to its size', async () => {
    const tmp = await tempDir();
    const src = cropImage(await fixtureImage('tiny-sana-f32'), 50, 70);
    const png = join(tmp, 'odd.png');
    await writeFile(png, await encodeImage(src, 'png'));
    const r = await runCli(['reconstruct', '--model', sana, png, '-o', join(tmp, 'rec.png'), '--json']);
    expect(r.code, r.stderr).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.fit).toEqual({ applied: 'pad', original: { width: 50, height: 70 } });
    const rec = await readImage(join(tmp, 'rec.png'));
    expect([rec.width, rec.height]).toEqual([50, 70]);
    expect(report.psnr).toBeCloseTo(reconstructionMetrics([src], [rec]).psnr, 10);
  });

  it('encode --fit pad records the original size and decode crops back to it; --fit crop keeps the top-left', async () => {
    const tmp = await tempDir();
    const png = join(tmp, 'odd.png');
    await writeFile(png, await encodeImage(cropImage(await fixtureImage('tiny-sana-f32'), 50, 70), 'png'));
    const padded = join(tmp, 'pad.safetensors');
    expect((await runCli(['encode', '--model', sana, png, '-o', padded, '--fit', 'pad'])).code).toBe(0);
    expect((await readTensor(padded, 'latent')).shape).toEqual([1, 8, 3, 2]);
    expect((await readMetadata(padded)).get('dcae.original_size')).toBe('50x70');
    expect((await runCli(['decode', '--model', sana, padded, '-o', join(tmp, 'pad.png')])).code).toBe(0);
    expect(await readImage(join(tmp, 'pad.png'))).toMatchObject({ width: 50, height: 70 });

    const cropped = join(tmp, 'crop.safetensors');
    expect((await runCli(['encode', '--model', sana, png, '-o', cropped, '--fit', 'crop'])).code).toBe(0);
    expect((await readTensor(cropped, 'latent')).shape).toEqual([1, 8, 2, 1]);
    expect((await readMetadata(cropped)).has('dcae.original_size')).toBe(false);
  });
});

describe('convert', () => {
  it.each(MODELS)(
    '%s: writes encoder.onnx and decoder.onnx that onnxruntime loads and runs',
    async (name) => {
      const { createNodeRuntime } = await import('@dcae/runtime-adapters/node');
      const out = join(await tempDir(), 'onnx');
      const r = await runCli(['convert', '--model', model(name), '-o', out, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const files = await listing(out);
      expect(files).toEqual(expect.arrayContaining(['encoder.onnx', 'decoder.onnx']));
      expect(files.filter((f) => f.startsWith('.'))).toEqual([]);
      const externalData = files
        .filter((f) => !f.endsWith('.onnx'))
        .map((f) => ({ location: f, data: join(out, f) }));
      const runtime = createNodeRuntime({ threads: 1 });
      try {
        const encoder = await runtime.createSession(await readFile(join(out, 'encoder.onnx')), {
          externalData,
        });
        const sample = await readTensor(join(model(name), 'input.safetensors'), 'sample');
        const outputs = await encoder.run({ [encoder.inputNames[0]!]: sample });
        const latent = outputs[encoder.outputNames[0]!]!;
        const want = await readTensor(join(model(name), 'expected.safetensors'), 'latent');
        expect(latent.shape).toEqual(want.shape);
        expect(maxAbsDiff(latent as typeof want, want)).toBeLessThanOrEqual(tolerance(want));
        await encoder.dispose();
        const decoder = await runtime.createSession(await readFile(join(out, 'decoder.onnx')), {
          externalData,
        });
        expect(decoder.inputNames).toHaveLength(1);
        await decoder.dispose();
      } finally {
        await runtime.dispose();
      }
    },
  );

  it('refuses to overwrite an existing export without --force', async () => {
    const out = await tempDir();
    await writeFile(join(out, 'encoder.onnx'), 'old');
    const r = await runCli(['convert', '--model', model('tiny-sana-f32'), '-o', out]);
    expectFailure(r, 'OUTPUT_EXISTS', 3);
    expect(await listing(out)).toEqual(['encoder.onnx']);
    expect(await readFile(join(out, 'encoder.onnx'), 'utf8')).toBe('old');
  });
});

describe('bad inputs: typed error, distinct exit code, no output left behind', () => {
  const sana = model('tiny-sana-f32');
  const input = join(sana, 'input.safetensors');

  async function modelCopy(
    edit: (dir: string) => Promise<void>,
    files = ['config.json', 'diffusion_pytorch_model.safetensors'],
  ): Promise<string> {
    const dir = join(await tempDir(), 'model');
    await mkdir(dir);
    for (const f of files) await copyFile(join(sana, f), join(dir, f));
    await edit(dir);
    return dir;
  }

  it('unknown config field → a config error (exit 6)', async () => {
    const dir = await modelCopy(async (d) => {
      const config = JSON.parse(await readFile(join(d, 'config.json'), 'utf8'));
      await writeFile(join(d, 'config.json'), JSON.stringify({ ...config, encoder_block_typez: [] }));
    });
    const out = await tempDir();
    const r = await runCli(['encode', '--model', dir, input, '-o', join(out, 'l.safetensors')]);
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toMatch(/^error\[CONFIG_[A-Z_]+\]: .*encoder_block_typez/m);
    expect(await listing(out)).toEqual([]);
  });

  it('missing weights → error, no output', async () => {
    const dir = await modelCopy(async () => undefined, ['config.json']);
    const out = await tempDir();
    const r = await runCli(['encode', '--model', dir, input, '-o', join(out, 'l.safetensors')]);
    expect(r.code, r.stderr).not.toBe(0);
    expect(r.stderr).toMatch(/^error\[(MODEL_NOT_FOUND|FILE_NOT_FOUND|WEIGHTS_MISMATCH)\]: /m);
    expect(await listing(out)).toEqual([]);
  });

  it('weights that do not match the config → WEIGHTS_MISMATCH (exit 7)', async () => {
    const dir = await modelCopy(async (d) => {
      await copyFile(
        join(model('tiny-in-f32'), 'diffusion_pytorch_model.safetensors'),
        join(d, 'diffusion_pytorch_model.safetensors'),
      );
    });
    const r = await runCli(['info', '--model', dir]);
    expectFailure(r, 'WEIGHTS_MISMATCH', 7);
  });

  it('image size not a multiple of 32 with the default --fit error → INPUT_SIZE (exit 5) naming both fixes', async () => {
    const tmp = await tempDir();
    const png = join(tmp, 'odd.png');
    await writeFile(png, await encodeImage(cropImage(await fixtureImage('tiny-sana-f32'), 50, 70), 'png'));
    const r = await runCli(['encode', '--model', sana, png, '-o', join(tmp, 'l.safetensors')]);
    expectFailure(r, 'INPUT_SIZE', 5);
    expect(r.stderr).toContain('50×70');
    expect(r.stderr).toContain('--fit crop');
    expect(await listing(tmp)).toEqual(['odd.png']);
  });

  it('corrupt image → IMAGE_CORRUPT (exit 4)', async () => {
    const tmp = await tempDir();
    const bytes = await encodeImage(await fixtureImage('tiny-sana-f32'), 'png');
    await writeFile(join(tmp, 'bad.png'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    const r = await runCli(['reconstruct', '--model', sana, join(tmp, 'bad.png'), '-o', join(tmp, 'r.png')]);
    expectFailure(r, 'IMAGE_CORRUPT', 4);
    expect(await listing(tmp)).toEqual(['bad.png']);
  });

  it('unsupported input and output types → UNSUPPORTED_FORMAT', async () => {
    const tmp = await tempDir();
    await writeFile(join(tmp, 'in.gif'), Buffer.from('GIF89a\x01\x00\x01\x00\x00\x00\x00;', 'latin1'));
    expectFailure(
      await runCli(['encode', '--model', sana, join(tmp, 'in.gif'), '-o', join(tmp, 'l.safetensors')]),
      'UNSUPPORTED_FORMAT',
      4,
    );
    expectFailure(
      await runCli(['decode', '--model', sana, input, '-o', join(tmp, 'out.bmp')]),
      'UNSUPPORTED_FORMAT',
      4,
    );
    expectFailure(
      await runCli(['encode', '--model', sana, input, '-o', join(tmp, 'out.png')]),
      'UNSUPPORTED_FORMAT',
      4,
    );
    expect(await listing(tmp)).toEqual(['in.gif']);
  });

  it('a .safetensors input without the expected tensor → TENSOR_NOT_FOUND (exit 8)', async () => {
    const tmp = await tempDir();
    const expected = join(sana, 'expected.safetensors');
    expectFailure(
      await runCli(['encode', '--model', sana, expected, '-o', join(tmp, 'l.safetensors')]),
      'TENSOR_NOT_FOUND',
      8,
    );
  });

  it('a latent with the wrong channel count → SHAPE_MISMATCH (exit 5)', async () => {
    const tmp = await tempDir();
    const latent = join(tmp, 'l.safetensors');
    const data = new Float32Array(1 * 4 * 3 * 2);
    await writeFile(
      latent,
      serializeSafetensors({ latent: { dtype: 'float32', shape: [1, 4, 3, 2], data } }),
    );
    expectFailure(
      await runCli(['decode', '--model', sana, latent, '-o', join(tmp, 'o.png')]),
      'SHAPE_MISMATCH',
      5,
    );
    expect(await listing(tmp)).toEqual(['l.safetensors']);
  });

  it('a decoded image with NaN or Infinity → NON_FINITE_OUTPUT instead of a garbage PNG; .safetensors keeps the raw values', async () => {
    const tmp = await tempDir();
    const latent = join(tmp, 'l.safetensors');
    const data = new Float32Array(1 * 8 * 3 * 2).fill(3e38); // finite, but overflows inside the decoder
    await writeFile(
      latent,
      serializeSafetensors({ latent: { dtype: 'float32', shape: [1, 8, 3, 2], data } }),
    );
    expectFailure(
      await runCli(['decode', '--model', sana, latent, '-o', join(tmp, 'o.png')]),
      'NON_FINITE_OUTPUT',
      3,
    );
    expect(await listing(tmp)).toEqual(['l.safetensors']);
    const r = await runCli(['decode', '--model', sana, latent, '-o', join(tmp, 'o.safetensors')]);
    expect(r.code, r.stderr).toBe(0);
    expect(
      (await readTensor(join(tmp, 'o.safetensors'), 'sample')).data.some((v) => !Number.isFinite(v)),
    ).toBe(true);
  });

  it('unwritable output directory → OUTPUT_UNWRITABLE (exit 3)', async () => {
    const tmp = await tempDir();
    await writeFile(join(tmp, 'file'), 'x');
    for (const out of [join(tmp, 'missing', 'l.safetensors'), join(tmp, 'file', 'l.safetensors')]) {
      expectFailure(await runCli(['encode', '--model', sana, input, '-o', out]), 'OUTPUT_UNWRITABLE', 3);
    }
    expect(await listing(tmp)).toEqual(['file']);
  });

  it('existing output → OUTPUT_EXISTS (exit 3) and the file is untouched; --force replaces it', async () => {
    const tmp = await tempDir();
    const out = join(tmp, 'l.safetensors');
    await writeFile(out, 'keep me');
    expectFailure(await runCli(['encode', '--model', sana, input, '-o', out]), 'OUTPUT_EXISTS', 3);
    expect(await readFile(out, 'utf8')).toBe('keep me');
    const r = await runCli(['encode', '--model', sana, input, '-o', out, '--force']);
    expect(r.code, r.stderr).toBe(0);
    expect((await readTensor(out, 'latent')).shape).toEqual([1, 8, 3, 2]);
    expect(await listing(tmp)).toEqual(['l.safetensors']);
  });

  it('output equal to an input → SAME_AS_INPUT, even with --force', async () => {
    const tmp = await tempDir();
    const copy = join(tmp, 'input.safetensors');
    await copyFile(input, copy);
    const r = await runCli([
      'decode',
      '--model',
      sana,
      copy,
      '-o',
      join(tmp, '.', 'input.safetensors'),
      '--force',
    ]);
    expectFailure(r, 'SAME_AS_INPUT', 3);
    expect(await readFile(copy)).toEqual(await readFile(input));
    expectFailure(
      await runCli([
        'encode',
        '--model',
        sana,
        input,
        '-o',
        join(sana, 'diffusion_pytorch_model.safetensors'),
        '--force',
      ]),
      'SAME_AS_INPUT',
      3,
    );
  });

  it('--debug adds the stack trace', async () => {
    const r = await runCli([
      'encode',
      '--model',
      sana,
      join(REPO, 'nope.png'),
      '-o',
      join(await tempDir(), 'l.safetensors'),
      '--debug',
    ]);
    expect(r.stderr).toMatch(/^error\[FILE_NOT_FOUND\]/m);
    expect(r.stderr).toMatch(/^\s+at /m);
  });
});

describe('Ctrl-C', () => {
  it('SIGINT during a run → exit 130 and no output file', async () => {
    const tmp = await tempDir();
    // a large random sample, so the encoder is still running when the signal arrives
    const [h, w] = [1536, 1536];
    const data = new Float32Array(3 * h * w);
    for (let i = 0; i < data.length; i++) data[i] = ((i * 2654435761) % 2001) / 1000 - 1;
    const big = join(tmp, 'big.safetensors');
    await writeFile(big, serializeSafetensors({ sample: { dtype: 'float32', shape: [1, 3, h, w], data } }));
    const child = spawn(
      process.execPath,
      [BIN, 'encode', '--model', model('tiny-sana-f32'), big, '-o', join(tmp, 'l.safetensors')],
      {
        cwd: REPO,
      },
    );
    let stderr = '';
    const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
    await new Promise<void>((started) =>
      child.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        if (stderr.includes('encoding')) started();
      }),
    );
    child.kill('SIGINT');
    expect(await exited, stderr).toBe(130);
    expect(stderr).toMatch(/^error\[ABORTED\]/m);
    expect(await listing(tmp)).toEqual(['big.safetensors']);
  });
});
