import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fitToMultiple } from '@dcae/autoencoder';
import { readImage } from '@dcae/autoencoder/node';
import { describe, expect, it } from 'vitest';
import { defaultModelPath } from '../src/default-model.js';
import { SIDE_BY_SIDE_GAP } from '../src/commands/reconstruct.js';
import { REPO, readMetadata, tempDir } from './helpers.js';
import { runCliInProcess } from './in-process.js';

const runCli = runCliInProcess;

const MODEL_TINY = join(REPO, 'packages/model-tiny');
const COFFEE = join(MODEL_TINY, 'photos/coffee.jpg');
const NOTICE = /no --model given, using the bundled default model @dcae\/model-tiny/g;

describe('the bundled default model (@dcae/model-tiny)', () => {
  it('is the package folder of the repository', () => {
    expect(defaultModelPath()).toBe(MODEL_TINY);
  });

  it('reconstructs the bundled photo without --model, says so once, and writes original | reconstruction', async () => {
    const dir = await tempDir();
    const [out, pair] = [join(dir, 'rec.png'), join(dir, 'pair.png')];
    const r = await runCli([
      'reconstruct',
      COFFEE,
      '--fit',
      'crop',
      '-o',
      out,
      '--side-by-side',
      pair,
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(NOTICE)).toHaveLength(1);
    expect(r.stderr).toContain(join(MODEL_TINY, 'README.md'));
    const json = JSON.parse(r.stdout);
    expect(json).toMatchObject({ outputs: [out], sideBySide: [pair] });
    // A trained model, not a random one (the random fixtures give about 9 dB on photos).
    expect(json.psnr).toBeGreaterThan(15);
    expect(json.ssim).toBeGreaterThan(0.3);

    const original = fitToMultiple(await readImage(COFFEE), 32, 'crop').image;
    const reconstruction = await readImage(out);
    const both = await readImage(pair);
    const { width, height } = original;
    expect(both).toMatchObject({ width: 2 * width + SIDE_BY_SIDE_GAP, height });
    const rowOf = (image: { data: Uint8Array; width: number }, y: number, x0: number, w: number) =>
      image.data.subarray((y * image.width + x0) * 3, (y * image.width + x0 + w) * 3);
    for (const y of [0, Math.floor(height / 2), height - 1]) {
      expect(rowOf(both, y, 0, width)).toEqual(rowOf(original, y, 0, width));
      expect(rowOf(both, y, width, SIDE_BY_SIDE_GAP).every((v) => v === 255)).toBe(true);
      expect(rowOf(both, y, width + SIDE_BY_SIDE_GAP, width)).toEqual(rowOf(reconstruction, y, 0, width));
    }

    // The same model named explicitly: the same reconstruction, and no notice.
    const named = await runCli([
      'reconstruct',
      '-m',
      MODEL_TINY,
      COFFEE,
      '--fit',
      'crop',
      '-o',
      join(dir, 'n.png'),
    ]);
    expect(named.code, named.stderr).toBe(0);
    expect(named.stderr).not.toMatch(NOTICE);
    expect((await readImage(join(dir, 'n.png'))).data).toEqual(reconstruction.data);
  }, 240_000); // two real-model runs on 576×384: about 10 s on an idle 2-core machine, minutes under load

  it('encode and decode default to it too; --quiet silences the notice; the latent names the model', async () => {
    const dir = await tempDir();
    const latent = join(dir, 'l.safetensors');
    const encoded = await runCli(['encode', '-q', COFFEE, '--fit', 'pad', '-o', latent]);
    expect(encoded.code, encoded.stderr).toBe(0);
    expect(encoded.stderr).toBe('');
    expect((await readMetadata(latent)).get('dcae.model')).toBe(MODEL_TINY);
    const decoded = await runCli(['decode', latent, '-o', join(dir, 'd.png')]);
    expect(decoded.code, decoded.stderr).toBe(0);
    expect(decoded.stderr.match(NOTICE)).toHaveLength(1);
    expect(await readImage(join(dir, 'd.png'))).toMatchObject({ width: 600, height: 400 });
    // The same model under a relative path is the same model.
    const named = await runCli([
      'decode',
      '-q',
      '-m',
      relative(process.cwd(), MODEL_TINY),
      latent,
      '-o',
      join(dir, 'e.png'),
    ]);
    expect(named.code, named.stderr).toBe(0);
  }, 240_000);

  it('a bad --side-by-side writes nothing; convert --to safetensors has no default model', async () => {
    const dir = await tempDir();
    const bad = await runCli([
      'reconstruct',
      '-q',
      COFFEE,
      '-o',
      join(dir, 'r.png'),
      '--side-by-side',
      join(dir, 'pair.safetensors'),
    ]);
    expect(bad.code).toBe(4);
    expect(bad.stderr).toMatch(/^error\[UNSUPPORTED_FORMAT\]: --side-by-side writes an image/m);
    const pth = await runCli(['convert', '--to', 'safetensors', '-o', join(dir, 'w.safetensors')]);
    expect(pth.code).toBe(2);
    expect(pth.stderr).toMatch(
      /^error\[INVALID_ARGUMENT\]: `dcae convert --to safetensors` turns a PyTorch \.pth/m,
    );
    expect(pth.stderr).not.toMatch(NOTICE);
    expect(await readdir(dir)).toEqual([]);
  });

  it('dcae models lists it first, with its card, and labels the random-weight fixtures test-only', async () => {
    const r = await runCli(['models', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const json = JSON.parse(r.stdout);
    expect(json.bundled).toEqual([
      expect.objectContaining({ id: '@dcae/model-tiny', default: true, path: MODEL_TINY }),
    ]);
    expect(existsSync(json.bundled[0].card)).toBe(true);
    expect(json.testFixtures.length).toBeGreaterThan(0);
    for (const fixture of json.testFixtures) {
      expect(fixture).toMatchObject({ randomWeights: true, testOnly: true });
      expect(existsSync(join(REPO, fixture.path, 'config.json')), fixture.path).toBe(true);
    }
    const text = (await runCli(['models'])).stdout;
    expect(text.indexOf('@dcae/model-tiny')).toBeLessThan(text.indexOf('mit-han-lab/'));
    expect(text).toContain('random weights, for tests only');
    // TAESANA is not on the Hub: listed with the pinned GitHub URL that --model accepts.
    expect(json.elsewhere).toEqual([
      expect.objectContaining({ id: 'TAESANA', files: ['taesana_encoder.pth', 'taesana_decoder.pth'] }),
    ]);
    expect(text).toContain(json.elsewhere[0].url);
    const diffusion = (await runCli(['models', '--kind', 'diffusion', '--json'])).stdout;
    expect(JSON.parse(diffusion).bundled).toEqual([]);
  });
});
