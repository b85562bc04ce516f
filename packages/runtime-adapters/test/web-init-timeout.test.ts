/**
 * A wasm backend that does not start in time becomes SESSION_INIT_TIMEOUT, not a silent hang.
 * onnxruntime-web never retries in the same realm, so this file has its own (vitest runs each
 * test file in its own process).
 */
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import { expect, it } from 'vitest';
import { createWebRuntime } from '../src/web/index.js';

it('turns a wasm backend that does not start within initTimeoutMs into SESSION_INIT_TIMEOUT, every time', async () => {
  // Compiling onnxruntime-web's wasm takes ~250 ms here, far beyond 1 ms.
  const runtime = await createWebRuntime({ devices: ['wasm'], initTimeoutMs: 1 });
  const g = new GraphBuilder({ name: 'init-timeout' });
  g.output(g.root.neg(g.input('x', 'float32', [1])), 'y', [1]);
  const model = serializeModel(g.build());
  for (let attempt = 0; attempt < 2; attempt++) {
    await expect(runtime.createSession(model)).rejects.toMatchObject({
      code: 'SESSION_INIT_TIMEOUT',
      message: expect.stringMatching(/within 1 ms .*reload/),
    });
  }
  await runtime.dispose();
});
