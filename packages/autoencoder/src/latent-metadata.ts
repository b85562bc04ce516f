import { DcaeError, formatShape } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { AUTOENCODER_CATALOG } from '@dcae/hub';
import type { ModelCatalog } from '@dcae/hub';

/**
 * The latent file contract (docs/latent-format.md): a `.safetensors` file with one float tensor
 * `latent` [N, C, h, w] and these `__metadata__` string keys. Every dcae command and
 * {@link latentForDecoder} read them; third parties (e.g. Python) write them the same way.
 */
export const LATENT_METADATA_KEYS = {
  /** Version of this contract: `"1"`. */
  version: 'dcae.latent_version',
  /** The autoencoder the latent belongs to: a Hub id `org/name`, a released `model_name`, or a folder name. */
  model: 'dcae.model',
  /** The Hub commit of that model, when it came from the Hub. */
  revision: 'dcae.revision',
  /** `autoencoder`: the encoder's raw output (what `decode` takes); `diffusion`: multiplied by the scaling factor. */
  space: 'dcae.latent_space',
  /** The factor a `diffusion` latent was multiplied by (decimal). */
  scalingFactor: 'dcae.scaling_factor',
  /** The precision the producer computed in: `fp32`, `fp16`, `bf16` or `int8` (calibrated int8 convolutions) (the tensor's own dtype is in the header). */
  dtype: 'dcae.dtype',
  /** `WxH` of the image before `--fit pad`; decoders crop their output back to it. */
  originalSize: 'dcae.original_size',
} as const;

export const LATENT_FORMAT_VERSION = '1';

export type LatentSpace = 'autoencoder' | 'diffusion';

/** What a latent file says about itself; every field may be absent in files from elsewhere. */
export interface LatentMetadata {
  readonly version?: string;
  readonly model?: string;
  readonly revision?: string;
  /** Absent: the file does not say (dcae treats it as `autoencoder`, the encoder's output). */
  readonly space?: LatentSpace;
  readonly scalingFactor?: number;
  readonly dtype?: 'fp32' | 'fp16' | 'bf16' | 'int8';
  readonly originalSize?: { readonly width: number; readonly height: number };
}

/** The metadata map of a latent as strings, ready for `serializeSafetensors(tensors, metadata)`. */
export function formatLatentMetadata(metadata: LatentMetadata): Record<string, string> {
  const k = LATENT_METADATA_KEYS;
  const out: Record<string, string> = { [k.version]: metadata.version ?? LATENT_FORMAT_VERSION };
  if (metadata.model !== undefined) out[k.model] = metadata.model;
  if (metadata.revision !== undefined) out[k.revision] = metadata.revision;
  out[k.space] = metadata.space ?? 'autoencoder';
  if (metadata.scalingFactor !== undefined) out[k.scalingFactor] = String(metadata.scalingFactor);
  if (metadata.dtype !== undefined) out[k.dtype] = metadata.dtype;
  if (metadata.originalSize !== undefined)
    out[k.originalSize] = `${metadata.originalSize.width}x${metadata.originalSize.height}`;
  return out;
}

/**
 * Reads the contract's keys from a file's metadata (other keys are ignored). A key that is present
 * but malformed is an error (INVALID_ARGUMENT naming the key and the value), never silently dropped.
 */
export function parseLatentMetadata(
  metadata: ReadonlyMap<string, string> | Readonly<Record<string, string>>,
  source = 'latent',
): LatentMetadata {
  const get = (key: string): string | undefined => {
    if (metadata instanceof Map) return (metadata as ReadonlyMap<string, string>).get(key);
    const record = metadata as Readonly<Record<string, string>>;
    return Object.hasOwn(record, key) ? record[key] : undefined;
  };
  const k = LATENT_METADATA_KEYS;
  const bad = (key: string, value: string, expected: string): never => {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${source}: metadata ${key} is ${JSON.stringify(value)}; expected ${expected} (see docs/latent-format.md).`,
      { source, detail: { key, value } },
    );
  };
  const out: {
    -readonly [K in keyof LatentMetadata]: LatentMetadata[K];
  } = {};
  const version = get(k.version);
  if (version !== undefined) {
    if (version !== LATENT_FORMAT_VERSION) bad(k.version, version, `"${LATENT_FORMAT_VERSION}"`);
    out.version = version;
  }
  const model = get(k.model);
  if (model !== undefined && model.trim() !== '') out.model = model;
  const revision = get(k.revision);
  if (revision !== undefined && revision.trim() !== '') out.revision = revision;
  const space = get(k.space);
  if (space !== undefined) {
    if (space !== 'autoencoder' && space !== 'diffusion') bad(k.space, space, '"autoencoder" or "diffusion"');
    out.space = space as LatentSpace;
  }
  const factor = get(k.scalingFactor);
  if (factor !== undefined) {
    const value = Number(factor);
    if (factor.trim() === '' || !Number.isFinite(value) || value <= 0)
      bad(k.scalingFactor, factor, 'a positive number');
    out.scalingFactor = value;
  }
  const dtype = get(k.dtype);
  if (dtype !== undefined) {
    if (dtype !== 'fp32' && dtype !== 'fp16' && dtype !== 'bf16' && dtype !== 'int8')
      bad(k.dtype, dtype, '"fp32", "fp16", "bf16" or "int8"');
    out.dtype = dtype as LatentMetadata['dtype'];
  }
  const size = get(k.originalSize);
  if (size !== undefined) {
    const match = /^(\d+)x(\d+)$/.exec(size);
    const [width, height] = [Number(match?.[1]), Number(match?.[2])];
    if (!match || !(width > 0) || !(height > 0)) bad(k.originalSize, size, 'WxH, e.g. 500x333');
    out.originalSize = { width, height };
  }
  return out;
}

/**
 * The identity used to compare models: the last path segment, without `@revision` and without a
 * `-diffusers` suffix, lower-cased — so `mit-han-lab/dc-ae-f32c32-sana-1.1-diffusers@main`,
 * `dc-ae-f32c32-sana-1.1` (its original-format name) and `./models/dc-ae-f32c32-sana-1.1-diffusers/`
 * are the same model.
 */
export function modelIdentity(name: string): string {
  const last =
    name
      .replace(/@[^/]*$/, '')
      .replace(/[\\/]+$/, '')
      .split(/[\\/]/)
      .pop() ?? name;
  return last.replace(/-diffusers$/i, '').toLowerCase();
}

/**
 * The identities a model name stands for: its own, and for a released diffusion checkpoint (whose
 * `autoencoder.` weights decode its latents) that of its autoencoder.
 */
function identities(name: string, catalog: ModelCatalog): Set<string> {
  const out = new Set([modelIdentity(name)]);
  const base = name.replace(/[\\/]+$/, '').split(/[\\/]/);
  const known = catalog.find(name) ?? catalog.find(base[base.length - 1] ?? name);
  if (known !== undefined) out.add(modelIdentity(known.autoencoder));
  return out;
}

/**
 * Whether a latent recorded for `recorded` belongs to the model `name`. A released diffusion
 * checkpoint counts as its autoencoder when `catalog` lists it (`MODEL_CATALOG` of `@dcae/diffusion`).
 */
export function sameModel(
  recorded: string,
  name: string,
  catalog: ModelCatalog = AUTOENCODER_CATALOG,
): boolean {
  const mine = identities(name, catalog);
  return [...identities(recorded, catalog)].some((id) => mine.has(id));
}

/** What {@link latentForDecoder} needs of the autoencoder. */
export interface LatentDecoderModel {
  readonly name: string;
  readonly latentChannels: number;
  readonly scalingFactor: number | undefined;
  /** Whether the model decodes latents with fewer channels (DC-AE 1.5; docs/dc-ae-1.5.md). @defaultValue false */
  readonly adaptiveLatentChannels?: boolean;
}

export interface LatentForDecoderOptions {
  /** Decode although the latent names another model (a warning is reported). @defaultValue false */
  readonly allowModelMismatch?: boolean;
  /** Treat a latent without `dcae.latent_space` as a diffusion-space latent. @defaultValue false */
  readonly assumeDiffusionSpace?: boolean;
  /** Receives what was done or overridden (unscaling, a forced mismatch). */
  readonly onWarning?: (message: string) => void;
  /** Names the file in messages. */
  readonly source?: string;
  /** The released repos whose autoencoder a name stands for (see {@link sameModel}). @defaultValue `AUTOENCODER_CATALOG` */
  readonly catalog?: ModelCatalog;
}

export interface DecoderLatent {
  /** What the decoder takes: the autoencoder-space latent. */
  readonly latent: HostTensor<'float32'>;
  /** The factor the input was divided by, if it was a diffusion-space latent. */
  readonly unscaledBy: number | undefined;
  readonly metadata: LatentMetadata;
}

/**
 * Turns a latent and its metadata into what `autoencoder.decode` takes, honouring the contract:
 * - a `diffusion` latent is divided by its recorded scaling factor (else by the model's; with
 *   neither, INVALID_ARGUMENT, since decoding it as-is gives a wrong image);
 * - a latent recorded for another model is refused (MODEL_MISMATCH) unless `allowModelMismatch`;
 * - a channel count other than the model's is SHAPE_MISMATCH (fewer channels are accepted where
 *   the model has adaptive latent channels).
 */
export function latentForDecoder(
  latent: HostTensor<'float32'>,
  metadata: LatentMetadata,
  model: LatentDecoderModel,
  options: LatentForDecoderOptions = {},
): DecoderLatent {
  const source = options.source ?? 'latent';
  if (metadata.model !== undefined && !sameModel(metadata.model, model.name, options.catalog)) {
    const message = `${source} was made with ${metadata.model}, not ${model.name}; another model's latent decodes into a wrong image.`;
    if (!options.allowModelMismatch) {
      throw new DcaeError('MODEL_MISMATCH', message, {
        source,
        detail: { recorded: metadata.model, model: model.name },
        hint: {
          library:
            'Decode it with that model, or pass { allowModelMismatch: true } if the two are the same weights.',
          cli: `decode it with --model ${metadata.model}, or pass --force if the two are the same weights`,
        },
      });
    }
    options.onWarning?.(`${message} Decoding anyway, as asked.`);
  }
  const channels = latent.shape[1]!;
  const partial = model.adaptiveLatentChannels === true && channels >= 1 && channels < model.latentChannels;
  if (channels !== model.latentChannels && !partial) {
    throw new DcaeError(
      'SHAPE_MISMATCH',
      `${source}: "latent" has shape ${formatShape(latent.shape)}, but ${model.name} expects ${model.latentChannels} latent channels ([N, ${model.latentChannels}, h, w])` +
        (channels < model.latentChannels
          ? '; only DC-AE 1.5 models decode latents with fewer channels.'
          : '.'),
      { source, detail: { shape: latent.shape, channels: model.latentChannels } },
    );
  }
  const space = metadata.space ?? (options.assumeDiffusionSpace ? 'diffusion' : 'autoencoder');
  if (space === 'autoencoder') return { latent, unscaledBy: undefined, metadata };
  const factor = metadata.scalingFactor ?? model.scalingFactor;
  if (factor === undefined) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `${source} is a diffusion-space latent (multiplied by a scaling factor), but neither the file nor ${model.name} records the factor, so it cannot be unscaled.`,
      {
        source,
        hint: {
          library: `Divide it by the factor yourself and set ${LATENT_METADATA_KEYS.space} to "autoencoder".`,
          cli: `write ${LATENT_METADATA_KEYS.scalingFactor} into the file's metadata (docs/latent-format.md)`,
        },
      },
    );
  }
  if (metadata.scalingFactor !== undefined && model.scalingFactor !== undefined) {
    const relative = Math.abs(metadata.scalingFactor - model.scalingFactor) / model.scalingFactor;
    if (relative > 1e-6)
      options.onWarning?.(
        `${source} was scaled by ${metadata.scalingFactor}, ${model.name}'s factor is ${model.scalingFactor}; unscaling by the file's.`,
      );
  }
  const data = new Float32Array(latent.data.length);
  for (let i = 0; i < data.length; i++) data[i] = latent.data[i]! / factor;
  return { latent: { dtype: 'float32', shape: latent.shape, data }, unscaledBy: factor, metadata };
}
