// @ts-check
/**
 * The only code that touches onnxruntime-node objects. It runs in the caller's thread (in-process
 * mode) or inside the worker host (`ort-host.js`), so it is plain JavaScript that a worker can load
 * without a TypeScript loader; `tsc` checks it through these JSDoc types. Tensors cross it as plain
 * `{ type, dims, data }` records, never as `ort.Tensor`.
 */
import { open } from 'node:fs/promises';

/** @typedef {import('onnxruntime-node').InferenceSession} OrtSession */
/** @typedef {import('onnxruntime-node').InferenceSession.SessionOptions} OrtSessionOptions */

/**
 * @typedef {object} PlainTensor
 * @property {string} type onnxruntime's element type name
 * @property {number[]} dims
 * @property {Float32Array | Uint16Array | BigInt64Array | Int32Array | Uint8Array | Int8Array} data
 */

/**
 * @typedef {object} CreateRequest
 * @property {Uint8Array} model ONNX bytes
 * @property {'cpu' | 'cuda' | 'webgpu'} device
 * @property {'disabled' | 'basic' | 'extended' | 'all'} graphOptimization
 * @property {number | undefined} threads intra-op threads; onnxruntime's default when undefined
 * @property {{ location: string, data: Uint8Array }[]} externalBytes external data given as bytes
 * @property {{ location: string, path: string }[]} externalFiles external data files to read into memory
 * @property {string | undefined} externalFolder a folder onnxruntime reads the remaining external files from itself
 */

/**
 * @typedef {object} SessionInfo
 * @property {{ name: string, type: string, shape: (number | string)[] }[]} inputs
 * @property {{ name: string, type: string, shape: (number | string)[] }[]} outputs
 */

export class OrtEngine {
  /** @type {typeof import('onnxruntime-node')} */
  #ort;
  /** @type {Map<number, OrtSession>} */
  #sessions = new Map();

  /** @param {typeof import('onnxruntime-node')} ort */
  constructor(ort) {
    this.#ort = ort;
  }

  /**
   * Imports onnxruntime-node (the native binding loads here, not when dcae is imported). A failure
   * is an Error named 'RuntimeUnavailable'.
   */
  static async load() {
    try {
      /** @type {any} */
      const module = await import('onnxruntime-node');
      return new OrtEngine(module.default ?? module);
    } catch (cause) {
      const error = new Error(
        `onnxruntime-node failed to load: ${cause instanceof Error ? cause.message : String(cause)}`,
        { cause },
      );
      error.name = 'RuntimeUnavailable';
      throw error;
    }
  }

  /**
   * @param {number} key
   * @param {CreateRequest} request
   * @returns {Promise<SessionInfo>}
   */
  async create(key, request) {
    const externalData = [...request.externalBytes.map(({ location, data }) => ({ path: location, data }))];
    for (const { location, path } of request.externalFiles)
      externalData.push({ path: location, data: await readFile(path) });
    /** @type {OrtSessionOptions} */
    const options = {
      executionProviders: [request.device],
      graphOptimizationLevel: request.graphOptimization,
      executionMode: 'sequential',
      // Errors reach the caller as exceptions; warnings about fallback kernels would only be noise.
      logSeverityLevel: 3,
      enableProfiling: false,
      ...(request.threads === undefined ? {} : { intraOpNumThreads: request.threads }),
      ...(externalData.length === 0 ? {} : { externalData }),
      ...(request.externalFolder === undefined
        ? {}
        : { extra: { session: { model_external_initializers_file_folder_path: request.externalFolder } } }),
    };
    const session = await this.#ort.InferenceSession.create(request.model, options);
    this.#sessions.set(key, session);
    return { inputs: describe(session.inputMetadata), outputs: describe(session.outputMetadata) };
  }

  /**
   * @param {number} key
   * @param {Record<string, PlainTensor>} feeds
   * @returns {Promise<Record<string, PlainTensor>>}
   */
  async run(key, feeds) {
    const session = this.#session(key);
    /** @type {Record<string, import('onnxruntime-node').Tensor>} */
    const ortFeeds = {};
    for (const [name, { type, dims, data }] of Object.entries(feeds)) {
      ortFeeds[name] = new this.#ort.Tensor(
        /** @type {'float32'} */ (type),
        /** @type {Float32Array} */ (data),
        dims,
      );
    }
    const results = await session.run(ortFeeds);
    /** @type {Record<string, PlainTensor>} */
    const outputs = {};
    for (const name of session.outputNames) {
      const tensor = /** @type {import('onnxruntime-node').Tensor} */ (results[name]);
      outputs[name] = {
        type: tensor.type,
        dims: [...tensor.dims],
        data: /** @type {PlainTensor['data']} */ (tensor.data),
      };
    }
    return outputs;
  }

  /** @param {number} key */
  async release(key) {
    const session = this.#sessions.get(key);
    this.#sessions.delete(key);
    await session?.release();
  }

  /** @param {number} key */
  #session(key) {
    const session = this.#sessions.get(key);
    if (session === undefined) throw new Error(`dcae internal error: no onnxruntime session ${key}`);
    return session;
  }
}

/** @param {readonly import('onnxruntime-node').InferenceSession.ValueMetadata[]} metadata */
function describe(metadata) {
  return metadata.map((m) =>
    m.isTensor
      ? { name: m.name, type: m.type, shape: [...m.shape] }
      : { name: m.name, type: 'non-tensor', shape: [] },
  );
}

/**
 * Reads a whole file into one Uint8Array, in chunks (fs.readFile stops at 2 GiB).
 * @param {string} path
 */
async function readFile(path) {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const bytes = new Uint8Array(size);
    for (let offset = 0; offset < size;) {
      const { bytesRead } = await file.read(bytes, offset, Math.min(size - offset, 1 << 30), offset);
      if (bytesRead === 0) throw new Error(`${path} ended at byte ${offset} of ${size} while it was read`);
      offset += bytesRead;
    }
    return bytes;
  } finally {
    await file.close();
  }
}
