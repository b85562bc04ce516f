import { readFile } from 'node:fs/promises';
import type { HostTensor } from '@dcae/core';
import { DcaeError, parseSafetensors } from '@dcae/core';
import type { PerceptualOptions } from '../losses/perceptual.js';
import { checkPerceptualWeights } from '../losses/perceptual.js';

/**
 * Reads a user-supplied VGG16/LPIPS safetensors file for the perceptual loss and checks it against
 * the layout (docs/training.md, "Losses"): a path that does not exist is PERCEPTUAL_WEIGHTS_MISSING
 * naming it; a missing key, a wrong shape or an unexpected key is WEIGHTS_MISMATCH naming the key.
 */
export async function readPerceptualWeights(
  path: string,
  options: PerceptualOptions = {},
): Promise<Map<string, HostTensor<'float32'>>> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (cause) {
    const code = (cause as { code?: string }).code;
    if (code === 'ENOENT')
      throw new DcaeError(
        'PERCEPTUAL_WEIGHTS_MISSING',
        `The perceptual weights file ${path} does not exist. dcae ships and downloads none: convert the torchvision VGG16 and LPIPS weights as docs/training.md ("Losses") shows, or drop the perceptual term.`,
        { source: path, cause },
      );
    throw new DcaeError('FILE_READ', `Cannot read the perceptual weights file ${path}: ${String(cause)}.`, {
      source: path,
      cause,
    });
  }
  const file = parseSafetensors(bytes, { name: path });
  const tensors = new Map<string, HostTensor>();
  for (const name of file.header.tensors.keys()) tensors.set(name, file.tensor(name));
  try {
    return checkPerceptualWeights(tensors, options);
  } catch (err) {
    if (err instanceof DcaeError)
      throw new DcaeError(err.code, `${path}: ${err.message}`, { source: path, cause: err });
    throw err;
  }
}
