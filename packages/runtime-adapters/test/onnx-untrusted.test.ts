/**
 * T5: untrusted ONNX models (docs/reliability.md §9 B1–B15) against both adapters and loadOnnxFile().
 * Each crafted model is rejected by dcae's pre-scan with its code before onnxruntime sees it (an
 * onnxruntime error would surface as SESSION_FAILED); for the rows where onnxruntime-node rejects
 * too, the same model goes to onnxruntime-node directly to show it does.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostTensor } from '@dcae/core';
import { DcaeError } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { NodeRuntime } from '../src/node/index.js';
import { createNodeRuntime, inspectOnnxFile, loadOnnxFile } from '../src/node/index.js';
import type { WebRuntime } from '../src/web/index.js';
import { createWebRuntime } from '../src/web/index.js';
import { craft, external, WEIGHTS, weightBytes } from './onnx-craft.js';

const root = await mkdtemp(join(tmpdir(), 'dcae-untrusted-'));
let node: NodeRuntime;
let web: WebRuntime;
beforeAll(async () => {
  node = createNodeRuntime({ threads: 1 });
  web = await createWebRuntime({ threads: 1 });
});
afterAll(async () => {
  await node.dispose();
  await web.dispose();
  await rm(root, { recursive: true, force: true });
});

let dirs = 0;
/** A fresh folder `<root>/<n>/model/` holding `model.onnx` and `files`, with `secret.bin` beside `model/`. */
async function modelFolder(model: Uint8Array, files: Record<string, Uint8Array> = {}): Promise<string> {
  const dir = join(root, String(dirs++), 'model');
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, '..', 'secret.bin'), weightBytes());
  await writeFile(join(dir, 'model.onnx'), model);
  for (const [name, bytes] of Object.entries(files)) await writeFile(join(dir, name), bytes);
  return dir;
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    expect(DcaeError.is(error), String(error)).toBe(true);
    return (error as DcaeError).code;
  }
  return 'resolved';
}

/** onnxruntime-node on its own: the error message, or 'accepted'. */
async function ortVerdict(model: string | Uint8Array): Promise<string> {
  try {
    const session = await ort.InferenceSession.create(model as Uint8Array, { logSeverityLevel: 4 });
    await session.release();
    return 'accepted';
  } catch (error) {
    return (error as Error).message;
  }
}

const x: HostTensor<'float32'> = { dtype: 'float32', shape: [4], data: Float32Array.of(1, 2, 3, 4) };

describe('a valid crafted model', () => {
  it('runs from bytes with external data bytes, and from its file with loadOnnxFile', async () => {
    const dir = await modelFolder(external('w.bin'), { 'w.bin': weightBytes() });
    const fromBytes = await node.createSession(external('w.bin'), {
      externalData: [{ location: 'w.bin', data: weightBytes() }],
    });
    expect([...(await fromBytes.run({ X: x })).Y!.data]).toEqual([11, 22, 33, 44]);
    await fromBytes.dispose();
    const fromFile = await loadOnnxFile(node, join(dir, 'model.onnx'));
    expect([...(await fromFile.run({ X: x })).Y!.data]).toEqual([11, 22, 33, 44]);
    await fromFile.dispose();
    expect(await ortVerdict(join(dir, 'model.onnx'))).toBe('accepted');
  });
});

describe('B1 MODEL_TOO_LARGE', () => {
  it('refuses a file over 2 GiB from its size, without reading it', async () => {
    const dir = join(root, 'huge');
    await mkdir(dir);
    const path = join(dir, 'model.onnx');
    await writeFile(path, '');
    await truncate(path, 2 ** 31); // sparse: no disk space or memory used
    const started = Date.now();
    expect(await codeOf(loadOnnxFile(node, path))).toBe('MODEL_TOO_LARGE');
    expect(Date.now() - started).toBeLessThan(1000);
  });

  it('refuses in the web adapter a model whose external data would pass 4 GB', async () => {
    const model = craft({
      weight: {
        dims: [1280, 1024, 1024],
        external: [
          ['location', 'w.bin'],
          ['offset', '0'],
          ['length', String(5 * 2 ** 30)],
        ],
      },
    });
    expect(
      await codeOf(web.createSession(model, { externalData: [{ location: 'w.bin', data: 'w.bin' }] })),
    ).toBe('MODEL_TOO_LARGE');
  });
});

describe('B2 PROTOBUF_PARSE', () => {
  it.each([
    ['truncated', external('w.bin').subarray(0, 40)],
    ['garbage', Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff)],
  ])('refuses a %s model; onnxruntime-node refuses it too', async (_, bytes) => {
    expect(await codeOf(node.createSession(bytes))).toBe('PROTOBUF_PARSE');
    expect(await codeOf(web.createSession(bytes))).toBe('PROTOBUF_PARSE');
    expect(await ortVerdict(bytes)).toMatch(/protobuf parsing failed/i);
  });
});

describe('B3–B5, B7 external data paths', () => {
  it.each([
    ['B3', '../secret.bin', /escapes/i],
    ['B4', 'sub/../../secret.bin', /escapes/i],
    ['B5', 'ABSOLUTE', /absolute/i],
    ['B7', '*/_ORT_MEM_ADDR_/*', /in-memory address marker/i],
  ])(
    '%s: refuses location %j from a file and from bytes; onnxruntime-node refuses it too',
    async (_, loc, ortSays) => {
      const secret = join(root, 'secret-abs.bin');
      await writeFile(secret, weightBytes());
      const location = loc === 'ABSOLUTE' ? secret : loc;
      const model = external(location, loc.includes('_ORT_MEM_ADDR_') ? '4096' : '0');
      const dir = await modelFolder(model);
      await mkdir(join(dir, 'sub'));
      expect(await codeOf(loadOnnxFile(node, join(dir, 'model.onnx')))).toBe('EXTERNAL_DATA_PATH');
      // An app that maps the model's own locations to files (the case ORT-web reads the secret in E5).
      const mapped = [{ location, data: join(dir, location) }];
      expect(await codeOf(node.createSession(model, { externalData: mapped }))).toBe('EXTERNAL_DATA_PATH');
      expect(
        await codeOf(web.createSession(model, { externalData: [{ location, data: weightBytes() }] })),
      ).toBe('EXTERNAL_DATA_PATH');
      expect(await ortVerdict(join(dir, 'model.onnx'))).toMatch(ortSays);
    },
  );

  it('B5: refuses backslash, drive and UNC locations', async () => {
    for (const location of ['C:\\w.bin', '\\\\host\\share\\w.bin', 'sub\\w.bin']) {
      const dir = await modelFolder(external(location));
      expect(await codeOf(loadOnnxFile(node, join(dir, 'model.onnx'))), location).toBe('EXTERNAL_DATA_PATH');
    }
  });

  it('B8: refuses a duplicate location key', async () => {
    const model = craft({
      weight: {
        dims: [4],
        external: [
          ['location', 'w.bin'],
          ['length', '16'],
          ['location', '../secret.bin'],
        ],
      },
    });
    const dir = await modelFolder(model, { 'w.bin': weightBytes() });
    expect(await codeOf(loadOnnxFile(node, join(dir, 'model.onnx')))).toBe('EXTERNAL_DATA_PATH');
  });
});

describe('B6 symlinks', () => {
  it('refuses a symlink in the model folder that points outside it; onnxruntime-node refuses it too', async () => {
    const dir = await modelFolder(external('link.bin'));
    await symlink('../secret.bin', join(dir, 'link.bin'));
    expect(await codeOf(loadOnnxFile(node, join(dir, 'model.onnx')))).toBe('EXTERNAL_DATA_PATH');
    expect(
      await codeOf(
        node.createSession(external('link.bin'), {
          externalData: [{ location: 'link.bin', data: join(dir, 'link.bin') }],
        }),
      ),
    ).toBe('EXTERNAL_DATA_PATH');
    expect(await ortVerdict(join(dir, 'model.onnx'))).toMatch(/escapes/i);
  });

  it('accepts the Hugging Face cache layout: snapshots/<rev>/<file> → ../../blobs/<hash>', async () => {
    const repo = join(root, 'hub', 'models--org--name');
    await mkdir(join(repo, 'blobs'), { recursive: true });
    await mkdir(join(repo, 'snapshots', 'abc123', 'onnx'), { recursive: true });
    await writeFile(join(repo, 'blobs', 'aaaa'), external('w.bin'));
    await writeFile(join(repo, 'blobs', 'bbbb'), weightBytes());
    const snapshot = join(repo, 'snapshots', 'abc123', 'onnx');
    await symlink('../../../blobs/aaaa', join(snapshot, 'model.onnx'));
    await symlink('../../../blobs/bbbb', join(snapshot, 'w.bin'));
    const session = await loadOnnxFile(node, join(snapshot, 'model.onnx'));
    expect([...(await session.run({ X: x })).Y!.data]).toEqual([11, 22, 33, 44]);
    await session.dispose();
    // A blob of another repo is still outside.
    const other = join(root, 'hub', 'models--other--repo', 'blobs');
    await mkdir(other, { recursive: true });
    await writeFile(join(other, 'cccc'), weightBytes());
    await rm(join(snapshot, 'w.bin'));
    await symlink(join(other, 'cccc'), join(snapshot, 'w.bin'));
    expect(await codeOf(loadOnnxFile(node, join(snapshot, 'model.onnx')))).toBe('EXTERNAL_DATA_PATH');
  });
});

describe('B9 EXTERNAL_DATA_RANGE', () => {
  it.each([
    ['an offset past the end of the file', external('w.bin', '4096'), /out of bounds|can not be read/i],
    [
      'a length that is not shape × dtype size',
      external('w.bin', '0', '12'),
      /size mismatch|does not match/i,
    ],
  ])('refuses %s; onnxruntime-node refuses it too', async (_, model, ortSays) => {
    const dir = await modelFolder(model, { 'w.bin': weightBytes() });
    expect(await codeOf(loadOnnxFile(node, join(dir, 'model.onnx')))).toBe('EXTERNAL_DATA_RANGE');
    expect(
      await codeOf(node.createSession(model, { externalData: [{ location: 'w.bin', data: weightBytes() }] })),
    ).toBe('EXTERNAL_DATA_RANGE');
    expect(await ortVerdict(join(dir, 'model.onnx'))).toMatch(ortSays);
  });
});

describe('B10 external data from bytes with no files given', () => {
  it('refuses it in both adapters instead of letting onnxruntime look in its working directory', async () => {
    expect(await codeOf(node.createSession(external('w.bin')))).toBe('EXTERNAL_DATA_PATH');
    expect(await codeOf(web.createSession(external('w.bin')))).toBe('EXTERNAL_DATA_PATH');
  });
});

describe('B11–B13', () => {
  it('B11: refuses raw_data of the wrong size; onnxruntime-node refuses it too', async () => {
    const model = craft({ weight: { dims: [4], raw: new Uint8Array(3) } });
    expect(await codeOf(node.createSession(model))).toBe('TENSOR_DATA_SIZE');
    expect(await codeOf(web.createSession(model))).toBe('TENSOR_DATA_SIZE');
    expect(await ortVerdict(model)).toMatch(/raw_data size/i);
  });

  it.each([
    ['overflowing', [2n ** 32n, 2n ** 32n], /overflow|incompatible dimensions/i],
    ['negative', [-1], /out of bounds|negative|invalid/i],
  ])('B12: refuses %s dims; onnxruntime-node refuses them too', async (_, dims, ortSays) => {
    const model = craft({ weight: { dims, raw: new Uint8Array(16) } });
    expect(await codeOf(node.createSession(model))).toBe('DIM_LIMIT');
    expect(await codeOf(web.createSession(model))).toBe('DIM_LIMIT');
    expect(await ortVerdict(model)).toMatch(ortSays);
  });

  it.each([
    ['ArrayFeatureExtractor', 'ai.onnx.ml'],
    ['FusedMatMul', 'com.microsoft'],
    ['Evil', 'com.example'],
  ])('B13: refuses op %s from %s', async (op, domain) => {
    const model = craft({ weight: { dims: [4], raw: weightBytes() }, op, domain });
    const error = await node.createSession(model).catch((e: unknown) => e as DcaeError);
    expect(error).toMatchObject({
      code: 'UNSUPPORTED_OP',
      message: expect.stringContaining(`node 0 "node0"`),
    });
    expect(await codeOf(web.createSession(model))).toBe('UNSUPPORTED_OP');
  });
});

describe('B14 INPUT_SHAPE_LIMIT', () => {
  const identity = (() => {
    const g = new GraphBuilder({ name: 'identity' });
    g.output(g.root.identity(g.input('x', 'float32', ['n', 'm'])), 'y', ['n', 'm']);
    return serializeModel(g.build());
  })();

  it.each(['node', 'web'] as const)(
    '%s: refuses an input over the element limit before the run',
    async (which) => {
      const runtime = which === 'node' ? node : web;
      // 10^6 × 10^6 latents: refused from the shape alone, whatever the data.
      const session = await runtime.createSession(identity);
      const huge: HostTensor<'float32'> = { dtype: 'float32', shape: [1e6, 1e6], data: new Float32Array(4) };
      expect(await codeOf(session.run({ x: huge }))).toBe('INPUT_SHAPE_LIMIT');
      await session.dispose();
      const small = await runtime.createSession(identity, { maxInputElements: 6 });
      const ok: HostTensor<'float32'> = { dtype: 'float32', shape: [2, 3], data: new Float32Array(6) };
      expect((await small.run({ x: ok })).y!.shape).toEqual([2, 3]);
      const over: HostTensor<'float32'> = { dtype: 'float32', shape: [7, 1], data: new Float32Array(7) };
      expect(await codeOf(small.run({ x: over }))).toBe('INPUT_SHAPE_LIMIT');
      await small.dispose();
    },
  );
});

describe('B15 CONFIG_NOT_ALLOWED', () => {
  it.each([
    { optimizedModelFilePath: 'opt.onnx' },
    { enableProfiling: true, profileFilePrefix: 'prof' },
    { extra: { session: { custom_op_library: '/tmp/evil.so' } } },
    { registerCustomOpsLibrary: '/tmp/evil.so' },
  ])('refuses session options %j and writes nothing', async (options) => {
    const model = craft({ weight: { dims: [4], raw: weightBytes() } });
    const cwd = await readdir(process.cwd());
    for (const runtime of [node, web]) {
      const error = await runtime
        .createSession(model, options as never)
        .catch((e: unknown) => e as DcaeError);
      expect(error).toMatchObject({
        code: 'CONFIG_NOT_ALLOWED',
        message: expect.stringMatching(/options\.\w+ is not allowed/),
      });
    }
    expect(await readdir(process.cwd())).toEqual(cwd);
    expect(existsSync('opt.onnx')).toBe(false);
  });

  it('refuses unknown runtime settings and loadOnnxFile options', async () => {
    expect(
      await codeOf(Promise.resolve().then(() => createNodeRuntime({ optimizedModelFilePath: 'x' } as never))),
    ).toBe('CONFIG_NOT_ALLOWED');
    expect(await codeOf(createWebRuntime({ enableProfiling: true } as never))).toBe('CONFIG_NOT_ALLOWED');
    expect(
      await codeOf(loadOnnxFile(node, join(root, 'none.onnx'), { optimizedModelFilePath: 'x' } as never)),
    ).toBe('CONFIG_NOT_ALLOWED');
  });
});

describe('inspectOnnxFile', () => {
  it('reports the model and its external files, resolved inside the folder', async () => {
    const dir = await modelFolder(external('w.bin'), { 'w.bin': weightBytes() });
    const file = await inspectOnnxFile(join(dir, 'model.onnx'));
    expect(file.inspection.inputs).toEqual([{ name: 'X', dtype: 'float32', dims: [4] }]);
    expect(file.externalFiles).toEqual([{ location: 'w.bin', size: WEIGHTS.byteLength }]);
    expect(file.externalData[0]!.data).toMatch(/model[\\/]w\.bin$/);
  });
});
