import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import { checkRepoFilename } from '../filename.js';
import { etagDigest, normalizeEtag } from '../response.js';
import { displayUrl } from '../url.js';
import { cacheWriteError, hubSettings } from './hub-download.js';
import type { HubOptions } from './hub-download.js';
import { openHttp, withRetries } from './hub-http.js';
import { acquireLock } from './hub-lock.js';
import { transferToFile } from './hub-transfer.js';
import { writeFileAtomic } from '@dcae/core/node';

export interface UrlCacheOptions extends Omit<HubOptions, 'endpoint' | 'token' | 'cacheDir'> {
  /** @defaultValue `$DCAE_CACHE/urls`, else `$XDG_CACHE_HOME/dcae/urls`, else `~/.cache/dcae/urls` */
  readonly urlCacheDir?: string;
}

/** One file of a model folder given by URL, in the URL cache. */
export interface UrlFile {
  readonly url: string;
  /** The local copy; its folder holds the other files of the same URL folder. */
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
  /** True when no bytes were downloaded. */
  readonly cached: boolean;
}

/** What the cache remembers of a downloaded URL, in `<folder>/.dcae/<file>.json`. */
interface UrlRecord {
  readonly url: string;
  /** The server's `ETag`, else `Last-Modified`: a changed value means a changed file. */
  readonly validator: string | undefined;
  readonly size: number;
  readonly sha256: string;
}

/** The cache folder for the files under `folderUrl` (one per URL folder). */
export function urlCacheFolder(
  folderUrl: string,
  options: Pick<UrlCacheOptions, 'urlCacheDir' | 'env'> = {},
): string {
  const env = options.env ?? process.env;
  const root =
    options.urlCacheDir ??
    (env.DCAE_CACHE
      ? join(env.DCAE_CACHE, 'urls')
      : join(env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'dcae', 'urls'));
  const url = new URL(folderUrl);
  const host = url.host.replace(/[^A-Za-z0-9.-]/g, '_');
  return join(root, `${host}--${createHash('sha256').update(url.href).digest('hex').slice(0, 32)}`);
}

/**
 * Returns the local copy of `{folderUrl}{file}` (a plain http(s) server, no Hub API), downloading
 * it when it is missing or the server's `ETag`/`Last-Modified` or size changed. Downloads use the
 * same temp-file, lock, retry, resume and size checks as {@link hubDownload}; the sha256 is recorded
 * so that offline use can re-check the bytes. No token is ever sent.
 */
export async function downloadUrlFile(
  folderUrl: string,
  file: string,
  options: UrlCacheOptions = {},
): Promise<UrlFile> {
  checkRepoFilename(file, displayUrl(folderUrl));
  if (file.includes('/')) {
    throw new DcaeError(
      'UNSAFE_PATH',
      `${displayUrl(folderUrl)}: ${JSON.stringify(file)} is in a subfolder; URL model folders are flat.`,
      {
        source: displayUrl(folderUrl),
      },
    );
  }
  const url = new URL(encodeURIComponent(file), folderUrl).href;
  const source = displayUrl(url);
  const settings = hubSettings({ ...options, token: false });
  const folder = urlCacheFolder(folderUrl, options);
  const path = join(folder, file);
  const meta = join(folder, '.dcae');
  const recordPath = join(meta, `${file}.json`);
  /** The cached copy; with `verify`, a damaged one throws offline and is a miss online. */
  const cached = async (verify: boolean): Promise<UrlFile | undefined> => {
    const record = await readRecord(recordPath, url);
    const info = await stat(path).catch(() => undefined);
    if (record === undefined || info?.size !== record.size) return undefined;
    if (verify && (await sha256File(path)) !== record.sha256) {
      if (!settings.offline) {
        settings.http.onWarning?.(`${source}: the cached copy ${path} is damaged; downloading it again.`);
        return undefined;
      }
      throw new DcaeError(
        'CORRUPT_BLOB',
        `${source}: the cached copy ${path} is damaged (its sha256 changed); delete it and download again.`,
        { source },
      );
    }
    return { url, path, size: record.size, sha256: record.sha256, cached: true };
  };

  if (settings.offline) {
    const hit = await cached(settings.verify === 'hash');
    if (hit !== undefined) return hit;
    throw new DcaeError(
      'OFFLINE',
      `${source} is not in the cache ${folder}, and offline mode is on (HF_HUB_OFFLINE). Download it once while online.`,
      { source },
    );
  }

  let head: { validator: string | undefined; size: number | undefined; sha256: string | undefined };
  // As for the Hub: a cached copy ends the retries at the first failure to reach the server.
  let fallback: UrlFile | undefined;
  const cachedCopy = async (): Promise<UrlFile | undefined> => (fallback ??= await cached(true));
  try {
    head = await withRetries(
      settings.http,
      async () => {
        const answer = await openHttp({ method: 'HEAD', url, context: { source } }, settings.http);
        await answer.close();
        const headers = answer.response.headers;
        const length = headers.get('content-length');
        // Only a Hub-style X-Linked-Etag is a content hash; a plain ETag is an opaque version tag.
        const linked = headers.get('x-linked-etag');
        return {
          validator: headers.get('etag') ?? headers.get('last-modified') ?? undefined,
          size: length !== null && /^\d{1,16}$/.test(length) ? Number(length) : undefined,
          sha256: linked === null ? undefined : etagDigest(normalizeEtag(linked), true)?.hex,
        };
      },
      async () => (await cachedCopy()) !== undefined,
    );
  } catch (error) {
    const status = DcaeError.is(error, 'HTTP_STATUS') ? error.detail?.status : undefined;
    const unreachable =
      DcaeError.is(error, 'NETWORK') || (typeof status === 'number' && (status === 429 || status >= 500));
    const hit = unreachable ? await cachedCopy() : undefined;
    if (hit === undefined) throw error;
    settings.http.onWarning?.(
      `${error instanceof Error ? error.message : String(error)} Using the cached copy ${path} without retrying.`,
    );
    return hit;
  }

  const fresh = async (): Promise<UrlFile | undefined> => {
    const record = await readRecord(recordPath, url);
    const unchanged =
      record !== undefined &&
      head.validator !== undefined &&
      record.validator === head.validator &&
      (head.size === undefined || record.size === head.size);
    return unchanged ? cached(settings.verify === 'hash') : undefined;
  };

  try {
    const hit = await fresh();
    if (hit !== undefined) return hit;
    await mkdir(meta, { recursive: true });
    const lock = await acquireLock(join(meta, `${file}.lock`), {
      ...settings.lock,
      signal: settings.http.signal,
      onWarning: settings.http.onWarning,
    });
    try {
      const again = await fresh();
      if (again !== undefined) return again;
      // Leftovers of interrupted runs may belong to an older version of the file: removed, not resumed.
      for (const name of await readdir(meta)) {
        if (name.startsWith(`${file}.`) && name.endsWith('.incomplete'))
          await rm(join(meta, name), { force: true });
      }
      const temp = join(meta, `${file}.${randomBytes(6).toString('hex')}.incomplete`);
      try {
        const digest =
          head.sha256 === undefined ? undefined : ({ algorithm: 'sha256', hex: head.sha256 } as const);
        const result = await transferToFile(
          { url, context: { source } },
          temp,
          { size: head.size, digest },
          settings.http,
        );
        await rm(recordPath, { force: true });
        await rename(temp, path);
        const record: UrlRecord = {
          url,
          validator: head.validator,
          size: result.size,
          sha256: result.sha256,
        };
        await writeFileAtomic(recordPath, new TextEncoder().encode(JSON.stringify(record)), {
          overwrite: true,
        });
        return { url, path, size: result.size, sha256: result.sha256, cached: false };
      } catch (error) {
        if (!DcaeError.is(error, 'ABORTED')) await rm(temp, { force: true }).catch(() => undefined);
        throw error;
      }
    } finally {
      await lock.release();
    }
  } catch (error) {
    throw cacheWriteError(error, folder, source);
  }
}

async function readRecord(path: string, url: string): Promise<UrlRecord | undefined> {
  try {
    const value = JSON.parse(await readFile(path, 'utf8')) as Partial<UrlRecord>;
    const valid =
      value.url === url &&
      Number.isSafeInteger(value.size) &&
      typeof value.sha256 === 'string' &&
      (value.validator === undefined || typeof value.validator === 'string');
    return valid ? (value as UrlRecord) : undefined;
  } catch {
    return undefined;
  }
}

async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}
