import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { bytesSource, createRng, DcaeError, hostTensor, openPth, serializePth } from '../src/index.js';
import type { DcaeErrorCode, PthFile } from '../src/index.js';
import { fileSource } from '../src/node/index.js';
import { contiguousStrides, PickleBuilder, zipStored } from '../src/torch/writer.js';

const FIXTURE = new URL('../../../fixtures/family2/taesana-randinit/', import.meta.url);

const open = (bytes: Uint8Array): Promise<PthFile> => openPth(bytesSource(bytes, 'test.pth'));

async function refused(bytes: Uint8Array, code: DcaeErrorCode): Promise<DcaeError> {
  const error = await open(bytes).then(
    async (file) => {
      // Layout problems of a tensor's record surface at its first read.
      for (const name of file.tensors.keys()) await file.readBytes(name);
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(DcaeError.is(error), `expected ${code}, got ${String(error)}`).toBe(true);
  expect((error as DcaeError).code).toBe(code);
  return error as DcaeError;
}

/** A state_dict archive of hand-made pickle and storage records. */
function archive(pickle: Uint8Array, storages: Record<string, Uint8Array> = {}): Uint8Array {
  return zipStored([
    { name: 'archive/data.pkl', data: pickle },
    ...Object.entries(storages).map(([key, data]) => ({ name: `archive/data/${key}`, data, align: 64 })),
  ]);
}

/** `{name: tensor}` with one storage per tensor, described by the caller. */
function stateDict(
  tensors: {
    name: string;
    cls?: string;
    key: string;
    numel: number;
    offset?: number;
    shape: number[];
    stride?: number[];
  }[],
): Uint8Array {
  const p = new PickleBuilder().proto().op(0x7d).mark();
  for (const t of tensors) {
    p.string(t.name).tensor(
      t.cls ?? 'FloatStorage',
      t.key,
      t.numel,
      t.offset ?? 0,
      t.shape,
      t.stride ?? contiguousStrides(t.shape),
    );
  }
  return p.op(0x75).op(0x2e).bytes();
}

const f32 = (...values: number[]): Uint8Array => new Uint8Array(Float32Array.from(values).buffer);

describe('.pth reader: files torch.save wrote', () => {
  it('reads the TAESANA encoder state_dict lazily: 69 F16 tensors, in pickle order, one range each', async () => {
    const file = await openPth(await fileSource(new URL('taesana_encoder.pth', FIXTURE).pathname));
    try {
      expect(file.archiveName).toBe('taesana_encoder');
      expect(file.tensors.size).toBe(69);
      expect([...file.tensors.keys()].slice(0, 3)).toEqual(['0.weight', '0.bias', '2.weight']);
      const info = file.tensorInfo('0.weight');
      expect(info).toMatchObject({
        dtype: 'F16',
        shape: [32, 3, 3, 3],
        stride: [27, 9, 3, 1],
        contiguous: true,
      });
      const tensor = await file.readTensor('0.weight');
      expect(tensor.dtype).toBe('float16');
      expect(tensor.data.length).toBe(864);
      // torch aligns every storage record's data to 64 bytes.
      expect((await file.fileOffset('0.weight')) % 64).toBe(0);
      const st = await file.asSafetensors();
      expect(st.header.tensors.size).toBe(69);
      const raw = await st.readBytes('4.conv.0.weight');
      const again = await file.source.read(st.fileOffset('4.conv.0.weight'), raw.length);
      expect(again).toEqual(raw);
      expect(() => file.tensorInfo('0.weigth')).toThrowError(/Close matches: "0.weight"/);
    } finally {
      await file.close();
    }
  });

  it('round-trips serializePth (F32, F16, I64, BOOL) and gathers strided views', async () => {
    const rng = createRng(3);
    const w = rng.randn([4, 3, 2, 2]);
    const bytes = serializePth({
      w,
      h: hostTensor('float16', [2], new Uint16Array([0x3c00, 0xc000])),
      n: hostTensor('int64', [], new BigInt64Array([7n])),
      b: hostTensor('bool', [3], Uint8Array.of(1, 0, 1)),
    });
    const file = await open(bytes);
    expect([...file.tensors.keys()]).toEqual(['w', 'h', 'n', 'b']);
    expect((await file.readTensor('w')).data).toEqual(w.data);
    expect(await file.readTensor('n')).toMatchObject({ dtype: 'int64', shape: [] });
    expect([...(await file.readTensor('b')).data]).toEqual([1, 0, 1]);

    // A transposed view (stride [1, 3]) of a 3×2 storage and a slice at an offset.
    const pickle = stateDict([
      { name: 't', key: '0', numel: 6, shape: [2, 3], stride: [1, 2] },
      { name: 's', key: '0', numel: 6, offset: 4, shape: [2] },
    ]);
    const views = await open(archive(pickle, { '0': f32(0, 1, 2, 3, 4, 5) }));
    expect(views.tensorInfo('t').contiguous).toBe(false);
    expect([...(await views.readTensor('t')).data]).toEqual([0, 2, 4, 1, 3, 5]);
    expect([...(await views.readTensor('s')).data]).toEqual([4, 5]);
    await expect(views.asSafetensors()).rejects.toThrowError(/strided view/);
  });
});

describe('.pth reader: hostile files are refused with a typed error', () => {
  it('a pickle calling os.system: the GLOBAL is refused before anything is called', async () => {
    const p = new PickleBuilder()
      .proto()
      .global('posix', 'system')
      .string('touch /tmp/pwned')
      .op(0x85)
      .op(0x52)
      .op(0x2e);
    const error = await refused(archive(p.bytes()), 'PICKLE_FORBIDDEN');
    expect(error.detail).toMatchObject({ opcode: 'GLOBAL', global: 'posix.system' });
    expect(error.message).toMatch(/posix\.system/);
    // The same through STACK_GLOBAL (protocol 4) and through builtins.eval.
    const stack = new PickleBuilder().proto().string('builtins').string('eval').op(0x93).op(0x2e);
    expect((await refused(archive(stack.bytes()), 'PICKLE_FORBIDDEN')).detail).toMatchObject({
      opcode: 'STACK_GLOBAL',
      global: 'builtins.eval',
    });
  });

  it('REDUCE of an allowed name that is not a callable, and object-building opcodes', async () => {
    const p = new PickleBuilder().proto().global('torch', 'HalfStorage').op(0x29).op(0x52).op(0x2e);
    expect((await refused(archive(p.bytes()), 'PICKLE_FORBIDDEN')).detail).toMatchObject({
      opcode: 'REDUCE',
      global: 'torch.HalfStorage',
    });
    for (const [op, name] of [
      [0x81, 'NEWOBJ'],
      [0x69, 'INST'],
      [0x6f, 'OBJ'],
      [0x82, 'EXT1'],
      [0x50, 'PERSID'],
    ] as const) {
      const bad = new PickleBuilder().proto().op(0x29).op(0x29).op(op).op(0x2e);
      expect((await refused(archive(bad.bytes()), 'PICKLE_FORBIDDEN')).detail).toMatchObject({
        opcode: name,
      });
    }
    // A persistent id that is not a storage, and BUILD on a non-dict.
    const pid = new PickleBuilder().proto().mark().string('module').string('x').tuple().op(0x51).op(0x2e);
    await refused(archive(pid.bytes()), 'PICKLE_FORBIDDEN');
    const build = new PickleBuilder().proto().op(0x29).op(0x7d).op(0x62).op(0x2e);
    await refused(archive(build.bytes()), 'PICKLE_FORBIDDEN');
  });

  it('a zip bomb: compressed entries, and entries sharing bytes (non-recursive bomb)', async () => {
    const good = serializePth({ w: hostTensor('float32', [2], Float32Array.of(1, 2)) });
    const compressed = good.slice();
    // Set the method of the first central directory entry to deflate.
    const cd = findCentral(compressed, 0);
    new DataView(compressed.buffer).setUint16(cd + 10, 8, true);
    expect((await refused(compressed, 'ZIP_COMPRESSED')).message).toMatch(/deflate/);

    // Two central entries whose data is the same bytes.
    const data = f32(1, 2, 3, 4);
    const pickle = stateDict([
      { name: 'a', key: '0', numel: 4, shape: [4] },
      { name: 'b', key: '1', numel: 4, shape: [4] },
    ]);
    const bytes = archive(pickle, { '0': data, '1': data });
    const second = findCentral(bytes, 2);
    const first = findCentral(bytes, 1);
    const view = new DataView(bytes.buffer);
    view.setUint32(second + 42, view.getUint32(first + 42, true), true);
    await refused(bytes, 'ZIP_OVERLAP');
  });

  it('storages: offsets past the end, views larger than their storage, records of the wrong size, missing records', async () => {
    const data = { '0': f32(1, 2, 3, 4) };
    const outOfRange = stateDict([{ name: 'w', key: '0', numel: 4, offset: 3, shape: [2] }]);
    expect((await refused(archive(outOfRange, data), 'PTH_STORAGE')).message).toMatch(/outside its storage/);
    const bigView = stateDict([{ name: 'w', key: '0', numel: 4, shape: [2, 2], stride: [3, 1] }]);
    await refused(archive(bigView, data), 'PTH_STORAGE');
    const huge = stateDict([{ name: 'w', key: '0', numel: 4, shape: [2 ** 26, 2 ** 26, 2 ** 26] }]);
    await refused(archive(huge, data), 'PTH_STORAGE');
    const liar = stateDict([{ name: 'w', key: '0', numel: 8, shape: [8] }]);
    expect((await refused(archive(liar, data), 'PTH_STORAGE')).message).toMatch(/holds 16 bytes/);
    const missing = stateDict([{ name: 'w', key: '7', numel: 4, shape: [4] }]);
    await refused(archive(missing, data), 'PTH_STORAGE');
    const twice = stateDict([
      { name: 'a', key: '0', numel: 4, shape: [4] },
      { name: 'b', key: '0', cls: 'HalfStorage', numel: 8, shape: [8] },
    ]);
    await refused(archive(twice, data), 'PTH_STORAGE');
  });

  it('a truncated archive: every cut is refused, never half-read', async () => {
    const bytes = serializePth({ w: hostTensor('float32', [3], Float32Array.of(1, 2, 3)) });
    const codes = new Set<string>();
    for (let cut = 0; cut < bytes.length; cut++) {
      const error = await open(bytes.subarray(0, cut)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(DcaeError.is(error), `cut at ${cut}: ${String(error)}`).toBe(true);
      codes.add((error as DcaeError).code);
    }
    expect(codes).toContain('ZIP_TRUNCATED');
    const fixture = new Uint8Array(await readFile(new URL('taesana_decoder.pth', FIXTURE)));
    await refused(fixture.subarray(0, fixture.length >> 1), 'ZIP_TRUNCATED');
    // Data cut from the middle: the directory no longer sits where the end record says.
    const middle = new Uint8Array(fixture.length - 4096);
    middle.set(fixture.subarray(0, 100_000));
    middle.set(fixture.subarray(100_000 + 4096), 100_000);
    const error = await open(middle).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(DcaeError.is(error)).toBe(true);
  });

  it('legacy torch.save files, non-zip files, and archives that are no state_dict', async () => {
    expect(
      (await refused(Uint8Array.of(0x80, 2, 0x8a, 0x0a, ...new Array(30).fill(0)), 'PTH_NOT_ZIP')).message,
    ).toMatch(/legacy/);
    await refused(new TextEncoder().encode('x'.repeat(100)), 'PTH_NOT_ZIP');
    await refused(zipStored([{ name: 'hello.txt', data: f32(1) }]), 'PTH_NOT_STATE_DICT');
    const list = new PickleBuilder().proto().op(0x5d).op(0x2e);
    await refused(archive(list.bytes()), 'PTH_NOT_STATE_DICT');
    const noTensors = new PickleBuilder().proto().op(0x7d).string('epoch').int(3).op(0x73).op(0x2e);
    expect((await refused(archive(noTensors.bytes()), 'PTH_NOT_STATE_DICT')).message).toMatch(/"epoch"/);
    const noStop = new PickleBuilder().proto().op(0x7d);
    await refused(archive(noStop.bytes()), 'PICKLE_CORRUPT');
    const badGet = new PickleBuilder().proto().op(0x68, 9).op(0x2e);
    await refused(archive(badGet.bytes()), 'PICKLE_CORRUPT');
  });

  it('random corruption of a valid file only ever yields a DcaeError', async () => {
    const rng = createRng(5);
    const bytes = serializePth({
      a: rng.randn([2, 3]),
      b: hostTensor('float16', [1], Uint16Array.of(0x3c00)),
    });
    for (let i = 0; i < 400; i++) {
      const copy = bytes.slice();
      const flips = 1 + (rng.nextUint32() % 4);
      for (let f = 0; f < flips; f++) copy[rng.nextUint32() % copy.length] = rng.nextUint32() & 0xff;
      try {
        const file = await open(copy);
        for (const name of file.tensors.keys())
          await file.readTensor(name).catch((e: unknown) => {
            if (!DcaeError.is(e)) throw e;
          });
      } catch (error) {
        if (!DcaeError.is(error)) throw error;
      }
    }
  });
});

/** Offset of the `index`-th central directory entry. */
function findCentral(bytes: Uint8Array, index: number): number {
  const view = new DataView(bytes.buffer, bytes.byteOffset);
  let seen = 0;
  for (let at = 0; at + 4 <= bytes.length; at++) {
    if (view.getUint32(at, true) === 0x02014b50 && seen++ === index) return at;
  }
  throw new Error('no such central entry');
}
