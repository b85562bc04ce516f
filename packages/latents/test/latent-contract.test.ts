import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  formatLatentMetadata,
  imageToTensor,
  LATENT_METADATA_KEYS,
  latentForDecoder,
  parseLatentMetadata,
} from '@dcae/autoencoder';
import type { LatentDecoderModel } from '@dcae/autoencoder';
import { decodeImage } from '@dcae/autoencoder/node';
import { centerCrop, latentContractMetadata, parseNpy } from '@dcae/latents';
import { makePlan, PosixStore, readTarFile, runShards } from '@dcae/latents/node';
import { imageFolder, tempDir, TINY_MODEL } from './helpers.js';
import { tinyModel } from './model.js';

/*
 * The latents' `.json`, commit records and manifest carry the latent file contract
 * (docs/latent-format.md, @dcae/autoencoder's latent-metadata.ts) verbatim as `latentMetadata`.
 * These checks fail when the two drift: a renamed or re-meant key no longer round-trips through
 * the contract's own parser, or no longer unscales to the encoder's output.
 */
const CONTRACT_KEYS: readonly string[] = Object.values(LATENT_METADATA_KEYS);

function expectContract(metadata: Record<string, string>): void {
  for (const key of Object.keys(metadata)) expect(CONTRACT_KEYS).toContain(key);
  expect(formatLatentMetadata(parseLatentMetadata(metadata))).toEqual(metadata);
}

describe('latents ↔ latent file contract (docs/latent-format.md)', () => {
  it('maps model, revision, scaling and compute dtype onto the contract keys', () => {
    const commit = '0123456789abcdef0123456789abcdef01234567';
    const pinned = latentContractMetadata({
      modelName: `mit-han-lab/dc-ae-f32c32-in-1.0-diffusers@${commit}`,
      scalingFactor: 0.3189,
      scaled: true,
      computeDtype: 'fp16',
    });
    expectContract(pinned);
    expect(parseLatentMetadata(pinned)).toEqual({
      version: '1',
      model: 'mit-han-lab/dc-ae-f32c32-in-1.0-diffusers',
      revision: commit,
      space: 'diffusion',
      scalingFactor: 0.3189,
      dtype: 'fp16',
    });
    // A branch is not a commit: it stays in the model name, as `dcae encode` writes it.
    const branch = latentContractMetadata({
      modelName: 'org/m@main',
      scalingFactor: undefined,
      scaled: false,
    });
    expectContract(branch);
    expect(parseLatentMetadata(branch)).toEqual({ version: '1', model: 'org/m@main', space: 'autoencoder' });
  });

  it('stored latents: every .json, the commit record and the manifest carry the same contract, and a contract reader gets the encoder output back', async () => {
    const dir = await tempDir();
    const input = join(dir, 'in');
    await imageFolder(input, 1, 2);
    for (const scale of [true, false]) {
      const plan = await makePlan({
        model: TINY_MODEL,
        input,
        output: join(dir, `o-${scale}`),
        size: 64,
        scale,
      });
      const model = tinyModel(plan);
      const { results } = await runShards(plan, [0], { store: new PosixStore(plan.output), model });
      const record = results[0]!.record;
      const ae = (await model()) as Awaited<ReturnType<typeof model>> &
        LatentDecoderModel & { dtype: string };
      const expected = latentContractMetadata({
        modelName: ae.name,
        scalingFactor: ae.scalingFactor,
        scaled: scale,
        computeDtype: 'fp32',
      });
      expectContract(expected);
      expect(parseLatentMetadata(expected)).toMatchObject({
        model: TINY_MODEL,
        space: scale ? 'diffusion' : 'autoencoder',
        scalingFactor: 0.41407,
        dtype: 'fp32',
      });
      expect(record.latentMetadata).toEqual(expected);
      expect(record.scaled).toBe(scale);
      const header = JSON.parse(
        (await readFile(join(plan.output, 'manifest.jsonl'), 'utf8')).split('\n')[0]!,
      ) as {
        latentMetadata: unknown;
        scaled: boolean;
        scalingFactor: number;
      };
      expect(header).toMatchObject({ latentMetadata: expected, scaled: scale, scalingFactor: 0.41407 });

      const samples = new Map<string, { npy?: Uint8Array; json?: Record<string, unknown> }>();
      for await (const e of readTarFile(join(plan.output, 'shard-000000.tar'))) {
        const [key, ext] = e.name.split('.') as [string, string];
        const entry = samples.get(key) ?? {};
        if (ext === 'npy') entry.npy = e.data;
        else entry.json = JSON.parse(new TextDecoder().decode(e.data)) as Record<string, unknown>;
        samples.set(key, entry);
      }
      expect(samples.size).toBe(2);
      for (const { npy, json } of samples.values()) {
        expect(json!.latentMetadata).toEqual(expected);
        // The flat fields say the same thing as the contract keys.
        expect(json).toMatchObject({ scaled: scale, scalingFactor: 0.41407, model: ae.name, dtype: 'fp32' });
        const stored = parseNpy(npy!);
        const tensor = {
          dtype: 'float32' as const,
          shape: [1, ...stored.shape],
          data: stored.data as Float32Array,
        };
        const out = latentForDecoder(
          tensor,
          parseLatentMetadata(json!.latentMetadata as Record<string, string>),
          ae,
        );
        expect(out.unscaledBy).toBe(scale ? 0.41407 : undefined);
        // The contract's reader recovers what a plain encode of the same crop gives.
        const path = json!.path as string;
        const crop = centerCrop(await decodeImage(await readFile(join(input, path))), 64).image;
        const plain = await ae.encode(imageToTensor(crop));
        expect(out.latent.data).toHaveLength(plain.data.length);
        for (let i = 0; i < plain.data.length; i++)
          expect(Math.abs(out.latent.data[i]! - plain.data[i]!)).toBeLessThanOrEqual(1e-4);
      }
    }
  });
});
