import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { exportOnnx } from '@dcae/autoencoder/node';
import { openModel } from '../model.js';
import type { CommonOptions } from '../options.js';
import { formatMs } from '../reporter.js';
import { reporterFor, withOutputs } from './shared.js';
import type { CommandContext } from './shared.js';

export interface ConvertOptions extends CommonOptions {
  readonly output: string;
}

/** The files every export has; external-data files come on top when the model needs them. */
const MODEL_FILES = ['encoder.onnx', 'decoder.onnx'];

/**
 * `dcae convert`: writes `encoder.onnx` and `decoder.onnx` (+ external data when needed) into the
 * output directory. The model exports into a hidden temporary folder inside it; the files are
 * renamed into place only when the whole export succeeded.
 */
export async function runConvert(options: ConvertOptions, { io, signal }: CommandContext): Promise<void> {
  const reporter = reporterFor(options, { io, signal });
  const result = await withOutputs(options, [], signal, async (outputs) => {
    const dir = await outputs.claimDirectory(options.output, MODEL_FILES);
    const model = await openModel(options, reporter, signal);
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
