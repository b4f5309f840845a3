#!/usr/bin/env node
// pnpm -s replay FILE.csv [--warmup N] [--no-latency]
// Replays a workload through the order book and prints the reference summary plus `perf` as one
// JSON line. A bad line is reported with its line number (exit status 2).
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { intArg, runMain } from '../cli.js';
import { BenchError } from '../errors.js';
import { replay } from '../replay.js';
import { parseWorkload } from '../workload.js';

runMain(async () => {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { warmup: { type: 'string' }, 'no-latency': { type: 'boolean' } },
    });
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', (err as Error).message);
  }
  const file = parsed.positionals[0];
  if (file === undefined || parsed.positionals.length > 1) {
    throw new BenchError('BAD_ARGUMENT', 'usage: replay FILE.csv [--warmup N] [--no-latency]');
  }
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new BenchError('IO', `cannot read ${file}: ${(err as Error).message}`, { cause: err });
  }
  let workload;
  try {
    workload = parseWorkload(text);
  } catch (err) {
    if (err instanceof BenchError) throw new BenchError(err.code, `${file}: ${err.message}`, { cause: err });
    throw err;
  }
  const warmup = intArg('warmup', parsed.values.warmup, 3);
  if (warmup < 0) throw new BenchError('BAD_ARGUMENT', '--warmup must be >= 0');
  const { summary, perf } = replay(workload, { warmup, latency: parsed.values['no-latency'] !== true });
  process.stdout.write(JSON.stringify({ ...summary, perf }) + '\n');
});
