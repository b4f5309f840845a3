// HTTP order entry under autocannon: closed loop, `connections` keep-alive connections each with
// one request in flight, cycling through the load suite's order bodies. Counts only 2xx answers.

import autocannon from 'autocannon';
import { LOAD_KEY, loadBodies } from './orders.js';

export interface LoadFigures {
  /** Successful (2xx) requests or acknowledged orders per second. */
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Requests or orders answered with an error. */
  errors: number;
  total: number;
}

export async function httpLoad(url: string, options: { connections: number; seconds: number }): Promise<LoadFigures> {
  const bodies = loadBodies(256);
  const result = await autocannon({
    url,
    connections: options.connections,
    duration: options.seconds,
    pipelining: 1,
    // Latency percentiles of the 2xx answers only (a quick refusal must not make them look fast).
    excludeErrorStats: true,
    requests: bodies.map((body) => ({
      method: 'POST' as const,
      path: '/v1/orders',
      headers: { 'content-type': 'application/json', 'x-api-key': LOAD_KEY },
      body,
    })),
  });
  const ok = result['2xx'];
  return {
    perSec: ok / (result.duration > 0 ? result.duration : options.seconds), // the run as measured
    p50Ms: result.latency.p50,
    p99Ms: result.latency.p99,
    // autocannon counts a timeout among its errors too.
    errors: result.non2xx + result.errors,
    total: ok,
  };
}
