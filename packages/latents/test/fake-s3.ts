import { randomBytes, createHash } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small S3 stand-in on loopback for the tests (no MinIO here). It implements path-style
 * PutObject, GetObject, ListObjectsV2, CreateMultipartUpload, UploadPart, CompleteMultipartUpload,
 * AbortMultipartUpload and ListMultipartUploads, with `If-None-Match: *` on PutObject and
 * CompleteMultipartUpload (412 when the key exists), as AWS documents them.
 *
 * `conditionalWrites` imitates stores without that support: `ignore` accepts the header and
 * overwrites anyway; `reject` answers 501 NotImplemented to any request carrying it. DeleteObject
 * is implemented too (the store deletes its conditional-write probe).
 *
 * What it does NOT check: SigV4 signatures and credentials, checksums (x-amz-checksum-*,
 * Content-MD5), the 5 MiB minimum part size, part ETags in Complete, 409 conflicts between
 * concurrent conditional writes, pagination (everything fits one page), versioning, and any
 * consistency or latency behaviour of a real store.
 */
export interface FakeS3 {
  readonly endpoint: string;
  readonly objects: Map<string, Buffer>;
  readonly uploads: Map<string, { key: string; parts: Map<number, Buffer> }>;
  /** Requests seen, as `METHOD path?query` lines (for assertions). */
  readonly log: string[];
  close(): Promise<void>;
}

const xml = (body: string): string => `<?xml version="1.0" encoding="UTF-8"?>\n${body}`;
const esc = (s: string): string => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of req as AsyncIterable<Buffer>) chunks.push(c);
  const raw = Buffer.concat(chunks);
  // aws-chunked (streaming uploads with trailing checksums): strip the chunk framing.
  if (String(req.headers['content-encoding'] ?? '').includes('aws-chunked')) {
    const out: Buffer[] = [];
    let off = 0;
    for (;;) {
      const eol = raw.indexOf('\r\n', off);
      const size = parseInt(raw.subarray(off, eol).toString().split(';')[0]!, 16);
      if (!(size > 0)) break;
      out.push(raw.subarray(eol + 2, eol + 2 + size));
      off = eol + 2 + size + 2;
    }
    return Buffer.concat(out);
  }
  return raw;
}

export interface FakeS3Options {
  /** @defaultValue 'honour' */
  readonly conditionalWrites?: 'honour' | 'ignore' | 'reject';
}

export async function startFakeS3(options: FakeS3Options = {}): Promise<FakeS3> {
  const mode = options.conditionalWrites ?? 'honour';
  const objects = new Map<string, Buffer>();
  const uploads = new Map<string, { key: string; parts: Map<number, Buffer> }>();
  const log: string[] = [];
  const send = (res: ServerResponse, status: number, body = '', headers: Record<string, string> = {}) => {
    res.writeHead(status, { 'content-type': 'application/xml', ...headers });
    res.end(body);
  };
  const error = (res: ServerResponse, status: number, code: string) =>
    send(res, status, xml(`<Error><Code>${code}</Code><Message>${code}</Message></Error>`));
  const server: Server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url!, 'http://x');
      log.push(`${req.method} ${url.pathname}${url.search}`);
      const [, bucket, ...rest] = url.pathname.split('/');
      const key = decodeURIComponent(rest.join('/'));
      const full = `${bucket}/${key}`;
      const q = url.searchParams;
      const body = await readBody(req);
      if (req.headers['if-none-match'] !== undefined && mode === 'reject')
        return error(res, 501, 'NotImplemented');
      const conditional = req.headers['if-none-match'] === '*' && mode === 'honour';
      if (req.method === 'PUT' && q.has('partNumber')) {
        const upload = uploads.get(q.get('uploadId')!);
        if (!upload) return error(res, 404, 'NoSuchUpload');
        upload.parts.set(Number(q.get('partNumber')), body);
        return send(res, 200, '', { etag: `"${createHash('md5').update(body).digest('hex')}"` });
      }
      if (req.method === 'PUT') {
        if (conditional && objects.has(full)) return error(res, 412, 'PreconditionFailed');
        objects.set(full, body);
        return send(res, 200, '', { etag: `"${createHash('md5').update(body).digest('hex')}"` });
      }
      if (req.method === 'POST' && q.has('uploads')) {
        const id = randomBytes(8).toString('hex');
        uploads.set(id, { key: full, parts: new Map() });
        return send(
          res,
          200,
          xml(
            `<InitiateMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${esc(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`,
          ),
        );
      }
      if (req.method === 'POST' && q.has('uploadId')) {
        const id = q.get('uploadId')!;
        const upload = uploads.get(id);
        if (!upload) return error(res, 404, 'NoSuchUpload');
        if (conditional && objects.has(full)) return error(res, 412, 'PreconditionFailed');
        const numbers = [...body.toString().matchAll(/<PartNumber>(\d+)<\/PartNumber>/g)].map((m) =>
          Number(m[1]),
        );
        objects.set(full, Buffer.concat(numbers.map((n) => upload.parts.get(n)!)));
        uploads.delete(id);
        return send(
          res,
          200,
          xml(
            `<CompleteMultipartUploadResult><Bucket>${bucket}</Bucket><Key>${esc(key)}</Key><ETag>"x"</ETag></CompleteMultipartUploadResult>`,
          ),
        );
      }
      if (req.method === 'DELETE' && q.has('uploadId')) {
        uploads.delete(q.get('uploadId')!);
        return send(res, 204);
      }
      if (req.method === 'DELETE' && key !== '') {
        objects.delete(full);
        return send(res, 204);
      }
      if (req.method === 'GET' && key === '' && q.has('uploads')) {
        const prefix = `${bucket}/${q.get('prefix') ?? ''}`;
        const items = [...uploads].filter(([, u]) => u.key.startsWith(prefix));
        return send(
          res,
          200,
          xml(
            `<ListMultipartUploadsResult><Bucket>${bucket}</Bucket>${items.map(([id, u]) => `<Upload><Key>${esc(u.key.slice(bucket!.length + 1))}</Key><UploadId>${id}</UploadId></Upload>`).join('')}<IsTruncated>false</IsTruncated></ListMultipartUploadsResult>`,
          ),
        );
      }
      if (req.method === 'GET' && key === '') {
        const prefix = `${bucket}/${q.get('prefix') ?? ''}`;
        const items = [...objects].filter(([k]) => k.startsWith(prefix)).sort(([a], [b]) => (a < b ? -1 : 1));
        return send(
          res,
          200,
          xml(
            `<ListBucketResult><Name>${bucket}</Name><KeyCount>${items.length}</KeyCount><IsTruncated>false</IsTruncated>${items.map(([k, v]) => `<Contents><Key>${esc(k.slice(bucket!.length + 1))}</Key><Size>${v.length}</Size></Contents>`).join('')}</ListBucketResult>`,
          ),
        );
      }
      if (req.method === 'GET') {
        const object = objects.get(full);
        if (!object) return error(res, 404, 'NoSuchKey');
        res.writeHead(200, {
          'content-length': String(object.length),
          'content-type': 'application/octet-stream',
        });
        return res.end(object);
      }
      return error(res, 501, 'NotImplemented');
    })().catch((e: unknown) => error(res, 500, String(e)));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    objects,
    uploads,
    log,
    close: () => new Promise((r) => server.close(() => r())),
  };
}
