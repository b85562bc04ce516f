import type { HostTensor } from '@dcae/core';
import { createRng, DcaeError } from '@dcae/core';
import type { AttributeValue } from '@dcae/core/onnx';
import type { Emit } from '../autodiff/grad.js';
import type { IrGraph } from '../ir/graph.js';

/**
 * The PatchGAN discriminator of DHRA phase 3 and its hinge losses (docs/training.md, "The GAN term").
 * An N-layer PatchGAN: `layers` 4×4 stride-2 convs with LeakyReLU(0.2), one 4×4 stride-1 conv with
 * LeakyReLU, and a 4×4 stride-1 conv to a one-channel map of patch logits. Channels start at
 * `channels` and double per stride-2 layer, up to 8×.
 *
 * No normalisation layer: every conv has a bias instead. BatchNorm in training mode would make each
 * patch logit depend on the rest of the batch (real and fake batches would have to be normalised
 * apart) and needs running statistics as extra state; ActNorm needs a data-dependent
 * initialisation. Without a norm the discriminator is a plain composition of Conv and LeakyRelu,
 * which the engine differentiates exactly and the float64 gradient check covers.
 */

export interface DiscriminatorSpec {
  /** Channels of the first conv (PatchGAN's `ndf`). @defaultValue 64 */
  readonly channels: number;
  /** Stride-2 convs (PatchGAN's `n_layers`). @defaultValue 3 */
  readonly layers: number;
  /** Optimizer steps before the GAN term starts: before it, the term has weight 0 and the discriminator does not train. @defaultValue 0 */
  readonly startStep: number;
  /** AdamW betas of the discriminator's optimizer. @defaultValue [0.5, 0.9] */
  readonly betas: readonly [number, number];
}

export const DEFAULT_DISCRIMINATOR: DiscriminatorSpec = {
  channels: 64,
  layers: 3,
  startStep: 0,
  betas: [0.5, 0.9],
};

/** LeakyReLU slope and weight-init standard deviation of PatchGAN. */
const LEAKY_SLOPE = 0.2;
const INIT_STD = 0.02;
const KERNEL = 4;

export interface DiscriminatorLayer {
  /** Key prefix: the tensors are `<prefix>.weight` [out, in, 4, 4] and `<prefix>.bias` [out]. */
  readonly prefix: string;
  readonly inChannels: number;
  readonly outChannels: number;
  readonly stride: 1 | 2;
  /** LeakyReLU after the conv (every layer but the last). */
  readonly activation: boolean;
}

/** The spec with defaults filled in, validated (INVALID_ARGUMENT naming the field). */
export function resolveDiscriminatorSpec(spec: Partial<DiscriminatorSpec> | undefined): DiscriminatorSpec {
  const s: DiscriminatorSpec = { ...DEFAULT_DISCRIMINATOR, ...(spec ?? {}) };
  const bad = (field: string, expected: string, value: unknown): never => {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `discriminator.${field} must be ${expected}, got ${JSON.stringify(value)}.`,
      { detail: { field: `discriminator.${field}`, expected, actual: value } },
    );
  };
  if (!Number.isSafeInteger(s.channels) || s.channels < 1 || s.channels > 1024)
    bad('channels', 'an integer in [1, 1024]', s.channels);
  if (!Number.isSafeInteger(s.layers) || s.layers < 1 || s.layers > 8)
    bad('layers', 'an integer in [1, 8]', s.layers);
  if (!Number.isSafeInteger(s.startStep) || s.startStep < 0) bad('startStep', 'an integer ≥ 0', s.startStep);
  const betas = s.betas as unknown;
  if (
    !Array.isArray(betas) ||
    betas.length !== 2 ||
    !betas.every((b) => typeof b === 'number' && b >= 0 && b < 1)
  )
    bad('betas', 'two numbers in [0, 1)', betas);
  return s;
}

/** The conv stack of a discriminator over `inChannels`-channel images. */
export function discriminatorLayers(spec: DiscriminatorSpec, inChannels: number): DiscriminatorLayer[] {
  const width = (n: number): number => spec.channels * Math.min(2 ** n, 8);
  const out: DiscriminatorLayer[] = [];
  let c = inChannels;
  for (let n = 0; n < spec.layers; n++) {
    out.push({ prefix: `layers.${n}`, inChannels: c, outChannels: width(n), stride: 2, activation: true });
    c = width(n);
  }
  const last = width(spec.layers);
  out.push({
    prefix: `layers.${spec.layers}`,
    inChannels: c,
    outChannels: last,
    stride: 1,
    activation: true,
  });
  out.push({
    prefix: `layers.${spec.layers + 1}`,
    inChannels: last,
    outChannels: 1,
    stride: 1,
    activation: false,
  });
  return out;
}

/** Side of the patch-logit map for an input side `size` (4×4 kernels, padding 1). */
export function discriminatorOutputSize(spec: DiscriminatorSpec, size: number): number {
  let s = size;
  for (let n = 0; n < spec.layers; n++) s = Math.floor((s + 2 - KERNEL) / 2) + 1;
  return s - 2;
}

/** Throws INPUT_SIZE when `height`×`width` images leave no patch logit. */
export function checkDiscriminatorInput(spec: DiscriminatorSpec, height: number, width: number): void {
  const h = discriminatorOutputSize(spec, height);
  const w = discriminatorOutputSize(spec, width);
  if (h < 1 || w < 1)
    throw new DcaeError(
      'INPUT_SIZE',
      `A ${spec.layers}-layer PatchGAN discriminator leaves no patch on ${width}×${height} crops (output ${Math.max(w, 0)}×${Math.max(h, 0)}); use a larger size or fewer discriminator layers.`,
      { detail: { height, width, layers: spec.layers } },
    );
}

/**
 * Fresh discriminator weights: conv weights N(0, 0.02²) as in PatchGAN, biases 0, from a seeded
 * stream of the core's generator (a stream apart from the autoencoder's `--init random` one).
 */
export function initDiscriminatorWeights(
  spec: DiscriminatorSpec,
  inChannels: number,
  seed: number,
): Map<string, HostTensor> {
  const rng = createRng((BigInt(seed) << 32n) ^ 0xd15c_0001n);
  const out = new Map<string, HostTensor>();
  for (const layer of discriminatorLayers(spec, inChannels)) {
    const shape = [layer.outChannels, layer.inChannels, KERNEL, KERNEL];
    const data = rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 0, INIT_STD);
    out.set(`${layer.prefix}.weight`, { dtype: 'float32', shape, data });
    out.set(`${layer.prefix}.bias`, {
      dtype: 'float32',
      shape: [layer.outChannels],
      data: new Float32Array(layer.outChannels),
    });
  }
  return out;
}

/**
 * Checks that `weights` holds exactly the tensors of `spec` (names, float32, shapes); WEIGHTS_MISMATCH
 * lists the differences.
 */
export function checkDiscriminatorWeights(
  spec: DiscriminatorSpec,
  inChannels: number,
  weights: ReadonlyMap<string, HostTensor>,
  source = 'discriminator weights',
): void {
  const problems: string[] = [];
  const expected = new Set<string>();
  for (const layer of discriminatorLayers(spec, inChannels)) {
    for (const [name, shape] of [
      ['weight', [layer.outChannels, layer.inChannels, KERNEL, KERNEL]],
      ['bias', [layer.outChannels]],
    ] as const) {
      const key = `${layer.prefix}.${name}`;
      expected.add(key);
      const t = weights.get(key);
      if (!t) problems.push(`missing ${key} [${shape.join(', ')}]`);
      else if (t.dtype !== 'float32' || t.shape.join(',') !== shape.join(','))
        problems.push(
          `${key}: expected float32 [${shape.join(', ')}], got ${t.dtype} [${t.shape.join(', ')}]`,
        );
    }
  }
  for (const key of weights.keys()) if (!expected.has(key)) problems.push(`unexpected ${key}`);
  if (problems.length)
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `${source} do not match a ${spec.layers}-layer PatchGAN with ${spec.channels} channels: ${problems.slice(0, 12).join('; ')}.`,
      { source, detail: { problems } },
    );
}

const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });

/**
 * Appends the discriminator to `g` on images `x` [B, C, H, W]: returns the patch logits
 * [B, 1, h, w]. Its tensors are graph weights named by `name(key)` (added when missing), so the
 * caller decides whether they are trainable inputs, fed frozen inputs, or initializers.
 */
export function discriminatorForward(
  g: IrGraph,
  x: string,
  spec: DiscriminatorSpec,
  weights: ReadonlyMap<string, HostTensor>,
  name: (key: string) => string = (key) => key,
): string {
  const inChannels = g.shape(x)[1]!;
  let h = x;
  for (const layer of discriminatorLayers(spec, inChannels)) {
    const ref = (suffix: string): string => {
      const key = `${layer.prefix}.${suffix}`;
      const n = name(key);
      if (!g.weights.has(n)) {
        const t = weights.get(key);
        if (!t)
          throw new DcaeError('WEIGHTS_MISMATCH', `The discriminator weights have no ${key}.`, {
            detail: { key },
          });
        g.addWeight(n, t);
      }
      return n;
    };
    h = g.op1(
      'Conv',
      [h, ref('weight'), ref('bias')],
      {
        dilations: ints([1, 1]),
        group: { kind: 'int', value: 1 },
        kernel_shape: ints([KERNEL, KERNEL]),
        pads: ints([1, 1, 1, 1]),
        strides: ints([layer.stride, layer.stride]),
      },
      `/discriminator/${layer.prefix}/Conv`,
    );
    if (layer.activation)
      h = g.op1(
        'LeakyRelu',
        [h],
        { alpha: { kind: 'float', value: LEAKY_SLOPE } },
        `/discriminator/${layer.prefix}/LeakyRelu`,
      );
  }
  return h;
}

function mean(e: Emit, v: string): string {
  return e.reduceMean(
    v,
    e.shape(v).map((_, i) => i),
    false,
  );
}

export interface HingeDiscriminatorLoss {
  /** mean(relu(1 − D(x))) + mean(relu(1 + D(x̂))). */
  readonly loss: string;
  /** mean D(x) and mean D(x̂) (raw logits, for the metrics). */
  readonly real: string;
  readonly fake: string;
}

/** The discriminator's hinge loss on real and fake patch logits. */
export function hingeDiscriminatorLoss(
  e: Emit,
  realLogits: string,
  fakeLogits: string,
): HingeDiscriminatorLoss {
  const one = e.f32(1);
  const lossReal = mean(e, e.g.op1('Relu', [e.sub(one, realLogits)]));
  const lossFake = mean(e, e.g.op1('Relu', [e.add(one, fakeLogits)]));
  return { loss: e.add(lossReal, lossFake), real: mean(e, realLogits), fake: mean(e, fakeLogits) };
}

/** The generator's hinge term −mean(D(x̂)). */
export function hingeGeneratorTerm(e: Emit, fakeLogits: string): string {
  return e.neg(mean(e, fakeLogits));
}
