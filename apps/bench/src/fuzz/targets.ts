import { readFile } from 'node:fs/promises';
import {
  bytesSource,
  createRng,
  entryDataOffset,
  hostTensor,
  openPth,
  readZipDirectory,
  parseJsonConfig,
  parseSafetensors,
  serializePth,
  serializeSafetensors,
} from '@dcae/core';
import { checkModel, GraphBuilder, serializeModel } from '@dcae/core/onnx';
import { parseDcAeConfig, readImageHeader } from '@dcae/autoencoder';
import type { RgbImage } from '@dcae/autoencoder';
import { encodeImage } from '@dcae/autoencoder/node';
import type { Corpus } from './mutate.js';

/** One parser under fuzz: its seed corpus, and a run that may only return or throw a DcaeError. */
export interface FuzzTarget {
  readonly name: FuzzTargetName;
  /** `fixtures` is the repository's fixtures/ folder (for the golden configs and safetensors). */
  corpus(fixtures: URL): Promise<Corpus>;
  /** May return a promise (the .pth reader is asynchronous); the child awaits it. */
  run(bytes: Uint8Array): void | Promise<void>;
}

export const FUZZ_TARGET_NAMES = ['safetensors', 'pth', 'image', 'onnx', 'config'] as const;
export type FuzzTargetName = (typeof FUZZ_TARGET_NAMES)[number];

const encoder = new TextEncoder();
const tokens = (...values: string[]): Uint8Array[] => values.map((v) => encoder.encode(v));

/** JSON fragments that sit on the edge of what the readers accept. */
const JSON_TOKENS = tokens(
  '{',
  '}',
  '[',
  ']',
  ',',
  ':',
  '"',
  '\\',
  'null',
  'true',
  '-1',
  '0',
  '1e0',
  '1.5',
  '-0',
  '9007199254740993',
  '1e999',
  '18446744073709551616',
  '"__proto__"',
  '"__metadata__"',
  '"constructor"',
  '{}',
  '[]',
  '"\\u0000"',
  '"\\ud800"',
  '\u00ef\u00bb\u00bf',
  '[[[[[[[[[[[[',
);

const safetensors: FuzzTarget = {
  name: 'safetensors',
  async corpus(fixtures) {
    const rng = createRng(7);
    const small = serializeSafetensors(
      {
        'encoder.conv_in.weight': rng.randn([2, 3, 1, 1]),
        'encoder.conv_in.bias': hostTensor('float16', [2], new Uint16Array([0x3c00, 0xc000])),
        scalar: hostTensor('int64', [], new BigInt64Array([5n])),
        empty: hostTensor('float32', [0, 4], new Float32Array(0)),
      },
      { format: 'pt' },
    );
    const bf16 = serializeSafetensors({ w: hostTensor('bfloat16', [3], new Uint16Array([1, 2, 3])) });
    const fixture = new Uint8Array(await readFile(new URL('dcae/tiny-sana-f32/input.safetensors', fixtures)));
    return {
      seeds: [small, bf16, fixture],
      dictionary: [
        ...JSON_TOKENS,
        ...tokens('"F32"', '"BF16"', '"F4"', '"data_offsets"', '"shape"', '"dtype"'),
      ],
    };
  },
  run(bytes) {
    const file = parseSafetensors(bytes, { name: 'fuzz' });
    for (const name of file.header.tensors.keys()) file.tensor(name);
  },
};

/** The .pth reader (docs/pth-reader.md): zip directory, restricted unpickler, storage views, reads. */
const pth: FuzzTarget = {
  name: 'pth',
  async corpus(fixtures) {
    const rng = createRng(17);
    const small = serializePth({
      '0.weight': rng.randn([2, 3, 1, 1]),
      '0.bias': hostTensor('float16', [2], new Uint16Array([0x3c00, 0xc000])),
      steps: hostTensor('int64', [], new BigInt64Array([5n])),
      empty: hostTensor('float32', [0, 4], new Float32Array(0)),
    });
    const one = serializePth(
      { w: hostTensor('bfloat16', [3], new Uint16Array([1, 2, 3])) },
      'taesana_encoder',
    );
    // The data.pkl torch 1.13 wrote for the TAESANA encoder (the whole file is over the 1 MiB input
    // limit) goes into the dictionary: splices put the real opcode stream into the inputs.
    const fixture = bytesSource(
      new Uint8Array(await readFile(new URL('family2/taesana-randinit/taesana_encoder.pth', fixtures))),
      'taesana_encoder.pth',
    );
    const pkl = (await readZipDirectory(fixture)).find((e) => e.name.endsWith('/data.pkl'))!;
    const realPickle = await fixture.read(await entryDataOffset(fixture, pkl), pkl.size);
    return {
      seeds: [small, one],
      dictionary: [
        realPickle,
        ...tokens(
          'PK\x03\x04',
          'PK\x01\x02',
          'PK\x05\x06',
          'PK\x06\x06',
          'PK\x06\x07',
          'data.pkl',
          'archive/data/',
        ),
        ...tokens(
          'ctorch\nHalfStorage\n',
          'cposix\nsystem\n',
          'ccollections\nOrderedDict\n',
          'ctorch._utils\n_rebuild_tensor_v2\n',
        ),
        Uint8Array.of(0xff, 0xff, 0xff, 0xff),
        Uint8Array.of(0x80, 0x02),
        Uint8Array.of(0x28), // MARK
        Uint8Array.of(0x52), // REDUCE
        Uint8Array.of(0x51), // BINPERSID
        Uint8Array.of(0x62), // BUILD
        Uint8Array.of(0x6a, 0xff, 0xff, 0xff, 0x7f), // LONG_BINGET
        Uint8Array.of(0x8a, 0x08, 0, 0, 0, 0, 0, 0, 0, 0x80), // LONG1 -2^63
      ],
    };
  },
  async run(bytes) {
    const file = await openPth(bytesSource(bytes, 'fuzz'));
    for (const name of file.tensors.keys()) {
      try {
        await file.readTensor(name);
      } catch (error) {
        // A dtype dcae does not decode (I16, I8) is a typed refusal like any other.
        if (!(error instanceof Error && 'code' in error && error.code === 'DTYPE_UNSUPPORTED')) throw error;
      }
    }
  },
};

const image: FuzzTarget = {
  name: 'image',
  async corpus() {
    const rng = createRng(11);
    const pixels = (width: number, height: number): RgbImage => ({
      width,
      height,
      channels: 3,
      data: Uint8Array.from({ length: width * height * 3 }, () => rng.nextUint32() & 0xff),
    });
    const seeds: Uint8Array[] = [];
    for (const format of ['png', 'jpeg', 'webp'] as const) {
      seeds.push(await encodeImage(pixels(5, 3), format), await encodeImage(pixels(1, 17), format));
    }
    return {
      seeds,
      dictionary: tokens(
        'IHDR',
        'IDAT',
        'IEND',
        'VP8 ',
        'VP8L',
        'VP8X',
        'RIFF',
        'WEBP',
        '\xff\xc0',
        '\xff\xd8',
      ),
    };
  },
  run(bytes) {
    readImageHeader(bytes, undefined, 'fuzz');
  },
};

const onnx: FuzzTarget = {
  name: 'onnx',
  async corpus() {
    const rng = createRng(13);
    const g = new GraphBuilder({
      name: 'fuzz',
      params: (_key, shape) => ({ kind: 'inline', tensor: rng.randn(shape) }),
    });
    const x = g.input('x', 'float32', ['batch', 3, 4, 4]);
    const conv = g.root.child('conv');
    const y = conv.conv(x, conv.param('weight', [2, 3, 1, 1]), conv.param('bias', [2]));
    g.output(y, 'y', ['batch', 2, 4, 4]);
    const external = new GraphBuilder({
      name: 'external',
      params: (_key, shape) => ({
        kind: 'external',
        dtype: 'float32',
        shape,
        location: 'weights.safetensors',
        offset: 128,
        length: 4 * shape.reduce((a, b) => a * b, 1),
      }),
    });
    const a = external.input('a', 'float32', [4]);
    external.output(external.root.op('Add', [a, external.root.param('b', [4])])[0]!, 'sum', [4]);
    return {
      seeds: [serializeModel(g.build()), serializeModel(external.build())],
      // Varints at their limits and the tags of common fields.
      dictionary: [
        Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0x0f),
        Uint8Array.of(0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01),
        Uint8Array.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01),
        Uint8Array.of(0x00),
        Uint8Array.of(0x7f),
        ...tokens('..', '/etc/passwd', '_ORT_MEM_ADDR_', 'location'),
      ],
    };
  },
  run(bytes) {
    checkModel(bytes, { externalData: [{ location: 'weights.safetensors', size: 4096 }] });
  },
};

const config: FuzzTarget = {
  name: 'config',
  async corpus(fixtures) {
    const seeds = await Promise.all(
      ['tiny-sana-f32', 'tiny-in-f32'].map(
        async (name) => new Uint8Array(await readFile(new URL(`dcae/${name}/config.json`, fixtures))),
      ),
    );
    return {
      seeds,
      dictionary: [
        ...JSON_TOKENS,
        ...tokens('"ResBlock"', '"EViT_GLU"', '"rms2d"', '"trms2d"', '"silu"', '"AutoencoderDC"'),
      ],
    };
  },
  run(bytes) {
    parseDcAeConfig(parseJsonConfig(bytes, { source: 'fuzz' }), { source: 'fuzz' });
  },
};

export const FUZZ_TARGETS: Readonly<Record<FuzzTargetName, FuzzTarget>> = {
  safetensors,
  pth,
  image,
  onnx,
  config,
};
