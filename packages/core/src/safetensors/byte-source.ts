import { DcaeError } from '../errors.js';

/**
 * Random access to the bytes of a file, a Blob or a URL, so that large weight files are read one
 * tensor at a time instead of whole.
 */
export interface ByteSource {
  /** File path, file name or URL (without query string) named in errors. */
  readonly name: string;
  readonly size: number;
  /** `length` bytes starting at `offset`, in a buffer the caller owns. The range must lie inside the source. */
  read(offset: number, length: number): Promise<Uint8Array>;
  close?(): Promise<void>;
}

/** Throws unless `[offset, offset + length)` lies inside a source of `size` bytes. */
export function checkReadRange(
  source: { readonly name: string; readonly size: number },
  offset: number,
  length: number,
): void {
  const valid = Number.isSafeInteger(offset) && Number.isSafeInteger(length) && offset >= 0 && length >= 0;
  if (!valid || offset + length > source.size) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${source.name}: cannot read ${length} bytes at offset ${offset} from a source of ${source.size} bytes.`,
      {
        source: source.name,
      },
    );
  }
}

/** A source over bytes already in memory; reads return copies. */
export function bytesSource(bytes: Uint8Array, name = 'bytes'): ByteSource {
  const source = {
    name,
    size: bytes.byteLength,
    read: async (offset: number, length: number) => {
      checkReadRange(source, offset, length);
      return bytes.slice(offset, offset + length);
    },
  };
  return source;
}

/** A source over a Blob, e.g. a browser `File`; its name is used when it has one. */
export function blobSource(blob: Blob, name = blobName(blob)): ByteSource {
  const source = {
    name,
    size: blob.size,
    read: async (offset: number, length: number) => {
      checkReadRange(source, offset, length);
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
      } catch (cause) {
        throw new DcaeError(
          'FILE_READ',
          `${name}: reading ${length} bytes at offset ${offset} failed; was the file changed or removed?`,
          { source: name, cause },
        );
      }
      if (bytes.byteLength !== length) {
        throw new DcaeError(
          'FILE_READ',
          `${name}: read ${bytes.byteLength} of ${length} bytes at offset ${offset}; the file changed while being read.`,
          { source: name },
        );
      }
      return bytes;
    },
  };
  return source;
}

function blobName(blob: Blob): string {
  return 'name' in blob && typeof blob.name === 'string' && blob.name !== '' ? blob.name : 'blob';
}

export interface HttpRangeSourceOptions {
  /** The fetch to use (e.g. one that adds auth or retries). @defaultValue globalThis.fetch */
  fetch?: typeof fetch;
  /** Extra request headers, e.g. `Authorization`. They never appear in errors. */
  headers?: Record<string, string>;
}

/**
 * A source over a URL read with HTTP range requests (`Range: bytes=a-b`). A first one-byte request
 * learns the size from `Content-Range` and checks that the server honours ranges; a server that
 * answers with the whole file (200) or with the wrong bytes is an error, never silently accepted.
 * In browsers a cross-origin server must expose `Content-Range` (CORS `Access-Control-Expose-Headers`).
 */
export async function httpRangeSource(
  url: string | URL,
  options: HttpRangeSourceOptions = {},
): Promise<ByteSource> {
  const fetchRange = options.fetch ?? globalThis.fetch;
  const name = displayUrl(url);

  const request = async (first: number, last: number): Promise<Response> => {
    let response: Response;
    try {
      response = await fetchRange(url, { headers: { ...options.headers, Range: `bytes=${first}-${last}` } });
    } catch (cause) {
      throw new DcaeError(
        'FILE_READ',
        `${name}: request for bytes ${first}-${last} failed: ${describeCause(cause)}.`,
        { source: name, cause },
      );
    }
    if (response.status === 206) return response;
    await response.body?.cancel();
    if (response.status === 200) {
      throw new DcaeError(
        'FILE_READ',
        `${name}: the server ignored the range request and sent the whole file (HTTP 200); use a server that supports HTTP range requests, or download the file first.`,
        {
          source: name,
        },
      );
    }
    const code = response.status === 404 || response.status === 410 ? 'FILE_NOT_FOUND' : 'FILE_READ';
    throw new DcaeError(
      code,
      `${name}: HTTP ${response.status} ${response.statusText} for bytes ${first}-${last}.`,
      {
        source: name,
        detail: { status: response.status },
      },
    );
  };

  const probe = await request(0, 0);
  const probeRange = parseContentRange(probe.headers.get('content-range'));
  await probe.body?.cancel();
  if (probeRange === undefined || probeRange.first !== 0 || probeRange.last !== 0) {
    throw new DcaeError(
      'FILE_READ',
      `${name}: the server's answer to a range request has no usable Content-Range header (got ${JSON.stringify(probe.headers.get('content-range'))}); ` +
        'a cross-origin server must list Content-Range in Access-Control-Expose-Headers.',
      { source: name },
    );
  }

  const source: ByteSource = {
    name,
    size: probeRange.size,
    read: async (offset, length) => {
      checkReadRange(source, offset, length);
      if (length === 0) return new Uint8Array(0);
      const last = offset + length - 1;
      const response = await request(offset, last);
      const range = parseContentRange(response.headers.get('content-range'));
      if (range === undefined || range.first !== offset || range.last !== last) {
        await response.body?.cancel();
        throw new DcaeError(
          'FILE_READ',
          `${name}: asked for bytes ${offset}-${last} but the server sent Content-Range ${JSON.stringify(response.headers.get('content-range'))}.`,
          { source: name },
        );
      }
      let bytes: Uint8Array;
      try {
        bytes = new Uint8Array(await response.arrayBuffer());
      } catch (cause) {
        throw new DcaeError(
          'FILE_READ',
          `${name}: the connection failed while reading bytes ${offset}-${last}.`,
          {
            source: name,
            cause,
          },
        );
      }
      if (bytes.byteLength !== length) {
        throw new DcaeError(
          'FILE_READ',
          `${name}: asked for ${length} bytes at offset ${offset} but received ${bytes.byteLength}.`,
          { source: name },
        );
      }
      return bytes;
    },
  };
  return source;
}

/** `bytes first-last/size` of a 206 answer. */
function parseContentRange(header: string | null): { first: number; last: number; size: number } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(header?.trim() ?? '');
  if (match === null) return undefined;
  const [first, last, size] = match.slice(1).map(Number) as [number, number, number];
  return [first, last, size].every(Number.isSafeInteger) ? { first, last, size } : undefined;
}

/** The URL without credentials, query string or fragment, which may hold tokens. */
function displayUrl(url: string | URL): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return String(url).replace(/[?#].*$/, '');
  }
}

function describeCause(cause: unknown): string {
  return cause instanceof Error ? cause.message : String(cause);
}
