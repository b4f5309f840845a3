// The harness's reports: the aggregate of rounds (median, min, max per metric), a Markdown table,
// a self-contained HTML page with charts (throughput per suite, latency percentiles; inline SVG,
// no scripts or downloads), and the comparison with an earlier run's JSON.

import type { BenchReport, Metric, Stat, SuiteResult, SuiteRun } from './types.js';
import { stat } from './measure.js';

/** Folds the rounds of one suite into per-metric statistics. */
export function aggregate(def: { id: string; layer: string; title: string }, runs: readonly SuiteRun[], seconds: number): SuiteResult {
  const skipped = runs.find((r) => r.skipped !== undefined)?.skipped;
  // The first round's notes (later rounds say the same, up to their own small figures).
  const notes = runs[0]?.notes ?? [];
  const byName = new Map<string, { m: Metric; values: number[] }>();
  for (const r of runs) {
    for (const m of r.metrics) {
      const e = byName.get(m.name) ?? { m, values: [] };
      e.values.push(m.value);
      byName.set(m.name, e);
    }
  }
  const metrics = [...byName.values()].map(({ m, values }) => {
    const { value: _value, ...rest } = m;
    return { ...rest, ...stat(values), values };
  });
  return { id: def.id, layer: def.layer, title: def.title, rounds: runs.length, ...(skipped === undefined ? {} : { skipped }), notes, metrics, seconds };
}

export function fmt(x: number): string {
  const a = Math.abs(x);
  if (a >= 1000) return Math.round(x).toLocaleString('en-US');
  if (a >= 100) return x.toFixed(0);
  if (a >= 10) return x.toFixed(1);
  if (a === 0) return '0';
  return x.toFixed(2);
}

function cell(s: Stat, unit: string): string {
  const range = s.min === s.max ? '' : ` (${fmt(s.min)}-${fmt(s.max)})`;
  return `${fmt(s.median)}${range}${unit === '' ? '' : ` ${unit}`}`;
}

export function markdown(report: BenchReport, regressions: readonly Regression[] = []): string {
  const lines = [
    `# gx3 benchmarks`,
    '',
    `${report.startedAt}, node ${report.node}, ${report.machine.cpus} x ${report.machine.model}, ${report.machine.memoryGiB} GiB${report.smoke ? ' (smoke settings: small sizes, not figures)' : ''}`,
    '',
    'Each suite runs in fresh processes, one per round; figures are the median with min-max over rounds.',
    '',
  ];
  for (const s of report.suites) {
    lines.push(`## ${s.id}: ${s.title}`, '');
    if (s.skipped !== undefined) {
      lines.push(`skipped: ${s.skipped}`, '');
      continue;
    }
    lines.push(`${s.rounds} round${s.rounds === 1 ? '' : 's'}, ${s.seconds.toFixed(0)} s. ${s.notes.join(' ')}`, '', '| metric | median (min-max) |', '| --- | --- |');
    for (const m of s.metrics) {
      const r = regressions.find((x) => x.suite === s.id && x.metric === m.name);
      lines.push(`| ${m.name} | ${cell(m, m.unit)}${r ? ` **regression: ${changeText(r.change)} vs baseline**` : ''} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

// ---- baseline ----------------------------------------------------------------------------------

export interface Regression {
  suite: string;
  metric: string;
  baseline: number;
  current: number;
  /** Relative change of the median (positive: larger). */
  change: number;
  /** The noise allowance it exceeded. */
  noise: number;
}

export interface Comparison {
  suite: string;
  metric: string;
  unit: string;
  baseline: number;
  current: number;
  change: number;
  noise: number;
  verdict: 'better' | 'worse' | 'same';
}

/**
 * Compares each metric's median with the baseline's. A move counts only beyond the noise: the
 * larger of 5% and each run's own spread (max - min over median), so a noisy metric needs a bigger
 * move to be flagged.
 */
export function compareWithBaseline(current: BenchReport, baseline: BenchReport): Comparison[] {
  const out: Comparison[] = [];
  for (const s of current.suites) {
    const b = baseline.suites.find((x) => x.id === s.id);
    if (b === undefined || s.skipped !== undefined || b.skipped !== undefined) continue;
    for (const m of s.metrics) {
      const bm = b.metrics.find((x) => x.name === m.name);
      if (bm === undefined) continue;
      if (bm.median === 0) {
        // From zero (no GC, no allocation in the baseline): any move is one, and a relative change
        // has no size (shown as "from 0").
        const change = m.median === 0 ? 0 : Math.sign(m.median) * Number.POSITIVE_INFINITY;
        const up = m.median > 0;
        const verdict = m.median === 0 ? 'same' : (m.better === 'higher') === up ? 'better' : 'worse';
        out.push({ suite: s.id, metric: m.name, unit: m.unit, baseline: 0, current: m.median, change, noise: 0, verdict });
        continue;
      }
      const change = (m.median - bm.median) / Math.abs(bm.median);
      const spread = (x: Stat): number => (x.median === 0 ? 0 : (x.max - x.min) / Math.abs(x.median));
      const noise = Math.max(0.05, spread(m), spread(bm));
      const worse = m.better === 'higher' ? change < -noise : change > noise;
      const better = m.better === 'higher' ? change > noise : change < -noise;
      out.push({ suite: s.id, metric: m.name, unit: m.unit, baseline: bm.median, current: m.median, change, noise, verdict: worse ? 'worse' : better ? 'better' : 'same' });
    }
  }
  return out;
}

/** A relative change as text: `+12.3%`, or `from 0` when the baseline was zero. */
function changeText(change: number): string {
  return Number.isFinite(change) ? `${change > 0 ? '+' : ''}${(change * 100).toFixed(1)}%` : 'from 0';
}

export function regressionsOf(c: readonly Comparison[]): Regression[] {
  return c.filter((x) => x.verdict === 'worse').map(({ suite, metric, baseline, current, change, noise }) => ({ suite, metric, baseline, current, change, noise }));
}

export function comparisonMarkdown(c: readonly Comparison[]): string {
  const lines = ['| suite | metric | baseline | now | change | noise allowance | verdict |', '| --- | --- | --- | --- | --- | --- | --- |'];
  for (const x of c) {
    const change = changeText(x.change);
    lines.push(`| ${x.suite} | ${x.metric} | ${fmt(x.baseline)} | ${fmt(x.current)} | ${change} | ${(x.noise * 100).toFixed(1)}% | ${x.verdict === 'worse' ? '**worse**' : x.verdict} |`);
  }
  return lines.join('\n') + '\n';
}

// ---- HTML --------------------------------------------------------------------------------------

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

interface Bar {
  label: string;
  stat: Stat;
  unit: string;
}

/** A horizontal bar chart with min-max whiskers, on a log scale when the values span decades. */
function barChart(title: string, bars: readonly Bar[]): string {
  if (bars.length === 0) return '';
  const width = 900;
  const labelW = 330;
  const rowH = 26;
  const height = bars.length * rowH + 40;
  const maxV = Math.max(...bars.map((b) => b.stat.max), 1e-9);
  const minV = Math.min(...bars.map((b) => Math.max(b.stat.min, 1e-9)));
  const log = maxV / minV > 100;
  const scale = (v: number): number => {
    const w = width - labelW - 140;
    if (!log) return (v / maxV) * w;
    const lo = Math.log10(minV) - 0.3;
    return Math.max(2, ((Math.log10(Math.max(v, 1e-9)) - lo) / (Math.log10(maxV) - lo)) * w);
  };
  const rows = bars.map((b, i) => {
    const y = 30 + i * rowH;
    const x0 = labelW;
    return [
      `<text x="${labelW - 8}" y="${y + 15}" text-anchor="end" class="l">${esc(b.label)}</text>`,
      `<rect x="${x0}" y="${y + 4}" width="${scale(b.stat.median).toFixed(1)}" height="16" class="b"/>`,
      `<line x1="${(x0 + scale(b.stat.min)).toFixed(1)}" x2="${(x0 + scale(b.stat.max)).toFixed(1)}" y1="${y + 12}" y2="${y + 12}" class="w"/>`,
      `<text x="${(x0 + scale(b.stat.max) + 6).toFixed(1)}" y="${y + 16}" class="v">${esc(`${fmt(b.stat.median)} ${b.unit}`)}</text>`,
    ].join('');
  });
  return `<figure><figcaption>${esc(title)}${log ? ' (log scale)' : ''}</figcaption><svg viewBox="0 0 ${width} ${height}" width="100%" role="img">${rows.join('')}</svg></figure>`;
}

export function html(report: BenchReport, comparison: readonly Comparison[] = []): string {
  const ran = report.suites.filter((s) => s.skipped === undefined);
  const throughput: Bar[] = [];
  const latency: Bar[] = [];
  for (const s of ran) {
    for (const m of s.metrics) {
      if (m.kind === 'throughput') throughput.push({ label: `${s.id} ${m.name}`, stat: m, unit: m.unit });
      if (m.kind === 'latency') latency.push({ label: `${s.id} ${m.name}`, stat: m, unit: m.unit });
    }
  }
  const byUnit = new Map<string, Bar[]>();
  for (const b of latency) byUnit.set(b.unit, [...(byUnit.get(b.unit) ?? []), b]);
  const tables = report.suites
    .map((s) => {
      const head = `<h3 id="${esc(s.id)}">${esc(s.id)}: ${esc(s.title)}</h3>`;
      if (s.skipped !== undefined) return `${head}<p class="skip">skipped: ${esc(s.skipped)}</p>`;
      const rows = s.metrics
        .map((m) => {
          const c = comparison.find((x) => x.suite === s.id && x.metric === m.name);
          const verdict = c ? `<td class="${c.verdict}">${changeText(c.change)} (${c.verdict})</td>` : comparison.length > 0 ? '<td></td>' : '';
          return `<tr><td>${esc(m.name)}</td><td>${esc(fmt(m.median))}</td><td>${esc(fmt(m.min))}</td><td>${esc(fmt(m.max))}</td><td>${esc(m.unit)}</td>${verdict}</tr>`;
        })
        .join('');
      return `${head}<p>${s.rounds} round(s), ${s.seconds.toFixed(0)} s. ${esc(s.notes.join(' '))}</p><table><tr><th>metric</th><th>median</th><th>min</th><th>max</th><th>unit</th>${comparison.length > 0 ? '<th>vs baseline</th>' : ''}</tr>${rows}</table>`;
    })
    .join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>gx3 benchmarks ${esc(report.startedAt)}</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}
.b{fill:#4a7bd0}.w{stroke:#222;stroke-width:1.5}.l{font-size:12px}.v{font-size:12px;fill:#333}
figure{margin:1em 0 2em}figcaption{font-weight:600;margin-bottom:.3em}.worse{color:#b00;font-weight:600}.better{color:#070}.skip{color:#777}
</style></head><body>
<h1>gx3 benchmarks</h1>
<p>${esc(report.startedAt)}, node ${esc(report.node)}, ${report.machine.cpus} x ${esc(report.machine.model)}, ${report.machine.memoryGiB} GiB${report.smoke ? ' <b>(smoke settings: small sizes, not figures)</b>' : ''}.
Each suite runs in fresh processes, one per round; bars are medians, whiskers min-max.</p>
${barChart('Throughput per suite', throughput)}
${[...byUnit].map(([unit, bars]) => barChart(`Latency percentiles (${unit})`, bars)).join('\n')}
<h2>All figures</h2>
${tables}
</body></html>
`;
}
