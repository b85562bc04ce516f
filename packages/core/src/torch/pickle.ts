import { DcaeError } from '../errors.js';

/**
 * A restricted unpickler for the `data.pkl` of a torch.save archive. A pickle is a program for a
 * small stack machine whose GLOBAL and REDUCE opcodes import and call any Python callable; this
 * one knows only what a state_dict needs (dicts, OrderedDict, lists, tuples, numbers, strings,
 * tensors rebuilt by `torch._utils._rebuild_tensor_v2` from storages named by persistent ids) and
 * refuses any other global, callable or opcode with PICKLE_FORBIDDEN, naming both. Nothing is ever
 * executed: "calls" of the allowed callables build plain records. See docs/pth-reader.md.
 */

/** The torch storage classes accepted in persistent ids, with the safetensors dtype of their elements. */
export const TORCH_STORAGE_DTYPES = {
  FloatStorage: 'F32',
  HalfStorage: 'F16',
  BFloat16Storage: 'BF16',
  DoubleStorage: 'F64',
  LongStorage: 'I64',
  IntStorage: 'I32',
  ShortStorage: 'I16',
  CharStorage: 'I8',
  ByteStorage: 'U8',
  BoolStorage: 'BOOL',
} as const;

export type TorchStorageType = keyof typeof TORCH_STORAGE_DTYPES;
export type TorchDType = (typeof TORCH_STORAGE_DTYPES)[TorchStorageType];

export const TORCH_DTYPE_BYTES: Readonly<Record<TorchDType, number>> = {
  F32: 4,
  F16: 2,
  BF16: 2,
  F64: 8,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

/** A `module name` pair pushed by GLOBAL: an allowed callable or storage class. */
export class PyGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  toString(): string {
    return `${this.module}.${this.name}`;
  }
}

export class PyTuple {
  constructor(readonly items: readonly PyValue[]) {}
}

export class PyList {
  readonly items: PyValue[] = [];
}

/** A dict or OrderedDict; keys are strings or numbers. `attributes` holds BUILD state (a state_dict's `_metadata`). */
export class PyDict {
  readonly entries = new Map<string | number, PyValue>();
  attributes: PyDict | undefined;
}

/** A storage named by a persistent id `('storage', <class>, key, location, numel)`. */
export class PthStorage {
  constructor(
    readonly key: string,
    readonly dtype: TorchDType,
    readonly numel: number,
    readonly location: string,
  ) {}
}

/** A view of a storage, from `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks)`. */
export class PthTensorRef {
  constructor(
    readonly storage: PthStorage,
    /** In elements. */
    readonly offset: number,
    readonly shape: readonly number[],
    /** In elements. */
    readonly stride: readonly number[],
  ) {}
}

export type PyValue =
  | null
  | boolean
  | number
  | bigint
  | string
  | Uint8Array
  | PyTuple
  | PyList
  | PyDict
  | PyGlobal
  | PthStorage
  | PthTensorRef;

export interface UnpickleLimits {
  /** Most values on the stack and in the memo together. @defaultValue 10_000_000 */
  readonly maxObjects?: number;
  /** Most dimensions of a tensor. @defaultValue 32 */
  readonly maxDims?: number;
}

const ALLOWED_CALLABLES = new Set([
  'collections OrderedDict',
  'torch._utils _rebuild_tensor_v2',
  'torch._utils _rebuild_parameter',
]);

/** Opcode names for messages, including the ones refused. */
const OPCODE_NAMES: Readonly<Record<number, string>> = {
  0x28: 'MARK',
  0x2e: 'STOP',
  0x30: 'POP',
  0x31: 'POP_MARK',
  0x32: 'DUP',
  0x46: 'FLOAT',
  0x49: 'INT',
  0x4a: 'BININT',
  0x4b: 'BININT1',
  0x4c: 'LONG',
  0x4d: 'BININT2',
  0x4e: 'NONE',
  0x50: 'PERSID',
  0x51: 'BINPERSID',
  0x52: 'REDUCE',
  0x53: 'STRING',
  0x54: 'BINSTRING',
  0x55: 'SHORT_BINSTRING',
  0x56: 'UNICODE',
  0x58: 'BINUNICODE',
  0x61: 'APPEND',
  0x62: 'BUILD',
  0x63: 'GLOBAL',
  0x64: 'DICT',
  0x7d: 'EMPTY_DICT',
  0x65: 'APPENDS',
  0x67: 'GET',
  0x68: 'BINGET',
  0x69: 'INST',
  0x6a: 'LONG_BINGET',
  0x6c: 'LIST',
  0x5d: 'EMPTY_LIST',
  0x6f: 'OBJ',
  0x70: 'PUT',
  0x71: 'BINPUT',
  0x72: 'LONG_BINPUT',
  0x73: 'SETITEM',
  0x74: 'TUPLE',
  0x29: 'EMPTY_TUPLE',
  0x75: 'SETITEMS',
  0x47: 'BINFLOAT',
  0x80: 'PROTO',
  0x81: 'NEWOBJ',
  0x82: 'EXT1',
  0x83: 'EXT2',
  0x84: 'EXT4',
  0x85: 'TUPLE1',
  0x86: 'TUPLE2',
  0x87: 'TUPLE3',
  0x88: 'NEWTRUE',
  0x89: 'NEWFALSE',
  0x8a: 'LONG1',
  0x8b: 'LONG4',
  0x42: 'BINBYTES',
  0x43: 'SHORT_BINBYTES',
  0x8c: 'SHORT_BINUNICODE',
  0x8d: 'BINUNICODE8',
  0x8e: 'BINBYTES8',
  0x8f: 'EMPTY_SET',
  0x90: 'ADDITEMS',
  0x91: 'FROZENSET',
  0x92: 'NEWOBJ_EX',
  0x93: 'STACK_GLOBAL',
  0x94: 'MEMOIZE',
  0x95: 'FRAME',
  0x96: 'BYTEARRAY8',
  0x97: 'NEXT_BUFFER',
  0x98: 'READONLY_BUFFER',
};

function opcodeName(op: number): string {
  return OPCODE_NAMES[op] ?? `0x${op.toString(16).padStart(2, '0')}`;
}

/**
 * Runs the pickle in `bytes` on the restricted machine and returns the value STOP leaves.
 * Throws PICKLE_FORBIDDEN for anything outside the allow-list and PICKLE_CORRUPT for a malformed
 * stream; never runs Python code, never recurses on the input's structure.
 */
export function unpickleStateDict(bytes: Uint8Array, source: string, limits: UnpickleLimits = {}): PyValue {
  const maxObjects = limits.maxObjects ?? 10_000_000;
  const maxDims = limits.maxDims ?? 32;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const stack: PyValue[] = [];
  const marks: number[] = [];
  const memo = new Map<number, PyValue>();
  const storages = new Map<string, PthStorage>();
  const latin1 = new TextDecoder('latin1');
  const utf8 = new TextDecoder('utf-8', { fatal: true });
  let pos = 0;
  let op = 0;
  let opAt = 0;

  const fail = (what: string): DcaeError =>
    new DcaeError(
      'PICKLE_CORRUPT',
      `${source}: malformed pickle at byte ${opAt} (${opcodeName(op)}): ${what}.`,
      {
        source,
        detail: { offset: opAt, opcode: opcodeName(op) },
      },
    );
  const forbid = (what: string, global?: string): DcaeError =>
    new DcaeError(
      'PICKLE_FORBIDDEN',
      `${source}: refused ${opcodeName(op)} at byte ${opAt}${global ? ` of ${global}` : ''}: ${what}. ` +
        'A .pth file is a Python program and dcae never runs it; it reads only state_dicts of tensors ' +
        '(dicts, OrderedDict, tuples, lists, numbers, strings, torch._utils._rebuild_tensor_v2 over float/int storages). ' +
        'Save the weights alone (torch.save(model.state_dict(), path)) or convert them to safetensors in Python.',
      { source, detail: { offset: opAt, opcode: opcodeName(op), ...(global ? { global } : {}) } },
    );

  const take = (n: number): Uint8Array => {
    if (!Number.isSafeInteger(n) || n < 0 || pos + n > bytes.length) {
      throw fail(`needs ${n} bytes but only ${bytes.length - pos} remain`);
    }
    const out = bytes.subarray(pos, pos + n);
    pos += n;
    return out;
  };
  const u8 = (): number => take(1)[0]!;
  const u16 = (): number => {
    take(2);
    return view.getUint16(pos - 2, true);
  };
  const u32 = (): number => {
    take(4);
    return view.getUint32(pos - 4, true);
  };
  const u64 = (): number => {
    take(8);
    const value = view.getBigUint64(pos - 8, true);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('a length beyond 2^53');
    return Number(value);
  };
  const line = (): string => {
    const end = bytes.indexOf(0x0a, pos);
    if (end < 0) throw fail('a text argument without its newline');
    const text = latin1.decode(bytes.subarray(pos, end));
    pos = end + 1;
    return text;
  };
  const text = (n: number): string => {
    try {
      return utf8.decode(take(n));
    } catch (error) {
      if (DcaeError.is(error)) throw error;
      throw fail('a string that is not UTF-8');
    }
  };
  const push = (value: PyValue): void => {
    if (stack.length + memo.size >= maxObjects) throw fail(`more than ${maxObjects} objects`);
    stack.push(value);
  };
  const pop = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks.at(-1)!))
      throw fail('the stack is empty');
    return stack.pop()!;
  };
  const top = (): PyValue => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks.at(-1)!))
      throw fail('the stack is empty');
    return stack.at(-1)!;
  };
  const popMark = (): PyValue[] => {
    const mark = marks.pop();
    if (mark === undefined) throw fail('no MARK to pop to');
    return stack.splice(mark);
  };
  const put = (index: number): void => {
    if (stack.length + memo.size >= maxObjects) throw fail(`more than ${maxObjects} objects`);
    memo.set(index, top());
  };
  const get = (index: number): void => {
    const value = memo.get(index);
    if (value === undefined && !memo.has(index)) throw fail(`memo entry ${index} was never stored`);
    push(value as PyValue);
  };
  const global = (module: string, name: string): PyGlobal => {
    const full = `${module}.${name}`;
    if (module === 'torch' && Object.hasOwn(TORCH_STORAGE_DTYPES, name)) return new PyGlobal(module, name);
    if (ALLOWED_CALLABLES.has(`${module} ${name}`)) return new PyGlobal(module, name);
    throw forbid('this global is not on the allow-list', full);
  };
  const dictKey = (key: PyValue): string | number => {
    if (typeof key === 'string' || typeof key === 'number') return key;
    throw fail(`a dict key of type ${typeName(key)} (only str and int keys are read)`);
  };
  const setItems = (dict: PyValue, items: PyValue[]): void => {
    if (!(dict instanceof PyDict)) throw forbid(`setting items on a ${typeName(dict)}`);
    if (items.length % 2 !== 0) throw fail('an odd number of items for a dict');
    for (let i = 0; i < items.length; i += 2) dict.entries.set(dictKey(items[i]!), items[i + 1]!);
  };
  const append = (list: PyValue, items: PyValue[]): void => {
    if (!(list instanceof PyList)) throw forbid(`appending to a ${typeName(list)}`);
    list.items.push(...items);
  };
  const int = (value: PyValue, what: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
      throw fail(`${what} must be an integer, found ${typeName(value)}`);
    }
    return value;
  };
  const persistentLoad = (pid: PyValue): PthStorage => {
    if (!(pid instanceof PyTuple) || pid.items.length !== 5 || pid.items[0] !== 'storage') {
      throw forbid(`a persistent id other than ('storage', class, key, location, numel): ${typeName(pid)}`);
    }
    const [, type, key, location, numel] = pid.items;
    if (
      !(type instanceof PyGlobal) ||
      type.module !== 'torch' ||
      !Object.hasOwn(TORCH_STORAGE_DTYPES, type.name)
    ) {
      throw forbid(`a storage of class ${type instanceof PyGlobal ? type.toString() : typeName(type)}`);
    }
    if (typeof key !== 'string' || typeof location !== 'string')
      throw fail('a storage key or location that is not a string');
    const count = int(numel ?? null, 'a storage size');
    if (count < 0) throw fail('a negative storage size');
    const dtype = TORCH_STORAGE_DTYPES[type.name as TorchStorageType];
    const known = storages.get(key);
    if (known !== undefined) {
      if (known.dtype !== dtype || known.numel !== count) {
        throw new DcaeError(
          'PTH_STORAGE',
          `${source}: storage ${JSON.stringify(key)} is declared twice, as ${known.dtype}×${known.numel} and ${dtype}×${count}.`,
          { source, detail: { key } },
        );
      }
      return known;
    }
    const storage = new PthStorage(key, dtype, count, location);
    storages.set(key, storage);
    return storage;
  };
  const intTuple = (value: PyValue, what: string): number[] => {
    if (!(value instanceof PyTuple)) throw fail(`${what} must be a tuple, found ${typeName(value)}`);
    if (value.items.length > maxDims)
      throw fail(`${what} has ${value.items.length} dimensions, over the limit of ${maxDims}`);
    return value.items.map((v) => {
      const n = int(v, what);
      if (n < 0) throw fail(`${what} holds a negative value ${n}`);
      return n;
    });
  };
  const reduce = (callable: PyValue, args: PyValue): PyValue => {
    if (!(callable instanceof PyGlobal) || !ALLOWED_CALLABLES.has(`${callable.module} ${callable.name}`)) {
      throw forbid(
        'calling this is not allowed',
        callable instanceof PyGlobal ? callable.toString() : typeName(callable),
      );
    }
    if (!(args instanceof PyTuple)) throw fail(`REDUCE arguments must be a tuple, found ${typeName(args)}`);
    const a = args.items;
    switch (callable.name) {
      case 'OrderedDict': {
        if (a.length !== 0)
          throw forbid('OrderedDict with arguments (only OrderedDict() is read)', callable.toString());
        return new PyDict();
      }
      case '_rebuild_parameter': {
        if (a.length < 1 || !(a[0] instanceof PthTensorRef))
          throw fail('_rebuild_parameter of something that is not a tensor');
        return a[0];
      }
      default: {
        // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
        if (a.length !== 6 && a.length !== 7)
          throw fail(`_rebuild_tensor_v2 with ${a.length} arguments (6 or 7 expected)`);
        const [storage, offset, size, stride] = a;
        if (!(storage instanceof PthStorage))
          throw fail(`_rebuild_tensor_v2 of a ${typeName(storage ?? null)}, not a storage`);
        const shape = intTuple(size ?? null, 'a tensor size');
        const strides = intTuple(stride ?? null, 'a tensor stride');
        if (strides.length !== shape.length)
          throw fail(`a tensor of ${shape.length} dimensions with ${strides.length} strides`);
        const start = int(offset ?? null, 'a storage offset');
        if (start < 0) throw fail('a negative storage offset');
        if (typeof a[4] !== 'boolean') throw fail('requires_grad must be a bool');
        const hooks = a[5];
        if (!(hooks instanceof PyDict) || hooks.entries.size > 0)
          throw forbid('a tensor with backward hooks');
        return new PthTensorRef(storage, start, shape, strides);
      }
    }
  };

  for (;;) {
    opAt = pos;
    if (pos >= bytes.length) throw fail('the pickle ends without STOP');
    op = bytes[pos++]!;
    switch (op) {
      case 0x80: // PROTO
        if (u8() > 5) throw fail('an unknown pickle protocol');
        break;
      case 0x95: // FRAME: a length hint only
        u64();
        break;
      case 0x2e: {
        // STOP
        if (stack.length !== 1 || marks.length !== 0)
          throw fail(`STOP with ${stack.length} values on the stack`);
        return stack[0]!;
      }
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x30: // POP
        pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        push(top());
        break;
      case 0x4e: // NONE
        push(null);
        break;
      case 0x88:
        push(true);
        break;
      case 0x89:
        push(false);
        break;
      case 0x4b: // BININT1
        push(u8());
        break;
      case 0x4d: // BININT2
        push(u16());
        break;
      case 0x4a: // BININT
        take(4);
        push(view.getInt32(pos - 4, true));
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement
        const n = u8();
        const digits = take(n);
        let value = 0n;
        for (let i = n - 1; i >= 0; i--) value = (value << 8n) | BigInt(digits[i]!);
        if (n > 0 && (digits[n - 1]! & 0x80) !== 0) value -= 1n << BigInt(8 * n);
        const small = value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
        push(small ? Number(value) : value);
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        take(8);
        push(view.getFloat64(pos - 8, false));
        break;
      case 0x58: // BINUNICODE
        push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        push(text(u8()));
        break;
      case 0x8d: // BINUNICODE8
        push(text(u64()));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str)
        push(latin1.decode(take(u8())));
        break;
      case 0x54: // BINSTRING
        push(latin1.decode(take(u32())));
        break;
      case 0x43: // SHORT_BINBYTES
        push(take(u8()).slice());
        break;
      case 0x42: // BINBYTES
        push(take(u32()).slice());
        break;
      case 0x7d: // EMPTY_DICT
        push(new PyDict());
        break;
      case 0x5d: // EMPTY_LIST
        push(new PyList());
        break;
      case 0x29: // EMPTY_TUPLE
        push(new PyTuple([]));
        break;
      case 0x85:
        push(new PyTuple([pop()]));
        break;
      case 0x86: {
        const b = pop();
        push(new PyTuple([pop(), b]));
        break;
      }
      case 0x87: {
        const c = pop();
        const b = pop();
        push(new PyTuple([pop(), b, c]));
        break;
      }
      case 0x74: // TUPLE
        push(new PyTuple(popMark()));
        break;
      case 0x6c: {
        // LIST
        const list = new PyList();
        list.items.push(...popMark());
        push(list);
        break;
      }
      case 0x64: {
        // DICT
        const dict = new PyDict();
        setItems(dict, popMark());
        push(dict);
        break;
      }
      case 0x61: {
        // APPEND
        const item = pop();
        append(top(), [item]);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        setItems(top(), [key, value]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x71: // BINPUT
        put(u8());
        break;
      case 0x72: // LONG_BINPUT
        put(u32());
        break;
      case 0x94: // MEMOIZE
        put(memo.size);
        break;
      case 0x68: // BINGET
        get(u8());
        break;
      case 0x6a: // LONG_BINGET
        get(u32());
        break;
      case 0x63: {
        // GLOBAL module\nname\n
        const module = line();
        push(global(module, line()));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL of non-strings');
        push(global(module, name));
        break;
      }
      case 0x51: // BINPERSID
        push(persistentLoad(pop()));
        break;
      case 0x52: {
        // REDUCE
        const args = pop();
        push(reduce(pop(), args));
        break;
      }
      case 0x62: {
        // BUILD: only a dict's attribute dict (OrderedDict state_dicts carry `_metadata` this way)
        const state = pop();
        const target = top();
        if (!(target instanceof PyDict)) {
          throw forbid(`BUILD of a ${typeName(target)} (only dicts take state)`);
        }
        if (state instanceof PyDict) target.attributes = state;
        else if (state !== null) throw forbid(`BUILD with a ${typeName(state)} as state`);
        break;
      }
      default:
        throw forbid('this opcode is not needed for a state_dict and is not supported');
    }
  }
}

export function typeName(value: PyValue | undefined): string {
  if (value === null || value === undefined) return 'None';
  if (typeof value === 'boolean') return 'bool';
  if (typeof value === 'number') return Number.isInteger(value) ? 'int' : 'float';
  if (typeof value === 'bigint') return 'int';
  if (typeof value === 'string') return 'str';
  if (value instanceof Uint8Array) return 'bytes';
  if (value instanceof PyTuple) return 'tuple';
  if (value instanceof PyList) return 'list';
  if (value instanceof PyDict) return 'dict';
  if (value instanceof PyGlobal) return value.toString();
  if (value instanceof PthStorage) return 'storage';
  return 'tensor';
}
