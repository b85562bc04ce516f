import { ConfigReader, DcaeError, parseJsonConfig } from '@dcae/core';
import type { JsonValue } from '@dcae/core';
import type { ModelFiles } from '@dcae/hub';
import { CONFIG_FILE, WEIGHTS_FILE } from '../base/checkpoint.js';
import type { CheckpointFormat } from '../base/weights.js';
import type { DcAeConfig } from './config.js';
import { parseDcAeConfig, validateDcAeConfig } from './config.js';
import { presetConfig } from './presets.js';

/** What a model folder holds, once its config is read. */
export interface DetectedModel {
  readonly format: CheckpointFormat;
  readonly weightsFile: string;
  readonly config: DcAeConfig;
  /** The original `model_name`, else the folder name. */
  readonly name: string;
}

/**
 * Reads a model folder's config and decides its format: diffusers (`config.json` of an
 * `AutoencoderDC` + `diffusion_pytorch_model.safetensors`) or original efficientvit
 * (`{"model_name": …}` + `model.safetensors`, architecture from the preset table). A `config`
 * given by the caller replaces the file's; config.json is then optional and the weights file name
 * alone decides the key format.
 */
export async function detectModel(files: ModelFiles, override?: DcAeConfig): Promise<DetectedModel> {
  const names = new Set(await files.list());
  const has = (format: CheckpointFormat): boolean => names.has(WEIGHTS_FILE[format]);
  const source = `${files.name}/${CONFIG_FILE}`;
  const json = names.has(CONFIG_FILE)
    ? parseJsonConfig(await files.readText(CONFIG_FILE), { source })
    : undefined;
  const modelName =
    json !== undefined &&
    typeof json === 'object' &&
    json !== null &&
    !Array.isArray(json) &&
    'model_name' in json
      ? originalModelName(json, source)
      : undefined;

  let format: CheckpointFormat;
  if (modelName !== undefined) format = 'original';
  // With the caller's config, the weights file alone decides (config.json may be another model's,
  // e.g. the backbone config of a combined diffusion checkpoint holding this DC-AE under a prefix).
  else if (override !== undefined && has('original') !== has('diffusers'))
    format = has('original') ? 'original' : 'diffusers';
  else if (json !== undefined || (has('diffusers') && !has('original'))) format = 'diffusers';
  else if (has('original') && !has('diffusers')) format = 'original';
  else if (has('original')) {
    throw new DcaeError(
      'MODEL_NOT_FOUND',
      `${files.name} holds both ${WEIGHTS_FILE.diffusers} and ${WEIGHTS_FILE.original} and no ${CONFIG_FILE} to choose; keep one.`,
      { source: files.name },
    );
  } else throw missingWeights(files.name, names, 'diffusers or original');
  if (!has(format)) throw missingWeights(files.name, names, format);

  let config: DcAeConfig;
  if (override !== undefined) {
    validateDcAeConfig(override, { source: 'options.config' });
    config = override;
  } else if (modelName !== undefined) config = presetConfig(modelName, { source });
  else if (json !== undefined) config = parseDcAeConfig(json, { source });
  else {
    throw new DcaeError('MODEL_NOT_FOUND', `${files.name} has no ${CONFIG_FILE}.`, {
      source: files.name,
      hint: {
        library: "Add the model's config.json or pass { config } to loadAutoencoder.",
        cli: "--model must be a folder with the model's config.json next to its .safetensors weights",
      },
    });
  }
  return { format, weightsFile: WEIGHTS_FILE[format], config, name: modelName ?? files.name };
}

/** The `model_name` of an original-format config.json (`_`-prefixed fields are allowed). */
function originalModelName(json: JsonValue, source: string): string {
  const r = new ConfigReader(json, source);
  const name = r.string('model_name');
  r.finish({ ignorePrefix: '_' });
  return name;
}

function missingWeights(name: string, present: ReadonlySet<string>, format: string): DcaeError {
  const sharded = [...present].some((f) => f.endsWith('.safetensors.index.json'));
  const wanted =
    format === 'diffusers or original'
      ? `${WEIGHTS_FILE.diffusers} or ${WEIGHTS_FILE.original}`
      : WEIGHTS_FILE[format as CheckpointFormat];
  return new DcaeError(
    'MODEL_NOT_FOUND',
    `${name} has no ${wanted} (${format} format); found: ${[...present].sort().join(', ') || 'nothing'}.` +
      (sharded ? ' Sharded checkpoints are not supported; merge the shards into one file.' : ''),
    { source: name },
  );
}
