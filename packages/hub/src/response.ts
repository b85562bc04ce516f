import { DcaeError } from '@dcae/core';

/** What the Hub says about one file at one revision (the headers of its `resolve/` answer). */
export interface HubFileMetadata {
  /** The commit the revision points to (`X-Repo-Commit`). */
  readonly commit: string;
  /**
   * The file's blob name in the cache: the sha256 of its bytes for LFS/Xet files
   * (`X-Linked-Etag`), the git blob sha1 for plain git files (`ETag`).
   */
  readonly etag: string;
  /** Bytes (`X-Linked-Size`, else `Content-Length`). */
  readonly size: number;
  /** Stored with LFS/Xet: the answer is a redirect to the file's bytes elsewhere. */
  readonly lfs: boolean;
}

/** How the content of a file can be checked, from its etag. */
export type HubDigest = { readonly algorithm: 'sha256' | 'git-sha1'; readonly hex: string } | undefined;

const HEX40 = /^[0-9a-f]{40}$/;
const HEX64 = /^[0-9a-f]{64}$/;
/** Etags that are safe as a file name in `blobs/` (any server, not only the Hub). */
const SAFE_ETAG = /^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,127}$/;

/** `W/"abc"` → `abc`. */
export function normalizeEtag(value: string): string {
  return value
    .trim()
    .replace(/^W\//, '')
    .replace(/^"(.*)"$/, '$1');
}

/** What an etag lets us verify: a sha256 (LFS) or a git blob sha1 (plain files); else nothing. */
export function etagDigest(etag: string, lfs: boolean): HubDigest {
  if (HEX64.test(etag)) return { algorithm: 'sha256', hex: etag };
  if (!lfs && HEX40.test(etag)) return { algorithm: 'git-sha1', hex: etag };
  return undefined;
}

interface HeaderSource {
  get(name: string): string | null;
}

/**
 * Reads the commit, etag and size from the headers of a `HEAD …/resolve/{revision}/{file}` answer
 * (200, or the redirect of an LFS file). Anything missing or malformed is NETWORK: the server is
 * not behaving like the Hub (a proxy or a wrong `HF_ENDPOINT`), and the values name files in the
 * cache, so they are checked before use.
 */
export function parseHubFileMetadata(headers: HeaderSource, source: string): HubFileMetadata {
  const commit = headers.get('x-repo-commit')?.trim();
  const linkedEtag = headers.get('x-linked-etag');
  const etag = normalizeEtag(linkedEtag ?? headers.get('etag') ?? '');
  const sizeText = (
    linkedEtag === null ? headers.get('content-length') : headers.get('x-linked-size')
  )?.trim();
  const size = sizeText !== undefined && /^\d{1,16}$/.test(sizeText) ? Number(sizeText) : NaN;
  const problem =
    commit === undefined
      ? 'no X-Repo-Commit header'
      : !HEX40.test(commit)
        ? `X-Repo-Commit ${JSON.stringify(commit.slice(0, 80))} is not a 40-hex commit id`
        : etag === ''
          ? 'no ETag or X-Linked-Etag header'
          : !SAFE_ETAG.test(etag)
            ? `the etag ${JSON.stringify(etag.slice(0, 80))} is not a safe blob name`
            : !Number.isSafeInteger(size)
              ? `no usable ${linkedEtag === null ? 'Content-Length' : 'X-Linked-Size'} header`
              : undefined;
  if (problem !== undefined) {
    throw new DcaeError(
      'NETWORK',
      `${source}: the server's answer is not a Hugging Face Hub file answer (${problem}). ` +
        'Check HF_ENDPOINT, or a proxy between you and the Hub.',
      { source },
    );
  }
  return { commit: commit!, etag, size, lfs: linkedEtag !== null };
}

/** What a failed Hub request was for, for the message. */
export interface HubRequestContext {
  /** The file or URL requested (no query string). */
  readonly source: string;
  /** `org/name`, when the request was for a Hub repo. */
  readonly repo?: string;
  /** Whether a token was sent. */
  readonly withToken: boolean;
}

/**
 * The error for an HTTP status the download cannot continue after: HTTP_STATUS with
 * `detail.status` (and the Hub's `X-Error-Code`, e.g. `GatedRepo`, `EntryNotFound`), and a
 * message that says what to do. Nothing from the request's headers (the token) is included.
 */
export function hubStatusError(status: number, headers: HeaderSource, context: HubRequestContext): DcaeError {
  const hubCode = headers.get('x-error-code') ?? undefined;
  const hubMessage = headers.get('x-error-message')?.slice(0, 300);
  const what = context.repo ?? 'the repo';
  const advice =
    status === 401 && !context.withToken
      ? `${what} is private or gated, or does not exist: set HF_TOKEN to a token with access.`
      : status === 401
        ? 'the token was refused: check that HF_TOKEN holds a valid, unexpired token.'
        : status === 403 && hubCode === 'GatedRepo'
          ? `${what} is gated: accept its conditions on the Hub page with the account of your token.`
          : status === 403
            ? `access denied: the token has no access to ${what}.`
            : status === 404 && hubCode === 'RevisionNotFound'
              ? 'the revision does not exist.'
              : status === 404 && hubCode === 'EntryNotFound'
                ? 'the repo has no such file at this revision.'
                : status === 404
                  ? 'not found: check the repo id, the revision and the file name.'
                  : status === 429
                    ? 'rate limited by the server, and retrying did not help; wait and try again.'
                    : status >= 500
                      ? 'the server failed, and retrying did not help; try again later.'
                      : 'unexpected answer.';
  const details = [hubCode, hubMessage].filter((x) => x !== undefined && x !== '').join(': ');
  return new DcaeError(
    'HTTP_STATUS',
    `${context.source}: HTTP ${status}${details === '' ? '' : ` (${details})`}; ${advice}`,
    {
      source: context.source,
      detail: { status, hubErrorCode: hubCode },
      ...(status === 401 && !context.withToken
        ? { hint: { library: 'Or pass { token } in the Hub options.' } }
        : {}),
    },
  );
}
