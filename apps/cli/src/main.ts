import { Command, CommanderError, Option } from 'commander';
import { SAMPLER_NAMES } from '@dcae/diffusion';
import { DcaeError } from '@dcae/core';
import { runConvert } from './commands/convert.js';
import { runDecode } from './commands/decode.js';
import { runEncode } from './commands/encode.js';
import { runGenerate } from './commands/generate.js';
import { runInfo } from './commands/info.js';
import {
  runDecodeShards,
  runLatentsEnqueue,
  runLatentsFinalize,
  runLatentsPlan,
  runLatentsRun,
  runLatentsStatus,
  runLatentsVerify,
  runLatentsWorker,
} from './commands/latents.js';
import { runModels } from './commands/models.js';
import { parsePreview } from './commands/preview.js';
import { runQuantize } from './commands/quantize.js';
import { runReconstruct } from './commands/reconstruct.js';
import { parseBetas, runTrain } from './commands/train.js';
import { EXIT_CODES, errorJson, exitCodeFor, formatError } from './errors.js';
import {
  classList,
  latentChannelsOption,
  nonNegativeInteger,
  nonNegativeNumber,
  parseSize,
  positiveInteger,
  withCommonOptions,
  withDeviceOptions,
  withImageInputOptions,
} from './options.js';
import { requirePthModel, withDefaultModel } from './default-model.js';
import type { Io } from './reporter.js';
import packageJson from '../package.json' with { type: 'json' };

export interface MainOptions extends Io {
  /** Aborted on Ctrl-C: every command stops at its next await and writes nothing. */
  readonly signal: AbortSignal;
}

/**
 * Runs `dcae <argv…>` and resolves to the process exit code; never throws and never exits the
 * process. Errors print as `error[CODE]: message` plus a hint on stderr (and as JSON on stdout
 * with --json); see EXIT_CODES for the codes.
 */
export async function main(argv: readonly string[], io: MainOptions): Promise<number> {
  let debug = argv.includes('--debug');
  let json = argv.includes('--json');
  // The command named on the line (for the `dcae <command> --help` hint of usage errors).
  const first = argv.find((arg) => !arg.startsWith('-'));
  const command = first !== undefined && COMMANDS.includes(first) ? first : undefined;
  const program = buildProgram(io, (flags) => {
    debug = flags.debug;
    json = flags.json;
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return EXIT_CODES.ok;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.exitCode === 0) return EXIT_CODES.ok; // --help, --version
      const message =
        error.code === 'commander.help' // no command: the help went to stderr
          ? `No command given; use one of ${COMMANDS.join(', ')}`
          : error.message.replace(/^error:\s*/, '');
      return report(new DcaeError('INVALID_ARGUMENT', capitalise(message)), io, json, debug, command);
    }
    // A command that saved its state on Ctrl-C (train) reports what it saved.
    const saved = DcaeError.is(error) && error.code === 'ABORTED' && error.detail?.saved !== undefined;
    if (io.signal.aborted && !saved) {
      // Whatever failed after Ctrl-C (an aborted run, a killed worker) is reported as the interruption.
      const reason: unknown = io.signal.reason;
      const interrupted = DcaeError.is(reason)
        ? reason
        : new DcaeError('ABORTED', 'Interrupted; nothing was written.');
      return report(interrupted, io, json, debug, command);
    }
    return report(error, io, json, debug, command);
  }
}

/** The commands of `dcae`, in the order the help lists them. */
const COMMANDS = [
  'info',
  'encode',
  'decode',
  'reconstruct',
  'generate',
  'convert',
  'quantize',
  'models',
  'latents',
  'decode-shards',
  'train',
];

function report(error: unknown, io: Io, json: boolean, debug: boolean, command: string | undefined): number {
  // On a terminal, a progress bar may still own the current line: clear it rather than append to it.
  const clearLine = (io.stderr as { isTTY?: boolean }).isTTY === true ? '\r\x1b[K' : '';
  io.stderr.write(`${clearLine}${formatError(error, debug, command)}`);
  if (json) io.stdout.write(`${JSON.stringify(errorJson(error, command), null, 2)}\n`);
  return exitCodeFor(error);
}

function capitalise(text: string): string {
  const sentence = text.charAt(0).toUpperCase() + text.slice(1);
  return /[.!?]$/.test(sentence) ? sentence : `${sentence}.`;
}

function buildProgram(io: MainOptions, onFlags: (flags: { debug: boolean; json: boolean }) => void): Command {
  const program = new Command('dcae')
    .description(
      'Inspect, encode, decode, reconstruct and convert DC-AE (Deep Compression Autoencoder) models; generate images with the DC-AE diffusion models.',
    )
    .version(packageJson.version)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
      outputError: () => undefined, // main() prints errors in its own format
    })
    .showSuggestionAfterError(true)
    .helpCommand(false);

  const context = (opts: { debug?: boolean; json?: boolean }) => {
    onFlags({ debug: opts.debug === true, json: opts.json === true });
    return { io, signal: io.signal };
  };

  withCommonOptions(
    program
      .command('info')
      .description('Print the architecture, parameter counts, latent shape for a size, and the devices.')
      .option(
        '--size <WxH>',
        'image size (width x height, as dcae prints sizes) to compute the latent shape for, e.g. 768x512',
        parseSize,
      ),
    { output: false, defaultModel: true },
  ).action(async (opts: OptionalModel<Parameters<typeof runInfo>[0]>) =>
    runInfo(withDefaultModel(opts, io), context(opts)),
  );

  withImageInputOptions(
    withCommonOptions(
      program
        .command('encode')
        .description(
          'Encode an image (PNG/JPEG/WebP) or a .safetensors "sample" into a .safetensors "latent".',
        )
        .argument(
          '<input>',
          'image file, or .safetensors with tensor "sample" (float32 [N, 3, H, W] in [-1, 1])',
        )
        .requiredOption('-o, --output <file>', 'output .safetensors (tensor "latent", float32, unscaled)')
        .addOption(latentChannelsOption()),
      { output: true, tiling: true, dtype: true, defaultModel: true },
    ),
    'error',
  ).action(async (input: string, opts: OptionalModel<Parameters<typeof runEncode>[1]>) =>
    runEncode(input, withDefaultModel(opts, io), context(opts)),
  );

  withCommonOptions(
    program
      .command('decode')
      .description('Decode a .safetensors "latent" into an image or a .safetensors "sample".')
      .argument('<input>', '.safetensors with tensor "latent" (float32 [N, C, h, w], unscaled)')
      .requiredOption(
        '-o, --output <file>',
        'output .png/.jpg/.webp (batch > 1: name-0.png, name-1.png, …) or .safetensors (tensor "sample")',
      )
      .option(
        '--scaled',
        'the latent is in diffusion space (multiplied by the scaling factor) although its metadata does not say so; divide by the scaling factor first',
      )
      .addOption(latentChannelsOption()),
    {
      output: true,
      tiling: true,
      dtype: true,
      defaultModel: true,
      force: 'overwrite existing output files, and decode a latent whose metadata names another model',
    },
  ).action(async (input: string, opts: OptionalModel<Parameters<typeof runDecode>[1]>) =>
    runDecode(input, withDefaultModel(opts, io), context(opts)),
  );

  withImageInputOptions(
    withCommonOptions(
      program
        .command('reconstruct')
        .description('Encode then decode an image; print PSNR, SSIM and timings.')
        .argument('<input>', 'image file, or .safetensors with tensor "sample"')
        .requiredOption('-o, --output <file>', 'output .png/.jpg/.webp or .safetensors (tensor "sample")')
        .option(
          '--side-by-side <file>',
          'also write original | reconstruction side by side as one .png/.jpg/.webp (batch > 1: name-0.png, …)',
        )
        .addOption(latentChannelsOption()),
      { output: true, tiling: true, dtype: true, defaultModel: true },
    ),
    'pad',
  ).action(async (input: string, opts: OptionalModel<Parameters<typeof runReconstruct>[1]>) =>
    runReconstruct(input, withDefaultModel(opts, io), context(opts)),
  );

  withCommonOptions(
    program
      .command('generate')
      .description(
        'Sample ImageNet classes with a DiT / UViT / USiT diffusion checkpoint; write the images as one grid, or the latent.',
      )
      .option(
        '--class <ids>',
        'ImageNet class 0…999, one image each (repeat, or separate with commas)',
        classList,
      )
      .option(
        '--cfg <scale>',
        "classifier-free guidance scale ≥ 0, 1 = none (default: the release's FID setting, else 1.5)",
        nonNegativeNumber('--cfg'),
      )
      .addOption(
        new Option(
          '--sampler <name>',
          "sampler instead of the model's: ddpm (DiT), dpm-solver (UViT), heun or dopri5 (SiT flow ODE: the network output is read as a velocity, t = 0 noise → t = 1 data)",
        ).choices(SAMPLER_NAMES),
      )
      .option(
        '--steps <n>',
        "upstream's num_inference_steps: ddpm respaced steps (default 250), dpm-solver network evaluations (30), " +
          'heun time grid points (n points = n − 1 Heun steps; 250), dopri5 output grid points (adaptive: does not change the sample)',
        positiveInteger('--steps'),
      )
      .option('--seed <n>', 'seed of the noise (default: random, printed)', nonNegativeInteger('--seed'))
      .option(
        '--noise <file>',
        '.safetensors with "noise_init" [B, C, h, w] (and for ddpm "step_noise" [steps, ≥B, C, h, w]) instead of random draws',
      )
      .option(
        '--preview <taesana[=DIR]>',
        "write each step's x̂₀ decoded by TAESANA (folder DIR, else $DCAE_TAESANA) to <output>.preview/step-NNN.png while sampling",
        parsePreview,
      )
      .option(
        '--autoencoder <dir>',
        'DC-AE folder to decode with (default: the "autoencoder." weights of a released combined checkpoint)',
      )
      .requiredOption(
        '-o, --output <file>',
        '.png/.jpg/.webp (all images in one near-square grid) or .safetensors (tensor "latent" in diffusion space, not decoded)',
      ),
    {
      output: true,
      model:
        'diffusion checkpoint folder: config.json ({"model_name": …} of a release, or an explicit backbone) + model.safetensors',
    },
  ).action(async (opts: Parameters<typeof runGenerate>[0]) => runGenerate(opts, context(opts)));

  withCommonOptions(
    program
      .command('convert')
      .description(
        'Export the model as ONNX: encoder.onnx and decoder.onnx (+ external data when needed); ' +
          'or, with --to safetensors, turn a PyTorch .pth state_dict (-m file.pth) into one .safetensors file.',
      )
      .addOption(
        new Option(
          '--to <format>',
          'onnx: a model folder to ONNX files; safetensors: a .pth file to .safetensors',
        )
          .choices(['onnx', 'safetensors'])
          .default('onnx'),
      )
      .requiredOption(
        '-o, --output <path>',
        'output directory (onnx, created if missing) or .safetensors file',
      ),
    { output: true, dtype: true, defaultModel: true },
  ).action(async (opts: OptionalModel<Parameters<typeof runConvert>[0]>) => {
    const ctx = context(opts);
    if (opts.to === 'safetensors') requirePthModel(opts);
    return runConvert(withDefaultModel(opts, io), ctx);
  });

  withCommonOptions(
    program
      .command('quantize')
      .description(
        'Calibrate int8 on a few photos; write quantization.json, the calibration photos and int8 encoder.onnx/decoder.onnx.',
      )
      .requiredOption(
        '--calibration <images...>',
        'calibration photos (PNG/JPEG/WebP), e.g. 4–32 typical images',
      )
      .option(
        '--calibration-size <px>',
        'each photo is cropped to its centre square and resized to this side (a multiple of the compression; default 256)',
        positiveInteger('--calibration-size'),
      )
      .option('--max-pixels <n>', 'refuse photos with more pixels than this', positiveInteger('--max-pixels'))
      .requiredOption('-o, --output <dir>', 'output directory (created if missing)'),
    { output: true, defaultModel: true },
  ).action(async (opts: OptionalModel<Parameters<typeof runQuantize>[1]> & { calibration: string[] }) =>
    runQuantize(opts.calibration, withDefaultModel(opts, io), context(opts)),
  );

  program
    .command('models')
    .description(
      'List the released DC-AE repos on the Hugging Face Hub (each works as --model <id>[@revision]).',
    )
    .addOption(
      new Option('--kind <kind>', 'only autoencoders or diffusion models').choices([
        'autoencoder',
        'diffusion',
      ]),
    )
    .option('--json', 'print the list as one JSON object on stdout')
    .action(async (opts: Parameters<typeof runModels>[0]) => runModels(opts, context(opts)));

  program
    .command('train')
    .description(
      'Train or fine-tune a DC-AE (the DHRA phases as presets); writes OUT/metrics.jsonl, OUT/checkpoint-<step>/, previews and OUT/final/ (diffusers layout).',
    )
    .requiredOption(
      '-m, --model <model>',
      'model folder (diffusers or original), Hub id, or with --init random a diffusers config.json',
    )
    .requiredOption(
      '--data <path>',
      'image folder (png/jpg/webp, recursive) or .safetensors with "sample" [N, 3, H, W]',
    )
    .requiredOption('--out <dir>', 'output folder')
    .option('--steps <n>', 'total optimizer steps', positiveInteger('--steps'))
    .option('--batch <n>', 'batch size', positiveInteger('--batch'))
    .option(
      '--size <px>',
      'training crop side (a multiple of the compression ratio)',
      positiveInteger('--size'),
    )
    .option('--lr <x>', 'peak learning rate (warm-up, then cosine)', nonNegativeNumber('--lr'))
    .addOption(new Option('--optimizer <kind>', 'optimizer').choices(['adamw', 'sgd']))
    .option('--betas <b1,b2>', 'AdamW betas', parseBetas)
    .option('--weight-decay <x>', 'decoupled weight decay', nonNegativeNumber('--weight-decay'))
    .option('--eps <x>', 'AdamW epsilon', nonNegativeNumber('--eps'))
    .option(
      '--loss <terms>',
      'loss terms joined by +, optionally weighted: l1, mse, l1+ssim, l1:1+ssim:0.2, …',
    )
    .option(
      '--trainable <globs>',
      'comma-separated key globs of the tensors to train (diffusers names; * = all)',
      (v: string) =>
        v
          .split(',')
          .map((g) => g.trim())
          .filter((g) => g !== ''),
    )
    .option(
      '--phase <n>',
      'DHRA phase preset: 1 (full, low res), 2 (latent layers, high res), 3 (decoder head + GAN)',
    )
    .option('--config <file>', 'training config JSON (fields of the presets; see docs/training-loop.md)')
    .option('--seed <n>', 'seed of the data order, crops and --init random', nonNegativeInteger('--seed'))
    .option('--no-augment', 'centre crops without flips (sample files are never augmented)')
    .option(
      '--eval-every <n>',
      'evaluate on the held-out set every N steps (0: only at the end)',
      nonNegativeInteger('--eval-every'),
    )
    .option(
      '--save-every <n>',
      'write OUT/checkpoint-<step>/ every N steps (0: only final)',
      nonNegativeInteger('--save-every'),
    )
    .option('--resume', 'continue from the latest checkpoint in --out')
    .option(
      '--perceptual-weights <file>',
      'VGG16/LPIPS weights (safetensors) for a perceptual loss term; keys in docs/training.md, "Losses"',
    )
    .addOption(new Option('--device <device>', 'where to train').choices(['cpu', 'webgpu']).default('cpu'))
    .addOption(
      new Option('--init <mode>', 'fresh weights for a config.json-only --model').choices(['random']),
    )
    .option('--threads <n>', "CPU threads (default: onnxruntime's choice)", positiveInteger('--threads'))
    .option('--json', 'print the result as one JSON object on stdout')
    .option('-q, --quiet', 'no progress messages on stderr')
    .option('--debug', 'print stack traces and causes on errors')
    .action(async (opts: Parameters<typeof runTrain>[0]) => runTrain(opts, context(opts)));

  addLatentsCommands(program, context);
  return program;
}

/** A command's options as commander hands them over when `--model` may be left out. */
type OptionalModel<T extends { readonly model: string }> = Omit<T, 'model'> & { readonly model?: string };

type Context = (opts: { debug?: boolean; json?: boolean }) => { io: MainOptions; signal: AbortSignal };

const flags = (command: Command): Command =>
  command
    .option('--json', 'print the result as one JSON object on stdout')
    .option('-q, --quiet', 'no progress messages on stderr')
    .option('--debug', 'print stack traces and causes on errors');

/** `dcae latents plan|enqueue|worker|run|status|verify|finalize` and `dcae decode-shards` (docs/latents.md). */
function addLatentsCommands(program: Command, context: Context): void {
  const latents = program
    .command('latents')
    .description(
      'Pre-encode whole datasets into latent shards: plan, then run locally, as static partitions, or on BullMQ/Redis.',
    );

  flags(
    latents
      .command('plan')
      .description(
        'Write DST/plan.json: the deterministic list of shards (image folder, WebDataset tars or img2dataset output).',
      )
      .requiredOption('-m, --model <model>', 'DC-AE model folder, Hub id or URL')
      .requiredOption(
        '--input <src>',
        'image folder (class folders give labels), folder of WebDataset .tar shards, one .tar, or img2dataset parquet output (folder or one .parquet)',
      )
      .requiredOption('--output <dst>', 'output folder or s3://bucket/prefix')
      .option(
        '--size <px>',
        'square side fed to the encoder (center crop + resize)',
        positiveInteger('--size'),
        512,
      )
      .option(
        '--shard-size <n>',
        'samples per shard for image folders (WebDataset keeps its shards)',
        positiveInteger('--shard-size'),
        1000,
      )
      .addOption(
        new Option('--dtype <dtype>', 'stored latent precision').choices(['fp32', 'fp16']).default('fp32'),
      )
      .addOption(
        new Option('--layout <layout>', 'wds: WebDataset tars; npy-tree: one .npy per image in class folders')
          .choices(['wds', 'npy-tree'])
          .default('wds'),
      )
      .option('--no-scale', 'store latents unscaled (default: multiplied by the model scaling factor)')
      .option('--batch <n>', 'images per encoder run', positiveInteger('--batch'), 8)
      .option('--plan-out <file>', 'where to write the plan (default DST/plan.json; required for s3://)'),
  ).action(async (opts: Parameters<typeof runLatentsPlan>[0]) => {
    await runLatentsPlan(opts, context(opts));
  });

  flags(
    latents
      .command('enqueue')
      .description('Add one BullMQ job per shard (idempotent: job ids come from the plan).')
      .requiredOption('--plan <file>', 'plan.json')
      .requiredOption('--redis <url>', 'redis://host:port')
      .option('--attempts <n>', 'attempts per shard (exponential backoff)', positiveInteger('--attempts')),
  ).action(async (opts: Parameters<typeof runLatentsEnqueue>[0]) => runLatentsEnqueue(opts, context(opts)));

  flags(
    withDeviceOptions(
      latents
        .command('worker')
        .description(
          'Process queued shards; each runs in a sandboxed child process (one per concurrency slot).',
        )
        .requiredOption('--plan <file>', 'plan.json')
        .requiredOption('--redis <url>', 'redis://host:port')
        .option(
          '--concurrency <n>',
          'shards at once (child processes); 1 per GPU',
          positiveInteger('--concurrency'),
          1,
        )
        .option(
          '--lock-duration <s>',
          'job lock in seconds (renewed while a shard runs)',
          positiveInteger('--lock-duration'),
          60,
        )
        .option('--exit-when-done', 'exit when every shard is committed (or the queue is drained)'),
    ),
  ).action(async (opts: Parameters<typeof runLatentsWorker>[0]) => runLatentsWorker(opts, context(opts)));

  flags(
    withDeviceOptions(
      latents
        .command('run')
        .description(
          'Run shards in this process: all of them, --index I (or $JOB_COMPLETION_INDEX, $SLURM_ARRAY_TASK_ID), or --rank R --world W (or $RANK/$WORLD_SIZE).',
        )
        .requiredOption('--plan <file>', 'plan.json')
        .option('--index <i>', 'one shard (with --world: i, i+W, …)', nonNegativeInteger('--index'))
        .option('--rank <r>', 'this rank (shards r, r+W, …)', nonNegativeInteger('--rank'))
        .option('--world <w>', 'number of ranks / indexes', positiveInteger('--world')),
    ),
  ).action(async (opts: Parameters<typeof runLatentsRun>[0]) => runLatentsRun(opts, context(opts)));

  flags(
    latents
      .command('status')
      .description(
        'Progress from the commit records (and the queue with --redis): shards done, throughput, ETA.',
      )
      .requiredOption('--plan <file>', 'plan.json')
      .option('--redis <url>', 'also show queue counts'),
  ).action(async (opts: Parameters<typeof runLatentsStatus>[0]) => runLatentsStatus(opts, context(opts)));

  flags(
    latents
      .command('verify')
      .description(
        'Re-hash every shard, open every sample, count every key; exit ≠ 0 on anything missing, duplicate, corrupt or left over.',
      )
      .requiredOption('--plan <file>', 'plan.json'),
  ).action(async (opts: Parameters<typeof runLatentsVerify>[0]) => runLatentsVerify(opts, context(opts)));

  flags(
    latents
      .command('finalize')
      .description(
        'Write manifest.jsonl and wids-meta.json from the commit records (run and worker do it when the last shard commits).',
      )
      .requiredOption('--plan <file>', 'plan.json'),
  ).action(async (opts: Parameters<typeof runLatentsFinalize>[0]) => runLatentsFinalize(opts, context(opts)));

  flags(
    withDeviceOptions(
      program
        .command('decode-shards')
        .description(
          'Decode latent shards (dcae latents output) into PNG image shards, shard i → shard i (e.g. samples for FID).',
        )
        .requiredOption('-m, --model <model>', 'DC-AE model folder, Hub id or URL')
        .requiredOption('--input <src>', 'folder of latent .tar shards')
        .requiredOption('--output <dst>', 'output folder or s3://bucket/prefix')
        .option('--batch <n>', 'latents per decoder run', positiveInteger('--batch'), 8)
        .option('--plan-out <file>', 'where to write the plan (default DST/plan.json)')
        .option(
          '--plan-only',
          'only write the plan (then use dcae latents run|enqueue|worker|verify --plan)',
        ),
    ),
  ).action(async (opts: Parameters<typeof runDecodeShards>[0]) => runDecodeShards(opts, context(opts)));
}
