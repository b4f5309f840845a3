#!/usr/bin/env node
// pnpm --filter @gx3/bench bench:engine [--runs N] [--ops N] [--rate R] [--seconds S]
// The engine benchmark: W1 through the whole engine (closed loop: submit as fast as the mailbox
// takes, wait for the last command to be durable, count only accepted commands) with the binary
// codec in each durability mode and the JSON codec for contrast, each in fresh processes; recovery
// speed (reopening the batch run's data directory); and submit-to-durable latency at a fixed
// offered load (open loop: commands are due on a schedule and latency is measured from when each
// was due, so that queueing is not hidden).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { intArg, runMain, parseCli } from '../cli.js';
import { openLoop } from '../open-loop.js';
import { BenchError } from '../errors.js';
import { stat } from '../harness/measure.js';
import { generateText } from '../generator.js';

interface Row {
  name: string;
  values: number[];
  unit: string;
}


runMain(async () => {
  let values;
  try {
    values = parseCli({
      options: { runs: { type: 'string' }, ops: { type: 'string' }, rate: { type: 'string' }, seconds: { type: 'string' }, json: { type: 'boolean' } },
    }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', (err as Error).message);
  }
  const runs = intArg('runs', values.runs, 3);
  const ops = intArg('ops', values.ops, 1_000_000);
  const rate = intArg('rate', values.rate, 100_000);
  const seconds = intArg('seconds', values.seconds, 3);
  if (runs < 1 || ops < 1 || rate < 1 || seconds < 1) throw new BenchError('BAD_ARGUMENT', '--runs, --ops, --rate and --seconds must be positive');
  const replayJs = fileURLToPath(new URL('./replay.js', import.meta.url));
  const recoverJs = fileURLToPath(new URL('./recover.js', import.meta.url));
  const root = mkdtempSync(join(tmpdir(), 'gx3-engine-bench-'));
  const rows: Row[] = [];
  try {
    const file = join(root, 'w1.csv');
    writeFileSync(file, generateText({ ops }));
    const node = (args: string[]): Record<string, unknown> => {
      const p = spawnSync(process.execPath, args, { encoding: 'utf8', maxBuffer: 1 << 24 });
      if (p.status !== 0) throw new BenchError('IO', `${args.join(' ')} failed (status ${p.status}): ${p.stderr}`);
      return JSON.parse(p.stdout.trim().split('\n').pop() ?? '{}') as Record<string, unknown>;
    };
    const modes: [string, string, string][] = [
      ['binary', 'none', 'W1, binary, durability none'],
      ['binary', 'batch', 'W1, binary, durability batch'],
      ['binary', 'interval', 'W1, binary, durability interval (2 ms)'],
      ['json', 'batch', 'W1, json, durability batch'],
    ];
    for (const [codec, durability, name] of modes) {
      const rate: number[] = [];
      const p99: number[] = [];
      const recovery: number[] = [];
      for (let r = 0; r < runs; r++) {
        const dir = join(root, `${codec}-${durability}-${r}`);
        const out = node([replayJs, file, '--engine', '--data-dir', dir, '--durability', durability, '--codec', codec]);
        const perf = out.perf as { commandsPerSec: number; p99Us: number };
        rate.push(perf.commandsPerSec);
        p99.push(perf.p99Us);
        if (durability === 'batch') {
          const rec = node([recoverJs, '--data-dir', dir]);
          recovery.push((rec.commands as number) / ((rec.recovery as { millis: number }).millis / 1000));
        }
        rmSync(dir, { recursive: true, force: true });
        process.stderr.write(`${name} run ${r + 1}/${runs}: ${(perf.commandsPerSec / 1e3).toFixed(0)} k commands/s\n`);
      }
      rows.push({ name: `${name}: commands/s (closed loop)`, values: rate, unit: '' });
      rows.push({ name: `${name}: submit-to-durable p99 (closed loop, queueing included)`, values: p99, unit: 'us' });
      if (recovery.length > 0) rows.push({ name: `recovery of the ${codec} logs (open, repair, replay into a fresh book)`, values: recovery, unit: 'commands/s' });
    }

    // Open loop: `rate` commands per second for `seconds`, batch durability, in this process.
    const { latenciesUs: l, steadyLatenciesUs: st, refused } = await openLoop(join(root, 'open-loop'), rate, seconds);
    const q = (f: number, x: Float64Array = l): number => x[Math.min(x.length - 1, Math.floor(f * x.length))] as number;
    rows.push({ name: `open loop ${rate.toLocaleString('en-US')} commands/s offered for ${seconds} s, batch: submit-to-durable p50`, values: [q(0.5)], unit: 'us' });
    rows.push({ name: `  p99`, values: [q(0.99)], unit: 'us' });
    rows.push({ name: `  p99.9`, values: [q(0.999)], unit: 'us' });
    rows.push({ name: `  max (refused by backpressure: ${refused})`, values: [q(1)], unit: 'us' });
    rows.push({ name: `  after the first 0.5 s (warm-up): p50`, values: [q(0.5, st)], unit: 'us' });
    rows.push({ name: `  after the first 0.5 s: p99`, values: [q(0.99, st)], unit: 'us' });
    rows.push({ name: `  after the first 0.5 s: p99.9`, values: [q(0.999, st)], unit: 'us' });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  if (values.json === true) {
    process.stdout.write(JSON.stringify(rows.map((r) => ({ name: r.name, unit: r.unit, ...stat(r.values) })), null, 2) + '\n');
    return;
  }
  const lines = [`engine benchmark, node ${process.version}, ${runs} fresh processes per closed-loop line: median (min-max)`, '', '| measure | value |', '| --- | --- |'];
  for (const r of rows) {
    const s = stat(r.values);
    const f = (x: number): string => Math.round(x).toLocaleString('en-US');
    lines.push(`| ${r.name} | ${f(s.median)}${r.values.length > 1 ? ` (${f(s.min)}-${f(s.max)})` : ''} ${r.unit} |`);
  }
  process.stdout.write(lines.join('\n') + '\n');
});
