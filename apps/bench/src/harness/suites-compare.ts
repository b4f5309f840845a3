// The compare suite: gx3's order book against the JavaScript order books on npm, side by side on
// one W1-shaped workload from the project's generator, each peer's outcome checked against gx3's.

import { DEFAULT_ORDERS, runCompare } from '../compare/runner.js';
import type { Metric, SuiteDef } from './types.js';

export const COMPARE_SUITE: SuiteDef = {
  id: 'compare',
  layer: 'compare',
  title: 'compare: gx3 order book vs orderbook-match-engine and nodejs-order-book (same W1-shaped workload, outcomes checked)',
  rounds: 1,
  nodeFlags: ['--expose-gc'],
  run(smoke) {
    const report = runCompare({ orders: smoke ? 10_000 : DEFAULT_ORDERS, ...(smoke ? { minSeconds: 0.2 } : {}) });
    const metrics: Metric[] = [];
    for (const r of report.results) {
      if (r.skipped !== null) continue;
      const key = r.name.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ?? '').toUpperCase());
      metrics.push({ name: `${key}OpsPerSec`, value: r.opsPerSec, unit: 'ops/s', better: 'higher', ...(r.name === report.reference ? { kind: 'throughput' as const } : {}) });
      if (r.name !== report.reference) metrics.push({ name: `${key}RatioGx3`, value: r.ratio ?? 0, unit: 'x (gx3 / peer)', better: 'higher' });
      metrics.push({ name: `${key}Agrees`, value: r.agrees === false ? 0 : 1, unit: '1 = agrees', better: 'higher' });
    }
    if (!report.ok) throw new Error(`a peer disagrees with gx3: ${report.results.filter((r) => r.agrees === false).map((r) => r.name).join(', ')}`);
    return Promise.resolve({ metrics, notes: [`${report.workload.commands.toLocaleString('en-US')} commands (W1 mix, seed ${report.workload.generator.seed}); every book agrees with gx3's outcome`] });
  },
};
