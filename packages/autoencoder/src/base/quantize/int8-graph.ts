import { DcaeError } from '@dcae/core';
import type { HostTensor, SafetensorsFile } from '@dcae/core';
import type { OnnxModel, ParamResolver } from '@dcae/core/onnx';
import type { ModelFiles } from '@dcae/hub';
import type { AutoencoderPart } from '../io.js';
import type { WeightBinding } from '../weights.js';
import { checkpointParams, foldedInitializers, readBound } from '../weights.js';
import { quantizeGraph } from './qdq.js';
import type { QuantizationSpec } from './spec.js';
import { parseQuantizationSpec, QUANTIZATION_FILE } from './spec.js';

/**
 * The int8 graph of one part: the float32 graph with every weight read into memory (float32),
 * then rewritten by `quantizeGraph` with the spec's ranges. The int8 weights are inline; the
 * model no longer reads the checkpoint.
 */
export async function buildInt8Graph(
  file: SafetensorsFile,
  binding: WeightBinding,
  part: AutoencoderPart,
  spec: QuantizationSpec,
  weightsFile: string,
  build: (params: ParamResolver) => Promise<OnnxModel> | OnnxModel,
  onTensor?: (done: number, total: number) => void,
): Promise<OnnxModel> {
  const ranges = spec.parts[part]?.ranges;
  if (!ranges) {
    throw new DcaeError(
      'QUANTIZATION_MISSING',
      `The quantization spec of ${spec.model} has no ranges for the ${part}; calibrate it with \`dcae quantize\` (with the ${part} loaded).`,
    );
  }
  const inline = new Map<string, HostTensor>(await foldedInitializers(file, binding, part));
  const keys = [...binding.tensors.keys()].filter((k) => k.startsWith(`${part}.`) && !inline.has(k));
  for (const [i, key] of keys.entries()) {
    inline.set(key, await readBound(file, binding, key));
    onTensor?.(i + 1, keys.length);
  }
  const model = await build(checkpointParams(binding, inline, weightsFile));
  return quantizeGraph(model, { ranges, keepFloat: spec.keepFloat });
}

/** The spec given at load, else `quantization.json` in the model folder; QUANTIZATION_MISSING when neither exists. */
export async function resolveQuantizationSpec(
  files: ModelFiles,
  given: QuantizationSpec | undefined,
): Promise<QuantizationSpec> {
  if (given !== undefined) return given;
  if ((await files.list()).includes(QUANTIZATION_FILE)) {
    return parseQuantizationSpec(
      await files.readText(QUANTIZATION_FILE),
      `${files.name}/${QUANTIZATION_FILE}`,
    );
  }
  throw new DcaeError(
    'QUANTIZATION_MISSING',
    `dtype 'int8' needs calibrated activation ranges, and ${files.name} has no ${QUANTIZATION_FILE}. ` +
      'Run `dcae quantize --model <model> --calibration <photos…> -o <dir>` and pass the spec ' +
      '(`--quantization <dir>/quantization.json`, or `quantization` in the API), or use dtype fp32.',
    { source: `${files.name}/${QUANTIZATION_FILE}` },
  );
}
