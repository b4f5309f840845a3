// Server suites: the gateway's HTTP and WebSocket order entry, each against its bare baseline
// measured in the same run (a fastify route that parses the same body; a `ws` server that
// acknowledges each order). Servers run in their own processes; the load runs in the suite's.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { httpLoad, type LoadFigures } from '../load/http-load.js';
import { withLoadServer } from '../load/servers.js';
import { wsLoad } from '../load/ws-load.js';
import type { Metric, SuiteDef } from './types.js';

function pairSuite(id: string, title: string, bare: 'bare-http' | 'bare-ws', unit: string, load: (port: number, seconds: number) => Promise<LoadFigures>): SuiteDef {
  return {
    id,
    layer: 'server',
    title,
    async run(smoke) {
      const seconds = smoke ? 1 : 5;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gx3-bench-server-'));
      try {
        const b = await withLoadServer(bare, undefined, (port) => load(port, seconds));
        const g = await withLoadServer('gx3', path.join(dir, 'data'), (port) => load(port, seconds));
        const metrics: Metric[] = [
          { name: 'gx3PerSec', value: g.perSec, unit, better: 'higher', kind: 'throughput' },
          { name: 'gx3P50Ms', value: g.p50Ms, unit: 'ms', better: 'lower', kind: 'latency' },
          { name: 'gx3P99Ms', value: g.p99Ms, unit: 'ms', better: 'lower', kind: 'latency' },
          { name: 'barePerSec', value: b.perSec, unit, better: 'higher' },
          { name: 'bareP50Ms', value: b.p50Ms, unit: 'ms', better: 'lower' },
          { name: 'bareP99Ms', value: b.p99Ms, unit: 'ms', better: 'lower' },
          { name: 'ratio', value: b.perSec === 0 ? 0 : g.perSec / b.perSec, unit: 'x bare', better: 'higher' },
          { name: 'gx3Errors', value: g.errors, unit: '', better: 'lower' },
        ];
        return { metrics, notes: [`${seconds} s per server; gx3 with batch durability (every answer waits for its fdatasync)`] };
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}

export const SERVER_SUITES: SuiteDef[] = [
  pairSuite('server-http-64', 'server: HTTP POST /v1/orders, 64 connections (autocannon) vs a bare fastify route', 'bare-http', 'requests/s', (port, seconds) =>
    httpLoad(`http://127.0.0.1:${port}`, { connections: 64, seconds }),
  ),
  pairSuite('server-http-256', 'server: HTTP POST /v1/orders, 256 connections (autocannon) vs a bare fastify route', 'bare-http', 'requests/s', (port, seconds) =>
    httpLoad(`http://127.0.0.1:${port}`, { connections: 256, seconds }),
  ),
  pairSuite('server-ws-1', 'server: WebSocket, 1 order per frame, 4 connections x 64 frames in flight vs a bare ws server', 'bare-ws', 'orders/s', (port, seconds) =>
    wsLoad(`ws://127.0.0.1:${port}/v1/ws`, { connections: 4, window: 64, perFrame: 1, seconds }),
  ),
  pairSuite('server-ws-100', 'server: WebSocket, 100 orders per frame, 4 connections x 4 frames in flight vs a bare ws server', 'bare-ws', 'orders/s', (port, seconds) =>
    wsLoad(`ws://127.0.0.1:${port}/v1/ws`, { connections: 4, window: 4, perFrame: 100, seconds }),
  ),
];
