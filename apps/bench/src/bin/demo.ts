#!/usr/bin/env node
// pnpm start (until the exchange server lands): generates a W1-shaped workload with the project's
// own generator and replays it through the order book, printing the summary and the figures.
import { intArg, runMain, parseCli } from '../cli.js';
import { BenchError } from '../errors.js';
import { generateText } from '../generator.js';
import { replay } from '../replay.js';
import { parseWorkload } from '../workload.js';

runMain(() => {
  let values;
  try {
    values = parseCli({ options: { ops: { type: 'string' }, seed: { type: 'string' } } }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', (err as Error).message);
  }
  const ops = intArg('ops', values.ops, 1_000_000);
  const seed = intArg('seed', values.seed, 42);
  process.stderr.write(`gx3: generating ${ops} operations (seed ${seed}) and replaying them through @gx3/orderbook\n`);
  const w = parseWorkload(generateText({ ops, seed }));
  const { summary, perf } = replay(w);
  process.stdout.write(JSON.stringify({ ...summary, perf }, null, 2) + '\n');
  process.stderr.write(
    `gx3: ${w.length} operations, ${summary.trades} fills, ${(perf.opsPerSec / 1e6).toFixed(2)} M ops/s, ` +
      `p50 ${perf.p50Ns} ns, p99 ${perf.p99Ns} ns, ${perf.gcCount} GCs during the timed replay\n`,
  );
});
