// Issue #15 item 1: `generate --model` (and `--autoencoder`) go through the one resolver every
// command uses, so a Hub id works as the README shows. A local stand-in of the Hub file API
// (packages/hub/test/helpers/hub-server.ts) serves the tiny UViT and the tiny DC-AE fixtures.
import { readFileSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HubTestServer } from '../../../packages/hub/test/helpers/hub-server.js';
import { FIXTURES, REPO, runCli, tempDir } from './helpers.js';

const UVIT = join(REPO, 'fixtures/diffusion/tiny-uvit');
const SANA = join(FIXTURES, 'tiny-sana-f32');
const bytes = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

let hub: HubTestServer;
beforeAll(async () => {
  hub = await HubTestServer.start();
  hub.addRepo('org/tiny-uvit', {
    'config.json': bytes(join(UVIT, 'config.json')),
    'model.safetensors': bytes(join(UVIT, 'model.safetensors')),
  });
  hub.addRepo('org/tiny-sana', {
    'config.json': bytes(join(SANA, 'config.json')),
    'diffusion_pytorch_model.safetensors': bytes(join(SANA, 'diffusion_pytorch_model.safetensors')),
  });
});
afterAll(async () => hub.close());

describe('generate --model <hub id>', () => {
  it('downloads the checkpoint and its autoencoder by Hub id and writes what the local folders give', async () => {
    const tmp = await tempDir();
    const home = await tempDir();
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub') };
    const run = ['--class', '207', '--sampler', 'heun', '--steps', '2', '--seed', '3', '--threads', '1'];
    const viaHub = join(tmp, 'hub.png');
    const r = await runCli(
      ['generate', '--model', 'org/tiny-uvit', '--autoencoder', 'org/tiny-sana', ...run, '-o', viaHub],
      { env },
    );
    expect(r.code, r.stderr.slice(-600)).toBe(0);
    const local = join(tmp, 'local.png');
    const l = await runCli(['generate', '--model', UVIT, '--autoencoder', SANA, ...run, '-o', local], {
      env,
    });
    expect(l.code, l.stderr).toBe(0);
    expect(Buffer.compare(await readFile(viaHub), await readFile(local))).toBe(0);
    expect(hub.requests.some((q) => q.path.includes('org/tiny-uvit'))).toBe(true);
    expect((await readdir(join(home, 'hub'))).filter((n) => n.startsWith('models--')).sort()).toEqual([
      'models--org--tiny-sana',
      'models--org--tiny-uvit',
    ]);
  });

  it('a Hub id that does not exist fails with the resolver’s error, not “not a folder”', async () => {
    const tmp = await tempDir();
    const home = await tempDir();
    const env = { HF_ENDPOINT: hub.endpoint, HF_HOME: home, HF_HUB_CACHE: join(home, 'hub') };
    const r = await runCli(
      ['generate', '--model', 'org/missing', '--class', '1', '-o', join(tmp, 'l.safetensors')],
      {
        env,
      },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).not.toContain('--model must be a diffusion checkpoint folder');
    expect(r.stderr).toContain('org/missing');
    expect(await readdir(tmp)).toEqual([]);
  });
});
