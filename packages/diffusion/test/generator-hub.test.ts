// Issue #12: a combined diffusion checkpoint (backbone under `diffusion_model.`, its DC-AE under
// `autoencoder.`, one model.safetensors, as the released repos are laid out) fetched by Hub id from
// the local stand-in of the Hub (packages/hub/test/helpers/hub-server.ts) and loaded by
// `loadGenerator`'s 'auto' path: both parts come from the one file, and each matches its fixture.
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HostTensor } from '@dcae/core';
import { parseJsonConfig, parseSafetensors, serializeSafetensors } from '@dcae/core';
import type { RuntimeV1 } from '@dcae/core/runtime';
import { dcAeCheckpointLayout, parseDcAeConfig } from '@dcae/autoencoder';
import type { DcAeConfig } from '@dcae/autoencoder';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { HubTestServer, listFiles } from '../../hub/test/helpers/hub-server.js';
import { loadGenerator } from '../src/node/index.js';
import { fixturePath, float32, int64, maxAbs, maxAbsDiff, readTensors } from './fixtures.js';

const AE_FIXTURE = fixturePath('../dcae/tiny-sana-f32');
const UVIT = fixturePath('tiny-uvit');
const bytes = (path: string): Uint8Array => new Uint8Array(readFileSync(path));

const aeConfig: DcAeConfig = parseDcAeConfig(
  parseJsonConfig(readFileSync(join(AE_FIXTURE, 'config.json'), 'utf8')),
);

/**
 * The tiny UViT's tensors as they are (`diffusion_model.*`) and the tiny DC-AE's under
 * `autoencoder.` with their original-format (efficientvit) names, the released checkpoints' naming.
 */
function combinedWeights(): Uint8Array {
  const backbone = parseSafetensors(bytes(join(UVIT, 'model.safetensors')));
  const ae = parseSafetensors(bytes(join(AE_FIXTURE, 'diffusion_pytorch_model.safetensors')));
  const out = new Map<string, HostTensor>();
  for (const key of backbone.header.tensors.keys()) out.set(key, backbone.tensor(key));
  const layout = dcAeCheckpointLayout(aeConfig);
  for (const p of layout.params) {
    const name = `autoencoder.${p.original}`;
    if (out.has(name)) continue;
    // Diffusers splits some original tensors (q, k, v) into several: concatenate them back.
    const parts = layout.params.filter((q) => q.original === p.original).map((q) => ae.tensor(q.key));
    const data = new Float32Array(parts.reduce((n, t) => n + t.data.length, 0));
    parts.forEach((t, i) => data.set(t.data as Float32Array, i * t.data.length));
    const shape =
      p.shape.length === 2 ? [parts.length * p.shape[0]!, p.shape[1]!, 1, 1] : [...parts[0]!.shape];
    out.set(name, { dtype: 'float32', shape, data });
  }
  return serializeSafetensors(out);
}

let hub: HubTestServer;
let runtime: RuntimeV1;
let cacheDir: string;
beforeAll(async () => {
  hub = await HubTestServer.start();
  hub.addRepo('org/tiny-combined', {
    'config.json': bytes(join(UVIT, 'config.json')),
    'model.safetensors': combinedWeights(),
  });
  runtime = createNodeRuntime({ threads: 1 });
  cacheDir = await mkdtemp(join(tmpdir(), 'dcae-generator-hub-'));
});
afterAll(async () => {
  await runtime.dispose();
  await hub.close();
  await rm(cacheDir, { recursive: true, force: true });
});

const hubOptions = () => ({ endpoint: hub.endpoint, cacheDir, token: false as const, env: {} });

describe("loadGenerator('org/…', { autoencoder: 'auto' }) on a combined checkpoint served by the Hub stand-in", () => {
  it('downloads one model.safetensors, and takes both the backbone and the autoencoder from it', async () => {
    const stages: string[] = [];
    const generator = await loadGenerator('org/tiny-combined', {
      runtime,
      hub: hubOptions(),
      autoencoderConfig: aeConfig,
      onStage: (stage) => stages.push(stage),
    });
    try {
      expect(generator.autoencoderSource).toBe('combined');
      expect(stages).toEqual(['autoencoder', 'backbone']);
      expect(generator.config.backbone).toMatchObject({ family: 'uvit', inChannels: 8 });
      expect(generator.autoencoder?.latentChannels).toBe(8);

      // The autoencoder decodes the fixture's latent as diffusers does.
      const latents = await readTensors('../dcae/tiny-sana-f32/input.safetensors');
      const expected = await readTensors('../dcae/tiny-sana-f32/expected.safetensors');
      const decoded = await generator.autoencoder!.decode(float32(latents, 'latent'));
      const reference = float32(expected, 'decoded');
      expect(decoded.shape).toEqual(reference.shape);
      expect(maxAbsDiff(decoded.data, reference.data)).toBeLessThanOrEqual(
        1e-4 * Math.max(1, maxAbs(reference.data)),
      );

      // The backbone's forward matches upstream's.
      const forward = await readTensors('tiny-uvit/forward.safetensors');
      const out = await generator.model.forward(
        float32(forward, 'x'),
        float32(forward, 't').data,
        int64(forward, 'y'),
      );
      const want = float32(forward, 'out');
      expect(maxAbsDiff(out.data, want.data)).toBeLessThanOrEqual(1e-4 * Math.max(1, maxAbs(want.data)));
    } finally {
      await generator.dispose();
    }
    // One weights file, fetched once: config.json (plain) and model.safetensors (one LFS blob).
    expect(hub.count('GET', /\/blobs\//)).toBe(1);
    const snapshot = await listFiles(join(cacheDir, 'models--org--tiny-combined', 'snapshots'));
    expect(snapshot.map((f) => f.split('/')[1])).toEqual(['config.json', 'model.safetensors']);
  });

  it("without an architecture for an unreleased checkpoint, 'auto' loads no autoencoder rather than guess one", async () => {
    const generator = await loadGenerator('org/tiny-combined', { runtime, hub: hubOptions() });
    try {
      expect(generator.autoencoder).toBeUndefined();
      expect(generator.autoencoderSource).toBeUndefined();
    } finally {
      await generator.dispose();
    }
  });

  it('an autoencoderConfig that does not fit the autoencoder. tensors is WEIGHTS_MISMATCH (strict binding)', async () => {
    const wrong = { ...aeConfig, latentChannels: 16 };
    await expect(
      loadGenerator('org/tiny-combined', { runtime, hub: hubOptions(), autoencoderConfig: wrong }),
    ).rejects.toMatchObject({ code: 'WEIGHTS_MISMATCH' });
  });
});
