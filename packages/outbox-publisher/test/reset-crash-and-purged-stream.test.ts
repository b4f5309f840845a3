// A crash in the middle of the engine's cursor reset (the cursor of the history before the renewal
// is the outbox's own), a purged JetStream stream with a cursor a little behind it (no whole
// republish), and the mailbox's copies and exact size (the first two failed before their fixes).
import path from 'node:path';
import type { LimitCommand } from '@gx3/codecs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine, type SymbolActor } from '../../engine/src/index.js';
import { MemoryBus, NatsJetStreamBus, type EventOutbox, readCursor, readHistory, renewHistory, writeCursor } from '../src/index.js';
import { EventWriter, heldSeqs, openOutbox, publisher, removeTmpDirs, runCleanups, tmpDir, uniqueTag, until } from './helpers.js';
import { manager, NATS_URL, natsProblem, unavailable } from './nats-helpers.js';

afterEach(runCleanups);
afterAll(removeTmpDirs);

const SYM = 'BTCUSDT';
const SEGMENT = 2 << 20;

function limit(orderId: number, side: 'buy' | 'sell', price: number, qty: number, extra: Partial<LimitCommand> = {}): LimitCommand {
  return { type: 'limit', symbol: SYM, seq: 0, reqId: 0, orderId, userId: 1, ts: 1, side, price, qty, tif: 'GTC', stp: 'NONE', ...extra };
}

describe('engine: resetCursorAhead', () => {
  it('a crash between renewHistory and the cursor write: the next open moves the (still ahead) cursor back again, nothing republished', async () => {
    const dataDir = tmpDir();
    const evDir = path.join(dataDir, SYM, 'ev');
    const bus1 = new MemoryBus({ retain: true });
    let e = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, bus: bus1, publisher: { commitIntervalMs: 1 } });
    for (let i = 1; i <= 5; i++) await e.submit(limit(i, 'buy', 100, 1));
    await e.close();
    const published = bus1.lastEventSeq(SYM);
    expect(published).toBeGreaterThan(0);
    const cursor = readCursor(evDir);
    const h1 = readHistory(evDir);
    expect(cursor.history).toBe(h1);
    // The outbox lost published events (the cursor is ahead of it), and the engine's reset got as far
    // as renewing the history before the process died (the cursor was not written yet).
    writeCursor(evDir, { offset: cursor.offset + 10_000, lastEventSeq: cursor.lastEventSeq + 50, commits: cursor.commits, history: h1 });
    renewHistory(evDir);

    const bus2 = new MemoryBus({ retain: true });
    e = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, bus: bus2, publisher: { commitIntervalMs: 1 } });
    try {
      const actor = e.actor(SYM) as SymbolActor;
      // "a crash between the two leaves the old cursor, still ahead, and the next open does this again"
      expect(actor.cursorReset).toBeDefined();
      const out = await e.submit(limit(100, 'sell', 200, 1));
      const last = Math.max(...out.events.map((x) => x.eventSeq));
      await until(() => bus2.lastEventSeq(SYM) >= last, 5_000, 'new events published');
      // Only the new command's events: the ones before the cursor were published already.
      expect(heldSeqs(bus2, SYM)[0]).toBeGreaterThan(published);
    } finally {
      await e.close();
    }
  }, 20_000);
});

const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL');

/**
 * Events 1..10 published to a fresh stream and acknowledged; then `between` (the cursor moved, say),
 * the stream purged, and the duplicate window let pass. `then` gets the publisher's setup to go on.
 */
async function afterPurge(
  between: (ctx: { dir: string; outbox: EventOutbox; w: EventWriter }) => void,
  then: (ctx: { dir: string; outbox: EventOutbox; w: EventWriter; bus: NatsJetStreamBus; errors: Error[]; messages: () => Promise<number> }) => Promise<void>,
): Promise<void> {
  const prefix = `RVL${uniqueTag()}`;
  const bus = await NatsJetStreamBus.connect({ servers: NATS_URL, streamPrefix: prefix, subjectPrefix: `${prefix}.ev`, storage: 'memory', ackTimeoutMs: 2000, duplicateWindowMs: 1000 });
  const { nc, jsm } = await manager(NATS_URL);
  try {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 5); // events 1..10
    await outbox.sync();
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 1, backoff: { initialMs: 5, maxMs: 50 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 10_000, 'first 10 acknowledged');
    await p.stop();
    between({ dir, outbox, w });
    await jsm.streams.purge(bus.stream('S'));
    await new Promise((r) => setTimeout(r, 1200)); // past the duplicate window
    await then({ dir, outbox, w, bus, errors, messages: async () => (await jsm.streams.info(bus.stream('S'))).state.messages });
  } finally {
    await jsm.streams.delete(bus.stream('S')).catch(() => undefined);
    await bus.close();
    await nc.close();
  }
}

/** Publishes what the outbox holds from its cursor until all is acknowledged. */
async function publishAll(dir: string, outbox: EventOutbox, bus: NatsJetStreamBus, errors: Error[]): Promise<void> {
  const p = publisher({ dir, bus, outbox, commitIntervalMs: 1, backoff: { initialMs: 5, maxMs: 50 }, onError: (e) => errors.push(e) });
  p.start();
  await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 15_000, 'all acknowledged', () => ({ errors: errors.map((e) => e.message) }));
  await p.stop();
}

describe.skipIf(nats.skip)('NATS: a purged stream', () => {
  it('after the stream is purged, new events are stored after it without republishing the purged ones', async () => {
    await afterPurge(
      () => undefined,
      async ({ dir, outbox, w, bus, errors, messages }) => {
        w.commands('S', 1); // events 11..12
        await outbox.sync();
        await publishAll(dir, outbox, bus, errors);
        expect(await messages()).toBe(2);
      },
    );
  }, 30_000);

  it('a publisher restarted from a cursor a little behind a purged stream does not publish the whole outbox again', async () => {
    await afterPurge(
      ({ dir, outbox, w }) => {
        // The process died before its last commit: the cursor is at event 8 (the boundary after command 4).
        const b4 = w.boundaries[3];
        if (b4 === undefined) throw new Error('no boundary');
        writeCursor(dir, { offset: b4.offset, lastEventSeq: b4.eventSeq, commits: 9, history: outbox.history });
        // An operator then purges the stream (its consumers have everything up to event 10).
      },
      async ({ dir, outbox, bus, errors, messages }) => {
        await publishAll(dir, outbox, bus, errors);
        // Events 9 and 10 are repeats of events the stream took (its last message id is S:10): nothing
        // before them, purged by the operator, is stored again.
        expect(await messages()).toBe(0);
      },
    );
  }, 30_000);
});

describe('engine: the mailbox copy of a command', () => {
  it('keeps clientOrderId and stp (the caller changes its object after submit); mailboxSize is exact', async () => {
    const dataDir = tmpDir();
    const e = await Engine.open({ dataDir, symbols: [{ symbol: SYM }], segmentSize: SEGMENT, mailboxSize: 3 });
    try {
      const maker = limit(1, 'sell', 100, 5, { userId: 7 });
      await e.submit(maker);
      const taker = limit(2, 'buy', 100, 5, { userId: 7, stp: 'CANCEL_NEWEST', clientOrderId: 'c-2' });
      const p = e.submit(taker);
      taker.stp = 'NONE';
      taker.clientOrderId = 'other';
      const out = await p;
      const accepted = out.events.find((x) => x.type === 'accepted');
      expect(accepted).toMatchObject({ clientOrderId: 'c-2', stp: 'CANCEL_NEWEST' });
      expect(out.events.some((x) => x.type === 'trade')).toBe(false);
      const results = [3, 4, 5, 6].map((i) => e.trySubmit(limit(10 + i, 'buy', 90, 1)));
      expect(results.slice(0, 3).every((r) => typeof r === 'number')).toBe(true);
      expect(typeof results[3]).not.toBe('number');
    } finally {
      await e.close();
    }
  }, 20_000);
});
