import { DcaeError } from '@dcae/core';
import { checkRepoFilename } from './filename.js';
import type { HubRepoRef } from './repo-id.js';
import { checkHubRepo, checkHubRevision, DEFAULT_REVISION } from './repo-id.js';

/** The public Hub; `HF_ENDPOINT` (or `{ endpoint }`) replaces it, e.g. with a mirror. */
export const DEFAULT_HUB_ENDPOINT = 'https://huggingface.co';

/**
 * `endpoint` as `scheme://host[:port][/path]` without a trailing `/`. Only http(s) URLs without
 * credentials, query or fragment are accepted (INVALID_ARGUMENT otherwise).
 */
export function normalizeHubEndpoint(endpoint: string): string {
  let url: URL;
  try {
    url = new URL(endpoint);
  } catch (cause) {
    throw new DcaeError('INVALID_ARGUMENT', `Hub endpoint ${JSON.stringify(endpoint)} is not a URL.`, {
      source: endpoint,
      cause,
    });
  }
  const bad =
    url.protocol !== 'https:' && url.protocol !== 'http:'
      ? `its scheme is ${url.protocol} (need https: or http:)`
      : url.username !== '' || url.password !== ''
        ? 'it holds credentials (use a token instead)'
        : url.search !== '' || url.hash !== ''
          ? 'it has a query or fragment'
          : undefined;
  if (bad !== undefined) {
    throw new DcaeError('INVALID_ARGUMENT', `Hub endpoint ${displayUrl(endpoint)} is refused: ${bad}.`, {
      source: displayUrl(endpoint),
    });
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
}

export interface HubFileUrlOptions {
  /** Branch, tag or commit. @defaultValue `'main'` */
  readonly revision?: string;
  /** @defaultValue {@link DEFAULT_HUB_ENDPOINT} */
  readonly endpoint?: string;
}

/**
 * The Hub's download URL of one file, `{endpoint}/{repo}/resolve/{revision}/{file}` (what
 * huggingface_hub's `hf_hub_url` builds). Works in browsers as is: the Hub answers with CORS
 * headers and redirects large files to its CDN. Repo, revision and file name are validated.
 */
export function hubFileUrl(repo: string, file: string, options: HubFileUrlOptions = {}): string {
  checkHubRepo(repo);
  const revision = checkHubRevision(options.revision ?? DEFAULT_REVISION, repo);
  checkRepoFilename(file, repo);
  const endpoint = normalizeHubEndpoint(options.endpoint ?? DEFAULT_HUB_ENDPOINT);
  const path = file.split('/').map(encodeURIComponent).join('/');
  return `${endpoint}/${repo}/resolve/${encodeURIComponent(revision)}/${path}`;
}

/** A Hub web or download URL taken apart. */
export interface HubUrlParts extends HubRepoRef {
  /** The file (or folder) path after the revision, if any. */
  readonly path: string | undefined;
}

/**
 * Reads a Hub URL under `endpoint`: the repo page `{endpoint}/org/name`, or
 * `{endpoint}/org/name/{resolve|blob|tree}/{revision}[/path]`. Returns undefined for any URL that
 * is not one of these. A revision containing `/` must be percent-encoded (`refs%2Fpr%2F1`), as
 * the Hub writes it.
 */
export function parseHubUrl(url: string, endpoint: string = DEFAULT_HUB_ENDPOINT): HubUrlParts | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return undefined;
  }
  const base = new URL(normalizeHubEndpoint(endpoint));
  const prefix = base.pathname.replace(/\/+$/, '');
  if (parsed.origin !== base.origin || !parsed.pathname.startsWith(`${prefix}/`)) return undefined;
  let parts: string[];
  try {
    parts = parsed.pathname
      .slice(prefix.length + 1)
      .split('/')
      .map(decodeURIComponent);
  } catch {
    return undefined;
  }
  if (parts.at(-1) === '') parts.pop();
  const [org, name, kind, revision, ...rest] = parts;
  if (org === undefined || name === undefined) return undefined;
  const repo = `${org}/${name}`;
  try {
    checkHubRepo(repo);
    if (kind === undefined) return { repo, revision: undefined, path: undefined };
    if (!['resolve', 'blob', 'tree'].includes(kind) || revision === undefined) return undefined;
    checkHubRevision(revision, repo);
    const path = rest.length === 0 ? undefined : checkRepoFilename(rest.join('/'), repo);
    return { repo, revision, path };
  } catch {
    return undefined;
  }
}

/** A URL as it may appear in messages: origin and path only, never credentials, query or fragment. */
export function displayUrl(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return String(url)
      .replace(/[?#].*$/, '')
      .replace(/\/\/[^/@]*@/, '//');
  }
}
