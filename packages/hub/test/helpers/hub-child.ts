// A second process for the concurrency and crash tests: downloads one Hub file and prints the
// result (or the error's code and message) as one JSON line. Bundled by esbuild at test time.
import { DcaeError } from '@dcae/core';
import { hubDownload } from '../../src/node/hub-download.js';
import type { HubDownloadOptions } from '../../src/node/hub-download.js';

const { repo, file, options } = JSON.parse(process.argv[2]!) as {
  repo: string;
  file: string;
  options: HubDownloadOptions;
};
const warnings: string[] = [];
try {
  const result = await hubDownload(repo, file, { ...options, env: {}, onWarning: (m) => warnings.push(m) });
  process.stdout.write(`${JSON.stringify({ ok: true, result, warnings })}\n`);
} catch (error) {
  const code = DcaeError.is(error) ? error.code : 'INTERNAL';
  process.stdout.write(`${JSON.stringify({ ok: false, code, message: String(error), warnings })}\n`);
  process.exitCode = 1;
}
