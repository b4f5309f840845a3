// Measuring helpers for suites: time and allocation of a synchronous loop (bytes allocated = growth
// of the used heap plus what collections during the loop freed, as v8.GCProfiler reports them),
// percentiles, and the median/min/max of rounds.

import v8 from 'node:v8';
import type { Stat } from './types.js';

export interface LoopFigures {
  seconds: number;
  nsPerOp: number;
  opsPerSec: number;
  bytesPerOp: number;
  gcCount: number;
}

/** Runs `fn` (which performs `ops` operations) after a collection, timing it and counting allocation. */
export function measureLoop(ops: number, fn: () => void): LoopFigures {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
  const profiler = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  const t0 = performance.now();
  fn();
  const t1 = performance.now();
  const gcs = profiler.stop();
  const after = v8.getHeapStatistics().used_heap_size;
  let freed = 0;
  for (const s of gcs.statistics) freed += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize);
  const seconds = (t1 - t0) / 1000;
  const n = Math.max(1, ops);
  return { seconds, nsPerOp: (seconds * 1e9) / n, opsPerSec: ops / seconds, bytesPerOp: Math.max(0, after - before + freed) / n, gcCount: gcs.statistics.length };
}

/** Starts counting collections and allocation for asynchronous work; `stop()` returns the figures per op. */
export function allocationMeter(): { stop(ops: number): { bytesPerOp: number; gcCount: number } } {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
  const profiler = new v8.GCProfiler();
  const before = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  return {
    stop(ops: number) {
      const gcs = profiler.stop();
      const after = v8.getHeapStatistics().used_heap_size;
      let freed = 0;
      for (const s of gcs.statistics) freed += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize);
      return { bytesPerOp: Math.max(0, after - before + freed) / Math.max(1, ops), gcCount: gcs.statistics.length };
    },
  };
}

/** The `q` quantile of ascending `sorted` values (0 when empty). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
}

export function stat(values: readonly number[]): Stat {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === 0) return { median: 0, min: 0, max: 0 };
  const mid = v.length >> 1;
  const median = v.length % 2 === 1 ? (v[mid] as number) : ((v[mid - 1] as number) + (v[mid] as number)) / 2;
  return { median, min: v[0] as number, max: v[v.length - 1] as number };
}
