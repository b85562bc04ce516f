import type { RuntimeV1 } from '@dcae/core/runtime';

/**
 * The activation budget of a model on onnxruntime-web's wasm backend. wasm32 addresses at most
 * 4 GiB, and that one heap holds the weights of every session (external data is copied in), the
 * activations and onnxruntime's own allocations. Above the budget, `tiling: 'auto'` (the default)
 * tiles, so a browser never runs into an out-of-memory abort for a size it could tile.
 * See docs/benchmarks.md (browser section).
 */

/** wasm32's address space: the most memory a wasm backend can ever have. */
export const WASM32_MEMORY_BYTES = 4 * 2 ** 30;
/** Kept free for onnxruntime's arena slack, the session's own buffers and the JS↔wasm copies of inputs and outputs. */
export const WASM_HEADROOM_BYTES = 512 * 2 ** 20;
/** Never less than this: a model whose weights nearly fill the heap still runs small tiles. */
const WASM_MIN_BUDGET_BYTES = 64 * 2 ** 20;

/** Whether `runtime` runs sessions on the wasm backend (its first device), where the 4 GiB limit applies. */
export function isWasmRuntime(runtime: RuntimeV1): boolean {
  return runtime.devices[0] === 'wasm';
}

/** 4 GiB − weights − headroom, at least 64 MiB. */
export function wasmMemoryBudget(weightBytes: number): number {
  return Math.max(WASM_MIN_BUDGET_BYTES, WASM32_MEMORY_BYTES - weightBytes - WASM_HEADROOM_BYTES);
}
