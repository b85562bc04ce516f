// @ts-check
/**
 * Child process of `profileWasmModel` (profile.ts): runs one model on onnxruntime-web's wasm
 * backend with onnxruntime's profiler on. The wasm build has no profile file: it prints each trace
 * event as one line of JSON on standard output (its `print`, which is bound when the module loads),
 * so the parent reads this process's stdout. Plain JavaScript, so it runs from `src` and from `dist`
 * (its own entry, `dist/node/wasm-profile-host.js`).
 *
 * Protocol: the parent sends one message over IPC, `WasmProfileRequest`; this process answers one
 * `{ ok: true, runMs: number[] }` or `{ ok: false, message }`, and exits.
 */
import { readFile } from 'node:fs/promises';

/**
 * @typedef {{
 *   modelPath: string,
 *   externalData: { location: string, path: string }[],
 *   feeds: Record<string, { type: string, dims: number[], data: ArrayBufferView }>,
 *   runs: number,
 *   threads: number,
 *   graphOptimization: 'disabled' | 'basic' | 'extended' | 'all',
 * }} WasmProfileRequest
 */

process.once('message', (/** @type {WasmProfileRequest} */ request) => {
  profile(request).then(
    (runMs) => finish({ ok: true, runMs }),
    (/** @type {unknown} */ error) =>
      finish({ ok: false, message: error instanceof Error ? error.message : String(error) }),
  );
});

/** @param {unknown} answer */
function finish(answer) {
  process.send?.(answer, () => process.exit(0));
}

/**
 * @param {WasmProfileRequest} request
 * @returns {Promise<number[]>} wall time of each profiled run (after the warm-up), ms
 */
async function profile(request) {
  const module = await import('onnxruntime-web');
  /** @type {typeof import('onnxruntime-web')} */
  const ort = /** @type {any} */ (module).default ?? module;
  ort.env.wasm.numThreads = request.threads;
  ort.env.logLevel = 'error';
  const externalData = [];
  for (const { location, path } of request.externalData)
    externalData.push({ path: location, data: new Uint8Array(await readFile(path)) });
  const session = await ort.InferenceSession.create(new Uint8Array(await readFile(request.modelPath)), {
    executionProviders: ['wasm'],
    graphOptimizationLevel: request.graphOptimization,
    executionMode: 'sequential',
    logSeverityLevel: 3,
    enableProfiling: true,
    ...(externalData.length === 0 ? {} : { externalData }),
  });
  try {
    /** @type {Record<string, import('onnxruntime-web').Tensor>} */
    const feeds = {};
    for (const [name, { type, dims, data }] of Object.entries(request.feeds))
      feeds[name] = new ort.Tensor(/** @type {'float32'} */ (type), /** @type {Float32Array} */ (data), dims);
    const runMs = [];
    for (let i = 0; i <= request.runs; i++) {
      const start = performance.now();
      await session.run(feeds);
      if (i > 0) runMs.push(performance.now() - start);
    }
    session.endProfiling();
    return runMs;
  } finally {
    await session.release();
  }
}
