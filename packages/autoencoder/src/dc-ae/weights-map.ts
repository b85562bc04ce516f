import { invariant } from '@dcae/core';
import type { DcAeConfig, DcAeNormType } from './config.js';
import type { BatchNormFold } from '../base/weights.js';
import type { ParamCounts } from '../base/types.js';

/**
 * Checkpoint keys as data: every tensor a config implies, under its diffusers name (the module path
 * the graph builders use) and its original efficientvit name, plus the original → diffusers
 * renaming rules of docs/model-spec.md §3.3.
 */

/** `weight`: a learned parameter; `running-stat`: BatchNorm mean/var; `counter`: BatchNorm `num_batches_tracked` (int64 scalar, unused). */
export type ParamRole = 'weight' | 'running-stat' | 'counter';

export interface CheckpointParam {
  /** diffusers key, e.g. `decoder.up_blocks.3.1.attn.to_q.weight`. */
  readonly key: string;
  /** PyTorch shape in the diffusers checkpoint (Linear weights are 2-D). */
  readonly shape: readonly number[];
  readonly role: ParamRole;
  /** efficientvit key; `to_q`/`to_k`/`to_v` share the fused `qkv.conv.weight`. */
  readonly original: string;
}

/** A bias-free conv (or Linear) followed by BatchNorm: folded on the host into a conv with a bias. */
export type { BatchNormFold };

export interface DcAeCheckpointLayout {
  readonly params: readonly CheckpointParam[];
  readonly folds: readonly BatchNormFold[];
}

/** A module path under both naming schemes. */
interface Path {
  readonly d: string;
  readonly o: string;
}

class LayoutBuilder {
  readonly params: CheckpointParam[] = [];
  readonly folds: BatchNormFold[] = [];

  add(path: Path, d: string, o: string, shape: readonly number[], role: ParamRole = 'weight'): void {
    this.params.push({ key: `${path.d}.${d}`, shape, role, original: `${path.o}.${o}` });
  }

  /** RMSNorm (weight + bias) or BatchNorm (+ running stats), which folds into the bias-free `conv` before it. */
  norm(path: Path, d: string, o: string, channels: number, type: DcAeNormType, conv?: string): void {
    this.add(path, `${d}.weight`, `${o}.weight`, [channels]);
    this.add(path, `${d}.bias`, `${o}.bias`, [channels]);
    if (type !== 'batch_norm') return;
    invariant(conv !== undefined, () => `BatchNorm ${path.d}.${d} has no conv to fold into`);
    this.add(path, `${d}.running_mean`, `${o}.running_mean`, [channels], 'running-stat');
    this.add(path, `${d}.running_var`, `${o}.running_var`, [channels], 'running-stat');
    this.add(path, `${d}.num_batches_tracked`, `${o}.num_batches_tracked`, [], 'counter');
    const convPath = `${path.d}.${conv}`;
    this.folds.push({ conv: `${convPath}.weight`, norm: `${path.d}.${d}`, bias: `${convPath}.bias` });
  }

  conv(path: Path, d: string, o: string, shape: readonly number[], bias = true): void {
    this.add(path, `${d}.weight`, `${o}.weight`, shape);
    if (bias) this.add(path, `${d}.bias`, `${o}.bias`, [shape[0]!]);
  }
}

const join = (path: Path, d: string, o: string): Path => ({ d: `${path.d}.${d}`, o: `${path.o}.${o}` });

/** ResBlock: conv1 (bias) → act → conv2 (no bias) → norm. diffusers `ResBlock`, efficientvit `ResBlock` in a `ResidualBlock`. */
function resBlock(b: LayoutBuilder, path: Path, c: number, norm: DcAeNormType): void {
  const main = { d: path.d, o: `${path.o}.main` };
  b.conv(main, 'conv1', 'conv1.conv', [c, c, 3, 3]);
  b.conv(main, 'conv2', 'conv2.conv', [c, c, 3, 3], false);
  b.norm(main, 'norm', 'conv2.norm', c, norm, 'conv2');
}

/** EfficientViTBlock: LiteMLA (`attn` / `context_module`) then GLUMBConv (`conv_out` / `local_module`). */
function efficientVitBlock(
  b: LayoutBuilder,
  path: Path,
  c: number,
  headDim: number,
  kernels: readonly number[],
  norm: DcAeNormType,
): void {
  const inner = Math.floor(c / headDim) * headDim;
  const attn = join(path, 'attn', 'context_module.main');
  for (const q of ['to_q', 'to_k', 'to_v']) b.add(attn, `${q}.weight`, 'qkv.conv.weight', [inner, c]);
  kernels.forEach((k, i) => {
    b.add(attn, `to_qkv_multiscale.${i}.proj_in.weight`, `aggreg.${i}.0.weight`, [3 * inner, 1, k, k]);
    b.add(attn, `to_qkv_multiscale.${i}.proj_out.weight`, `aggreg.${i}.1.weight`, [3 * inner, headDim, 1, 1]);
  });
  b.add(attn, 'to_out.weight', 'proj.conv.weight', [c, inner * (1 + kernels.length)]);
  b.norm(attn, 'norm_out', 'proj.norm', c, norm, 'to_out');

  const mlp = join(path, 'conv_out', 'local_module.main');
  b.conv(mlp, 'conv_inverted', 'inverted_conv.conv', [8 * c, c, 1, 1]);
  b.conv(mlp, 'conv_depth', 'depth_conv.conv', [8 * c, 1, 3, 3]);
  b.conv(mlp, 'conv_point', 'point_conv.conv', [c, 4 * c, 1, 1], false);
  b.norm(mlp, 'norm', 'point_conv.norm', c, 'rms_norm', 'conv_point');
}

/** Every tensor of a DC-AE checkpoint, in state-dict order, derived from the config alone. */
export function dcAeCheckpointLayout(config: DcAeConfig): DcAeCheckpointLayout {
  const b = new LayoutBuilder();
  const { encoder, decoder, inChannels, latentChannels, attentionHeadDim } = config;

  // Encoder (diffusers `Encoder`, efficientvit `Encoder`).
  const ew = encoder.blockOutChannels;
  const n = ew.length;
  const unshuffle = encoder.downsample === 'pixel_unshuffle';
  const downOut = (out: number): number => (unshuffle ? out / 4 : out);
  if (encoder.layersPerBlock[0]! > 0) {
    b.conv({ d: 'encoder', o: 'encoder' }, 'conv_in', 'project_in.conv', [ew[0]!, inChannels, 3, 3]);
  } else {
    // A DCDownBlock2d without shortcut; efficientvit's ConvPixelUnshuffle layer nests one more `conv`.
    const o = unshuffle ? 'project_in.conv.conv' : 'project_in.conv';
    b.conv({ d: 'encoder', o: 'encoder' }, 'conv_in.conv', o, [downOut(ew[1]!), inChannels, 3, 3]);
  }
  for (let s = 0; s < n; s++) {
    const depth = encoder.layersPerBlock[s]!;
    const stage = { d: `encoder.down_blocks.${s}`, o: `encoder.stages.${s}.op_list` };
    for (let i = 0; i < depth; i++) {
      const path = join(stage, `${i}`, `${i}`);
      if (encoder.blockTypes[s] === 'ResBlock') resBlock(b, path, ew[s]!, 'rms_norm');
      else efficientVitBlock(b, path, ew[s]!, attentionHeadDim, encoder.qkvMultiscales[s]!, 'rms_norm');
    }
    if (s < n - 1 && depth > 0) {
      const path = join(stage, `${depth}`, `${depth}.main`);
      b.conv(path, 'conv', unshuffle ? 'conv.conv' : 'conv', [downOut(ew[s + 1]!), ew[s]!, 3, 3]);
    }
  }
  const projectOut = encoder.outShortcut ? 'project_out.main.op_list.0.conv' : 'project_out.op_list.0.conv';
  b.conv({ d: 'encoder', o: 'encoder' }, 'conv_out', projectOut, [latentChannels, ew[n - 1]!, 3, 3]);

  // Decoder (diffusers `Decoder`, efficientvit `Decoder`); stages are stored in index order.
  const dw = decoder.blockOutChannels;
  const m = dw.length;
  const shuffle = decoder.upsample === 'pixel_shuffle';
  const upOut = (out: number): number => (shuffle ? 4 * out : out);
  const projectIn = decoder.inShortcut ? 'project_in.main.conv' : 'project_in.conv';
  b.conv({ d: 'decoder', o: 'decoder' }, 'conv_in', projectIn, [dw[m - 1]!, latentChannels, 3, 3]);
  for (let s = 0; s < m; s++) {
    const depth = decoder.layersPerBlock[s]!;
    const stage = { d: `decoder.up_blocks.${s}`, o: `decoder.stages.${s}.op_list` };
    const hasUp = s < m - 1 && depth > 0;
    if (hasUp) b.conv(join(stage, '0', '0.main'), 'conv', 'conv.conv', [upOut(dw[s]!), dw[s + 1]!, 3, 3]);
    for (let j = 0; j < depth; j++) {
      const i = hasUp ? j + 1 : j;
      const path = join(stage, `${i}`, `${i}`);
      const norm = decoder.normTypes[s]!;
      if (decoder.blockTypes[s] === 'ResBlock') resBlock(b, path, dw[s]!, norm);
      else efficientVitBlock(b, path, dw[s]!, attentionHeadDim, decoder.qkvMultiscales[s]!, norm);
    }
  }
  const head = decoder.layersPerBlock[0]! > 0 ? dw[0]! : dw[1]!;
  b.norm({ d: 'decoder', o: 'decoder.project_out.op_list' }, 'norm_out', '0', head, 'rms_norm');
  if (decoder.layersPerBlock[0]! > 0) {
    b.conv({ d: 'decoder', o: 'decoder' }, 'conv_out', 'project_out.op_list.2.conv', [
      inChannels,
      head,
      3,
      3,
    ]);
  } else {
    // A DCUpBlock2d without shortcut (conv + pixel-shuffle, or nearest ×2 + conv).
    const o = 'project_out.op_list.2.conv.conv';
    b.conv({ d: 'decoder', o: 'decoder' }, 'conv_out.conv', o, [upOut(inChannels), head, 3, 3]);
  }
  return { params: b.params, folds: b.folds };
}

export type { ParamCounts };

/** Learned parameters (BatchNorm running statistics excluded, as in docs/model-spec.md §1.2). */
export function countParameters(layout: DcAeCheckpointLayout): ParamCounts {
  let encoder = 0;
  let decoder = 0;
  for (const p of layout.params) {
    if (p.role !== 'weight') continue;
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (p.key.startsWith('encoder.')) encoder += size;
    else decoder += size;
  }
  return { encoder, decoder, total: encoder + decoder };
}

/** Which original-format renames apply: derived from the config, never sniffed from keys. */
export interface OriginalKeyFlags {
  /** Encoder stage 0 is empty: `project_in` is a DCDownBlock2d, so diffusers keys gain `.conv`. */
  readonly encoderConvInIsBlock: boolean;
  /** Decoder stage 0 is empty: `project_out`'s conv is a DCUpBlock2d, so diffusers keys gain `.conv`. */
  readonly decoderConvOutIsBlock: boolean;
}

export function originalKeyFlags(config: DcAeConfig): OriginalKeyFlags {
  return {
    encoderConvInIsBlock: config.encoder.layersPerBlock[0] === 0,
    decoderConvOutIsBlock: config.decoder.layersPerBlock[0] === 0,
  };
}

/**
 * The ordered substring rules of diffusers `scripts/convert_dcae_to_diffusers.py` (docs/model-spec.md
 * §3.3), each replacing every occurrence. Rules 5–6 are written for any branch index (efficientvit
 * `aggreg.<i>`); the released checkpoints only have branch 0.
 */
function renameRules(flags: OriginalKeyFlags): readonly (readonly [RegExp | string, string])[] {
  return [
    ['main.', ''],
    ['op_list.', ''],
    ['context_module', 'attn'],
    ['local_module', 'conv_out'],
    [/aggreg\.(\d+)\.0/g, 'to_qkv_multiscale.$1.proj_in'],
    [/aggreg\.(\d+)\.1/g, 'to_qkv_multiscale.$1.proj_out'],
    ['depth_conv.conv', 'conv_depth'],
    ['inverted_conv.conv', 'conv_inverted'],
    ['point_conv.conv', 'conv_point'],
    ['point_conv.norm', 'norm'],
    ['conv.conv.', 'conv.'],
    ['conv1.conv', 'conv1'],
    ['conv2.conv', 'conv2'],
    ['conv2.norm', 'norm'],
    ['proj.norm', 'norm_out'],
    ['encoder.project_in.conv', flags.encoderConvInIsBlock ? 'encoder.conv_in.conv' : 'encoder.conv_in'],
    ['encoder.project_out.0.conv', 'encoder.conv_out'],
    ['encoder.stages', 'encoder.down_blocks'],
    ['decoder.project_in.conv', 'decoder.conv_in'],
    ['decoder.project_out.0', 'decoder.norm_out'],
    [
      'decoder.project_out.2.conv',
      flags.decoderConvOutIsBlock ? 'decoder.conv_out.conv' : 'decoder.conv_out',
    ],
    ['decoder.stages', 'decoder.up_blocks'],
  ];
}

/** How a diffusers tensor is cut from an original one: `rows` = the i-th of `of` equal row blocks. */
export interface MappedKey {
  readonly key: string;
  readonly rows?: { readonly index: number; readonly of: number };
}

/**
 * Maps one original-format key to its diffusers key(s): the renames, then the two splits — the
 * fused `qkv.conv.weight` [3C, C, 1, 1] becomes `to_q`/`to_k`/`to_v` (consecutive row thirds, 2-D)
 * and `proj.conv.weight` [C, C', 1, 1] becomes `to_out.weight` [C, C'].
 */
export function originalToDiffusersKey(key: string, flags: OriginalKeyFlags): MappedKey[] {
  let renamed = key;
  for (const [from, to] of renameRules(flags)) {
    renamed = typeof from === 'string' ? renamed.replaceAll(from, to) : renamed.replace(from, to);
  }
  if (renamed.endsWith('.qkv.conv.weight')) {
    const base = renamed.slice(0, -'qkv.conv.weight'.length);
    return ['to_q', 'to_k', 'to_v'].map((name, index) => ({
      key: `${base}${name}.weight`,
      rows: { index, of: 3 },
    }));
  }
  if (renamed.endsWith('.proj.conv.weight'))
    return [{ key: `${renamed.slice(0, -'proj.conv.weight'.length)}to_out.weight` }];
  return [{ key: renamed }];
}
