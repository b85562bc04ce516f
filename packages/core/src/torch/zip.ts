import { DcaeError } from '../errors.js';
import type { ByteSource } from '../safetensors/byte-source.js';

/**
 * The part of the zip format (PKWARE APPNOTE 6.3) that `torch.save` writes: stored (uncompressed)
 * entries, a central directory, optionally its zip64 variants. Only the central directory is
 * trusted for names and sizes; every entry's data range is checked against the file, the central
 * directory and the next entry, so entries that overlap (the "overlapping files" zip bomb) or run
 * past the end of the file are refused. See docs/pth-reader.md.
 */

/** One stored entry, located in the file. */
export interface ZipEntry {
  readonly name: string;
  /** Bytes of the entry (compressed = uncompressed: stored entries only). */
  readonly size: number;
  /** Where its local header starts. */
  readonly localHeaderOffset: number;
  /** Where the next entry's local header (or the central directory) starts: the entry must end before it. */
  readonly limit: number;
}

export interface ZipLimits {
  /** Most entries accepted. @defaultValue 1_000_000 */
  readonly maxEntries?: number;
  /** Most bytes of central directory read. @defaultValue 256 MiB */
  readonly maxCentralDirectoryBytes?: number;
}

const EOCD_SIGNATURE = 0x06054b50;
const ZIP64_LOCATOR_SIGNATURE = 0x07064b50;
const ZIP64_EOCD_SIGNATURE = 0x06064b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;
const EOCD_BYTES = 22;
const ZIP64_LOCATOR_BYTES = 20;
const ZIP64_EOCD_BYTES = 56;
const CENTRAL_BYTES = 46;
const LOCAL_BYTES = 30;
const MAX_COMMENT = 0xffff;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;

const METHODS: Readonly<Record<number, string>> = {
  8: 'deflate',
  9: 'deflate64',
  12: 'bzip2',
  14: 'lzma',
  93: 'zstd',
  95: 'xz',
};

function corrupt(source: string, what: string, detail?: Record<string, unknown>): DcaeError {
  return new DcaeError(
    'ZIP_CORRUPT',
    `${source}: not a valid zip archive: ${what}. The file is damaged or was not written by torch.save; ` +
      'download it again or re-save it with torch.save.',
    { source, detail },
  );
}

function truncated(source: string, what: string, detail?: Record<string, unknown>): DcaeError {
  return new DcaeError(
    'ZIP_TRUNCATED',
    `${source}: the archive is truncated: ${what}. An interrupted download or copy leaves such files; fetch it again.`,
    { source, detail },
  );
}

/** A little-endian uint64 as a safe integer, or undefined when it is not one. */
function u64(view: DataView, at: number): number | undefined {
  const value = view.getBigUint64(at, true);
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

/**
 * Reads and checks the central directory of `source`: every entry stored, not encrypted, named
 * once, inside the file and before the central directory, and no two entries overlapping.
 */
export async function readZipDirectory(source: ByteSource, limits: ZipLimits = {}): Promise<ZipEntry[]> {
  const maxEntries = limits.maxEntries ?? 1_000_000;
  const maxCentral = limits.maxCentralDirectoryBytes ?? 256 * 2 ** 20;
  const size = source.size;
  const name = source.name;
  if (size < EOCD_BYTES) {
    throw new DcaeError(
      'PTH_NOT_ZIP',
      `${name}: ${size} bytes is too small for a zip archive (torch.save writes zip files since PyTorch 1.6).`,
      { source: name, detail: { size } },
    );
  }
  // The end-of-central-directory record sits in the last 22 + comment bytes.
  const tailLength = Math.min(size, EOCD_BYTES + MAX_COMMENT + ZIP64_LOCATOR_BYTES);
  const tailStart = size - tailLength;
  const tail = await source.read(tailStart, tailLength);
  const tv = new DataView(tail.buffer, tail.byteOffset, tail.byteLength);
  let eocd = -1;
  for (let at = tailLength - EOCD_BYTES; at >= 0; at--) {
    if (
      tv.getUint32(at, true) === EOCD_SIGNATURE &&
      at + EOCD_BYTES + tv.getUint16(at + 20, true) === tailLength
    ) {
      eocd = at;
      break;
    }
  }
  if (eocd < 0) throw await notZip(source);
  const disk = tv.getUint16(eocd + 4, true);
  const cdDisk = tv.getUint16(eocd + 6, true);
  let count = tv.getUint16(eocd + 10, true);
  const diskCount = tv.getUint16(eocd + 8, true);
  let cdSize = tv.getUint32(eocd + 12, true);
  let cdOffset = tv.getUint32(eocd + 16, true);
  let cdEnd = tailStart + eocd;

  const locator = eocd - ZIP64_LOCATOR_BYTES;
  const wantsZip64 = count === U16_MAX || cdSize === U32_MAX || cdOffset === U32_MAX;
  if (locator >= 0 && tv.getUint32(locator, true) === ZIP64_LOCATOR_SIGNATURE) {
    const recordOffset = u64(tv, locator + 8);
    if (recordOffset === undefined || recordOffset + ZIP64_EOCD_BYTES > tailStart + locator) {
      throw corrupt(name, 'the zip64 locator points outside the file', { recordOffset });
    }
    const record = await source.read(recordOffset, ZIP64_EOCD_BYTES);
    const rv = new DataView(record.buffer, record.byteOffset, record.byteLength);
    if (rv.getUint32(0, true) !== ZIP64_EOCD_SIGNATURE) {
      throw corrupt(name, `no zip64 end-of-central-directory record at offset ${recordOffset}`);
    }
    const count64 = u64(rv, 32);
    const size64 = u64(rv, 40);
    const offset64 = u64(rv, 48);
    if (count64 === undefined || size64 === undefined || offset64 === undefined) {
      throw corrupt(name, 'the zip64 record holds sizes beyond 2^53');
    }
    count = count64;
    cdSize = size64;
    cdOffset = offset64;
    cdEnd = recordOffset;
  } else if (wantsZip64) {
    throw corrupt(name, 'the end record asks for zip64 fields but there is no zip64 locator');
  }
  if (disk !== 0 || cdDisk !== 0 || (diskCount !== count && diskCount !== U16_MAX)) {
    throw new DcaeError('UNSUPPORTED', `${name}: multi-disk (split) zip archives are not supported.`, {
      source: name,
    });
  }
  if (count > maxEntries) {
    throw corrupt(name, `${count} entries, over the limit of ${maxEntries}`, { count, maxEntries });
  }
  if (cdSize > maxCentral) {
    throw corrupt(name, `a central directory of ${cdSize} bytes, over the limit of ${maxCentral}`, {
      cdSize,
    });
  }
  if (cdOffset + cdSize > cdEnd) {
    // Data lost from the middle or end of the file moves the end record before where the directory should end.
    const what = `the central directory (${cdSize} bytes at offset ${cdOffset}) runs past the end record at ${cdEnd}`;
    throw cdOffset + cdSize > size ? truncated(name, what) : corrupt(name, what);
  }

  const cd = await source.read(cdOffset, cdSize);
  const cv = new DataView(cd.buffer, cd.byteOffset, cd.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const raw: { name: string; size: number; localHeaderOffset: number; minEnd: number }[] = [];
  const names = new Set<string>();
  let at = 0;
  for (let i = 0; i < count; i++) {
    if (at + CENTRAL_BYTES > cdSize || cv.getUint32(at, true) !== CENTRAL_SIGNATURE) {
      throw corrupt(
        name,
        `central directory entry ${i} of ${count} is missing or damaged (offset ${cdOffset + at})`,
      );
    }
    const flags = cv.getUint16(at + 8, true);
    const method = cv.getUint16(at + 10, true);
    let compressed = cv.getUint32(at + 20, true);
    let uncompressed = cv.getUint32(at + 24, true);
    const nameLength = cv.getUint16(at + 28, true);
    const extraLength = cv.getUint16(at + 30, true);
    const commentLength = cv.getUint16(at + 32, true);
    let localHeaderOffset = cv.getUint32(at + 42, true);
    const next = at + CENTRAL_BYTES + nameLength + extraLength + commentLength;
    if (next > cdSize) throw corrupt(name, `central directory entry ${i} runs past the directory`);
    let entryName: string;
    try {
      entryName = decoder.decode(cd.subarray(at + CENTRAL_BYTES, at + CENTRAL_BYTES + nameLength));
    } catch {
      throw corrupt(name, `entry ${i} has a name that is not UTF-8`);
    }
    // zip64 extended information: the fields whose 32-bit value is 0xffffffff, in this order.
    const extra = at + CENTRAL_BYTES + nameLength;
    for (let e = extra; e + 4 <= extra + extraLength;) {
      const id = cv.getUint16(e, true);
      const length = cv.getUint16(e + 2, true);
      if (e + 4 + length > extra + extraLength)
        throw corrupt(name, `entry ${JSON.stringify(entryName)} has a damaged extra field`);
      if (id === 0x0001) {
        let p = e + 4;
        const take = (): number => {
          if (p + 8 > e + 4 + length)
            throw corrupt(name, `entry ${JSON.stringify(entryName)} has a short zip64 field`);
          const value = u64(cv, p);
          p += 8;
          if (value === undefined)
            throw corrupt(name, `entry ${JSON.stringify(entryName)} has a size beyond 2^53`);
          return value;
        };
        if (uncompressed === U32_MAX) uncompressed = take();
        if (compressed === U32_MAX) compressed = take();
        if (localHeaderOffset === U32_MAX) localHeaderOffset = take();
      }
      e += 4 + length;
    }
    if ((flags & 0x1) !== 0 || (flags & 0x40) !== 0) {
      throw new DcaeError(
        'ZIP_COMPRESSED',
        `${name}: entry ${JSON.stringify(entryName)} is encrypted; encrypted archives are refused.`,
        {
          source: name,
          detail: { entry: entryName, flags },
        },
      );
    }
    if (method !== 0) {
      throw new DcaeError(
        'ZIP_COMPRESSED',
        `${name}: entry ${JSON.stringify(entryName)} is compressed (method ${method}${METHODS[method] ? `, ${METHODS[method]}` : ''}, ` +
          `${compressed} → ${uncompressed} bytes); torch.save stores entries uncompressed, and dcae reads stored entries only ` +
          '(compressed entries are how zip bombs work). Re-save the checkpoint with torch.save, or unzip and re-zip with `zip -0`.',
        { source: name, detail: { entry: entryName, method, compressed, uncompressed } },
      );
    }
    if (compressed !== uncompressed) {
      throw corrupt(
        name,
        `stored entry ${JSON.stringify(entryName)} has ${compressed} stored bytes but claims ${uncompressed}`,
      );
    }
    if (names.has(entryName)) throw corrupt(name, `entry ${JSON.stringify(entryName)} appears twice`);
    names.add(entryName);
    const minEnd = localHeaderOffset + LOCAL_BYTES + nameLength + uncompressed;
    if (minEnd > cdOffset) {
      const what = `entry ${JSON.stringify(entryName)} (${uncompressed} bytes at offset ${localHeaderOffset}) runs past the start of the central directory at ${cdOffset}`;
      throw minEnd > size
        ? truncated(name, what)
        : new DcaeError('ZIP_OVERLAP', `${name}: ${what}.`, { source: name });
    }
    raw.push({ name: entryName, size: uncompressed, localHeaderOffset, minEnd });
    at = next;
  }
  if (at !== cdSize)
    throw corrupt(name, `${cdSize - at} unexplained bytes after the ${count} central directory entries`);

  // No two entries may share bytes: each must end before the next one (in file order) begins.
  const ordered = [...raw].sort((a, b) => a.localHeaderOffset - b.localHeaderOffset);
  const limitOf = new Map<string, number>();
  ordered.forEach((entry, i) => {
    const following = ordered[i + 1];
    const limit = following === undefined ? cdOffset : following.localHeaderOffset;
    if (entry.minEnd > limit) {
      throw new DcaeError(
        'ZIP_OVERLAP',
        `${name}: entries ${JSON.stringify(entry.name)} and ${JSON.stringify(following?.name)} overlap ` +
          `(the first needs bytes up to ${entry.minEnd}, the second starts at ${limit}). Overlapping entries are how ` +
          'non-recursive zip bombs work; torch.save never writes them.',
        { source: name, detail: { first: entry.name, second: following?.name } },
      );
    }
    limitOf.set(entry.name, limit);
  });
  return raw.map((e) => ({
    name: e.name,
    size: e.size,
    localHeaderOffset: e.localHeaderOffset,
    limit: limitOf.get(e.name)!,
  }));
}

/** Where the entry's data starts, from its local header (whose extra field torch uses to align data to 64 bytes). */
export async function entryDataOffset(source: ByteSource, entry: ZipEntry): Promise<number> {
  const name = source.name;
  if (entry.localHeaderOffset + LOCAL_BYTES > entry.limit) {
    throw corrupt(name, `no room for the local header of ${JSON.stringify(entry.name)}`);
  }
  const header = await source.read(entry.localHeaderOffset, LOCAL_BYTES);
  const hv = new DataView(header.buffer, header.byteOffset, header.byteLength);
  if (hv.getUint32(0, true) !== LOCAL_SIGNATURE) {
    throw corrupt(
      name,
      `no local header for ${JSON.stringify(entry.name)} at offset ${entry.localHeaderOffset}`,
    );
  }
  const start = entry.localHeaderOffset + LOCAL_BYTES + hv.getUint16(26, true) + hv.getUint16(28, true);
  if (start + entry.size > entry.limit) {
    throw new DcaeError(
      'ZIP_OVERLAP',
      `${name}: the data of ${JSON.stringify(entry.name)} (${entry.size} bytes at offset ${start}) runs into the next entry or the central directory at ${entry.limit}.`,
      { source: name, detail: { entry: entry.name } },
    );
  }
  return start;
}

/** The error for a file that has no zip end record: a legacy torch.save file, a bare pickle, or something else. */
async function notZip(source: ByteSource): Promise<DcaeError> {
  const head = await source.read(0, Math.min(4, source.size));
  const name = source.name;
  if (head[0] === 0x80 && head[1] !== undefined && head[1] <= 5) {
    return new DcaeError(
      'PTH_NOT_ZIP',
      `${name} is a legacy (pre-1.6) torch.save file or a bare pickle, not a zip archive; dcae reads only the zip format. ` +
        'Re-save it with a current PyTorch: torch.save(torch.load(path, weights_only=True), path).',
      { source: name },
    );
  }
  if (head[0] === 0x50 && head[1] === 0x4b) {
    return truncated(name, 'it starts like a zip archive but has no end-of-central-directory record');
  }
  return new DcaeError(
    'PTH_NOT_ZIP',
    `${name} is not a zip archive (torch.save format): no end-of-central-directory record.`,
    {
      source: name,
    },
  );
}
