import type { MachineInfo } from './machine.js';
import { formatMs } from './measure.js';
import type { Figure, Ratio, Series, Skipped } from './scenario.js';

/** Everything one scenario run produced: written as `<stamp>-<scenario>.json`. */
export interface ScenarioReport {
  readonly scenario: string;
  readonly title: string;
  readonly description: string;
  readonly quick: boolean;
  readonly startedAt: string;
  readonly durationMs: number;
  readonly machine: MachineInfo;
  readonly params: Readonly<Record<string, string | number | boolean>>;
  readonly series: readonly Series[];
  readonly ratios: readonly Ratio[];
  readonly figures: readonly Figure[];
  readonly notes: readonly string[];
  /** Cases that could not run on this machine, with the reason (not failures). */
  readonly skipped: readonly Skipped[];
  /** Set when the scenario failed; the other fields are then empty. */
  readonly error?: string;
  /** File name of the chart (`scenarioSvg`) written next to the report, when there is one. */
  readonly chart?: string;
}

const fixed = (value: number, digits: number): string =>
  value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });

/** Integers as they are; otherwise about four significant digits. */
export function figure(value: number): string {
  if (Number.isInteger(value)) return fixed(value, 0);
  const digits = Math.max(0, 3 - Math.floor(Math.log10(Math.abs(value) || 1)));
  return fixed(value, Math.min(digits, 6));
}

function throughput(s: Series, which: 'median' | 'best'): string {
  return s.throughput ? `${fixed(s.throughput[which], 1)} ${s.throughput.unit}` : '';
}

export function machineLine(m: MachineInfo): string {
  return (
    `${m.cpuModel}, ${m.cores} cores (${m.availableParallelism} usable), ${m.totalMemoryGiB} GiB, ` +
    `${m.platform}, Node ${m.node}, ${m.runtime}, git ${m.gitSha.slice(0, 12)}${m.gitSha.endsWith('-dirty') ? '-dirty' : ''}, ` +
    `fresh memory ${fixed(m.freshMemoryMBps, 0)} MB/s`
  );
}

/** A Markdown section for one scenario: parameters, a timing table, ratios, figures, notes. */
export function scenarioMarkdown(r: ScenarioReport): string {
  const lines = [`## ${r.scenario}: ${r.title}${r.quick ? ' (quick)' : ''}`, '', r.description, ''];
  if (r.error !== undefined) {
    const [first, ...rest] = r.error.split('\n');
    lines.push(`**Failed:** ${first}`, '');
    if (rest.length > 0) lines.push('```', ...rest, '```', '');
    return lines.join('\n');
  }
  const params = Object.entries(r.params).map(([k, v]) => `${k}=${String(v)}`);
  lines.push(`${r.startedAt}, ${(r.durationMs / 1000).toFixed(1)} s. Parameters: ${params.join(', ')}.`, '');
  if (r.chart !== undefined)
    lines.push(`![${r.scenario}: median time per case, min–max whiskers](${r.chart})`, '');
  if (r.series.length > 0) {
    lines.push('| case | median | min | max | samples | throughput (median) | throughput (best) |');
    lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
  }
  for (const s of r.series) {
    lines.push(
      `| ${s.name} | ${formatMs(s.medianMs)} | ${formatMs(s.minMs)} | ${formatMs(s.maxMs)} | ${s.samplesMs.length} | ${throughput(s, 'median')} | ${throughput(s, 'best')} |`,
    );
  }
  if (r.ratios.length > 0) {
    lines.push('', '| ratio (median time) | value |', '| --- | ---: |');
    for (const x of r.ratios) lines.push(`| ${x.of} ÷ ${x.to} | ${fixed(x.value, 2)}× |`);
  }
  if (r.figures.length > 0) {
    lines.push('', '| figure | value |', '| --- | ---: |');
    for (const f of r.figures) lines.push(`| ${f.name} | ${figure(f.value)}${f.unit ? ` ${f.unit}` : ''} |`);
  }
  if (r.skipped.length > 0) {
    lines.push('', 'Skipped (not failures):', '');
    for (const s of r.skipped) lines.push(`- ${s.name}: ${s.reason}`);
  }
  for (const note of r.notes) lines.push('', `Note: ${note}`);
  lines.push('');
  return lines.join('\n');
}

/** `latest.md`: the machine once, then every scenario of the run. */
export function runMarkdown(reports: readonly ScenarioReport[], machine: MachineInfo): string {
  return [
    '# dcae benchmarks',
    '',
    `Machine: ${machineLine(machine)}.`,
    '',
    'Ratios divide median times: 1.00× is parity, above 1 the first case is slower.',
    '',
    ...reports.map(scenarioMarkdown),
  ].join('\n');
}

const escapeXml = (text: string): string =>
  text.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** Ticks of a linear axis from 0: about five round steps (1, 2 or 5 × 10^k) covering `max`. */
function linearTicks(max: number): number[] {
  const raw = max / 5;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw)!;
  return Array.from({ length: Math.ceil(max / step) + 1 }, (_, i) => i * step);
}

/** Ticks of a log axis: every power of ten covering [min, max] (with 2 and 5 between when it spans few decades). */
function logTicks(min: number, max: number): number[] {
  const [lo, hi] = [Math.floor(Math.log10(min)), Math.ceil(Math.log10(max))];
  const ticks: number[] = [];
  for (let e = lo; e <= hi; e++) {
    for (const m of hi - lo <= 3 ? [1, 2, 5] : [1]) {
      const t = m * 10 ** e;
      if (t <= 10 ** hi) ticks.push(t);
    }
  }
  return ticks;
}

const tickLabel = (ms: number): string => (ms >= 1000 ? `${figure(ms / 1000)} s` : `${figure(ms)} ms`);

/**
 * A horizontal bar chart of the scenario's cases (SVG, no dependencies): one bar per case to its
 * median time, a whisker from its min to its max, the median written after it. The axis is
 * logarithmic when the times span more than 30×. Undefined for a failed or empty scenario.
 */
export function scenarioSvg(r: ScenarioReport): string | undefined {
  if (r.error !== undefined || r.series.length === 0) return undefined;
  const font = 12;
  const charWidth = 0.62 * font; // monospace labels, so widths are predictable
  const rowHeight = 26;
  const labelWidth = Math.ceil(Math.max(...r.series.map((s) => s.name.length)) * charWidth) + 20;
  const plotWidth = 560;
  const valueWidth = 84;
  const top = 56;
  const bottom = 46;
  const title = `${r.scenario}: ${r.title}${r.quick ? ' (quick)' : ''}`;
  const width = Math.max(labelWidth + plotWidth + valueWidth, Math.ceil(title.length * 0.6 * 15) + 24);
  const height = top + r.series.length * rowHeight + bottom;

  const lo = Math.min(...r.series.map((s) => s.minMs));
  const hi = Math.max(...r.series.map((s) => s.maxMs));
  const log = lo > 0 && hi / lo > 30;
  const ticks = log ? logTicks(lo, hi) : linearTicks(hi);
  const [d0, d1] = [ticks[0]!, ticks.at(-1)!];
  const x = (ms: number): number =>
    labelWidth +
    plotWidth *
      (log ? (Math.log10(Math.max(ms, d0)) - Math.log10(d0)) / (Math.log10(d1) - Math.log10(d0)) : ms / d1);
  const n = (v: number): string => v.toFixed(1);

  const counts = new Set(r.series.map((s) => s.samplesMs.length));
  const samples = counts.size === 1 ? `${[...counts][0]} sample(s)` : "each case's samples";
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif" font-size="${font}">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="12" y="22" font-size="15" font-weight="600" fill="#111">${escapeXml(title)}</text>`,
    `<text x="12" y="40" fill="#555">median time per case (bar), min–max of ${samples} (whisker)${log ? ', log scale' : ''}; ${escapeXml(r.startedAt.slice(0, 16).replace('T', ' '))} UTC</text>`,
  ];
  const plotBottom = top + r.series.length * rowHeight;
  for (const t of ticks) {
    out.push(
      `<line x1="${n(x(t))}" y1="${top - 4}" x2="${n(x(t))}" y2="${plotBottom}" stroke="#e2e2e2"/>`,
      `<text x="${n(x(t))}" y="${plotBottom + 16}" text-anchor="middle" fill="#444">${escapeXml(tickLabel(t))}</text>`,
    );
  }
  out.push(
    `<line x1="${labelWidth}" y1="${plotBottom}" x2="${labelWidth + plotWidth}" y2="${plotBottom}" stroke="#888"/>`,
    `<text x="${labelWidth + plotWidth / 2}" y="${plotBottom + 34}" text-anchor="middle" fill="#444">time per run</text>`,
  );
  r.series.forEach((s, i) => {
    const y = top + i * rowHeight;
    const mid = y + rowHeight / 2;
    const [xMin, xMed, xMax] = [x(s.minMs), x(s.medianMs), x(s.maxMs)];
    out.push(
      `<text x="${labelWidth - 10}" y="${n(mid + 4)}" text-anchor="end" font-family="ui-monospace, Menlo, Consolas, 'DejaVu Sans Mono', monospace" fill="#111">${escapeXml(s.name)}</text>`,
      `<rect x="${labelWidth}" y="${n(y + 5)}" width="${n(Math.max(1, xMed - labelWidth))}" height="${rowHeight - 10}" fill="#4c78a8"/>`,
      `<line x1="${n(xMin)}" y1="${n(mid)}" x2="${n(xMax)}" y2="${n(mid)}" stroke="#222" stroke-width="1.5"/>`,
      `<line x1="${n(xMin)}" y1="${n(mid - 5)}" x2="${n(xMin)}" y2="${n(mid + 5)}" stroke="#222" stroke-width="1.5"/>`,
      `<line x1="${n(xMax)}" y1="${n(mid - 5)}" x2="${n(xMax)}" y2="${n(mid + 5)}" stroke="#222" stroke-width="1.5"/>`,
      `<text x="${n(Math.max(xMax, xMed) + 8)}" y="${n(mid + 4)}" fill="#111">${escapeXml(formatMs(s.medianMs))}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}
