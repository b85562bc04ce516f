import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parseSafetensors } from '@dcae/core';
import { describe, expect, it } from 'vitest';
import {
  MODEL_TINY_FILES,
  MODEL_TINY_NAME,
  MODEL_TINY_PHOTOS,
  modelTinyFile,
  modelTinyPath,
} from '../src/index.js';

const ROOT = join(import.meta.dirname, '..');
/** The ceiling for the whole package (docs/training-loop.md, "The default model"). */
const MAX_PACKAGE_BYTES = 35e6;

describe('@dcae/model-tiny', () => {
  it('points at its own folder, which holds a diffusers AutoencoderDC f32c32 with fp16 weights', () => {
    expect(modelTinyPath()).toBe(ROOT);
    expect(modelTinyFile(MODEL_TINY_FILES.card)).toBe(join(ROOT, 'README.md'));
    const config = JSON.parse(readFileSync(modelTinyFile(MODEL_TINY_FILES.config), 'utf8'));
    expect(config).toMatchObject({ _class_name: 'AutoencoderDC', latent_channels: 32 });
    expect(config.encoder_block_out_channels).toHaveLength(6); // 5 downsamplings + patch embed: f32
    const weights = parseSafetensors(readFileSync(modelTinyFile(MODEL_TINY_FILES.weights)));
    const dtypes = new Set([...weights.header.tensors.values()].map((t) => t.dtype));
    // Floating-point tensors are fp16 (BatchNorm's num_batches_tracked, if any, stays an integer).
    expect([...dtypes].filter((d) => d.startsWith('F') || d.startsWith('BF'))).toEqual(['F16']);
    expect([...weights.header.tensors.keys()].some((k) => k.startsWith('encoder.'))).toBe(true);
    expect([...weights.header.tensors.keys()].some((k) => k.startsWith('decoder.'))).toBe(true);
    for (const photo of MODEL_TINY_PHOTOS) expect(existsSync(modelTinyFile(photo)), photo).toBe(true);
  });

  it('publishes the model folder, its card, notice and data manifest under 35 MB (npm pack --dry-run)', async () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
    expect(pkg.name).toBe(MODEL_TINY_NAME);
    expect(pkg.private).toBeUndefined();
    expect(pkg.sideEffects).toBe(false);
    const { stdout } = await promisify(execFile)('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
      cwd: ROOT,
      maxBuffer: 16 << 20,
    });
    const [report] = JSON.parse(stdout) as [
      { size: number; unpackedSize: number; files: { path: string; size: number }[] },
    ];
    const files = new Map(report.files.map((f) => [f.path, f.size]));
    for (const file of [...Object.values(MODEL_TINY_FILES), ...MODEL_TINY_PHOTOS, 'package.json'])
      expect(files.has(file), file).toBe(true);
    expect(files.get(MODEL_TINY_FILES.weights)).toBe(statSync(modelTinyFile(MODEL_TINY_FILES.weights)).size);
    // The built entry ships when it has been built (`pnpm build`); the sources and scripts never do.
    if (existsSync(join(ROOT, 'dist/index.js'))) expect(files.has('dist/index.js')).toBe(true);
    expect([...files.keys()].filter((f) => f.startsWith('src/') || f.startsWith('scripts/'))).toEqual([]);
    expect(report.unpackedSize).toBeLessThanOrEqual(MAX_PACKAGE_BYTES);
    expect(report.size).toBeLessThanOrEqual(MAX_PACKAGE_BYTES);
  });
});
