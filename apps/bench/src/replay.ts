// Replays a parsed workload through the order book: one or more warm-up passes on throwaway books,
// one timed pass (throughput, GC count and bytes allocated), one latency pass (per-operation
// timings), and the reference summary of the timed pass.

import { performance } from 'node:perf_hooks';
import v8 from 'node:v8';
import { OrderBook, type BookEventSink, type Side, type TimeInForce } from '@gx3/orderbook';
import { summarize, SummarySink, type ReplaySummary } from './summary.js';
import { OpKind, workloadBand, type Workload } from './workload.js';

export interface ReplayPerf {
  opsPerSec: number;
  nsPerOp: number;
  p50Ns: number;
  p99Ns: number;
  p999Ns: number;
  /** Median cost of the timer read that each latency sample includes. */
  timerNs: number;
  gcCount: number;
  allocBytesPerOp: number;
}

export interface ReplayOptions {
  /** Warm-up passes before the timed one (default 3: the JIT settles within two or three). */
  readonly warmup?: number;
  /** Whether to run the per-operation latency pass (default true). */
  readonly latency?: boolean;
}

export interface ReplayResult {
  summary: ReplaySummary;
  perf: ReplayPerf;
}

/** The only user id of a replay: the CSV format has no users. */
const USER = 1;

/**
 * A book sized for the workload: its price band covers every price in it and its pools never grow
 * during the timed pass. Quantities are limited only by the safe integer range, as in the reference.
 */
export function bookFor(w: Workload, sink: BookEventSink): OrderBook {
  const { minPrice: lo, maxPrice: hi, orders } = workloadBand(w);
  const initialOrders = Math.min(1 << 26, Math.max(1024, orders));
  let window = 1 << 20;
  while (window < initialOrders && window < 1 << 26) window *= 2;
  return new OrderBook(
    { minPrice: lo, maxPrice: hi, maxQty: Number.MAX_SAFE_INTEGER, initialOrders, initialLevels: 1 << 14, idWindow: window },
    sink,
  );
}

/** Applies operations [from, to) of `w` to `book`. */
export function apply(book: OrderBook, w: Workload, from: number, to: number): void {
  const { kind, id, side, price, qty, tif } = w;
  for (let i = from; i < to; i++) {
    switch (kind[i]) {
      case OpKind.Limit:
        book.submitLimit(id[i] as number, USER, side[i] as Side, price[i] as number, qty[i] as number, tif[i] as TimeInForce);
        break;
      case OpKind.Market:
        book.submitMarket(id[i] as number, USER, side[i] as Side, qty[i] as number);
        break;
      case OpKind.Cancel:
        book.cancel(id[i] as number);
        break;
      default:
        book.reduce(id[i] as number, qty[i] as number);
    }
  }
}

/** Replays `w` and returns its summary and performance figures. */
export function replay(w: Workload, options: ReplayOptions = {}): ReplayResult {
  const warmup = options.warmup ?? 3;
  for (let r = 0; r < warmup; r++) apply(bookFor(w, new SummarySink(w.length)), w, 0, w.length);

  const sink = new SummarySink(w.length);
  const book = bookFor(w, sink);
  const gc = (globalThis as { gc?: () => void }).gc;
  if (gc) gc();
  const profiler = new v8.GCProfiler();
  const heapBefore = v8.getHeapStatistics().used_heap_size;
  profiler.start();
  const t0 = performance.now();
  apply(book, w, 0, w.length);
  const t1 = performance.now();
  const gcs = profiler.stop();
  const heapAfter = v8.getHeapStatistics().used_heap_size;
  // Bytes allocated = growth of the used heap plus whatever the collections during the pass freed.
  let freed = 0;
  for (const s of gcs.statistics) freed += Math.max(0, s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize);
  const allocated = Math.max(0, heapAfter - heapBefore + freed);
  const seconds = (t1 - t0) / 1000;
  const n = Math.max(1, w.length);

  const lat = options.latency === false ? undefined : latencies(w);
  const summary = summarize(w.length, sink, book);
  return {
    summary,
    perf: {
      opsPerSec: w.length === 0 ? 0 : Math.round(w.length / seconds),
      nsPerOp: round2((seconds * 1e9) / n),
      p50Ns: lat ? percentile(lat.samples, 0.5) : 0,
      p99Ns: lat ? percentile(lat.samples, 0.99) : 0,
      p999Ns: lat ? percentile(lat.samples, 0.999) : 0,
      timerNs: lat ? Math.round(lat.timerNs) : 0,
      gcCount: gcs.statistics.length,
      allocBytesPerOp: round2(allocated / n),
    },
  };
}

/**
 * Per-operation latency in ns on a fresh (warmed-up) book, each operation timed on its own with
 * `performance.now()`. A sample includes one timer read (about 30-40 ns here, reported as
 * `timerNs`), which is not subtracted: the figures are upper bounds.
 */
function latencies(w: Workload): { samples: Float64Array; timerNs: number } {
  const book = bookFor(w, new SummarySink(w.length));
  const samples = new Float64Array(w.length);
  const probe = new Float64Array(100_001);
  for (let i = 0; i < probe.length; i++) {
    const a = performance.now();
    probe[i] = performance.now() - a;
  }
  probe.sort();
  for (let i = 0; i < w.length; i++) {
    const a = performance.now();
    apply(book, w, i, i + 1);
    samples[i] = (performance.now() - a) * 1e6;
  }
  return { samples: samples.sort(), timerNs: (probe[probe.length >> 1] as number) * 1e6 };
}

function percentile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  const i = Math.min(sorted.length - 1, Math.floor(q * sorted.length));
  return Math.round(sorted[i] as number);
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}
