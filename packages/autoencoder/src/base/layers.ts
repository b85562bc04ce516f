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
