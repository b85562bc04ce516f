import { readFileSync } from 'node:fs';
import {
  float32ArrayToBfloat16,
  float32ArrayToFloat16,
  bfloat16ArrayToFloat32,
  parseJsonConfig,
  parseSafetensors,
  serializeSafetensors,
  toFloat32,
  zeros,
} from '@dcae/core';
import type { DType, HostTensor } from '@dcae/core';
import { serializeModel } from '@dcae/core/onnx';
import type { InitializerData, OnnxGraph, OnnxModel } from '@dcae/core/onnx';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import type { Autoencoder } from '../src/index.js';
import { buildDecoderGraph, buildEncoderGraph, memoryModelFiles, parseDcAeConfig } from '../src/index.js';
import { loadAutoencoder } from '../src/node/index.js';
import { FIXTURE_NAMES, fixturePath, maxAbs, maxAbsDiff, readFixtureTensors } from './helpers.js';

/**
 * Half precision (`dtype: 'fp16'`): float16 weights and activations, float32 islands for the
 * RMSNorm statistics and the LiteMLA core (docs/model-spec.md §2.6), float32 inputs and outputs.
 *
 * onnxruntime's CPU provider has few float16 kernels and wraps the others in casts, so on CPU the
 * numbers below mostly measure float16 weights and the boundaries between ops; the structure
 * tests check the islands themselves.
 */

const runtime = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await runtime.dispose();
});

const WEIGHTS = 'diffusion_pytorch_model.safetensors';

/** max_abs(fp16 − fp32) ÷ max|fp32|: the relative error. */
const relativeError = (half: HostTensor<'float32'>, full: HostTensor<'float32'>): number =>
  maxAbsDiff(half, full) / maxAbs(full);

async function withBoth<T>(
  load: (dtype: 'fp32' | 'fp16') => Promise<Autoencoder>,
  use: (fp32: Autoencoder, fp16: Autoencoder) => Promise<T>,
): Promise<T> {
  const [full, half] = [await load('fp32'), await load('fp16')];
  try {
    return await use(full, half);
  } finally {
    await Promise.all([full.dispose(), half.dispose()]);
  }
}

describe.each(FIXTURE_NAMES)('%s in fp16', (name) => {
  const input = readFixtureTensors(name, 'input.safetensors');
  const load = (dtype: 'fp32' | 'fp16') => loadAutoencoder(fixturePath(name), { runtime, dtype });

  it('encodes and decodes within 1e-2 of fp32, with no NaN or Inf, float32 in and out', async () => {
    await withBoth(load, async (full, half) => {
      expect(half.dtype).toBe('fp16');
      const sample = input.get('sample')!;
      const latent = input.get('latent')!;
      const encoded = await half.encode(sample);
      const decoded = await half.decode(latent);
      const reconstructed = await half.decode(encoded);
      for (const t of [encoded, decoded, reconstructed]) {
        expect(t.dtype).toBe('float32');
        expect(t.data.every(Number.isFinite)).toBe(true);
      }
      expect(relativeError(encoded, await full.encode(sample))).toBeLessThanOrEqual(1e-2);
      expect(relativeError(decoded, await full.decode(latent))).toBeLessThanOrEqual(1e-2);
      expect(relativeError(reconstructed, await full.decode(await full.encode(sample)))).toBeLessThanOrEqual(
        1e-2,
      );
      // Large latents (activations in the hundreds) stay finite too.
      const loud = { ...latent, data: latent.data.map((v) => v * 300) };
      expect(relativeError(await half.decode(loud), await full.decode(loud))).toBeLessThanOrEqual(1e-2);
    });
  });

  it('halves the model bytes: weights are converted to float16', async () => {
    await withBoth(load, async (full, half) => {
      const sizes = async (ae: Autoencoder, weights: 'inline' | 'external') =>
        Object.fromEntries((await ae.onnxFiles({ weights })).map((f) => [f.name, f.size]));
      const [full32, half16] = [await sizes(full, 'external'), await sizes(half, 'external')];
      for (const part of ['encoder', 'decoder']) {
        const ratio = half16[`${part}.onnx_data`]! / full32[`${part}.onnx_data`]!;
        expect(ratio).toBeGreaterThan(0.49);
        expect(ratio).toBeLessThanOrEqual(0.5 + 1e-3); // 64-byte alignment padding
      }
      const [inline32, inline16] = [await sizes(full, 'inline'), await sizes(half, 'inline')];
      // Inline: the same graph plus half the weight bytes.
      expect(inline16['decoder.onnx']! / inline32['decoder.onnx']!).toBeLessThan(0.56);
    });
  });

  it('builds recognisable fp16 graphs: float16 weights, float32 norm statistics and attention', async () => {
    const half = await load('fp16');
    try {
      for (const part of ['encoder', 'decoder'] as const) {
        const model = await half.buildGraph(part);
        expect(model.metadata.dtype).toBe('float16');
        const weights = model.graph.initializers.filter((i) => !i.name.startsWith('/'));
        expect(weights.length).toBeGreaterThan(50);
        for (const w of weights) expect(dtypeOf(w.data), w.name).toBe('float16');
        const types = inferDTypes(model);
        const ops = allNodes(model.graph);
        const inputTypes = (op: string) =>
          ops.filter((n) => n.opType === op).flatMap((n) => n.inputs.slice(0, 2).map((i) => types.get(i)));
        expect(new Set(inputTypes('Conv'))).toEqual(new Set(['float16']));
        // RMSNorm statistics: every x² that feeds a ReduceMean is float32.
        const meanSquares = ops.filter((n) => n.opType === 'ReduceMean' && /norm/.test(n.name));
        expect(meanSquares.length).toBeGreaterThan(3);
        for (const n of meanSquares) expect(types.get(n.inputs[0]!), n.name).toBe('float32');
        // LiteMLA core: every MatMul (linear and quadratic branch) runs in float32.
        const matMuls = ops.filter((n) => n.opType === 'MatMul');
        expect(matMuls.length).toBeGreaterThan(0);
        for (const n of matMuls) expect(types.get(n.inputs[0]!), n.name).toBe('float32');
        expect(model.graph.inputs[0]!.dtype).toBe('float32');
        expect(model.graph.outputs[0]!.dtype).toBe('float32');
      }
    } finally {
      await half.dispose();
    }
  });
});

describe('fp16 attention and norms with identity weights (ε = 1e-15 is 0 in float16)', () => {
  // All convs zero, norms weight 1 / bias 0: every block is the identity and the attention computes
  // 0 / (0 + ε). In float16 ε would be 0 and the result NaN; the float32 island keeps it 0.
  const config = parseDcAeConfig(
    parseJsonConfig(readFileSync(fixturePath('tiny-sana-f32', 'config.json'), 'utf8')),
  );
  const K = 0.7;
  const params = (key: string, shape: readonly number[]): InitializerData => {
    const t = zeros('float32', shape);
    if (/norm(_out)?\.weight$/.test(key)) t.data.fill(1);
    if (/^encoder\.conv_in\.bias$/.test(key)) t.data.fill(K);
    return { kind: 'inline', tensor: { dtype: 'float16', shape, data: float32ArrayToFloat16(t.data) } };
  };

  it.each(['encoder', 'decoder'] as const)('%s keeps a constant map through every stage', async (part) => {
    const build = part === 'encoder' ? buildEncoderGraph : buildDecoderGraph;
    const model = build(config, { params, dtype: 'float16', intermediates: true });
    const feed: Record<string, HostTensor> =
      part === 'encoder'
        ? { sample: zeros('float32', [1, 3, 64, 32]) }
        : { latent_sample: { ...zeros('float32', [1, 8, 2, 1]), data: new Float32Array(16).fill(K) } };
    const session = await runtime.createSession(serializeModel(model));
    try {
      const outputs = await session.run(feed);
      const stages = Object.entries(outputs).filter(([n]) => n !== 'sample');
      expect(stages.length).toBeGreaterThan(5);
      for (const [stage, value] of stages) {
        expect(value.dtype === 'float16' || stage === 'latent_sample', stage).toBe(true);
        for (const v of toFloat32(value).data) expect(Math.abs(v - K), stage).toBeLessThan(1e-3);
      }
    } finally {
      await session.dispose();
    }
  });
});

describe('checkpoints stored in bf16 or f16', () => {
  const name = 'tiny-sana-f32';
  const config = readFileSync(fixturePath(name, 'config.json'));
  const original = parseSafetensors(readFileSync(fixturePath(name, WEIGHTS)));
  const input = readFixtureTensors(name, 'input.safetensors');

  /** The fixture with every tensor converted by `convert`, as an in-memory model folder. */
  const folder = (label: string, convert: (t: HostTensor<'float32'>) => HostTensor) => {
    const tensors = new Map<string, HostTensor>();
    for (const key of original.header.tensors.keys())
      tensors.set(key, convert(original.tensor(key) as HostTensor<'float32'>));
    return memoryModelFiles(label, { 'config.json': config, [WEIGHTS]: serializeSafetensors(tensors) });
  };
  const bf16 = (t: HostTensor<'float32'>): HostTensor => ({
    dtype: 'bfloat16',
    shape: t.shape,
    data: float32ArrayToBfloat16(t.data),
  });
  /** The values a bf16 checkpoint holds, stored as F32. */
  const bf16AsF32 = (t: HostTensor<'float32'>): HostTensor => ({
    dtype: 'float32',
    shape: t.shape,
    data: bfloat16ArrayToFloat32(float32ArrayToBfloat16(t.data)),
  });

  it('loads a bf16 checkpoint and computes exactly what its values give in float32', async () => {
    const fromBf16 = await loadAutoencoder(folder('bf16', bf16), { runtime });
    const rounded = await loadAutoencoder(folder('bf16-as-f32', bf16AsF32), { runtime });
    const reference = await loadAutoencoder(fixturePath(name), { runtime });
    try {
      const latent = input.get('latent')!;
      const decoded = await fromBf16.decode(latent);
      expect(maxAbsDiff(decoded, await rounded.decode(latent))).toBeLessThanOrEqual(1e-6 * maxAbs(decoded));
      // bf16 keeps 8 mantissa bits: close to, not equal to, the float32 weights' output.
      const error = relativeError(decoded, await reference.decode(latent));
      expect(error).toBeGreaterThan(0);
      expect(error).toBeLessThan(0.05);
      // The graph reads the bf16 bytes in place and casts them.
      const model = await fromBf16.buildGraph('decoder');
      expect(model.graph.initializers.some((i) => dtypeOf(i.data) === 'bfloat16')).toBe(true);
    } finally {
      await Promise.all([fromBf16.dispose(), rounded.dispose(), reference.dispose()]);
    }
  });

  it('runs fp16 from bf16 weights, and reads f16 weights in place', async () => {
    const f16 = (t: HostTensor<'float32'>): HostTensor => ({
      dtype: 'float16',
      shape: t.shape,
      data: float32ArrayToFloat16(t.data),
    });
    const fromF16 = await loadAutoencoder(folder('f16', f16), { runtime, dtype: 'fp16' });
    const fromBf16 = await loadAutoencoder(folder('bf16', bf16), { runtime, dtype: 'fp16' });
    const reference = await loadAutoencoder(fixturePath(name), { runtime });
    try {
      const latent = input.get('latent')!;
      const expected = await reference.decode(latent);
      expect(relativeError(await fromF16.decode(latent), expected)).toBeLessThanOrEqual(1e-2);
      expect(relativeError(await fromBf16.decode(latent), expected)).toBeLessThan(0.05);
      const model = await fromF16.buildGraph('decoder');
      const external = model.graph.initializers.filter((i) => i.data.kind === 'external');
      expect(external.length).toBeGreaterThan(50);
      expect(new Set(external.map((i) => dtypeOf(i.data)))).toEqual(new Set(['float16']));
    } finally {
      await Promise.all([fromF16.dispose(), fromBf16.dispose(), reference.dispose()]);
    }
  });
});

describe('fp16 export', () => {
  it('writes float16 weights that plain onnxruntime runs like decode(), with float16 I/O on request', async () => {
    const half = await loadAutoencoder(fixturePath('tiny-in-f32'), { runtime, dtype: 'fp16' });
    const latent = readFixtureTensors('tiny-in-f32', 'input.safetensors').get('latent')!;
    try {
      const bytes = async (io: 'float32' | 'float16') => {
        const file = (await half.onnxFiles({ io })).find((f) => f.name === 'decoder.onnx')!;
        const chunks: Uint8Array[] = [];
        for await (const chunk of file.chunks()) chunks.push(chunk);
        return Buffer.concat(chunks);
      };
      const session = await runtime.createSession(await bytes('float32'));
      const halfIo = await runtime.createSession(await bytes('float16'));
      try {
        const out = (await session.run({ latent_sample: latent })).sample as HostTensor<'float32'>;
        expect(maxAbsDiff(out, await half.decode(latent))).toBeLessThanOrEqual(1e-6 * maxAbs(out));
        const latent16: HostTensor = {
          dtype: 'float16',
          shape: latent.shape,
          data: float32ArrayToFloat16(latent.data),
        };
        const out16 = (await halfIo.run({ latent_sample: latent16 })).sample!;
        expect(out16.dtype).toBe('float16');
        expect(relativeError(toFloat32(out16), out)).toBeLessThanOrEqual(1e-2);
      } finally {
        await Promise.all([session.dispose(), halfIo.dispose()]);
      }
    } finally {
      await half.dispose();
    }
  });
});

function dtypeOf(data: InitializerData): DType {
  return data.kind === 'inline' ? data.tensor.dtype : data.dtype;
}

function allNodes(graph: OnnxGraph): OnnxGraph['nodes'][number][] {
  return graph.nodes.flatMap((n) => [
    n,
    ...Object.values(n.attributes).flatMap((a) => (a.kind === 'graph' ? allNodes(a.value) : [])),
  ]);
}

const ONNX_TO_DTYPE: Readonly<Record<number, DType>> = { 1: 'float32', 10: 'float16', 7: 'int64', 9: 'bool' };

/** Element types of every value, propagated through the ops DC-AE graphs use (If branches included). */
function inferDTypes(model: OnnxModel): Map<string, DType> {
  const types = new Map<string, DType>();
  for (const i of model.graph.initializers) types.set(i.name, dtypeOf(i.data));
  for (const i of model.graph.inputs) types.set(i.name, i.dtype);
  const visit = (graph: OnnxGraph): void => {
    for (const n of graph.nodes) {
      let out: DType | undefined;
      const attr = n.attributes;
      if (n.opType === 'Cast') out = ONNX_TO_DTYPE[(attr.to as { value: number }).value];
      else if (n.opType === 'Shape') out = 'int64';
      else if (['Greater', 'Equal'].includes(n.opType)) out = 'bool';
      else if (n.opType === 'If') {
        for (const branch of ['then_branch', 'else_branch'])
          visit((attr[branch] as { value: OnnxGraph }).value);
        const then = (attr.then_branch as { value: OnnxGraph }).value;
        n.outputs.forEach((o, k) => types.set(o, types.get(then.outputs[k]!.name)!));
        continue;
      } else out = types.get(n.inputs.find((i) => i !== '')!);
      for (const o of n.outputs) types.set(o, out!);
    }
  };
  visit(model.graph);
  return types;
}
