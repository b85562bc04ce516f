/**
 * A small strict JSON (RFC 8259) scanner for untrusted text. Unlike `JSON.parse` it lets the caller
 * see number literals as written (so `1e0` and `9007199254740993` can be told apart from exact
 * integers), reports repeated keys, and bounds nesting so nothing recursive can overflow the stack.
 */

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export type JsonErrorReason = 'syntax' | 'too-deep' | 'duplicate-key';

export class JsonSyntaxError extends Error {
  constructor(
    message: string,
    /** Index in the text (UTF-16 code units) where the problem was found. */
    readonly position: number,
    readonly reason: JsonErrorReason = 'syntax',
  ) {
    super(message);
    this.name = 'JsonSyntaxError';
  }
}

const SPACE = 0x20;
const TAB = 0x09;
const LINE_FEED = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const MINUS = 0x2d;
const ZERO = 0x30;
const NINE = 0x39;

/** A run of string characters that need no attention: no quote, backslash or control character. */
// eslint-disable-next-line no-control-regex -- the class must name U+0000-U+001F, which JSON strings may not hold raw
const PLAIN_CHARACTERS = /[^"\\\u0000-\u001f]*/y;

/** RFC 8259 number grammar. */
const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

const SIMPLE_ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  '\\': '\\',
  '/': '/',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
};

export type JsonValueKind =
  'object' | 'array' | 'string' | 'number' | 'boolean' | 'null' | 'end of input' | 'invalid';

export class JsonScanner {
  position = 0;

  constructor(readonly text: string) {}

  /** Skips whitespace and returns the next character code without consuming it, or -1 at the end. */
  peek(): number {
    const { text } = this;
    let position = this.position;
    for (; position < text.length; position++) {
      const code = text.charCodeAt(position);
      if (code !== SPACE && code !== LINE_FEED && code !== CARRIAGE_RETURN && code !== TAB) break;
    }
    this.position = position;
    return position < text.length ? text.charCodeAt(position) : -1;
  }

  /** What the next value is, judged by its first character. */
  peekKind(): JsonValueKind {
    const code = this.peek();
    if (code === -1) return 'end of input';
    const char = String.fromCharCode(code);
    if (char === '{') return 'object';
    if (char === '[') return 'array';
    if (char === '"') return 'string';
    if (char === 't' || char === 'f') return 'boolean';
    if (char === 'n') return 'null';
    if (code === MINUS || (code >= ZERO && code <= NINE)) return 'number';
    return 'invalid';
  }

  /** True when only whitespace is left. */
  atEnd(): boolean {
    return this.peek() === -1;
  }

  fail(message: string, position = this.position, reason: JsonErrorReason = 'syntax'): never {
    throw new JsonSyntaxError(message, position, reason);
  }

  /** Consumes `char` after optional whitespace, or fails. */
  expect(char: string): void {
    if (this.peek() !== char.charCodeAt(0)) this.fail(`expected '${char}' but found ${this.describeNext()}`);
    this.position++;
  }

  /** Consumes `char` after optional whitespace if it is next. */
  consume(char: string): boolean {
    if (this.peek() !== char.charCodeAt(0)) return false;
    this.position++;
    return true;
  }

  describeNext(): string {
    const code = this.peek();
    if (code === -1) return 'the end of the input';
    const codePoint = this.text.codePointAt(this.position)!;
    return codePoint >= 0x20 && codePoint < 0x7f
      ? `'${String.fromCodePoint(codePoint)}'`
      : `U+${codePoint.toString(16).toUpperCase().padStart(4, '0')}`;
  }

  /**
   * Reads `{ "key": value, ... }`. For each member, `onMember` is called with the scanner at the
   * value and must read it.
   */
  readObject(onMember: (key: string, keyPosition: number) => void): void {
    this.expect('{');
    if (this.consume('}')) return;
    do {
      if (this.peek() !== QUOTE) this.fail(`expected a string key but found ${this.describeNext()}`);
      const keyPosition = this.position;
      const key = this.readString();
      this.expect(':');
      onMember(key, keyPosition);
    } while (this.consume(','));
    this.expect('}');
  }

  /** Reads `[ value, ... ]`; `onElement` is called with the scanner at each element and must read it. */
  readArray(onElement: () => void): void {
    this.expect('[');
    if (this.consume(']')) return;
    do onElement();
    while (this.consume(','));
    this.expect(']');
  }

  readString(): string {
    this.expect('"');
    const { text } = this;
    let result = '';
    for (;;) {
      PLAIN_CHARACTERS.lastIndex = this.position;
      PLAIN_CHARACTERS.test(text);
      result += text.slice(this.position, PLAIN_CHARACTERS.lastIndex);
      this.position = PLAIN_CHARACTERS.lastIndex;
      if (this.position >= text.length) this.fail('unterminated string');
      const code = text.charCodeAt(this.position);
      if (code === QUOTE) break;
      if (code !== BACKSLASH) {
        this.fail(`unescaped control character U+${code.toString(16).padStart(4, '0')} in a string`);
      }
      result += this.readEscape();
    }
    this.position++;
    return result;
  }

  /** Reads one escape sequence (the scanner is at its backslash); a surrogate pair takes two. */
  private readEscape(): string {
    const start = this.position;
    const letter = this.text.charAt(start + 1);
    if (letter !== 'u') {
      const simple = SIMPLE_ESCAPES[letter];
      if (simple === undefined) this.fail(`invalid escape '\\${letter}' in a string`, start);
      this.position += 2;
      return simple;
    }
    const unit = this.readHexUnit();
    if (unit >= 0xdc00 && unit <= 0xdfff) this.fail('unpaired low surrogate escape in a string', start);
    if (unit < 0xd800 || unit > 0xdbff) return String.fromCharCode(unit);
    const low = this.text.startsWith('\\u', this.position) ? this.readHexUnit() : -1;
    if (low < 0xdc00 || low > 0xdfff) this.fail('unpaired high surrogate escape in a string', start);
    return String.fromCharCode(unit, low);
  }

  /** Reads `\uXXXX` and returns the code unit. */
  private readHexUnit(): number {
    const hex = this.text.slice(this.position + 2, this.position + 6);
    if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail('invalid \\u escape in a string');
    this.position += 6;
    return parseInt(hex, 16);
  }

  /** Reads a number literal and returns its text as written, e.g. `12`, `-0.5` or `1e0`. */
  readNumber(): string {
    const start = this.position;
    NUMBER.lastIndex = start;
    if (!NUMBER.test(this.text)) this.fail(`invalid number starting with ${this.describeNext()}`);
    this.position = NUMBER.lastIndex;
    const next = this.text.charCodeAt(this.position);
    if (next >= ZERO && next <= NINE) this.fail('a number may not have leading zeros', start);
    return this.text.slice(start, this.position);
  }

  readLiteral(): boolean | null {
    for (const [word, value] of [
      ['true', true],
      ['false', false],
      ['null', null],
    ] as const) {
      if (this.text.startsWith(word, this.position)) {
        this.position += word.length;
        return value;
      }
    }
    return this.fail(`expected a value but found ${this.describeNext()}`);
  }
}

/** Keys that would touch prototypes if merged into an object; they are dropped from values read here. */
const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Reads any JSON value into plain objects and arrays. Objects and arrays may nest at most
 * `maxDepth` levels (the value itself being level 1). Keys named `__proto__`, `constructor` and
 * `prototype` are dropped; a key repeated within one object is an error.
 */
export function readJsonValue(scanner: JsonScanner, maxDepth: number): JsonValue {
  const kind = scanner.peekKind();
  if (kind === 'object' || kind === 'array') {
    if (maxDepth <= 0) scanner.fail('nesting is too deep', scanner.position, 'too-deep');
    if (kind === 'array') {
      const array: JsonValue[] = [];
      scanner.readArray(() => array.push(readJsonValue(scanner, maxDepth - 1)));
      return array;
    }
    const object: Record<string, JsonValue> = {};
    const seen = new Set<string>();
    scanner.readObject((key, keyPosition) => {
      if (seen.has(key))
        scanner.fail(`key ${JSON.stringify(key)} appears twice`, keyPosition, 'duplicate-key');
      seen.add(key);
      const value = readJsonValue(scanner, maxDepth - 1);
      if (!UNSAFE_KEYS.has(key)) object[key] = value;
    });
    return object;
  }
  if (kind === 'string') return scanner.readString();
  if (kind === 'number') return Number(scanner.readNumber());
  return scanner.readLiteral();
}
