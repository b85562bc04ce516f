import { randomBytes } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { createRng, float32ArrayToFloat16, serializePth } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { writeFileAtomic } from '@dcae/core/node';
import type { DcAeConfig, MacCount, SdVaeConfig, TaesanaLayer } from '@dcae/autoencoder';
import {
  countMacs,
  TAESANA_DECODER,
  TAESANA_ENCODER,
  TAESANA_FILES,
  taesanaStateDict,
  countSdVaeMacs,
  DC_AE_PRESETS,
  dcAeCheckpointLayout,
  SD15_VAE_CONFIG,
  sdVaeCheckpointLayout,
  sdVaeCompressionRatio,
  spatialCompressionRatio,
  validateDcAeConfig,
} from '@dcae/autoencoder';

/**
 * Random-weight safetensors files for benchmarks (checkpoints, diffusion backbones, read tests),
 * written once into the cache directory, tensor by tensor in chunks, so memory stays at one chunk
 * whatever the file size, and reused by later runs (a file with the same header is kept).
 */

/** One tensor to write: F32 drawn uniformly from `range`, or an I64 zero (BatchNorm counters). */
export interface RandomTensor {
  readonly key: string;
  readonly shape: readonly number[];
  readonly range: readonly [number, number] | 'counter';
}

const WEIGHTS_FILE = 'diffusion_pytorch_model.safetensors';
const numel = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/**
 * The range of a random tensor, as the golden fixtures were made: conv and linear weights and their
 * biases ±1/√fan-in, norm scales [0.5, 1.5], norm shifts ±0.25, running means ±0.1, variances [0.5, 1.5].
 */
function ranges(
  params: readonly { key: string; shape: readonly number[] }[],
): Map<string, readonly [number, number]> {
  const fanIn = new Map<string, number>();
  for (const p of params)
    if (p.shape.length >= 2) fanIn.set(p.key.replace(/\.weight$/, ''), numel(p.shape) / p.shape[0]!);
  const out = new Map<string, readonly [number, number]>();
  for (const p of params) {
    const fan = fanIn.get(p.key.replace(/\.(weight|bias)$/, ''));
    if (fan !== undefined) out.set(p.key, [-1 / Math.sqrt(fan), 1 / Math.sqrt(fan)]);
    else if (p.key.endsWith('running_var')) out.set(p.key, [0.5, 1.5]);
    else if (p.key.endsWith('running_mean')) out.set(p.key, [-0.1, 0.1]);
    else out.set(p.key, p.key.endsWith('.weight') ? [0.5, 1.5] : [-0.25, 0.25]);
  }
  return out;
}

/** Every tensor of a DC-AE checkpoint of `config` for `parts` (diffusers keys). */
export function dcAeRandomTensors(config: DcAeConfig, parts: readonly string[]): RandomTensor[] {
  const params = dcAeCheckpointLayout(config).params.filter((p) =>
    parts.some((part) => p.key.startsWith(`${part}.`)),
  );
  const range = ranges(params);
  return params.map((p) => ({
    key: p.key,
    shape: p.shape,
    range: p.role === 'counter' ? 'counter' : range.get(p.key)!,
  }));
}

/** Every tensor of an AutoencoderKL checkpoint of `config` for `parts`. */
export function sdVaeRandomTensors(config: SdVaeConfig, parts: readonly string[]): RandomTensor[] {
  const params = sdVaeCheckpointLayout(config).filter((p) => parts.includes(p.part));
  const range = ranges(params);
  return params.map((p) => ({ key: p.key, shape: p.shape, range: range.get(p.key)! }));
}

/** A diffusers `AutoencoderKL` config.json of `config` (so that `loadAutoencoder` recognises the folder). */
export function sdVaeConfigJson(config: SdVaeConfig): Record<string, unknown> {
  const n = config.blockOutChannels.length;
  return {
    _class_name: 'AutoencoderKL',
    act_fn: config.act,
    block_out_channels: config.blockOutChannels,
    down_block_types: Array<string>(n).fill('DownEncoderBlock2D'),
    up_block_types: Array<string>(n).fill('UpDecoderBlock2D'),
    in_channels: config.inChannels,
    out_channels: config.outChannels,
    latent_channels: config.latentChannels,
    layers_per_block: config.layersPerBlock,
    norm_num_groups: config.normNumGroups,
    sample_size: config.sampleSize,
    scaling_factor: config.scalingFactor,
    use_quant_conv: config.useQuantConv,
    use_post_quant_conv: config.usePostQuantConv,
    mid_block_add_attention: config.midBlockAddAttention,
  };
}

/** A safetensors file of random tensors, and where each tensor's bytes are in it. */
export interface RandomSafetensors {
  readonly path: string;
  /** Bytes of tensor data (the file less its 8-byte prefix and header). */
  readonly bytes: number;
  /** Each tensor's bytes as absolute file offsets [begin, end). */
  readonly ranges: ReadonlyMap<string, readonly [number, number]>;
}

/**
 * Writes the safetensors file `path` with `tensors`, in their order, unless a file with the same
 * header (hence the same size) is already there: into a temporary file next to it, in chunks of
 * 4 Mi values (so memory stays at one chunk whatever the file size), then renamed into place; the
 * temporary file is removed when writing fails. Values come from `seed`'s generator in tensor order.
 */
export async function ensureRandomSafetensors(
  path: string,
  tensors: readonly RandomTensor[],
  options: { seed?: number; log?: (message: string) => void } = {},
): Promise<RandomSafetensors> {
  const header: Record<string, unknown> = {};
  const relative: [string, number, number][] = [];
  let cursor = 0;
  for (const t of tensors) {
    const length = t.range === 'counter' ? 8 : numel(t.shape) * 4;
    header[t.key] = {
      dtype: t.range === 'counter' ? 'I64' : 'F32',
      shape: t.shape,
      data_offsets: [cursor, cursor + length],
    };
    relative.push([t.key, cursor, cursor + length]);
    cursor += length;
  }
  let json = JSON.stringify(header);
  json = json.padEnd(Math.ceil(json.length / 8) * 8, ' ');
  const dataStart = 8 + json.length;
  const written: RandomSafetensors = {
    path,
    bytes: cursor,
    ranges: new Map(relative.map(([key, begin, end]) => [key, [dataStart + begin, dataStart + end]])),
  };
  if (
    (await stat(path).catch(() => undefined))?.size === dataStart + cursor &&
    (await headerOf(path)) === json
  )
    return written;

  options.log?.(
    `writing ${((dataStart + cursor) / 1e6).toFixed(0)} MB of random float32 to ${path} (kept for later runs)`,
  );
  await mkdir(dirname(path), { recursive: true });
  const partial = `${path}.${randomBytes(4).toString('hex')}.partial`;
  const handle: FileHandle = await open(partial, 'w');
  try {
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    await handle.write(prefix);
    await handle.write(json);
    const rng = createRng(options.seed ?? 2_024);
    const chunk = new Float32Array(1 << 22);
    for (const t of tensors) {
      if (t.range === 'counter') {
        await handle.write(new Uint8Array(8));
        continue;
      }
      const [lo, hi] = t.range;
      for (let left = numel(t.shape); left > 0; left -= chunk.length) {
        const part = chunk.subarray(0, Math.min(left, chunk.length));
        rng.fillUniform(part, lo, hi);
        await handle.write(new Uint8Array(part.buffer, 0, part.byteLength));
      }
    }
    await handle.close();
    await rename(partial, path);
  } catch (error) {
    await handle.close().catch(() => undefined);
    await rm(partial, { force: true });
    throw error;
  }
  return written;
}

/** The JSON header of a safetensors file (padding included), or undefined when it cannot be read. */
async function headerOf(path: string): Promise<string | undefined> {
  const handle = await open(path, 'r').catch(() => undefined);
  if (!handle) return undefined;
  try {
    const prefix = Buffer.alloc(8);
    await handle.read(prefix, 0, 8, 0);
    const length = Number(prefix.readBigUInt64LE());
    if (length > 100_000_000) return undefined;
    const json = Buffer.alloc(length);
    await handle.read(json, 0, length, 8);
    return json.toString('utf8');
  } finally {
    await handle.close();
  }
}

export interface RandomCheckpoint {
  readonly folder: string;
  /** Bytes of tensor data. */
  readonly bytes: number;
}

/**
 * A diffusers-format folder: `<folder>/diffusion_pytorch_model.safetensors` with `tensors`
 * (`ensureRandomSafetensors`) and `config.json` when given.
 */
export async function ensureRandomCheckpoint(
  folder: string,
  tensors: readonly RandomTensor[],
  options: { configJson?: Record<string, unknown>; seed?: number; log?: (message: string) => void } = {},
): Promise<RandomCheckpoint> {
  const { bytes } = await ensureRandomSafetensors(join(folder, WEIGHTS_FILE), tensors, options);
  if (options.configJson !== undefined) {
    const configText = `${JSON.stringify(options.configJson, null, 2)}\n`;
    const configPath = join(folder, 'config.json');
    if ((await readFile(configPath, 'utf8').catch(() => undefined)) !== configText)
      await writeFile(configPath, configText);
  }
  return { folder, bytes };
}

/** The autoencoders the benchmarks compare, by short name. */
export type BenchArchitecture =
  'f32c32-in' | 'sana' | 'f64c128' | 'f128c512' | 'f64c128-1.5' | 'sd-vae-f8' | 'taesana';

const DC_AE_PRESET = {
  'f32c32-in': 'dc-ae-f32c32-in-1.0',
  sana: 'dc-ae-f32c32-sana-1.0',
  f64c128: 'dc-ae-f64c128-in-1.0',
  f128c512: 'dc-ae-f128c512-in-1.0',
  'f64c128-1.5': 'dc-ae-f64c128-1.5',
} as const;

/** MACs of one TAESANA network on an image of height×width (its convolutions; ReLU, tanh and resizes are free). */
function taesanaMacs(
  layers: readonly TaesanaLayer[],
  height: number,
  width: number,
  encoder: boolean,
): number {
  let h = encoder ? height : height / 32;
  let w = encoder ? width : width / 32;
  let macs = 0;
  for (const layer of layers) {
    if (layer.kind === 'upsample') {
      h *= 2;
      w *= 2;
    } else if (layer.kind === 'conv') {
      if (layer.stride === 2) {
        h /= 2;
        w /= 2;
      }
      macs += layer.out * layer.in * 9 * h * w;
    } else if (layer.kind === 'block') macs += 3 * layer.channels * layer.channels * 9 * h * w;
  }
  return macs;
}

/**
 * TAESANA with random float16 weights (±√(3/fan-in)), saved as `taesana_encoder.pth` /
 * `taesana_decoder.pth` with dcae's own torch.save writer, once.
 */
async function ensureTaesana(folder: string, log?: (message: string) => void): Promise<number> {
  await mkdir(folder, { recursive: true });
  let bytes = 0;
  const rng = createRng(7001);
  for (const [part, layers] of [
    ['encoder', TAESANA_ENCODER],
    ['decoder', TAESANA_DECODER],
  ] as const) {
    const path = join(folder, TAESANA_FILES[part]);
    const existing = await stat(path).catch(() => undefined);
    if (existing !== undefined) {
      bytes += existing.size;
      continue;
    }
    log?.(`writing random ${TAESANA_FILES[part]}`);
    const tensors = new Map<string, HostTensor>();
    for (const [key, shape] of taesanaStateDict(layers)) {
      const fanIn = shape.length === 4 ? shape[1]! * 9 : 64;
      const bound = Math.sqrt(3 / fanIn);
      const values = Float32Array.from({ length: numel(shape) }, () => (2 * rng.uniform() - 1) * bound);
      tensors.set(key, { dtype: 'float16', shape, data: float32ArrayToFloat16(values) });
    }
    const file = serializePth(tensors, TAESANA_FILES[part].replace(/\.pth$/, ''));
    await writeFileAtomic(path, file, { overwrite: true });
    bytes += file.byteLength;
  }
  return bytes;
}

/**
 * A DC-AE architecture at 1/16 of its widths (at least 8 channels, head dim 8, latent channels at
 * most 8) and its real depths: the same graph structure, cheap enough for the quick run.
 */
export function tinyDcAe(config: DcAeConfig): DcAeConfig {
  const shrink = (widths: readonly number[]): number[] => widths.map((w) => Math.max(8, w / 16));
  return {
    ...config,
    latentChannels: Math.min(8, config.latentChannels),
    attentionHeadDim: 8,
    encoder: { ...config.encoder, blockOutChannels: shrink(config.encoder.blockOutChannels) },
    decoder: { ...config.decoder, blockOutChannels: shrink(config.decoder.blockOutChannels) },
  };
}

/** The SD 1.x VAE at 1/16 of its widths, one ResNet per stage, 4 GroupNorm groups. */
export const TINY_SD_VAE: SdVaeConfig = {
  ...SD15_VAE_CONFIG,
  blockOutChannels: SD15_VAE_CONFIG.blockOutChannels.map((w) => w / 16),
  layersPerBlock: 1,
  normNumGroups: 4,
};

/** A random-weight model ready for `startWorker`, with what the reports need to know about it. */
export interface BenchModel {
  readonly architecture: BenchArchitecture;
  /** e.g. `dc-ae-f32c32-in-1.0` or `tiny dc-ae-f32c32-in-1.0` (quick). */
  readonly label: string;
  readonly folder: string;
  /** DC-AE: the architecture passed to the loader (the folder has no config.json). */
  readonly config: DcAeConfig | undefined;
  readonly f: number;
  readonly latentChannels: number;
  readonly weightBytes: number;
  /** Analytic MACs of one image (`countMacs`, `countSdVaeMacs`). */
  macs(height: number, width: number): MacCount;
}

/**
 * The random-weight checkpoint of `architecture` (real widths, or tiny ones when `tiny`), written
 * into `<cacheDir>/ae-random/` once: encoder and decoder, diffusers keys.
 */
export async function benchModel(
  cacheDir: string,
  architecture: BenchArchitecture,
  options: { tiny: boolean; log?: (message: string) => void },
): Promise<BenchModel> {
  const prefix = options.tiny ? 'tiny ' : '';
  const parts = ['encoder', 'decoder'];
  if (architecture === 'sd-vae-f8') {
    const config = options.tiny ? TINY_SD_VAE : SD15_VAE_CONFIG;
    const folder = join(cacheDir, 'ae-random', `${options.tiny ? 'tiny-' : ''}${architecture}`);
    const written = await ensureRandomCheckpoint(folder, sdVaeRandomTensors(config, parts), {
      configJson: sdVaeConfigJson(config),
      log: options.log,
    });
    return {
      architecture,
      label: `${prefix}sd-vae-f8 (SD 1.x AutoencoderKL)`,
      folder,
      config: undefined,
      f: sdVaeCompressionRatio(config),
      latentChannels: config.latentChannels,
      weightBytes: written.bytes,
      macs: (h, w) => countSdVaeMacs(config, h, w),
    };
  }
  if (architecture === 'taesana') {
    // TAESANA is tiny already: the quick run uses its real widths too.
    const folder = join(cacheDir, 'ae-random', 'taesana');
    const weightBytes = await ensureTaesana(folder, options.log);
    return {
      architecture,
      label: 'taesana (random fp16 .pth)',
      folder,
      config: undefined,
      f: 32,
      latentChannels: 32,
      weightBytes,
      macs: (h, w) => ({
        encoder: taesanaMacs(TAESANA_ENCODER, h, w, true),
        decoder: taesanaMacs(TAESANA_DECODER, h, w, false),
      }),
    };
  }
  const preset = DC_AE_PRESET[architecture];
  const config = options.tiny ? tinyDcAe(DC_AE_PRESETS[preset]) : DC_AE_PRESETS[preset];
  validateDcAeConfig(config, { source: `${prefix}${preset}` });
  const folder = join(cacheDir, 'ae-random', `${options.tiny ? 'tiny-' : ''}${preset}`);
  const written = await ensureRandomCheckpoint(folder, dcAeRandomTensors(config, parts), {
    log: options.log,
  });
  return {
    architecture,
    label: `${prefix}${preset}`,
    folder,
    config,
    f: spatialCompressionRatio(config),
    latentChannels: config.latentChannels,
    weightBytes: written.bytes,
    macs: (h, w) => countMacs(config, h, w),
  };
}
