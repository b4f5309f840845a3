#!/usr/bin/env node
// pnpm -s recover --data-dir DIR
// Opens a data directory written by `replay --engine`, recovers it (torn tails repaired, missing
// outbox events derived again) and prints the summary of the recovered state, with `commands`, the
// number of commands recovered; counters and tradeHash come from the outbox.
import { runMain, parseCli } from '../cli.js';
import { recoverEngine } from '../engine-replay.js';
import { BenchError } from '../errors.js';

runMain(async () => {
  let values;
  try {
    values = parseCli({ options: { 'data-dir': { type: 'string' } } }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', `${(err as Error).message}\nusage: recover --data-dir DIR`);
  }
  const dir = values['data-dir'];
  if (dir === undefined) throw new BenchError('BAD_ARGUMENT', 'usage: recover --data-dir DIR');
  if (dir === '') throw new BenchError('BAD_ARGUMENT', '--data-dir must name a directory, got an empty string');
  const { summary, commands, recovery } = await recoverEngine(dir);
  process.stdout.write(JSON.stringify({ ...summary, commands, recovery }) + '\n');
});
