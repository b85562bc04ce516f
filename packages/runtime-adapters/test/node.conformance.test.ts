import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createNodeRuntime } from '../src/node/index.js';
import type { ConformanceFiles } from './conformance/suite.js';
import { describeRuntimeConformance } from './conformance/suite.js';

const folder = await mkdtemp(join(tmpdir(), 'dcae-conformance-'));
afterAll(() => rm(folder, { recursive: true, force: true }));

const files: ConformanceFiles = {
  async writeFile(name, bytes) {
    const path = join(folder, name);
    await writeFile(path, bytes);
    return path;
  },
};

describeRuntimeConformance(
  'onnxruntime-node cpu, in-process',
  () => createNodeRuntime({ threads: 1 }),
  files,
);
describeRuntimeConformance(
  'onnxruntime-node cpu, worker thread',
  () => createNodeRuntime({ threads: 1, worker: true }),
  files,
);
describeRuntimeConformance(
  'onnxruntime-node cpu, worker process',
  () => createNodeRuntime({ threads: 1, worker: 'process' }),
  files,
);
