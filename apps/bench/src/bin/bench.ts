#!/usr/bin/env node
// pnpm bench [--suites a,b] [--rounds N] [--smoke] [--baseline FILE] [--out DIR] [--fail-on-regression]
// pnpm bench --profile cpu|heap --suites ID     (one round under --cpu-prof / --heap-prof, then the top of the profile)
// pnpm bench compare [--orders N] ...           (gx3's order book against the npm order books)
// pnpm bench --list
//
// The benchmark harness: runs every suite (order book, codecs, WAL, publisher to each bus, engine in
// each durability mode and recovery, open-loop latency, server HTTP and WebSocket against bare
// baselines, the comparison with other order books), each round in a fresh process, and reports the
// median with min and max of every figure: to the terminal (Markdown), and as JSON, Markdown and an
// HTML report with charts in --out (default bench-results/). With --baseline, each figure is
// compared with an earlier run's JSON and moves beyond the noise are flagged.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { makeDirectory } from '@gx3/wal';
import { intArg, joinNegativeValues, runMain } from '../cli.js';
import { BenchError } from '../errors.js';
import { formatTop, topCpu, topHeap } from '../harness/profile.js';
import { SUITES } from '../harness/registry.js';
import { aggregate, compareWithBaseline, comparisonMarkdown, html, markdown, regressionsOf } from '../harness/report.js';
import type { BenchReport, SuiteDef, SuiteResult, SuiteRun } from '../harness/types.js';

const SUITE_JS = fileURLToPath(new URL('./suite.js', import.meta.url));
const COMPARE_JS = fileURLToPath(new URL('./compare.js', import.meta.url));
const DEFAULT_ROUNDS = 3;

/** Runs one round of a suite in a fresh node process; resolves with its figures. */
function runRound(def: SuiteDef, smoke: boolean, extraFlags: string[] = []): Promise<SuiteRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...(def.nodeFlags ?? []), ...extraFlags, SUITE_JS, def.id, ...(smoke ? ['--smoke'] : [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: process.env,
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      if (code !== 0) {
        reject(new BenchError('IO', `suite ${def.id} failed (exit ${String(code)}): ${err.trim().split('\n').slice(-5).join('\n')}`));
        return;
      }
      try {
        resolve(JSON.parse(out.trim().split('\n').pop() ?? '') as SuiteRun);
      } catch {
        reject(new BenchError('IO', `suite ${def.id} printed no result: ${out.slice(-500)}`));
      }
    });
  });
}

function clock(seconds: number): string {
  const s = Math.round(seconds);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** Progress on stderr: one line per step, rewritten in place on a terminal. */
class Progress {
  private readonly tty = process.stderr.isTTY;
  private readonly t0 = performance.now();
  constructor(private readonly steps: number) {}
  private done = 0;
  step(label: string, lastSeconds?: number): void {
    const elapsed = (performance.now() - this.t0) / 1000;
    const eta = this.done === 0 ? '' : `, about ${clock((elapsed / this.done) * (this.steps - this.done))} left`;
    const line = `[${this.done + 1}/${this.steps}] ${label} (elapsed ${clock(elapsed)}${eta}${lastSeconds === undefined ? '' : `; last ${lastSeconds.toFixed(1)} s`})`;
    if (this.tty) process.stderr.write(`\r\x1b[2K${line}`);
    else process.stderr.write(`${line}\n`);
  }
  advance(): void {
    this.done++;
  }
  end(): void {
    if (this.tty) process.stderr.write('\n');
  }
}

runMain(async () => {
  const argv = process.argv.slice(2);
  if (argv[0] === 'compare') {
    // Delegates to the compare tool, in its own process with its own arguments.
    const child = spawn(process.execPath, ['--expose-gc', COMPARE_JS, ...argv.slice(1)], { stdio: 'inherit' });
    const code = await new Promise<number>((resolve) => child.on('exit', (c) => { resolve(c ?? 1); }));
    process.exitCode = code;
    return;
  }
  let values;
  try {
    values = parseArgs({
      args: joinNegativeValues(argv, ['--suites', '--rounds', '--baseline', '--out', '--profile', '--top']),
      options: {
        suites: { type: 'string' },
        rounds: { type: 'string' },
        smoke: { type: 'boolean' },
        baseline: { type: 'string' },
        out: { type: 'string' },
        profile: { type: 'string' },
        top: { type: 'string' },
        list: { type: 'boolean' },
        'fail-on-regression': { type: 'boolean' },
      },
    }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', (err as Error).message);
  }
  if (values.list === true) {
    for (const s of SUITES) process.stdout.write(`${s.id.padEnd(20)} ${s.title}\n`);
    return;
  }
  const ids = values.suites?.split(',').map((s) => s.trim()) ?? SUITES.map((s) => s.id);
  const defs = ids.map((id) => {
    const d = SUITES.find((s) => s.id === id);
    if (d === undefined) throw new BenchError('BAD_ARGUMENT', `unknown suite ${id} (pnpm bench --list)`);
    return d;
  });
  const smoke = values.smoke === true;
  const rounds = values.rounds === undefined ? undefined : intArg('rounds', values.rounds, DEFAULT_ROUNDS);
  if (rounds !== undefined && rounds < 1) throw new BenchError('BAD_ARGUMENT', '--rounds must be >= 1');
  // The baseline is read and checked before the suites run (a missing one must not cost a whole run).
  let base: BenchReport | undefined;
  if (values.baseline !== undefined) {
    try {
      base = JSON.parse(fs.readFileSync(values.baseline, 'utf8')) as BenchReport;
    } catch (err) {
      throw new BenchError('IO', `cannot read the baseline ${values.baseline}: ${(err as Error).message}`, { cause: err });
    }
    if (base.version !== 1 || !Array.isArray(base.suites)) throw new BenchError('BAD_ARGUMENT', `${values.baseline} is not a pnpm bench results file`);
  }
  const outDir = path.resolve(values.out ?? 'bench-results');
  makeDirectory(outDir);

  if (values.profile !== undefined) {
    const kind = values.profile;
    if (kind !== 'cpu' && kind !== 'heap') throw new BenchError('BAD_ARGUMENT', '--profile must be cpu or heap');
    const top = intArg('top', values.top, 25);
    for (const def of defs) {
      const dir = path.join(outDir, 'profiles', `${def.id}-${kind}-${Date.now()}`);
      makeDirectory(dir);
      process.stderr.write(`${def.id}: one round under --${kind}-prof...\n`);
      await runRound(def, smoke, kind === 'cpu' ? ['--cpu-prof', `--cpu-prof-dir=${dir}`] : ['--heap-prof', `--heap-prof-dir=${dir}`]);
      const files = fs.readdirSync(dir).filter((f) => f.endsWith(kind === 'cpu' ? '.cpuprofile' : '.heapprofile'));
      for (const f of files) {
        const file = path.join(dir, f);
        process.stdout.write(`\n${def.id}: ${file}\n`);
        process.stdout.write(formatTop(kind, kind === 'cpu' ? topCpu(file, top) : topHeap(file, top)));
      }
      if (def.layer === 'server') process.stdout.write('(the servers run in their own processes, not profiled here: profile bin/load-server.js directly)\n');
    }
    return;
  }

  const plan = defs.map((d) => ({ def: d, rounds: smoke ? 1 : (rounds ?? d.rounds ?? DEFAULT_ROUNDS) }));
  const progress = new Progress(plan.reduce((a, p) => a + p.rounds, 0));
  const report: BenchReport = {
    version: 1,
    startedAt: new Date().toISOString(),
    node: process.version,
    machine: { cpus: os.cpus().length, model: os.cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.release()}` },
    smoke,
    suites: [] as SuiteResult[],
  };
  let last: number | undefined;
  for (const { def, rounds: n } of plan) {
    const runs: SuiteRun[] = [];
    const t0 = performance.now();
    for (let r = 0; r < n; r++) {
      progress.step(`${def.id} round ${r + 1}/${n}`, last);
      const t = performance.now();
      const run = await runRound(def, smoke);
      last = (performance.now() - t) / 1000;
      progress.advance();
      runs.push(run);
      if (run.skipped !== undefined) {
        for (let k = r + 1; k < n; k++) progress.advance();
        break;
      }
    }
    report.suites.push(aggregate(def, runs, (performance.now() - t0) / 1000));
  }
  progress.end();

  let comparison: ReturnType<typeof compareWithBaseline> = [];
  if (base !== undefined) {
    comparison = compareWithBaseline(report, base);
  }
  const regressions = regressionsOf(comparison);
  const md = markdown(report, regressions);
  fs.writeFileSync(path.join(outDir, 'results.json'), JSON.stringify(report, null, 2) + '\n');
  fs.writeFileSync(path.join(outDir, 'results.md'), md + (comparison.length > 0 ? `\n## Against ${values.baseline ?? ''}\n\n${comparisonMarkdown(comparison)}` : ''));
  fs.writeFileSync(path.join(outDir, 'report.html'), html(report, comparison));
  process.stdout.write(md + '\n');
  if (comparison.length > 0) {
    process.stdout.write(`\n## Against ${values.baseline ?? ''}\n\n${comparisonMarkdown(comparison)}`);
    process.stdout.write(regressions.length === 0 ? '\nno regression beyond the noise\n' : `\n${regressions.length} regression(s) beyond the noise: ${regressions.map((r) => `${r.suite}.${r.metric}`).join(', ')}\n`);
  }
  process.stderr.write(`results: ${path.join(outDir, 'results.json')}, ${path.join(outDir, 'results.md')}, ${path.join(outDir, 'report.html')}\n`);
  if (regressions.length > 0 && values['fail-on-regression'] === true) process.exitCode = 3;
});
