import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { isDcAePresetName, isSdVaeConfigJson } from '@dcae/autoencoder';
import { isDiffusionPresetName, MODEL_CATALOG } from '@dcae/diffusion';
import { DcaeError } from '@dcae/core';

/**
 * What a checkpoint folder holds, judged from its config.json alone (before any loading, so that
 * a model given to the wrong command gets one clear sentence instead of a list of invalid fields):
 * - `autoencoder`: a diffusers `AutoencoderDC` / `AutoencoderKL` config, or a DC-AE `model_name`;
 * - `diffusion`: an explicit DiT/UViT backbone (`family`), holding no autoencoder;
 * - `combined`: a released diffusion checkpoint (`model_name`), whose weights also hold its autoencoder;
 * - `unknown`: anything else, left to the loader to explain.
 */
export type CheckpointKind = 'autoencoder' | 'diffusion' | 'combined' | 'unknown';

export function checkpointKindOfConfig(json: unknown): CheckpointKind {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) return 'unknown';
  const config = json as Record<string, unknown>;
  if (config._class_name === 'AutoencoderDC' || isSdVaeConfigJson(config as never)) return 'autoencoder';
  const name = config.model_name;
  if (typeof name === 'string') {
    if (isDcAePresetName(name)) return 'autoencoder';
    if (isDiffusionPresetName(name)) return 'combined';
    const known = MODEL_CATALOG.find(name);
    if (known !== undefined) return known.kind === 'autoencoder' ? 'autoencoder' : 'combined';
    return 'unknown';
  }
  if (config.family === 'dit' || config.family === 'uvit') return 'diffusion';
  return 'unknown';
}

/** The kind of a local folder's checkpoint; undefined when `model` is no local folder with a readable config.json. */
export async function localCheckpointKind(model: string): Promise<CheckpointKind | undefined> {
  const isFolder = await stat(model).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (!isFolder) return undefined;
  const text = await readFile(join(model, 'config.json'), 'utf8').catch(() => undefined);
  if (text === undefined || text.length > 1_000_000) return undefined;
  try {
    return checkpointKindOfConfig(JSON.parse(text));
  } catch {
    return undefined; // a broken config.json is the loader's to report
  }
}

/** Refuses a diffusion backbone given to a command that runs the autoencoder. */
export async function requireAutoencoder(model: string, command: string): Promise<void> {
  if ((await localCheckpointKind(model)) !== 'diffusion') return;
  throw new DcaeError(
    'INVALID_ARGUMENT',
    `${model} is a diffusion model (a DiT/UViT backbone without an autoencoder), not an autoencoder; ` +
      `\`dcae ${command}\` runs autoencoders. Use \`dcae generate --model ${model}\` to sample images with it.`,
    {
      source: model,
      hint: {
        cli: `pass a DC-AE folder or Hub id as --model (\`dcae models --kind autoencoder\` lists them)`,
      },
    },
  );
}

/** Refuses an autoencoder given to `generate` as its diffusion model. */
export async function requireDiffusionModel(model: string): Promise<void> {
  if ((await localCheckpointKind(model)) !== 'autoencoder') return;
  throw new DcaeError(
    'INVALID_ARGUMENT',
    `${model} is an autoencoder, not a diffusion model; pass it as --autoencoder ${model}, ` +
      'and a diffusion checkpoint (DiT, UViT or USiT) as --model.',
    {
      source: model,
      hint: { cli: '`dcae models --kind diffusion` lists the released diffusion checkpoints' },
    },
  );
}
