/**
 * A naive float64 AutoencoderKL in plain loops, written from diffusers' module definitions
 * (`vae.py` Encoder/Decoder, `resnet.py` ResnetBlock2D, `attention_processor.py` Attention with
 * AttnProcessor2_0, `downsampling.py`, `upsampling.py`) and independent of the ONNX graphs:
 * the reference the SD-VAE graphs are checked against. It also counts the multiply-accumulates
 * of every conv and attention matmul it does.
 */

/** One image's feature map [C, H, W]. */
export interface Map3 {
  readonly c: number;
  readonly h: number;
  readonly w: number;
  readonly data: Float64Array;
}

export interface ReferenceConfig {
  readonly inChannels: number;
  readonly outChannels: number;
  readonly latentChannels: number;
  readonly blockOutChannels: readonly number[];
  readonly layersPerBlock: number;
  readonly groups: number;
  readonly act: 'silu' | 'relu';
  readonly useQuantConv: boolean;
  readonly usePostQuantConv: boolean;
  readonly attention: boolean;
}

type Weights = ReadonlyMap<string, Float64Array>;

const EPS = 1e-6;

export class NaiveAutoencoderKL {
  macs = 0;
  constructor(
    readonly config: ReferenceConfig,
    readonly weights: Weights,
  ) {}

  #w(key: string): Float64Array {
    const t = this.weights.get(key);
    if (t === undefined) throw new Error(`reference: no weight ${key}`);
    return t;
  }

  /** Conv2d with zero padding [top, left, bottom, right]. */
  conv(
    x: Map3,
    key: string,
    outC: number,
    k: number,
    stride = 1,
    pads = [(k - 1) / 2, (k - 1) / 2, (k - 1) / 2, (k - 1) / 2],
  ): Map3 {
    const [pt, pl, pb, pr] = pads as [number, number, number, number];
    const w = this.#w(`${key}.weight`);
    const b = this.#w(`${key}.bias`);
    const h = Math.floor((x.h + pt + pb - k) / stride) + 1;
    const wd = Math.floor((x.w + pl + pr - k) / stride) + 1;
    const out = new Float64Array(outC * h * wd);
    for (let o = 0; o < outC; o++)
      for (let i = 0; i < h; i++)
        for (let j = 0; j < wd; j++) {
          let sum = b[o]!;
          for (let c = 0; c < x.c; c++)
            for (let u = 0; u < k; u++)
              for (let v = 0; v < k; v++) {
                const y = i * stride + u - pt;
                const z = j * stride + v - pl;
                if (y < 0 || y >= x.h || z < 0 || z >= x.w) continue;
                sum += w[((o * x.c + c) * k + u) * k + v]! * x.data[(c * x.h + y) * x.w + z]!;
              }
          out[(o * h + i) * wd + j] = sum;
        }
    this.macs += outC * h * wd * x.c * k * k;
    return { c: outC, h, w: wd, data: out };
  }

  groupNorm(x: Map3, key: string): Map3 {
    const gamma = this.#w(`${key}.weight`);
    const beta = this.#w(`${key}.bias`);
    const per = x.c / this.config.groups;
    const size = per * x.h * x.w;
    const out = new Float64Array(x.data.length);
    for (let g = 0; g < this.config.groups; g++) {
      const start = g * size;
      let mean = 0;
      for (let i = 0; i < size; i++) mean += x.data[start + i]!;
      mean /= size;
      let variance = 0;
      for (let i = 0; i < size; i++) variance += (x.data[start + i]! - mean) ** 2;
      variance /= size;
      const inv = 1 / Math.sqrt(variance + EPS);
      for (let i = 0; i < size; i++) {
        const c = g * per + Math.floor(i / (x.h * x.w));
        out[start + i] = (x.data[start + i]! - mean) * inv * gamma[c]! + beta[c]!;
      }
    }
    return { ...x, data: out };
  }

  act(x: Map3, kind: 'silu' | 'relu' = this.config.act): Map3 {
    const f = kind === 'silu' ? (v: number) => v / (1 + Math.exp(-v)) : (v: number) => Math.max(0, v);
    return { ...x, data: x.data.map(f) };
  }

  add(a: Map3, b: Map3): Map3 {
    return { ...a, data: a.data.map((v, i) => v + b.data[i]!) };
  }

  resnet(x: Map3, key: string, outC: number): Map3 {
    let h = this.act(this.groupNorm(x, `${key}.norm1`));
    h = this.conv(h, `${key}.conv1`, outC, 3);
    h = this.act(this.groupNorm(h, `${key}.norm2`));
    h = this.conv(h, `${key}.conv2`, outC, 3);
    const shortcut = x.c === outC ? x : this.conv(x, `${key}.conv_shortcut`, outC, 1);
    return this.add(shortcut, h);
  }

  /** Single-head attention over the H·W pixels, scale 1/√C, with the residual. */
  attention(x: Map3, key: string): Map3 {
    const { c } = x;
    const n = x.h * x.w;
    const h = this.groupNorm(x, `${key}.group_norm`);
    const linear = (name: string, input: (token: number, ch: number) => number): Float64Array => {
      const w = this.#w(`${key}.${name}.weight`);
      const b = this.#w(`${key}.${name}.bias`);
      const out = new Float64Array(n * c); // [token][channel]
      for (let t = 0; t < n; t++)
        for (let o = 0; o < c; o++) {
          let sum = b[o]!;
          for (let i = 0; i < c; i++) sum += w[o * c + i]! * input(t, i);
          out[t * c + o] = sum;
        }
      this.macs += n * c * c;
      return out;
    };
    const fromMap = (t: number, ch: number): number => h.data[ch * n + t]!;
    const q = linear('to_q', fromMap);
    const k = linear('to_k', fromMap);
    const v = linear('to_v', fromMap);
    const o = new Float64Array(n * c);
    const scores = new Float64Array(n);
    for (let t = 0; t < n; t++) {
      let max = -Infinity;
      for (let m = 0; m < n; m++) {
        let dot = 0;
        for (let i = 0; i < c; i++) dot += q[t * c + i]! * k[m * c + i]!;
        scores[m] = dot / Math.sqrt(c);
        max = Math.max(max, scores[m]!);
      }
      let total = 0;
      for (let m = 0; m < n; m++) {
        scores[m] = Math.exp(scores[m]! - max);
        total += scores[m]!;
      }
      for (let i = 0; i < c; i++) {
        let sum = 0;
        for (let m = 0; m < n; m++) sum += (scores[m]! / total) * v[m * c + i]!;
        o[t * c + i] = sum;
      }
    }
    this.macs += 2 * n * n * c;
    const projected = linear('to_out.0', (t, ch) => o[t * c + ch]!);
    const out = new Float64Array(c * n);
    for (let ch = 0; ch < c; ch++)
      for (let t = 0; t < n; t++) out[ch * n + t] = projected[t * c + ch]! + x.data[ch * n + t]!;
    return { ...x, data: out };
  }

  mid(x: Map3, key: string): Map3 {
    let h = this.resnet(x, `${key}.resnets.0`, x.c);
    if (this.config.attention) h = this.attention(h, `${key}.attentions.0`);
    return this.resnet(h, `${key}.resnets.1`, x.c);
  }

  nearest2x(x: Map3): Map3 {
    const out = new Float64Array(x.c * 4 * x.h * x.w);
    for (let c = 0; c < x.c; c++)
      for (let i = 0; i < 2 * x.h; i++)
        for (let j = 0; j < 2 * x.w; j++)
          out[(c * 2 * x.h + i) * 2 * x.w + j] = x.data[(c * x.h + (i >> 1)) * x.w + (j >> 1)]!;
    return { c: x.c, h: 2 * x.h, w: 2 * x.w, data: out };
  }

  /** The posterior mean: the first `latentChannels` channels of the moments. */
  encode(x: Map3): Map3 {
    const cfg = this.config;
    const widths = cfg.blockOutChannels;
    let h = this.conv(x, 'encoder.conv_in', widths[0]!, 3);
    widths.forEach((outC, i) => {
      for (let j = 0; j < cfg.layersPerBlock; j++)
        h = this.resnet(h, `encoder.down_blocks.${i}.resnets.${j}`, outC);
      if (i < widths.length - 1)
        h = this.conv(h, `encoder.down_blocks.${i}.downsamplers.0.conv`, outC, 3, 2, [0, 0, 1, 1]);
    });
    h = this.mid(h, 'encoder.mid_block');
    h = this.act(this.groupNorm(h, 'encoder.conv_norm_out'), 'silu');
    h = this.conv(h, 'encoder.conv_out', 2 * cfg.latentChannels, 3);
    if (cfg.useQuantConv) h = this.conv(h, 'quant_conv', 2 * cfg.latentChannels, 1);
    const size = cfg.latentChannels * h.h * h.w;
    return { c: cfg.latentChannels, h: h.h, w: h.w, data: h.data.slice(0, size) };
  }

  decode(z: Map3): Map3 {
    const cfg = this.config;
    const reversed = [...cfg.blockOutChannels].reverse();
    let h = cfg.usePostQuantConv ? this.conv(z, 'post_quant_conv', cfg.latentChannels, 1) : z;
    h = this.conv(h, 'decoder.conv_in', reversed[0]!, 3);
    h = this.mid(h, 'decoder.mid_block');
    reversed.forEach((outC, i) => {
      for (let j = 0; j <= cfg.layersPerBlock; j++)
        h = this.resnet(h, `decoder.up_blocks.${i}.resnets.${j}`, outC);
      if (i < reversed.length - 1)
        h = this.conv(this.nearest2x(h), `decoder.up_blocks.${i}.upsamplers.0.conv`, outC, 3);
    });
    h = this.act(this.groupNorm(h, 'decoder.conv_norm_out'), 'silu');
    return this.conv(h, 'decoder.conv_out', cfg.outChannels, 3);
  }
}

/** Runs `f` on each image of an NCHW batch and stacks the results. */
export function perImage(
  batch: { shape: readonly number[]; data: Float32Array },
  f: (x: Map3) => Map3,
): { shape: number[]; data: Float64Array } {
  const [n, c, h, w] = batch.shape as [number, number, number, number];
  const outs: Map3[] = [];
  for (let b = 0; b < n; b++) {
    const data = Float64Array.from(batch.data.subarray(b * c * h * w, (b + 1) * c * h * w));
    outs.push(f({ c, h, w, data }));
  }
  const first = outs[0]!;
  const data = new Float64Array(n * first.data.length);
  outs.forEach((o, b) => data.set(o.data, b * first.data.length));
  return { shape: [n, first.c, first.h, first.w], data };
}
