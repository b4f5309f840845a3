// What an answer means: it is sent once the command is durable (the events it carries are in the
// outbox on disk by then, exactly those), the state a client reads after it includes it (a maker
// sees its fill at once), and order ids are assigned in increasing order without gaps, also when
// requests arrive concurrently.
import path from 'node:path';
import { codecByName, type Event } from '@gx3/codecs';
import { WalReader, WalRecord } from '@gx3/wal';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { forTaker } from '../src/answer-json.js';
import { ALICE, BOB, book, Client, removeTmpDirs, start, SYM, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

let server: TestServer;
let alice: Client;
let bob: Client;

beforeEach(async () => {
  server = await start();
  alice = new Client(server.url, ALICE);
  bob = new Client(server.url, BOB);
});

afterEach(async () => {
  await server.close();
});

/** An event as its command's answer shows it (a trade against another user's order without the maker's details). */
const asAnswered = (e: Event): unknown => (e.type === 'trade' ? forTaker(e) : e);

/** The events in the symbol's outbox up to what is durable (CmdEnd markers left out). */
function durableOutbox(s: TestServer): Event[] {
  const actor = s.engine.actor(SYM);
  if (actor === undefined) throw new Error('no actor');
  const codec = codecByName(s.config.codec);
  const reader = new WalReader(path.join(s.dataDir, SYM, 'ev'), { end: () => actor.outbox.durableOffset });
  const rec = new WalRecord();
  const out: Event[] = [];
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) {
      const e = codec.decode(r.buf.subarray(r.start, r.end)) as Event;
      if (e.type !== 'cmdEnd') out.push(e);
    }
  } finally {
    reader.close();
  }
  return out;
}

describe('answers', () => {
  it('come once the command is durable, carrying exactly the events the outbox holds for it', async () => {
    const actor = server.engine.actor(SYM);
    const answered: Event[] = [];
    const check = (events: Event[] | undefined): void => {
      expect(events?.length).toBeGreaterThan(0);
      for (const e of events ?? []) {
        // Durable when answered: the engine's durable watermark has reached the command.
        expect(actor?.durableSeq).toBeGreaterThanOrEqual(e.seq);
        answered.push(e);
      }
    };
    check((await alice.post({ side: 'sell', price: 1000, qty: 5 })).body.events);
    check((await alice.post({ side: 'sell', price: 1001, qty: 5 })).body.events);
    check((await bob.post({ side: 'buy', type: 'market', qty: 7 })).body.events);
    check((await alice.amend(2, { qty: 1 })).body.events);
    check((await alice.cancel(2)).body.events);
    check((await bob.post({ side: 'buy', price: 1000, qty: 9, tif: 'FOK' })).body.events);
    // Every answered event is in the durable part of the outbox, in the same order, and nothing else
    // is (a trade as its taker sees it: without another user's order in it).
    expect(durableOutbox(server).map(asAnswered)).toEqual(answered);
    expect(answered.map((e) => e.eventSeq)).toEqual(answered.map((_, i) => i + 1));
  });

  it('concurrent requests are each answered with their own events', async () => {
    const rs = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? alice : bob).post({ side: i % 2 === 0 ? 'buy' : 'sell', price: 1000 + (i % 3), qty: 1 + i })));
    const actor = server.engine.actor(SYM);
    for (const r of rs) {
      expect(r.status).toBe(200);
      const id = r.body.order?.orderId;
      const own = (r.body.events ?? []).filter((e) => e.type === 'accepted' || e.type === 'added' || e.type === 'rejected' || e.type === 'canceled');
      expect(own.every((e) => 'orderId' in e && e.orderId === id)).toBe(true);
      const trades = (r.body.events ?? []).filter((e) => e.type === 'trade');
      expect(trades.every((e) => e.type === 'trade' && e.takerOrderId === id)).toBe(true);
      expect(new Set((r.body.events ?? []).map((e) => e.seq)).size).toBe(1);
      expect(actor?.durableSeq).toBeGreaterThanOrEqual(r.body.events?.[0]?.seq ?? Infinity);
    }
    const all = rs.flatMap((r) => r.body.events ?? []).sort((a, b) => a.eventSeq - b.eventSeq);
    expect(durableOutbox(server).map(asAnswered)).toEqual(all);
  });

  it("a maker sees its fill by GET right after the taker's answer", async () => {
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    await bob.place({ side: 'buy', price: 1000, qty: 3 });
    expect(await alice.order(maker.order.orderId)).toMatchObject({ filledQty: 3, remainingQty: 7, status: 'partially_filled' });
    await bob.place({ side: 'buy', type: 'market', qty: 7 });
    expect(await alice.order(maker.order.orderId)).toMatchObject({ filledQty: 10, remainingQty: 0, status: 'filled' });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });
});

describe('order ids', () => {
  it('increase by one per order, rejected orders included; cancels and amendments take none', async () => {
    const ids: number[] = [];
    ids.push((await alice.place({ side: 'sell', price: 1000, qty: 5 })).order.orderId);
    ids.push((await bob.place({ side: 'buy', price: 1000, qty: 50, tif: 'FOK' })).order.orderId); // rejected
    ids.push((await bob.place({ side: 'buy', type: 'market', qty: 1 })).order.orderId);
    await alice.amend(ids[0] ?? 0, { qty: 2 });
    await alice.cancel(ids[0] ?? 0);
    ids.push((await alice.place({ side: 'sell', price: 1000, qty: 5 })).order.orderId);
    expect(ids).toEqual([1, 2, 3, 4]);
  });

  it('concurrent orders get distinct ids without gaps, increasing in the order the engine took them', async () => {
    const rs = await Promise.all(Array.from({ length: 30 }, (_, i) => (i % 2 === 0 ? alice : bob).place({ side: 'buy', price: 1000 + i, qty: 1 })));
    const ids = rs.map((r) => r.order.orderId);
    expect([...ids].sort((a, b) => a - b)).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
    const bySeq = [...rs].sort((a, b) => (a.events[0]?.seq ?? 0) - (b.events[0]?.seq ?? 0)).map((r) => r.order.orderId);
    expect(bySeq).toEqual([...bySeq].sort((a, b) => a - b));
  });
});
