// The benchmark harness: aggregation of rounds, the baseline check (a move beyond the noise is a
// regression, within it is not, and the direction of "better" is respected), the profile readers,
// and the harness end to end on two fast suites with smoke settings (JSON, Markdown and HTML written).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { stat } from '../src/harness/measure.js';
import { topCpu, topHeap } from '../src/harness/profile.js';
import { aggregate, compareWithBaseline, html, markdown, regressionsOf } from '../src/harness/report.js';
import type { BenchReport, SuiteRun } from '../src/harness/types.js';
import { BENCH_DIR, runNode, tempDir } from './helpers.js';

const BENCH_JS = path.join(BENCH_DIR, 'dist/bin/bench.js');

function report(suites: BenchReport['suites']): BenchReport {
  return { version: 1, startedAt: '2026-01-01T00:00:00.000Z', node: 'v20', machine: { cpus: 2, model: 'x', memoryGiB: 1, platform: 'linux' }, smoke: false, suites };
}

function runs(values: number[], latency: number[]): SuiteRun[] {
  return values.map((v, i) => ({
    metrics: [
      { name: 'opsPerSec', value: v, unit: 'ops/s', better: 'higher', kind: 'throughput' },
      { name: 'p99Us', value: latency[i] as number, unit: 'us', better: 'lower', kind: 'latency' },
    ],
  }));
}

describe('stat and aggregate', () => {
  it('median of odd and even counts, min and max', () => {
    expect(stat([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3 });
    expect(stat([4, 1, 3, 2])).toEqual({ median: 2.5, min: 1, max: 4 });
    expect(stat([])).toEqual({ median: 0, min: 0, max: 0 });
  });

  it('folds rounds per metric and keeps the skip reason', () => {
    const r = aggregate({ id: 's', layer: 'wal', title: 't' }, runs([10, 30, 20], [5, 6, 7]), 3);
    expect(r.metrics.find((m) => m.name === 'opsPerSec')).toMatchObject({ median: 20, min: 10, max: 30, values: [10, 30, 20] });
    const skipped = aggregate({ id: 'n', layer: 'outbox', title: 't' }, [{ metrics: [], skipped: 'no NATS' }], 0);
    expect(skipped.skipped).toBe('no NATS');
    expect(markdown(report([skipped]))).toContain('skipped: no NATS');
  });
});

describe('the baseline check', () => {
  const base = report([aggregate({ id: 's', layer: 'engine', title: 't' }, runs([100, 101, 99], [50, 51, 49]), 1)]);

  it('flags a drop in throughput and a rise in latency beyond the noise', () => {
    const now = report([aggregate({ id: 's', layer: 'engine', title: 't' }, runs([80, 81, 79], [70, 71, 69]), 1)]);
    const c = compareWithBaseline(now, base);
    expect(c.map((x) => [x.metric, x.verdict])).toEqual([
      ['opsPerSec', 'worse'],
      ['p99Us', 'worse'],
    ]);
    expect(regressionsOf(c).map((r) => r.metric)).toEqual(['opsPerSec', 'p99Us']);
    expect(markdown(now, regressionsOf(c))).toContain('regression');
  });

  it('does not flag a move within 5%, and calls an improvement better', () => {
    const now = report([aggregate({ id: 's', layer: 'engine', title: 't' }, runs([103, 104, 102], [30, 31, 29]), 1)]);
    const c = compareWithBaseline(now, base);
    expect(c.map((x) => [x.metric, x.verdict])).toEqual([
      ['opsPerSec', 'same'],
      ['p99Us', 'better'],
    ]);
    expect(regressionsOf(c)).toEqual([]);
  });

  it('widens the allowance to a noisy run: a 20% drop within a 40% spread is not flagged', () => {
    const now = report([aggregate({ id: 's', layer: 'engine', title: 't' }, runs([80, 60, 100], [50, 50, 50]), 1)]);
    expect(compareWithBaseline(now, base).find((x) => x.metric === 'opsPerSec')?.verdict).toBe('same');
  });
});

describe('the HTML report', () => {
  it('is one self-contained page with a throughput chart and a latency chart, and escapes text', () => {
    const r = report([aggregate({ id: 'a<b', layer: 'engine', title: 'x & y' }, runs([1000, 1100], [5, 6]), 1)]);
    const page = html(r);
    expect(page).toContain('<svg');
    expect(page).toContain('Throughput per suite');
    expect(page).toContain('Latency percentiles (us)');
    expect(page).toContain('a&lt;b');
    expect(page).not.toContain('<script');
    expect(page).not.toMatch(/src="http/);
  });
});

describe('profile readers', () => {
  it('rank functions by self time and allocation sites by bytes', async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const cpu = path.join(dir, 'a.cpuprofile');
      const frame = (functionName: string, lineNumber: number) => ({ functionName, url: 'file:///x/dist/a.js', lineNumber, columnNumber: 0, scriptId: '1' });
      fs.writeFileSync(
        cpu,
        JSON.stringify({
          nodes: [
            { id: 1, callFrame: frame('(root)', 0), children: [2, 3] },
            { id: 2, callFrame: frame('hot', 9), children: [] },
            { id: 3, callFrame: frame('cold', 19), children: [] },
          ],
          samples: [2, 2, 2, 3],
          timeDeltas: [1000, 1000, 1000, 1000],
        }),
      );
      const top = topCpu(cpu, 5);
      expect(top.rows[0]).toMatchObject({ name: 'hot dist/a.js:10', self: 3, share: 0.75 });
      expect(top.total).toBe(4);
      const heap = path.join(dir, 'a.heapprofile');
      fs.writeFileSync(
        heap,
        JSON.stringify({ head: { callFrame: frame('(root)', 0), selfSize: 0, children: [{ callFrame: frame('alloc', 4), selfSize: 4096, children: [{ callFrame: frame('small', 1), selfSize: 1024, children: [] }] }] } }),
      );
      expect(topHeap(heap, 5).rows.map((r) => [r.name, r.self])).toEqual([
        ['alloc dist/a.js:5', 4096],
        ['small dist/a.js:2', 1024],
      ]);
    } finally {
      await cleanup();
    }
  });
});

describe('pnpm bench, end to end (smoke settings)', () => {
  it('runs suites in fresh processes and writes JSON, Markdown and HTML; refuses an unknown suite', { timeout: 60_000 }, async () => {
    const { dir, cleanup } = await tempDir();
    try {
      const r = await runNode([BENCH_JS, '--smoke', '--suites', 'book-w1,codecs', '--out', dir]);
      expect(r.status, r.stderr).toBe(0);
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'results.json'), 'utf8')) as BenchReport;
      expect(json.suites.map((s) => s.id)).toEqual(['book-w1', 'codecs']);
      const ops = json.suites[0]?.metrics.find((m) => m.name === 'opsPerSec');
      expect(ops?.median).toBeGreaterThan(0);
      expect(fs.readFileSync(path.join(dir, 'results.md'), 'utf8')).toContain('## book-w1');
      expect(fs.readFileSync(path.join(dir, 'report.html'), 'utf8')).toContain('<svg');
      expect(r.stderr).toMatch(/\[1\/2\] book-w1 round 1\/1/);
      // Against the first run as the baseline: the comparison is printed (without --fail-on-regression the exit status stays 0).
      const again = await runNode([BENCH_JS, '--smoke', '--suites', 'book-w1', '--out', path.join(dir, 'b'), '--baseline', path.join(dir, 'results.json')]);
      expect(again.status, again.stderr).toBe(0);
      expect(again.stdout).toContain(`## Against ${path.join(dir, 'results.json')}`);
      expect(again.stdout).toMatch(/\| book-w1 \| opsPerSec \|/);
      const bad = await runNode([BENCH_JS, '--suites', 'nope']);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('unknown suite nope');
    } finally {
      await cleanup();
    }
  });
});
