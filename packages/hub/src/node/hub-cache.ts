import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import {
  copyFile,
  lstat,
  mkdir,
  readdir,
  readFile,
  readlink,
  rename,
  rm,
  stat,
  symlink,
} from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { DcaeError } from '@dcae/core';
import { isCommitHash } from '../repo-id.js';
import type { HubDigest } from '../response.js';
import { etagDigest } from '../response.js';
import { writeFileAtomic } from '@dcae/core/node';
import { systemErrorCode } from '@dcae/core/node';

/**
 * Paths of one model repo in a huggingface_hub cache:
 * `models--{org}--{name}/{blobs/<etag>, snapshots/<commit>/<file> → ../../blobs/<etag>, refs/<revision>}`
 * and `.locks/models--{org}--{name}/<etag>.lock`.
 */
export interface HubRepoCache {
  readonly root: string;
  readonly blobs: string;
  readonly snapshots: string;
  readonly refs: string;
  readonly locks: string;
}

/** `org/name` → `models--org--name` (huggingface_hub's `repo_folder_name`). */
export function hubRepoFolderName(repo: string): string {
  return `models--${repo.split('/').join('--')}`;
}

/** The cache paths of `repo` (already validated) under `cacheDir`. */
export function hubRepoCache(cacheDir: string, repo: string): HubRepoCache {
  const folder = hubRepoFolderName(repo);
  const root = join(cacheDir, folder);
  return {
    root,
    blobs: join(root, 'blobs'),
    snapshots: join(root, 'snapshots'),
    refs: join(root, 'refs'),
    locks: join(cacheDir, '.locks', folder),
  };
}

/** The commit `refs/<revision>` names (a commit id names itself), or undefined when not cached. */
export async function readCachedRef(cache: HubRepoCache, revision: string): Promise<string | undefined> {
  if (isCommitHash(revision)) return revision;
  try {
    const commit = (await readFile(join(cache.refs, revision), 'utf8')).trim();
    return isCommitHash(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** Points `refs/<revision>` at `commit` (atomically; skipped when it already does or for a commit id). */
export async function writeCachedRef(cache: HubRepoCache, revision: string, commit: string): Promise<void> {
  if (isCommitHash(revision) || (await readCachedRef(cache, revision)) === commit) return;
  const path = join(cache.refs, revision);
  await mkdir(dirname(path), { recursive: true });
  await writeFileAtomic(path, new TextEncoder().encode(commit), { overwrite: true });
}

/**
 * Makes `snapshots/<commit>/<file>` a relative symlink to `blobs/<etag>` (replacing whatever is
 * there, atomically: a link under a temp name is renamed over it). Where symlinks are not allowed
 * the blob is copied instead, as huggingface_hub does.
 */
export async function linkSnapshotFile(
  cache: HubRepoCache,
  commit: string,
  file: string,
  etag: string,
): Promise<string> {
  const pointer = join(cache.snapshots, commit, file);
  const blob = join(cache.blobs, etag);
  await mkdir(dirname(pointer), { recursive: true });
  const target = relative(dirname(pointer), blob);
  if ((await readlink(pointer).catch(() => undefined)) === target) return pointer;
  const temp = `${pointer}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    try {
      await symlink(target, temp);
    } catch (error) {
      if (!['EPERM', 'EACCES', 'ENOTSUP', 'EINVAL'].includes(systemErrorCode(error) ?? '')) throw error;
      await copyFile(blob, temp);
    }
    await rename(temp, pointer);
  } catch (error) {
    await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
  return pointer;
}

/** A file found in the cache without asking the network. */
export interface CachedHubFile {
  readonly commit: string;
  /** `snapshots/<commit>/<file>` (a link, or a plain file where links are not used). */
  readonly path: string;
  /** The blob the link points to, and its etag; undefined for a plain file. */
  readonly blob: { readonly path: string; readonly etag: string } | undefined;
  readonly size: number;
}

/**
 * Looks `file` up in the cache at `revision` (via `refs/`, or a commit id directly). Returns
 * undefined when the revision or the file is not cached or the link dangles.
 */
export async function findCachedFile(
  cache: HubRepoCache,
  revision: string,
  file: string,
): Promise<CachedHubFile | undefined> {
  const commit = await readCachedRef(cache, revision);
  if (commit === undefined) return undefined;
  const path = join(cache.snapshots, commit, file);
  const link = await lstat(path).catch(() => undefined);
  if (link === undefined) return undefined;
  const info = await stat(path).catch(() => undefined);
  if (info === undefined || !info.isFile()) return undefined;
  if (!link.isSymbolicLink()) return { commit, path, blob: undefined, size: info.size };
  const blobPath = resolve(dirname(path), await readlink(path));
  const inBlobs = relative(cache.blobs, blobPath);
  const etag = inBlobs === '' || inBlobs.includes(sep) || inBlobs.startsWith('..') ? undefined : inBlobs;
  return { commit, path, blob: etag === undefined ? undefined : { path: blobPath, etag }, size: info.size };
}

/** Hashes a cached blob as its name says it should hash (sha256 or git blob sha1); undefined when its name is no digest. */
export async function blobDigestMatches(path: string, etag: string): Promise<boolean | undefined> {
  const digest: HubDigest = etagDigest(etag, false);
  if (digest === undefined) return undefined;
  const hash = createHash(digest.algorithm === 'sha256' ? 'sha256' : 'sha1');
  if (digest.algorithm === 'git-sha1') hash.update(`blob ${(await stat(path)).size}\0`);
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex') === digest.hex;
}

/** One blob that failed {@link verifyHubCache}. */
export interface CorruptBlob {
  readonly repo: string;
  readonly path: string;
  readonly etag: string;
}

export interface VerifyHubCacheResult {
  /** Blobs hashed. */
  readonly checked: number;
  /** Blobs whose name is no digest (nothing to check against). */
  readonly skipped: number;
  readonly corrupt: readonly CorruptBlob[];
  /** Temp files of interrupted downloads (`*.incomplete`) found. */
  readonly incomplete: readonly string[];
}

/**
 * Re-hashes every blob of the model repos in `cacheDir` (or of `repos` only) and reports those whose
 * bytes no longer match their name (docs/reliability.md §9 DL9). Nothing is changed.
 */
export async function verifyHubCache(
  cacheDir: string,
  options: { repos?: readonly string[] } = {},
): Promise<VerifyHubCacheResult> {
  const folders =
    options.repos?.map(hubRepoFolderName) ??
    (await readdir(cacheDir).catch(() => [] as string[])).filter((name) => name.startsWith('models--'));
  let checked = 0;
  let skipped = 0;
  const corrupt: CorruptBlob[] = [];
  const incomplete: string[] = [];
  for (const folder of folders) {
    const blobs = join(cacheDir, folder, 'blobs');
    const repo = folder.slice('models--'.length).split('--').join('/');
    for (const name of await readdir(blobs).catch(() => [] as string[])) {
      const path = join(blobs, name);
      if (name.endsWith('.incomplete')) {
        incomplete.push(path);
        continue;
      }
      const matches = await blobDigestMatches(path, name);
      if (matches === undefined) skipped++;
      else {
        checked++;
        if (!matches) corrupt.push({ repo, path, etag: name });
      }
    }
  }
  return { checked, skipped, corrupt, incomplete };
}

/** The error for a cached blob that no longer hashes to its name. */
export function corruptBlobError(source: string, blobPath: string): DcaeError {
  return new DcaeError(
    'CORRUPT_BLOB',
    `${source}: the cached file ${blobPath} is damaged (its bytes no longer match its sha). ` +
      'Delete it and download again (online), or restore the cache.',
    { source, detail: { blob: blobPath } },
  );
}
