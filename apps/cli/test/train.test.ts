import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseSafetensors } from '@dcae/core';
import type { RgbImage } from '@dcae/autoencoder';
import { encodeImage } from '@dcae/autoencoder/node';
import { BIN, FIXTURES, REPO, runCli, tempDir } from './helpers.js';

const MODEL = join(FIXTURES, 'tiny-in-f32');
const HEAD = 'decoder.conv_out.*,decoder.norm_out.*';

function image(width: number, height: number, seed: number): RgbImage {
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++)
    data[i] = (Math.sin(i * 0.01 * seed) * 100 + 128 + (i % 7) * seed) & 255;
  return { width, height, channels: 3, data };
}

async function dataFolder(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'nested'));
  await writeFile(join(dir, 'a.png'), await encodeImage(image(48, 40, 1), 'png'));
  await writeFile(join(dir, 'nested', 'b.jpg'), await encodeImage(image(40, 56, 2), 'jpeg'));
  await writeFile(join(dir, 'c.webp'), await encodeImage(image(64, 64, 3), 'webp'));
  await writeFile(join(dir, 'd.png'), await encodeImage(image(40, 40, 4), 'png'));
  const bytes = await encodeImage(image(40, 40, 5), 'png');
  await writeFile(join(dir, 'broken.png'), bytes.subarray(0, bytes.length >> 1));
  return dir;
}

describe('dcae train', () => {
  it('trains the decoder head end to end: metrics, checkpoints, preview, final readable by encode; resume continues', async () => {
    const data = await dataFolder();
    const out = join(await tempDir(), 'run');
    const args = ['train', '--model', MODEL, '--data', data, '--out', out, '--batch', '1', '--size', '32'];
    const first = await runCli([
      ...args,
      '--steps',
      '2',
      '--eval-every',
      '2',
      '--save-every',
      '1',
      '--trainable',
      HEAD,
      '--seed',
      '3',
      '--json',
    ]);
    expect(first.stderr).toMatch(/skipping .*broken\.png \(1 skipped so far\)/);
    expect(first.code, first.stderr).toBe(0);
    const result = JSON.parse(first.stdout);
    expect(result).toMatchObject({ command: 'train', steps: 2, final: join(out, 'final'), skipped: 1 });
    const lines = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({
      step: 1,
      loss: expect.any(Number),
      lr: expect.any(Number),
      ms: expect.any(Number),
    });
    expect(lines[1]).toMatchObject({ step: 2, psnr: expect.any(Number), ssim: expect.any(Number) });
    expect(await readdir(out)).toEqual(expect.arrayContaining(['checkpoint-1', 'final', 'preview-2.png']));

    // Every input key is kept; only the head changed; frozen bytes are identical.
    const input = parseSafetensors(await readFile(join(MODEL, 'diffusion_pytorch_model.safetensors')));
    const trained = parseSafetensors(
      await readFile(join(out, 'final', 'diffusion_pytorch_model.safetensors')),
    );
    expect([...trained.header.tensors.keys()].sort()).toEqual([...input.header.tensors.keys()].sort());
    for (const key of input.header.tensors.keys()) {
      const same = Buffer.from(input.tensorBytes(key)).equals(Buffer.from(trained.tensorBytes(key)));
      expect(same, key).toBe(!/^decoder\.(conv_out|norm_out)\./.test(key));
    }

    const encoded = join(out, 'latent.safetensors');
    const encode = await runCli([
      'encode',
      '--model',
      join(out, 'final'),
      join(data, 'c.webp'),
      '-o',
      encoded,
    ]);
    expect(encode.code, encode.stderr).toBe(0);

    const resumed = await runCli([
      ...args,
      '--steps',
      '3',
      '--eval-every',
      '0',
      '--save-every',
      '0',
      '--resume',
    ]);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming from .*final at step 2/);
    expect(resumed.stdout).toMatch(/trained steps 3–3/);
    const after = (await readFile(join(out, 'metrics.jsonl'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => (JSON.parse(l) as { step: number }).step);
    expect(after).toEqual([1, 2, 3]);
  });

  it("--optimizer sgd --steps 1 on a sample file gives w' = w − lr·∇L with PyTorch's gradient (MSE, every tensor)", async () => {
    // torch-grad.safetensors holds "sample" [2, 3, 32, 32] and PyTorch's gradients of the mean
    // squared error of decode(encode(sample)) for every tensor (fixtures/dcae/tiny-in-f32/torch_grad.py).
    const fixture = join(MODEL, 'torch-grad.safetensors');
    const out = join(await tempDir(), 'run');
    const lr = 64; // a large step keeps float32 rounding of w′ far below lr·∇L
    const run = await runCli([
      'train',
      '--model',
      MODEL,
      '--data',
      fixture,
      '--out',
      out,
      '--optimizer',
      'sgd',
      '--lr',
      String(lr),
      '--steps',
      '1',
      '--no-augment',
      '--batch',
      '2',
      '--loss',
      'mse',
      '--trainable',
      '*',
      '--eval-every',
      '0',
    ]);
    expect(run.code, run.stderr).toBe(0);
    const torch = parseSafetensors(await readFile(fixture));
    const before = parseSafetensors(await readFile(join(MODEL, 'diffusion_pytorch_model.safetensors')));
    const after = parseSafetensors(await readFile(join(out, 'final', 'diffusion_pytorch_model.safetensors')));
    const keys = [...torch.header.tensors.keys()].filter((k) => k.startsWith('grad.')).map((k) => k.slice(5));
    expect(keys.length).toBeGreaterThan(100);
    let largest = 0;
    for (const k of keys)
      for (const v of torch.tensor(`grad.${k}`).data as Float32Array)
        largest = Math.max(largest, Math.abs(v));
    let worst = 0;
    for (const key of keys) {
      const g = torch.tensor(`grad.${key}`).data as Float32Array;
      const w0 = before.tensor(key).data as Float32Array;
      const w1 = after.tensor(key).data as Float32Array;
      const scale = Math.max(...Array.from(g, Math.abs), 1e-4 * largest);
      for (let i = 0; i < g.length; i++)
        worst = Math.max(worst, Math.abs((w0[i]! - w1[i]!) / lr - g[i]!) / scale);
    }
    expect(worst).toBeLessThan(1e-3);
    const [line] = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
    const loss = (torch.tensor('loss').data as Float32Array)[0]!;
    expect(Math.abs((JSON.parse(line!) as { loss: number }).loss - loss)).toBeLessThan(
      1e-5 * Math.max(1, loss),
    );
  });

  it('Ctrl-C saves a checkpoint and exits with 130', async () => {
    const data = await dataFolder();
    const out = join(await tempDir(), 'run');
    const child = spawn(
      process.execPath,
      [
        BIN,
        'train',
        '--model',
        MODEL,
        '--data',
        data,
        '--out',
        out,
        '--steps',
        '1000',
        '--batch',
        '1',
        '--size',
        '32',
        '--trainable',
        HEAD,
        '--save-every',
        '0',
        '--eval-every',
        '0',
      ],
      { cwd: REPO },
    );
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (/train 1\/1000/.test(stderr) && !child.killed) child.kill('SIGINT');
    });
    const code = await new Promise<number | null>((done) => child.on('exit', done));
    expect(code, stderr).toBe(130);
    expect(stderr).toMatch(/error\[ABORTED\]: Interrupted at step \d+; saved .*checkpoint-\d+/);
    const saved = (await readdir(out)).filter((n) => n.startsWith('checkpoint-'));
    expect(saved).toHaveLength(1);
    const state = JSON.parse(await readFile(join(out, saved[0]!, 'trainer_state.json'), 'utf8'));
    expect(saved[0]).toBe(`checkpoint-${state.step}`);
  });

  it('bad inputs get typed errors: missing or empty data, a glob matching nothing, an unknown loss term', async () => {
    const empty = await tempDir();
    const out = join(await tempDir(), 'run');
    const base = ['train', '--model', MODEL, '--out', out, '--steps', '1', '--batch', '1', '--size', '32'];
    const missing = await runCli([...base, '--data', join(empty, 'nope')]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).toMatch(/error\[FILE_NOT_FOUND\]: --data .*nope does not exist/);
    const none = await runCli([...base, '--data', empty]);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/error\[DATA_EMPTY\]: --data .* holds no images/);
    const data = await dataFolder();
    const glob = await runCli([...base, '--data', data, '--trainable', 'decoder.project_out.*']);
    expect(glob.code).toBe(2);
    expect(glob.stderr).toMatch(
      /error\[TRAINABLE_NO_MATCH\]: --trainable "decoder.project_out.\*" matches none/,
    );
    const loss = await runCli([...base, '--data', data, '--loss', 'l1+lpips']);
    expect(loss.code).toBe(2);
    expect(loss.stderr).toMatch(/unknown term "lpips"/);
    const noWeights = await runCli([...base, '--data', data, '--loss', 'l1+perceptual:0.1']);
    expect(noWeights.stderr).toMatch(/error\[PERCEPTUAL_WEIGHTS_MISSING\]/);
    const missingFile = await runCli([
      ...base,
      '--data',
      data,
      '--loss',
      'l1+perceptual:0.1',
      '--perceptual-weights',
      join(empty, 'lpips.safetensors'),
    ]);
    expect(missingFile.stderr).toMatch(/error\[PERCEPTUAL_WEIGHTS_MISSING\].*lpips\.safetensors/);
    const unused = await runCli([
      ...base,
      '--data',
      data,
      '--perceptual-weights',
      join(empty, 'x.safetensors'),
    ]);
    expect(unused.code).toBe(2);
    expect(unused.stderr).toMatch(/error\[INVALID_ARGUMENT\]: --perceptual-weights .* no perceptual term/);
    // None of the refused runs left a half-written output folder behind.
    expect(await readdir(dirname(out))).toEqual([]);
  });

  it(
    '--phase 3 trains the decoder head with its GAN term: d_loss in the metrics, the discriminator beside the checkpoint',
    { timeout: 300_000 },
    async () => {
      const data = await dataFolder();
      const dir = await tempDir();
      const out = join(dir, 'run');
      // Small held-out crops and a small discriminator keep it cheap; the loss is the preset's l1 + 0.1 gan.
      const config = join(dir, 'gan.json');
      await writeFile(
        config,
        JSON.stringify({ heldOut: 1, evalSize: 32, discriminator: { channels: 8, layers: 2 } }),
      );
      const run = await runCli([
        'train',
        '--model',
        MODEL,
        '--data',
        data,
        '--out',
        out,
        '--steps',
        '1',
        '--batch',
        '1',
        '--size',
        '32',
        '--phase',
        '3',
        '--config',
        config,
      ]);
      expect(run.code, run.stderr).toBe(0);
      const [line] = (await readFile(join(out, 'metrics.jsonl'), 'utf8')).trim().split('\n');
      expect(JSON.parse(line!)).toMatchObject({
        step: 1,
        loss_l1: expect.any(Number),
        loss_gan: expect.any(Number),
        d_loss: expect.any(Number),
      });
      expect(await readdir(join(out, 'final'))).toEqual(
        expect.arrayContaining(['discriminator.safetensors', 'discriminator_optimizer.safetensors']),
      );
      const saved = JSON.parse(await readFile(join(out, 'final', 'trainer_state.json'), 'utf8'));
      expect(saved.config.loss).toEqual({ l1: 1, gan: 0.1 });
      expect(saved.config.discriminator).toEqual({ channels: 8, layers: 2 });
    },
  );
});
