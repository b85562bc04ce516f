import { execFile } from 'node:child_process';
import { readdir, readFile, realpath, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { serializeSafetensors } from '@dcae/core';
import { tensorToImages } from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';
import { encodeImage, loadAutoencoder, readImage } from '@dcae/autoencoder/node';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { describe, expect, it } from 'vitest';
import { runCli as spawnCli } from './helpers.js';
import { BIN, FIXTURES, REPO, readMetadata, readTensor, tempDir } from './helpers.js';
import type { CliResult } from './helpers.js';
import { runCliInProcess } from './in-process.js';

const runCli = runCliInProcess;

// What a new user trips over (issue #15): one test per item, on the tiny fixtures.

const SANA = join(FIXTURES, 'tiny-sana-f32');
const IN = join(FIXTURES, 'tiny-in-f32');
const UVIT = join(REPO, 'fixtures/diffusion/tiny-uvit');
const DIT = join(REPO, 'fixtures/diffusion/tiny-dit');

/** A smooth RGB test picture. */
function photo(width: number, height: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++)
      for (let c = 0; c < 3; c++)
        data[(y * width + x) * 3 + c] = Math.round(127.5 + 120 * Math.sin(0.09 * x + 0.13 * y + 2 * c));
  return { width, height, channels: 3, data };
}

async function writePhoto(dir: string, width: number, height: number, name = 'photo.png'): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, await encodeImage(photo(width, height), 'png'));
  return path;
}

function expectError(r: CliResult, code: string, exit: number): void {
  expect(r.code, r.stderr).toBe(exit);
  expect(r.stderr).toMatch(new RegExp(`^error\\[${code}\\]: `, 'm'));
}

/** The `hint:` lines of an error. */
const hints = (r: CliResult): string[] =>
  r.stderr
    .split('\n')
    .filter((l) => l.startsWith('hint: '))
    .map((l) => l.slice(6));

describe('item 3: sizes are W×H everywhere', () => {
  it('info --size 500x333 gives the latent that encoding a 500×333 image gives', async () => {
    const dir = await tempDir();
    const info = await runCli(['info', '-m', SANA, '--size', '500x333', '--json']);
    expect(info.code, info.stderr).toBe(0);
    const size = JSON.parse(info.stdout).size;
    expect(size).toMatchObject({ width: 500, height: 333, crop: { width: 480, height: 320 } });
    const encoded = await runCli([
      'encode',
      '-m',
      SANA,
      await writePhoto(dir, 500, 333),
      '--fit',
      'crop',
      '-o',
      join(dir, 'l.safetensors'),
      '--json',
    ]);
    expect(encoded.code, encoded.stderr).toBe(0);
    expect(JSON.parse(encoded.stdout).latent.shape).toEqual(size.crop.latentShape);
    expect(size.crop.latentShape).toEqual([1, 8, 10, 15]);
    const text = await runCli(['info', '-m', SANA, '--size', '500x333']);
    expect(text.stdout).toContain('size       500x333 is not a multiple of 32');
    expect(text.stdout).toContain('--fit crop → 480x320, latent [1, 8, 10, 15]');
  });
});

describe('item 2: decode honours the latent metadata contract', () => {
  it('encode records the contract; decode with another model is MODEL_MISMATCH (nothing written) unless --force', async () => {
    const dir = await tempDir();
    const latent = join(dir, 'l.safetensors');
    const input = join(SANA, 'input.safetensors');
    expect((await runCli(['encode', '-q', '-m', SANA, input, '-o', latent])).code).toBe(0);
    expect(Object.fromEntries(await readMetadata(latent))).toMatchObject({
      'dcae.latent_version': '1',
      'dcae.model': SANA,
      'dcae.latent_space': 'autoencoder',
      'dcae.scaling_factor': '0.41407',
      'dcae.dtype': 'fp32',
    });
    const other = await runCli(['decode', '-m', IN, latent, '-o', join(dir, 'x.png')]);
    expectError(other, 'MODEL_MISMATCH', 5);
    expect(other.stderr).toContain(`made with ${SANA}, not ${IN}`);
    expect(hints(other)[0]).toContain(`--model ${SANA}`);
    expect(hints(other)[0]).toContain('--force');
    expect(await readdir(dir)).toEqual(['l.safetensors']);
    const forced = await runCli(['decode', '-m', IN, latent, '-o', join(dir, 'x.png'), '--force']);
    expect(forced.code, forced.stderr).toBe(0);
    expect(forced.stderr).toMatch(/warning: .*made with .*Decoding anyway/);
    // The same model under another path is the same model.
    const same = await runCli(['decode', '-m', `${SANA}/`, latent, '-o', join(dir, 'y.png')]);
    expect(same.code, same.stderr).toBe(0);
  });

  it("generate's diffusion-space latent is divided by its scaling factor: decode gives generate's own image", async () => {
    const dir = await tempDir();
    const args = ['generate', '-m', UVIT, '--class', '207', '--seed', '3', '--steps', '3', '--threads', '1'];
    const latentPath = join(dir, 'g.safetensors');
    expect((await runCli([...args, '-o', latentPath])).code).toBe(0);
    const metadata = await readMetadata(latentPath);
    expect(metadata.get('dcae.latent_space')).toBe('diffusion');
    const grid = join(dir, 'grid.png');
    expect((await runCli([...args, '--autoencoder', SANA, '-o', grid])).code).toBe(0);
    const decoded = join(dir, 'decoded.png');
    const r = await runCli(['decode', '-m', SANA, latentPath, '-o', decoded]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/diffusion-space latent, divided by its scaling factor 0\.41407/);
    // Before the contract, decode took the scaled latent as it was: a different, wrong image.
    expect((await readImage(decoded)).data).toEqual((await readImage(grid)).data);
    const raw = await readTensor(latentPath, 'latent');
    const runtime = createNodeRuntime({ threads: 1 });
    const ae = await loadAutoencoder(SANA, { runtime });
    try {
      const unscaledWrongly = tensorToImages(await ae.decode(raw))[0]!;
      expect(unscaledWrongly.data).not.toEqual((await readImage(decoded)).data);
    } finally {
      await ae.dispose();
      await runtime.dispose();
    }
  });

  it('a file without dcae.latent_space is taken as unscaled; --scaled says otherwise; malformed keys are refused', async () => {
    const dir = await tempDir();
    const raw = await readTensor(join(SANA, 'input.safetensors'), 'latent');
    const bare = join(dir, 'bare.safetensors');
    await writeFile(bare, serializeSafetensors({ latent: raw }));
    const plain = await runCli(['decode', '-m', SANA, bare, '-o', join(dir, 'a.safetensors'), '--json']);
    expect(JSON.parse(plain.stdout)).toMatchObject({ latentSpace: 'autoencoder', unscaledBy: null });
    const scaled = await runCli([
      'decode',
      '-m',
      SANA,
      bare,
      '--scaled',
      '-o',
      join(dir, 'b.safetensors'),
      '--json',
    ]);
    expect(JSON.parse(scaled.stdout)).toMatchObject({ latentSpace: 'diffusion', unscaledBy: 0.41407 });
    const a = await readTensor(join(dir, 'a.safetensors'), 'sample');
    const b = await readTensor(join(dir, 'b.safetensors'), 'sample');
    expect(a.data).not.toEqual(b.data);
    const broken = join(dir, 'broken.safetensors');
    await writeFile(broken, serializeSafetensors({ latent: raw }, { 'dcae.latent_space': 'pixels' }));
    const r = await runCli(['decode', '-m', SANA, broken, '-o', join(dir, 'c.png')]);
    expectError(r, 'INVALID_ARGUMENT', 2);
    expect(r.stderr).toContain('dcae.latent_space is "pixels"; expected "autoencoder" or "diffusion"');
  });
});

describe('item 8: tile flags', () => {
  it('--tile-size 64 alone works (the default overlap is clamped to the tile)', async () => {
    const dir = await tempDir();
    const r = await runCli([
      'encode',
      '-q',
      '-m',
      SANA,
      join(SANA, 'input.safetensors'),
      '--tile-size',
      '64',
      '-o',
      join(dir, 'l.safetensors'),
    ]);
    expect(r.code, r.stderr).toBe(0);
  });

  it('geometry errors name the flags, not library fields, and end with the usage hint', async () => {
    const dir = await tempDir();
    const r = await runCli([
      'encode',
      '-m',
      SANA,
      join(SANA, 'input.safetensors'),
      '--tile-size',
      '64',
      '--tile-overlap',
      '64',
      '-o',
      join(dir, 'l.safetensors'),
    ]);
    expectError(r, 'INVALID_ARGUMENT', 2);
    expect(r.stderr).toContain(
      '--tile-overlap must be a whole number of pixels from 0 to --tile-size − 1 (63); got 64.',
    );
    expect(r.stderr).not.toMatch(/tileSize|tiling\./);
    expect(r.stderr).not.toMatch(/error\[INVALID_ARGUMENT\]: overlap/);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe('hint: run `dcae encode --help`');
  });

  it("--tile-style diffusers runs diffusers' layout (different from the aligned one)", async () => {
    const dir = await tempDir();
    const input = join(SANA, 'input.safetensors');
    const run = async (style: string) => {
      const out = join(dir, `${style}.safetensors`);
      const r = await runCli([
        'decode',
        '-q',
        '-m',
        SANA,
        input,
        '--tile-size',
        '64',
        '--tile-style',
        style,
        '-o',
        out,
      ]);
      expect(r.code, r.stderr).toBe(0);
      return readTensor(out, 'sample');
    };
    const [aligned, diffusers] = [await run('aligned'), await run('diffusers')];
    expect(diffusers.shape).toEqual(aligned.shape);
    expect(diffusers.data).not.toEqual(aligned.data);
  });
});

describe('hints: CLI errors name flags and end with the real command', () => {
  it.each([
    [['encode', '-m', SANA, 'x.png'], 'encode'],
    [['decode', '-m', SANA, 'x.safetensors', '-o', 'y.png', '--frobnicate'], 'decode'],
    [['reconstruct', '-m', SANA, 'x.png', '-o', 'y.png', '--tile-size', 'big'], 'reconstruct'],
    [['generate', '-m', UVIT, '-o', 'x.png', '--class', 'dog'], 'generate'],
    [['info', '-m', SANA, '--size', 'huge'], 'info'],
    [['convert', '-m', SANA], 'convert'],
    [['models', '--kind', 'vae'], 'models'],
    [['frobnicate'], ''],
  ])('%j → ends with hint: run `dcae %s --help`', async (args, command) => {
    const r = await runCli(args);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr.trimEnd().split('\n').at(-1)).toBe(
      `hint: run \`dcae ${command ? `${command} ` : ''}--help\``,
    );
  });

  it('an unavailable device and an existing output get CLI advice (flags), not library options', async () => {
    const dir = await tempDir();
    const cuda = await runCli(['info', '-m', SANA, '--device', 'cuda']);
    if (cuda.code !== 0) {
      expectError(cuda, 'DEVICE_UNAVAILABLE', 10);
      expect(cuda.stderr).not.toContain("devices: 'auto'");
      expect(hints(cuda).join(' ')).toContain('--device auto');
    }
    const out = join(dir, 'exists.onnx-dir');
    expect((await runCli(['convert', '-q', '-m', SANA, '-o', out])).code).toBe(0);
    const again = await runCli(['convert', '-m', SANA, '-o', out]);
    expectError(again, 'OUTPUT_EXISTS', 3);
    expect(again.stderr).not.toContain('overwrite: true');
    expect(hints(again).join(' ')).toContain('--force');
  });

  it('reconstruct of a 1×1 image fails on the SSIM precondition before running the model, without suggesting --fit', async () => {
    const dir = await tempDir();
    const r = await runCli([
      'reconstruct',
      '-m',
      SANA,
      await writePhoto(dir, 1, 1),
      '-o',
      join(dir, 'o.png'),
    ]);
    expectError(r, 'INPUT_SIZE', 5);
    expect(r.stderr).toContain(
      '1×1; reconstruct measures SSIM, whose window needs at least 11×11 pixels. Nothing was run.',
    );
    expect(r.stderr).not.toContain('--fit');
    expect(r.stderr).not.toMatch(/encoding|decoding/);
  });

  it('the kind of checkpoint comes first: info on a diffusion model, generate on an autoencoder', async () => {
    const info = await runCli(['info', '-m', DIT]);
    expectError(info, 'INVALID_ARGUMENT', 2);
    expect(info.stderr).toContain('is a diffusion model');
    expect(info.stderr).toContain(`dcae generate --model ${DIT}`);
    expect(info.stderr).not.toContain('diffusion_pytorch_model.safetensors');
    const generate = await runCli([
      'generate',
      '-m',
      SANA,
      '--class',
      '1',
      '-o',
      join(await tempDir(), 'x.png'),
    ]);
    expectError(generate, 'INVALID_ARGUMENT', 2);
    expect(generate.stderr).toContain(
      `is an autoencoder, not a diffusion model; pass it as --autoencoder ${SANA}`,
    );
    expect(generate.stderr.split('\n').filter((l) => l.includes('unknown field'))).toEqual([]);
  });

  it('info, convert and generate --help list only the options they use', async () => {
    for (const command of ['info', 'convert', 'generate']) {
      const help = (await runCli([command, '--help'])).stdout;
      for (const flag of ['--tile ', '--tile-size', '--tile-overlap', '--tile-style', '--memory-budget'])
        expect(help, `${command} ${flag}`).not.toContain(flag);
      if (command !== 'convert') expect(help, command).not.toContain('--dtype');
    }
    expect((await runCli(['convert', '--help'])).stdout).toContain('--dtype');
    for (const command of ['encode', 'decode', 'reconstruct'])
      expect((await runCli([command, '--help'])).stdout).toContain('--tile-style');
  });
});

describe('item 5: a mistyped local path that looks like a Hub id', () => {
  it('says "no local folder" and the Hub answer at once, after one try (dead server: well under a second)', async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const port = (server.address() as AddressInfo).port;
    await new Promise((done) => server.close(done));
    const home = await tempDir();
    const started = performance.now();
    const r = await new Promise<CliResult>((done) =>
      execFile(
        process.execPath,
        [BIN, 'info', '--model', 'fixture/dcae'],
        {
          cwd: REPO,
          env: { ...process.env, HF_ENDPOINT: `http://127.0.0.1:${port}`, HF_HOME: home, HF_HUB_OFFLINE: '' },
        },
        (error, stdout, stderr) =>
          done({ code: typeof error?.code === 'number' ? error.code : 0, signal: null, stdout, stderr }),
      ),
    );
    expect(performance.now() - started).toBeLessThan(5000); // process start included; retries cost 8 s+
    expectError(r, 'NETWORK', 3);
    expect(r.stderr).toMatch(/^error\[NETWORK\]: No local folder fixture\/dcae; as a Hub id: /m);
    expect(r.stderr).not.toContain('Retrying');
  });
});

describe("README's CUDA command", () => {
  it('names the install script dcae info points at, by a path that exists from the repository root', async () => {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    const command = /<!-- cuda-install -->\n```sh\n(node (\S+) --onnxruntime-node-install=cuda12)\n```/.exec(
      readme,
    );
    expect(command, 'README.md marks its CUDA command with <!-- cuda-install -->').not.toBeNull();
    const script = await realpath(join(REPO, command![2]!));
    const info = await runCli(['info', '-m', SANA]);
    const printed = /Run `node (\S+) --onnxruntime-node-install=cuda12`/.exec(info.stdout)?.[1];
    // Where the CUDA libraries are already installed, info prints no command; the path must still exist.
    if (printed !== undefined) expect(await realpath(printed)).toBe(script);
    expect(script).toMatch(/onnxruntime-node\/script\/install\.js$/);
  });
});

describe('the first five minutes: the README quick start, in order', () => {
  it('each command of README.md runs as printed and says what a new user needs to read', async () => {
    const readme = await readFile(join(REPO, 'README.md'), 'utf8');
    const block = /<!-- first-five-minutes -->\n```sh\n([\s\S]*?)```/.exec(readme);
    expect(block, 'README.md marks its quick start with <!-- first-five-minutes -->').not.toBeNull();
    const commands = block![1]!
      .split('\n')
      .map((line) => line.trim())
      .filter((line) => line.startsWith('npm run dcae -- '))
      .map((line) =>
        line
          .slice('npm run dcae -- '.length)
          .replace(/\s+#.*$/, '')
          .split(/\s+/),
      );
    expect(commands.map((c) => c[0])).toEqual([
      'info',
      'reconstruct',
      'encode',
      'encode',
      'decode',
      'generate',
      'models',
    ]);

    // The user's own photo: 100×70, not a multiple of 32.
    const dir = await tempDir();
    await writePhoto(dir, 100, 70);
    // As printed: the built `dcae`, run in the folder of the photo (fixtures/ is the repository's).
    const run = (args: string[]) =>
      spawnCli(
        args.map((a) => (a.startsWith('fixtures/') ? join(REPO, a) : a)),
        { cwd: dir },
      );
    const transcript: CliResult[] = [];
    for (const args of commands) transcript.push(await run(args));
    const [info, reconstruct, encodeStrict, encodePad, decode, generate, models] = transcript as [
      CliResult,
      CliResult,
      CliResult,
      CliResult,
      CliResult,
      CliResult,
      CliResult,
    ];

    // Without --model, the autoencoder commands run the bundled default model and say so once.
    const defaulted = [info, reconstruct, encodeStrict, encodePad, decode];
    for (const r of defaulted) {
      expect(
        r.stderr.match(/no --model given, using the bundled default model @dcae\/model-tiny/g),
      ).toHaveLength(1);
      expect(r.stderr).toContain(join('model-tiny', 'README.md'));
    }
    expect(generate.stderr).not.toContain('default model');

    expect(info.code, info.stderr).toBe(0);
    expect(info.stdout).toMatch(/^model +.*model-tiny \(diffusers checkpoint format\)/m);
    expect(info.stdout).toContain('size       512x512 → latent [1, 32, 16, 16]');
    expect(info.stdout).toMatch(/^ +cpu +available/m);

    expect(reconstruct.code, reconstruct.stderr).toBe(0);
    expect(reconstruct.stdout).toMatch(/^PSNR \d+\.\d{4} dB$/m);
    expect(reconstruct.stdout).toMatch(/^SSIM -?\d\.\d{6}$/m);
    expect(reconstruct.stdout).toContain('input 100×70 padded to 128×96');
    expect(reconstruct.stdout).toContain('wrote out.png');
    expect(reconstruct.stdout).toContain('wrote compare.png (original | reconstruction)');
    expect(await readImage(join(dir, 'out.png'))).toMatchObject({ width: 100, height: 70 });
    expect(await readImage(join(dir, 'compare.png'))).toMatchObject({ width: 2 * 100 + 8, height: 70 });

    // encode refuses to guess: it names the sizes and both fixes.
    expectError(encodeStrict, 'INPUT_SIZE', 5);
    expect(encodeStrict.stderr).toContain(
      'Image is 100×70 (W×H), but this model needs both sides to be multiples of 32',
    );
    expect(encodeStrict.stderr).toContain(
      '96×64 (--fit crop: keep the top-left region) or 128×96 (--fit pad:',
    );
    expect(encodeStrict.stderr).not.toContain("fit 'crop'");
    expect(hints(encodeStrict).join(' ')).toMatch(/--fit crop.*--fit pad/);

    expect(encodePad.code, encodePad.stderr).toBe(0);
    expect(encodePad.stdout).toMatch(
      /^wrote latent\.safetensors: latent \[1, 32, 3, 4\] float32 \(unscaled; scaling factor /m,
    );
    expect(encodePad.stdout).toContain('input 100×70 padded to 128×96');

    expect(decode.code, decode.stderr).toBe(0);
    expect(decode.stdout).toContain(
      'wrote decoded.png: 1 image of 100×70 (cropped to the size recorded by encode --fit pad)',
    );

    expect(generate.code, generate.stderr).toBe(0);
    expect(generate.stdout).toMatch(/^wrote grid\.png: 1 image of 128×128/m);
    expect(generate.stdout).toMatch(/seed 0/);

    expect(models.code, models.stderr).toBe(0);
    expect(models.stdout).toContain('mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers');
    expect(models.stdout).toMatch(/^ +@dcae\/model-tiny +autoencoder f32c32/m);
    expect(models.stdout).toContain('random weights, for tests only');

    expect((await readdir(dir)).sort()).toEqual([
      'compare.png',
      'decoded.png',
      'grid.png',
      'latent.safetensors',
      'out.png',
      'photo.png',
    ]);
  }, 240_000); // seven process starts and the default model: about 25 s on an idle 2-core machine
});
