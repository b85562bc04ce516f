import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { createWebRuntime } from '../src/web/index.js';
import type { ConformanceFiles } from './conformance/suite.js';
import { describeRuntimeConformance } from './conformance/suite.js';

// onnxruntime-web in Node: the package root resolves to its Node build, which needs no wasmPaths,
// runs wasm threads on worker_threads and reads external data given as file paths.
const folder = await mkdtemp(join(tmpdir(), 'dcae-web-conformance-'));
afterAll(() => rm(folder, { recursive: true, force: true }));

const files: ConformanceFiles = {
  async writeFile(name, bytes) {
    const path = join(folder, name);
    await writeFile(path, bytes);
    return path;
  },
};

describeRuntimeConformance(
  'onnxruntime-web wasm in Node, 2 threads',
  () => createWebRuntime({ devices: ['wasm'], threads: 2 }),
  files,
);
