import { Writable } from 'node:stream';
import { main } from '../src/main.js';
import type { CliResult } from './helpers.js';

/**
 * Runs `dcae <args>` in this process (what bin.js does, without a node start per call, so that
 * tests that run many commands stay fast), collecting stdout and stderr.
 */
export async function runCliInProcess(args: readonly string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const sink = (append: (s: string) => void) =>
    new Writable({
      write(chunk: Buffer | string, _encoding, done) {
        append(chunk.toString());
        done();
      },
    });
  const code = await main(args, {
    stdout: sink((s) => (stdout += s)),
    stderr: sink((s) => (stderr += s)),
    signal: new AbortController().signal,
  });
  return { code, signal: null, stdout, stderr };
}
