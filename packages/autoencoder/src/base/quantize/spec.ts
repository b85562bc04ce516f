import { DcaeError, parseJsonConfig } from '@dcae/core';
import type { ActivationRanges, TensorRange } from './qdq.js';

/**
 * `quantization.json`: what `dcae quantize` (`calibrateAutoencoder`) writes next to the int8
 * artefacts, and what `loadAutoencoder({ dtype: 'int8' })` reads. Ranges are keyed by the tensor
 * names of the float32 graph dcae builds for the model, so they belong to one model and one graph
 * version (`graphVersion`).
 */

export const QUANTIZATION_FILE = 'quantization.json';
export const QUANTIZATION_FORMAT = 'dcae-qdq-int8';
/** Bumped whenever the float graph's tensor names change. */
export const QUANTIZATION_GRAPH_VERSION = 1;

export interface QuantizationPart {
  readonly ranges: ActivationRanges;
}

export interface QuantizationSpec {
  readonly format: typeof QUANTIZATION_FORMAT;
  readonly graphVersion: number;
  /** The model the ranges were calibrated on (its name, for messages). */
  readonly model: string;
  readonly weights: 'int8 per-channel symmetric';
  readonly activations: 'uint8 per-tensor asymmetric (min/max)';
  /** Modules whose Conv stays float32. */
  readonly keepFloat: readonly string[];
  readonly parts: { readonly encoder?: QuantizationPart; readonly decoder?: QuantizationPart };
  /** The calibration images (file names next to quantization.json), and the size of the first. */
  readonly calibration: {
    readonly images: readonly string[];
    readonly height: number;
    readonly width: number;
  };
}

function invalid(source: string, why: string): DcaeError {
  return new DcaeError(
    'QUANTIZATION_INVALID',
    `${source}: ${why}. Produce it with \`dcae quantize\` for this model and dcae version.`,
    { source },
  );
}

/** Parses and checks a quantization.json text (QUANTIZATION_INVALID on anything unexpected). */
export function parseQuantizationSpec(text: string, source: string): QuantizationSpec {
  const json = parseJsonConfig(text, { source }) as unknown;
  if (typeof json !== 'object' || json === null || Array.isArray(json))
    throw invalid(source, 'not a JSON object');
  const o = json as Record<string, unknown>;
  if (o.format !== QUANTIZATION_FORMAT)
    throw invalid(source, `format is ${JSON.stringify(o.format)}, expected "${QUANTIZATION_FORMAT}"`);
  if (o.graphVersion !== QUANTIZATION_GRAPH_VERSION)
    throw invalid(
      source,
      `graphVersion is ${JSON.stringify(o.graphVersion)}, this dcae builds graph version ${QUANTIZATION_GRAPH_VERSION}`,
    );
  if (!Array.isArray(o.keepFloat) || !o.keepFloat.every((k) => typeof k === 'string'))
    throw invalid(source, 'keepFloat must be a list of module paths');
  const parts = o.parts as Record<string, unknown> | undefined;
  if (typeof parts !== 'object' || parts === null) throw invalid(source, 'parts is missing');
  for (const [part, value] of Object.entries(parts)) {
    if (part !== 'encoder' && part !== 'decoder') throw invalid(source, `unknown part "${part}"`);
    const ranges = (value as { ranges?: unknown } | null)?.ranges;
    if (typeof ranges !== 'object' || ranges === null)
      throw invalid(source, `parts.${part}.ranges is missing`);
    for (const [tensor, r] of Object.entries(ranges)) {
      const { min, max } = (r ?? {}) as Partial<TensorRange>;
      if (typeof min !== 'number' || typeof max !== 'number' || !(min <= max))
        throw invalid(source, `parts.${part}.ranges["${tensor}"] must be { min, max } with min <= max`);
    }
  }
  const calibration = o.calibration as QuantizationSpec['calibration'] | undefined;
  if (!calibration || !Array.isArray(calibration.images))
    throw invalid(source, 'calibration.images is missing');
  return json as QuantizationSpec;
}

export function formatQuantizationSpec(spec: QuantizationSpec): string {
  return `${JSON.stringify(spec, null, 1)}\n`;
}
