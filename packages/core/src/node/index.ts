export { fileSource } from './file-source.js';
export { writeFileAtomic } from './write-file-atomic.js';
export type { FileContents, WriteFileAtomicOptions } from './write-file-atomic.js';
export { writeSafetensorsFile } from './write-safetensors-file.js';
export type { WriteSafetensorsFileOptions } from './write-safetensors-file.js';
export { systemErrorCode } from './system-error.js';
