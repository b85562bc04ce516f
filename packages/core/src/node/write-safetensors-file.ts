import type { MetadataToWrite, TensorsToWrite } from '../safetensors/writer.js';
import { safetensorsChunks } from '../safetensors/writer.js';
import type { WriteFileAtomicOptions } from './write-file-atomic.js';
import { writeFileAtomic } from './write-file-atomic.js';

export interface WriteSafetensorsFileOptions extends WriteFileAtomicOptions {
  metadata?: MetadataToWrite;
}

/** Writes tensors as a safetensors file, atomically (see {@link writeFileAtomic}); the layout is that of `serializeSafetensors`. */
export async function writeSafetensorsFile(
  path: string,
  tensors: TensorsToWrite,
  options: WriteSafetensorsFileOptions = {},
): Promise<void> {
  await writeFileAtomic(path, safetensorsChunks(tensors, options.metadata), { overwrite: options.overwrite });
}
