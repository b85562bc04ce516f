/**
 * Checks shared by the node and web adapters on what callers pass to `createSession()` and the
 * runtime factories. Options are matched strictly against the keys dcae knows, so nothing reaches
 * onnxruntime that could write files (optimizedModelFilePath, profiling) or load native code
 * (custom op libraries) — docs/reliability.md §9 B15.
 */
import { DcaeError } from '@dcae/core';
import type { ExternalDataFile, GraphOptimizationLevel, SessionOptions } from '@dcae/core/runtime';

const SESSION_OPTION_KEYS = ['graphOptimization', 'externalData', 'signal', 'maxInputElements'] as const;

/** onnxruntime session options that write files or load code, and why each is refused. */
const DANGEROUS_KEYS: Readonly<Record<string, string>> = {
  optimizedModelFilePath: 'it makes onnxruntime write the optimized model to a file',
  enableProfiling: 'it makes onnxruntime write profiling files',
  profileFilePrefix: 'it names the profiling files onnxruntime writes',
  registerCustomOpsLibrary: 'it loads a native library into the process',
  customOpsLibraries: 'it loads native libraries into the process',
  extra: 'its session.* keys reach onnxruntime unchecked (custom op libraries, file paths)',
  executionProviders: 'devices are chosen by the runtime settings, not per session',
};

/** @see SessionOptions.maxInputElements */
export const DEFAULT_MAX_INPUT_ELEMENTS = 2 ** 31;

const OPTIMIZATION_LEVELS: readonly GraphOptimizationLevel[] = ['disabled', 'basic', 'extended', 'all'];

/**
 * Throws CONFIG_NOT_ALLOWED when `value` has a key outside `known`, naming it and, for the
 * onnxruntime options that write files or load code, why it is refused.
 */
export function checkKnownKeys(value: object, known: readonly string[], where: string): void {
  for (const key of Object.keys(value)) {
    if (known.includes(key)) continue;
    const why = DANGEROUS_KEYS[key];
    throw new DcaeError(
      'CONFIG_NOT_ALLOWED',
      `${where}.${key} is not allowed` +
        (why ? `: ${why}. dcae never passes it to onnxruntime.` : `; dcae does not know this option.`) +
        ` Allowed: ${known.join(', ')}.`,
      { detail: { key, allowed: known } },
    );
  }
}

export function checkOptimizationLevel(
  level: unknown,
  where: string,
): asserts level is GraphOptimizationLevel {
  if (!OPTIMIZATION_LEVELS.includes(level as GraphOptimizationLevel)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${where} must be one of ${OPTIMIZATION_LEVELS.join(', ')}; got ${String(level)}.`,
    );
  }
}

export interface CheckedSessionOptions {
  readonly graphOptimization: GraphOptimizationLevel | undefined;
  readonly externalData: readonly ExternalDataFile[] | undefined;
  readonly signal: AbortSignal | undefined;
  readonly maxInputElements: number;
}

/**
 * Validates `createSession()` options: only known keys (CONFIG_NOT_ALLOWED), a valid optimization
 * level, a positive `maxInputElements`, and a well-formed external data list whose string `data`
 * means `stringData` (e.g. "a file path").
 */
export function checkSessionOptions(options: SessionOptions, stringData: string): CheckedSessionOptions {
  if (typeof options !== 'object' || options === null) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `createSession() options must be an object; got ${String(options)}.`,
    );
  }
  checkKnownKeys(options, SESSION_OPTION_KEYS, 'options');
  const { graphOptimization, externalData, signal, maxInputElements = DEFAULT_MAX_INPUT_ELEMENTS } = options;
  if (graphOptimization !== undefined) checkOptimizationLevel(graphOptimization, 'options.graphOptimization');
  if (!(Number.isSafeInteger(maxInputElements) && maxInputElements >= 1)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `options.maxInputElements must be a positive integer; got ${String(maxInputElements)}.`,
    );
  }
  if (externalData !== undefined) checkExternalDataList(externalData, stringData);
  return { graphOptimization, externalData, signal, maxInputElements };
}

/** Non-empty distinct locations; `data` a string (what `stringData` says) or bytes. */
function checkExternalDataList(files: readonly ExternalDataFile[], stringData: string): void {
  const list: unknown = files;
  if (!Array.isArray(list)) {
    throw new DcaeError('INVALID_ARGUMENT', 'externalData must be an array of { location, data } entries.');
  }
  const seen = new Set<string>();
  for (const [index, file] of files.entries()) {
    const location = (file as Partial<ExternalDataFile> | null)?.location;
    if (typeof location !== 'string' || location === '') {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `externalData[${index}].location must be the non-empty location string the model's initializers use.`,
      );
    }
    if (seen.has(location)) {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `externalData lists location "${location}" twice; give each file once.`,
        { source: location },
      );
    }
    seen.add(location);
    if (!(file.data instanceof Uint8Array) && typeof file.data !== 'string') {
      throw new DcaeError(
        'INVALID_ARGUMENT',
        `externalData "${location}": data must be ${stringData} or a Uint8Array; got ${describeValue(file.data)}.`,
        { source: location },
      );
    }
  }
}

function describeValue(value: unknown): string {
  return typeof value === 'object' && value !== null ? `a ${value.constructor.name}` : String(value);
}
