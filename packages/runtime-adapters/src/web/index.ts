export { createWebRuntime } from './web-runtime.js';
export type {
  WebDeviceDecision,
  WebRuntime,
  WebRuntimeSettings,
  WebSession,
  WebThreads,
} from './web-runtime.js';
export { probeWebDevices } from './devices.js';
export type { WebDevice, WebDeviceProbe, WebDeviceStatus, WebGpuAdapterInfo } from './devices.js';
export type { WasmPaths } from './ort-web.js';
export { createWeightsCache, weightsCacheAvailable } from './weights-cache.js';
export type {
  CachedWeights,
  GetWeightsOptions,
  WeightsCache,
  WeightsCacheEntry,
  WeightsCacheOptions,
} from './weights-cache.js';
