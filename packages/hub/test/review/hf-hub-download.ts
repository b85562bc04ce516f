// The review of issue #12 (docs/hub.md): `hubDownload` built on `@huggingface/hub`'s
// `downloadFileToCacheDir` instead of our transfer, lock and cache code, so that our Hub
// fault-injection tests can run against it (`pnpm --filter @dcae/hub test:review-hf`).
//
// What stays ours in this adapter is only what the library has no equivalent of and that is no
// download logic: reading HF_ENDPOINT / HF_HUB_CACHE / HF_TOKEN (`hubSettings`), and turning the
// library's errors into our `DcaeError` codes (`hubStatusError`). Retries, timeouts, resume, locks,
// integrity checks, refs and offline use are left to the library, which is what is under review.
import { lstat, stat } from 'node:fs/promises';
import { relative, sep } from 'node:path';
import { downloadFileToCacheDir, HubApiError } from '@huggingface/hub';
import { DcaeError } from '@dcae/core';
import { checkHubRepo, checkHubRevision, DEFAULT_REVISION } from '../../src/repo-id.js';
import { checkRepoFilename } from '../../src/filename.js';
import { hubStatusError } from '../../src/response.js';
import { hubSettings } from '../../src/node/hub-download.js';
import type { HubDownloadOptions, HubFile } from '../../src/node/hub-download.js';

export async function hubDownload(
  repo: string,
  file: string,
  options: HubDownloadOptions = {},
): Promise<HubFile> {
  checkHubRepo(repo);
  const revision = checkHubRevision(options.revision ?? DEFAULT_REVISION, repo);
  checkRepoFilename(file, repo);
  const settings = hubSettings(options);
  const token = settings.http.token;
  let bodyRequests = 0;
  let failedHeaders: Headers = new Headers();
  const signal = options.signal;
  // The library accepts a fetch; ours only adds the caller's AbortSignal, counts the requests
  // that fetch file bytes (not the `Range: bytes=0-0` probe) to report `cached`, and keeps the
  // headers of a failed answer (the library's HubApiError drops the Hub's X-Error-Code).
  const wrappedFetch: typeof fetch = async (input, init) => {
    const range = new Headers(init?.headers).get('range');
    const url = input instanceof Request ? input.url : input instanceof URL ? input.href : input;
    if ((init?.method ?? 'GET') === 'GET' && range !== 'bytes=0-0' && !url.includes('/api/')) bodyRequests++;
    const response = await fetch(input, { ...init, signal: signal ?? init?.signal });
    if (!response.ok) failedHeaders = response.headers;
    return response;
  };
  let path: string;
  try {
    path = await downloadFileToCacheDir({
      repo,
      path: file,
      revision,
      hubUrl: settings.endpoint,
      cacheDir: settings.cacheDir,
      accessToken: token,
      fetch: wrappedFetch,
    });
  } catch (error) {
    if (DcaeError.is(error)) throw error;
    if (signal?.aborted === true) {
      throw new DcaeError('ABORTED', `${repo}/${file}: the download was cancelled.`, { source: file });
    }
    if (error instanceof HubApiError) {
      throw hubStatusError(error.statusCode, failedHeaders, {
        source: file,
        repo,
        withToken: token !== undefined,
      });
    }
    throw new DcaeError('NETWORK', `${repo}/${file}: ${String(error)}`, { source: file, cause: error });
  }
  // <cache>/models--org--name/snapshots/<commit>/<file>
  const [, snapshots, commit] = relative(settings.cacheDir, path).split(sep);
  if (snapshots !== 'snapshots' || commit === undefined) {
    throw new DcaeError('MODEL_NOT_FOUND', `unexpected cache path ${path}`, { source: file });
  }
  await lstat(path);
  const { size } = await stat(path);
  return { repo, revision, commit, file, path, size, cached: bodyRequests === 0 };
}
