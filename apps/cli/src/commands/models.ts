import { MODEL_CATALOG } from '@dcae/diffusion';
import type { KnownModelKind } from '@dcae/hub';
import { Reporter } from '../reporter.js';
import type { CommandContext } from './shared.js';

export interface ModelsOptions {
  readonly kind?: KnownModelKind;
  readonly json?: boolean;
}

/** `dcae models`: the released DC-AE repos dcae knows (any of them works as `--model <id>`). */
export async function runModels(options: ModelsOptions, { io }: CommandContext): Promise<void> {
  const models = MODEL_CATALOG.list(options.kind ? { kind: options.kind } : undefined);
  const width = Math.max(...models.map((m) => m.id.length));
  const lines = models.map(
    (m) =>
      `${m.id.padEnd(width)}  ${m.kind.padEnd(11)} ${m.layout.padEnd(9)} ` +
      `f${m.spatialCompressionRatio}c${m.latentChannels}  ${m.description}`,
  );
  new Reporter(io, { json: options.json === true, quiet: true }).result(
    [
      ...lines,
      '',
      'Use an id with --model (optionally @revision); files are cached like huggingface_hub does.',
    ].join('\n'),
    { models },
  );
}
