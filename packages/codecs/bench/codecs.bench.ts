// Micro-benchmarks of the codecs (tinybench): encode and decode of a limit command and a trade
// event, through the JSON and the binary codec. One operation takes tens to hundreds of
// nanoseconds, below what a timer resolves, so each tinybench iteration runs a batch of BATCH
// operations and the figures are per operation (the batch's time divided by BATCH).
//
// Allocation: after the timed runs, each operation runs again in windows of N calls between two
// reads of V8's used heap size (`v8.getHeapStatistics().used_heap_size`), after a full GC
// (`global.gc`, exposed at run time through `v8.setFlagsFromString('--expose-gc')` when node was
// not started with `--expose-gc`). A window in which a GC ran (seen by `v8.GCProfiler`) is thrown
// away and N halved; the figure is the median over 7 clean windows of (growth / N), less the same
// figure for an empty operation. Operations that allocate nothing read about 0.
//
//   pnpm --filter @gx3/codecs bench      (BENCH_TIME=ms per task, default 1000)
import v8 from 'node:v8';
import { runInNewContext } from 'node:vm';
import { Bench } from 'tinybench';
import { binaryCodec, DecodedMessage, jsonCodec, type LimitCommand, type TradeEvent } from '../src/index.js';

const BATCH = 1000;

const limit: LimitCommand = {
  type: 'limit',
  symbol: 'BTCUSDT',
  seq: 1_234_567,
  reqId: 987_654,
  orderId: 40_000_123,
  userId: 7_001,
  ts: 1_700_000_000_123_456,
  side: 'buy',
  price: 100_050,
  qty: 25,
  tif: 'GTC',
  stp: 'CANCEL_NEWEST',
};
const trade: TradeEvent = {
  type: 'trade',
  symbol: 'BTCUSDT',
  seq: 1_234_567,
  eventSeq: 3_456_789,
  ts: 1_700_000_000_123_456,
  makerOrderId: 39_999_001,
  takerOrderId: 40_000_123,
  makerUserId: 6_502,
  takerUserId: 7_001,
  takerSide: 'buy',
  price: 100_050,
  qty: 25,
  makerRemaining: 75,
};

const buf = new Uint8Array(4096);
const out = new DecodedMessage();
const limitJson = jsonCodec.encodeToBuffer(limit);
const tradeJson = jsonCodec.encodeToBuffer(trade);
const limitBin = binaryCodec.encodeToBuffer(limit);
const tradeBin = binaryCodec.encodeToBuffer(trade);
/** Consumes results so that no work is optimised away (kept a small integer, so that it never boxes). */
let sink = 0;

interface Op {
  task: string;
  codec: 'json' | 'binary';
  message: 'limit' | 'trade';
  bytes: number;
  /** One operation (for the allocation measurement). */
  one: () => void;
  /** BATCH operations (for timing). Each is its own function so that its call sites stay monomorphic. */
  batch: () => void;
}

const ops: Op[] = [
  {
    task: 'encode',
    codec: 'json',
    message: 'limit',
    bytes: limitJson.length,
    one: () => void (sink = (sink + jsonCodec.encode(limit, buf, 0)) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + jsonCodec.encode(limit, buf, 0)) & 0xffff;
    },
  },
  {
    task: 'decode',
    codec: 'json',
    message: 'limit',
    bytes: limitJson.length,
    one: () => void (sink = (sink + jsonCodec.decode(limitJson).ts) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + jsonCodec.decode(limitJson).ts) & 0xffff;
    },
  },
  {
    task: 'encode',
    codec: 'json',
    message: 'trade',
    bytes: tradeJson.length,
    one: () => void (sink = (sink + jsonCodec.encode(trade, buf, 0)) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + jsonCodec.encode(trade, buf, 0)) & 0xffff;
    },
  },
  {
    task: 'decode',
    codec: 'json',
    message: 'trade',
    bytes: tradeJson.length,
    one: () => void (sink = (sink + jsonCodec.decode(tradeJson).ts) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + jsonCodec.decode(tradeJson).ts) & 0xffff;
    },
  },
  {
    task: 'encode',
    codec: 'binary',
    message: 'limit',
    bytes: limitBin.length,
    one: () => void (sink = (sink + binaryCodec.encode(limit, buf, 0)) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + binaryCodec.encode(limit, buf, 0)) & 0xffff;
    },
  },
  {
    task: 'decodeInto',
    codec: 'binary',
    message: 'limit',
    bytes: limitBin.length,
    one: () => void (sink = (sink + binaryCodec.decodeInto(limitBin, 0, limitBin.length, out).ts) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + binaryCodec.decodeInto(limitBin, 0, limitBin.length, out).ts) & 0xffff;
    },
  },
  {
    task: 'decode (new object)',
    codec: 'binary',
    message: 'limit',
    bytes: limitBin.length,
    one: () => void (sink = (sink + binaryCodec.decode(limitBin).ts) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + binaryCodec.decode(limitBin).ts) & 0xffff;
    },
  },
  {
    task: 'encode',
    codec: 'binary',
    message: 'trade',
    bytes: tradeBin.length,
    one: () => void (sink = (sink + binaryCodec.encode(trade, buf, 0)) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + binaryCodec.encode(trade, buf, 0)) & 0xffff;
    },
  },
  {
    task: 'decodeInto',
    codec: 'binary',
    message: 'trade',
    bytes: tradeBin.length,
    one: () => void (sink = (sink + binaryCodec.decodeInto(tradeBin, 0, tradeBin.length, out).ts) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + binaryCodec.decodeInto(tradeBin, 0, tradeBin.length, out).ts) & 0xffff;
    },
  },
  {
    task: 'decode (new object)',
    codec: 'binary',
    message: 'trade',
    bytes: tradeBin.length,
    one: () => void (sink = (sink + binaryCodec.decode(tradeBin).ts) & 0xffff),
    batch: () => {
      for (let i = 0; i < BATCH; i++) sink = (sink + binaryCodec.decode(tradeBin).ts) & 0xffff;
    },
  },
];

const label = (op: Op): string => `${op.codec} ${op.task} ${op.message}`;

const bench = new Bench({ name: '@gx3/codecs', time: Number(process.env.BENCH_TIME ?? 1000), warmupTime: 300 });
for (const op of ops) bench.add(label(op), op.batch);
await bench.run();

// ---- allocation per operation ----------------------------------------------------------------

function exposeGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (typeof exposed === 'function') return exposed;
  v8.setFlagsFromString('--expose-gc');
  return runInNewContext('gc') as () => void;
}
const gc = exposeGc();

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
}

/** Median heap growth per call of `one` over 7 windows without a GC (see the header). */
function heapBytesPerCall(one: () => void): number {
  for (let i = 0; i < 20_000; i++) one(); // optimised before measuring
  const samples: number[] = [];
  let n = 20_000;
  for (let attempts = 0; samples.length < 7 && attempts < 50; attempts++) {
    gc();
    const profiler = new v8.GCProfiler();
    profiler.start();
    const before = v8.getHeapStatistics().used_heap_size;
    for (let i = 0; i < n; i++) one();
    const after = v8.getHeapStatistics().used_heap_size;
    const gcs = profiler.stop().statistics.length;
    if (gcs > 0) n = Math.max(100, n >> 1);
    else samples.push((after - before) / n);
  }
  return median(samples);
}

const empty = heapBytesPerCall(() => {
  sink = (sink + 1) & 0xffff;
});
const alloc = new Map(ops.map((op) => [op, Math.max(0, heapBytesPerCall(op.one) - empty)]));

// ---- report ----------------------------------------------------------------------------------

const rows = bench.tasks.map((t, i) => {
  const op = ops[i] as Op;
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const nsPerOp = (r.latency.mean * 1e6) / BATCH;
  return {
    codec: op.codec,
    operation: op.task,
    message: op.message,
    'bytes/op': op.bytes,
    'ns/op (mean)': nsPerOp.toFixed(1),
    'ns/op (p50)': ((r.latency.p50 * 1e6) / BATCH).toFixed(1),
    'ops/s': Math.round(1e9 / nsPerOp).toLocaleString('en-US'),
    'alloc B/op': (alloc.get(op) ?? Number.NaN).toFixed(1),
    batches: r.latency.samplesCount,
  };
});
console.log(`${bench.name}: ${BATCH} operations per batch, node ${process.version} (checksum ${sink})`);
console.table(rows);
