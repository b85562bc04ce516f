// The review run of issue #12 (docs/hub.md): our Hub fault-injection tests against `hubDownload`
// built on `@huggingface/hub` (test/review/hf-hub-download.ts), served by the same local stand-in.
// Not part of `test`: it records which tests the library fails (`pnpm test:review-hf`).
import { fileURLToPath } from 'node:url';
import { defineProject } from 'vitest/config';
import { vitestProject } from '../../tooling/vitest.preset.js';

const base = vitestProject('hub-review-hf', {
  include: ['test/hub-download.test.ts', 'test/hub-cache.test.ts', 'test/hub-processes.test.ts'],
  env: { DCAE_HUB_REVIEW: 'hf' },
});

export default defineProject({
  ...base,
  resolve: {
    ...base.resolve,
    alias: [
      {
        find: /^\.\.\/src\/node\/index\.js$/,
        replacement: fileURLToPath(new URL('./test/review/hf-hub-node.ts', import.meta.url)),
      },
    ],
  },
});
