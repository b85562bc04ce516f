/**
 * Runtime-independent checks between dcae `HostTensor`s and a session's declared inputs and
 * outputs. Both adapters use it, so feeds fail the same way on every runtime.
 */
import type { DType, HostTensor } from '@dcae/core';
import { DcaeError, DTYPE_ARRAYS, formatShape, invariant } from '@dcae/core';

/** One input or output as a session declares it; `type` is the runtime's element type name. */
export interface TensorSpec {
  readonly name: string;
  readonly type: string;
  /** Numbers are fixed dims, strings symbolic ones. */
  readonly shape: readonly (number | string)[];
}

/** Element types a session may declare for its inputs and outputs (bfloat16 is only accepted as a feed). */
export const SESSION_DTYPES = ['float32', 'float16', 'int64', 'int32', 'uint8', 'int8', 'bool'] as const;
export type SessionDType = (typeof SESSION_DTYPES)[number];

function isSessionDType(type: string): type is SessionDType {
  return (SESSION_DTYPES as readonly string[]).includes(type);
}

/** Throws DTYPE_UNSUPPORTED when an input or output has an element type no HostTensor can hold. */
export function checkSessionSpecs(inputs: readonly TensorSpec[], outputs: readonly TensorSpec[]): void {
  const bad = [
    ...inputs.filter((s) => !isSessionDType(s.type)).map((s) => `input "${s.name}" is ${s.type}`),
    ...outputs.filter((s) => !isSessionDType(s.type)).map((s) => `output "${s.name}" is ${s.type}`),
  ];
  if (bad.length > 0) {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `The model's ${bad.join(', ')}; dcae sessions exchange only ${SESSION_DTYPES.join(', ')} tensors. Add a Cast in the graph.`,
      { detail: { unsupported: bad } },
    );
  }
}

/**
 * Checks `feeds` against the session's inputs (names, dtypes, ranks, fixed dims, data length) and
 * returns the tensors to hand to the runtime. A bfloat16 feed for a float32 input is widened to
 * float32 (exact); any other dtype difference is DTYPE_UNSUPPORTED.
 */
export function prepareFeeds(
  feeds: Readonly<Record<string, HostTensor>>,
  inputs: readonly TensorSpec[],
  maxInputElements: number,
): Record<string, HostTensor> {
  if (typeof feeds !== 'object' || feeds === null) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `run() takes an object of input tensors by name; got ${String(feeds)}.`,
    );
  }
  const expected = inputs.map((s) => s.name);
  const given = Object.keys(feeds);
  const unknown = given.filter((name) => !expected.includes(name));
  const missing = expected.filter((name) => !given.includes(name));
  if (unknown.length > 0 || missing.length > 0) {
    const problems = [
      ...(unknown.length > 0 ? [`unknown ${quoteList(unknown)}`] : []),
      ...(missing.length > 0 ? [`missing ${quoteList(missing)}`] : []),
    ];
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `Inputs do not match the model: ${problems.join('; ')}. The model takes ${quoteList(expected)}, got ${quoteList(given)}.`,
      { detail: { expected, given } },
    );
  }
  const prepared: Record<string, HostTensor> = {};
  for (const spec of inputs) prepared[spec.name] = prepareFeed(feeds[spec.name]!, spec, maxInputElements);
  return prepared;
}

function prepareFeed(tensor: HostTensor, spec: TensorSpec, maxElements: number): HostTensor {
  const where = `Input "${spec.name}"`;
  const shape: unknown = tensor?.shape;
  const count = Array.isArray(shape) ? shape.reduce((a: number, d) => a * Number(d), 1) : 0;
  if (count > maxElements) {
    throw new DcaeError(
      'INPUT_SHAPE_LIMIT',
      `${where} has shape ${formatShape(tensor.shape)} = ${count} elements, over the session's limit of ${maxElements} ` +
        '(options.maxInputElements). Split the work into tiles, or raise the limit if the machine can hold it.',
      { detail: { input: spec.name, shape: tensor.shape, limit: maxElements } },
    );
  }
  checkTensor(tensor, where);
  if (tensor.dtype !== spec.type) {
    if (tensor.dtype === 'bfloat16' && spec.type === 'float32') {
      checkShape(tensor.shape, spec, where);
      return { dtype: 'float32', shape: tensor.shape, data: bfloat16ToFloat32(tensor.data as Uint16Array) };
    }
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${where} is ${spec.type} in the model but the tensor given is ${tensor.dtype}` +
        (tensor.dtype === 'bfloat16' ? ' (bfloat16 is converted only for float32 inputs)' : '') +
        `. Convert it to ${spec.type} first.`,
      { detail: { input: spec.name, expected: spec.type, actual: tensor.dtype } },
    );
  }
  checkShape(tensor.shape, spec, where);
  return tensor;
}

/** Throws unless `tensor` is a well-formed HostTensor: known dtype, matching array type, shape and length. */
export function checkTensor(tensor: HostTensor, where: string): void {
  if (typeof tensor !== 'object' || tensor === null) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${where} is ${String(tensor)}; expected a tensor { dtype, shape, data }.`,
    );
  }
  const ArrayType = (DTYPE_ARRAYS as Record<string, (typeof DTYPE_ARRAYS)[DType] | undefined>)[tensor.dtype];
  if (ArrayType === undefined) {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${where} has dtype ${String(tensor.dtype)}; expected one of ${Object.keys(DTYPE_ARRAYS).join(', ')}.`,
    );
  }
  if (!(tensor.data instanceof ArrayType)) {
    const actual =
      typeof tensor.data === 'object' && tensor.data !== null
        ? (tensor.data as object).constructor.name
        : typeof tensor.data;
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${where} is ${tensor.dtype}, so its data must be a ${ArrayType.name}; got a ${actual}.`,
    );
  }
  const shape: unknown = tensor.shape;
  if (!Array.isArray(shape) || !tensor.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${where} has shape ${String(tensor.shape)}; dims must be non-negative integers.`,
    );
  }
  const count = tensor.shape.reduce((a, b) => a * b, 1);
  if (tensor.data.length !== count) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${where} has shape ${formatShape(tensor.shape)} (${count} elements) but ${tensor.data.length} data elements.`,
      { detail: { shape: tensor.shape, expected: count, actual: tensor.data.length } },
    );
  }
}

function checkShape(shape: readonly number[], spec: TensorSpec, where: string): void {
  const fits =
    shape.length === spec.shape.length &&
    spec.shape.every((dim, axis) => typeof dim === 'string' || dim === shape[axis]);
  if (!fits) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${where} has shape ${formatShape(shape)} but the model expects ${formatShape(spec.shape)} (named dims may be any size).`,
      { detail: { input: spec.name, expected: spec.shape, actual: shape } },
    );
  }
}

/** Exact: a bfloat16 is the upper half of a float32. */
function bfloat16ToFloat32(bits: Uint16Array): Float32Array {
  const wide = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) wide[i] = bits[i]! << 16;
  return new Float32Array(wide.buffer);
}

/** A runtime output as a HostTensor; float16 data is normalised to its Uint16Array bits. */
export function outputTensor(
  name: string,
  type: string,
  dims: readonly number[],
  data: ArrayBufferView,
): HostTensor {
  if (!isSessionDType(type)) {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `Output "${name}" is ${type}; dcae sessions return only ${SESSION_DTYPES.join(', ')}.`,
    );
  }
  // A runtime with Float16Array may return one; HostTensor keeps float16 as raw bits.
  const typed =
    type === 'float16' && !(data instanceof Uint16Array)
      ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2)
      : data;
  invariant(
    typed instanceof DTYPE_ARRAYS[type],
    () => `output "${name}" is ${type} but its data is a ${typed.constructor.name}`,
  );
  return { dtype: type, shape: [...dims], data: typed };
}

function quoteList(names: readonly string[]): string {
  return `[${names.map((n) => `"${n}"`).join(', ')}]`;
}
