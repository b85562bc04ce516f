import type { DType } from '@dcae/core';
import type { Module, Value } from '@dcae/core/onnx';

/** Activation functions the families' blocks use (diffusers names; `swish` is read as `silu`). */
export type Activation = 'relu' | 'silu' | 'gelu' | 'mish';

/** diffusers `get_activation`. */
export function activation(m: Module, x: Value, act: Activation): Value {
  switch (act) {
    case 'relu':
      return m.relu(x);
    case 'silu':
      return m.silu(x);
    case 'gelu':
      return m.gelu(x, 'none');
    case 'mish':
      return m.mul(x, m.tanh(m.op('Softplus', [x])[0]!));
  }
}

export interface Conv2dSpec {
  readonly kernel: number;
  readonly stride?: number;
  readonly groups?: number;
  /** @defaultValue true */
  readonly bias?: boolean;
}

/** The checkpoint tensor `<m>.<name>` in `dtype`: cast when the checkpoint stores another float type. */
export function weight(m: Module, name: string, shape: readonly number[], dtype: DType): Value {
  const w = m.param(name, shape);
  return w.dtype === dtype ? w : m.cast(w, dtype);
}

/** `nn.Conv2d(inC, outC, k, stride, padding=k//2, groups)` with weights `<m>.weight` / `<m>.bias`. */
export function conv2d(
  m: Module,
  x: Value,
  inChannels: number,
  outChannels: number,
  spec: Conv2dSpec,
): Value {
  const { kernel: k, stride = 1, groups = 1, bias = true } = spec;
  const p = Math.floor(k / 2);
  const w = weight(m, 'weight', [outChannels, inChannels / groups, k, k], x.dtype);
  return m.conv(x, w, bias ? weight(m, 'bias', [outChannels], x.dtype) : undefined, {
    strides: [stride, stride],
    pads: [p, p, p, p],
    group: groups,
  });
}
