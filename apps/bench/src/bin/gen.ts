#!/usr/bin/env node
// pnpm -s gen [--ops N] [--prefill N] [--seed S] [--band TICKS] [--cross TICKS] [--maxqty Q] [--mix w1,...,w8]
// Writes a deterministic workload CSV to stdout.
import { once } from 'node:events';
import { intArg, runMain, parseCli } from '../cli.js';
import { BenchError } from '../errors.js';
import { generateLines } from '../generator.js';

runMain(async () => {
  let args;
  try {
    args = parseCli({
      options: {
        ops: { type: 'string' },
        prefill: { type: 'string' },
        seed: { type: 'string' },
        band: { type: 'string' },
        cross: { type: 'string' },
        maxqty: { type: 'string' },
        mix: { type: 'string' },
      },
    }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', (err as Error).message);
  }
  const mix = args.mix?.split(',').map((s) => (/^[0-9]+(\.[0-9]+)?$/.test(s) ? Number(s) : NaN));
  // Written as it is made, 10,000 lines a chunk, waiting for the pipe when it is full: a workload
  // of any size runs in the generator's own memory.
  let lines: string[] = [];
  for (const line of generateLines({
    ops: intArg('ops', args.ops, 1_000_000),
    prefill: intArg('prefill', args.prefill, 10_000),
    seed: intArg('seed', args.seed, 42),
    band: intArg('band', args.band, 50),
    cross: intArg('cross', args.cross, 5),
    maxQty: intArg('maxqty', args.maxqty, 100),
    ...(mix ? { mix } : {}),
  })) {
    lines.push(line);
    if (lines.length === 10_000) {
      if (!process.stdout.write(lines.join('\n') + '\n')) await once(process.stdout, 'drain');
      lines = [];
    }
  }
  if (lines.length > 0 && !process.stdout.write(lines.join('\n') + '\n')) await once(process.stdout, 'drain');
});
