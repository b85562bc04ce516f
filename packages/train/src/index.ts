/** @dcae/train: training and adaptation of DC-AE models (see README.md). */
export const TRAIN_PACKAGE = '@dcae/train';
// Loop, data plans, phases and checkpoint helpers (platform-neutral; docs/training-loop.md).
export * from './loop-exports.js';
