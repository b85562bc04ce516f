import { DcaeError, DTYPE_BYTES, formatShape } from '@dcae/core';
import type { SafetensorsDType, SafetensorsFile } from '@dcae/core';
import type { AutoencoderPart } from '../base/io.js';
import type { BoundTensor, WeightBinding, WeightDType } from '../base/weights.js';
import type { SdVaeConfig } from './config.js';

/** One tensor an `AutoencoderKL` checkpoint must hold (diffusers key, shape) and the graph that reads it. */
export interface SdVaeParam {
  readonly key: string;
  readonly shape: readonly number[];
  readonly part: AutoencoderPart;
}

/**
 * Every tensor of a diffusers `AutoencoderKL` checkpoint of `config`, encoder first. `quant_conv`
 * belongs to the encoder graph and `post_quant_conv` to the decoder graph.
 */
export function sdVaeCheckpointLayout(config: SdVaeConfig): SdVaeParam[] {
  const params: SdVaeParam[] = [];
  let part: AutoencoderPart = 'encoder';
  const add = (key: string, shape: readonly number[]): void => {
    params.push({ key, shape, part });
  };
  const conv = (key: string, outC: number, inC: number, k: number): void => {
    add(`${key}.weight`, [outC, inC, k, k]);
    add(`${key}.bias`, [outC]);
  };
  const norm = (key: string, c: number): void => {
    add(`${key}.weight`, [c]);
    add(`${key}.bias`, [c]);
  };
  const resnet = (key: string, inC: number, outC: number): void => {
    norm(`${key}.norm1`, inC);
    conv(`${key}.conv1`, outC, inC, 3);
    norm(`${key}.norm2`, outC);
    conv(`${key}.conv2`, outC, outC, 3);
    if (inC !== outC) conv(`${key}.conv_shortcut`, outC, inC, 1);
  };
  const midBlock = (key: string, c: number): void => {
    resnet(`${key}.resnets.0`, c, c);
    if (config.midBlockAddAttention) {
      const attn = `${key}.attentions.0`;
      norm(`${attn}.group_norm`, c);
      for (const linear of ['to_q', 'to_k', 'to_v', 'to_out.0']) {
        add(`${attn}.${linear}.weight`, [c, c]);
        add(`${attn}.${linear}.bias`, [c]);
      }
    }
    resnet(`${key}.resnets.1`, c, c);
  };
  const widths = config.blockOutChannels;
  const n = widths.length;
  const last = widths[n - 1]!;
  const latent = config.latentChannels;

  conv('encoder.conv_in', widths[0]!, config.inChannels, 3);
  widths.forEach((outC, i) => {
    const inC = i === 0 ? widths[0]! : widths[i - 1]!;
    for (let j = 0; j < config.layersPerBlock; j++)
      resnet(`encoder.down_blocks.${i}.resnets.${j}`, j === 0 ? inC : outC, outC);
    if (i < n - 1) conv(`encoder.down_blocks.${i}.downsamplers.0.conv`, outC, outC, 3);
  });
  midBlock('encoder.mid_block', last);
  norm('encoder.conv_norm_out', last);
  conv('encoder.conv_out', 2 * latent, last, 3);
  if (config.useQuantConv) conv('quant_conv', 2 * latent, 2 * latent, 1);

  part = 'decoder';
  if (config.usePostQuantConv) conv('post_quant_conv', latent, latent, 1);
  conv('decoder.conv_in', last, latent, 3);
  midBlock('decoder.mid_block', last);
  const reversed = [...widths].reverse();
  reversed.forEach((outC, i) => {
    const inC = i === 0 ? reversed[0]! : reversed[i - 1]!;
    for (let j = 0; j <= config.layersPerBlock; j++)
      resnet(`decoder.up_blocks.${i}.resnets.${j}`, j === 0 ? inC : outC, outC);
    if (i < n - 1) conv(`decoder.up_blocks.${i}.upsamplers.0.conv`, outC, outC, 3);
  });
  norm('decoder.conv_norm_out', widths[0]!);
  conv('decoder.conv_out', config.outChannels, widths[0]!, 3);
  return params;
}

/** Learned parameters per part. */
export function countSdVaeParameters(config: SdVaeConfig): {
  encoder: number;
  decoder: number;
  total: number;
} {
  const counts = { encoder: 0, decoder: 0, total: 0 };
  for (const p of sdVaeCheckpointLayout(config)) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    counts[p.part] += size;
    counts.total += size;
  }
  return counts;
}

const WEIGHT_DTYPES: Readonly<Partial<Record<SafetensorsDType, WeightDType>>> = {
  F32: 'float32',
  F16: 'float16',
  BF16: 'bfloat16',
};

/** diffusers < 0.14 names of the mid-block attention's linears, renamed on load as diffusers does. */
const DEPRECATED_ATTENTION: Readonly<Record<string, string>> = {
  query: 'to_q',
  key: 'to_k',
  value: 'to_v',
  proj_attn: 'to_out.0',
};
const DEPRECATED_KEY =
  /^((?:en|de)coder\.mid_block\.attentions\.0)\.(query|key|value|proj_attn)\.(weight|bias)$/;

/** The current diffusers key of a checkpoint tensor name. */
export function sdVaeKey(name: string): string {
  const m = DEPRECATED_KEY.exec(name);
  return m === null ? name : `${m[1]}.${DEPRECATED_ATTENTION[m[2]!]}.${m[3]}`;
}

const MAX_LISTED = 60;

/**
 * Binds every tensor of `file` to the layout of `config`, strictly: one WEIGHTS_MISMATCH error
 * lists every missing, unused, mis-shaped or non-float (F32, F16, BF16) tensor. Tensors of a part
 * that is not in `parts` are skipped. Headers only; the data stays in the file.
 */
export function bindSdVaeWeights(
  file: SafetensorsFile,
  config: SdVaeConfig,
  options: { source?: string; parts?: readonly AutoencoderPart[] } = {},
): WeightBinding {
  const parts = options.parts ?? ['encoder', 'decoder'];
  const source = options.source ?? file.source.name;
  const layout = sdVaeCheckpointLayout(config);
  const expected = new Map(layout.map((p) => [p.key, p]));
  const problems: string[] = [];
  const names = new Map<string, string>();
  for (const name of file.header.tensors.keys()) {
    const key = sdVaeKey(name);
    const clash = names.get(key);
    if (clash !== undefined) problems.push(`unused  ${name}: ${clash} already provides ${key}`);
    else names.set(key, name);
  }

  const tensors = new Map<string, BoundTensor>();
  for (const p of layout) {
    if (!parts.includes(p.part)) continue;
    const name = names.get(p.key);
    if (name === undefined) {
      problems.push(`missing ${p.key} expected ${formatShape(p.shape)}`);
      continue;
    }
    const info = file.header.tensors.get(name)!;
    const label = name === p.key ? name : `${name} (diffusers ${p.key})`;
    const dtype = WEIGHT_DTYPES[info.dtype];
    if (formatShape(info.shape) !== formatShape(p.shape)) {
      problems.push(`shape   ${label} expected ${formatShape(p.shape)}, found ${formatShape(info.shape)}`);
    } else if (dtype === undefined) {
      problems.push(`dtype   ${label} is ${info.dtype}; AutoencoderKL weights must be F32, F16 or BF16`);
    } else {
      const length = p.shape.reduce((a, b) => a * b, 1) * DTYPE_BYTES[dtype];
      tensors.set(p.key, { key: p.key, name, shape: p.shape, dtype, offset: file.fileOffset(name), length });
    }
  }
  for (const [key, name] of names) {
    if (expected.has(key)) continue;
    problems.push(`unused  ${name} ${formatShape(file.header.tensors.get(name)!.shape)}`);
  }
  if (problems.length > 0) throw mismatchError(problems, source);
  return { format: 'diffusers', parts, tensors, folds: [] };
}

function mismatchError(problems: readonly string[], source: string): DcaeError {
  const counts = ['missing', 'unused', 'shape', 'dtype']
    .map((kind) => [kind, problems.filter((p) => p.startsWith(kind)).length] as const)
    .filter(([, count]) => count > 0)
    .map(([kind, count]) => `${count} ${kind}`);
  const lines = problems.slice(0, MAX_LISTED).map((p) => `  - ${p}`);
  if (problems.length > MAX_LISTED)
    lines.push(`  … and ${problems.length - MAX_LISTED} more (see error.detail.problems)`);
  const hint =
    problems.some((p) => p.startsWith('missing')) && problems.some((p) => p.startsWith('unused'))
      ? '\nCheck that config.json matches this checkpoint (block_out_channels, layers_per_block, latent_channels, use_quant_conv).'
      : '';
  return new DcaeError(
    'WEIGHTS_MISMATCH',
    `${source} does not match the AutoencoderKL config: ${counts.join(', ')}:\n${lines.join('\n')}${hint}`,
    { source, detail: { problems: problems.map((p) => p.replace(/\s+/, ' ')) } },
  );
}
