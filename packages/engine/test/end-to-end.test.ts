// The seed's end-to-end flow: two crossing orders through engine.submit; their outcomes come back in
// order with event sequence numbers 1..n; the trade is in the outbox (read back with the WAL reader
// and the codec) and the publisher delivers the events, and only them, to a MemoryBus.
import { binaryCodec, type Event } from '@gx3/codecs';
import { Side } from '@gx3/orderbook';
import { MemoryBus } from '@gx3/outbox-publisher';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, type SymbolActor } from '../src/index.js';
import { evDirOf, limit, outboxProblem, readOutbox, removeTmpDirs, SEGMENT, tmpDir } from './helpers.js';

afterEach(removeTmpDirs);

const SYM = 'BTCUSDT';

describe('end to end: submit, outbox, bus', () => {
  it('matches two crossing orders, logs the trade in the outbox and publishes it to the bus', async () => {
    const dataDir = tmpDir();
    const bus = new MemoryBus({ retain: true });
    const seen: Event[] = [];
    bus.subscribe(SYM, (e) => seen.push(e));
    const engine = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], bus, segmentSize: SEGMENT });
    try {
      const actor = engine.actor(SYM) as SymbolActor;
      expect(engine.symbols).toEqual([SYM]);

      // A resting sell of 10 at 100,050, then a buy of 4 at 100,060 that crosses it.
      const sell = await engine.submit(limit(SYM, 1, 'sell', 100_050, 10, { userId: 7, reqId: 11, ts: 5_000 }));
      const buy = await engine.submit(limit(SYM, 2, 'buy', 100_060, 4, { userId: 8, reqId: 12, ts: 5_001 }));
      expect(sell.seq).toBe(1);
      expect(buy.seq).toBe(2);

      expect(sell.events.map((e) => e.type)).toEqual(['accepted', 'added']);
      expect(buy.events.map((e) => e.type)).toEqual(['accepted', 'trade']);
      const outcomeEvents = [...sell.events, ...buy.events];
      expect(outcomeEvents.map((e) => e.eventSeq)).toEqual([1, 2, 3, 4]);
      expect(sell.events.every((e) => e.seq === 1 && e.ts === 5_000 && e.symbol === SYM)).toBe(true);
      expect(buy.events.every((e) => e.seq === 2 && e.ts === 5_001 && e.symbol === SYM)).toBe(true);
      expect(sell.events[1]).toMatchObject({ type: 'added', orderId: 1, userId: 7, side: 'sell', price: 100_050, qty: 10 });
      const trade = buy.events[1];
      expect(trade).toMatchObject({
        type: 'trade',
        makerOrderId: 1,
        takerOrderId: 2,
        makerUserId: 7,
        takerUserId: 8,
        takerSide: 'buy',
        price: 100_050, // the maker's price
        qty: 4,
        makerRemaining: 6,
      });

      // The book: the sell rests with 6 left; the buy was filled completely.
      expect(actor.book.bestAsk).toBe(100_050);
      expect(actor.book.bestBid).toBeNull();
      expect(actor.book.getOrder(1)).toMatchObject({ qty: 6, side: Side.Sell });
      expect(actor.book.has(2)).toBe(false);
      expect(actor.durableSeq).toBe(2);

      // The outbox holds the same events, each command's followed by its CmdEnd.
      const stored = readOutbox(evDirOf(dataDir, SYM), binaryCodec);
      expect(stored.map((r) => r.msg.type)).toEqual(['accepted', 'added', 'cmdEnd', 'accepted', 'trade', 'cmdEnd']);
      expect(stored.map((r) => r.msg).filter((e) => e.type !== 'cmdEnd')).toEqual(outcomeEvents);
      expect(stored[2]?.msg).toEqual({ type: 'cmdEnd', symbol: SYM, seq: 1, eventSeq: 2, ts: 5_000, events: 2 });
      expect(stored[5]?.msg).toEqual({ type: 'cmdEnd', symbol: SYM, seq: 2, eventSeq: 4, ts: 5_001, events: 2 });
      expect(outboxProblem(stored, 2)).toBeUndefined();

      // The publisher delivers the four events (never a CmdEnd), in order, once each.
      const publisher = engine.publisherList[0];
      if (publisher === undefined) return expect.fail('the engine made no publisher although a bus was given');
      await publisher.acknowledged(actor.outbox.durableOffset);
      expect(bus.lastEventSeq(SYM)).toBe(4);
      expect(bus.messages(SYM).map((m) => m.id)).toEqual([`${SYM}:1`, `${SYM}:2`, `${SYM}:3`, `${SYM}:4`]);
      expect(bus.messages(SYM).map((m) => m.event)).toEqual(outcomeEvents);
      expect(seen).toEqual(outcomeEvents);
      // The bus payload is the outbox's record, byte for byte.
      const tradeMsg = bus.messages(SYM)[3];
      expect(tradeMsg && binaryCodec.decode(tradeMsg.payload)).toEqual(trade);
    } finally {
      await engine.close();
    }
    expect(seen).toHaveLength(4);
  });

  it('publishes after a restart from the cursor: nothing twice, nothing lost', async () => {
    const dataDir = tmpDir();
    const bus = new MemoryBus({ retain: true });
    const e1 = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], bus, segmentSize: SEGMENT });
    await e1.submit(limit(SYM, 1, 'sell', 100, 10, { ts: 1 }));
    await e1.submit(limit(SYM, 2, 'buy', 100, 3, { ts: 2 }));
    await e1.close();
    expect(bus.lastEventSeq(SYM)).toBe(4);

    const e2 = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], bus, segmentSize: SEGMENT });
    const third = await e2.submit(limit(SYM, 3, 'buy', 100, 2, { ts: 3 }));
    expect(third.seq).toBe(3);
    expect(third.events.map((e) => e.eventSeq)).toEqual([5, 6]);
    const actor = e2.actor(SYM) as SymbolActor;
    const publisher = e2.publisherList[0];
    if (publisher === undefined) return expect.fail('no publisher');
    await publisher.acknowledged(actor.outbox.durableOffset);
    await e2.close();
    expect(bus.messages(SYM).map((m) => m.eventSeq)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(publisher.stats().duplicates).toBe(0);
  });
});
