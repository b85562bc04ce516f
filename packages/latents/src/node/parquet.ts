import { open } from 'node:fs/promises';
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { DcaeError } from '@dcae/core';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import type { AsyncBuffer, CompressionCodec, Compressors, FileMetaData, SchemaElement } from 'hyparquet';

/**
 * img2dataset's `--output_format parquet` shards (docs/latents.md, "Inputs"): one `NNNNN.parquet`
 * per input shard, one row per sample, with `key`, `caption`, `url`, `status`, `error_message`,
 * `width`, `height`, … and the image bytes in a binary column named after the encode format
 * (`jpg`, `png` or `webp`). Read with hyparquet (pure JavaScript, snappy built in).
 */

/** Image columns img2dataset writes, in the order they are looked for. */
export const PARQUET_IMAGE_COLUMNS = ['jpg', 'jpeg', 'png', 'webp'] as const;

/** Columns whose values, when present, must be strings (UTF8 byte arrays). */
const STRING_COLUMNS = ['key', 'caption', 'status', 'error_message'] as const;

export interface ImageParquetInfo {
  /** Rows in the file (samples, successful or not). */
  readonly rows: number;
  /** The binary column holding the encoded image. */
  readonly imageColumn: string;
  /** Every top-level column, in file order. */
  readonly columns: readonly string[];
}

/** One row of an image parquet, ready for the shard loop. */
export interface ImageParquetRow {
  /** 0-based row number in the file. */
  readonly row: number;
  /** The `key` column, or `<row>` zero-padded to 9 digits when the file has none. */
  readonly key: string;
  /** The encoded image, absent when the row has none (a failed download). */
  readonly image: Uint8Array | undefined;
  /** img2dataset's `status` (`success`, `failed_to_download`, `failed_to_resize`…), when present. */
  readonly status: string | undefined;
  readonly errorMessage: string | undefined;
  readonly caption: string | undefined;
  /** Every other column, JSON-safe (int64 as numbers or, past 2^53, decimal strings; bytes dropped). */
  readonly meta: Record<string, unknown>;
}

const PARQUET_MAGIC = 'PAR1';

/**
 * Page codecs read here: hyparquet's own (uncompressed, snappy: pyarrow's default, which
 * img2dataset uses) plus gzip and brotli through node:zlib. Others (zstd, lz4) are refused at plan
 * time: Node 20's zlib has no zstd.
 */
const COMPRESSORS: Compressors = {
  GZIP: (input) => gunzipSync(input),
  BROTLI: (input) => brotliDecompressSync(input),
};
const CODECS: readonly CompressionCodec[] = ['UNCOMPRESSED', 'SNAPPY', 'GZIP', 'BROTLI'];

/** Tells a truncated or foreign file from a parquet file by its magic bytes (head and tail). */
async function magicProblem(path: string, source: string): Promise<DcaeError | undefined> {
  const handle = await open(path, 'r').catch((cause: unknown) => {
    throw new DcaeError('FILE_READ', `${source} cannot be opened: ${(cause as Error).message}.`, {
      source,
      cause,
    });
  });
  try {
    const { size } = await handle.stat();
    const head = Buffer.alloc(4);
    const tail = Buffer.alloc(4);
    await handle.read(head, 0, 4, 0);
    if (size >= 8) await handle.read(tail, 0, 4, size - 4);
    if (head.toString('latin1') !== PARQUET_MAGIC) {
      return new DcaeError(
        'UNSUPPORTED_FORMAT',
        `${source} is not a parquet file: it does not start with "PAR1" (${size} bytes). Give img2dataset's --output_format parquet shards.`,
        { source, detail: { expected: PARQUET_MAGIC, actual: head.toString('hex') } },
      );
    }
    if (size < 12 || tail.toString('latin1') !== PARQUET_MAGIC) {
      return new DcaeError(
        'TRUNCATED_DATA',
        `${source} is cut short: a parquet file ends with its footer and "PAR1", this one (${size} bytes) does not. Re-copy or re-download it.`,
        { source, detail: { bytes: size } },
      );
    }
    return undefined;
  } finally {
    await handle.close();
  }
}

function wrapParseError(cause: unknown, source: string): DcaeError {
  if (DcaeError.is(cause)) return cause;
  return new DcaeError(
    'UNSUPPORTED_FORMAT',
    `${source} cannot be read as parquet: ${(cause as Error).message}. The file may be damaged; re-copy it, or re-run img2dataset for this shard.`,
    { source, cause },
  );
}

/** Magic bytes, footer and top-level schema of a parquet file (typed errors). */
async function readFooter(
  path: string,
  source: string,
): Promise<{ file: AsyncBuffer; metadata: FileMetaData; top: SchemaElement[] }> {
  const problem = await magicProblem(path, source);
  if (problem) throw problem;
  try {
    const file = await asyncBufferFromFile(path);
    const metadata = await parquetMetadataAsync(file);
    return { file, metadata, top: parquetSchema(metadata).children.map((c) => c.element) };
  } catch (cause) {
    throw wrapParseError(cause, source);
  }
}

/**
 * Whether a readable parquet file has one of img2dataset's image columns; `undefined` when the
 * file is not readable parquet ({@link inspectImageParquet} then says why).
 */
export async function hasImageColumn(path: string, source = path): Promise<boolean | undefined> {
  try {
    const { top } = await readFooter(path, source);
    return top.some((e) => (PARQUET_IMAGE_COLUMNS as readonly string[]).includes(e.name));
  } catch {
    return undefined;
  }
}

async function openParquet(
  path: string,
  source: string,
): Promise<{ file: AsyncBuffer; metadata: FileMetaData; info: ImageParquetInfo }> {
  const { file, metadata, top } = await readFooter(path, source);
  const columns = top.map((e) => e.name);
  const byName = new Map(top.map((e) => [e.name, e]));
  const imageColumn = PARQUET_IMAGE_COLUMNS.find((c) => byName.has(c));
  if (imageColumn === undefined) {
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      `${source} has no image column: expected one of ${PARQUET_IMAGE_COLUMNS.join(', ')} (img2dataset --output_format parquet), found ${columns.join(', ') || 'no columns'}. img2dataset's metadata-only side files sit next to its tars: give the folder of tars instead.`,
      { source, detail: { expected: PARQUET_IMAGE_COLUMNS, actual: columns } },
    );
  }
  const image = byName.get(imageColumn)!;
  if (image.type !== 'BYTE_ARRAY' || image.num_children !== undefined) {
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      `${source}: column ${imageColumn} holds ${image.type ?? 'a group'}, expected binary image bytes (BYTE_ARRAY).`,
      { source, detail: { column: imageColumn, expected: 'BYTE_ARRAY', actual: image.type ?? 'group' } },
    );
  }
  for (const name of STRING_COLUMNS) {
    const element = byName.get(name);
    if (element === undefined) continue;
    if (element.type !== 'BYTE_ARRAY' || element.num_children !== undefined) {
      throw new DcaeError(
        'UNSUPPORTED_FORMAT',
        `${source}: column ${name} holds ${element.type ?? 'a group'}, expected a string (BYTE_ARRAY, UTF8).`,
        { source, detail: { column: name, expected: 'BYTE_ARRAY', actual: element.type ?? 'group' } },
      );
    }
  }
  const codecs = new Set(
    metadata.row_groups.flatMap((g) => g.columns.map((c) => c.meta_data?.codec ?? 'UNCOMPRESSED')),
  );
  const unsupported = [...codecs].filter((c) => !CODECS.includes(c));
  if (unsupported.length > 0) {
    throw new DcaeError(
      'UNSUPPORTED_FORMAT',
      `${source} is compressed with ${unsupported.join(', ')}; readable codecs are ${CODECS.join(', ')}. Re-write it with snappy (pyarrow's default, e.g. pq.write_table(table, path)).`,
      { source, detail: { expected: CODECS, actual: unsupported } },
    );
  }
  return { file, metadata, info: { rows: Number(metadata.num_rows), imageColumn, columns } };
}

/**
 * Checks that `path` is an image parquet (magic bytes, footer, an image column of bytes, string
 * key/caption/status columns, a codec read here) and returns its row count; typed errors otherwise:
 * TRUNCATED_DATA for a file cut short, UNSUPPORTED_FORMAT for another format, a wrong schema or an
 * unreadable codec, FILE_READ.
 */
export async function inspectImageParquet(path: string, source = path): Promise<ImageParquetInfo> {
  return (await openParquet(path, source)).info;
}

function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') {
    return value <= BigInt(Number.MAX_SAFE_INTEGER) && value >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(value)
      : value.toString();
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (value instanceof Uint8Array) return undefined;
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  if (Array.isArray(value)) return value.map((v) => jsonSafe(v) ?? null);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) {
      const safe = jsonSafe(v);
      if (safe !== undefined) out[k] = safe;
    }
    return out;
  }
  return value;
}

const optionalString = (value: unknown): string | undefined =>
  typeof value === 'string'
    ? value
    : value instanceof Uint8Array
      ? new TextDecoder().decode(value)
      : undefined;

/**
 * The rows of an image parquet in file order, one row group at a time (a row group's image bytes
 * are the memory high-water mark). Throws the typed errors of {@link inspectImageParquet}, and
 * UNSUPPORTED_FORMAT when a row group cannot be decoded.
 */
export async function* readImageParquet(path: string, source = path): AsyncGenerator<ImageParquetRow> {
  const { file, metadata, info } = await openParquet(path, source);
  let rowStart = 0;
  for (const group of metadata.row_groups) {
    const rowEnd = rowStart + Number(group.num_rows);
    let rows: Record<string, unknown>[];
    try {
      // utf8: false keeps unannotated byte arrays (the image column) as bytes; UTF8 columns stay strings.
      rows = await parquetReadObjects({
        file,
        metadata,
        rowStart,
        rowEnd,
        utf8: false,
        compressors: COMPRESSORS,
      });
    } catch (cause) {
      throw wrapParseError(cause, `${source} rows ${rowStart}..${rowEnd - 1}`);
    }
    for (let i = 0; i < rows.length; i++) {
      const row = rowStart + i;
      const record = rows[i]!;
      const bytes = record[info.imageColumn];
      const meta: Record<string, unknown> = {};
      for (const [name, value] of Object.entries(record)) {
        if (name === info.imageColumn || (STRING_COLUMNS as readonly string[]).includes(name)) continue;
        const safe = jsonSafe(value);
        if (safe !== undefined) meta[name] = safe;
      }
      const key = optionalString(record.key);
      yield {
        row,
        key: key !== undefined && key !== '' ? key : String(row).padStart(9, '0'),
        image: bytes instanceof Uint8Array && bytes.length > 0 ? bytes : undefined,
        status: optionalString(record.status),
        errorMessage: optionalString(record.error_message),
        caption: optionalString(record.caption),
        meta,
      };
    }
    rowStart = rowEnd;
  }
}
