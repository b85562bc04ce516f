/**
 * `checkModel()`: the rules an untrusted ONNX model must pass before onnxruntime sees it
 * (docs/reliability.md §9 B1–B13). Each failure is a DcaeError naming the tensor or node, the expected
 * and actual values, and what to do.
 */
import { DcaeError, formatShape } from '../errors.js';
import type { InspectLimits, ModelInspection, OnnxTensorSummary } from './inspect.js';
import { inspectModel, modelTooLarge, ONNX_DTYPES } from './inspect.js';

/**
 * Default-domain (ai.onnx) ops a model may use: those GraphBuilder emits plus the standard ops of
 * DC-AE, SD-VAE and DiT exports. Anything else (ai.onnx.ml, training and contrib ops, custom
 * domains, control flow beyond `If`) is refused: onnxruntime's kernels for rarely used ops are
 * where malicious graphs have reached memory bugs.
 */
// prettier-ignore
export const DEFAULT_ALLOWED_OPS: ReadonlySet<string> = new Set([
  // GraphBuilder
  'Abs', 'Add', 'Cast', 'Concat', 'Conv', 'DepthToSpace', 'DequantizeLinear', 'Div', 'Equal', 'Erf', 'Exp', 'Expand',
  'Gather', 'Gemm', 'Greater', 'Identity', 'If', 'InstanceNormalization', 'LayerNormalization',
  'MatMul', 'Mul', 'Neg', 'Pad', 'Pow', 'QuantizeLinear', 'Reciprocal', 'ReduceMean', 'ReduceSum', 'Relu', 'Reshape',
  'Resize', 'Shape', 'Sigmoid', 'Slice', 'Softmax', 'Softplus', 'SpaceToDepth', 'Split', 'Sqrt',
  'Squeeze', 'Sub', 'Tanh', 'Tile', 'Transpose', 'Unsqueeze', 'Where',
  // standard ops of exported VAE / DiT graphs
  'And', 'BatchNormalization', 'CastLike', 'Ceil', 'Clip', 'Constant', 'ConstantOfShape',
  'ConvTranspose', 'Cos', 'Dropout', 'Einsum', 'Flatten', 'Floor', 'GatherElements', 'Gelu',
  'GreaterOrEqual', 'GroupNormalization', 'HardSigmoid', 'HardSwish', 'LeakyRelu', 'Less',
  'LessOrEqual', 'Log', 'Max', 'Min', 'Mish', 'Mod', 'Not', 'Or', 'Range', 'ReduceMax', 'ReduceMin',
  'ReduceProd', 'Round', 'Sin', 'Size', 'Trilu', 'Upsample',
  // pooling (the perceptual network's VGG16 and the pooling VJPs of @dcae/train)
  'AveragePool', 'MaxPool',
]);

/**
 * onnxruntime contrib ops (domain `com.microsoft`) a model may use: the fused attention and GELU
 * dcae's diffusion backbones emit (docs/reliability.md §9 B13). Only these widely used kernels, which
 * onnxruntime's own transformer optimiser produces, are let through; every other contrib op is refused.
 */
export const DEFAULT_ALLOWED_CONTRIB_OPS: ReadonlySet<string> = new Set(['FastGelu', 'MultiHeadAttention']);

const CONTRIB_DOMAIN = 'com.microsoft';

/** A file the caller supplies for external data: its `location` and, when known, its size. */
export interface ExternalFileInfo {
  readonly location: string;
  readonly size?: number;
}

export interface CheckModelOptions extends InspectLimits {
  /**
   * The external files the caller maps the model's locations to. undefined: none are supplied, so
   * a model with external data is refused (onnxruntime would look in its working directory).
   */
  readonly externalData?: readonly ExternalFileInfo[];
  /** Model bytes plus every external file it reads (MODEL_TOO_LARGE above). @defaultValue no limit; 2^32 in browsers */
  readonly maxTotalBytes?: number;
  /** Most elements one tensor may declare (DIM_LIMIT above). @defaultValue 2^40 */
  readonly maxTensorElements?: number;
  /** Default-domain ops allowed. @defaultValue DEFAULT_ALLOWED_OPS */
  readonly allowedOps?: ReadonlySet<string>;
  /** `com.microsoft` ops allowed. @defaultValue DEFAULT_ALLOWED_CONTRIB_OPS */
  readonly allowedContribOps?: ReadonlySet<string>;
}

export const DEFAULT_MAX_TENSOR_ELEMENTS = 2 ** 40;

/**
 * Inspects `model` and enforces §9 B1–B13: size (MODEL_TOO_LARGE), well-formed protobuf
 * (PROTOBUF_PARSE), external data paths (EXTERNAL_DATA_PATH) and ranges (EXTERNAL_DATA_RANGE),
 * inline data sizes (TENSOR_DATA_SIZE), dims (DIM_LIMIT) and the op allow-list (UNSUPPORTED_OP).
 * Returns the inspection.
 */
export function checkModel(model: Uint8Array, options: CheckModelOptions = {}): ModelInspection {
  const inspection = inspectModel(model, options);
  checkInspection(inspection, options);
  return inspection;
}

/** The checks of `checkModel()` on an inspection already made. */
export function checkInspection(inspection: ModelInspection, options: CheckModelOptions = {}): void {
  const { source, maxTensorElements = DEFAULT_MAX_TENSOR_ELEMENTS } = options;
  const name = source ?? 'ONNX model';
  for (const tensor of inspection.tensors)
    checkTensor(tensor, { name, source, maxElements: maxTensorElements, files: options.externalData });
  for (const value of [...inspection.inputs, ...inspection.outputs]) {
    const bad = value.dims?.find((d) => typeof d === 'number' && d < 0);
    if (bad !== undefined) {
      throw new DcaeError(
        'DIM_LIMIT',
        `${name}: graph input/output "${value.name}" has dim ${bad} in ${formatShape(value.dims!.map(String))}; ` +
          'dims must be sizes ≥ 0 or symbolic names. The model is malformed; re-export it.',
        { source, detail: { value: value.name, dims: value.dims } },
      );
    }
  }
  checkExternalFiles(inspection, name, options);
  checkOps(
    inspection,
    name,
    options.allowedOps ?? DEFAULT_ALLOWED_OPS,
    options.allowedContribOps ?? DEFAULT_ALLOWED_CONTRIB_OPS,
    source,
  );
}

interface TensorCheck {
  readonly name: string;
  readonly source: string | undefined;
  readonly maxElements: number;
  readonly files: readonly ExternalFileInfo[] | undefined;
}

function checkTensor(tensor: OnnxTensorSummary, { name, source, maxElements, files }: TensorCheck): void {
  const where = `${name}: tensor ${tensor.path}`;
  const detail = { tensor: tensor.name, path: tensor.path };
  const dtype = ONNX_DTYPES[tensor.dataType];
  if (dtype === undefined) {
    throw new DcaeError(
      'DTYPE_UNSUPPORTED',
      `${where} has data_type ${tensor.dataType}, which is not an ONNX element type; the model is malformed.`,
      { source, detail },
    );
  }
  let elements = 1;
  for (const dim of tensor.dims) {
    if (dim < 0) {
      throw new DcaeError(
        'DIM_LIMIT',
        `${where} has a negative dim in ${formatShape(tensor.dims)}; tensor dims must be ≥ 0. The model is malformed.`,
        { source, detail: { ...detail, dims: tensor.dims } },
      );
    }
    elements *= dim;
  }
  if (elements > maxElements) {
    throw new DcaeError(
      'DIM_LIMIT',
      `${where} declares ${formatShape(tensor.dims)} = ${elements} elements, over the limit of ${maxElements}. ` +
        'A real model has no such tensor; do not load this file.',
      { source, detail: { ...detail, dims: tensor.dims, limit: maxElements } },
    );
  }
  const bytes = dtype.bits === 0 ? undefined : Math.ceil((elements * dtype.bits) / 8);
  const { storage } = tensor;
  if (storage.kind === 'external') {
    checkExternalEntry(tensor, where, bytes, files, source);
    return;
  }
  if (storage.field === undefined) {
    if (elements === 0) return;
    throw new DcaeError(
      'TENSOR_DATA_SIZE',
      `${where} declares ${formatShape(tensor.dims)} ${dtype.name} but holds no data; the model is malformed.`,
      { source, detail: { ...detail, expected: bytes, actual: 0 } },
    );
  }
  const raw = storage.field === 'raw_data';
  const expected = raw ? bytes : valueCount(storage.field, tensor.dataType, elements);
  if (expected !== undefined && storage.count !== expected) {
    throw new DcaeError(
      'TENSOR_DATA_SIZE',
      `${where}: ${storage.field} holds ${storage.count} ${raw ? 'bytes' : 'values'} but ` +
        `${formatShape(tensor.dims)} ${dtype.name} needs ${expected}. The model is truncated or malformed; re-export it.`,
      { source, detail: { ...detail, field: storage.field, expected, actual: storage.count } },
    );
  }
}

/** How many typed values a tensor needs in `field` (complex types store two per element, 4-bit two per value). */
function valueCount(field: string, dataType: number, elements: number): number | undefined {
  if (dataType === 14 || dataType === 15) return elements * 2;
  const bits = ONNX_DTYPES[dataType]?.bits ?? 0;
  if (field === 'int32_data' && bits < 8) return Math.ceil((elements * bits) / 8);
  return elements;
}

function checkExternalEntry(
  tensor: OnnxTensorSummary,
  where: string,
  bytes: number | undefined,
  files: readonly ExternalFileInfo[] | undefined,
  source: string | undefined,
): void {
  if (tensor.storage.kind !== 'external') return;
  const { entries, location, offset, length } = tensor.storage;
  const detail = { tensor: tensor.name, path: tensor.path };
  const keys = new Set<string>();
  for (const [key] of entries) {
    if (keys.has(key)) {
      throw new DcaeError(
        'EXTERNAL_DATA_PATH',
        `${where} lists external_data key "${key}" more than once; each key may appear once. Do not load this model.`,
        { source, detail: { ...detail, key } },
      );
    }
    keys.add(key);
  }
  if (location === undefined) {
    throw new DcaeError(
      'EXTERNAL_DATA_PATH',
      `${where} is stored as external data but has no "location" entry; the model is malformed.`,
      { source, detail },
    );
  }
  checkExternalLocation(location, where, source);
  for (const [key, value] of [
    ['offset', offset],
    ['length', length],
  ] as const) {
    if (value !== undefined && Number.isNaN(value)) {
      throw new DcaeError(
        'EXTERNAL_DATA_RANGE',
        `${where}: external_data ${key} "${entries.find(([k]) => k === key)?.[1]}" is not a decimal byte count ≤ 2^53; the model is malformed.`,
        { source, detail: { ...detail, key } },
      );
    }
  }
  if (length !== undefined && bytes !== undefined && length !== bytes) {
    throw new DcaeError(
      'EXTERNAL_DATA_RANGE',
      `${where}: external data "${location}" length is ${length} bytes but ${formatShape(tensor.dims)} ${tensor.dtype} needs ${bytes}. ` +
        'The model does not match its weights; re-export it.',
      { source, detail: { ...detail, location, expected: bytes, actual: length } },
    );
  }
  const size = files?.find((f) => f.location === location)?.size;
  const end = offset + (length ?? bytes ?? 0);
  if (size !== undefined && end > size) {
    throw new DcaeError(
      'EXTERNAL_DATA_RANGE',
      `${where}: external data "${location}" bytes ${offset}..${end} run past the end of the file (${size} bytes). ` +
        'The weights file is truncated or belongs to another model.',
      { source, detail: { ...detail, location, offset, end, size } },
    );
  }
}

/**
 * A `location` must name a file inside the model's folder: relative, forward slashes only, no `..`
 * segment, no drive or UNC prefix, no control characters, and never onnxruntime's in-memory marker
 * (its offset would be a raw pointer). Throws EXTERNAL_DATA_PATH.
 */
export function checkExternalLocation(location: string, where: string, source?: string): void {
  const problem =
    location === ''
      ? 'is empty'
      : location.includes('_ORT_MEM_ADDR_')
        ? "holds onnxruntime's in-memory address marker _ORT_MEM_ADDR_ (its offset is a raw pointer)"
        : location.includes('\\')
          ? 'contains a backslash (a Windows or UNC path)'
          : location.startsWith('/')
            ? 'is an absolute path'
            : /^[A-Za-z]:/.test(location) || location.includes(':')
              ? 'contains ":" (a drive letter or stream name)'
              : [...location].some((c) => c < ' ' || c === '\u007f')
                ? 'contains a control character'
                : location.split('/').includes('..')
                  ? 'climbs out of the model folder with ".."'
                  : undefined;
  if (problem === undefined) return;
  throw new DcaeError(
    'EXTERNAL_DATA_PATH',
    `${where}: external data location ${JSON.stringify(location)} ${problem}. ` +
      'External data must be a relative path inside the model folder; do not load this model.',
    { source, detail: { location } },
  );
}

function checkExternalFiles(inspection: ModelInspection, name: string, options: CheckModelOptions): void {
  const { externalData: files, maxTotalBytes = Infinity, source } = options;
  const locations = inspection.externalLocations;
  if (locations.length > 0 && files === undefined) {
    throw new DcaeError(
      'EXTERNAL_DATA_PATH',
      `${name} reads external data from ${locations.map((l) => JSON.stringify(l)).join(', ')} but no external data ` +
        'files were given; onnxruntime would resolve them against its working directory. Pass options.externalData ' +
        '(or load the model from its file with loadOnnxFile()).',
      { source, detail: { locations } },
    );
  }
  const missing = locations.filter((l) => !files!.some((f) => f.location === l));
  if (missing.length > 0) {
    throw new DcaeError(
      'EXTERNAL_DATA_PATH',
      `${name} reads external data from ${missing.map((l) => JSON.stringify(l)).join(', ')} but options.externalData has no entry ` +
        `for ${missing.length === 1 ? 'it' : 'them'} (given: ${JSON.stringify(files!.map((f) => f.location))}). ` +
        'Pass { location, data } for every file the model names.',
      { source, detail: { missing } },
    );
  }
  let total = inspection.byteLength;
  for (const location of locations) {
    let end = files!.find((f) => f.location === location)?.size ?? 0;
    for (const t of inspection.tensors)
      if (t.storage.kind === 'external' && t.storage.location === location)
        end = Math.max(end, t.storage.offset + (t.storage.length ?? 0));
    total += end;
  }
  if (total > maxTotalBytes) throw modelTooLarge(total, maxTotalBytes, `${name} with its external data`);
}

function checkOps(
  inspection: ModelInspection,
  name: string,
  allowed: ReadonlySet<string>,
  allowedContrib: ReadonlySet<string>,
  source: string | undefined,
): void {
  const local = new Set(inspection.functions.map((f) => `${f.domain}\u0000${f.name}`));
  for (const node of inspection.nodes) {
    const standard = node.domain === '' || node.domain === 'ai.onnx';
    if (standard ? allowed.has(node.opType) : local.has(`${node.domain}\u0000${node.opType}`)) continue;
    if (node.domain === CONTRIB_DOMAIN && allowedContrib.has(node.opType)) continue;
    throw new DcaeError(
      'UNSUPPORTED_OP',
      `${name}: node ${node.index} ${JSON.stringify(node.name)} at ${node.path} uses op ${node.opType} from domain ` +
        `${JSON.stringify(node.domain || 'ai.onnx')}, which is not on dcae's allow-list (${standard ? 'standard ops dcae models use' : `only the default ONNX domain and ${CONTRIB_DOMAIN} ${[...allowedContrib].join(', ') || '(none)'} are allowed`}). ` +
        'Untrusted models may only use the allowed ops; pass allowedOps (allowedContribOps for com.microsoft) to extend ' +
        'the list if you trust this model.',
      {
        source,
        detail: {
          node: node.name,
          index: node.index,
          path: node.path,
          opType: node.opType,
          domain: node.domain,
        },
      },
    );
  }
}
