import { DcaeError } from '@dcae/core';

/** The revision used when none is given. */
export const DEFAULT_REVISION = 'main';

/** A Hugging Face Hub model repository, with an optional revision (branch, tag or commit). */
export interface HubRepoRef {
  /** `org/name` (or a bare `name`). */
  readonly repo: string;
  /** Branch, tag or 40-hex commit; `undefined` means {@link DEFAULT_REVISION}. */
  readonly revision: string | undefined;
}

/** One repo id segment: word characters, `-` and `.`, starting and ending with a word character. */
const SEGMENT = /^[A-Za-z0-9_](?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;
const MAX_NAME_LENGTH = 96;
const MAX_REVISION_LENGTH = 255;
const COMMIT = /^[0-9a-f]{40}$/;

/** True for a full 40-hex git commit id, which needs no lookup and never moves. */
export function isCommitHash(revision: string): boolean {
  return COMMIT.test(revision);
}

/**
 * Why `repo` is not a valid Hub repo id, or undefined when it is. The rules are huggingface_hub's
 * `validate_repo_id`: at most one `/`, segments of word characters, `-` and `.` that start and end
 * with a word character, a name of at most 96 characters, no `--` or `..`, no `.git` suffix.
 */
function repoIdProblem(repo: string): string | undefined {
  const parts = repo.split('/');
  if (parts.length > 2) return 'it has more than one "/"';
  if (!parts.every((part) => SEGMENT.test(part))) {
    return 'each part must use only letters, digits, "_", "-" and ".", and start and end with a letter, digit or "_"';
  }
  if (parts.at(-1)!.length > MAX_NAME_LENGTH) return `the name is longer than ${MAX_NAME_LENGTH} characters`;
  if (repo.includes('--') || repo.includes('..')) return 'it contains "--" or ".."';
  if (repo.endsWith('.git')) return 'it ends with ".git"';
  return undefined;
}

/**
 * Why `revision` is not acceptable, or undefined when it is. Revisions name a folder under
 * `refs/` in the cache, so besides git's own rules (no `..`, no empty or dot-leading parts) only
 * word characters, `-`, `.` and `/` are accepted.
 */
function revisionProblem(revision: string): string | undefined {
  if (revision.length === 0 || revision.length > MAX_REVISION_LENGTH) {
    return `it must have 1 to ${MAX_REVISION_LENGTH} characters`;
  }
  if (!/^[A-Za-z0-9_./-]+$/.test(revision)) return 'only letters, digits, "_", "-", "." and "/" are allowed';
  const parts = revision.split('/');
  if (parts.some((part) => part === '' || part.startsWith('.') || part.endsWith('.lock'))) {
    return 'a "/"-separated part is empty, starts with "." or ends with ".lock"';
  }
  if (revision.includes('..')) return 'it contains ".."';
  return undefined;
}

/** Throws INVALID_ARGUMENT unless `repo` is a valid Hub repo id (see {@link parseHubRepoId}). */
export function checkHubRepo(repo: string): string {
  const problem = repoIdProblem(repo);
  if (problem !== undefined) {
    throw new DcaeError('INVALID_ARGUMENT', `${JSON.stringify(repo)} is not a Hub repo id: ${problem}.`, {
      source: repo,
    });
  }
  return repo;
}

/** Throws INVALID_ARGUMENT unless `revision` is a safe branch, tag or commit name. */
export function checkHubRevision(revision: string, repo = ''): string {
  const problem = revisionProblem(revision);
  if (problem !== undefined) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${repo === '' ? '' : `${repo}: `}${JSON.stringify(revision)} is not a usable revision: ${problem}.`,
      { source: repo === '' ? revision : repo },
    );
  }
  return revision;
}

/**
 * Parses `org/name` or `org/name@revision` (e.g. `mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers@main`,
 * `org/name@refs/pr/3`, `org/name@<40-hex commit>`). Throws INVALID_ARGUMENT naming the rule broken.
 */
export function parseHubRepoId(text: string): HubRepoRef {
  const at = text.indexOf('@');
  const repo = checkHubRepo(at < 0 ? text : text.slice(0, at));
  const revision = at < 0 ? undefined : checkHubRevision(text.slice(at + 1), repo);
  return { repo, revision };
}

/** True when `text` parses with {@link parseHubRepoId}. */
export function isHubRepoId(text: string): boolean {
  const at = text.indexOf('@');
  const repo = at < 0 ? text : text.slice(0, at);
  return repoIdProblem(repo) === undefined && (at < 0 || revisionProblem(text.slice(at + 1)) === undefined);
}

/** `org/name` or `org/name@revision`, the inverse of {@link parseHubRepoId}. */
export function formatHubRepoRef(ref: HubRepoRef): string {
  return ref.revision === undefined ? ref.repo : `${ref.repo}@${ref.revision}`;
}
