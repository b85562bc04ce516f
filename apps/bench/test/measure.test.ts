import { describe, expect, it } from 'vitest';
import type { MachineInfo } from '../src/machine.js';
import { compareCases, median, ratio, summarize } from '../src/measure.js';
import { figure, runMarkdown } from '../src/report.js';
import type { ScenarioReport } from '../src/report.js';

describe('measure', () => {
  it('median of odd and even sample counts', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5);
  });

  it('summarize: min/median/max and throughput at the median and best time', () => {
    const s = summarize('read', [200, 100, 400], { amount: 50, unit: 'MB' });
    expect(s).toMatchObject({ minMs: 100, medianMs: 200, maxMs: 400, samplesMs: [200, 100, 400] });
    expect(s.throughput).toEqual({ unit: 'MB/s', median: 250, best: 500 });
    expect(() => summarize('empty', [])).toThrow(/no samples/);
  });

  it('compareCases: warm-up runs are not measured; each round starts with the next case', async () => {
    const calls: string[] = [];
    const cases = ['a', 'b', 'c'].map((name) => ({ name, run: () => calls.push(name) }));
    const series = await compareCases(cases, { warmup: 1, samples: 3 });
    expect(calls).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'b', 'c', 'a', 'c', 'a', 'b']);
    expect(series.map((s) => [s.name, s.samplesMs.length])).toEqual([
      ['a', 3],
      ['b', 3],
      ['c', 3],
    ]);
  });

  it('compareCases: a case that times itself reports its own milliseconds, and must give a number', async () => {
    const [series] = await compareCases([{ name: 'page', timesItself: true, run: async () => 7.5 }], {
      warmup: 0,
      samples: 2,
    });
    expect(series!.samplesMs).toEqual([7.5, 7.5]);
    const broken = { name: 'broken', timesItself: true, run: () => undefined };
    await expect(compareCases([broken], { warmup: 0, samples: 1 })).rejects.toThrow(/not milliseconds/);
  });

  it('ratio divides median times and names a missing series', () => {
    const series = [summarize('x', [30]), summarize('y', [10])];
    expect(ratio(series, 'x', 'y')).toEqual({ of: 'x', to: 'y', value: 3 });
    expect(() => ratio(series, 'x', 'z')).toThrow(/no series named "z"/);
  });
});

describe('report', () => {
  const machine: MachineInfo = {
    cpuModel: 'Test CPU',
    cores: 2,
    availableParallelism: 2,
    totalMemoryGiB: 8,
    platform: 'linux-x64',
    node: 'v20.0.0',
    runtime: 'onnxruntime-node@1.30.0',
    gitSha: '0123456789abcdef0123-dirty',
    freshMemoryMBps: 1500,
  };
  const base = {
    title: 'T',
    description: 'D',
    quick: false,
    startedAt: '2025-01-01T00:00:00.000Z',
    durationMs: 1500,
    machine,
  };

  it('figures keep about four significant digits', () => {
    expect([figure(25), figure(1234.56), figure(44.744), figure(0.0012345)]).toEqual([
      '25',
      '1,235',
      '44.74',
      '0.001235',
    ]);
  });

  it('writes the machine once, a table per scenario, ratios, and failures', () => {
    const ok: ScenarioReport = {
      ...base,
      scenario: 'demo',
      params: { size: 4 },
      series: [summarize('fast', [10], { amount: 1, unit: 'MB' }), summarize('slow', [20])],
      ratios: [{ of: 'slow', to: 'fast', value: 2 }],
      figures: [{ name: 'model', value: 1.5, unit: 'MB' }],
      notes: ['cached'],
      skipped: [{ name: 'gpu case', reason: 'no GPU' }],
    };
    const bad: ScenarioReport = {
      ...base,
      scenario: 'broken',
      params: {},
      series: [],
      ratios: [],
      figures: [],
      notes: [],
      skipped: [],
      error: 'boom',
    };
    const md = runMarkdown([ok, bad], machine);
    expect(md).toContain(
      'Machine: Test CPU, 2 cores (2 usable), 8 GiB, linux-x64, Node v20.0.0, onnxruntime-node@1.30.0, git 0123456789ab-dirty, fresh memory 1,500 MB/s.',
    );
    expect(md).toContain('| fast | 10.0 ms | 10.0 ms | 10.0 ms | 1 | 100.0 MB/s | 100.0 MB/s |');
    expect(md).toContain('| slow ÷ fast | 2.00× |');
    expect(md).toContain('| model | 1.500 MB |');
    expect(md).toContain('Skipped (not failures):\n\n- gpu case: no GPU');
    expect(md).toContain('## broken: T\n\nD\n\n**Failed:** boom');
  });
});
