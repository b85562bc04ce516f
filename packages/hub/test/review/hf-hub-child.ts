// The second process of hub-processes.test.ts for the review run (docs/hub.md): as
// ../helpers/hub-child.ts, with the adapter on `@huggingface/hub` downloading.
import { DcaeError } from '@dcae/core';
import type { HubDownloadOptions } from '../../src/node/hub-download.js';
import { hubDownload } from './hf-hub-download.js';

// The library logs "Downloading <file> to <temp>" with console.debug, on stdout, where this child
// prints its one JSON line; silenced so that the test reads the result (docs/hub.md).
console.debug = () => undefined;

const { repo, file, options } = JSON.parse(process.argv[2]!) as {
  repo: string;
  file: string;
  options: HubDownloadOptions;
};
try {
  const result = await hubDownload(repo, file, { ...options, env: {} });
  process.stdout.write(`${JSON.stringify({ ok: true, result, warnings: [] })}\n`);
} catch (error) {
  const code = DcaeError.is(error) ? error.code : 'INTERNAL';
  process.stdout.write(`${JSON.stringify({ ok: false, code, message: String(error), warnings: [] })}\n`);
  process.exitCode = 1;
}
