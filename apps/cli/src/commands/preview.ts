import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DcaeError } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { writeFileAtomic } from '@dcae/core/node';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { tensorToImages } from '@dcae/autoencoder';
import { encodeImage, loadAutoencoder } from '@dcae/autoencoder/node';
import type { NodeAutoencoder } from '@dcae/autoencoder/node';
import type { RgbImage } from '@dcae/autoencoder';

/**
 * `dcae generate --preview taesana[=DIR]`: every step's clean-sample estimate x̂₀, decoded by
 * TAESANA (docs/taesana.md) and written as `<output>.preview/step-NNN.png` while sampling runs. DIR
 * is the TAESANA folder (`taesana_decoder.pth`); without it, `$DCAE_TAESANA`. Each PNG is written
 * atomically; a step that finishes while the previous preview is still decoding is skipped (the
 * newest one is decoded next), so previews never slow sampling down by more than one decode.
 */
export interface PreviewSpec {
  readonly folder: string;
}

/** Parses `--preview`: `taesana` or `taesana=<folder>`. */
export function parsePreview(value: string): PreviewSpec {
  const [kind, ...rest] = value.split('=');
  const folder = rest.length > 0 ? rest.join('=') : process.env.DCAE_TAESANA;
  if (kind !== 'taesana') {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `--preview takes taesana or taesana=<folder>; got ${JSON.stringify(value)}.`,
    );
  }
  if (folder === undefined || folder === '') {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      '--preview taesana needs the TAESANA folder (taesana_decoder.pth from madebyollin/taesd): --preview taesana=<folder>, or set DCAE_TAESANA.',
    );
  }
  return { folder };
}

export interface Previewer {
  /** The latest step's x̂₀ in diffusion space; decoded and written when the previous preview is done. */
  push(step: number, denoised: HostTensor<'float32'>): void;
  /** Waits for the preview in flight, then releases TAESANA. */
  close(): Promise<void>;
  readonly directory: string;
  readonly written: () => number;
}

export async function startPreview(options: {
  spec: PreviewSpec;
  output: string;
  force: boolean;
  runtime: RuntimeV1;
  signal: AbortSignal;
  /** Diffusion space = latent × this. */
  scalingFactor: number | undefined;
  latentChannels: number;
  autoencoderName: string | undefined;
  warn: (message: string) => void;
}): Promise<Previewer> {
  const directory = `${options.output.replace(/\.[^./\\]+$/, '')}.preview`;
  if ((await stat(directory).catch(() => undefined)) !== undefined && !options.force) {
    throw new DcaeError('OUTPUT_EXISTS', `Preview directory ${directory} already exists.`, {
      source: directory,
    });
  }
  if (options.scalingFactor === undefined) {
    throw new DcaeError(
      'UNSUPPORTED',
      'This diffusion model has no published scaling factor, so its x̂₀ cannot be brought back to latent units for a preview.',
    );
  }
  const taesana: NodeAutoencoder = await loadAutoencoder(options.spec.folder, {
    runtime: options.runtime,
    signal: options.signal,
    parts: ['decoder'],
  });
  if (taesana.architecture !== 'taesana' || options.latentChannels !== taesana.latentChannels) {
    const channels = options.latentChannels;
    await taesana.dispose();
    throw new DcaeError(
      'UNSUPPORTED',
      taesana.architecture !== 'taesana'
        ? `--preview taesana: ${options.spec.folder} is not a TAESANA folder (taesana_decoder.pth).`
        : `--preview taesana decodes 32-channel f32 latents; this model samples ${channels}-channel latents.`,
    );
  }
  if (options.autoencoderName !== undefined && !options.autoencoderName.includes('sana')) {
    options.warn(
      `TAESANA was trained on dc-ae-f32c32-sana latents; this model samples in the ${options.autoencoderName} latent space, so the previews only hint at the image.`,
    );
  }
  await mkdir(directory, { recursive: true });
  const scale = options.scalingFactor;
  let busy: Promise<void> | undefined;
  let pending: { step: number; denoised: HostTensor<'float32'> } | undefined;
  let written = 0;
  let failure: Error | undefined;
  const run = async (step: number, denoised: HostTensor<'float32'>): Promise<void> => {
    const unscaled: HostTensor<'float32'> = {
      dtype: 'float32',
      shape: denoised.shape,
      data: denoised.data.map((v) => v / scale),
    };
    const decoded = await taesana.decode(unscaled, { signal: options.signal });
    const png = await encodeImage(grid(tensorToImages(decoded)), 'png');
    await writeFileAtomic(join(directory, `step-${String(step).padStart(3, '0')}.png`), png, {
      overwrite: true,
    });
    written++;
  };
  const next = (): void => {
    if (busy !== undefined || pending === undefined || failure !== undefined) return;
    const job = pending;
    pending = undefined;
    busy = run(job.step, job.denoised)
      .catch((error: unknown) => {
        failure = error instanceof Error ? error : new Error(String(error));
      })
      .finally(() => {
        busy = undefined;
        next();
      });
  };
  return {
    directory,
    written: () => written,
    push(step, denoised) {
      pending = { step, denoised };
      next();
    },
    async close() {
      while (busy !== undefined) await busy;
      await taesana.dispose();
      if (failure !== undefined && !options.signal.aborted) throw failure;
    },
  };
}

/** The batch side by side in one row. */
function grid(images: readonly RgbImage[]): RgbImage {
  if (images.length === 1) return images[0]!;
  const { width, height } = images[0]!;
  const data = new Uint8Array(width * images.length * height * 3);
  images.forEach((image, i) => {
    for (let y = 0; y < height; y++) {
      data.set(
        image.data.subarray(y * width * 3, (y + 1) * width * 3),
        (y * width * images.length + i * width) * 3,
      );
    }
  });
  return { width: width * images.length, height, channels: 3, data };
}
