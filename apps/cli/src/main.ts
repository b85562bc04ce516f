import { Command, CommanderError, Option } from 'commander';
import { SAMPLER_NAMES } from '@dcae/diffusion';
import { DcaeError } from '@dcae/core';
import { runConvert } from './commands/convert.js';
import { runDecode } from './commands/decode.js';
import { runEncode } from './commands/encode.js';
import { runGenerate } from './commands/generate.js';
import { runInfo } from './commands/info.js';
import { runModels } from './commands/models.js';
import { runQuantize } from './commands/quantize.js';
import { runReconstruct } from './commands/reconstruct.js';
import { EXIT_CODES, errorJson, exitCodeFor, formatError } from './errors.js';
import {
  classList,
  nonNegativeInteger,
  nonNegativeNumber,
  parseSize,
  positiveInteger,
  withCommonOptions,
  withImageInputOptions,
} from './options.js';
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
          ? 'No command given; use one of info, encode, decode, reconstruct, generate, convert, quantize, models'
          : error.message.replace(/^error:\s*/, '');
      return report(new DcaeError('INVALID_ARGUMENT', capitalise(message)), io, json, debug);
    }
    if (io.signal.aborted) {
      // Whatever failed after Ctrl-C (an aborted run, a killed worker) is reported as the interruption.
      const reason: unknown = io.signal.reason;
      const interrupted = DcaeError.is(reason)
        ? reason
        : new DcaeError('ABORTED', 'Interrupted; nothing was written.');
      return report(interrupted, io, json, debug);
    }
    return report(error, io, json, debug);
  }
}

function report(error: unknown, io: Io, json: boolean, debug: boolean): number {
  // On a terminal, a progress bar may still own the current line: clear it rather than append to it.
  const clearLine = (io.stderr as { isTTY?: boolean }).isTTY === true ? '\r\x1b[K' : '';
  io.stderr.write(`${clearLine}${formatError(error, debug)}`);
  if (json) io.stdout.write(`${JSON.stringify(errorJson(error), null, 2)}\n`);
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
      .option('--size <HxW>', 'image size to compute the latent shape for, e.g. 512x512', parseSize),
    { output: false },
  ).action(async (opts: Parameters<typeof runInfo>[0]) => runInfo(opts, context(opts)));

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
        .requiredOption('-o, --output <file>', 'output .safetensors (tensor "latent", float32, unscaled)'),
      { output: true },
    ),
    'error',
  ).action(async (input: string, opts: Parameters<typeof runEncode>[1]) =>
    runEncode(input, opts, context(opts)),
  );

  withCommonOptions(
    program
      .command('decode')
      .description('Decode a .safetensors "latent" into an image or a .safetensors "sample".')
      .argument('<input>', '.safetensors with tensor "latent" (float32 [N, C, h, w], unscaled)')
      .requiredOption(
        '-o, --output <file>',
        'output .png/.jpg/.webp (batch > 1: name-0.png, name-1.png, …) or .safetensors (tensor "sample")',
      ),
    { output: true },
  ).action(async (input: string, opts: Parameters<typeof runDecode>[1]) =>
    runDecode(input, opts, context(opts)),
  );

  withImageInputOptions(
    withCommonOptions(
      program
        .command('reconstruct')
        .description('Encode then decode an image; print PSNR, SSIM and timings.')
        .argument('<input>', 'image file, or .safetensors with tensor "sample"')
        .requiredOption('-o, --output <file>', 'output .png/.jpg/.webp or .safetensors (tensor "sample")'),
      { output: true },
    ),
    'pad',
  ).action(async (input: string, opts: Parameters<typeof runReconstruct>[1]) =>
    runReconstruct(input, opts, context(opts)),
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
      .description('Export the model as ONNX: encoder.onnx and decoder.onnx (+ external data when needed).')
      .requiredOption('-o, --output <dir>', 'output directory (created if missing)'),
    { output: true },
  ).action(async (opts: Parameters<typeof runConvert>[0]) => runConvert(opts, context(opts)));

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
    { output: true },
  ).action(async (opts: Parameters<typeof runQuantize>[1] & { calibration: string[] }) =>
    runQuantize(opts.calibration, opts, context(opts)),
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

  return program;
}
