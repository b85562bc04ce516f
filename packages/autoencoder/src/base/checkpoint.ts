import { DcaeError, openSafetensors } from '@dcae/core';
import type { SafetensorsFile, SafetensorsTensorInfo } from '@dcae/core';
import { CONFIG_FILE, WEIGHTS_FILE } from '@dcae/hub';
import type { ModelFiles } from '@dcae/hub';

/** File names of a model folder (from `@dcae/hub`), shared by the families that read diffusers or original folders. */
export { CONFIG_FILE, WEIGHTS_FILE };

/**
 * Opens a weights file. With `keyPrefix`, only the tensors whose names start with it are seen,
 * named without it: the released diffusion checkpoints hold the DC-AE under `autoencoder.` and
 * the backbone under `diffusion_model.` in one `model.safetensors`, and the backbone's tensors are
 * no concern of the autoencoder (nor unused weights of it). Byte offsets stay those of the file.
 */
export async function openWeights(
  files: ModelFiles,
  weightsFile: string,
  keyPrefix = '',
): Promise<SafetensorsFile> {
  const file = await openSafetensors(await files.byteSource(weightsFile));
  if (keyPrefix === '') return file;
  const tensors = new Map<string, SafetensorsTensorInfo>();
  for (const [name, info] of file.header.tensors) {
    if (name.startsWith(keyPrefix)) tensors.set(name.slice(keyPrefix.length), info);
  }
  if (tensors.size === 0) {
    await file.close();
    const source = `${files.name}/${weightsFile}`;
    const some = [...file.header.tensors.keys()].slice(0, 3).map((name) => JSON.stringify(name));
    throw new DcaeError(
      'WEIGHTS_MISMATCH',
      `${source} has no tensor under "${keyPrefix}" (it holds ${file.header.tensors.size}${some.length > 0 ? `, e.g. ${some.join(', ')}` : ''}); ` +
        'check keyPrefix, or whether this file holds autoencoder weights at all.',
      { source, detail: { keyPrefix } },
    );
  }
  const full = (name: string): string => keyPrefix + name;
  return {
    source: file.source,
    header: { ...file.header, tensors },
    tensorInfo: (name) => file.tensorInfo(full(name)),
    fileOffset: (name) => file.fileOffset(full(name)),
    readBytes: (name) => file.readBytes(full(name)),
    readTensor: (name) => file.readTensor(full(name)),
    close: () => file.close(),
  };
}
