// Publisher benchmarks: events per second from a durable outbox to the MemoryBus and to NATS
// JetStream (with de-duplication ids and the order check), each timed from start() until the last
// event is acknowledged (the publisher's acknowledged offset reaches the outbox's end); and the
// publisher's lag while an outbox is written at a steady rate. Several rounds, median (min-max).
//
//   pnpm --filter @gx3/outbox-publisher bench      (PUB_BENCH_EVENTS, PUB_BENCH_ROUNDS, NATS_URL)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Event } from '@gx3/codecs';
import { EventOutbox, MemoryBus, NatsJetStreamBus, Publisher, type Bus } from '../src/index.js';

const EVENTS = Number(process.env.PUB_BENCH_EVENTS ?? 1_000_000);
const ROUNDS = Number(process.env.PUB_BENCH_ROUNDS ?? 3);
const root = fs.mkdtempSync(path.join(os.tmpdir(), 'gx3-pub-bench-'));
let dirs = 0;

/** An outbox of `n` trade events, two per command, each command closed by its CmdEnd. */
async function filledOutbox(symbol: string, n: number): Promise<{ dir: string; outbox: EventOutbox }> {
  const dir = path.join(root, `outbox-${dirs++}`);
  const outbox = EventOutbox.open(dir, { durability: 'none' });
  const ev: Event = {
    type: 'trade',
    symbol,
    seq: 0,
    eventSeq: 0,
    ts: 1_700_000_000_000_000,
    makerOrderId: 1,
    takerOrderId: 2,
    makerUserId: 3,
    takerUserId: 4,
    takerSide: 'buy',
    price: 100_000,
    qty: 5,
    makerRemaining: 0,
  };
  let eventSeq = 0;
  for (let seq = 1; eventSeq < n; seq++) {
    const k = Math.min(2, n - eventSeq);
    for (let j = 0; j < k; j++) {
      ev.seq = seq;
      ev.eventSeq = ++eventSeq;
      ev.makerOrderId = eventSeq;
      outbox.append(ev);
    }
    outbox.appendCmdEnd(symbol, seq, eventSeq, k, ev.ts);
  }
  await outbox.sync();
  return { dir, outbox };
}

async function timedRun(bus: Bus, symbol: string, n: number): Promise<number> {
  const { dir, outbox } = await filledOutbox(symbol, n);
  const pub = new Publisher({ dir, bus, outbox, window: 4096 });
  const t0 = performance.now();
  pub.start();
  await pub.acknowledged(outbox.durableOffset);
  const seconds = (performance.now() - t0) / 1000;
  const s = pub.stats();
  await pub.stop();
  await outbox.close();
  if (s.failures > 0) process.stderr.write(`  (${s.failures} failures during the run; last: ${String(s.lastError)})\n`);
  return n / seconds;
}

function summary(xs: number[]): string {
  const v = [...xs].sort((a, b) => a - b);
  const f = (x: number): string => Math.round(x).toLocaleString('en-US');
  return `${f(v[v.length >> 1] as number)} events/s (${f(v[0] as number)}-${f(v[v.length - 1] as number)})`;
}

const results: string[] = [];

// MemoryBus
{
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) rates.push(await timedRun(new MemoryBus(), `MEM${r}`, EVENTS));
  results.push(`outbox -> MemoryBus, ${EVENTS} events: ${summary(rates)}`);
}

// NATS JetStream
let nats: NatsJetStreamBus | undefined;
try {
  nats = await NatsJetStreamBus.connect({ streamPrefix: `BENCH${process.pid}`, storage: 'file', connectTimeoutMs: 2000 });
} catch (err) {
  results.push(`outbox -> NATS JetStream: skipped (${(err as Error).message})`);
}
if (nats) {
  const rates: number[] = [];
  const n = Math.min(EVENTS, 200_000);
  for (let r = 0; r < ROUNDS; r++) {
    const symbol = `JS${r}`;
    rates.push(await timedRun(nats, symbol, n));
    await nats.jsm.streams.delete(nats.stream(symbol));
  }
  results.push(`outbox -> NATS JetStream (file storage, msg ids, order check), ${n} events: ${summary(rates)}`);
}

// Lag under a steady load: a writer appends 2 events + CmdEnd per command at a fixed rate with
// durability `batch` (a sync every ~5 ms); the publisher's lag (outbox bytes not yet acknowledged,
// shown in events) is sampled after every sync.
async function steadyLag(bus: Bus, symbol: string, rate: number, seconds: number): Promise<string> {
  const dir = path.join(root, `steady-${symbol}`);
  const outbox = EventOutbox.open(dir, { durability: 'batch' });
  const pub = new Publisher({ dir, bus, outbox, window: 4096 });
  pub.start();
  const ev: Event = { type: 'added', symbol, seq: 0, eventSeq: 0, ts: 1, orderId: 1, userId: 1, side: 'buy', price: 100, qty: 1 };
  let eventSeq = 0;
  let seq = 0;
  const lags: number[] = [];
  const t0 = performance.now();
  while (performance.now() - t0 < seconds * 1000) {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    while (eventSeq < due) {
      seq++;
      for (let j = 0; j < 2; j++) {
        ev.seq = seq;
        ev.eventSeq = ++eventSeq;
        outbox.append(ev);
      }
      outbox.appendCmdEnd(symbol, seq, eventSeq, 2, 1);
    }
    await outbox.sync();
    lags.push(pub.stats().lagBytes);
    await new Promise((r) => setTimeout(r, 5));
  }
  await pub.acknowledged(outbox.durableOffset);
  const s = pub.stats();
  await pub.stop();
  await outbox.close();
  lags.sort((a, b) => a - b);
  const perEvent = s.acknowledgedOffset / eventSeq;
  const q = (f: number): number => Math.round((lags[Math.min(lags.length - 1, Math.floor(lags.length * f))] as number) / perEvent);
  return `lag at ${rate.toLocaleString('en-US')} events/s offered for ${seconds} s to ${bus.name}: p50 ${q(0.5)} events, p99 ${q(0.99)}, max ${q(1)} (${lags.length} samples after syncs, ${eventSeq} events, ${s.failures} failures)`;
}

results.push(await steadyLag(new MemoryBus(), 'STEADYMEM', 100_000, 3));
if (nats) {
  results.push(await steadyLag(nats, 'STEADYJS', 20_000, 3));
  await nats.jsm.streams.delete(nats.stream('STEADYJS'));
}

await nats?.close();
fs.rmSync(root, { recursive: true, force: true });
console.log(`@gx3/outbox-publisher, node ${process.version}, ${ROUNDS} rounds`);
for (const r of results) console.log(`- ${r}`);
