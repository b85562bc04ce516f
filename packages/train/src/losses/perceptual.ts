import type { HostTensor } from '@dcae/core';
import { DcaeError, formatShape, toFloat32 } from '@dcae/core';
import type { AttributeValue } from '@dcae/core/onnx';
import type { Emit } from '../autodiff/grad.js';

/**
 * The LPIPS perceptual distance with a VGG16 trunk, built on the training IR from user-supplied
 * weights (docs/training.md, "Losses"). dcae ships and downloads none: the caller passes a
 * safetensors file with torchvision's `features.N.weight/bias` keys for the 13 convolutions of
 * VGG16 up to relu5_3 and the five LPIPS heads `lin{0..4}.model.1.weight`. The network is frozen:
 * its weights are constants of the step graph, so only dX flows through it (to the reconstruction).
 */

const int = (value: number): AttributeValue => ({ kind: 'int', value });
const ints = (value: readonly number[]): AttributeValue => ({ kind: 'ints', value });

/** VGG16 `features` indices of the convolutions, grouped into the five LPIPS stages (relu1_2 … relu5_3). */
const STAGES: readonly (readonly number[])[] = [
  [0, 2],
  [5, 7],
  [10, 12, 14],
  [17, 19, 21],
  [24, 26, 28],
];
/** Output channels of each stage in VGG16. */
const STAGE_CHANNELS = [64, 128, 256, 512, 512];
/** LPIPS's ScalingLayer: (x − shift) / scale per RGB channel, for inputs in [−1, 1]. */
const SHIFT = [-0.03, -0.088, -0.188];
const SCALE = [0.458, 0.448, 0.45];
/** LPIPS normalises each feature vector by its L2 norm + 1e-10. */
const NORM_EPS = 1e-10;
/**
 * Added under the square root of that norm, so that an all-zero feature vector (every channel of a
 * pixel dead after ReLU) gets a zero gradient instead of 0·∞ = NaN. It moves the norm by < 1e-10.
 */
const NORM_TINY = 1e-20;

export interface PerceptualOptions {
  /**
   * Divides every VGG16 width (64…512) by this factor. Test-only: the gradient checks run a
   * narrow network in float64; real weights always have the full widths. @defaultValue 1
   */
  readonly channelDivisor?: number;
}

/** Every key of a perceptual weights file and its shape (the real VGG16 + LPIPS layout at divisor 1). */
export function perceptualWeightShapes(options: PerceptualOptions = {}): Map<string, readonly number[]> {
  const div = options.channelDivisor ?? 1;
  if (!Number.isInteger(div) || div < 1 || STAGE_CHANNELS.some((c) => c % div !== 0))
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `channelDivisor is ${div}; expected a positive integer that divides 64 (e.g. 1, 2, 4, 8, 16).`,
    );
  const shapes = new Map<string, readonly number[]>();
  let cin = 3;
  STAGES.forEach((convs, s) => {
    const cout = STAGE_CHANNELS[s]! / div;
    for (const idx of convs) {
      shapes.set(`features.${idx}.weight`, [cout, cin, 3, 3]);
      shapes.set(`features.${idx}.bias`, [cout]);
      cin = cout;
    }
  });
  STAGES.forEach((_, s) => shapes.set(`lin${s}.model.1.weight`, [1, STAGE_CHANNELS[s]! / div, 1, 1]));
  return shapes;
}

/**
 * Checks `weights` against the VGG16 + LPIPS layout strictly: a missing key, a wrong shape or a key
 * that is not part of the layout is a WEIGHTS_MISMATCH error naming the key, expected vs actual.
 * Returns the tensors as float32 (F16/BF16 files are widened).
 */
export function checkPerceptualWeights(
  weights: ReadonlyMap<string, HostTensor>,
  options: PerceptualOptions = {},
): Map<string, HostTensor<'float32'>> {
  const expected = perceptualWeightShapes(options);
  const problems: string[] = [];
  for (const [key, shape] of expected) {
    const t = weights.get(key);
    if (!t) problems.push(`${key} is missing (expected shape ${formatShape(shape)})`);
    else if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i]))
      problems.push(`${key} has shape ${formatShape(t.shape)}, expected ${formatShape(shape)}`);
    else if (t.dtype !== 'float32' && t.dtype !== 'float16' && t.dtype !== 'bfloat16')
      problems.push(`${key} is ${t.dtype}, expected float32, float16 or bfloat16`);
  }
  for (const key of weights.keys())
    if (!expected.has(key)) problems.push(`${key} is not part of the VGG16/LPIPS layout`);
  if (problems.length)
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `Perceptual weights do not match the VGG16/LPIPS layout (${problems.length} problem${problems.length > 1 ? 's' : ''}): ` +
        `${problems.slice(0, 8).join('; ')}${problems.length > 8 ? '; …' : ''}. ` +
        'Expected torchvision vgg16 features.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias} and LPIPS lin{0..4}.model.1.weight only; see docs/training.md, "Losses", for the conversion.',
    );
  return new Map([...expected.keys()].map((key) => [key, toFloat32(weights.get(key)!)]));
}

/** The five LPIPS feature maps (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3) of `x`. */
function vggFeatures(e: Emit, x: string, w: ReadonlyMap<string, string>): string[] {
  const shift = e.g.constant({ dtype: 'float32', shape: [1, 3, 1, 1], data: Float32Array.from(SHIFT) });
  const scale = e.g.constant({ dtype: 'float32', shape: [1, 3, 1, 1], data: Float32Array.from(SCALE) });
  let h = e.div(e.sub(x, shift), scale);
  const taps: string[] = [];
  STAGES.forEach((convs, s) => {
    if (s > 0)
      h = e.g.op1('MaxPool', [h], {
        kernel_shape: ints([2, 2]),
        pads: ints([0, 0, 0, 0]),
        strides: ints([2, 2]),
      });
    for (const idx of convs) {
      const conv = e.g.op1('Conv', [h, w.get(`features.${idx}.weight`)!, w.get(`features.${idx}.bias`)!], {
        dilations: ints([1, 1]),
        group: int(1),
        kernel_shape: ints([3, 3]),
        pads: ints([1, 1, 1, 1]),
        strides: ints([1, 1]),
      });
      h = e.g.op1('Relu', [conv]);
    }
    taps.push(h);
  });
  return taps;
}

/** f / (‖f‖₂ over channels + 1e-10), LPIPS's normalize_tensor. */
function unitChannels(e: Emit, f: string): string {
  const norm = e.g.op1('Sqrt', [e.add(e.reduceSum(e.mul(f, f), [1], true), e.f32(NORM_TINY))]);
  return e.div(f, e.add(norm, e.f32(NORM_EPS)));
}

/**
 * LPIPS(x, y) averaged over the batch: Σ over the five stages of the spatial mean of
 * lin_s((n(φ_s(x)) − n(φ_s(y)))²), n = unit-normalised channels, lin_s a 1×1 conv to one channel.
 * `x` and `y` are [N, 3, H, W] in [−1, 1] with H, W ≥ 16 (four 2×2 max-pools).
 */
export function perceptualLoss(
  e: Emit,
  x: string,
  y: string,
  weights: ReadonlyMap<string, HostTensor>,
  options: PerceptualOptions = {},
): string {
  const [, c, h, wd] = e.shape(x) as [number, number, number, number];
  if (c !== 3 || h < 16 || wd < 16)
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `The perceptual loss needs RGB images of at least 16×16 pixels (VGG16 pools four times); got ${c} channels, ${h}×${wd}.`,
    );
  const checked = checkPerceptualWeights(weights, options);
  const names = new Map<string, string>();
  for (const [key, t] of checked) names.set(key, e.g.constant(t, 'float32', `/perceptual/${key}`));
  const fx = vggFeatures(e, x, names);
  const fy = vggFeatures(e, y, names);
  let total: string | undefined;
  fx.forEach((a, s) => {
    const d = e.sub(unitChannels(e, a), unitChannels(e, fy[s]!));
    const lin = e.g.op1('Conv', [e.mul(d, d), names.get(`lin${s}.model.1.weight`)!], {
      dilations: ints([1, 1]),
      group: int(1),
      kernel_shape: ints([1, 1]),
      pads: ints([0, 0, 0, 0]),
      strides: ints([1, 1]),
    });
    const term = e.reduceMean(lin, [2, 3], true);
    total = total ? e.add(total, term) : term;
  });
  return e.reduceMean(total!, [0, 1, 2, 3], false);
}
