import { parentPort, workerData } from 'node:worker_threads';
import { decodeImage } from '@dcae/autoencoder/node';
import { readFile } from 'node:fs/promises';
import { cropRegion, evalRegion } from '../data/plan.js';
import type { CropDraw, CropOptions } from '../data/plan.js';
import { resampleRegion } from '../data/resample.js';

/**
 * Worker thread of the image-folder data source: reads and decodes one image (sharp, through the
 * autoencoder package's decodeImage) and cuts its crop, so the training thread only assembles
 * batches. Messages: { id, path, draw, options } or { id, path, evalSize } → { id, width, height,
 * data } or { id, error }.
 */
export type DecodeTask =
  | { readonly path: string; readonly draw: CropDraw; readonly options: CropOptions }
  | { readonly path: string; readonly evalSize: number };
export type DecodeRequest = DecodeTask & { readonly id: number };

export type DecodeReply =
  | { readonly id: number; readonly width: number; readonly height: number; readonly data: Uint8Array }
  | { readonly id: number; readonly error: string };

export async function decodeCrop(request: DecodeRequest): Promise<DecodeReply> {
  try {
    const image = await decodeImage(await readFile(request.path), { source: request.path });
    const region =
      'evalSize' in request
        ? evalRegion(image.width, image.height, request.evalSize)
        : cropRegion(image.width, image.height, request.draw, request.options);
    const crop = resampleRegion(image, region);
    return { id: request.id, width: crop.width, height: crop.height, data: crop.data };
  } catch (error) {
    return { id: request.id, error: error instanceof Error ? error.message : String(error) };
  }
}

export const DECODE_WORKER_TAG = 'dcae-train-decode-worker';

if (parentPort !== null && workerData === DECODE_WORKER_TAG) {
  const port = parentPort;
  port.on('message', (request: DecodeRequest) => {
    void decodeCrop(request).then((reply) => {
      if ('data' in reply) port.postMessage(reply, [reply.data.buffer as ArrayBuffer]);
      else port.postMessage(reply);
    });
  });
}
