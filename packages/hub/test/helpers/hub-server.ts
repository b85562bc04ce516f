import { createHash, randomBytes } from 'node:crypto';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { readdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A local stand-in for the Hugging Face Hub's file API on 127.0.0.1, for tests:
 * `HEAD|GET /{org}/{name}/resolve/{revision}/{file}` answers like the Hub (plain files: 200 with
 * `ETag` = git blob sha1; LFS files: 302 to `/blobs/{sha256}` with `X-Linked-Etag` and
 * `X-Linked-Size`; both with `X-Repo-Commit`), `/blobs/{sha256}` and `/static/{path}` serve bytes
 * with Range support. `POST /api/models/{org}/{name}/paths-info/{revision}` answers the Hub's
 * paths-info API (used by `@huggingface/hub`). Faults are injected per request (see {@link Fault}).
 */

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
/** git's blob id: sha1("blob <size>\0" + bytes), the ETag of a plain (non-LFS) file on the Hub. */
export const gitSha1Hex = (bytes: Uint8Array): string =>
  createHash('sha1').update(`blob ${bytes.byteLength}\0`).update(bytes).digest('hex');

export type FaultAction =
  /** Answer with this status (and headers) instead. */
  | { readonly status: number; readonly headers?: Record<string, string> }
  /** Send the headers and `bytes` bytes of the body, then reset the connection. */
  | { readonly drop: number }
  /** Flip one bit of the body (same length). */
  | { readonly corrupt: true }
  /** Answer a Range request with 200 and the whole file. */
  | { readonly ignoreRange: true }
  /** Send nothing (or, with `after`, that many body bytes) and hold the connection open. */
  | { readonly stall: true; readonly after?: number }
  /** Send the body in 16 KiB pieces at about this many bytes per second. */
  | { readonly throttle: number }
  /** Redirect to the same URL forever. */
  | { readonly loop: true }
  /** Answer normally, with these headers replaced (e.g. a lying `x-linked-size`). */
  | { readonly override: Record<string, string> };

export interface Fault {
  readonly method?: 'GET' | 'HEAD';
  /** Matched against the request path. */
  readonly path: RegExp;
  /** How many matching requests it affects. @defaultValue Infinity */
  times?: number;
  readonly action: FaultAction;
}

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly range: string | undefined;
  readonly authorization: string | undefined;
}

export interface TestRepo {
  readonly commit: string;
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Bearer token the repo needs (gated); undefined for a public repo. */
  readonly token: string | undefined;
}

/** The default rule for which files are LFS: safetensors, or above 1000 bytes. */
const defaultLfs = (file: string, bytes: Uint8Array): boolean =>
  file.endsWith('.safetensors') || bytes.byteLength > 1000;

export class HubTestServer {
  readonly requests: RecordedRequest[] = [];
  readonly faults: Fault[] = [];
  /** Where LFS redirects point: this server, or another one holding the same blobs. */
  blobOrigin: string;
  readonly #repos = new Map<
    string,
    TestRepo & { revisions: Map<string, string>; lfs: (file: string, bytes: Uint8Array) => boolean }
  >();
  readonly #blobs: Map<string, Uint8Array>;
  readonly #server: Server;
  readonly #sockets = new Set<Socket>();
  readonly origin: string;

  private constructor(server: Server, blobs: Map<string, Uint8Array>) {
    this.#server = server;
    this.#blobs = blobs;
    const { port } = server.address() as AddressInfo;
    this.origin = `http://127.0.0.1:${port}`;
    this.blobOrigin = this.origin;
  }

  /** Starts a server; `sharedBlobs` lets a second server serve the first one's blobs (cross-host redirects). */
  static async start(sharedBlobs?: HubTestServer): Promise<HubTestServer> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const hub = new HubTestServer(server, sharedBlobs === undefined ? new Map() : sharedBlobs.#blobs);
    server.on('connection', (socket) => {
      hub.#sockets.add(socket);
      socket.on('close', () => hub.#sockets.delete(socket));
    });
    server.on('request', (req, res) => hub.#handle(req, res));
    return hub;
  }

  get endpoint(): string {
    return this.origin;
  }

  /** Adds (or replaces) a repo whose `main` points at a new random commit. */
  addRepo(
    repo: string,
    files: Record<string, Uint8Array>,
    options: { token?: string; lfs?: (file: string, bytes: Uint8Array) => boolean; commit?: string } = {},
  ): TestRepo & { etags: Record<string, string> } {
    const commit = options.commit ?? randomBytes(20).toString('hex');
    const lfs = options.lfs ?? defaultLfs;
    const etags: Record<string, string> = {};
    for (const [file, bytes] of Object.entries(files)) {
      const etag = lfs(file, bytes) ? sha256Hex(bytes) : gitSha1Hex(bytes);
      etags[file] = etag;
      if (lfs(file, bytes)) this.#blobs.set(etag, bytes);
    }
    const entry = {
      commit,
      files: new Map(Object.entries(files)),
      token: options.token,
      revisions: new Map([['main', commit]]),
      lfs,
    };
    this.#repos.set(repo, entry);
    return { ...entry, etags };
  }

  /** Serves `files` as plain static files under `/static/{name}/` (no Hub headers). */
  addStatic(name: string, files: Record<string, Uint8Array>): string {
    this.addRepo(`static/${name}`, files);
    return `${this.origin}/static/${name}/`;
  }

  /** Injects a fault for the next `times` requests matching. */
  fault(fault: Fault): void {
    this.faults.push({ times: Infinity, ...fault });
  }

  /** Requests so far with the method and a path matching. */
  count(method: string, path: RegExp): number {
    return this.requests.filter((r) => r.method === method && path.test(r.path)).length;
  }

  async close(): Promise<void> {
    for (const socket of this.#sockets) socket.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #takeFault(method: string, path: string): FaultAction | undefined {
    const fault = this.faults.find(
      (f) =>
        (f.times ?? Infinity) > 0 && (f.method === undefined || f.method === method) && f.path.test(path),
    );
    if (fault === undefined) return undefined;
    fault.times = (fault.times ?? Infinity) - 1;
    return fault.action;
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const method = req.method ?? 'GET';
    const path = new URL(req.url ?? '/', this.origin).pathname;
    const authorization = req.headers.authorization;
    this.requests.push({ method, path, range: req.headers.range, authorization });
    // `@huggingface/hub` (docs/hub.md) asks for a file's size and URL with `GET` + `Range: bytes=0-0`
    // where our client sends HEAD: faults meant for HEAD hit that probe, and faults meant for GET
    // hit only real downloads. Our client never sends this range, so its tests see no difference.
    const probe = method === 'GET' && req.headers.range === 'bytes=0-0';
    const fault = this.#takeFault(probe ? 'HEAD' : method, path);
    if (fault !== undefined && 'status' in fault) {
      res.writeHead(fault.status, fault.headers).end();
      return;
    }
    if (fault !== undefined && 'loop' in fault) {
      res.writeHead(302, { location: req.url }).end();
      return;
    }
    if (fault !== undefined && 'stall' in fault && fault.after === undefined) return;

    const blob = /^\/blobs\/([0-9a-f]{64})$/.exec(path);
    if (blob !== null) {
      const bytes = this.#blobs.get(blob[1]!);
      if (bytes === undefined) res.writeHead(404).end();
      else this.#sendBytes(req, res, bytes, { etag: `"${blob[1]}"` }, fault);
      return;
    }
    const staticFile = /^\/static\/(.+)$/.exec(path);
    if (staticFile !== null) {
      const [repoPart, ...rest] = decodeURIComponent(staticFile[1]!).split('/');
      const bytes = this.#repos.get(`static/${repoPart}`)?.files.get(rest.join('/'));
      if (bytes === undefined) res.writeHead(404).end();
      else this.#sendBytes(req, res, bytes, { etag: `"v-${sha256Hex(bytes).slice(0, 12)}"` }, fault);
      return;
    }
    const pathsInfo = /^\/api\/models\/([^/]+\/[^/]+)\/paths-info\/([^/]+)$/.exec(path);
    if (pathsInfo !== null && method === 'POST') {
      this.#pathsInfo(req, res, pathsInfo[1]!, decodeURIComponent(pathsInfo[2]!), authorization);
      return;
    }
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    if (resolve === null) {
      res.writeHead(404).end();
      return;
    }
    const [, repoId, revisionText, fileText] = resolve as unknown as [string, string, string, string];
    const repo = this.#repos.get(repoId);
    if (repo === undefined) {
      res.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end();
      return;
    }
    if (repo.token !== undefined && authorization !== `Bearer ${repo.token}`) {
      res
        .writeHead(authorization === undefined ? 401 : 403, {
          'x-error-code': 'GatedRepo',
          'x-error-message': 'Access to this repo is restricted.',
        })
        .end();
      return;
    }
    const revision = decodeURIComponent(revisionText);
    const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : repo.revisions.get(revision);
    if (commit !== repo.commit) {
      res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
      return;
    }
    const file = decodeURIComponent(fileText);
    const bytes = repo.files.get(file);
    if (bytes === undefined) {
      res.writeHead(404, { 'x-error-code': 'EntryNotFound', 'x-repo-commit': commit }).end();
      return;
    }
    const override = fault !== undefined && 'override' in fault ? fault.override : {};
    if (repo.lfs(file, bytes)) {
      const sha = sha256Hex(bytes);
      res
        .writeHead(302, {
          location: `${this.blobOrigin}/blobs/${sha}`,
          'x-repo-commit': commit,
          'x-linked-etag': `"${sha}"`,
          'x-linked-size': String(bytes.byteLength),
          etag: `"${sha}"`,
          ...override,
        })
        .end();
      return;
    }
    this.#sendBytes(
      req,
      res,
      bytes,
      { etag: `"${gitSha1Hex(bytes)}"`, 'x-repo-commit': commit, ...override },
      fault,
    );
  }

  /**
   * `POST /api/models/{repo}/paths-info/{revision}` with `{"paths": [...]}`, as the Hub's API
   * answers it (what `@huggingface/hub` asks before a download): per existing path its git `oid`,
   * `size`, `lfs: {oid, size}` for LFS files and, with `expand`, `lastCommit.id` (the commit).
   */
  #pathsInfo(
    req: IncomingMessage,
    res: ServerResponse,
    repoId: string,
    revision: string,
    authorization: string | undefined,
  ): void {
    let text = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => (text += chunk));
    req.on('end', () => {
      const repo = this.#repos.get(repoId);
      if (repo === undefined) {
        res.writeHead(401, { 'x-error-code': 'RepoNotFound' }).end();
        return;
      }
      if (repo.token !== undefined && authorization !== `Bearer ${repo.token}`) {
        res.writeHead(authorization === undefined ? 401 : 403, { 'x-error-code': 'GatedRepo' }).end();
        return;
      }
      const commit = /^[0-9a-f]{40}$/.test(revision) ? revision : repo.revisions.get(revision);
      if (commit !== repo.commit) {
        res.writeHead(404, { 'x-error-code': 'RevisionNotFound' }).end();
        return;
      }
      let body: { paths?: unknown; expand?: unknown };
      try {
        body = JSON.parse(text) as typeof body;
      } catch {
        res.writeHead(400).end();
        return;
      }
      const paths = Array.isArray(body.paths) ? body.paths.filter((p) => typeof p === 'string') : [];
      const infos = paths.flatMap((file: string) => {
        const bytes = repo.files.get(file);
        if (bytes === undefined) return [];
        return [
          {
            type: 'file',
            path: file,
            oid: gitSha1Hex(bytes),
            size: bytes.byteLength,
            ...(repo.lfs(file, bytes)
              ? { lfs: { oid: sha256Hex(bytes), size: bytes.byteLength, pointerSize: 134 } }
              : {}),
            ...(body.expand === true
              ? { lastCommit: { id: commit, title: 'stand-in', date: '2026-01-01T00:00:00.000Z' } }
              : {}),
          },
        ];
      });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(infos));
    });
  }

  #sendBytes(
    req: IncomingMessage,
    res: ServerResponse,
    file: Uint8Array,
    headers: Record<string, string>,
    fault: FaultAction | undefined,
  ): void {
    let bytes = file;
    if (fault !== undefined && 'corrupt' in fault) {
      bytes = file.slice();
      bytes[bytes.byteLength >> 1]! ^= 0x10;
    }
    const range = /^bytes=(\d+)-(\d*)$/.exec(req.headers.range ?? '');
    let status = 200;
    let start = 0;
    let end = bytes.byteLength;
    if (range !== null && !(fault !== undefined && 'ignoreRange' in fault)) {
      start = Number(range[1]);
      end = range[2] === '' ? bytes.byteLength : Math.min(bytes.byteLength, Number(range[2]) + 1);
      if (start >= bytes.byteLength) {
        res.writeHead(416, { 'content-range': `bytes */${bytes.byteLength}` }).end();
        return;
      }
      status = 206;
      headers = { ...headers, 'content-range': `bytes ${start}-${end - 1}/${bytes.byteLength}` };
    }
    res.writeHead(status, { ...headers, 'content-length': String(end - start), 'accept-ranges': 'bytes' });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const body = bytes.subarray(start, end);
    if (fault !== undefined && 'drop' in fault) {
      res.write(body.subarray(0, fault.drop), () => setTimeout(() => req.socket.destroy(), 20));
      return;
    }
    if (fault !== undefined && 'stall' in fault) {
      res.write(body.subarray(0, fault.after));
      return;
    }
    if (fault !== undefined && 'throttle' in fault) {
      const piece = 16 * 1024;
      const delay = Math.max(1, (piece / fault.throttle) * 1000);
      let offset = 0;
      const next = (): void => {
        if (res.destroyed) return;
        if (offset >= body.byteLength) {
          res.end();
          return;
        }
        res.write(body.subarray(offset, offset + piece));
        offset += piece;
        setTimeout(next, delay);
      };
      next();
      return;
    }
    res.end(body);
  }
}

/** `n` pseudo-random bytes (deterministic per seed) as model file contents. */
export function testBytes(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** Every non-directory entry under `dir` (files, links), relative and sorted; [] when `dir` is missing. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => []);
  return entries
    .filter((e) => !e.isDirectory())
    .map((e) => `${e.parentPath}/${e.name}`.slice(dir.length + 1))
    .sort();
}

/** Polls `condition` every 10 ms until it holds; fails after `timeoutMs`. */
export async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs)
      throw new Error(`waitFor: condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
