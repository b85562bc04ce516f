/**
 * The page's pure parts in Node: the model URL rules (a repo id or an http(s) URL, nothing else),
 * network failures as NETWORK errors naming the URL (a real refused connection on 127.0.0.1), and
 * the store's image note, which always describes the chosen image or the refused upload.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DcaeError } from '@dcae/core';
import { describe, expect, it } from 'vitest';
import { fetchOrFail, modelFolderUrl } from '../src/model-source.js';
import { createStore, imageNote, INITIAL_STATE, withReconstruct } from '../src/state.js';

describe('model folder URLs', () => {
  it('turns repo ids and Hub pages into resolve/main folders and keeps a folder’s last segment', () => {
    expect(modelFolderUrl(' mit-han-lab/dc-ae-f32c32-in-1.0-diffusers ')).toBe(
      'https://huggingface.co/mit-han-lab/dc-ae-f32c32-in-1.0-diffusers/resolve/main/',
    );
    expect(modelFolderUrl('https://huggingface.co/org/name')).toBe(
      'https://huggingface.co/org/name/resolve/main/',
    );
    expect(modelFolderUrl('https://host.example/models/tiny-sana-f32')).toBe(
      'https://host.example/models/tiny-sana-f32/',
    );
    expect(modelFolderUrl('http://127.0.0.1:8080/m/')).toBe('http://127.0.0.1:8080/m/');
  });

  it.each([
    'not a url at all',
    'fixtures/dcae/tiny',
    '/models/x/',
    'ftp://host/x/',
    'https://',
    'javascript:alert(1)',
  ])('refuses %j with INVALID_ARGUMENT that says what is accepted', (text) => {
    let error: unknown;
    try {
      modelFolderUrl(text);
    } catch (caught) {
      error = caught;
    }
    expect(DcaeError.is(error, 'INVALID_ARGUMENT'), String(error)).toBe(true);
    expect((error as Error).message).toMatch(
      /neither a Hugging Face repo id \(org\/name\) nor an http\(s\) URL/,
    );
  });
});

describe('network failures', () => {
  it('are NETWORK errors that name the URL and say what to do', async () => {
    const server = createServer();
    await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
    const { port } = server.address() as AddressInfo;
    await new Promise((done) => server.close(done));
    const url = `http://127.0.0.1:${port}/models/tiny/config.json?x=1`;
    const error = await fetchOrFail(url).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(DcaeError.is(error, 'NETWORK'), String(error)).toBe(true);
    expect((error as DcaeError).source).toBe(`http://127.0.0.1:${port}/models/tiny/config.json`);
    expect((error as Error).message).toMatch(
      new RegExp(
        `^http://127\\.0\\.0\\.1:${port}/models/tiny/config\\.json: GET failed \\(.+\\); check the connection and retry\\.`,
      ),
    );
  });

  it('leave a cancelled request as the abort it is', async () => {
    const controller = new AbortController();
    controller.abort(new Error('Cancelled by the user'));
    await expect(fetchOrFail('http://127.0.0.1:9/x', { signal: controller.signal })).rejects.toThrow(
      'Cancelled by the user',
    );
  });
});

describe('the store', () => {
  const image = { width: 64, height: 48, channels: 3 as const, data: new Uint8Array(64 * 48 * 3) };

  it('tells listeners the new and the previous state, and only on a change', () => {
    const store = createStore();
    const seen: string[] = [];
    store.subscribe((state, previous) => seen.push(`${previous.reconstruct.tab}→${state.reconstruct.tab}`));
    store.update((s) => withReconstruct(s, { tab: 'url' }));
    store.update((s) => s);
    expect(seen).toEqual(['fixture→url']);
    expect(INITIAL_STATE.reconstruct.tab).toBe('fixture');
  });

  it('describes the chosen image, its transparency, and a refused upload without the previous image', () => {
    expect(imageNote({ kind: 'image', id: 'file', label: 'a.png', image, transparent: 0 })).toBe(
      "a.png: 64×48; fitted to the model's compression ratio when you run.",
    );
    expect(imageNote({ kind: 'image', id: 'file', label: 'a.png', image, transparent: 0.25 })).toMatch(
      /transparency \(25% of its pixels\): the alpha channel is dropped/,
    );
    expect(
      imageNote({
        kind: 'image',
        id: 'file',
        label: 'a.png',
        image,
        transparent: 0,
        prepared: '64×48 → padded to 64×64',
      }),
    ).toBe('a.png: 64×48 → padded to 64×64.');
    const refused = imageNote({
      kind: 'rejected',
      label: 'b.png',
      error: { code: 'UNSUPPORTED_FORMAT', message: 'b.png is not a PNG, JPEG or WebP image.' },
    });
    expect(refused).toMatch(/^b\.png was refused \(UNSUPPORTED_FORMAT\): .* No image is chosen/);
    expect(refused).not.toContain('64×48');
  });
});
