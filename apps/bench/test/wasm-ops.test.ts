import { describe, expect, it } from 'vitest';
import type { ModelProfile, ProfiledNode } from '@dcae/runtime-adapters/node';
import { compareProfiles, kernelClass } from '../src/scenarios/wasm-ops.js';

const node = (opType: string, inputShapes: number[][], durationUs = 1): ProfiledNode => ({
  name: `${opType}-${inputShapes.map((s) => s.join('x')).join('-')}`,
  opType,
  provider: 'CPUExecutionProvider',
  durationUs,
  inputShapes,
});

describe('wasm-ops kernel classes', () => {
  it('tells dense, 1×1, depthwise and grouped convolutions apart, in NCHW and NCHWc layouts', () => {
    expect(
      kernelClass(
        node('Conv', [
          [1, 64, 32, 32],
          [64, 64, 3, 3],
        ]),
      ),
    ).toBe('Conv 3×3');
    expect(
      kernelClass(
        node('FusedConv', [
          [1, 64, 32, 32],
          [128, 64, 1, 1],
        ]),
      ),
    ).toBe('Conv 1×1');
    expect(
      kernelClass(
        node('Conv', [
          [1, 96, 32, 32],
          [96, 1, 5, 5],
        ]),
      ),
    ).toBe('depthwise Conv 5×5');
    expect(
      kernelClass(
        node('Conv', [
          [1, 96, 32, 32],
          [96, 8, 1, 1],
        ]),
      ),
    ).toBe('grouped Conv 1×1');
    // onnxruntime-node's NCHWc: input [N, C/16, H, W, 16], weight output channels padded to 16.
    expect(
      kernelClass(
        node('Conv', [
          [1, 4, 32, 32, 16],
          [64, 64, 3, 3],
        ]),
      ),
    ).toBe('Conv 3×3');
    expect(
      kernelClass(
        node('Conv', [
          [1, 4, 32, 32, 16],
          [64, 1, 3, 3],
        ]),
      ),
    ).toBe('depthwise Conv 3×3');
    expect(
      kernelClass(
        node('Gemm', [
          [64, 1152],
          [1152, 3456],
        ]),
      ),
    ).toBe('MatMul');
    expect(kernelClass(node('QuickGelu', [[1, 8, 4, 4]]))).toBe('QuickGelu');
  });

  it('compares per-run kernel time per class, largest wasm share first', () => {
    const profile = (nodes: ProfiledNode[], runs: number): ModelProfile => ({
      nodes,
      byOpType: [],
      totalUs: nodes.reduce((s, n) => s + n.durationUs, 0),
      runs,
      runMs: [],
    });
    const native = profile(
      [
        node(
          'Conv',
          [
            [1, 8, 4, 4],
            [8, 8, 3, 3],
          ],
          20,
        ),
        node('Add', [[1, 8, 4, 4]], 4),
      ],
      2,
    );
    const wasm = profile(
      [
        node(
          'Conv',
          [
            [1, 8, 4, 4],
            [8, 8, 3, 3],
          ],
          70,
        ),
        node('Add', [[1, 8, 4, 4]], 90),
      ],
      1,
    );
    expect(compareProfiles(native, wasm)).toEqual([
      { name: 'Add', count: 1, nodeUs: 2, wasmUs: 90 },
      { name: 'Conv 3×3', count: 1, nodeUs: 10, wasmUs: 70 },
    ]);
  });
});
