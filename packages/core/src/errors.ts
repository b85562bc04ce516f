/**
 * The single error type of dcae. Every failure a caller can act on carries a code from one closed
 * set, a message that says what failed, where, expected against actual, and what to do, and the
 * underlying `cause` when there is one.
 */
export const DCAE_ERROR_CODES = {
  // safetensors (docs/reliability.md §9 A)
  HEADER_TOO_SMALL: 'safetensors',
  HEADER_TOO_LARGE: 'safetensors',
  HEADER_LENGTH_EXCEEDS_FILE: 'safetensors',
  HEADER_NOT_UTF8: 'safetensors',
  HEADER_NOT_JSON: 'safetensors',
  HEADER_NOT_OBJECT: 'safetensors',
  DUPLICATE_KEY: 'safetensors',
  METADATA_NOT_STRING_MAP: 'safetensors',
  UNKNOWN_DTYPE: 'safetensors',
  BAD_TENSOR_ENTRY: 'safetensors',
  BAD_INTEGER: 'safetensors',
  INTEGER_OUT_OF_RANGE: 'safetensors',
  OVERFLOW: 'safetensors',
  OFFSETS_NOT_CONTIGUOUS: 'safetensors',
  SIZE_MISMATCH: 'safetensors',
  MISALIGNED_SUBBYTE: 'safetensors',
  TRAILING_BYTES: 'safetensors',
  TRUNCATED_DATA: 'safetensors',
  TOO_MANY_TENSORS: 'safetensors',
  NAME_TOO_LONG: 'safetensors',
  TENSOR_NOT_FOUND: 'safetensors',
  // PyTorch .pth checkpoints (docs/pth-reader.md); same exit code as safetensors: a bad weights file
  PTH_NOT_ZIP: 'safetensors',
  ZIP_CORRUPT: 'safetensors',
  ZIP_TRUNCATED: 'safetensors',
  ZIP_COMPRESSED: 'safetensors',
  ZIP_OVERLAP: 'safetensors',
  PICKLE_FORBIDDEN: 'safetensors',
  PICKLE_CORRUPT: 'safetensors',
  PTH_STORAGE: 'safetensors',
  PTH_NOT_STATE_DICT: 'safetensors',
  // weights bound to a model
  WEIGHTS_MISMATCH: 'weights',
  // JSON configs (docs/reliability.md §9 D)
  CONFIG_TOO_LARGE: 'config',
  CONFIG_TOO_DEEP: 'config',
  CONFIG_NOT_JSON: 'config',
  CONFIG_VALUE: 'config',
  CONFIG_UNKNOWN_MODEL: 'config',
  MODEL_NOT_FOUND: 'config',
  QUANTIZATION_MISSING: 'config',
  QUANTIZATION_INVALID: 'config',
  CONFIG_NOT_ALLOWED: 'config',
  // ONNX graphs and models
  GRAPH_INVALID: 'onnx',
  MODEL_TOO_LARGE: 'onnx',
  EXTERNAL_DATA_PATH: 'onnx',
  PROTOBUF_PARSE: 'onnx',
  EXTERNAL_DATA_RANGE: 'onnx',
  TENSOR_DATA_SIZE: 'onnx',
  DIM_LIMIT: 'onnx',
  UNSUPPORTED_OP: 'onnx',
  // training (autodiff and losses)
  GRADIENT_UNSUPPORTED: 'onnx',
  PERCEPTUAL_WEIGHTS_MISSING: 'usage',
  // tensors and inputs
  DTYPE_UNSUPPORTED: 'tensor',
  SHAPE_MISMATCH: 'tensor',
  INPUT_SIZE: 'tensor',
  INPUT_SHAPE_LIMIT: 'tensor',
  /** A latent recorded for another model than the one asked to decode it. */
  MODEL_MISMATCH: 'tensor',
  // runtimes
  RUNTIME_UNAVAILABLE: 'runtime',
  DEVICE_UNAVAILABLE: 'runtime',
  SESSION_FAILED: 'runtime',
  RUN_FAILED: 'runtime',
  SESSION_DISPOSED: 'runtime',
  ABORTED: 'runtime',
  SESSION_INIT_TIMEOUT: 'runtime',
  DEVICE_LOST: 'runtime',
  // images
  UNSUPPORTED_FORMAT: 'image',
  DIMENSIONS_TOO_LARGE: 'image',
  ZERO_DIMENSION: 'image',
  IMAGE_CORRUPT: 'image',
  // files and outputs
  FILE_NOT_FOUND: 'io',
  FILE_READ: 'io',
  OUTPUT_EXISTS: 'io',
  OUTPUT_UNWRITABLE: 'io',
  SAME_AS_INPUT: 'io',
  DISK_FULL: 'io',
  NON_FINITE_OUTPUT: 'io',
  UNSAFE_PATH: 'io',
  // downloads and the Hub cache (docs/reliability.md §9 DL)
  NETWORK: 'io',
  HTTP_STATUS: 'io',
  INTEGRITY: 'io',
  OFFLINE: 'io',
  LOCK_TIMEOUT: 'io',
  CORRUPT_BLOB: 'io',
  // usage
  INVALID_ARGUMENT: 'usage',
  UNSUPPORTED: 'usage',
  DATA_EMPTY: 'usage',
  TRAINABLE_NO_MATCH: 'usage',
} as const;

export type DcaeErrorCode = keyof typeof DCAE_ERROR_CODES;
export type DcaeErrorCategory = (typeof DCAE_ERROR_CODES)[DcaeErrorCode];

const MARKER = Symbol.for('@dcae/error');

export interface DcaeErrorOptions {
  readonly cause?: unknown;
  /** The file, URL or tensor the error is about. */
  readonly source?: string;
  /** Structured facts (expected/actual values, limits) for programs; the message repeats them for people. */
  readonly detail?: Readonly<Record<string, unknown>>;
  /**
   * What to do next, worded for each surface: `library` names options and functions and is
   * appended to the message; `cli` names `dcae` flags and replaces it when the CLI reports the error.
   */
  readonly hint?: DcaeErrorHint;
  /** The first part of the message as the CLI words it (flags instead of option names); default: the same. */
  readonly cliMessage?: string;
}

/** The advice of an error for each surface (see {@link DcaeErrorOptions.hint}). */
export interface DcaeErrorHint {
  readonly library?: string;
  readonly cli?: string;
}

export class DcaeError extends Error {
  readonly [MARKER] = true;
  readonly code: DcaeErrorCode;
  readonly source: string | undefined;
  readonly detail: Readonly<Record<string, unknown>> | undefined;
  /** What failed, without the library hint (`message` = `what` + ' ' + `hint.library`). */
  readonly what: string;
  readonly hint: DcaeErrorHint | undefined;
  /** `what` worded for the CLI (flags instead of option names). */
  readonly cliMessage: string;

  constructor(code: DcaeErrorCode, message: string, options: DcaeErrorOptions = {}) {
    const library = options.hint?.library;
    super(
      library === undefined ? message : `${message} ${library}`,
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = 'DcaeError';
    this.code = code;
    this.source = options.source;
    this.detail = options.detail;
    this.what = message;
    this.hint = options.hint;
    this.cliMessage = options.cliMessage ?? message;
  }

  get category(): DcaeErrorCategory {
    return DCAE_ERROR_CODES[this.code];
  }

  /** True across duplicated package copies and realms, where `instanceof` fails. */
  static is(error: unknown, code?: DcaeErrorCode): error is DcaeError {
    return (
      typeof error === 'object' &&
      error !== null &&
      MARKER in error &&
      (code === undefined || (error as DcaeError).code === code)
    );
  }
}

/** Internal invariant: a failure here is a dcae bug, not a user error. */
export function invariant(condition: unknown, message: () => string): asserts condition {
  if (!condition) throw new Error(`dcae internal error: ${message()}`);
}

/** `[a, b, c]` — the one way shapes appear in messages. */
export function formatShape(shape: readonly (number | string)[]): string {
  return `[${shape.join(', ')}]`;
}
