import { describe, expect, it } from 'vitest';
import { summarize } from '../src/measure.js';
import type { MachineInfo } from '../src/machine.js';
import type { ScenarioReport } from '../src/report.js';
import { scenarioMarkdown, scenarioSvg } from '../src/report.js';
import type { Series } from '../src/scenario.js';

function report(series: readonly Series[], extra: Partial<ScenarioReport> = {}): ScenarioReport {
  return {
    scenario: 'demo',
    title: 'Demo <cases> & more',
    description: 'A demo.',
    quick: false,
    startedAt: '2025-11-26T06:12:21.000Z',
    durationMs: 1000,
    machine: {} as MachineInfo,
    params: {},
    series,
    ratios: [],
    figures: [],
    notes: [],
    skipped: [],
    ...extra,
  };
}

/** The `width` of every bar (`rect` with the bar colour), in case order. */
const barWidths = (svg: string): number[] =>
  [...svg.matchAll(/<rect x="[\d.]+" y="[\d.]+" width="([\d.]+)" height="\d+" fill="#4c78a8"\/>/g)].map((m) =>
    Number(m[1]),
  );

describe('scenarioSvg', () => {
  it('draws one bar per case, proportional to the median on a linear axis from 0', () => {
    const svg = scenarioSvg(
      report([summarize('a <fast>', [10, 12, 8]), summarize('b & slow', [20, 25, 18])]),
    )!;
    const [a, b] = barWidths(svg);
    expect(b! / a!).toBeCloseTo(2, 1);
    expect(svg).toContain('a &lt;fast&gt;');
    expect(svg).toContain('b &amp; slow');
    expect(svg).toContain('Demo &lt;cases&gt; &amp; more');
    expect(svg).not.toContain('log scale');
    expect(svg.match(/<svg /g)).toHaveLength(1);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
  });

  it('switches to a log axis when the times span more than 30×', () => {
    const svg = scenarioSvg(report([summarize('tiny', [1, 1.2]), summarize('huge', [4000, 5000, 6000])]))!;
    expect(svg).toContain('log scale');
    const [tiny, huge] = barWidths(svg);
    // 1 ms → 5 s is 3.7 of the 4 decades from 1 ms to 10 s.
    expect(huge! / 560).toBeCloseTo(Math.log10(5000) / 4, 2);
    expect(tiny).toBeLessThan(huge! / 10);
  });

  it('is absent for failed or empty scenarios, and linked from the Markdown when written', () => {
    expect(scenarioSvg(report([]))).toBeUndefined();
    expect(scenarioSvg(report([summarize('a', [1])], { error: 'boom' }))).toBeUndefined();
    const md = scenarioMarkdown(report([summarize('a', [1])], { chart: 'x-demo.svg' }));
    expect(md).toContain('](x-demo.svg)');
  });
});
