// `@dcae/hub/node` for the review run (vitest.review-hf.config.ts): everything ours, except
// `hubDownload`, which is the adapter on `@huggingface/hub` (docs/hub.md).
export * from '../../src/node/index.js';
export { hubDownload } from './hf-hub-download.js';
