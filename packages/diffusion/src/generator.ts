import type { Autoencoder, AutoencoderPart, LoadAutoencoderOptions } from '@dcae/autoencoder';
import { loadAutoencoder, presetConfig } from '@dcae/autoencoder';
import { DcaeError, openSafetensors, parseJsonConfig } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { COMBINED_AUTOENCODER_PREFIX } from '@dcae/hub';
import type { ModelFiles } from '@dcae/hub';
import type { DiffusionModelConfig } from './config.js';
import { parseDiffusionConfig } from './config.js';
import type { DiffusionModel } from './model.js';
import { CONFIG_FILE, loadDiffusionModel, WEIGHTS_FILE } from './model.js';

/** A diffusion backbone and the autoencoder that decodes its samples. */
export interface Generator {
  readonly config: DiffusionModelConfig;
  readonly model: DiffusionModel;
  /** Undefined when there is none (no `autoencoder.` tensors, no preset, or `autoencoder: 'none'`). */
  readonly autoencoder: Autoencoder | undefined;
  /** Where the autoencoder came from: the combined checkpoint, a separate one, or nowhere. */
  readonly autoencoderSource: 'combined' | 'separate' | undefined;
  /** Releases the backbone's session and the autoencoder. */
  dispose(): Promise<void>;
}

export interface LoadGeneratorOptions {
  readonly runtime: RuntimeV1;
  readonly signal?: AbortSignal;
  /** Use this instead of the checkpoint's config.json. */
  readonly config?: DiffusionModelConfig;
  /**
   * `'auto'` (default): the `autoencoder.` tensors of a combined checkpoint whose config names a
   * released preset (the released diffusion models) or whose architecture `autoencoderConfig`
   * gives, else none; `'none'`: load no autoencoder
   * (latent output); a `ModelFiles` or loaded `Autoencoder`: that one (a pair of checkpoints).
   */
  readonly autoencoder?: 'auto' | 'none' | ModelFiles | Autoencoder;
  /**
   * `'auto'` only: the DC-AE architecture of the `autoencoder.` tensors of a combined checkpoint
   * whose config.json names no released model (an explicit backbone, e.g. one trained here).
   * @defaultValue the release preset's autoencoder; none without a preset
   */
  readonly autoencoderConfig?: LoadAutoencoderOptions['config'];
  /** The autoencoder parts to load. @defaultValue both (generation needs only `['decoder']`) */
  readonly autoencoderParts?: readonly AutoencoderPart[];
  /** Called before each of the two loads. */
  readonly onStage?: (stage: 'autoencoder' | 'backbone') => void;
}

/**
 * Loads a generator: the backbone of a diffusion checkpoint (config.json + model.safetensors) and
 * its autoencoder, from the same combined file (tensors under `autoencoder.`, architecture from the
 * release preset) or from a second checkpoint. The autoencoder's latent channels must match the
 * backbone's (SHAPE_MISMATCH otherwise). On failure nothing stays open.
 */
export async function loadGenerator(files: ModelFiles, options: LoadGeneratorOptions): Promise<Generator> {
  const { runtime, signal } = options;
  const source = `${files.name}/${CONFIG_FILE}`;
  const config =
    options.config ??
    parseDiffusionConfig(parseJsonConfig(await files.readText(CONFIG_FILE), { source }), source);
  const choice = options.autoencoder ?? 'auto';
  let autoencoder: Autoencoder | undefined;
  let autoencoderSource: Generator['autoencoderSource'];
  options.onStage?.('autoencoder');
  if (choice === 'auto') {
    const architecture =
      options.autoencoderConfig ??
      (config.preset === undefined ? undefined : presetConfig(config.preset.autoencoder));
    if (architecture !== undefined && (await hasTensorsUnder(files, COMBINED_AUTOENCODER_PREFIX))) {
      autoencoder = await loadAutoencoder(files, {
        runtime,
        signal,
        keyPrefix: COMBINED_AUTOENCODER_PREFIX,
        config: architecture,
        parts: options.autoencoderParts,
      });
      autoencoderSource = 'combined';
    }
  } else if (choice !== 'none') {
    autoencoder = isAutoencoder(choice)
      ? choice
      : await loadAutoencoder(choice, { runtime, signal, parts: options.autoencoderParts });
    autoencoderSource = 'separate';
  }
  try {
    const backbone = config.backbone;
    if (autoencoder !== undefined && autoencoder.latentChannels !== backbone.inChannels) {
      const preset = config.preset;
      throw new DcaeError(
        'SHAPE_MISMATCH',
        `The autoencoder ${autoencoder.name} has ${autoencoder.latentChannels} latent channels, but ${files.name} samples ` +
          `${backbone.inChannels}-channel latents; use the autoencoder the model was trained with${preset ? ` (${preset.autoencoder})` : ''}.`,
        { detail: { expected: backbone.inChannels, actual: autoencoder.latentChannels } },
      );
    }
    options.onStage?.('backbone');
    const model = await loadDiffusionModel(files, { runtime, signal, config });
    return {
      config,
      model,
      autoencoder,
      autoencoderSource,
      dispose: async () => {
        await model.dispose();
        await autoencoder?.dispose();
      },
    };
  } catch (error) {
    // A caller's own Autoencoder stays the caller's.
    if (autoencoder !== undefined && autoencoder !== choice) await autoencoder.dispose();
    throw error;
  }
}

function isAutoencoder(value: ModelFiles | Autoencoder): value is Autoencoder {
  return typeof (value as Autoencoder).decode === 'function';
}

/** Whether the checkpoint's weights hold tensors under `prefix` (header only). */
export async function hasTensorsUnder(files: ModelFiles, prefix: string): Promise<boolean> {
  const file = await openSafetensors(await files.byteSource(WEIGHTS_FILE));
  try {
    return [...file.header.tensors.keys()].some((name) => name.startsWith(prefix));
  } finally {
    await file.close();
  }
}
