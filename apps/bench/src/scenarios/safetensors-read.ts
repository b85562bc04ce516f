import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { openSafetensors } from '@dcae/core';
import { fileSource } from '@dcae/core/node';
import type { RandomTensor } from '../random-weights.js';
import { ensureRandomSafetensors } from '../random-weights.js';
import type { Scenario } from '../scenario.js';

const MiB = 2 ** 20;
/** Every tensor is [rows, 4096] float32. */
const COLUMNS = 4096;

interface Layout {
  readonly path: string;
  readonly tensors: readonly { readonly name: string; readonly offset: number; readonly length: number }[];
  readonly dataBytes: number;
}

/**
 * Writes (once; later runs reuse it) a safetensors file of `count` random float32 tensors of
 * `tensorMiB` each, with the header padded to 8 bytes like the reference writer. The layout comes
 * from the writer, independently of the reader under test.
 */
async function ensureFile(
  cacheDir: string,
  count: number,
  tensorMiB: number,
  log: (m: string) => void,
): Promise<Layout> {
  const rows = (tensorMiB * MiB) / (COLUMNS * 4);
  const tensors: RandomTensor[] = Array.from({ length: count }, (_, i) => ({
    key: `layers.${i}.weight`,
    shape: [rows, COLUMNS],
    range: [-1, 1],
  }));
  const path = join(cacheDir, `safetensors-read-${count}x${tensorMiB}MiB.safetensors`);
  const written = await ensureRandomSafetensors(path, tensors, { seed: 20_240_601, log });
  return {
    path,
    tensors: [...written.ranges].map(([name, [begin, end]]) => ({
      name,
      offset: begin,
      length: end - begin,
    })),
    dataBytes: written.bytes,
  };
}

/**
 * Reads each range through one handle into a fresh buffer, as any loader that hands out tensors
 * must; with `scratch`, into that one buffer instead (the cost of reading alone, no allocation).
 */
async function rawRead(layout: Layout, scratch?: Buffer): Promise<number> {
  const handle = await open(layout.path, 'r');
  let total = 0;
  try {
    for (const { offset, length } of layout.tensors) {
      const buffer = scratch?.subarray(0, length) ?? Buffer.allocUnsafe(length);
      for (let filled = 0; filled < length;) {
        const { bytesRead } = await handle.read(buffer, filled, length - filled, offset + filled);
        if (bytesRead === 0) throw new Error(`${layout.path}: unexpected end of file`);
        filled += bytesRead;
      }
      total += buffer.byteLength;
    }
  } finally {
    await handle.close();
  }
  return total;
}

async function dcaeRead(layout: Layout, how: 'readBytes' | 'readTensor'): Promise<number> {
  const file = await openSafetensors(await fileSource(layout.path));
  let total = 0;
  try {
    for (const name of file.header.tensors.keys()) {
      total +=
        how === 'readBytes'
          ? (await file.readBytes(name)).byteLength
          : (await file.readTensor(name)).data.byteLength;
    }
  } finally {
    await file.close();
  }
  return total;
}

export const safetensorsRead: Scenario = {
  name: 'safetensors-read',
  title: 'safetensors read throughput: @dcae/core vs raw fs.read',
  description:
    'Reads every tensor of a large float32 safetensors file (generated once into the cache dir, then served ' +
    'from the page cache) with `openSafetensors(fileSource(path))` + `readBytes` / `readTensor`, and with raw ' +
    '`FileHandle.read` calls over the same byte ranges. Each run opens the file, parses the header (dcae) and ' +
    'reads all tensors into fresh buffers (plus a raw baseline that reuses one buffer). Throughput is MB (10^6 bytes) of tensor data per second; the ratios ' +
    'show what the validating reader costs over plain reads.',
  async run(context) {
    const [count, tensorMiB] = context.quick ? [8, 4] : [16, 64];
    const layout = await ensureFile(context.cacheDir, count, tensorMiB, (m) => context.log(m));

    // Both readers must agree before their speeds mean anything.
    const probe = await openSafetensors(await fileSource(layout.path));
    try {
      const first = layout.tensors[0]!;
      const tensor = await probe.readTensor(first.name);
      const handle = await open(layout.path, 'r');
      const raw = Buffer.alloc(64);
      await handle.read(raw, 0, 64, first.offset).finally(() => handle.close());
      const dcae = Buffer.from(tensor.data.buffer, tensor.data.byteOffset, 64);
      if (!raw.equals(dcae) || probe.fileOffset(first.name) !== first.offset) {
        throw new Error(`${layout.path}: @dcae/core and fs.read disagree about ${first.name}`);
      }
    } finally {
      await probe.close();
    }

    const work = { amount: layout.dataBytes / 1e6, unit: 'MB' } as const;
    const expectBytes = (n: number): void => {
      if (n !== layout.dataBytes) throw new Error(`read ${n} bytes, expected ${layout.dataBytes}`);
    };
    const scratch = Buffer.alloc(Math.max(...layout.tensors.map((t) => t.length)));
    const series = await context.compare([
      { name: 'raw fs.read', work, run: async () => expectBytes(await rawRead(layout)) },
      {
        name: 'raw fs.read, reused buffer',
        work,
        run: async () => expectBytes(await rawRead(layout, scratch)),
      },
      { name: 'dcae readBytes', work, run: async () => expectBytes(await dcaeRead(layout, 'readBytes')) },
      { name: 'dcae readTensor', work, run: async () => expectBytes(await dcaeRead(layout, 'readTensor')) },
    ]);
    return {
      params: {
        tensors: count,
        tensorMiB,
        fileMiB: count * tensorMiB,
        shape: `[${(tensorMiB * MiB) / (COLUMNS * 4)}, ${COLUMNS}]`,
      },
      series,
      ratios: [
        { of: 'dcae readBytes', to: 'raw fs.read' },
        { of: 'dcae readTensor', to: 'raw fs.read' },
      ],
      notes: [
        'The file is read from the page cache (it was just written or read); this measures the reader, not the disk.',
        '"reused buffer" reads every tensor into one preallocated buffer: its gap to "raw fs.read" is the cost of ' +
          'fresh memory (allocation and first-touch page faults), which every reader that returns tensors pays.',
      ],
    };
  },
};
