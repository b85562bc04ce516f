/**
 * `dcae info --model <file.onnx>`: a third-party ONNX model is checked (docs/reliability.md §9 B) before
 * it is described, with the `onnx` exit code and a hint when a check fails.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import { describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../src/errors.js';
import { runCli, tempDir } from './helpers.js';

/** y = Conv(x, weight) + bias, weight in `location` (external), bias inline. */
function convModel(location: string): Uint8Array {
  const g = new GraphBuilder({ name: 'conv' });
  const x = g.input('x', 'float32', [1, 2, 'h', 'w']);
  const weight = g.initializer('weight', {
    kind: 'external',
    dtype: 'float32',
    shape: [3, 2, 1, 1],
    location,
    offset: 8,
    length: 24,
  });
  const bias = g.initializer('bias', {
    kind: 'inline',
    tensor: { dtype: 'float32', shape: [3], data: Float32Array.of(1, 2, 3) },
  });
  g.output(g.root.add(g.root.conv(x, weight), g.root.reshape(bias, [1, 3, 1, 1])), 'y', [1, 3, 'h', 'w']);
  return serializeModel(g.build());
}

async function folderWith(model: Uint8Array, weightsBytes = 32): Promise<string> {
  const dir = join(await tempDir(), 'model');
  await mkdir(dir);
  await writeFile(join(dir, 'model.onnx'), model);
  await writeFile(join(dir, 'w.bin'), new Uint8Array(weightsBytes));
  return dir;
}

describe('dcae info --model <file.onnx>', () => {
  it('describes a model that passes the checks, as text and as JSON', async () => {
    const dir = await folderWith(convModel('w.bin'));
    const path = join(dir, 'model.onnx');
    const text = await runCli(['info', '--model', path]);
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain('input      x: float32 [1, 2, h, w]');
    expect(text.stdout).toContain('output     y: float32 [1, 3, h, w]');
    expect(text.stdout).toContain('external   w.bin (32 bytes)');
    expect(text.stdout).toMatch(/opsets +ai\.onnx 18/);

    const json = await runCli(['info', '--model', path, '--json']);
    expect(json.code, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as Record<string, unknown>;
    expect(report).toMatchObject({
      command: 'info',
      format: 'onnx',
      opsets: [{ domain: '', version: 18 }],
      inputs: [{ name: 'x', dtype: 'float32', dims: [1, 2, 'h', 'w'] }],
      // bias (3 float32) and the reshape target (4 int64) inline; the weight external
      initializerBytes: { inline: 3 * 4 + 4 * 8, external: 24 },
      externalFiles: [{ location: 'w.bin', size: 32 }],
    });
    const ops = report.opCounts as Record<string, number>;
    expect(ops.Conv).toBe(1);
    expect(ops.Add).toBe(1);
  });

  it.each([
    ['EXTERNAL_DATA_PATH', () => folderWith(convModel('../w.bin'))],
    ['EXTERNAL_DATA_RANGE', () => folderWith(convModel('w.bin'), 20)],
    ['PROTOBUF_PARSE', () => folderWith(convModel('w.bin').subarray(0, 60))],
  ])('fails with %s and the onnx exit code', async (code, make) => {
    const dir = await make();
    const r = await runCli(['info', '--model', join(dir, 'model.onnx')]);
    expect(r.code, r.stderr).toBe(EXIT_CODES.onnx);
    expect(r.stderr).toMatch(new RegExp(`^error\\[${code}\\]: .*model\\.onnx`, 'm'));
    expect(r.stderr).toMatch(/^hint: .+/m);
    expect(r.stdout).toBe('');
  });

  it('fails with FILE_NOT_FOUND for a missing file', async () => {
    const r = await runCli(['info', '--model', join(await tempDir(), 'none.onnx')]);
    expect(r.code).toBe(EXIT_CODES.io);
    expect(r.stderr).toMatch(/^error\[FILE_NOT_FOUND\]/m);
  });
});
