import { MODEL_CATALOG } from '@dcae/diffusion';
import { TAESANA_RELEASE } from '@dcae/hub';
import type { KnownModelKind } from '@dcae/hub';
import { DEFAULT_MODEL_NAME, defaultModelCard, defaultModelPath } from '../default-model.js';
import { Reporter } from '../reporter.js';
import type { CommandContext } from './shared.js';

export interface ModelsOptions {
  readonly kind?: KnownModelKind;
  readonly json?: boolean;
}

/** The random-weight folders in the repository's fixtures/: test inputs, never models to use. */
export const TEST_FIXTURES = [
  { path: 'fixtures/dcae/tiny-sana-f32', kind: 'autoencoder' },
  { path: 'fixtures/dcae/tiny-in-f32', kind: 'autoencoder' },
  { path: 'fixtures/diffusion/tiny-dit', kind: 'diffusion' },
  { path: 'fixtures/diffusion/tiny-uvit', kind: 'diffusion' },
] as const;

/**
 * `dcae models`: the bundled default model (used when `--model` is left out), the released DC-AE
 * repos dcae knows (any of them works as `--model <id>`), TAESANA (released on GitHub, usable by URL),
 * and, labelled as such, the random-weight
 * test fixtures of the repository.
 */
export async function runModels(options: ModelsOptions, { io }: CommandContext): Promise<void> {
  const models = MODEL_CATALOG.list(options.kind ? { kind: options.kind } : undefined);
  const width = Math.max(...models.map((m) => m.id.length));
  const lines = models.map(
    (m) =>
      `  ${m.id.padEnd(width)}  ${m.kind.padEnd(11)} ${m.layout.padEnd(9)} ` +
      `f${m.spatialCompressionRatio}c${m.latentChannels}  ${m.description}`,
  );
  const withAutoencoders = options.kind !== 'diffusion';
  const fixtures = TEST_FIXTURES.filter((f) => options.kind === undefined || f.kind === options.kind);
  const bundled = withAutoencoders
    ? [
        {
          id: DEFAULT_MODEL_NAME,
          kind: 'autoencoder',
          default: true,
          path: defaultModelPath(),
          card: defaultModelCard(),
          description:
            'small f32c32 DC-AE trained by dcae on openly licensed photos; offline; blurry, far below the released models',
        },
      ]
    : [];
  new Reporter(io, { json: options.json === true, quiet: true }).result(
    [
      ...(withAutoencoders
        ? [
            'Bundled (offline; the default when --model is left out):',
            `  ${DEFAULT_MODEL_NAME}  autoencoder f32c32  ${bundled[0]!.description}`,
            `  model card: ${defaultModelCard()}`,
            '',
          ]
        : []),
      'Released on the Hugging Face Hub:',
      ...lines,
      '',
      'Use an id with --model (optionally @revision); files are cached like huggingface_hub does.',
      '',
      ...(withAutoencoders
        ? [
            'Released elsewhere (use the URL with --model, or --preview taesana=URL with generate):',
            `  TAESANA  autoencoder f32c32  ${TAESANA_RELEASE.description}`,
            `  ${TAESANA_RELEASE.url}  (${TAESANA_RELEASE.files.join(', ')})`,
            '',
          ]
        : []),
      'Test fixtures of the dcae repository (random weights, for tests only: their pictures are noise):',
      ...fixtures.map((f) => `  ${f.path.padEnd(28)}  ${f.kind}`),
    ].join('\n'),
    {
      models,
      bundled,
      elsewhere: withAutoencoders ? [{ id: 'TAESANA', kind: 'autoencoder', ...TAESANA_RELEASE }] : [],
      testFixtures: fixtures.map((f) => ({ ...f, randomWeights: true, testOnly: true })),
    },
  );
}
