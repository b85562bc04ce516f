import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import { checkRepoFilename } from '../filename.js';
import { checkHubRepo, checkHubRevision, DEFAULT_REVISION } from '../repo-id.js';
import type { HubFileMetadata } from '../response.js';
import { etagDigest, parseHubFileMetadata } from '../response.js';
import { hubFileUrl, normalizeHubEndpoint } from '../url.js';
import type { HubRepoCache } from './hub-cache.js';
import {
  blobDigestMatches,
  corruptBlobError,
  findCachedFile,
  hubRepoCache,
  linkSnapshotFile,
  writeCachedRef,
} from './hub-cache.js';
import { hubEnvironment } from './hub-env.js';
import { openHttp, withRetries } from './hub-http.js';
import type { LockOptions } from './hub-lock.js';
import { acquireLock } from './hub-lock.js';
import type { ExpectedContent, TransferOptions } from './hub-transfer.js';
import { transferToFile } from './hub-transfer.js';
import { systemErrorCode } from '@dcae/core/node';

/** Where and how Hub files are fetched and cached; every field defaults from the environment. */
export interface HubOptions extends Omit<TransferOptions, 'token' | 'tokenOrigin'> {
  /** @defaultValue `HF_ENDPOINT`, else https://huggingface.co */
  readonly endpoint?: string;
  /** @defaultValue `HF_HUB_CACHE`, else `$HF_HOME/hub`, else `~/.cache/huggingface/hub` */
  readonly cacheDir?: string;
  /** A Hub token, or `false` for none. @defaultValue `HF_TOKEN`, else the token file of `hf auth login` */
  readonly token?: string | false;
  /** Use only the cache; never touch the network. @defaultValue `HF_HUB_OFFLINE` */
  readonly offline?: boolean;
  /**
   * How a cached file is checked before use: `'size'` against the size the Hub announces (online
   * only), `'hash'` by re-hashing it against its sha256/sha1 name. @defaultValue `'size'` online, `'hash'` offline
   */
  readonly verify?: 'size' | 'hash';
  /** Lock between processes that download the same file. */
  readonly lock?: LockOptions;
  /** The environment to read defaults from. @defaultValue process.env */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

export interface HubDownloadOptions extends HubOptions {
  /** Branch, tag or commit. @defaultValue `'main'` */
  readonly revision?: string;
}

/** One file of a Hub repo, in the cache. */
export interface HubFile {
  readonly repo: string;
  /** The revision asked for. */
  readonly revision: string;
  /** The commit it resolved to. */
  readonly commit: string;
  readonly file: string;
  /** `<cache>/models--org--name/snapshots/<commit>/<file>`; its folder is the snapshot folder. */
  readonly path: string;
  readonly size: number;
  /** True when no bytes were downloaded. */
  readonly cached: boolean;
}

/** {@link HubOptions} with the environment's defaults filled in. */
export interface HubSettings {
  readonly endpoint: string;
  readonly cacheDir: string;
  readonly offline: boolean;
  readonly http: TransferOptions;
  readonly verify: 'size' | 'hash';
  readonly lock: LockOptions | undefined;
}

export function hubSettings(options: HubOptions = {}): HubSettings {
  const env = hubEnvironment(options.env);
  const endpoint = options.endpoint === undefined ? env.endpoint : normalizeHubEndpoint(options.endpoint);
  const offline = options.offline ?? env.offline;
  return {
    endpoint,
    cacheDir: options.cacheDir ?? env.cacheDir,
    offline,
    verify: options.verify ?? (offline ? 'hash' : 'size'),
    lock: options.lock,
    http: {
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? env.timeoutMs,
      retry: options.retry,
      maxRedirects: options.maxRedirects,
      onWarning: options.onWarning,
      onProgress: options.onProgress,
      token: options.token === false ? undefined : (options.token ?? env.token),
      tokenOrigin: new URL(endpoint).origin,
    },
  };
}

/**
 * Returns `file` of the Hub model repo `repo` at `revision` from the cache, downloading it first
 * when needed, in the cache layout of huggingface_hub (so Python and dcae share downloads).
 *
 * Online, one HEAD request resolves the revision to a commit and the file to its etag (sha256
 * for LFS files); a cached blob of that etag is used as is. Otherwise the bytes are streamed into
 * a temp file in `blobs/` under a lock (one download per file across processes), with retries,
 * Range resume and a sha256 (or git sha1) check, then renamed into place and linked from
 * `snapshots/<commit>/`. When the HEAD request cannot reach the server, a cached copy of the
 * revision is used (with a warning). Offline, only the cache is read, and blobs are re-hashed.
 *
 * Errors: INVALID_ARGUMENT / UNSAFE_PATH (before anything else), HTTP_STATUS, NETWORK, INTEGRITY,
 * OFFLINE, CORRUPT_BLOB, LOCK_TIMEOUT, DISK_FULL, OUTPUT_UNWRITABLE (cache not writable), ABORTED
 * (an interrupted download keeps its temp file, which the next call resumes).
 */
export async function hubDownload(
  repo: string,
  file: string,
  options: HubDownloadOptions = {},
): Promise<HubFile> {
  checkHubRepo(repo);
  const revision = checkHubRevision(options.revision ?? DEFAULT_REVISION, repo);
  checkRepoFilename(file, repo);
  const settings = hubSettings(options);
  const cache = hubRepoCache(settings.cacheDir, repo);
  const source = `${repo}/${file}`;
  const found = { repo, revision, file };

  if (settings.offline) {
    const cached = await cachedOrUndefined(cache, found, settings);
    if (cached !== undefined) return cached;
    throw new DcaeError(
      'OFFLINE',
      `${source} (revision ${revision}) is not in the cache ${settings.cacheDir}, and offline mode is on (HF_HUB_OFFLINE). ` +
        'Download it once while online, or unset HF_HUB_OFFLINE.',
      { source, detail: { cacheDir: settings.cacheDir } },
    );
  }

  let meta: HubFileMetadata;
  // A cached copy ends the retries at the first failure to reach the server: a dead server costs
  // one failed request per file, not the whole backoff.
  let fallback: HubFile | undefined;
  const cachedCopy = async (): Promise<HubFile | undefined> =>
    (fallback ??= await cachedOrUndefined(cache, found, { ...settings, verify: 'hash' }));
  try {
    meta = await headHubFile(repo, file, revision, settings, async () => (await cachedCopy()) !== undefined);
  } catch (error) {
    const unreachable =
      DcaeError.is(error, 'NETWORK') || (DcaeError.is(error, 'HTTP_STATUS') && transientStatus(error));
    const cached = unreachable ? await cachedCopy() : undefined;
    if (cached === undefined) throw error;
    settings.http.onWarning?.(
      `${(error as DcaeError).message} Using the cached copy of ${source} (commit ${cached.commit}) without retrying.`,
    );
    return cached;
  }

  const blob = join(cache.blobs, meta.etag);
  const context = { source, repo };
  try {
    let downloaded = false;
    const state = await blobState(blob, meta, settings, source);
    if (state !== 'usable') {
      const lock = await acquireLock(join(cache.locks, `${meta.etag}.dcae.lock`), {
        ...settings.lock,
        signal: settings.http.signal,
        onWarning: settings.http.onWarning,
      });
      try {
        // Another process may have finished the same blob while we waited for the lock.
        if (state === 'damaged' || (await blobState(blob, meta, settings, source)) !== 'usable') {
          const url = hubFileUrl(repo, file, { revision: meta.commit, endpoint: settings.endpoint });
          await downloadBlob(cache, meta, { url, context }, settings);
          downloaded = true;
        }
      } finally {
        await lock.release();
      }
    }
    const path = await linkSnapshotFile(cache, meta.commit, file, meta.etag);
    await writeCachedRef(cache, revision, meta.commit).catch((error: unknown) =>
      settings.http.onWarning?.(
        `${source}: could not record refs/${revision} (${systemErrorCode(error) ?? String(error)}).`,
      ),
    );
    return { ...found, commit: meta.commit, path, size: meta.size, cached: !downloaded };
  } catch (error) {
    throw cacheWriteError(error, settings.cacheDir, source);
  }
}

/** HEAD `resolve/{revision}/{file}`, with retries: the commit, etag and size. */
async function headHubFile(
  repo: string,
  file: string,
  revision: string,
  settings: HubSettings,
  stopRetrying?: () => Promise<boolean>,
): Promise<HubFileMetadata> {
  const url = hubFileUrl(repo, file, { revision, endpoint: settings.endpoint });
  const source = `${repo}/${file}`;
  return withRetries(
    settings.http,
    async () => {
      const answer = await openHttp(
        { method: 'HEAD', url, stopAtHubAnswer: true, context: { source, repo } },
        settings.http,
      );
      await answer.close();
      return parseHubFileMetadata(answer.response.headers, `${source} (revision ${revision})`);
    },
    stopRetrying,
  );
}

function transientStatus(error: DcaeError): boolean {
  const status = error.detail?.status;
  return typeof status === 'number' && (status === 429 || status >= 500);
}

/** The cached file at `revision`, checked as `settings.verify` says; undefined when not cached. */
async function cachedOrUndefined(
  cache: HubRepoCache,
  found: { repo: string; revision: string; file: string },
  settings: Pick<HubSettings, 'verify'>,
): Promise<HubFile | undefined> {
  const cached = await findCachedFile(cache, found.revision, found.file);
  if (cached === undefined) return undefined;
  if (settings.verify === 'hash' && cached.blob !== undefined) {
    if ((await blobDigestMatches(cached.blob.path, cached.blob.etag)) === false) {
      throw corruptBlobError(`${found.repo}/${found.file}`, cached.blob.path);
    }
  }
  return { ...found, commit: cached.commit, path: cached.path, size: cached.size, cached: true };
}

/**
 * Whether `blobs/<etag>` exists with the announced size (and, with verify 'hash', the right
 * digest). A damaged blob is reported in a warning; it is replaced by the download.
 */
async function blobState(
  blob: string,
  meta: HubFileMetadata,
  settings: HubSettings,
  source: string,
): Promise<'usable' | 'missing' | 'damaged'> {
  const info = await stat(blob).catch(() => undefined);
  if (info === undefined) return 'missing';
  const problem =
    info.size !== meta.size
      ? `has ${info.size} bytes, expected ${meta.size}`
      : settings.verify === 'hash' && (await blobDigestMatches(blob, meta.etag)) === false
        ? 'does not match its sha'
        : undefined;
  if (problem === undefined) return 'usable';
  settings.http.onWarning?.(`${source}: the cached blob ${blob} ${problem}; downloading it again.`);
  return 'damaged';
}

/** A temp file name in `blobs/` that is ours alone: `<etag>.<random>.incomplete`. */
const tempName = (etag: string): string => `${etag}.${randomBytes(6).toString('hex')}.incomplete`;
const isOurTemp = (etag: string, name: string): boolean =>
  name.startsWith(`${etag}.`) && /^[0-9a-f]{12}\.incomplete$/.test(name.slice(etag.length + 1));

/**
 * Downloads the blob into a temp file and renames it to `blobs/<etag>`. Called under the lock, so
 * a temp file left by an interrupted run is ours to resume: it is claimed by renaming it; other
 * leftovers are removed. A resumed file that fails the hash check is downloaded again from 0 once.
 */
async function downloadBlob(
  cache: HubRepoCache,
  meta: HubFileMetadata,
  request: { url: string; context: { source: string; repo: string } },
  settings: HubSettings,
): Promise<void> {
  await mkdir(cache.blobs, { recursive: true });
  await warnIfLowOnSpace(cache.blobs, meta.size, settings, request.context.source);
  const temp = join(cache.blobs, tempName(meta.etag));
  const leftovers = (await readdir(cache.blobs)).filter((name) => isOurTemp(meta.etag, name));
  let claimed = false;
  for (const name of leftovers) {
    if (
      !claimed &&
      (await rename(join(cache.blobs, name), temp).then(
        () => true,
        () => false,
      ))
    )
      claimed = true;
    else await rm(join(cache.blobs, name), { force: true });
  }
  if (claimed) settings.http.onWarning?.(`${request.context.source}: resuming an interrupted download.`);

  const expected: ExpectedContent = { size: meta.size, digest: etagDigest(meta.etag, meta.lfs) };
  try {
    try {
      await transferToFile(request, temp, expected, settings.http);
    } catch (error) {
      if (!(DcaeError.is(error, 'INTEGRITY') && error.detail?.resumed === true)) throw error;
      settings.http.onWarning?.(
        `${request.context.source}: the resumed download did not verify; starting over.`,
      );
      await rm(temp, { force: true });
      await transferToFile(request, temp, expected, settings.http);
    }
    await rename(temp, join(cache.blobs, meta.etag));
    await syncDirectory(cache.blobs);
  } catch (error) {
    if (!DcaeError.is(error, 'ABORTED')) await rm(temp, { force: true }).catch(() => undefined);
    throw error;
  }
}

/** Flushes a directory entry (the rename) to disk; not possible on every platform, so failures are ignored. */
async function syncDirectory(path: string): Promise<void> {
  const handle = await open(path, 'r').catch(() => undefined);
  await handle?.sync().catch(() => undefined);
  await handle?.close();
}

async function warnIfLowOnSpace(
  dir: string,
  size: number,
  settings: HubSettings,
  source: string,
): Promise<void> {
  const info = await statfs(dir).catch(() => undefined);
  if (info !== undefined && info.bavail * info.bsize < size) {
    settings.http.onWarning?.(
      `${source}: ${size} bytes to download but only ${info.bavail * info.bsize} free in ${dir}.`,
    );
  }
}

/**
 * File-system failures while writing the cache: DISK_FULL, or OUTPUT_UNWRITABLE naming the cache
 * and how to move it. DcaeErrors and non-system errors pass through.
 */
export function cacheWriteError(error: unknown, cacheDir: string, source: string): unknown {
  const code = systemErrorCode(error);
  if (code === undefined) return error;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new DcaeError(
      'DISK_FULL',
      `${source}: the disk of the cache ${cacheDir} is full (${code}); the partial download was removed. ` +
        'Free some space, or set HF_HUB_CACHE to a folder on a larger disk.',
      { source, cause: error },
    );
  }
  return new DcaeError(
    'OUTPUT_UNWRITABLE',
    `${source}: cannot write to the cache ${cacheDir} (${code}). ` +
      'Set HF_HUB_CACHE (or { cacheDir }) to a writable folder, or fix its permissions.',
    { source, cause: error },
  );
}
