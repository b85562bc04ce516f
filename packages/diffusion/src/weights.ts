import type { SafetensorsHeader } from '@dcae/core';
import { DcaeError, formatShape, numel } from '@dcae/core';
import type { InitializerData, ParamResolver } from '@dcae/core/onnx';

/** How many entries of each kind a WEIGHTS_MISMATCH message lists (all of them are in `detail`). */
const LISTED = 12;

export interface CheckpointBinding {
  /** Resolves `<key>` to the tensor `<prefix><key>` of the file, as ONNX external data. */
  readonly resolve: ParamResolver;
  /** Throws one WEIGHTS_MISMATCH listing every missing, wrong and unused tensor, if there is any. */
  readonly finish: () => void;
}

/**
 * Binds graph parameters to the tensors of a safetensors file in place: each initializer points at
 * the tensor's bytes (ONNX external data with `location`), nothing is copied. Only float32 tensors
 * under `prefix` are used; tensors under other prefixes (e.g. `autoencoder.`) are ignored.
 */
export function bindCheckpoint(
  header: SafetensorsHeader,
  options: { readonly prefix: string; readonly location: string; readonly source: string },
): CheckpointBinding {
  const { prefix, location, source } = options;
  const used = new Set<string>();
  const missing: string[] = [];
  const wrong: string[] = [];

  const resolve: ParamResolver = (key, expectedShape): InitializerData => {
    const name = prefix + key;
    used.add(name);
    const info = header.tensors.get(name);
    const placeholder: InitializerData = {
      kind: 'external',
      dtype: 'float32',
      shape: expectedShape,
      location,
      offset: 0,
      length: numel(expectedShape) * 4,
    };
    if (info === undefined) {
      missing.push(`${name} ${formatShape(expectedShape)}`);
      return placeholder;
    }
    const sameShape =
      info.shape.length === expectedShape.length && info.shape.every((d, i) => d === expectedShape[i]);
    if (info.dtype !== 'F32' || !sameShape) {
      wrong.push(
        `${name}: expected F32 ${formatShape(expectedShape)}, found ${info.dtype} ${formatShape(info.shape)}`,
      );
      return placeholder;
    }
    return {
      kind: 'external',
      dtype: 'float32',
      shape: expectedShape,
      location,
      offset: header.dataStart + info.begin,
      length: info.end - info.begin,
    };
  };

  const finish = () => {
    const unused = [...header.tensors.keys()].filter((name) => name.startsWith(prefix) && !used.has(name));
    if (missing.length + wrong.length + unused.length === 0) return;
    const section = (title: string, entries: string[]) =>
      entries.length === 0
        ? []
        : [
            `${entries.length} ${title}:`,
            ...entries.slice(0, LISTED).map((entry) => `  - ${entry}`),
            ...(entries.length > LISTED ? [`  … and ${entries.length - LISTED} more`] : []),
          ];
    const lines = [
      ...section('missing', missing),
      ...section('with the wrong dtype or shape', wrong),
      ...section(`unexpected under "${prefix}"`, unused),
    ];
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `${source} does not match the model's config:\n${lines.join('\n')}\nCheck that config.json belongs to this weights file.`,
      { source, detail: { missing, wrong, unused } },
    );
  };

  return { resolve, finish };
}
