// Micro-benchmarks of the order book (tinybench): passive adds, cancels, aggressive matching and a
// W1-like mix. One operation takes tens of nanoseconds, below what a timer resolves, so each
// tinybench iteration runs a batch of operations on a book prepared (untimed) in `beforeEach`,
// and the figures are per operation: the batch's time divided by its size.
//
//   pnpm --filter @gx3/orderbook bench      (BENCH_TIME=ms per task, default 1500)
import { Bench } from 'tinybench';
import { NOOP_SINK, OrderBook, Side, TimeInForce } from '../src/index.js';

const BATCH = 10_000;
const MID = 100_000;

/** mulberry32 */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const newBook = (): OrderBook => new OrderBook({ initialOrders: 1 << 18, initialLevels: 1 << 12 }, NOOP_SINK);

// Passive orders: buys below the mid, sells above, within 50 ticks.
const rnd = rng(1);
const passive = Array.from({ length: BATCH }, (_, i) => {
  const side = i % 2 === 0 ? Side.Buy : Side.Sell;
  const off = 1 + Math.floor(rnd() * rnd() * 50);
  return { id: i + 1, side, price: side === Side.Buy ? MID - off : MID + off, qty: 1 + Math.floor(rnd() * 100) };
});
const cancelOrder = passive.map((o) => o.id).sort(() => rnd() - 0.5);

let book = newBook();
let nextId = 1;

function prefill(b: OrderBook): void {
  for (const o of passive) b.submitLimit(o.id, 1, o.side, o.price, o.qty);
  nextId = BATCH + 1;
}

// A W1-like mix (55% passive, 30% cancel of a recent id, 15% aggressive), precomputed.
const MIX = 200_000;
const mix = { kind: new Uint8Array(MIX), id: new Float64Array(MIX), side: new Uint8Array(MIX), price: new Float64Array(MIX), qty: new Float64Array(MIX) };
{
  let id = BATCH + 1;
  for (let i = 0; i < MIX; i++) {
    const r = rnd();
    const side = rnd() < 0.5 ? Side.Buy : Side.Sell;
    mix.side[i] = side;
    if (r < 0.55) {
      const off = 1 + Math.floor(rnd() * rnd() * 50);
      mix.kind[i] = 0;
      mix.id[i] = id++;
      mix.price[i] = side === Side.Buy ? MID - off : MID + off;
      mix.qty[i] = 1 + Math.floor(rnd() * 100);
    } else if (r < 0.85) {
      mix.kind[i] = 1;
      mix.id[i] = Math.max(1, id - 1 - Math.floor(rnd() * 20_000));
    } else {
      const off = Math.floor(rnd() * 5);
      mix.kind[i] = 0;
      mix.id[i] = id++;
      mix.price[i] = side === Side.Buy ? MID + off : MID - off;
      mix.qty[i] = 1 + Math.floor(rnd() * 200);
    }
  }
}
let mixAt = 0;

const bench = new Bench({ name: '@gx3/orderbook', time: Number(process.env.BENCH_TIME ?? 1500), warmupTime: 300 });

bench.add(
  'add passive (rests)',
  () => {
    for (const o of passive) book.submitLimit(o.id, 1, o.side, o.price, o.qty);
  },
  { beforeEach: () => void (book = newBook()) },
);

bench.add(
  'cancel (resting, random order)',
  () => {
    for (const id of cancelOrder) book.cancel(id);
  },
  {
    beforeEach: () => {
      book = newBook();
      prefill(book);
    },
  },
);

bench.add(
  'aggressive IOC (fills ~2 makers each)',
  () => {
    for (let i = 0; i < BATCH; i++) {
      const side = i % 2 === 0 ? Side.Buy : Side.Sell;
      book.submitLimit(nextId++, 2, side, side === Side.Buy ? MID + 50 : MID - 50, 100, TimeInForce.IOC);
    }
  },
  {
    beforeEach: () => {
      book = newBook();
      prefill(book);
      for (let i = 0; i < 10; i++) {
        for (const o of passive) book.submitLimit(nextId++, 1, o.side, o.price, o.qty);
      }
    },
  },
);

bench.add(
  'mixed (55% add, 30% cancel, 15% aggressive)',
  () => {
    const end = mixAt + BATCH;
    for (let i = mixAt; i < end; i++) {
      if (mix.kind[i] === 0) book.submitLimit(mix.id[i] as number, 1, mix.side[i] as Side, mix.price[i] as number, mix.qty[i] as number);
      else book.cancel(mix.id[i] as number);
    }
    mixAt = end;
  },
  {
    beforeEach: () => {
      if (mixAt + BATCH > MIX) {
        mixAt = 0;
        book = newBook();
        prefill(book);
      }
    },
    beforeAll: () => {
      mixAt = 0;
      book = newBook();
      prefill(book);
    },
  },
);

await bench.run();

const rows = bench.tasks.map((t) => {
  const r = t.result;
  if (r.state !== 'completed') return { task: t.name, state: r.state };
  const nsPerOp = (r.latency.mean * 1e6) / BATCH;
  return {
    task: t.name,
    'ops/s': Math.round(1e9 / nsPerOp).toLocaleString('en-US'),
    'ns/op (mean)': nsPerOp.toFixed(1),
    'ns/op (p50)': ((r.latency.p50 * 1e6) / BATCH).toFixed(1),
    'ns/op (p99 batch)': ((r.latency.p99 * 1e6) / BATCH).toFixed(1),
    batches: r.latency.samplesCount,
  };
});
console.log(`${bench.name}: ${BATCH} operations per batch, node ${process.version}`);
console.table(rows);
