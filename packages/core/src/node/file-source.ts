import type { FileHandle } from 'node:fs/promises';
import { open } from 'node:fs/promises';
import { DcaeError } from '../errors.js';
import type { ByteSource } from '../safetensors/byte-source.js';
import { checkReadRange } from '../safetensors/byte-source.js';
import { systemErrorCode } from './system-error.js';

/**
 * A source over a local file, read at positions through one open handle: multi-GB files are
 * never loaded whole. Close it (or the safetensors file that took it over) to release the handle.
 */
export async function fileSource(path: string): Promise<ByteSource> {
  let handle: FileHandle;
  try {
    handle = await open(path, 'r');
  } catch (cause) {
    const code = systemErrorCode(cause);
    const notFound = code === 'ENOENT';
    throw new DcaeError(
      notFound ? 'FILE_NOT_FOUND' : 'FILE_READ',
      `${path}: ${notFound ? 'no such file' : `cannot open (${code ?? String(cause)})`}.`,
      {
        source: path,
        cause,
      },
    );
  }
  const stats = await handle.stat();
  if (!stats.isFile()) {
    await handle.close();
    throw new DcaeError('FILE_READ', `${path}: not a regular file.`, { source: path });
  }

  let closed: Promise<void> | undefined;
  const source: ByteSource = {
    name: path,
    size: stats.size,
    read: async (offset, length) => {
      checkReadRange(source, offset, length);
      const bytes = new Uint8Array(length);
      let filled = 0;
      while (filled < length) {
        let bytesRead: number;
        try {
          ({ bytesRead } = await handle.read(bytes, filled, length - filled, offset + filled));
        } catch (cause) {
          throw new DcaeError(
            'FILE_READ',
            `${path}: reading ${length} bytes at offset ${offset} failed (${systemErrorCode(cause) ?? String(cause)}).`,
            { source: path, cause },
          );
        }
        if (bytesRead === 0) {
          throw new DcaeError(
            'FILE_READ',
            `${path}: the file ended at byte ${offset + filled}, before the ${length} bytes at offset ${offset}; it changed while being read.`,
            {
              source: path,
            },
          );
        }
        filled += bytesRead;
      }
      return bytes;
    },
    close: () => (closed ??= handle.close()),
  };
  return source;
}
