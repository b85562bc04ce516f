import { DcaeError } from '../errors.js';
import type { JsonValue } from './json-scanner.js';
import { JsonScanner, JsonSyntaxError, readJsonValue } from './json-scanner.js';

export interface ParseJsonConfigOptions {
  /** File or URL named in errors. @defaultValue 'config' */
  source?: string;
  /** Largest accepted input: bytes for a Uint8Array, UTF-16 code units for a string. @defaultValue 10_000_000 */
  maxBytes?: number;
  /** Deepest accepted nesting of objects and arrays (the top level is 1). @defaultValue 64 */
  maxDepth?: number;
}

/**
 * Parses an untrusted JSON config (docs/reliability.md §9 D) into plain objects and arrays: size and
 * depth are bounded before anything recursive runs, and `__proto__`, `constructor` and
 * `prototype` keys are dropped so the result is safe to spread or merge. A leading UTF-8 BOM is
 * ignored; a key repeated in one object is an error.
 */
export function parseJsonConfig(input: string | Uint8Array, options: ParseJsonConfigOptions = {}): JsonValue {
  const { source = 'config', maxBytes = 10_000_000, maxDepth = 64 } = options;
  const size = typeof input === 'string' ? input.length : input.byteLength;
  if (size > maxBytes) {
    throw new DcaeError(
      'CONFIG_TOO_LARGE',
      `${source} is ${size} bytes, over the limit of ${maxBytes}; a model config is a few kB. Check that this is the right file.`,
      {
        source,
        detail: { size, maxBytes },
      },
    );
  }
  const text = typeof input === 'string' ? input.replace(/^\uFEFF/, '') : decodeUtf8(input, source);
  const scanner = new JsonScanner(text);
  try {
    const value = readJsonValue(scanner, maxDepth);
    if (!scanner.atEnd()) scanner.fail(`unexpected ${scanner.describeNext()} after the JSON value`);
    return value;
  } catch (error) {
    if (!(error instanceof JsonSyntaxError)) throw error;
    const where = describePosition(text, error.position);
    if (error.reason === 'too-deep') {
      throw new DcaeError(
        'CONFIG_TOO_DEEP',
        `${source} nests objects or arrays deeper than ${maxDepth} levels (at ${where}).`,
        {
          source,
          detail: { maxDepth, position: error.position },
        },
      );
    }
    throw new DcaeError('CONFIG_NOT_JSON', `${source} is not valid JSON: ${error.message} at ${where}.`, {
      source,
      cause: error,
      detail: { position: error.position },
    });
  }
}

function decodeUtf8(bytes: Uint8Array, source: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (cause) {
    throw new DcaeError(
      'CONFIG_NOT_JSON',
      `${source} is not valid UTF-8 text; a JSON config must be UTF-8.`,
      { source, cause },
    );
  }
}

/** `line L, column C` (both 1-based) of a position in `text`. */
function describePosition(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const column = position - before.lastIndexOf('\n');
  return `line ${line}, column ${column}`;
}
