import { DcaeError } from '../errors.js';
import { closestNames } from './closest-names.js';
import type { JsonValue } from './json-scanner.js';

/** One invalid or unknown field, as listed in a CONFIG_VALUE error's `detail.problems`. */
export interface ConfigProblem {
  readonly field: string;
  /** e.g. `expected an integer in [1, 4096], found -1` or `unknown field (did you mean "in_channels"?)`. */
  readonly message: string;
}

export interface IntRange {
  min: number;
  max: number;
}

export interface FinishOptions {
  /** Fields that may appear without being read. */
  allowUnknown?: readonly string[];
  /** Fields starting with this prefix (e.g. diffusers' `_class_name`, `_diffusers_version`) may appear unread. */
  ignorePrefix?: string;
}

/**
 * Strict typed reads from a parsed JSON config. Each read checks one field and records a problem
 * instead of throwing, so that `finish()` reports every bad field in one CONFIG_VALUE error. A
 * read of a bad field returns a placeholder (its default, or a neutral value): use the values only
 * after `finish()` returns. A field with a `default` may be absent; any other field is required.
 *
 * ```ts
 * const r = new ConfigReader(parseJsonConfig(text, { source: 'config.json' }), 'config.json');
 * const latentChannels = r.int('latent_channels', { min: 1, max: 4096, default: 32 });
 * const actFns = r.stringOrList('decoder_act_fns', { oneOf: ['silu', 'relu'], length: 6, default: 'silu' });
 * r.finish({ ignorePrefix: '_' });
 * ```
 */
export class ConfigReader {
  readonly #config: Readonly<Record<string, JsonValue>>;
  readonly #source: string;
  readonly #read = new Set<string>();
  readonly #problems: ConfigProblem[] = [];

  constructor(config: JsonValue, source: string) {
    if (typeof config !== 'object' || config === null || Array.isArray(config)) {
      throw new DcaeError(
        'CONFIG_VALUE',
        `${source} must hold a JSON object of fields but holds ${describeValue(config)}.`,
        {
          source,
        },
      );
    }
    this.#config = config;
    this.#source = source;
  }

  /** Whether the field is present (this does not count as reading it). */
  has(field: string): boolean {
    return Object.hasOwn(this.#config, field);
  }

  int(field: string, options: IntRange & { default?: number }): number {
    const value = this.#field(field, options.default);
    if (isIntegerIn(value, options)) return value;
    return this.#invalid(
      field,
      `an integer in ${describeRange(options)}`,
      value,
      options.default ?? options.min,
    );
  }

  number(field: string, options: { min?: number; max?: number; default?: number } = {}): number {
    const { min = -Infinity, max = Infinity } = options;
    const value = this.#field(field, options.default);
    if (typeof value === 'number' && Number.isFinite(value) && value >= min && value <= max) return value;
    const range = min === -Infinity && max === Infinity ? '' : ` in ${describeRange({ min, max })}`;
    return this.#invalid(
      field,
      `a finite number${range}`,
      value,
      options.default ?? Math.max(min, Math.min(max, 0)),
    );
  }

  bool(field: string, options: { default?: boolean } = {}): boolean {
    const value = this.#field(field, options.default);
    if (typeof value === 'boolean') return value;
    return this.#invalid(field, 'true or false', value, options.default ?? false);
  }

  string<T extends string>(field: string, options: { oneOf: readonly T[]; default?: T }): T;
  string(field: string, options?: { default?: string }): string;
  string(field: string, options: { oneOf?: readonly string[]; default?: string } = {}): string {
    const value = this.#field(field, options.default);
    if (typeof value === 'string' && (options.oneOf === undefined || options.oneOf.includes(value)))
      return value;
    const expected = options.oneOf === undefined ? 'a string' : `one of ${describeChoices(options.oneOf)}`;
    return this.#invalid(field, expected, value, options.default ?? options.oneOf?.[0] ?? '');
  }

  intList(field: string, options: IntRange & { length?: number; default?: readonly number[] }): number[] {
    const value = this.#field(field, options.default);
    if (isListOf(value, options.length, (entry) => isIntegerIn(entry, options))) return [...value];
    const expected = `${describeList(options.length)} integers in ${describeRange(options)}`;
    return this.#invalid(field, expected, value, [...(options.default ?? [])]);
  }

  /** A list of integer lists, e.g. diffusers' per-stage `encoder_qkv_multiscales`: `[[], [], [5]]`. */
  intLists(
    field: string,
    options: IntRange & { length?: number; default?: readonly (readonly number[])[] },
  ): number[][] {
    const value = this.#field(field, options.default);
    const isIntList = (entry: unknown): entry is number[] =>
      isListOf(entry, undefined, (inner) => isIntegerIn(inner, options));
    if (isListOf(value, options.length, isIntList)) return value.map((inner) => [...inner]);
    const expected = `${describeList(options.length)} lists of integers in ${describeRange(options)}`;
    return this.#invalid(
      field,
      expected,
      value,
      (options.default ?? []).map((inner) => [...inner]),
    );
  }

  /**
   * A string or a list of strings, normalised to a list: a single string stands for `length`
   * copies of itself (diffusers accepts `"silu"` for `["silu", "silu", ...]`).
   */
  stringOrList<T extends string>(
    field: string,
    options: { oneOf: readonly T[]; length?: number; default?: T | readonly T[] },
  ): T[] {
    const repeat = (entry: T): T[] => Array.from({ length: options.length ?? 1 }, () => entry);
    const isChoice = (entry: unknown): entry is T =>
      typeof entry === 'string' && options.oneOf.includes(entry as T);
    const value = this.#field(field, options.default);
    if (isChoice(value)) return repeat(value);
    if (isListOf(value, options.length, isChoice)) return [...value];
    const choices = describeChoices(options.oneOf);
    const expected = `one of ${choices}, or ${describeList(options.length)} of them`;
    const fallback = options.default ?? options.oneOf[0]!;
    return this.#invalid(
      field,
      expected,
      value,
      typeof fallback === 'string' ? repeat(fallback) : [...fallback],
    );
  }

  /** Records a problem the caller found, e.g. two lists whose lengths must agree. */
  report(field: string, message: string): void {
    this.#problems.push({ field, message });
  }

  /** Throws one CONFIG_VALUE error listing every problem and every unknown field, if there are any. */
  finish(options: FinishOptions = {}): void {
    const allowed = new Set(options.allowUnknown);
    const { ignorePrefix } = options;
    for (const field of Object.keys(this.#config)) {
      if (this.#read.has(field) || allowed.has(field)) continue;
      if (ignorePrefix !== undefined && field.startsWith(ignorePrefix)) continue;
      const [suggestion] = closestNames(field, this.#read, 1);
      this.report(
        field,
        suggestion === undefined ? 'unknown field' : `unknown field (did you mean ${quote(suggestion)}?)`,
      );
    }
    if (this.#problems.length === 0) return;
    const lines = this.#problems.map(({ field, message }) => `${quote(field)}: ${message}`);
    const message =
      lines.length === 1
        ? `${this.#source}: ${lines[0]!}.`
        : `${this.#source} has ${lines.length} invalid fields:\n${lines.map((line) => `  - ${line}`).join('\n')}`;
    throw new DcaeError('CONFIG_VALUE', message, {
      source: this.#source,
      detail: { problems: [...this.#problems] },
    });
  }

  /** The field's value, or `fallback` when it is absent. */
  #field(field: string, fallback: unknown): unknown {
    this.#read.add(field);
    return this.has(field) ? this.#config[field] : fallback;
  }

  #invalid<T>(field: string, expected: string, value: unknown, placeholder: T): T {
    const actual = value === undefined ? 'nothing (the field is required)' : describeValue(value);
    this.report(field, `expected ${expected}, found ${actual}`);
    return placeholder;
  }
}

function isIntegerIn(value: unknown, range: IntRange): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= range.min && value <= range.max;
}

function isListOf<T>(
  value: unknown,
  length: number | undefined,
  isEntry: (entry: unknown) => entry is T,
): value is T[] {
  return Array.isArray(value) && (length === undefined || value.length === length) && value.every(isEntry);
}

function describeRange({ min, max }: IntRange): string {
  return `[${min}, ${max}]`;
}

function describeList(length: number | undefined): string {
  return length === undefined ? 'a list of' : `a list of ${length}`;
}

function describeChoices(choices: readonly string[]): string {
  return choices.map(quote).join(', ');
}

function quote(text: string): string {
  return JSON.stringify(text);
}

/** A short rendering of a JSON value for messages: its JSON text, cut at 60 characters. */
function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length <= 60 ? text : `${text.slice(0, 57)}...`;
}
