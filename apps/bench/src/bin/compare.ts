#!/usr/bin/env node
// node apps/bench/dist/bin/compare.js [--orders N] [--seed S] [--json FILE] [--mix w1,...,w8]
// gx3's order book against orderbook-match-engine and nodejs-order-book, in one process, on a W1
// workload from the project's generator (--orders operations after the 10,000-order prefill,
// default 200,000). Prints a Markdown table (ops/s, ns/op, ratio, agreement) and the outcome each
// book reports; exits with status 1 when a book's outcome (fills, volume, cancels, rejects, final
// book) disagrees with gx3's. With --mix (the generator's weights), a book that cannot express one
// of the workload's command kinds is skipped and says why.
import { writeFile } from 'node:fs/promises';
import { intArg, runMain, parseCli } from '../cli.js';
import { DEFAULT_ORDERS, formatReport, runCompare } from '../compare/runner.js';
import { BenchError } from '../errors.js';

const USAGE = 'usage: compare [--orders N] [--seed S] [--json FILE] [--mix w1,...,w8]';

runMain(async () => {
  let values;
  try {
    values = parseCli({ options: { orders: { type: 'string' }, seed: { type: 'string' }, json: { type: 'string' }, mix: { type: 'string' } } }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', `${(err as Error).message}\n${USAGE}`);
  }
  const orders = intArg('orders', values.orders, DEFAULT_ORDERS);
  if (orders < 0) throw new BenchError('BAD_ARGUMENT', '--orders must be >= 0');
  const seed = intArg('seed', values.seed, 42);
  if (values.json !== undefined) {
    // Checked before the comparison runs: a path that cannot be written must not cost a whole run.
    try {
      await writeFile(values.json, '', { flag: 'a' });
    } catch (err) {
      throw new BenchError('IO', `cannot write ${values.json}: ${(err as Error).message}`, { cause: err });
    }
  }
  const mix = values.mix?.split(',').map((s) => (/^[0-9]+(\.[0-9]+)?$/.test(s) ? Number(s) : NaN));
  const report = runCompare({ orders, seed, ...(mix ? { mix } : {}), onProgress: (line) => process.stderr.write(`${line}\n`) });
  process.stdout.write(formatReport(report));
  if (values.json !== undefined) {
    try {
      await writeFile(values.json, JSON.stringify(report, null, 2) + '\n');
    } catch (err) {
      throw new BenchError('IO', `cannot write ${values.json}: ${(err as Error).message}`, { cause: err });
    }
  }
  if (!report.ok) {
    const bad = report.results.filter((r) => r.agrees === false).map((r) => r.name);
    process.stderr.write(`error: ${bad.join(', ')} disagree${bad.length === 1 ? 's' : ''} with ${report.reference} (see the table)\n`);
    process.exitCode = 1;
  }
});
