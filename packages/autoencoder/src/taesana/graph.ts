import { GraphBuilder } from '@dcae/core/onnx';
import type { Module, OnnxModel, ParamResolver, Value } from '@dcae/core/onnx';
import type { GraphDType } from '../base/io.js';
import { DECODER_IO, ENCODER_IO, graphInput, graphOutput } from '../base/io.js';
import { conv2d } from '../base/layers.js';
import type { TaesanaLayer } from './layers.js';
import {
  TAESANA_COMPRESSION,
  TAESANA_DECODER,
  TAESANA_ENCODER,
  TAESANA_LATENT_CHANNELS,
  TAESANA_LATENT_SCALE,
} from './layers.js';

/**
 * TAESANA's graphs. Weights are read as `encoder.<key>` / `decoder.<key>` (the key of the
 * network's own .pth). At the boundary they speak dcae's conventions, each conversion done once
 * here (docs/taesana.md):
 * - images are [-1, 1] (TAESANA's are [0, 1]): encoder input `x · 0.5 + 0.5`, decoder output `2y − 1`;
 * - latents are unscaled DC-AE f32c32-sana latents (TAESANA's are × 0.41407): encoder output
 *   ÷ 0.41407, decoder input × 0.41407, before the decoder's own `3·tanh(x/3)` clamp.
 */
export interface TaesanaGraphOptions {
  readonly params: ParamResolver;
  /** Compute dtype (weights are cast to it). @defaultValue 'float32' */
  readonly dtype?: GraphDType;
  /** Input and output dtype. @defaultValue 'float32' */
  readonly io?: GraphDType;
  /** Also output each layer listed in the fixture's intermediates (`encode/<i>.<Kind>`, `decode/<i>.<Kind>`). */
  readonly intermediates?: boolean;
  readonly metadata?: Readonly<Record<string, string>>;
}

const KIND_NAMES: Readonly<Record<TaesanaLayer['kind'], string>> = {
  conv: 'Conv2d',
  relu: 'ReLU',
  block: 'Block',
  clamp: 'Clamp',
  upsample: 'Upsample',
};

function builder(name: string, options: TaesanaGraphOptions): GraphBuilder {
  return new GraphBuilder({
    name,
    params: options.params,
    metadata: {
      architecture: 'TAESANA',
      spatial_compression_ratio: String(TAESANA_COMPRESSION),
      latent_channels: String(TAESANA_LATENT_CHANNELS),
      latent_scale: String(TAESANA_LATENT_SCALE),
      dtype: options.dtype ?? 'float32',
      ...options.metadata,
    },
  });
}

/** Runs one Sequential; `tap(i, kind, value)` sees every layer's output. */
function sequential(
  m: Module,
  x: Value,
  layers: readonly TaesanaLayer[],
  tap?: (index: number, kind: string, value: Value) => void,
): Value {
  let h = x;
  layers.forEach((layer, i) => {
    const l = m.child(i);
    switch (layer.kind) {
      case 'conv':
        h = conv2d(l, h, layer.in, layer.out, { kernel: 3, stride: layer.stride, bias: layer.bias });
        break;
      case 'relu':
        h = l.relu(h);
        break;
      case 'clamp':
        // 3 · tanh(x / 3)
        h = l.mul(l.tanh(l.div(h, l.constant(3, h.dtype))), l.constant(3, h.dtype));
        break;
      case 'upsample':
        // nn.Upsample(scale_factor=2), mode nearest: source index ⌊dst / 2⌋.
        h = l.resize(h, {
          scales: [1, 1, 2, 2],
          mode: 'nearest',
          coordinateTransformationMode: 'asymmetric',
          nearestMode: 'floor',
        });
        break;
      case 'block': {
        const c = layer.channels;
        const inner = l.child('conv');
        let y = conv2d(inner.child(0), h, c, c, { kernel: 3 });
        y = inner.relu(y);
        y = conv2d(inner.child(2), y, c, c, { kernel: 3 });
        y = inner.relu(y);
        y = conv2d(inner.child(4), y, c, c, { kernel: 3 });
        h = l.relu(l.add(y, h));
        break;
      }
    }
    tap?.(i, KIND_NAMES[layer.kind], h);
  });
  return h;
}

/** `sample` [B, 3, H, W] in [-1, 1] → `latent_sample` [B, 32, H/32, W/32], unscaled DC-AE-sana latent space. */
export function buildTaesanaEncoderGraph(options: TaesanaGraphOptions): OnnxModel {
  const g = builder('taesana_encoder', options);
  const m = g.root.child('encoder');
  const x = graphInput(g, ENCODER_IO.input, ['batch_size', 3, 'height', 'width'], options);
  const x01 = m.add(m.mul(x, m.constant(0.5, x.dtype)), m.constant(0.5, x.dtype));
  const tap = options.intermediates
    ? (i: number, kind: string, v: Value) => g.output(v, `encode/${i}.${kind}`, undefined)
    : undefined;
  const z = sequential(m, x01, TAESANA_ENCODER, tap);
  const unscaled = m.div(z, m.constant(TAESANA_LATENT_SCALE, z.dtype));
  graphOutput(
    g,
    unscaled,
    ENCODER_IO.output,
    ['batch_size', TAESANA_LATENT_CHANNELS, 'latent_height', 'latent_width'],
    options,
  );
  return g.build();
}

/** `latent_sample` [B, 32, h, w] (unscaled) → `sample` [B, 3, 32h, 32w] in about [-1, 1], not clamped. */
export function buildTaesanaDecoderGraph(options: TaesanaGraphOptions): OnnxModel {
  const g = builder('taesana_decoder', options);
  const m = g.root.child('decoder');
  const z = graphInput(
    g,
    DECODER_IO.input,
    ['batch_size', TAESANA_LATENT_CHANNELS, 'latent_height', 'latent_width'],
    options,
  );
  const scaled = m.mul(z, m.constant(TAESANA_LATENT_SCALE, z.dtype));
  const tap = options.intermediates
    ? (i: number, kind: string, v: Value) => g.output(v, `decode/${i}.${kind}`, undefined)
    : undefined;
  const y01 = sequential(m, scaled, TAESANA_DECODER, tap);
  const y = m.sub(m.mul(y01, m.constant(2, y01.dtype)), m.constant(1, y01.dtype));
  graphOutput(g, y, DECODER_IO.output, ['batch_size', 3, 'height', 'width'], options);
  return g.build();
}
