#!/usr/bin/env node
// pnpm -s replay FILE.csv [--warmup N] [--no-latency]
// pnpm -s replay FILE.csv --engine --data-dir DIR [--durability none|batch|interval] [--codec binary|json]
// Replays a workload through the order book (or, with --engine, through the whole engine) and
// prints the reference summary plus `perf` as one JSON line. A bad line is reported with its line
// number (exit status 2).
import { readFile } from 'node:fs/promises';
import { intArg, runMain, parseCli } from '../cli.js';
import { replayEngine } from '../engine-replay.js';
import { BenchError } from '../errors.js';
import { replay } from '../replay.js';
import { parseWorkload } from '../workload.js';

const USAGE =
  'usage: replay FILE.csv [--warmup N] [--no-latency]\n       replay FILE.csv --engine --data-dir DIR [--durability none|batch|interval] [--codec binary|json]';

runMain(async () => {
  let parsed;
  try {
    parsed = parseCli({
      allowPositionals: true,
      options: {
        warmup: { type: 'string' },
        'no-latency': { type: 'boolean' },
        engine: { type: 'boolean' },
        'data-dir': { type: 'string' },
        durability: { type: 'string' },
        codec: { type: 'string' },
      },
    });
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', `${(err as Error).message}\n${USAGE}`);
  }
  const file = parsed.positionals[0];
  if (file === undefined || parsed.positionals.length > 1) throw new BenchError('BAD_ARGUMENT', USAGE);
  const v = parsed.values;
  const engine = v.engine === true;
  if (!engine && (v['data-dir'] !== undefined || v.durability !== undefined || v.codec !== undefined)) {
    throw new BenchError('BAD_ARGUMENT', `--data-dir, --durability and --codec go with --engine\n${USAGE}`);
  }
  if (engine && v['data-dir'] === undefined) throw new BenchError('BAD_ARGUMENT', `--engine needs --data-dir DIR\n${USAGE}`);
  if (engine && (v.warmup !== undefined || v['no-latency'] !== undefined)) {
    throw new BenchError('BAD_ARGUMENT', '--warmup and --no-latency go with the order-book replay, not --engine');
  }
  if (v.durability !== undefined && !['none', 'batch', 'interval'].includes(v.durability)) {
    throw new BenchError('BAD_ARGUMENT', `--durability must be none, batch or interval, got ${v.durability}`);
  }
  if (v.codec !== undefined && !['binary', 'json'].includes(v.codec)) throw new BenchError('BAD_ARGUMENT', `--codec must be binary or json, got ${v.codec}`);
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
  if (engine) {
    const { summary, perf } = await replayEngine(workload, {
      dataDir: v['data-dir'] as string,
      ...(v.durability === undefined ? {} : { durability: v.durability as 'none' | 'batch' | 'interval' }),
      ...(v.codec === undefined ? {} : { codec: v.codec as 'binary' | 'json' }),
    });
    process.stdout.write(JSON.stringify({ ...summary, perf }) + '\n');
    return;
  }
  const warmup = intArg('warmup', v.warmup, 3);
  if (warmup < 0) throw new BenchError('BAD_ARGUMENT', '--warmup must be >= 0');
  const { summary, perf } = replay(workload, { warmup, latency: v['no-latency'] !== true });
  process.stdout.write(JSON.stringify({ ...summary, perf }) + '\n');
});
