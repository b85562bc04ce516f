import { setTimeout as sleep } from 'node:timers/promises';
import { DcaeError } from '@dcae/core';
import type { HubRequestContext } from '../response.js';
import { hubStatusError } from '../response.js';
import { displayUrl } from '../url.js';

export interface RetryOptions {
  /** Tries in all, the first included. @defaultValue 5 */
  readonly attempts?: number;
  /** The first wait; it doubles on each retry (±25% jitter). @defaultValue 500 */
  readonly baseDelayMs?: number;
  /** The longest wait, also for a server's `Retry-After`. @defaultValue 10000 */
  readonly maxDelayMs?: number;
}

/** How requests are sent: timeouts, retries, redirects and the token. */
export interface HttpOptions {
  /** Sent as `Authorization: Bearer …` to `tokenOrigin` only, never to a host a redirect leads to. */
  readonly token?: string;
  readonly tokenOrigin?: string;
  readonly signal?: AbortSignal;
  /** Longest wait for response headers, and for each next piece of a body. @defaultValue 30000 */
  readonly timeoutMs?: number;
  readonly retry?: RetryOptions;
  /** Redirects followed per request. @defaultValue 10 */
  readonly maxRedirects?: number;
  /** Retries and other events worth a log line (never with credentials). */
  readonly onWarning?: (message: string) => void;
}

export interface HttpRequest {
  readonly method: 'GET' | 'HEAD';
  readonly url: string;
  readonly headers?: Readonly<Record<string, string>>;
  /** Stop at a redirect that carries `X-Repo-Commit`: the Hub's answer for an LFS file. */
  readonly stopAtHubAnswer?: boolean;
  readonly context: Omit<HubRequestContext, 'withToken'>;
}

/** An answer whose body is read with the idle timeout; `close()` releases the connection. */
export interface HttpAnswer {
  readonly response: Response;
  /** The URL after redirects. */
  readonly url: string;
  /** The next piece of the body, or undefined at its end. Fails with a retryable error on a drop or a stall. */
  read(): Promise<Uint8Array | undefined>;
  close(): Promise<void>;
}

/** A failure worth another try (connection lost, timeout, 429, 5xx); `final` is thrown when tries run out. */
export class TransientError extends Error {
  constructor(
    readonly final: DcaeError,
    readonly retryAfterMs?: number,
  ) {
    super(final.message);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const RETRYABLE = new Set([429, 500, 502, 503, 504]);
const USER_AGENT = `dcae (node/${process.versions.node})`;

/**
 * Sends one request, following redirects by hand: at most `maxRedirects` hops, http(s) only, no
 * https→http downgrade, and the token only on requests to `tokenOrigin`. Statuses ≥ 400 throw:
 * HTTP_STATUS, or a {@link TransientError} for 429 and 5xx. Connection failures and timeouts throw
 * a TransientError; the caller's abort throws ABORTED.
 */
export async function openHttp(request: HttpRequest, options: HttpOptions): Promise<HttpAnswer> {
  const timeoutMs = options.timeoutMs ?? 30_000;
  const maxRedirects = options.maxRedirects ?? 10;
  const timer = new AbortController();
  const signal =
    options.signal === undefined ? timer.signal : AbortSignal.any([timer.signal, options.signal]);
  let pending: ReturnType<typeof setTimeout> | undefined;
  const arm = (): void => {
    pending = setTimeout(() => timer.abort(), timeoutMs);
  };
  const disarm = (): void => clearTimeout(pending);
  const failure = (cause: unknown, what: string): Error => {
    if (options.signal?.aborted) {
      return new DcaeError('ABORTED', `${request.context.source}: the download was cancelled.`, {
        source: request.context.source,
        cause,
      });
    }
    const reason = timer.signal.aborted ? `no answer within ${timeoutMs} ms` : describeCause(cause);
    return new TransientError(
      new DcaeError(
        'NETWORK',
        `${request.context.source}: ${what} failed (${reason}); check the connection and retry.`,
        {
          source: request.context.source,
          cause,
        },
      ),
    );
  };

  let url = request.url;
  let withToken = false;
  for (let hop = 0; ; hop++) {
    const sendToken = options.token !== undefined && new URL(url).origin === options.tokenOrigin;
    withToken ||= sendToken;
    const headers: Record<string, string> = {
      'user-agent': USER_AGENT,
      'accept-encoding': 'identity',
      ...request.headers,
      ...(sendToken ? { authorization: `Bearer ${options.token}` } : {}),
    };
    let response: Response;
    arm();
    try {
      response = await fetch(url, { method: request.method, headers, redirect: 'manual', signal });
    } catch (cause) {
      throw failure(cause, `${request.method} ${displayUrl(url)}`);
    } finally {
      disarm();
    }
    const context = { ...request.context, withToken };
    if (
      REDIRECTS.has(response.status) &&
      !(request.stopAtHubAnswer && response.headers.has('x-repo-commit'))
    ) {
      await response.body?.cancel().catch(() => undefined);
      url = redirectTarget(url, response.headers.get('location'), hop, maxRedirects, context.source);
      continue;
    }
    if (response.status >= 400) {
      await response.body?.cancel().catch(() => undefined);
      const error = hubStatusError(response.status, response.headers, context);
      if (RETRYABLE.has(response.status)) throw new TransientError(error, retryAfterMs(response.headers));
      throw error;
    }
    const reader = response.body?.getReader();
    return {
      response,
      url,
      read: async () => {
        if (reader === undefined) return undefined;
        arm();
        try {
          const { done, value } = await reader.read();
          return done ? undefined : value;
        } catch (cause) {
          throw failure(cause, `reading ${displayUrl(url)}`);
        } finally {
          disarm();
        }
      },
      close: async () => {
        disarm();
        await reader?.cancel().catch(() => undefined);
      },
    };
  }
}

function redirectTarget(
  from: string,
  location: string | null,
  hop: number,
  maxRedirects: number,
  source: string,
): string {
  const fail = (why: string): DcaeError =>
    new DcaeError('HTTP_STATUS', `${source}: redirect refused: ${why}.`, {
      source,
      detail: { redirect: true },
    });
  if (location === null) throw fail(`a redirect from ${displayUrl(from)} has no Location header`);
  if (hop >= maxRedirects) throw fail(`more than ${maxRedirects} redirects (a redirect loop?)`);
  let next: URL;
  try {
    next = new URL(location, from);
  } catch {
    throw fail(`Location ${JSON.stringify(displayUrl(location))} is not a URL`);
  }
  if (next.protocol !== 'https:' && next.protocol !== 'http:') throw fail(`scheme ${next.protocol}`);
  if (new URL(from).protocol === 'https:' && next.protocol === 'http:') {
    throw fail(`https → http downgrade to ${displayUrl(next)}`);
  }
  return next.href;
}

/** `Retry-After` in seconds or as a date, in ms. */
function retryAfterMs(headers: Headers): number | undefined {
  const value = headers.get('retry-after')?.trim();
  if (value === undefined || value === '') return undefined;
  const seconds = Number(value);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - Date.now());
}

/**
 * Runs `attempt` until it succeeds, throws a non-transient error, or the tries run out (then the
 * last TransientError's `final` error is thrown). Waits back off exponentially, or as long as the
 * server's `Retry-After` says (capped), and end early on abort. `stopRetrying`, asked after a
 * transient failure, may end the retries at once (e.g. because a cached copy can serve instead).
 */
export async function withRetries<T>(
  options: HttpOptions,
  attempt: (index: number) => Promise<T>,
  stopRetrying?: () => Promise<boolean>,
): Promise<T> {
  const tries = Math.max(1, options.retry?.attempts ?? 5);
  const base = options.retry?.baseDelayMs ?? 500;
  const cap = options.retry?.maxDelayMs ?? 10_000;
  for (let index = 0; ; index++) {
    try {
      return await attempt(index);
    } catch (error) {
      if (!(error instanceof TransientError)) throw error;
      if (index + 1 >= tries || (stopRetrying !== undefined && (await stopRetrying()))) throw error.final;
      const backoff = base * 2 ** index * (0.75 + 0.5 * Math.random());
      const wait = Math.min(cap, error.retryAfterMs ?? backoff);
      options.onWarning?.(
        `${error.final.message} Retrying in ${Math.round(wait)} ms (try ${index + 2} of ${tries}).`,
      );
      try {
        await sleep(wait, undefined, { signal: options.signal });
      } catch (cause) {
        throw new DcaeError(
          'ABORTED',
          `${error.final.source ?? 'download'}: cancelled while waiting to retry.`,
          {
            source: error.final.source,
            cause,
          },
        );
      }
    }
  }
}

function describeCause(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const inner = cause.cause instanceof Error ? cause.cause : undefined;
  const code =
    inner !== undefined && 'code' in inner && typeof inner.code === 'string' ? inner.code : undefined;
  return code ?? inner?.message ?? cause.message;
}
