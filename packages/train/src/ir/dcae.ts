import type { HostTensor } from '@dcae/core';
import { DcaeError, formatShape } from '@dcae/core';
import type { DcAeConfig } from '@dcae/autoencoder';
import {
  buildDecoderGraph,
  buildEncoderGraph,
  dcAeCheckpointLayout,
  spatialCompressionRatio,
} from '@dcae/autoencoder';
import type { AttributeValue, OnnxNode } from '@dcae/core/onnx';
import { IrGraph, importModel } from './graph.js';

/**
 * The DC-AE forward graph for training: encoder and decoder graphs from @dcae/autoencoder composed
 * into one static graph `sample` [B, C, H, W] → latent → reconstruction. BatchNorm stays explicit
 * (eval mode): the inference graphs fold it into the conv before it, the training graph keeps the
 * conv weight and the BatchNorm weight/bias as separate trainable tensors and its running
 * statistics as frozen inputs (docs/training.md, "BatchNorm").
 */

const BN_EPS = 1e-5;

export interface DcAeForward {
  readonly g: IrGraph;
  /** The `sample` input [B, inC, H, W]. */
  readonly input: string;
  readonly latent: string;
  readonly output: string;
  /** Checkpoint keys the graph reads (the others, e.g. num_batches_tracked, are carried unchanged). */
  readonly usedKeys: readonly string[];
  /** Keys that never train: BatchNorm running statistics. */
  readonly statisticKeys: readonly string[];
}

export interface ForwardShape {
  readonly batch: number;
  readonly height: number;
  readonly width: number;
}

export function checkForwardShape(config: DcAeConfig, shape: ForwardShape): void {
  const f = spatialCompressionRatio(config);
  for (const [name, v] of Object.entries(shape))
    if (!Number.isInteger(v) || v <= 0)
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `Training ${name} is ${String(v)}; expected a positive integer.`,
      );
  if (shape.height % f !== 0 || shape.width % f !== 0)
    throw new DcaeError(
      'INPUT_SIZE',
      `Training size ${shape.height}×${shape.width} is not a multiple of the model's spatial compression ${f}; crop to a multiple of ${f} (e.g. ${Math.max(f, Math.round(shape.height / f) * f)}).`,
      { detail: { height: shape.height, width: shape.width, multiple: f } },
    );
}

/** Builds the composed static forward graph from diffusers-keyed float32 weights. */
export function buildDcAeForward(
  config: DcAeConfig,
  weights: ReadonlyMap<string, HostTensor>,
  shape: ForwardShape,
): DcAeForward {
  checkForwardShape(config, shape);
  const layout = dcAeCheckpointLayout(config);
  const foldByBias = new Map(layout.folds.map((f) => [f.bias, f]));
  const missing: string[] = [];
  const zeros = (expected: readonly number[]) => ({
    kind: 'inline' as const,
    tensor: {
      dtype: 'float32' as const,
      shape: expected,
      data: new Float32Array(expected.reduce((a, b) => a * b, 1)),
    },
  });
  const resolver = (key: string, expected: readonly number[]) => {
    // Placeholder for the folded bias the inference graph expects; replaced by explicit BatchNorm below.
    if (foldByBias.has(key)) return zeros(expected);
    const t = weights.get(key);
    if (!t || t.dtype !== 'float32' || formatShape(t.shape) !== formatShape(expected)) {
      missing.push(
        `${key} expected float32 ${formatShape(expected)}, ${t ? `got ${t.dtype} ${formatShape(t.shape)}` : 'missing'}`,
      );
      return zeros(expected);
    }
    return { kind: 'inline' as const, tensor: t };
  };
  const encoder = buildEncoderGraph(config, { params: resolver });
  const decoder = buildDecoderGraph(config, { params: resolver });
  if (missing.length)
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `The training weights do not match the DC-AE config (${missing.length} problems):\n  - ${missing.slice(0, 40).join('\n  - ')}`,
      {
        detail: { problems: missing },
      },
    );

  const g = new IrGraph();
  const input = g.addInput('sample', 'float32', [shape.batch, config.inChannels, shape.height, shape.width]);
  const statisticKeys: string[] = [];
  const weight = (key: string): string => {
    if (g.weights.has(key)) return key;
    const t = weights.get(key);
    if (!t || t.dtype !== 'float32')
      throw new DcaeError(
        'WEIGHTS_MISMATCH',
        `BatchNorm tensor ${key} is ${t ? t.dtype : 'missing'}; expected float32.`,
      );
    return g.addWeight(key, t);
  };
  const rewrite = (node: OnnxNode, inputs: readonly string[], gr: IrGraph): string[] | undefined => {
    const fold = node.opType === 'Conv' ? foldByBias.get(node.inputs[2] ?? '') : undefined;
    if (!fold) return undefined;
    const attrs: Record<string, AttributeValue> = { ...node.attributes };
    const y = gr.op1('Conv', [inputs[0], inputs[1]], attrs, node.name);
    const c = gr.shape(y)[1]!;
    const col = (v: string): string => gr.op1('Reshape', [v, gr.constant([c, 1, 1], 'int64')]);
    const mean = weight(`${fold.norm}.running_mean`);
    const variance = weight(`${fold.norm}.running_var`);
    statisticKeys.push(mean, variance);
    const inv = gr.op1('Reciprocal', [gr.op1('Sqrt', [gr.op1('Add', [variance, gr.constant(BN_EPS)])])]);
    const scale = gr.op1('Mul', [weight(`${fold.norm}.weight`), inv]);
    const centred = gr.op1('Sub', [y, col(mean)]);
    return [
      gr.op1(
        'Add',
        [gr.op1('Mul', [centred, col(scale)]), col(weight(`${fold.norm}.bias`))],
        {},
        `/${fold.norm.replaceAll('.', '/')}/BatchNorm`,
      ),
    ];
  };
  const isWeight = (name: string): boolean => weights.has(name) && !foldByBias.has(name);
  const enc = importModel(g, encoder, { inputs: new Map([['sample', input]]), isWeight, rewrite });
  const latent = enc.get('latent_sample')!;
  const dec = importModel(g, decoder, { inputs: new Map([['latent_sample', latent]]), isWeight, rewrite });
  const output = dec.get('sample')!;
  return { g, input, latent, output, usedKeys: [...g.weights.keys()], statisticKeys };
}

/** Glob over checkpoint keys: `*` matches any run of characters (dots included). */
export function globToRegExp(glob: string): RegExp {
  const escaped = glob.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '.*');
  return new RegExp(`^${escaped}$`);
}

/** The keys matched by `globs` (in `keys` order); every glob must match at least one key. */
export function matchTrainable(keys: readonly string[], globs: readonly string[]): string[] {
  if (globs.length === 0)
    throw new DcaeError(
      'INVALID_ARGUMENT',
      'No trainable globs given; pass e.g. ["*"] (all) or ["decoder.conv_out.*"].',
    );
  const patterns = globs.map((glob) => ({ glob, re: globToRegExp(glob) }));
  for (const { glob, re } of patterns)
    if (!keys.some((k) => re.test(k))) {
      const sample = keys.slice(0, 8).join(', ');
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `Trainable glob "${glob}" matches no trainable tensor of this model (diffusers key names, e.g. ${sample}, …).`,
        { detail: { glob } },
      );
    }
  return keys.filter((k) => patterns.some(({ re }) => re.test(k)));
}
