#!/usr/bin/env node
import { DcaeError } from '@dcae/core';
import { main } from './main.js';

/**
 * The `dcae` executable. Ctrl-C (SIGINT) aborts the running command: it stops at its next await,
 * removes its temporary files and exits with 130 (SIGTERM: 143). A second Ctrl-C exits at once.
 */
const controller = new AbortController();
let exitCodeOnSignal = 130;

function onSignal(signal: 'SIGINT' | 'SIGTERM'): void {
  const code = signal === 'SIGINT' ? 130 : 143;
  if (controller.signal.aborted) process.exit(code);
  exitCodeOnSignal = code;
  process.stderr.write(
    `\n${signal === 'SIGINT' ? 'interrupted' : 'terminated'}: stopping and removing partial outputs…\n`,
  );
  controller.abort(new DcaeError('ABORTED', `Interrupted by ${signal}; nothing was written.`));
}
process.on('SIGINT', () => onSignal('SIGINT'));
process.on('SIGTERM', () => onSignal('SIGTERM'));

const code = await main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  signal: controller.signal,
});
process.exitCode = code === 130 ? exitCodeOnSignal : code;
// Worker threads or native handles must not keep a finished command alive.
setTimeout(() => process.exit(process.exitCode), 1000).unref();
