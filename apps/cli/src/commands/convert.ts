import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DcaeError, openPth } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { fileSource, writeSafetensorsFile } from '@dcae/core/node';
import { exportOnnx } from '@dcae/autoencoder/node';
import { openModel } from '../model.js';
import type { CommonOptions } from '../options.js';
import { formatMs } from '../reporter.js';
import { reporterFor, withOutputs } from './shared.js';
import type { CommandContext } from './shared.js';

export interface ConvertOptions extends CommonOptions {
  readonly output: string;
  /** `onnx` (default): encoder.onnx + decoder.onnx; `safetensors`: a PyTorch .pth state_dict → one .safetensors file. */
  readonly to?: 'onnx' | 'safetensors';
}

/** The files every export has; external-data files come on top when the model needs them. */
const MODEL_FILES = ['encoder.onnx', 'decoder.onnx'];

/**
 * `dcae convert`: writes `encoder.onnx` and `decoder.onnx` (+ external data when needed) into the
 * output directory. The model exports into a hidden temporary folder inside it; the files are
 * renamed into place only when the whole export succeeded.
 */
export async function runConvert(options: ConvertOptions, { io, signal }: CommandContext): Promise<void> {
  if (options.to === 'safetensors') return convertPth(options, { io, signal });
  const reporter = reporterFor(options, { io, signal });
  const result = await withOutputs(options, [], signal, async (outputs) => {
    const dir = await outputs.claimDirectory(options.output, MODEL_FILES);
    const model = await openModel(options, reporter, signal, 'convert');
    try {
      const temp = join(await outputs.makeTempDir(dir), 'export');
      await reporter.step('export', `exporting ONNX graphs to ${options.output}`, () =>
        exportOnnx(model.autoencoder, temp),
      );
      signal.throwIfAborted();
      const files: { name: string; bytes: number }[] = [];
      for (const name of (await readdir(temp)).sort()) {
        if (!MODEL_FILES.includes(name)) await outputs.claim(join(dir, name));
        outputs.adopt(join(temp, name), join(dir, name));
        files.push({ name, bytes: (await stat(join(temp, name))).size });
      }
      return {
        text: [
          `wrote ${options.output}:`,
          ...files.map((f) => `  ${f.name}  ${(f.bytes / 1e6).toFixed(2)} MB`),
          `timings: load ${formatMs(reporter.timings.load)}, export ${formatMs(reporter.timings.export)}`,
        ].join('\n'),
        json: { command: 'convert', output: options.output, files, timingsMs: reporter.timings },
      };
    } finally {
      await model.close();
    }
  });
  reporter.result(result.text, result.json);
}

/**
 * `dcae convert --to safetensors -m weights.pth -o weights.safetensors`: reads the .pth through
 * the safe reader (no pickle code runs; docs/pth-reader.md) and writes every tensor of its
 * state_dict, same names and dtypes, strided views made contiguous, atomically.
 */
async function convertPth(options: ConvertOptions, { io, signal }: CommandContext): Promise<void> {
  const reporter = reporterFor(options, { io, signal });
  if (!options.output.endsWith('.safetensors')) {
    throw new DcaeError(
      'INVALID_ARGUMENT',
      `--to safetensors writes one .safetensors file; -o ${options.output} does not end in .safetensors.`,
    );
  }
  const info = await stat(options.model).catch(() => undefined);
  if (info === undefined || !info.isFile()) {
    throw new DcaeError(
      info === undefined ? 'FILE_NOT_FOUND' : 'INVALID_ARGUMENT',
      `--to safetensors reads one PyTorch .pth file; ${options.model} ${info === undefined ? 'does not exist' : 'is not a file'}.`,
      { source: options.model },
    );
  }
  const result = await withOutputs(options, [options.model], signal, async (outputs) => {
    const final = await outputs.claim(options.output);
    const file = await reporter.step('load', `reading ${options.model}`, async () =>
      openPth(await fileSource(options.model)),
    );
    try {
      const tensors = new Map<string, HostTensor>();
      for (const [name, tensor] of file.tensors) {
        signal.throwIfAborted();
        if (tensor.dtype === 'F64' || tensor.dtype === 'I16' || tensor.dtype === 'I8') {
          throw new DcaeError(
            'DTYPE_UNSUPPORTED',
            `${options.model}: tensor ${JSON.stringify(name)} is ${tensor.dtype}; --to safetensors writes F32, F16, BF16, I64, I32, U8 and BOOL tensors unchanged, and would have to change this one.`,
            { source: options.model },
          );
        }
        tensors.set(name, await file.readTensor(name));
      }
      const temp = outputs.tempPathFor(final);
      outputs.adopt(temp, final);
      await reporter.step('export', `writing ${options.output}`, () =>
        writeSafetensorsFile(temp, tensors, { metadata: { format: 'pt' } }),
      );
      const bytes = (await stat(temp)).size;
      const skipped = [...file.skipped.keys()];
      return {
        text: [
          `wrote ${options.output}: ${tensors.size} tensors, ${(bytes / 1e6).toFixed(2)} MB`,
          ...(skipped.length > 0 ? [`skipped non-tensor entries: ${skipped.join(', ')}`] : []),
        ].join('\n'),
        json: {
          command: 'convert',
          to: 'safetensors',
          output: options.output,
          tensors: tensors.size,
          bytes,
          skipped,
        },
      };
    } finally {
      await file.close();
    }
  });
  reporter.result(result.text, result.json);
}
