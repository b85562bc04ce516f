import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { DcaeError } from '@dcae/core';
import type { CommitRecord } from '../plan-types.js';
import { newAttemptId, parseCommit, PosixStore, sha256Bytes, sha256File } from './store.js';
import type { PublishResult, ShardStore, TempFile } from './store.js';

/**
 * An S3-compatible bucket through @aws-sdk/client-s3 (docs/latents.md, "S3"). Temps are local
 * files; publishing is a PutObject, or a multipart upload above `partSize`, sent with
 * `If-None-Match: *`: the store answers 412 when the key exists, so the first writer wins
 * (AWS S3, MinIO, R2 and others support conditional writes; a store that ignores the header
 * would let a late attempt overwrite a shard, and `verify` would report the sha mismatch).
 * 409 (a concurrent conditional write in progress) is retried. Unfinished multipart uploads are
 * this store's temps: aborted on failure, listed by `listTemps`.
 */
export interface S3StoreOptions {
  readonly client?: S3Client;
  /** Multipart part size in bytes (S3's minimum is 5 MiB except for the last part). @defaultValue 64 MiB */
  readonly partSize?: number;
}

export function s3ClientFromEnv(): S3Client {
  const endpoint =
    process.env.DCAE_S3_ENDPOINT ?? process.env.AWS_ENDPOINT_URL_S3 ?? process.env.AWS_ENDPOINT_URL;
  return new S3Client({
    region: process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    forcePathStyle: process.env.DCAE_S3_FORCE_PATH_STYLE === '1' || endpoint !== undefined,
  });
}

function httpStatus(error: unknown): number | undefined {
  return (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
}

export class S3Store implements ShardStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly #client: S3Client;
  readonly #partSize: number;
  #writable: Promise<void> | undefined;

  constructor(url: string, options: S3StoreOptions = {}) {
    const match = /^s3:\/\/([^/]+)\/?(.*)$/.exec(url);
    if (!match) {
      throw new DcaeError('INVALID_ARGUMENT', `${url} is not an s3://bucket/prefix URL.`, { source: url });
    }
    this.bucket = match[1]!;
    this.prefix = match[2]!.replace(/\/+$/, '');
    this.url = `s3://${this.bucket}/${this.prefix}`;
    this.#client = options.client ?? s3ClientFromEnv();
    this.#partSize = options.partSize ?? 64 * 2 ** 20;
  }

  #key(name: string): string {
    return this.prefix === '' ? name : `${this.prefix}/${name}`;
  }

  /**
   * Probes, once per store object, that the bucket honours `If-None-Match: *` (docs/latents.md,
   * "Storage"): a probe object is put conditionally twice; the second put must be refused (412,
   * or 409 for a conflict). A store that accepts it, or rejects the header itself (400, 501),
   * cannot give first-writer-wins, and a late attempt could silently overwrite a committed shard:
   * refused with OUTPUT_UNWRITABLE before any shard is written. The probe object is deleted
   * afterwards (best effort). A network failure is not remembered: the next call probes again.
   */
  checkWritable(): Promise<void> {
    this.#writable ??= this.#probe().catch((error: unknown) => {
      if (DcaeError.is(error) && error.code === 'NETWORK') this.#writable = undefined;
      throw error;
    });
    return this.#writable;
  }

  async #probe(): Promise<void> {
    const key = this.#key(`.dcae-probe/${newAttemptId()}`);
    const where = `s3://${this.bucket}/${key}`;
    const refuse = (what: string, cause?: unknown): DcaeError =>
      new DcaeError(
        'OUTPUT_UNWRITABLE',
        `${this.url} does not support conditional writes: ${what}. dcae latents publishes shards and commit records first-writer-wins with If-None-Match: * (AWS S3, MinIO, Cloudflare R2 and others support it); without it a late or duplicate attempt could overwrite a committed shard. Use a store that supports conditional writes, or a shared POSIX file system.`,
        { source: this.url, detail: { probe: where }, ...(cause !== undefined ? { cause } : {}) },
      );
    const put = () =>
      this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: 'dcae conditional-write probe',
          IfNoneMatch: '*',
        }),
      );
    const network = (cause: unknown): DcaeError =>
      new DcaeError(
        'NETWORK',
        `Probing ${this.url} for conditional writes failed: ${(cause as Error).message}.`,
        {
          source: where,
          cause,
        },
      );
    try {
      try {
        await put();
      } catch (error) {
        const status = httpStatus(error);
        if (status === 400 || status === 501)
          throw refuse(`it rejected a PutObject with If-None-Match: * (HTTP ${status})`, error);
        throw network(error);
      }
      let accepted: boolean;
      try {
        await put();
        accepted = true;
      } catch (error) {
        const status = httpStatus(error);
        if (status === 412 || status === 409) accepted = false;
        else if (status === 400 || status === 501)
          throw refuse(`it rejected a PutObject with If-None-Match: * (HTTP ${status})`, error);
        else throw network(error);
      }
      if (accepted) throw refuse('it accepted a second PutObject with If-None-Match: * on an existing key');
    } finally {
      await this.#client
        .send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }))
        .catch(() => undefined);
    }
  }

  async createTemp(name: string, attemptId: string): Promise<TempFile> {
    const dir = await mkdtemp(join(tmpdir(), 'dcae-latents-'));
    const path = join(dir, `${name.replace(/\//g, '~')}.${attemptId}.tmp`);
    return { path, handle: await open(path, 'wx') };
  }

  async publish(temp: TempFile, name: string): Promise<PublishResult> {
    const key = this.#key(name);
    try {
      await this.checkWritable();
      const own = await sha256File(temp.path);
      for (let attempt = 0; ; attempt++) {
        try {
          if (own.bytes <= this.#partSize) await this.#put(key, temp.path);
          else await this.#multipart(key, temp.path, own.bytes);
          return { won: true, ...own };
        } catch (error) {
          const status = httpStatus(error);
          if (status === 412) {
            const existing = await this.hashObject(name);
            if (!existing)
              throw new DcaeError('NETWORK', `${this.url}: 412 for ${key} but the object is missing.`);
            return { won: false, ...existing };
          }
          if (status === 409 && attempt < 5) {
            await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
            continue;
          }
          throw error;
        }
      }
    } catch (cause) {
      if (DcaeError.is(cause)) throw cause;
      throw new DcaeError(
        'NETWORK',
        `Uploading ${key} to ${this.bucket} failed: ${(cause as Error).message}.`,
        {
          source: `s3://${this.bucket}/${key}`,
          cause,
        },
      );
    } finally {
      await rm(join(temp.path, '..'), { recursive: true, force: true });
    }
  }

  async #put(key: string, path: string): Promise<void> {
    const handle = await open(path, 'r');
    let body: Buffer;
    try {
      body = await handle.readFile();
    } finally {
      await handle.close();
    }
    await this.#client.send(
      new PutObjectCommand({ Bucket: this.bucket, Key: key, Body: body, IfNoneMatch: '*' }),
    );
  }

  async #multipart(key: string, path: string, size: number): Promise<void> {
    const created = await this.#client.send(
      new CreateMultipartUploadCommand({ Bucket: this.bucket, Key: key }),
    );
    const uploadId = created.UploadId!;
    try {
      const parts: { ETag: string; PartNumber: number }[] = [];
      const handle = await open(path, 'r');
      try {
        for (let offset = 0, n = 1; offset < size; offset += this.#partSize, n++) {
          const length = Math.min(this.#partSize, size - offset);
          const chunk = Buffer.alloc(length);
          await handle.read(chunk, 0, length, offset);
          const part = await this.#client.send(
            new UploadPartCommand({
              Bucket: this.bucket,
              Key: key,
              UploadId: uploadId,
              PartNumber: n,
              Body: chunk,
            }),
          );
          parts.push({ ETag: part.ETag!, PartNumber: n });
        }
      } finally {
        await handle.close();
      }
      await this.#client.send(
        new CompleteMultipartUploadCommand({
          Bucket: this.bucket,
          Key: key,
          UploadId: uploadId,
          MultipartUpload: { Parts: parts },
          IfNoneMatch: '*',
        }),
      );
    } catch (error) {
      await this.#client
        .send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: key, UploadId: uploadId }))
        .catch(() => undefined);
      throw error;
    }
  }

  async commit(record: CommitRecord): Promise<{ won: boolean; record: CommitRecord }> {
    const key = this.#key(`commits/${record.name}.json`);
    await this.checkWritable();
    try {
      await this.#client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: `${JSON.stringify(record, null, 1)}\n`,
          IfNoneMatch: '*',
          ContentType: 'application/json',
        }),
      );
      return { won: true, record };
    } catch (error) {
      if (httpStatus(error) !== 412 && httpStatus(error) !== 409) throw error;
      const existing = await this.readCommit(record.name);
      if (!existing) throw new DcaeError('NETWORK', `${this.url}: commit ${key} refused but not readable.`);
      return { won: false, record: existing };
    }
  }

  async readCommit(shardName: string): Promise<CommitRecord | undefined> {
    const bytes = await this.readObject(`commits/${shardName}.json`);
    return bytes === undefined
      ? undefined
      : parseCommit(new TextDecoder().decode(bytes), `${this.url}/commits/${shardName}.json`);
  }

  async countCommits(): Promise<number> {
    return (await this.#commitKeys()).length;
  }

  async #commitKeys(): Promise<string[]> {
    const keys: string[] = [];
    let token: string | undefined;
    do {
      const page = await this.#client.send(
        new ListObjectsV2Command({
          Bucket: this.bucket,
          Prefix: this.#key('commits/'),
          ContinuationToken: token,
        }),
      );
      for (const object of page.Contents ?? []) if (object.Key?.endsWith('.json')) keys.push(object.Key);
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token);
    return keys;
  }

  async listCommits(): Promise<CommitRecord[]> {
    const keys = await this.#commitKeys();
    const records: CommitRecord[] = [];
    for (const key of keys.sort()) {
      const name = key.slice(this.#key('commits/').length);
      const bytes = await this.readObject(`commits/${name}`);
      if (bytes) records.push(parseCommit(new TextDecoder().decode(bytes), `s3://${this.bucket}/${key}`));
    }
    return records;
  }

  async openObject(name: string): Promise<Readable | undefined> {
    try {
      const out = await this.#client.send(
        new GetObjectCommand({ Bucket: this.bucket, Key: this.#key(name) }),
      );
      return out.Body as Readable;
    } catch (error) {
      if (httpStatus(error) === 404) return undefined;
      throw error;
    }
  }

  async readObject(name: string): Promise<Uint8Array | undefined> {
    const body = await this.openObject(name);
    if (!body) return undefined;
    const chunks: Buffer[] = [];
    for await (const chunk of body as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  }

  async hashObject(name: string): Promise<{ sha256: string; bytes: number } | undefined> {
    const bytes = await this.readObject(name);
    return bytes === undefined ? undefined : { sha256: sha256Bytes(bytes), bytes: bytes.length };
  }

  async putDerived(name: string, bytes: Uint8Array): Promise<void> {
    await this.#client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.#key(name), Body: bytes }));
  }

  async listTemps(shardName?: string): Promise<string[]> {
    const out = await this.#client.send(
      new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.#key(shardName ?? '') }),
    );
    return (out.Uploads ?? []).map((u) => `s3://${this.bucket}/${u.Key} (upload ${u.UploadId})`);
  }

  async sweepTemps(shardName: string): Promise<number> {
    const out = await this.#client.send(
      new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.#key(shardName) }),
    );
    let removed = 0;
    for (const upload of out.Uploads ?? []) {
      await this.#client
        .send(
          new AbortMultipartUploadCommand({
            Bucket: this.bucket,
            Key: upload.Key!,
            UploadId: upload.UploadId!,
          }),
        )
        .then(() => removed++)
        .catch(() => undefined);
    }
    return removed;
  }
}

/** A store for a folder path or an s3:// URL. */
export function openStore(url: string, options: S3StoreOptions = {}): ShardStore {
  return url.startsWith('s3://') ? new S3Store(url, options) : new PosixStore(url);
}
