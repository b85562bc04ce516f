import type { MachineInfo } from './machine.js';
import { formatMs } from './measure.js';
import type { Figure, Ratio, Series } from './scenario.js';

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
  /** Set when the scenario failed; the other fields are then empty. */
  readonly error?: string;
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
  lines.push('| case | median | min | max | samples | throughput (median) | throughput (best) |');
  lines.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: |');
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
