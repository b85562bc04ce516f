export type {
  Device,
  ExternalDataFile,
  GraphOptimizationLevel,
  RunOptions,
  RuntimeV1,
  SessionOptions,
  SessionV1,
} from './runtime-v1.js';
