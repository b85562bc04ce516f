export { createNodeRuntime } from './node-runtime.js';
export type { NodeDeviceDecision, NodeRuntime, NodeRuntimeSettings, NodeSession } from './node-runtime.js';
export { findSoftwareVulkanDriver, listNodeDevices } from './devices.js';
export type { NodeDevice, NodeDeviceStatus } from './devices.js';
export type { WorkerKind } from './worker-host.js';
export { inspectOnnxFile, loadOnnxFile } from './load-onnx-file.js';
export type { InspectedOnnxFile, OnnxFileCheckOptions } from './load-onnx-file.js';
export { profileModel, profileWasmModel } from './profile.js';
export type { ModelProfile, ProfiledNode, ProfileOptions, WasmProfileOptions } from './profile.js';
