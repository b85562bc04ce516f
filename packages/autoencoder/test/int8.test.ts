import { readdirSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import { createNodeRuntime, profileModel } from '@dcae/runtime-adapters/node';
import { createWebRuntime } from '@dcae/runtime-adapters/web';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { QuantizationSpec } from '../src/index.js';
import {
  activationParams,
  calibrateAutoencoder,
  DEFAULT_KEEP_FLOAT,
  formatQuantizationSpec,
  imageToTensor,
  memoryModelFiles,
  parseQuantizationSpec,
  quantizeWeight,
} from '../src/index.js';
import { directoryModelFiles, loadAutoencoder } from '../src/node/index.js';
import { fixturePath, maxAbs, maxAbsDiff } from './helpers.js';

/**
 * int8 (calibrated QDQ graphs) against fp32 on the golden fixtures' random-weight tiny models,
 * calibrated on the repository's calibration photos and measured on the held-out ones.
 *
 * Bounds (asserted per held-out photo), measured ×~2 for headroom:
 * - latents: max |z8 − z32| ≤ 0.15 · max |z32| (tiny-in) / 0.3 (tiny-sana);
 * - reconstructions decode8(encode8(x)) vs decode32(encode32(x)): PSNR ≥ 30 dB / 20 dB.
 * The tiny models (8–64 channels) are far harder to quantize than full-width ones: a channel with
 * one outlier spends the whole int8 range of its tensor; see docs/quantization.md for the figures
 * on the full-width random model.
 */

const runtime = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await runtime.dispose();
});

const PHOTOS = resolve(import.meta.dirname, '../../../fixtures/photos');

async function photos(
  set: 'calibration' | 'heldout',
  height: number,
  width: number,
): Promise<HostTensor<'float32'>[]> {
  const files = readdirSync(PHOTOS)
    .filter((f) => f.startsWith(`${set}-`))
    .sort();
  return Promise.all(
    files.map(async (f) => {
      const { data, info } = await sharp(readFileSync(resolve(PHOTOS, f)))
        .resize(width, height, { fit: 'cover' })
        .raw()
        .toBuffer({ resolveWithObject: true });
      return imageToTensor({
        width: info.width,
        height: info.height,
        channels: 3,
        data: new Uint8Array(data),
      });
    }),
  );
}

/** Each fixture is calibrated once per file (the specs are shared by the describes below). */
const specs = new Map<string, Promise<QuantizationSpec>>();
function specFor(name: string, height: number, width: number): Promise<QuantizationSpec> {
  let spec = specs.get(name);
  if (spec === undefined) {
    spec = photos('calibration', height, width).then((images) =>
      calibrateAutoencoder(directoryModelFiles(fixturePath(name)), { runtime, images }),
    );
    specs.set(name, spec);
  }
  return spec;
}

const relativeError = (a: HostTensor<'float32'>, b: HostTensor<'float32'>): number =>
  maxAbsDiff(a, b) / maxAbs(b);

function psnr(a: HostTensor<'float32'>, b: HostTensor<'float32'>): number {
  let se = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = (Math.max(-1, Math.min(1, a.data[i]!)) - Math.max(-1, Math.min(1, b.data[i]!))) / 2;
    se += d * d;
  }
  return -10 * Math.log10(se / a.data.length);
}

describe('quantization arithmetic', () => {
  it('quantizes weights per output channel, symmetric, within half a step', () => {
    const w = { dtype: 'float32' as const, shape: [2, 3], data: Float32Array.of(0.5, -1, 0.25, 100, 0, -50) };
    const { q, scales } = quantizeWeight(w);
    expect([...scales]).toEqual([Math.fround(1 / 127), Math.fround(100 / 127)]);
    expect([...q]).toEqual([64, -127, 32, 127, 0, -64]);
    for (let i = 0; i < 6; i++) {
      expect(Math.abs(q[i]! * scales[Math.floor(i / 3)]! - w.data[i]!)).toBeLessThanOrEqual(
        scales[Math.floor(i / 3)]! / 2 + 1e-7,
      );
    }
  });

  it('maps activation ranges to uint8 scales that hold 0 exactly', () => {
    expect(activationParams({ min: -1, max: 3 })).toEqual({ scale: Math.fround(4 / 255), zeroPoint: 64 });
    expect(activationParams({ min: 2, max: 5 })).toEqual({ scale: Math.fround(5 / 255), zeroPoint: 0 });
    expect(activationParams({ min: -4, max: -1 }).zeroPoint).toBe(255);
  });
});

describe.each([
  ['tiny-in-f32', 64, 64, 0.15, 30],
  ['tiny-sana-f32', 96, 64, 0.3, 20],
] as const)('%s in int8', (name, height, width, latentBound, psnrBound) => {
  let spec: QuantizationSpec;
  beforeAll(async () => {
    spec = await specFor(name, height, width);
  });

  it('records ranges for every quantized Conv input and output, and round-trips through JSON', () => {
    expect(spec.keepFloat).toEqual(DEFAULT_KEEP_FLOAT);
    for (const part of ['encoder', 'decoder'] as const) {
      const ranges = Object.values(spec.parts[part]!.ranges);
      expect(ranges.length).toBeGreaterThan(10);
      for (const r of ranges) expect(r.min).toBeLessThanOrEqual(r.max);
    }
    expect(parseQuantizationSpec(formatQuantizationSpec(spec), 'q.json')).toEqual(spec);
  });

  it(`stays within ${latentBound} (latent) and ${psnrBound} dB (reconstruction) of fp32 on held-out photos`, async () => {
    const fp32 = await loadAutoencoder(fixturePath(name), { runtime });
    const int8 = await loadAutoencoder(fixturePath(name), { runtime, dtype: 'int8', quantization: spec });
    try {
      expect(int8.dtype).toBe('int8');
      for (const x of await photos('heldout', height, width)) {
        const [z32, z8] = [await fp32.encode(x), await int8.encode(x)];
        expect(z8.shape).toEqual(z32.shape);
        expect(relativeError(z8, z32)).toBeLessThanOrEqual(latentBound);
        const [y32, y8] = [await fp32.decode(z32), await int8.decode(z8)];
        expect(psnr(y8, y32)).toBeGreaterThanOrEqual(psnrBound);
      }
    } finally {
      await Promise.all([fp32.dispose(), int8.dispose()]);
    }
  });

  it('has int8 weights in the graph and runs QLinearConv kernels, not dequantized float Convs', async () => {
    const int8 = await loadAutoencoder(fixturePath(name), { runtime, dtype: 'int8', quantization: spec });
    try {
      const graph = await int8.buildGraph('encoder');
      const convs = graph.graph.nodes.filter((n) => n.opType === 'Conv');
      const int8Weights = graph.graph.initializers.filter((i) => i.name.endsWith('/weight_int8'));
      const kept = convs.filter((n) =>
        DEFAULT_KEEP_FLOAT.some((k) => n.name.startsWith(`/${k.replace('.', '/')}/`)),
      );
      expect(int8Weights.length).toBe(convs.length - kept.length);
      expect(graph.graph.initializers.every((i) => i.data.kind === 'inline')).toBe(true);
      // No float32 copy of a quantized weight is left.
      expect(graph.graph.initializers.filter((i) => /\.weight$/.test(i.name)).length).toBeLessThanOrEqual(
        kept.length + 40, // RMSNorm weights, kept-float convs
      );
      const [x] = await photos('heldout', height, width);
      const profile = await profileModel(serializeModel(graph), { sample: x! }, { threads: 1 });
      const qlinear = profile.nodes.filter((n) => n.opType === 'QLinearConv').length;
      const floatConvs = profile.nodes.filter((n) => n.opType === 'Conv' || n.opType === 'FusedConv').length;
      expect(qlinear).toBe(int8Weights.length);
      expect(floatConvs).toBe(kept.length);
    } finally {
      await int8.dispose();
    }
  });
});

describe('int8 on onnxruntime-web (wasm, in Node)', () => {
  it('runs the int8 graph within 2 % of onnxruntime-node', async () => {
    const dir = fixturePath('tiny-sana-f32');
    const spec = await specFor('tiny-sana-f32', 96, 64);
    const web = await createWebRuntime({ devices: ['wasm'], threads: 1 });
    const files = memoryModelFiles('tiny-sana', {
      'config.json': readFileSync(resolve(dir, 'config.json')),
      'diffusion_pytorch_model.safetensors': readFileSync(
        resolve(dir, 'diffusion_pytorch_model.safetensors'),
      ),
    });
    const onWeb = await loadAutoencoder(files, { runtime: web, dtype: 'int8', quantization: spec });
    const onNode = await loadAutoencoder(dir, { runtime, dtype: 'int8', quantization: spec });
    try {
      const [x] = await photos('heldout', 96, 64);
      const [zWeb, zNode] = [await onWeb.encode(x!), await onNode.encode(x!)];
      // Both builds fuse the QDQ graph into MLAS's integer kernels; they differ in rounding only.
      expect(relativeError(zWeb, zNode)).toBeLessThan(0.02);
    } finally {
      await Promise.all([onWeb.dispose(), onNode.dispose()]);
      await web.dispose();
    }
  });
});

describe('int8 errors', () => {
  const files = () => {
    const dir = fixturePath('tiny-sana-f32');
    return memoryModelFiles('tiny', {
      'config.json': readFileSync(resolve(dir, 'config.json')),
      'diffusion_pytorch_model.safetensors': readFileSync(
        resolve(dir, 'diffusion_pytorch_model.safetensors'),
      ),
    });
  };

  it('refuses dtype int8 without ranges: QUANTIZATION_MISSING naming dcae quantize', async () => {
    const error = await loadAutoencoder(files(), { runtime, dtype: 'int8' }).catch((e: unknown) => e);
    expect(DcaeError.is(error) && error.code).toBe('QUANTIZATION_MISSING');
    expect((error as Error).message).toMatch(/dcae quantize/);
  });

  it('refuses ranges of another graph at session setup: QUANTIZATION_INVALID naming the tensor', async () => {
    const spec: QuantizationSpec = {
      format: 'dcae-qdq-int8',
      graphVersion: 1,
      model: 'other',
      weights: 'int8 per-channel symmetric',
      activations: 'uint8 per-tensor asymmetric (min/max)',
      keepFloat: [...DEFAULT_KEEP_FLOAT],
      parts: { encoder: { ranges: { nothing: { min: 0, max: 1 } } }, decoder: { ranges: {} } },
      calibration: { images: [], height: 0, width: 0 },
    };
    const ae = await loadAutoencoder(files(), { runtime, dtype: 'int8', quantization: spec });
    try {
      const error = await ae.encode((await photos('heldout', 96, 64))[0]!).catch((e: unknown) => e);
      expect(DcaeError.is(error) && error.code).toBe('QUANTIZATION_INVALID');
      expect((error as Error).message).toMatch(/no valid calibrated range for tensor "\/encoder\//);
    } finally {
      await ae.dispose();
    }
  });

  it('refuses a quantization.json of another format or graph version', () => {
    const good = JSON.parse(
      formatQuantizationSpec({
        format: 'dcae-qdq-int8',
        graphVersion: 1,
        model: 'm',
        weights: 'int8 per-channel symmetric',
        activations: 'uint8 per-tensor asymmetric (min/max)',
        keepFloat: [],
        parts: {},
        calibration: { images: [], height: 1, width: 1 },
      }),
    ) as Record<string, unknown>;
    for (const bad of [
      { ...good, format: 'onnx-qdq' },
      { ...good, graphVersion: 0 },
      { ...good, parts: { encoder: { ranges: { t: { min: 1, max: 0 } } } } },
      { ...good, parts: { middle: { ranges: {} } } },
    ]) {
      expect(() => parseQuantizationSpec(JSON.stringify(bad), 'q.json')).toThrow(
        expect.objectContaining({ code: 'QUANTIZATION_INVALID' }) as Error,
      );
    }
  });
});
