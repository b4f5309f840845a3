// The engine's contract, case by case: routing and typed refusals (UNKNOWN_SYMBOL, INVALID_COMMAND,
// MAILBOX_FULL, CLOSED), the processed and durable watermarks, NOT_OWNER, timestamps fixed before
// logging and kept on replay, the three durability modes, close() draining the mailbox, fair
// scheduling between symbols, the JSON codec end to end, and configuration errors.
import { binaryCodec, jsonCodec, type Command, type Event } from '@gx3/codecs';
import { MemoryBus } from '@gx3/outbox-publisher';
import { truncateLog, type Durability } from '@gx3/wal';
import { afterEach, describe, expect, it } from 'vitest';
import { Engine, EngineError, type EngineOptions, type SymbolActor } from '../src/index.js';
import {
  accepted,
  amend,
  cancel,
  cmdDirOf,
  engineRejection,
  evDirOf,
  limit,
  market,
  outboxProblem,
  readCommandLog,
  readOutbox,
  refused,
  removeTmpDirs,
  SEGMENT,
  tmpDir,
  Tracked,
  turns,
} from './helpers.js';

afterEach(removeTmpDirs);

const A = 'AAA';
const B = 'BBB';

function open(options: Partial<EngineOptions> & { dataDir?: string } = {}): Promise<Engine> {
  return Engine.open({ dataDir: options.dataDir ?? tmpDir(), symbols: [{ symbol: A }], segmentSize: SEGMENT, ...options });
}

function actorOf(engine: Engine, symbol = A): SymbolActor {
  const a = engine.actor(symbol);
  if (a === undefined) return expect.fail(`no actor for ${symbol}`);
  return a;
}

describe('routing and refusals', () => {
  it('refuses an unknown symbol: trySubmit returns UNKNOWN_SYMBOL, submit rejects with it, nothing is numbered', async () => {
    const engine = await open();
    try {
      const actor = actorOf(engine);
      const cmd = limit('NOPE', 1, 'buy', 100, 1);
      const r = refused(engine.trySubmit(cmd));
      expect(r.ok).toBe(false);
      expect(r.code).toBe('UNKNOWN_SYMBOL');
      expect(r.message).toContain('NOPE');
      const err = await engineRejection(engine.submit(limit('NOPE', 2, 'buy', 100, 1)));
      expect(err.code).toBe('UNKNOWN_SYMBOL');
      expect(cmd.seq).toBe(0);
      expect(engine.actor('NOPE')).toBeUndefined();
      // Sent straight to another symbol's actor, it is refused too.
      expect(refused(actor.trySubmit(limit('NOPE', 3, 'buy', 100, 1))).code).toBe('UNKNOWN_SYMBOL');
      expect(actor.lastSubmittedSeq).toBe(0);
      // The next valid command is number 1.
      expect((await engine.submit(limit(A, 1, 'buy', 100, 1))).seq).toBe(1);
    } finally {
      await engine.close();
    }
  });

  const invalid: [string, (c: Command) => void][] = [
    ['a fractional quantity', (c) => Object.assign(c, { qty: 1.5 })],
    ['a negative price', (c) => Object.assign(c, { price: -100 })],
    ['a price above 2^53', (c) => Object.assign(c, { price: 2 ** 53 })],
    ['a NaN order id', (c) => Object.assign(c, { orderId: Number.NaN })],
    ['an order id of 0', (c) => Object.assign(c, { orderId: 0 })],
    ['a negative user id', (c) => Object.assign(c, { userId: -1 })],
    ['a negative request id', (c) => Object.assign(c, { reqId: -7 })],
    ['an infinite timestamp', (c) => Object.assign(c, { ts: Number.POSITIVE_INFINITY })],
    ['a negative timestamp', (c) => Object.assign(c, { ts: -1 })],
    ['an unknown side', (c) => Object.assign(c, { side: 'long' })],
    ['an unknown time in force', (c) => Object.assign(c, { tif: 'DAY' })],
    ['a string quantity', (c) => Object.assign(c, { qty: '5' })],
  ];

  it.each(invalid)('refuses a command with %s (INVALID_COMMAND), without using a sequence number', async (_what, spoil) => {
    const engine = await open();
    try {
      const actor = actorOf(engine);
      expect((await engine.submit(limit(A, 1, 'buy', 100, 1))).seq).toBe(1);
      const bad = limit(A, 2, 'buy', 100, 5, { ts: 10 });
      spoil(bad);
      const r = refused(engine.trySubmit(bad));
      expect(r.code).toBe('INVALID_COMMAND');
      expect(bad.seq).toBe(0);
      const bad2 = limit(A, 3, 'buy', 100, 5, { ts: 10 });
      spoil(bad2);
      expect((await engineRejection(engine.submit(bad2))).code).toBe('INVALID_COMMAND');
      expect(actor.lastSubmittedSeq).toBe(1);
      // No gap: the next valid command is number 2, and the log holds exactly the two valid commands.
      expect((await engine.submit(limit(A, 4, 'buy', 100, 1))).seq).toBe(2);
      await engine.close();
      expect(readCommandLog(cmdDirOf(engine.dataDir, A), binaryCodec).map((r) => [r.msg.seq, r.msg.orderId])).toEqual([
        [1, 1],
        [2, 4],
      ]);
    } finally {
      await engine.close();
    }
  });

  it('lastOrderId: the highest order id of the limit and market commands taken, kept across a restart', async () => {
    const dataDir = tmpDir();
    const engine = await open({ dataDir });
    const actor = actorOf(engine);
    expect(actor.lastOrderId).toBe(0);
    await engine.submit(limit(A, 7, 'buy', 100, 1));
    await engine.submit(limit(A, 3, 'buy', 100, 1));
    expect(refused(engine.trySubmit(limit(A, 99, 'buy', 100, 0.5))).code).toBe('INVALID_COMMAND');
    await engine.submit(cancel(A, 50));
    expect(actor.lastOrderId).toBe(7);
    await engine.submit(market(A, 9, 'sell', 1));
    expect(actor.lastOrderId).toBe(9);
    await engine.close();
    const again = await open({ dataDir });
    try {
      expect(actorOf(again).lastOrderId).toBe(9);
    } finally {
      await again.close();
    }
  });

  it('leaves a refused command as it was given: no sequence number, no timestamp', async () => {
    const engine = await open({ clock: () => 123 });
    try {
      const bad = limit(A, 1, 'buy', 100, 1.5);
      expect(bad.ts).toBe(0);
      expect(refused(engine.trySubmit(bad)).code).toBe('INVALID_COMMAND');
      expect(bad.seq).toBe(0);
      expect(bad.ts).toBe(0);
      const good = limit(A, 2, 'buy', 100, 1);
      expect(engine.trySubmit(good)).toBe(1);
      expect(good.ts).toBe(123);
    } finally {
      await engine.close();
    }
  });

  it('refuses invalid cancel, market and amend commands too', async () => {
    const engine = await open();
    try {
      expect(refused(engine.trySubmit(cancel(A, -1))).code).toBe('INVALID_COMMAND');
      expect(refused(engine.trySubmit(market(A, 1, 'sell', 2 ** 53))).code).toBe('INVALID_COMMAND');
      expect(refused(engine.trySubmit(amend(A, 1, 0, 0))).code).toBe('INVALID_COMMAND');
      expect(refused(engine.trySubmit(amend(A, 1, -5, 3))).code).toBe('INVALID_COMMAND');
      expect(actorOf(engine).lastSubmittedSeq).toBe(0);
    } finally {
      await engine.close();
    }
  });

  it('an amend with qty 0 gives the order a new price for the quantity it has left when applied (lots filled since are not restored); recovery replays it the same', async () => {
    const dataDir = tmpDir();
    const engine = await open({ dataDir, durability: 'none' });
    await engine.submit(limit(A, 1, 'sell', 100, 10));
    await engine.submit(market(A, 2, 'buy', 6, { userId: 2 }));
    const r = await engine.submit(amend(A, 1, 105, 0));
    expect(r.events.find((e) => e.type === 'amended')).toMatchObject({ orderId: 1, price: 105, qty: 4, kind: 'REPLACE' });
    expect(actorOf(engine).book.getOrder(1)).toMatchObject({ price: 105, qty: 4 });
    const unknown = await engine.submit(amend(A, 99, 105, 0));
    expect(unknown.events[0]).toMatchObject({ type: 'rejected', orderId: 99, reason: 'UNKNOWN_ORDER' });
    await engine.close();
    const again = await open({ dataDir });
    expect(actorOf(again).book.getOrder(1)).toMatchObject({ price: 105, qty: 4 });
    await again.close();
  });

  it('applies backpressure: a full mailbox refuses with MAILBOX_FULL, and accepts again once the actor caught up', async () => {
    // The mailbox takes exactly mailboxSize commands (its ring is 8 long).
    const engine = await open({ mailboxSize: 5 });
    try {
      const actor = actorOf(engine);
      const results = Array.from({ length: 20 }, (_v, i) => engine.trySubmit(limit(A, i + 1, 'buy', 100, 1)));
      expect(results.slice(0, 5)).toEqual([1, 2, 3, 4, 5]);
      for (const r of results.slice(5)) expect(refused(r).code).toBe('MAILBOX_FULL');
      expect(actor.queued).toBe(5);
      expect((await engineRejection(engine.submit(limit(A, 99, 'buy', 100, 1)))).code).toBe('MAILBOX_FULL');
      await actor.waitForProcessed(5);
      expect(actor.queued).toBe(0);
      expect(accepted(engine.trySubmit(limit(A, 6, 'buy', 100, 1)))).toBe(6);
      await actor.waitForDurable(6);
      expect(actor.book.orderCount).toBe(6);
    } finally {
      await engine.close();
    }
  });

  it('refuses everything after close() with CLOSED', async () => {
    const engine = await open();
    await engine.close();
    expect(refused(engine.trySubmit(limit(A, 1, 'buy', 100, 1))).code).toBe('CLOSED');
    expect((await engineRejection(engine.submit(limit(A, 1, 'buy', 100, 1)))).code).toBe('CLOSED');
    await engine.close(); // twice is fine
  });
});

describe('watermarks', () => {
  it('processes on the event loop and reports the processed and durable sequence numbers', async () => {
    const engine = await open({ batchMax: 16, durability: 'batch' });
    try {
      const actor = actorOf(engine);
      const durableSeen: number[] = [];
      const stop = actor.onDurable((seq) => durableSeen.push(seq));
      for (let i = 1; i <= 100; i++) expect(accepted(engine.trySubmit(limit(A, i, i % 2 ? 'buy' : 'sell', i % 2 ? 100 : 200, 1)))).toBe(i);
      // Nothing is processed inside trySubmit.
      expect(actor.lastSubmittedSeq).toBe(100);
      expect(actor.queued).toBe(100);
      expect(actor.processedSeq).toBe(0);
      expect(actor.durableSeq).toBe(0);

      await actor.waitForProcessed(40);
      expect(actor.processedSeq).toBeGreaterThanOrEqual(40);
      expect(actor.book.orderCount).toBe(actor.processedSeq);
      await actor.waitForDurable(100);
      expect(actor.processedSeq).toBe(100);
      expect(actor.durableSeq).toBe(100);
      expect(actor.queued).toBe(0);
      // Already reached: resolves at once.
      await actor.waitForProcessed(100);
      await actor.waitForDurable(1);
      // Advanced to whole batches' ends (16, 32, ..., 96, 100), increasing, up to 100. How many steps
      // depends on the syncs' timing: one group commit may cover every batch.
      expect(durableSeen[durableSeen.length - 1]).toBe(100);
      for (const seq of durableSeen) expect(seq % 16 === 0 || seq === 100, String(seq)).toBe(true);
      for (let i = 1; i < durableSeen.length; i++) expect(durableSeen[i]).toBeGreaterThan(durableSeen[i - 1] as number);
      // A later command is a later step.
      const steps = durableSeen.length;
      expect(accepted(engine.trySubmit(limit(A, 101, 'buy', 100, 1)))).toBe(101);
      await actor.waitForDurable(101);
      expect(durableSeen.slice(steps)).toEqual([101]);
      stop();
      // The durable watermark is true on disk: the command log holds 101 commands.
      expect(readCommandLog(cmdDirOf(engine.dataDir, A), binaryCodec)).toHaveLength(101);
    } finally {
      await engine.close();
    }
  });

  it('waits for a sequence number not yet submitted', async () => {
    const engine = await open();
    try {
      const actor = actorOf(engine);
      const w = new Tracked(actor.waitForDurable(3));
      await engine.submit(limit(A, 1, 'buy', 100, 1));
      await engine.submit(limit(A, 2, 'buy', 100, 1));
      expect(w.state).toBe('pending');
      await engine.submit(limit(A, 3, 'buy', 100, 1));
      await turns(1);
      expect(w.state).toBe('resolved');
    } finally {
      await engine.close();
    }
  });
});

describe('ownership', () => {
  it('rejects a cancel or an amend of another user\'s order with NOT_OWNER and leaves the order as it was', async () => {
    const engine = await open();
    try {
      const actor = actorOf(engine);
      await engine.submit(limit(A, 1, 'sell', 500, 10, { userId: 1 }));
      const c = await engine.submit(cancel(A, 1, { userId: 2 }));
      expect(c.events).toHaveLength(1);
      expect(c.events[0]).toMatchObject({ type: 'rejected', commandType: 'cancel', orderId: 1, userId: 2, reason: 'NOT_OWNER', seq: 2 });
      const a = await engine.submit(amend(A, 1, 500, 4, { userId: 2 }));
      expect(a.events).toHaveLength(1);
      expect(a.events[0]).toMatchObject({ type: 'rejected', commandType: 'amend', orderId: 1, userId: 2, reason: 'NOT_OWNER', seq: 3 });
      const a2 = await engine.submit(amend(A, 1, 450, 10, { userId: 2 }));
      expect(a2.events[0]).toMatchObject({ type: 'rejected', reason: 'NOT_OWNER' });
      expect(actor.book.getOrder(1)).toMatchObject({ userId: 1, price: 500, qty: 10 });

      // The owner may.
      const own = await engine.submit(amend(A, 1, 500, 4, { userId: 1 }));
      expect(own.events.map((e) => e.type)).toEqual(['amended']);
      expect(own.events[0]).toMatchObject({ kind: 'REDUCE', qty: 4, price: 500 });
      const gone = await engine.submit(cancel(A, 1, { userId: 1 }));
      expect(gone.events[0]).toMatchObject({ type: 'canceled', reason: 'USER', qty: 4, userId: 1 });
      expect(actor.book.has(1)).toBe(false);

      // An order that does not rest is UNKNOWN_ORDER, whoever asks.
      const unknown = await engine.submit(cancel(A, 1, { userId: 2 }));
      expect(unknown.events[0]).toMatchObject({ type: 'rejected', reason: 'UNKNOWN_ORDER' });
    } finally {
      await engine.close();
    }
  });

  it('keeps NOT_OWNER rejections on replay', async () => {
    const dataDir = tmpDir();
    const e1 = await open({ dataDir });
    await e1.submit(limit(A, 1, 'sell', 500, 10, { userId: 1, ts: 1 }));
    await e1.submit(cancel(A, 1, { userId: 2, ts: 2 }));
    await e1.close();
    const before = readOutbox(evDirOf(dataDir, A), binaryCodec);
    truncateLog(evDirOf(dataDir, A), 0);
    const e2 = await open({ dataDir });
    expect(actorOf(e2).recovery.rederived).toBe(2);
    expect(actorOf(e2).book.getOrder(1)).toMatchObject({ qty: 10 });
    await e2.close();
    expect(readOutbox(evDirOf(dataDir, A), binaryCodec).map((r) => r.msg)).toEqual(before.map((r) => r.msg));
  });
});

describe('amend with price 0 (reduce-only, keeping the price)', () => {
  it('reduces a resting order and keeps its price and priority', async () => {
    // Needs the codecs to accept price 0 in an amend command (the workload format's `A,id,qty`).
    let codecError: string | undefined;
    try {
      binaryCodec.encodedLength(amend(A, 1, 0, 3, { ts: 1 }));
    } catch (err) {
      codecError = (err as Error).message;
    }
    expect(codecError, 'the binary codec refuses an amend command with price 0 (reduce-only): @gx3/codecs must accept price >= 0 for `amend`').toBeUndefined();

    const engine = await open();
    try {
      const actor = actorOf(engine);
      await engine.submit(limit(A, 1, 'sell', 500, 10));
      await engine.submit(limit(A, 2, 'sell', 500, 10));
      const r = await engine.submit(amend(A, 1, 0, 3));
      expect(r.events.map((e) => e.type)).toEqual(['amended']);
      expect(r.events[0]).toMatchObject({ kind: 'REDUCE', price: 500, qty: 3 });
      // Still first in line at 500.
      const t = await engine.submit(limit(A, 3, 'buy', 500, 3));
      expect(t.events.find((e) => e.type === 'trade')).toMatchObject({ makerOrderId: 1, qty: 3 });
      // Not a reduction: rejected, unchanged.
      const no = await engine.submit(amend(A, 2, 0, 10));
      expect(no.events[0]).toMatchObject({ type: 'rejected', commandType: 'amend', reason: 'AMEND_NOT_REDUCING' });
      expect(actor.book.getOrder(2)).toMatchObject({ qty: 10, price: 500 });
    } finally {
      await engine.close();
    }
  });
});

describe('timestamps', () => {
  it('replaces ts 0 by the clock before logging, keeps a given ts, and replay never reads the clock', async () => {
    const dataDir = tmpDir();
    let ticks = 0;
    const clock = (): number => 1_700_000_000_000_000 + ++ticks;
    const e1 = await open({ dataDir, clock });
    const c1 = limit(A, 1, 'sell', 500, 10); // ts 0
    const o1 = await e1.submit(c1);
    expect(ticks).toBe(1);
    expect(c1.ts).toBe(1_700_000_000_000_001);
    expect(o1.events.every((e) => e.ts === 1_700_000_000_000_001)).toBe(true);
    const o2 = await e1.submit(limit(A, 2, 'buy', 500, 4, { ts: 42 }));
    expect(ticks).toBe(1); // a given ts is kept: the clock is not read
    expect(o2.events.every((e) => e.ts === 42)).toBe(true);
    const o3 = await e1.submit(cancel(A, 1));
    expect(o3.events[0]?.ts).toBe(1_700_000_000_000_002);
    await e1.close();

    const logged = readCommandLog(cmdDirOf(dataDir, A), binaryCodec).map((r) => r.msg.ts);
    expect(logged).toEqual([1_700_000_000_000_001, 42, 1_700_000_000_000_002]);
    const before = readOutbox(evDirOf(dataDir, A), binaryCodec);

    // Lose the outbox; recover with a clock that must not be read.
    truncateLog(evDirOf(dataDir, A), 0);
    const e2 = await open({
      dataDir,
      clock: () => {
        throw new Error('recovery read the clock');
      },
    });
    expect(actorOf(e2).recovery.rederived).toBe(3);
    await e2.close();
    const after = readOutbox(evDirOf(dataDir, A), binaryCodec);
    expect(after.map((r) => r.msg)).toEqual(before.map((r) => r.msg));
    const T1 = 1_700_000_000_000_001;
    const T3 = 1_700_000_000_000_002;
    expect(after.map((r) => r.msg.ts)).toEqual([T1, T1, T1, 42, 42, 42, T3, T3]);
  });
});

describe('durability modes', () => {
  it.each(['none', 'batch', 'interval'] as Durability[])('acknowledges every command with durability %s, and the data dir recovers them', async (durability) => {
    const dataDir = tmpDir();
    const engine = await open({ dataDir, durability, syncIntervalMs: 1, batchMax: 32 });
    const actor = actorOf(engine);
    const outcomes = await Promise.all(Array.from({ length: 300 }, (_v, i) => engine.submit(limit(A, i + 1, i % 2 ? 'buy' : 'sell', i % 2 ? 100 : 101, 1, { ts: 1 }))));
    expect(outcomes.map((o) => o.seq)).toEqual(Array.from({ length: 300 }, (_v, i) => i + 1));
    expect(actor.durableSeq).toBe(300);
    // Acknowledged means durable on disk (with `none`: handed to the OS): both logs hold the batch.
    expect(readCommandLog(cmdDirOf(dataDir, A), binaryCodec)).toHaveLength(300);
    expect(outboxProblem(readOutbox(evDirOf(dataDir, A), binaryCodec), 300)).toBeUndefined();
    await engine.close();
    const again = await open({ dataDir, durability });
    expect(actorOf(again).recovery).toMatchObject({ commands: 300, rederived: 0, outboxBytesCut: 0 });
    expect(actorOf(again).book.orderCount).toBe(300);
    await again.close();
  });
});

describe('close()', () => {
  it('drains the mailbox: every command submitted before close() is acknowledged and recovered', async () => {
    const dataDir = tmpDir();
    const engine = await open({ dataDir, durability: 'batch', batchMax: 64 });
    const pending = Array.from({ length: 5000 }, (_v, i) => new Tracked(engine.submit(limit(A, i + 1, 'buy', 100 + (i % 50), 1, { ts: 1 }))));
    const tried = Array.from({ length: 100 }, (_v, i) => accepted(engine.trySubmit(limit(A, 5001 + i, 'sell', 1000, 1, { ts: 1 }))));
    expect(tried[99]).toBe(5100);
    await engine.close();
    await turns(1);
    expect(pending.filter((p) => p.state !== 'resolved')).toEqual([]);
    expect(pending.map((p) => p.value?.seq)).toEqual(Array.from({ length: 5000 }, (_v, i) => i + 1));
    expect(actorOf(engine).durableSeq).toBe(5100);

    const again = await open({ dataDir });
    expect(actorOf(again).recovery).toMatchObject({ commands: 5100, rederived: 0 });
    expect(actorOf(again).book.orderCount).toBe(5100);
    await again.close();
  });
});

describe('scheduling', () => {
  it('is fair between symbols: while both are loaded, they take turns batch by batch', async () => {
    const engine = await open({ symbols: [{ symbol: A }, { symbol: B }], durability: 'none', batchMax: 16 });
    try {
      const a = actorOf(engine, A);
      const b = actorOf(engine, B);
      const order: string[] = [];
      // With durability `none` the durable watermark advances at the end of each batch, synchronously.
      a.onDurable(() => order.push(A));
      b.onDurable(() => order.push(B));
      const n = 16 * 20;
      for (let i = 1; i <= n; i++) {
        accepted(engine.trySubmit(limit(A, i, 'buy', 100, 1)));
        accepted(engine.trySubmit(limit(B, i, 'buy', 100, 1)));
      }
      let progressOfB = -1;
      a.onDurable((seq) => {
        if (seq === n) progressOfB = b.processedSeq;
      });
      await Promise.all([a.waitForDurable(n), b.waitForDurable(n)]);
      expect(order.filter((s) => s === A)).toHaveLength(20);
      expect(order.filter((s) => s === B)).toHaveLength(20);
      // Never two batches of one symbol in a row while the other had work queued.
      for (let i = 1; i < order.length; i++) expect(order[i], `batch ${i}: ${order.join(' ')}`).not.toBe(order[i - 1]);
      expect(progressOfB).toBeGreaterThanOrEqual(n - 16);
    } finally {
      await engine.close();
    }
  });
});

describe('the JSON codec', () => {
  it('works end to end: logs in JSON, submit outcomes, the bus, and recovery', async () => {
    const dataDir = tmpDir();
    const bus = new MemoryBus({ retain: true });
    const e1 = await open({ dataDir, codec: 'json', bus });
    const s = await e1.submit(limit(A, 1, 'sell', 700, 5, { ts: 9 }));
    const t = await e1.submit(limit(A, 2, 'buy', 710, 8, { ts: 10 }));
    expect(t.events.map((e) => e.type)).toEqual(['accepted', 'trade', 'added']);
    const publisher = e1.publisherList[0];
    if (publisher === undefined) return expect.fail('no publisher');
    await publisher.acknowledged(actorOf(e1).outbox.durableOffset);
    await e1.close();

    const events: Event[] = [...s.events, ...t.events];
    expect(events.map((e) => e.eventSeq)).toEqual([1, 2, 3, 4, 5]);
    expect(bus.messages(A).map((m) => m.event)).toEqual(events);
    // The payloads are JSON text.
    const payload = bus.messages(A)[2]?.payload;
    if (payload === undefined) return expect.fail('no third message');
    expect(Buffer.from(payload).toString('utf8')).toMatch(/^\{"v":1,"type":"accepted"/);
    const stored = readOutbox(evDirOf(dataDir, A), jsonCodec);
    expect(stored.map((r) => r.msg).filter((e) => e.type !== 'cmdEnd')).toEqual(events);
    expect(readCommandLog(cmdDirOf(dataDir, A), jsonCodec).map((r) => r.msg.type)).toEqual(['limit', 'limit']);

    // Recovery with the JSON codec, after losing the outbox.
    truncateLog(evDirOf(dataDir, A), 0);
    const e2 = await open({ dataDir, codec: 'json' });
    expect(actorOf(e2).recovery).toMatchObject({ commands: 2, rederived: 2 });
    expect(actorOf(e2).book.getOrder(2)).toMatchObject({ qty: 3, price: 710 });
    const next = await e2.submit(cancel(A, 2, { ts: 11 }));
    expect(next.events[0]).toMatchObject({ type: 'canceled', eventSeq: 6, qty: 3 });
    await e2.close();
    expect(readOutbox(evDirOf(dataDir, A), jsonCodec).map((r) => r.msg).slice(0, stored.length)).toEqual(stored.map((r) => r.msg));
  });

  it('refuses to open JSON logs with the binary codec (INVALID_CONFIG naming both codecs), instead of misreading them', async () => {
    const dataDir = tmpDir();
    const e1 = await open({ dataDir, codec: 'json' });
    await e1.submit(limit(A, 1, 'sell', 700, 5));
    await e1.close();
    const err = await open({ dataDir, codec: 'binary' }).then(
      () => expect.fail('opened JSON logs with the binary codec'),
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: 'INVALID_CONFIG', option: 'codec' });
    expect((err as EngineError).message).toMatch(/written with the json codec, not binary/);
  });
});

describe('configuration', () => {
  const bad: [string, Partial<EngineOptions>][] = [
    ['no symbols', { symbols: [] }],
    ['a symbol twice', { symbols: [{ symbol: A }, { symbol: A }] }],
    ['a symbol with a lower-case letter', { symbols: [{ symbol: 'btc' }] }],
    ['a symbol with a slash', { symbols: [{ symbol: 'BTC/USD' }] }],
    // A symbol names its directory in the data directory: ".." would put its logs outside it.
    ['the symbol ..', { symbols: [{ symbol: '..' }] }],
    ['the symbol .', { symbols: [{ symbol: '.' }] }],
    // A symbol ends its NATS subject: a trailing or doubled dot would make an empty token.
    ['the symbol BTC.', { symbols: [{ symbol: 'BTC.' }] }],
    ['the symbol A..B', { symbols: [{ symbol: 'A..B' }] }],
    ['an unknown durability', { durability: 'always' as Durability }],
    ['batchMax 0', { batchMax: 0 }],
    ['a fractional mailboxSize', { mailboxSize: 1.5 }],
    ['a mailboxSize above 2^24', { mailboxSize: 2 ** 24 + 1 }],
  ];
  it.each(bad)('refuses %s (INVALID_CONFIG)', async (_what, options) => {
    const err = await open(options).then(
      async (e) => {
        await e.close();
        return expect.fail('the engine opened');
      },
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(EngineError);
    expect((err as EngineError).code).toBe('INVALID_CONFIG');
  });
});
