// @ts-check
/**
 * Entry of the worker that owns onnxruntime sessions in `worker` mode: a worker_threads Worker
 * ('thread') or a child process started with `fork` ('process'). It answers requests in arrival
 * order; the runtime sends one at a time. Plain JavaScript, so it runs from `src` as well as from
 * `dist` (where it is built as its own entry, `dist/node/ort-host.js`).
 */
import { parentPort } from 'node:worker_threads';
import { OrtEngine } from './ort-engine.js';

/**
 * @typedef {{ id: number, op: 'create', key: number, request: import('./ort-engine.js').CreateRequest }
 *   | { id: number, op: 'run', key: number, feeds: Record<string, import('./ort-engine.js').PlainTensor> }
 *   | { id: number, op: 'release', key: number }} HostRequest
 */

const port = parentPort ?? processPort();
// Loading failures are answered per request, so the runtime reports them like any other error.
const engine = OrtEngine.load();
engine.catch(() => {});

port.on('message', (/** @type {HostRequest} */ message) => {
  void answer(message);
});

/** @param {HostRequest} message */
async function answer(message) {
  try {
    const ort = await engine;
    if (message.op === 'create') {
      port.postMessage({ id: message.id, ok: true, result: await ort.create(message.key, message.request) });
    } else if (message.op === 'run') {
      const outputs = await ort.run(message.key, message.feeds);
      const buffers = new Set(Object.values(outputs).map((t) => t.data.buffer));
      port.postMessage(
        { id: message.id, ok: true, result: outputs },
        /** @type {ArrayBuffer[]} */ ([...buffers]),
      );
    } else {
      await ort.release(message.key);
      port.postMessage({ id: message.id, ok: true, result: undefined });
    }
  } catch (error) {
    const { name, message: text } =
      error instanceof Error ? error : { name: 'Error', message: String(error) };
    port.postMessage({ id: message.id, ok: false, error: { name, message: text } });
  }
}

/** The IPC channel of a forked child, shaped like a MessagePort. The child exits with its parent. */
function processPort() {
  process.on('disconnect', () => process.exit(0));
  return {
    /** @param {'message'} event @param {(message: HostRequest) => void} listener */
    on: (event, listener) => process.on(event, listener),
    /** @param {unknown} message @param {unknown} [_transfer] copies: IPC cannot transfer */
    postMessage: (message, _transfer) => process.send?.(message),
  };
}
