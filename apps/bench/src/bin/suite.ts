#!/usr/bin/env node
// node dist/bin/suite.js SUITE [--smoke]: runs one round of one benchmark suite in this process and
// prints its figures as one JSON line (the harness, bin/bench.js, runs each round in a fresh process).
import { suiteById, SUITES } from '../harness/registry.js';
import { runMain } from '../cli.js';
import { BenchError } from '../errors.js';

runMain(async () => {
  const [id, ...rest] = process.argv.slice(2);
  const suite = id === undefined ? undefined : suiteById(id);
  if (suite === undefined) throw new BenchError('BAD_ARGUMENT', `unknown suite ${String(id)}: ${SUITES.map((s) => s.id).join(', ')}`);
  const smoke = rest.includes('--smoke');
  const result = await suite.run(smoke);
  process.stdout.write(JSON.stringify(result) + '\n');
});
