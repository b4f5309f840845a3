// Publisher and bus behaviour found missing by a review: a start() during a stop() with acknowledgements
// in flight, consecutiveFailures after a failure is acknowledged, outbox records that are not events,
// a MemoryBus publish that fails half way, a cursor of another outbox history, and a NATS server
// restart after a symbol's duplicate window (each failed on the code before its fix).
import fs from 'node:fs';
import { codecByName, type LimitCommand } from '@gx3/codecs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EventMessage, MemoryBus, NatsJetStreamBus, OutboxError, readCursor, writeCursor, type AckCallback, type Bus, type BusMessage } from '../src/index.js';
import { EventWriter, GatedBus, heldSeqs, openOutbox, publisher, range, removeTmpDirs, runCleanups, settle, sleep, tmpDir, trade, uniqueTag, until } from './helpers.js';
import { freePort, manager, NatsServer, natsServerProblem, readStream, unavailable } from './nats-helpers.js';

afterEach(runCleanups);
afterAll(removeTmpDirs);

const binary = codecByName('binary');

/** A bus that acknowledges on the next turn, failing the calls whose (0-based) index is in `failCalls`. */
class FlakyBus implements Bus {
  readonly name = 'flaky';
  readonly inner = new MemoryBus({ retain: true });
  calls = 0;
  constructor(private readonly failCalls: Set<number>) {}
  publish(msg: BusMessage, done: AckCallback): void {
    const index = this.calls++;
    if (!(msg instanceof EventMessage)) throw new Error('the publisher sends EventMessages');
    const copy = msg.detach();
    setImmediate(() => {
      if (this.failCalls.has(index)) done(new OutboxError('BUS_ERROR', `injected failure of call ${index}`));
      else this.inner.publish(copy, done);
    });
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

describe('Publisher stop()/start()', () => {
  it('a start() while stop() waits for acknowledgements in flight starts again once the stop is done', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 2);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 10_000 });
    p.start();
    await until(() => bus.calls.length === 4, 5_000, 'all four events in flight', () => p.stats());
    const stopped = p.stop(); // waits for the four acknowledgements
    expect(p.stats().inFlight).toBe(4);
    p.start(); // a supervisor restarting without awaiting the stop: documented to start again afterwards
    bus.release();
    await stopped;
    await settle(5);
    expect(p.stats().running).toBe(true);
    bus.auto = true;
    w.commands('S', 1);
    await outbox.sync();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'the restarted publisher acknowledges the new command', () => p.stats());
    expect(heldSeqs(bus.inner, 'S')).toEqual(range(1, 6));
  });
});

describe('Publisher stats', () => {
  it('consecutiveFailures (and the backoff) go back to 0 once the failed event is acknowledged (window path)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 1, () => 1);
    await outbox.sync();
    const bus = new FlakyBus(new Set([0])); // the first publish of event 1 fails, its republish succeeds
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 5, maxMs: 50, jitter: 0 } });
    p.start();
    await until(() => p.stats().failures === 1 && p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'failed once, then acknowledged', () => p.stats());
    await settle(5);
    const s = p.stats();
    expect(s.lagBytes).toBe(0);
    expect(heldSeqs(bus.inner, 'S')).toEqual([1]);
    // Publishing got past the point where it failed: the failed event itself is acknowledged.
    expect(s.consecutiveFailures).toBe(0);
  });
});

describe('hostile outbox records', () => {
  const limit = (symbol: string): LimitCommand => ({
    type: 'limit',
    symbol,
    seq: 99,
    reqId: 1,
    orderId: 1,
    userId: 1,
    ts: 1,
    side: 'buy',
    price: 100,
    qty: 1,
    tif: 'GTC',
    stp: 'NONE',
  } as unknown as LimitCommand);

  it('a command record in the outbox (not an event) is a typed error: not published, not acknowledged past', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 1, () => 2);
    const hostileAt = outbox.nextOffset;
    const bytes = binary.encodeToBuffer(limit('S'));
    outbox.log.append(bytes);
    outbox.appendCmdEnd('S', 2, 2, 0, 1);
    w.commands('S', 1, () => 1); // after it, a good command (eventSeq 3)
    await outbox.sync();
    const bus = new MemoryBus({ retain: true });
    const seen: string[] = [];
    bus.subscribe('S', (e) => seen.push(e.type));
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 5, maxMs: 20 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => errors.length > 0 || p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'an error or everything acknowledged', () => p.stats());
    await settle(5);
    expect(seen).not.toContain('limit');
    expect(p.stats().acknowledgedOffset).toBeLessThanOrEqual(hostileAt);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e instanceof OutboxError && e.code === 'NOT_AN_EVENT')).toBe(true);
  });

  it('a command record as the first record of the outbox is not delivered to subscribers as an event', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    outbox.log.append(binary.encodeToBuffer(limit('S')));
    outbox.appendCmdEnd('S', 1, 0, 0, 1);
    outbox.append(trade('S', 2, 1));
    outbox.appendCmdEnd('S', 2, 1, 1, 2);
    await outbox.sync();
    const bus = new MemoryBus({ retain: true });
    const seen: string[] = [];
    bus.subscribe('S', (e, m) => seen.push(`${e.type}:${m.eventSeq}`));
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 5, maxMs: 20 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => errors.length > 0 || p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'an error or everything acknowledged', () => p.stats());
    await settle(5);
    expect(seen.filter((s) => s.startsWith('limit'))).toEqual([]);
    expect(errors.length).toBeGreaterThan(0);
    expect(errors.every((e) => e instanceof OutboxError && e.code === 'NOT_AN_EVENT')).toBe(true);
  });
});

describe('delivery', () => {
  it('a publishNow bus that fails mid-command: subscribers get every event exactly once, in order', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 4, () => 3);
    await outbox.sync();
    const inner = new MemoryBus();
    const seen: number[] = [];
    inner.subscribe('S', (_e, m) => seen.push(m.eventSeq));
    const failOnce = new Set([5, 9]);
    const bus: Bus = {
      name: 'fails-twice',
      publish(): void {
        throw new Error('publish must not be used');
      },
      publishNow(msg: BusMessage) {
        if (failOnce.delete(msg.eventSeq)) {
          throw new OutboxError('BUS_ERROR', 'injected');
        }
        return inner.publishNow(msg);
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 5, maxMs: 20 } });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'acknowledged', () => p.stats());
    expect(seen).toEqual(range(1, 12));
    expect(p.stats().failures).toBe(2);
    expect(p.stats().duplicates).toBe(3); // event 4 republished after the failure at 5, events 7 and 8 after 9
  });

  it('acknowledgements in reverse order: the cursor never passes an unacknowledged event', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 3, () => 2);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 0 });
    p.start();
    await until(() => bus.calls.length === 6, 5_000, 'six in flight');
    for (const i of [5, 4, 3, 2]) bus.releaseCall(i);
    await settle(5);
    expect(p.stats().acknowledgedOffset).toBe(0);
    expect(readCursor(dir).offset).toBe(0);
    bus.releaseCall(0);
    await settle(5);
    expect(p.stats().acknowledgedOffset).toBe(0); // event 2 still unacknowledged
    bus.releaseCall(1);
    await until(() => readCursor(dir).offset === outbox.durableOffset, 5_000, 'cursor at the end');
  });
});

describe('MemoryBus', () => {
  it('a publishNow that throws leaves the bus as it was: the message is not taken for held (no later DUPLICATE, no lost event)', () => {
    const bus = new MemoryBus({ retain: true });
    const seen: number[] = [];
    bus.subscribe('S', (_e, m) => seen.push(m.eventSeq));
    const bytes = binary.encodeToBuffer(trade('S', 1, 1));
    const released = new EventMessage('S', 1, bytes, 0, bytes.length, binary);
    released.release(); // a wrapping bus that calls the MemoryBus after publish returned
    let err: unknown;
    try {
      bus.publishNow(released);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OutboxError);
    expect((err as OutboxError).code).toBe('MESSAGE_RELEASED');
    // The retry with a valid message must store and deliver it, not acknowledge it as a duplicate.
    const ack = bus.publishNow(new EventMessage('S', 1, bytes, 0, bytes.length, binary));
    expect(ack.duplicate).toBe(false);
    expect(heldSeqs(bus, 'S')).toEqual([1]);
    expect(seen).toEqual([1]);
  });
});

describe('a bus that holds less than the cursor says was acknowledged', () => {
  it('gets the outbox again from its start: it ends holding every event once, in order (the cursor was for another bus)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 5); // events 1..10
    await outbox.sync();
    // The cursor says events 1..6 were acknowledged (by a bus this one is not): the boundary after command 3.
    const third = w.boundaries[2];
    if (third === undefined) throw new Error('no boundary');
    writeCursor(dir, { offset: third.offset, lastEventSeq: third.eventSeq, commits: 1, history: outbox.history });
    // This bus holds events 1..2 only.
    const bus = new MemoryBus({ retain: true });
    const bytes = codecByName('binary');
    for (const seq of [1, 2]) {
      const b = bytes.encodeToBuffer(trade('S', 1, seq));
      bus.publishNow(new EventMessage('S', seq, b, 0, b.length, bytes));
    }
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => heldSeqs(bus, 'S').length === 10, 5_000, 'every event held', () => ({ held: heldSeqs(bus, 'S'), errors: errors.map((e) => e.message) }));
    expect(heldSeqs(bus, 'S')).toEqual(range(1, 10));
    expect(errors[0]).toMatchObject({ code: 'OUT_OF_ORDER', busLastEventSeq: 2 });
    await p.stop();
    await outbox.close();
  });
});

describe('cursor', () => {
  it('a cursor kept in another directory is not applied to a fresh (wiped) outbox: no event skipped', async () => {
    const cursorDir = tmpDir();
    const dir1 = tmpDir();
    const outbox1 = openOutbox(dir1);
    new EventWriter(outbox1).commands('S', 20);
    await outbox1.sync();
    const bus1 = new MemoryBus();
    const p1 = publisher({ dir: dir1, cursorDir, bus: bus1, outbox: outbox1, commitIntervalMs: 1 });
    p1.start();
    await until(() => p1.stats().acknowledgedOffset === outbox1.durableOffset, 5_000, 'first outbox acknowledged');
    await p1.stop();
    await outbox1.close();
    expect(readCursor(cursorDir).offset).toBe(outbox1.durableOffset);
    // The data directory is wiped (a new history); the cursor directory is not.
    fs.rmSync(dir1, { recursive: true, force: true });
    fs.mkdirSync(dir1);
    const outbox2 = openOutbox(dir1);
    new EventWriter(outbox2).commands('S', 3);
    await outbox2.sync();
    const bus2 = new MemoryBus({ retain: true });
    const p2 = publisher({ dir: dir1, cursorDir, bus: bus2, outbox: outbox2, commitIntervalMs: 1 });
    let startError: unknown;
    try {
      p2.start();
    } catch (e) {
      startError = e;
    }
    expect(startError).toBeUndefined();
    await settle(20);
    expect(heldSeqs(bus2, 'S')).toEqual(range(1, 6));
  });
});


const ownServer = unavailable('nats-server restart', natsServerProblem(), 'install nats-server');

describe.skipIf(ownServer.skip)('NatsJetStreamBus across a NATS server restart', () => {
  let server: NatsServer | undefined;
  afterAll(async () => {
    await server?.kill('SIGKILL');
  });

  it('a symbol quiet for longer than the duplicate window is published again after the server restarted (no endless OUT_OF_ORDER)', async () => {
    server = new NatsServer(await freePort(), tmpDir('gx3-review-nats-'));
    await server.start();
    const srv = server;
    const prefix = `RV${uniqueTag()}`;
    const opts = { servers: srv.url, streamPrefix: prefix, subjectPrefix: `${prefix}.ev`, storage: 'file' as const, ackTimeoutMs: 1000, duplicateWindowMs: 500 };
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.command('Q', 2);
    await outbox.sync();
    const bus1 = await NatsJetStreamBus.connect(opts);
    const p1 = publisher({ dir, bus: bus1, outbox, commitIntervalMs: 5 });
    p1.start();
    await until(() => p1.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'first run acknowledged', () => p1.stats());
    await p1.stop();
    await bus1.close();
    await sleep(1_000); // the symbol is quiet for longer than its duplicate window
    await srv.kill('SIGTERM');
    await srv.start(); // a routine server restart
    w.command('Q', 2);
    await outbox.sync();
    const bus2 = await NatsJetStreamBus.connect(opts);
    const errors: Error[] = [];
    const p2 = publisher({ dir, bus: bus2, outbox, commitIntervalMs: 5, ackTimeoutMs: 1000, backoff: { initialMs: 5, maxMs: 100 }, onError: (e) => errors.push(e) });
    p2.start();
    try {
      await until(() => p2.stats().acknowledgedOffset === outbox.durableOffset, 6_000, 'the new events acknowledged after the restart', () => ({ ...p2.stats(), lastError: errors.at(-1)?.message }));
    } finally {
      await p2.stop();
      await bus2.close();
    }
    const { nc, jsm } = await manager(srv.url);
    try {
      expect((await readStream(nc, jsm, bus2.stream('Q'))).map((m) => m.event.eventSeq)).toEqual(range(1, 4));
    } finally {
      await nc.close();
    }
  }, 25_000);
});
