#!/usr/bin/env node
// pnpm --filter @gx3/bench bench [--runs N] [--ops N] [--workload w1,w2] [--json]
// The replay benchmark: generates W1 and W2 with the project's generator, replays each in N fresh
// processes (independent processes are the observations) and reports the median with min and max.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intArg, runMain, parseCli } from '../cli.js';
import { BenchError } from '../errors.js';
import { stat } from '../harness/measure.js';
import { generateText, type GeneratorOptions } from '../generator.js';
import type { ReplayPerf } from '../replay.js';

const WORKLOADS: Record<string, GeneratorOptions> = {
  w1: {},
  w2: { seed: 7, mix: [40, 25, 10, 5, 5, 5, 5, 5] },
};

runMain(() => {
  let values;
  try {
    values = parseCli({ options: { runs: { type: 'string' }, ops: { type: 'string' }, workload: { type: 'string' }, json: { type: 'boolean' } } }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', (err as Error).message);
  }
  const runs = intArg('runs', values.runs, 5);
  const ops = intArg('ops', values.ops, 1_000_000);
  if (runs < 1) throw new BenchError('BAD_ARGUMENT', '--runs must be >= 1');
  const names = (values.workload ?? 'w1,w2').split(',');
  for (const n of names) if (!(n in WORKLOADS)) throw new BenchError('BAD_ARGUMENT', `unknown workload ${n} (w1, w2)`);
  const replayJs = fileURLToPath(new URL('./replay.js', import.meta.url));
  const dir = mkdtempSync(join(tmpdir(), 'gx3-replay-bench-'));
  try {
    const report: Record<string, Record<'opsPerSec' | 'nsPerOp' | 'p50Ns' | 'p99Ns' | 'p999Ns' | 'gcCount' | 'allocBytesPerOp', { median: number; min: number; max: number }> & { runs: number }> = {};
    for (const name of names) {
      const file = join(dir, `${name}.csv`);
      writeFileSync(file, generateText({ ...WORKLOADS[name], ops }));
      const perfs: ReplayPerf[] = [];
      for (let r = 0; r < runs; r++) {
        const p = spawnSync(process.execPath, ['--expose-gc', replayJs, file], { encoding: 'utf8', maxBuffer: 1 << 24 });
        if (p.status !== 0) throw new BenchError('IO', `replay of ${name} failed (status ${p.status}): ${p.stderr}`);
        const line = JSON.parse(p.stdout.trim().split('\n').pop() ?? '{}') as { perf: ReplayPerf };
        perfs.push(line.perf);
        process.stderr.write(`${name} run ${r + 1}/${runs}: ${(line.perf.opsPerSec / 1e6).toFixed(2)} M ops/s\n`);
      }
      const statOf = (k: keyof ReplayPerf): { median: number; min: number; max: number } => stat(perfs.map((p) => p[k]));
      report[name] = {
        runs,
        opsPerSec: statOf('opsPerSec'),
        nsPerOp: statOf('nsPerOp'),
        p50Ns: statOf('p50Ns'),
        p99Ns: statOf('p99Ns'),
        p999Ns: statOf('p999Ns'),
        gcCount: statOf('gcCount'),
        allocBytesPerOp: statOf('allocBytesPerOp'),
      };
    }
    if (values.json === true) {
      process.stdout.write(JSON.stringify({ node: process.version, replay: report }, null, 2) + '\n');
      return;
    }
    const fmt = (s: { median: number; min: number; max: number }, scale = 1, digits = 0): string =>
      `${(s.median / scale).toFixed(digits)} (${(s.min / scale).toFixed(digits)}-${(s.max / scale).toFixed(digits)})`;
    const lines = [
      `replay benchmark, node ${process.version}, ${runs} fresh processes per workload: median (min-max)`,
      '',
      '| workload | M ops/s | ns/op | p50 ns | p99 ns | p99.9 ns | GCs | bytes/op |',
      '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ];
    for (const [name, r] of Object.entries(report)) {
      lines.push(
        `| ${name} | ${fmt(r.opsPerSec, 1e6, 2)} | ${fmt(r.nsPerOp, 1, 1)} | ${fmt(r.p50Ns)} | ${fmt(r.p99Ns)} | ${fmt(r.p999Ns)} | ${fmt(r.gcCount)} | ${fmt(r.allocBytesPerOp, 1, 2)} |`,
      );
    }
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
