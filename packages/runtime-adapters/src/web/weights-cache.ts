/**
 * A browser cache for weight files (Cache Storage API), keyed by URL and validated by the
 * server's ETag: a file is downloaded once and served from the cache while the server still
 * reports the same ETag. Entries come back as Blobs, which Chromium keeps on disk: read them
 * tensor by tensor with `blobSource()` from @dcae/core and hand `URL.createObjectURL(blob)` to the
 * runtime as external data, so no multi-gigabyte ArrayBuffer is needed.
 */
import { DcaeError } from '@dcae/core';

export interface WeightsCacheOptions {
  /** The Cache Storage name. @defaultValue `'dcae-weights-v1'` */
  readonly cacheName?: string;
  /** @defaultValue globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Extra request headers, e.g. `Authorization`; never stored and never in errors. */
  readonly headers?: Readonly<Record<string, string>>;
}

export interface GetWeightsOptions {
  readonly signal?: AbortSignal;
  /** Called as bytes arrive; `total` is undefined when the server sends no Content-Length. */
  readonly onProgress?: (loaded: number, total: number | undefined) => void;
}

export interface CachedWeights {
  readonly blob: Blob;
  /** `'cache'`: the stored copy, validated against the server (or offline, see `note`). */
  readonly source: 'cache' | 'network';
  /** The validator the entry is stored under: the ETag, else Last-Modified and size. */
  readonly version: string | undefined;
  /** Whether the bytes are in the cache now. */
  readonly stored: boolean;
  /** Why the copy is not stored or not validated, when that happened. */
  readonly note?: string;
}

export interface WeightsCacheEntry {
  readonly url: string;
  readonly version: string;
  readonly size: number;
  readonly storedAt: string;
}

export interface WeightsCache {
  /** The file at `url`: the cached copy while the server's validator matches, else downloaded and stored. */
  get(url: string, options?: GetWeightsOptions): Promise<CachedWeights>;
  list(): Promise<WeightsCacheEntry[]>;
  /** Removes one URL's entry; true when there was one. */
  delete(url: string): Promise<boolean>;
  /** Removes every entry (the whole Cache Storage bucket). */
  clear(): Promise<void>;
}

const VERSION_HEADER = 'x-dcae-version';
const STORED_AT_HEADER = 'x-dcae-stored-at';
/** Largest file whose SHA-256 is checked (it is hashed in one buffer). */
const MAX_HASHED_BYTES = 1 << 30;

/** Whether this environment has the Cache API (browsers, in secure contexts: https or localhost). */
export function weightsCacheAvailable(): boolean {
  return typeof caches !== 'undefined';
}

export function createWeightsCache(options: WeightsCacheOptions = {}): WeightsCache {
  const { cacheName = 'dcae-weights-v1', headers = {} } = options;
  const fetchFn = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  const open = (): Promise<Cache> => {
    if (!weightsCacheAvailable()) {
      throw new DcaeError(
        'UNSUPPORTED',
        'The Cache API is unavailable here: it exists only in browsers, in secure contexts (https or localhost).',
      );
    }
    return caches.open(cacheName);
  };

  async function get(url: string, { signal, onProgress }: GetWeightsOptions = {}): Promise<CachedWeights> {
    const name = displayUrl(url);
    const cache = await open();
    const cached = await cache.match(url);
    let head: Response;
    try {
      head = await fetchFn(url, { method: 'HEAD', headers, signal });
    } catch (cause) {
      if (signal?.aborted) throw aborted(name, signal);
      if (cached !== undefined) {
        return {
          blob: await cached.blob(),
          source: 'cache',
          version: cached.headers.get(VERSION_HEADER) ?? undefined,
          stored: true,
          note: `The server could not be reached (${messageOf(cause)}), so the cached copy was not revalidated.`,
        };
      }
      throw new DcaeError(
        'NETWORK',
        `${name}: the request failed (${messageOf(cause)}) and no cached copy exists.`,
        {
          source: name,
          cause,
        },
      );
    }
    checkStatus(head, name);
    const version = versionOf(head);
    if (cached !== undefined && version !== undefined && cached.headers.get(VERSION_HEADER) === version) {
      return { blob: await cached.blob(), source: 'cache', version, stored: true };
    }

    const blob = await download(url, name, signal, onProgress);
    await checkIntegrity(blob, head, name);
    if (version === undefined) {
      if (cached !== undefined) await cache.delete(url);
      return {
        blob,
        source: 'network',
        version,
        stored: false,
        note: 'The server sends neither ETag nor Last-Modified, so the copy cannot be revalidated and is not cached.',
      };
    }
    const note = await store(cache, url, blob, version);
    return { blob, source: 'network', version, stored: note === undefined, ...(note ? { note } : {}) };
  }

  async function download(
    url: string,
    name: string,
    signal: AbortSignal | undefined,
    onProgress: GetWeightsOptions['onProgress'],
  ): Promise<Blob> {
    let response: Response;
    try {
      response = await fetchFn(url, { headers, signal });
    } catch (cause) {
      if (signal?.aborted) throw aborted(name, signal);
      throw new DcaeError('NETWORK', `${name}: the download failed (${messageOf(cause)}).`, {
        source: name,
        cause,
      });
    }
    checkStatus(response, name);
    const total = contentLength(response);
    const chunks: Uint8Array[] = [];
    let loaded = 0;
    try {
      const reader = response.body!.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        chunks.push(value);
        loaded += value.byteLength;
        onProgress?.(loaded, total);
      }
    } catch (cause) {
      if (signal?.aborted) throw aborted(name, signal);
      throw new DcaeError(
        'NETWORK',
        `${name}: the connection failed after ${loaded} bytes (${messageOf(cause)}).`,
        {
          source: name,
          cause,
        },
      );
    }
    if (total !== undefined && loaded !== total) {
      throw new DcaeError(
        'INTEGRITY',
        `${name}: received ${loaded} bytes but the server announced ${total}; the download is incomplete. Try again.`,
        { source: name, detail: { expected: total, actual: loaded } },
      );
    }
    return new Blob(chunks as BlobPart[]);
  }

  async function store(cache: Cache, url: string, blob: Blob, version: string): Promise<string | undefined> {
    const estimate = await globalThis.navigator?.storage?.estimate?.().catch(() => undefined);
    if (
      estimate?.quota !== undefined &&
      estimate.usage !== undefined &&
      estimate.quota - estimate.usage < blob.size
    ) {
      return `Not cached: ${blob.size} bytes do not fit in the ${estimate.quota - estimate.usage} bytes of storage left to this site.`;
    }
    try {
      await cache.put(
        url,
        new Response(blob, {
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(blob.size),
            [VERSION_HEADER]: version,
            [STORED_AT_HEADER]: new Date().toISOString(),
          },
        }),
      );
      return undefined;
    } catch (cause) {
      if ((cause as { name?: string }).name === 'QuotaExceededError') {
        return `Not cached: the browser's storage quota is exhausted (${messageOf(cause)}).`;
      }
      throw new DcaeError(
        'FILE_READ',
        `${displayUrl(url)}: storing the download in the cache failed: ${messageOf(cause)}.`,
        {
          cause,
        },
      );
    }
  }

  return {
    get,
    async list() {
      const cache = await open();
      const entries: WeightsCacheEntry[] = [];
      for (const request of await cache.keys()) {
        const response = await cache.match(request);
        if (response === undefined) continue;
        entries.push({
          url: request.url,
          version: response.headers.get(VERSION_HEADER) ?? '',
          size: Number(response.headers.get('content-length') ?? 0),
          storedAt: response.headers.get(STORED_AT_HEADER) ?? '',
        });
      }
      return entries;
    },
    async delete(url) {
      return (await open()).delete(url);
    },
    async clear() {
      if (weightsCacheAvailable()) await caches.delete(cacheName);
    },
  };
}

/**
 * The validator a copy is stored under: the Hub's `X-Linked-Etag` (the LFS file's SHA-256), else
 * the ETag, else Last-Modified with the size. Cross-origin servers must expose these headers.
 */
function versionOf(response: Response): string | undefined {
  const etag = response.headers.get('x-linked-etag') ?? response.headers.get('etag');
  if (etag !== null && etag !== '') return etag;
  const modified = response.headers.get('last-modified');
  return modified === null
    ? undefined
    : `${modified}; ${response.headers.get('content-length') ?? '?'} bytes`;
}

/** A strong ETag of 64 hex digits is the file's SHA-256 (Hugging Face LFS files); check it. */
async function checkIntegrity(blob: Blob, head: Response, name: string): Promise<void> {
  const etag = head.headers.get('x-linked-etag') ?? head.headers.get('etag') ?? '';
  const sha = /^"?([0-9a-f]{64})"?$/i.exec(etag)?.[1]?.toLowerCase();
  if (sha === undefined || blob.size > MAX_HASHED_BYTES) return;
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', await blob.arrayBuffer()));
  const actual = [...digest].map((b) => b.toString(16).padStart(2, '0')).join('');
  if (actual !== sha) {
    throw new DcaeError(
      'INTEGRITY',
      `${name}: the downloaded bytes have SHA-256 ${actual} but the server's ETag says ${sha}; the copy is corrupt and was not cached. Try again.`,
      { source: name, detail: { expected: sha, actual } },
    );
  }
}

function checkStatus(response: Response, name: string): void {
  if (response.ok) return;
  throw new DcaeError(
    response.status === 404 || response.status === 410 ? 'FILE_NOT_FOUND' : 'HTTP_STATUS',
    `${name}: HTTP ${response.status} ${response.statusText}.` +
      (response.status === 401 || response.status === 403
        ? ' The file may need an access token (options.headers).'
        : ''),
    { source: name, detail: { status: response.status } },
  );
}

function contentLength(response: Response): number | undefined {
  // A compressed transfer reports the compressed length; the body then arrives decoded.
  if (response.headers.get('content-encoding') !== null) return undefined;
  const length = Number(response.headers.get('content-length') ?? Number.NaN);
  return Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

function aborted(name: string, signal: AbortSignal): DcaeError {
  return new DcaeError('ABORTED', `${name}: the download was aborted.`, {
    source: name,
    cause: signal.reason,
  });
}

/** The URL without credentials, query string or fragment, which may hold tokens. */
function displayUrl(url: string): string {
  try {
    const parsed = new URL(url, globalThis.location?.href);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return url.replace(/[?#].*$/, '');
  }
}

function messageOf(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).trim();
}
