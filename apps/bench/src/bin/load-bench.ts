#!/usr/bin/env node
// pnpm --filter @gx3/bench bench:load [--seconds S] [--connections N] [--json FILE]
// The gateway's load suite: HTTP order entry (autocannon) against a bare fastify route that parses
// the same body, and WebSocket order entry (one order per frame, and frames of 100) against a bare
// `ws` server that acknowledges each order. Each server runs in its own process, started fresh for
// its measure; the load runs in this one. Every figure comes with p50/p99 latency and the gateway's
// as a ratio to the bare baseline measured in the same run.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { intArg, runMain, parseCli } from '../cli.js';
import { BenchError } from '../errors.js';
import { httpLoad, type LoadFigures } from '../load/http-load.js';
import { withLoadServer } from '../load/servers.js';
import { wsLoad } from '../load/ws-load.js';

interface Row {
  suite: string;
  bare: LoadFigures;
  gx3: LoadFigures;
  target: number;
  unit: string;
}

runMain(async () => {
  let values;
  try {
    values = parseCli({ options: { seconds: { type: 'string' }, connections: { type: 'string' }, json: { type: 'string' } } }).values;
  } catch (err) {
    throw new BenchError('BAD_ARGUMENT', (err as Error).message);
  }
  const seconds = intArg('seconds', values.seconds, 10);
  const connections = intArg('connections', values.connections, 64);
  if (seconds < 1 || connections < 1) throw new BenchError('BAD_ARGUMENT', '--seconds and --connections must be positive');
  const root = mkdtempSync(join(tmpdir(), 'gx3-load-'));
  const rows: Row[] = [];
  const measure = (kind: 'gx3' | 'bare-http' | 'bare-ws', run: (port: number) => Promise<LoadFigures>): Promise<LoadFigures> =>
    withLoadServer(kind, kind === 'gx3' ? join(root, `gx3-${rows.length}`) : undefined, run);
  try {
    const suites: { suite: string; bare: 'bare-http' | 'bare-ws'; unit: string; target: number; run: (port: number) => Promise<LoadFigures> }[] = [
      {
        suite: `HTTP POST /v1/orders, ${connections} connections (autocannon)`,
        bare: 'bare-http',
        unit: 'requests/s',
        target: 0.6,
        run: (port) => httpLoad(`http://127.0.0.1:${port}`, { connections, seconds }),
      },
      {
        suite: 'WebSocket, 1 order per frame, 4 connections x 64 frames in flight',
        bare: 'bare-ws',
        unit: 'orders/s',
        target: 0.6,
        run: (port) => wsLoad(`ws://127.0.0.1:${port}/v1/ws`, { connections: 4, window: 64, perFrame: 1, seconds }),
      },
      {
        suite: 'WebSocket, 100 orders per frame, 4 connections x 4 frames in flight',
        bare: 'bare-ws',
        unit: 'orders/s',
        target: 0.6,
        run: (port) => wsLoad(`ws://127.0.0.1:${port}/v1/ws`, { connections: 4, window: 4, perFrame: 100, seconds }),
      },
    ];
    for (const s of suites) {
      process.stderr.write(`${s.suite}: bare baseline...\n`);
      const bare = await measure(s.bare, s.run);
      process.stderr.write(`${s.suite}: gx3...\n`);
      const gx3 = await measure('gx3', s.run);
      rows.push({ suite: s.suite, bare, gx3, target: s.target, unit: s.unit });
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  const f = (x: number): string => Math.round(x).toLocaleString('en-US');
  const ms = (x: number): string => x.toFixed(x < 10 ? 2 : 1);
  const lines = [
    `gateway load suite, node ${process.version}, ${seconds} s per measure, servers in their own processes, load from this one (same 2 cores)`,
    '',
    '| suite | bare baseline | gx3 gateway | ratio (target) | gx3 errors |',
    '| --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.suite} | ${f(r.bare.perSec)} ${r.unit} (p50 ${ms(r.bare.p50Ms)} ms, p99 ${ms(r.bare.p99Ms)} ms) | ${f(r.gx3.perSec)} ${r.unit} (p50 ${ms(r.gx3.p50Ms)} ms, p99 ${ms(r.gx3.p99Ms)} ms) | ${(r.gx3.perSec / r.bare.perSec).toFixed(2)} (>= ${r.target}) | ${f(r.gx3.errors)} |`,
    ),
  ];
  process.stdout.write(lines.join('\n') + '\n');
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(rows, null, 2) + '\n');
});
