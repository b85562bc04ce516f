import { createRng, hostTensor } from '@dcae/core';
import type { HostTensor } from '@dcae/core';
import { GraphBuilder, serializeModel } from '@dcae/core/onnx';
import type { Value } from '@dcae/core/onnx';
import { createNodeRuntime } from '@dcae/runtime-adapters/node';
import { afterAll, describe, expect, it } from 'vitest';
import { channelAverage, pixelShuffle, pixelUnshuffle, repeatChannels } from '../src/dc-ae/blocks.js';

/**
 * The residual-autoencoding shortcuts against the closed-form index formulas of docs/model-spec.md §1.5,
 * element by element on random tensors (catches pixel-(un)shuffle order and grouping bugs).
 */
const runtime = createNodeRuntime({ threads: 1 });
afterAll(async () => {
  await runtime.dispose();
});

/** Runs one op chain built from the blocks on `x` (dynamic batch, height and width). */
async function run(
  x: HostTensor<'float32'>,
  build: (m: GraphBuilder['root'], x: Value) => Value,
): Promise<HostTensor<'float32'>> {
  const g = new GraphBuilder({ name: 'shortcut' });
  const input = g.input('x', 'float32', ['b', x.shape[1]!, 'h', 'w']);
  g.output(build(g.root, input), 'y', undefined);
  const session = await runtime.createSession(serializeModel(g.build()));
  try {
    return (await session.run({ x })).y as HostTensor<'float32'>;
  } finally {
    await session.dispose();
  }
}

const at = (t: HostTensor<'float32'>, b: number, c: number, y: number, x: number): number => {
  const [, C, H, W] = t.shape as [number, number, number, number];
  return t.data[((b * C + c) * H + y) * W + x]!;
};

/** Every element of `actual` [B, C, H, W] against `expected(b, c, y, x)`. */
function expectElementwise(
  actual: HostTensor<'float32'>,
  shape: readonly number[],
  expected: (b: number, c: number, y: number, x: number) => number,
) {
  expect(actual.shape).toEqual(shape);
  const [B, C, H, W] = shape as [number, number, number, number];
  let worst = 0;
  for (let b = 0; b < B; b++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++)
          worst = Math.max(worst, Math.abs(at(actual, b, c, y, x) - expected(b, c, y, x)));
  expect(worst).toBeLessThanOrEqual(1e-6);
}

const random = (shape: number[], seed: number) => createRng(seed).randn(shape);

describe('residual-autoencoding shortcuts match docs/model-spec.md §1.5', () => {
  it('pixel_unshuffle: out[b, 4c + 2i + j, y, x] = in[b, c, 2y + i, 2x + j] (torch order, not SpaceToDepth)', async () => {
    const x = random([2, 3, 6, 10], 1);
    const out = await run(x, (m, v) => pixelUnshuffle(m, v, 3));
    expectElementwise(out, [2, 12, 3, 5], (b, c, y, xx) =>
      at(x, b, Math.floor(c / 4), 2 * y + Math.floor((c % 4) / 2), 2 * xx + (c % 2)),
    );
  });

  it('pixel_shuffle: out[b, c, 2y + i, 2x + j] = in[b, 4c + 2i + j, y, x] (= DepthToSpace CRD, bit for bit)', async () => {
    const x = random([2, 12, 3, 5], 6);
    const out = await run(x, (m, v) => pixelShuffle(m, v, 12));
    expectElementwise(out, [2, 3, 6, 10], (b, c, y, xx) =>
      at(x, b, 4 * c + 2 * (y % 2) + (xx % 2), Math.floor(y / 2), Math.floor(xx / 2)),
    );
    const crd = await run(x, (m, v) => m.depthToSpace(v, 2, 'CRD'));
    expect(out.data).toEqual(crd.data);
  });

  it('pixel_unshuffle then pixel_shuffle gives the input back, bit for bit', async () => {
    const x = random([1, 5, 8, 6], 7);
    const out = await run(x, (m, v) => pixelShuffle(m, pixelUnshuffle(m, v, 5), 20));
    expect(out.shape).toEqual(x.shape);
    expect(out.data).toEqual(x.data);
  });

  it.each([
    [4, 8],
    [4, 4],
    [8, 4],
  ])(
    'down shortcut %i → %i channels: mean over consecutive groups of the unshuffled channels',
    async (cin, cout) => {
      const x = random([2, cin, 4, 6], 2);
      const group = (4 * cin) / cout;
      const out = await run(x, (m, v) => channelAverage(m, pixelUnshuffle(m, v, cin), 4 * cin, group));
      expectElementwise(out, [2, cout, 2, 3], (b, o, y, xx) => {
        let sum = 0;
        for (let g = 0; g < group; g++) {
          const u = o * group + g; // unshuffled channel
          sum += at(x, b, Math.floor(u / 4), 2 * y + Math.floor((u % 4) / 2), 2 * xx + (u % 2));
        }
        return sum / group;
      });
    },
  );

  it.each([
    [8, 4],
    [4, 4],
    [4, 8],
  ])(
    'up shortcut %i → %i channels: out[b, o, 2y + i, 2x + j] = x[b, ⌊(4o + 2i + j) / R⌋, y, x]',
    async (cin, cout) => {
      const x = random([2, cin, 3, 5], 3);
      const repeats = (4 * cout) / cin;
      const out = await run(x, (m, v) => pixelShuffle(m, repeatChannels(m, v, cin, repeats), 4 * cout));
      expectElementwise(out, [2, cout, 6, 10], (b, o, y, xx) =>
        at(
          x,
          b,
          Math.floor((4 * o + 2 * (y % 2) + (xx % 2)) / repeats),
          Math.floor(y / 2),
          Math.floor(xx / 2),
        ),
      );
    },
  );

  it('encoder out shortcut: channel mean over groups of C / c', async () => {
    const x = random([1, 12, 2, 3], 4);
    const out = await run(x, (m, v) => channelAverage(m, v, 12, 4));
    expectElementwise(
      out,
      [1, 3, 2, 3],
      (b, o, y, xx) =>
        (at(x, b, 4 * o, y, xx) +
          at(x, b, 4 * o + 1, y, xx) +
          at(x, b, 4 * o + 2, y, xx) +
          at(x, b, 4 * o + 3, y, xx)) /
        4,
    );
  });

  it('decoder in shortcut: channel k of the result is channel ⌊k / R⌋ of the latent', async () => {
    const x = random([2, 3, 2, 2], 5);
    const out = await run(x, (m, v) => repeatChannels(m, v, 3, 4));
    expectElementwise(out, [2, 12, 2, 2], (b, k, y, xx) => at(x, b, Math.floor(k / 4), y, xx));
  });

  it('the closed forms are not vacuous: a channel-order swap is detected', async () => {
    const x = hostTensor('float32', [1, 2, 2, 2], Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]));
    const out = await run(x, (m, v) => m.spaceToDepth(v, 2));
    // ONNX SpaceToDepth puts offset (0, 1) of channel 0 at channel 2, torch at channel 1.
    expect(at(out, 0, 1, 0, 0)).toBe(4);
    expect(at(await run(x, (m, v) => pixelUnshuffle(m, v, 2)), 0, 1, 0, 0)).toBe(1);
  });
});
