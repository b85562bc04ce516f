import { DcaeError } from '@dcae/core';
import type { DcaeErrorCategory, DcaeErrorCode } from '@dcae/core';

/**
 * Exit codes: one per error category, so scripts can tell "fix your command" from "fix your
 * file" from "the machine is the problem" without parsing messages. README.md lists them.
 */
export const EXIT_CODES: Readonly<Record<DcaeErrorCategory | 'ok' | 'internal' | 'interrupted', number>> = {
  ok: 0,
  internal: 1,
  usage: 2,
  io: 3,
  image: 4,
  tensor: 5,
  config: 6,
  weights: 7,
  safetensors: 8,
  onnx: 9,
  runtime: 10,
  interrupted: 130,
};

/** What to try next, for the codes where the message alone does not say it. */
const HINTS: Partial<Record<DcaeErrorCode, string>> = {
  OUTPUT_EXISTS: 'pass --force to overwrite it, or choose another output path',
  SAME_AS_INPUT: 'choose an output path that is not one of the inputs',
  OUTPUT_UNWRITABLE: 'check that the output directory exists and that you may write to it',
  DISK_FULL: 'free some disk space or write the output elsewhere',
  INPUT_SIZE: 'pass --fit crop (keep the top-left region) or --fit pad (pad and crop the result back)',
  UNSUPPORTED_FORMAT:
    'images must be PNG, JPEG or WebP (.png, .jpg, .jpeg, .webp); tensors must be .safetensors',
  DIMENSIONS_TOO_LARGE: 'downscale the image, or raise the limit with --max-pixels',
  IMAGE_CORRUPT: 'the file is damaged; re-export it from its source',
  FILE_NOT_FOUND: 'check the path',
  MODEL_NOT_FOUND: '--model must be a folder with config.json and the .safetensors weights',
  WEIGHTS_MISMATCH: 'the weights do not belong to this config.json; check the --model folder',
  TENSOR_NOT_FOUND:
    'the input .safetensors must hold the tensor the command reads (encode: "sample", decode: "latent")',
  SHAPE_MISMATCH: 'check that the input was made for this model',
  DEVICE_UNAVAILABLE: 'try --device cpu',
  RUNTIME_UNAVAILABLE: 'try --device cpu',
  NON_FINITE_OUTPUT:
    'the model produced NaN or Infinity; write a .safetensors output to inspect the raw values',
  MODEL_TOO_LARGE: 'use an export that keeps its weights as external data (.onnx plus data files)',
  PROTOBUF_PARSE: 'the file is not a complete ONNX model; download or export it again',
  EXTERNAL_DATA_PATH:
    'external data must be files inside the model folder, named by relative paths; do not load this model',
  EXTERNAL_DATA_RANGE: 'the model does not match its external data files; download both again',
  TENSOR_DATA_SIZE: 'the model is damaged; download or export it again',
  DIM_LIMIT: 'the model declares impossible tensor shapes; do not load it',
  UNSUPPORTED_OP:
    'dcae runs only standard ONNX ops used by autoencoder and diffusion models; re-export without custom or contrib ops',
  INPUT_SHAPE_LIMIT: 'use a smaller input, or tiling',
  CONFIG_NOT_ALLOWED: 'remove the option; dcae never lets options write files or load code',
  QUANTIZATION_MISSING:
    'run `dcae quantize --model <model> --calibration <photos…> -o <dir>`, then pass --quantization <dir>/quantization.json',
  QUANTIZATION_INVALID: 'run `dcae quantize` again for this model and this dcae version',
};

export function exitCodeFor(error: unknown): number {
  if (!DcaeError.is(error)) return EXIT_CODES.internal;
  if (error.code === 'ABORTED') return EXIT_CODES.interrupted;
  return EXIT_CODES[error.category];
}

/**
 * The CLI's advice for `error`: its own CLI hint (naming flags), else the code's; for a usage
 * error, then where the usage is, `run \`dcae <command> --help\``.
 */
export function cliHints(error: DcaeError, command: string | undefined): string[] {
  const hints: string[] = [];
  const own = error.hint?.cli ?? HINTS[error.code];
  if (own !== undefined) hints.push(own);
  if (error.category === 'usage')
    hints.push(`run \`dcae ${command === undefined ? '' : `${command} `}--help\``);
  return hints;
}

/** The message of `error` as the CLI prints it: worded with flags, without the library's advice. */
function cliMessage(error: DcaeError): string {
  // Errors from before `what` existed (another copy of @dcae/core) carry only `message`.
  return typeof error.cliMessage === 'string' ? error.cliMessage : error.message;
}

/**
 * `error[CODE]: message` and `hint:` lines; with `debug`, the stack and the cause chain too.
 * Anything that is not a DcaeError is a dcae bug and says so.
 */
export function formatError(error: unknown, debug: boolean, command?: string): string {
  const lines: string[] = [];
  if (DcaeError.is(error)) {
    lines.push(`error[${error.code}]: ${cliMessage(error)}`);
    for (const hint of cliHints(error, command)) lines.push(`hint: ${hint}`);
  } else {
    const message = error instanceof Error ? error.message : String(error);
    lines.push(`error[INTERNAL]: ${message}`);
    lines.push('hint: this is a bug in dcae; rerun with --debug and report the output');
  }
  if (debug) {
    let cause: unknown = error;
    for (let depth = 0; cause !== undefined && depth < 8; depth++) {
      lines.push(
        depth === 0 ? '' : 'caused by:',
        cause instanceof Error ? (cause.stack ?? cause.message) : JSON.stringify(cause),
      );
      cause = cause instanceof Error ? cause.cause : undefined;
    }
  }
  return lines.join('\n') + '\n';
}

/** The JSON form of an error (printed on stdout with --json). */
export function errorJson(
  error: unknown,
  command?: string,
): {
  error: { code: string; message: string; hint?: string; exitCode: number };
} {
  const exitCode = exitCodeFor(error);
  if (!DcaeError.is(error)) {
    return {
      error: { code: 'INTERNAL', message: error instanceof Error ? error.message : String(error), exitCode },
    };
  }
  const hints = cliHints(error, command);
  const hint = hints.length === 0 ? undefined : hints.join('; ');
  return { error: { code: error.code, message: cliMessage(error), ...(hint ? { hint } : {}), exitCode } };
}
