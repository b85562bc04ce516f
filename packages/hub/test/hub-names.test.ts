import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DcaeError } from '@dcae/core';
import {
  checkRepoFilename,
  formatHubRepoRef,
  hubFileUrl,
  hubStatusError,
  isHubRepoId,
  normalizeHubEndpoint,
  parseHubFileMetadata,
  parseHubRepoId,
  parseHubUrl,
} from '../src/index.js';
import { hubEnvironment, hubRepoFolderName } from '../src/node/index.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (DcaeError.is(error)) return error.code;
    throw error;
  }
  return 'none';
}

describe('parseHubRepoId', () => {
  it.each([
    ['mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers', 'mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers', undefined],
    ['org/name@main', 'org/name', 'main'],
    ['org/name@v1.0', 'org/name', 'v1.0'],
    ['org/name@refs/pr/3', 'org/name', 'refs/pr/3'],
    ['gpt2', 'gpt2', undefined],
    [
      'a_b/C.d-e@0123456789abcdef0123456789abcdef01234567',
      'a_b/C.d-e',
      '0123456789abcdef0123456789abcdef01234567',
    ],
  ])('%s → repo %s, revision %s', (text, repo, revision) => {
    expect(parseHubRepoId(text)).toEqual({ repo, revision });
    expect(formatHubRepoRef(parseHubRepoId(text))).toBe(text);
    expect(isHubRepoId(text)).toBe(true);
  });

  it.each([
    '',
    'org/',
    '/name',
    'a/b/c',
    'org/na me',
    'org/-name',
    'org/name-',
    'org/.name',
    'org--x/name',
    'org/na..me',
    'org/name.git',
    `org/${'x'.repeat(97)}`,
    'org/name@',
    'org/name@..',
    'org/name@a/../b',
    'org/name@/abs',
    'org/name@a//b',
    'org/name@x y',
    'org/name@.hidden',
    'org/name@a\\b',
    '../../etc/passwd',
    'C:\\models\\x',
  ])('%j is INVALID_ARGUMENT', (text) => {
    expect(codeOf(() => parseHubRepoId(text))).toBe('INVALID_ARGUMENT');
    expect(isHubRepoId(text)).toBe(false);
  });
});

describe('checkRepoFilename (DL8)', () => {
  it.each(['config.json', 'vae/config.json', 'a/b/c.safetensors', '.gitattributes', 'x..y'])(
    '%j is safe',
    (name) => {
      expect(checkRepoFilename(name)).toBe(name);
    },
  );

  it.each([
    ['../../x', '".." part'],
    ['a/../../x', '".." part'],
    ['/etc/passwd', 'absolute'],
    ['\\windows\\x', 'absolute'],
    ['C:\\x', 'drive letter'],
    ['c:x', 'drive letter'],
    ['\\\\host\\share\\x', 'UNC'],
    ['//host/share/x', 'UNC'],
    ['a\\..\\b', 'backslash'],
    ['a//b', 'empty'],
    ['a/./b', 'empty or "."'],
    ['dir/', 'empty'],
    ['', 'empty'],
    ['a\0b', 'NUL'],
  ])('%j is UNSAFE_PATH (%s)', (name, why) => {
    let error: unknown;
    try {
      checkRepoFilename(name, 'org/repo');
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'UNSAFE_PATH', message: expect.stringContaining(why) });
  });
});

describe('hubFileUrl / parseHubUrl', () => {
  it('builds the resolve URL huggingface_hub builds, percent-encoding the revision as one segment', () => {
    expect(hubFileUrl('org/name', 'config.json')).toBe(
      'https://huggingface.co/org/name/resolve/main/config.json',
    );
    expect(
      hubFileUrl('org/name', 'vae/a b.json', {
        revision: 'refs/pr/1',
        endpoint: 'http://127.0.0.1:9/mirror/',
      }),
    ).toBe('http://127.0.0.1:9/mirror/org/name/resolve/refs%2Fpr%2F1/vae/a%20b.json');
  });

  it('validates every part', () => {
    expect(codeOf(() => hubFileUrl('org/name', '../x'))).toBe('UNSAFE_PATH');
    expect(codeOf(() => hubFileUrl('org//name', 'x'))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => hubFileUrl('org/name', 'x', { revision: '..' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => hubFileUrl('org/name', 'x', { endpoint: 'ftp://host' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => hubFileUrl('org/name', 'x', { endpoint: 'https://user:pw@host' }))).toBe(
      'INVALID_ARGUMENT',
    );
    expect(codeOf(() => normalizeHubEndpoint('not a url'))).toBe('INVALID_ARGUMENT');
  });

  it('reads repo pages and resolve/blob/tree URLs under the endpoint, and nothing else', () => {
    expect(parseHubUrl('https://huggingface.co/org/name')).toEqual({
      repo: 'org/name',
      revision: undefined,
      path: undefined,
    });
    expect(parseHubUrl('https://huggingface.co/org/name/resolve/main/vae/config.json')).toEqual({
      repo: 'org/name',
      revision: 'main',
      path: 'vae/config.json',
    });
    expect(parseHubUrl('https://huggingface.co/org/name/tree/refs%2Fpr%2F2/')).toEqual({
      repo: 'org/name',
      revision: 'refs/pr/2',
      path: undefined,
    });
    expect(parseHubUrl('http://127.0.0.1:5/hf/org/name/blob/v1/x', 'http://127.0.0.1:5/hf')).toMatchObject({
      repo: 'org/name',
      revision: 'v1',
      path: 'x',
    });
    expect(parseHubUrl('https://example.com/org/name')).toBeUndefined();
    expect(parseHubUrl('https://huggingface.co/org/name/raw/main/x')).toBeUndefined();
    expect(parseHubUrl('https://huggingface.co/org/name/resolve/main/a%2F..%2F..%2Fx')).toBeUndefined();
    expect(parseHubUrl('https://huggingface.co/org/name/resolve/a%2F..%2Fb/x')).toBeUndefined();
  });
});

describe('parseHubFileMetadata', () => {
  const commit = 'a'.repeat(40);
  const sha = 'b'.repeat(64);
  const headers = (h: Record<string, string>) => new Headers(h);

  it('reads an LFS answer (X-Linked-*) and a plain-file answer (ETag + Content-Length)', () => {
    expect(
      parseHubFileMetadata(
        headers({
          'x-repo-commit': commit,
          'x-linked-etag': `"${sha}"`,
          'x-linked-size': '123',
          etag: 'W/"zz"',
        }),
        's',
      ),
    ).toEqual({ commit, etag: sha, size: 123, lfs: true });
    expect(
      parseHubFileMetadata(
        headers({
          'x-repo-commit': commit,
          etag: 'W/"0123456789abcdef0123456789abcdef01234567"',
          'content-length': '7',
        }),
        's',
      ),
    ).toEqual({ commit, etag: '0123456789abcdef0123456789abcdef01234567', size: 7, lfs: false });
  });

  it.each([
    [{ etag: '"x"', 'content-length': '1' }, 'no X-Repo-Commit'],
    [{ 'x-repo-commit': 'main', etag: '"x"', 'content-length': '1' }, 'not a 40-hex commit'],
    [{ 'x-repo-commit': commit, 'content-length': '1' }, 'no ETag'],
    [{ 'x-repo-commit': commit, etag: '"../../evil"', 'content-length': '1' }, 'not a safe blob name'],
    [{ 'x-repo-commit': commit, 'x-linked-etag': '"a/b"', 'x-linked-size': '1' }, 'not a safe blob name'],
    [{ 'x-repo-commit': commit, etag: '"x"' }, 'Content-Length'],
    [{ 'x-repo-commit': commit, 'x-linked-etag': `"${sha}"`, 'x-linked-size': '-1' }, 'X-Linked-Size'],
  ])('%j is NETWORK (%s): the server is not a Hub', (h, why) => {
    let error: unknown;
    try {
      parseHubFileMetadata(headers(h), 'org/x/file');
    } catch (caught) {
      error = caught;
    }
    expect(error).toMatchObject({ code: 'NETWORK', message: expect.stringContaining(why) });
  });
});

describe('hubStatusError', () => {
  it.each([
    [401, {}, false, 'set HF_TOKEN'],
    [401, {}, true, 'token was refused'],
    [403, { 'x-error-code': 'GatedRepo' }, true, 'accept its conditions'],
    [404, { 'x-error-code': 'EntryNotFound' }, false, 'no such file'],
    [404, { 'x-error-code': 'RevisionNotFound' }, false, 'revision does not exist'],
    [429, {}, false, 'rate limited'],
    [503, {}, false, 'server failed'],
  ])('HTTP %i %j (token: %s) says "%s"', (status, h, withToken, advice) => {
    const error = hubStatusError(status, new Headers(h), {
      source: 'org/x/config.json',
      repo: 'org/x',
      withToken,
    });
    expect(error).toMatchObject({
      code: 'HTTP_STATUS',
      detail: { status },
      message: expect.stringContaining(advice),
    });
  });
});

describe('hubEnvironment', () => {
  it('defaults like huggingface_hub: ~/.cache/huggingface/hub, huggingface.co, online, no token', () => {
    expect(hubEnvironment({ HF_TOKEN_PATH: '/nonexistent/token' })).toEqual({
      endpoint: 'https://huggingface.co',
      cacheDir: join(homedir(), '.cache', 'huggingface', 'hub'),
      offline: false,
      token: undefined,
      timeoutMs: undefined,
    });
  });

  it('reads HF_HUB_CACHE over HF_HOME over XDG_CACHE_HOME, HF_ENDPOINT, HF_HUB_OFFLINE, HF_TOKEN', () => {
    expect(hubEnvironment({ XDG_CACHE_HOME: '/x', HF_TOKEN_PATH: '/none' }).cacheDir).toBe(
      '/x/huggingface/hub',
    );
    expect(hubEnvironment({ XDG_CACHE_HOME: '/x', HF_HOME: '/h', HF_TOKEN_PATH: '/none' }).cacheDir).toBe(
      '/h/hub',
    );
    expect(hubEnvironment({ HF_HOME: '/h', HF_HUB_CACHE: '/c' }).cacheDir).toBe('/c');
    expect(hubEnvironment({ HUGGINGFACE_HUB_CACHE: '/legacy' }).cacheDir).toBe('/legacy');
    expect(hubEnvironment({ HF_ENDPOINT: 'https://hf-mirror.example/' }).endpoint).toBe(
      'https://hf-mirror.example',
    );
    for (const on of ['1', 'ON', 'yes', 'True'])
      expect(hubEnvironment({ HF_HUB_OFFLINE: on }).offline).toBe(true);
    for (const off of ['0', '', 'no']) expect(hubEnvironment({ HF_HUB_OFFLINE: off }).offline).toBe(false);
    expect(hubEnvironment({ HF_TOKEN: ' hf_abc ' }).token).toBe('hf_abc');
    expect(hubEnvironment({ HUGGING_FACE_HUB_TOKEN: 'hf_old' }).token).toBe('hf_old');
    expect(hubEnvironment({ HF_HUB_DOWNLOAD_TIMEOUT: '2.5' }).timeoutMs).toBe(2500);
  });

  it('reads the token file that `hf auth login` writes to $HF_HOME/token', async () => {
    const home = await mkdtemp(join(tmpdir(), 'dcae-hf-home-'));
    try {
      await writeFile(join(home, 'token'), 'hf_from_file\n');
      expect(hubEnvironment({ HF_HOME: home }).token).toBe('hf_from_file');
      expect(hubEnvironment({ HF_HOME: home, HF_TOKEN: 'hf_env' }).token).toBe('hf_env');
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  it('names repo folders as huggingface_hub does', () => {
    expect(hubRepoFolderName('mit-han-lab/dc-ae-f32c32-in-1.0')).toBe(
      'models--mit-han-lab--dc-ae-f32c32-in-1.0',
    );
    expect(hubRepoFolderName('gpt2')).toBe('models--gpt2');
  });
});
