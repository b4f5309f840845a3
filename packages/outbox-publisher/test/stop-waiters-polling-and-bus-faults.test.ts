// Review of the publisher under faults: a MemoryBus whose subscriber-error handler throws, a bus whose
// publishNow returns nothing, acknowledged() waiters across stop(), a polling publisher with a cursor
// past its outbox's end or whose outbox directory is replaced while it runs; and, as guards, what the
// publisher holds while the bus never answers, late acknowledgements across stop()/start(), a cursor
// after a publishNow failure in the middle of a command, and the engine driving a fault-injecting bus.
import fs from 'node:fs';
import path from 'node:path';
import type { LimitCommand } from '@gx3/codecs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { Engine } from '../../engine/src/index.js';
import { MemoryBus, OutboxError, readCursor, readHistory, writeCursor, type AckCallback, type Bus, type BusMessage } from '../src/index.js';
import {
  EventWriter,
  GatedBus,
  expectHeld,
  heldSeqs,
  onCleanup,
  openOutbox,
  prng,
  publisher,
  range,
  removeTmpDirs,
  runCleanups,
  settle,
  snapshot,
  strictPublish,
  tmpDir,
  until,
  within,
} from './helpers.js';

afterEach(runCleanups);
afterAll(removeTmpDirs);

/** Runs `f` with this process's uncaught exceptions collected instead of reported; returns them. */
async function collectingUncaught(f: () => Promise<void>): Promise<unknown[]> {
  const caught: unknown[] = [];
  const saved = process.listeners('uncaughtException');
  process.removeAllListeners('uncaughtException');
  const mine = (err: unknown): void => {
    caught.push(err);
  };
  process.on('uncaughtException', mine);
  try {
    await f();
  } finally {
    process.removeListener('uncaughtException', mine);
    for (const l of saved) process.on('uncaughtException', l);
  }
  return caught;
}

/** `until`, returning whether the condition came true instead of throwing. */
async function eventually(cond: () => boolean, ms: number): Promise<boolean> {
  try {
    await until(cond, ms);
    return true;
  } catch {
    return false;
  }
}

/**
 * A fault-injecting bus over a retaining MemoryBus with the strict order check: fails the publishes
 * whose 1-based call number is in `fail` (asynchronously, nothing stored), acknowledges the others
 * after a random number of event-loop turns (so out of order), and acknowledges every
 * `doubleEvery`-th one twice.
 */
class ChaosBus implements Bus {
  readonly name = 'chaos';
  readonly inner = new MemoryBus({ retain: true });
  calls = 0;
  failed = 0;
  reordered = 0;
  private lastAcked = 0;
  private readonly random: () => number;
  private closed = false;

  constructor(
    private readonly fail: ReadonlySet<number>,
    seed: number,
    private readonly doubleEvery = 7,
  ) {
    this.random = prng(seed);
  }

  publish(msg: BusMessage, done: AckCallback): void {
    const n = ++this.calls;
    const copy = snapshot(msg);
    if (this.fail.has(n)) {
      this.failed++;
      setImmediate(() => {
        done(new OutboxError('BUS_ERROR', `injected failure of publish #${n} (${copy.id})`));
      });
      return;
    }
    strictPublish(this.inner, copy, (err, ack) => {
      let turns = Math.floor(this.random() * 4);
      const deliver = (): void => {
        if (this.closed) return;
        if (turns-- > 0) {
          setImmediate(deliver);
          return;
        }
        if (n < this.lastAcked) this.reordered++;
        this.lastAcked = Math.max(this.lastAcked, n);
        done(err, ack);
        if (n % this.doubleEvery === 0) done(err, ack);
      };
      deliver();
    });
  }

  close(): Promise<void> {
    this.closed = true;
    return this.inner.close();
  }
}

// -------------------------------------------------------------------------------------------------
// Bugs

describe('a MemoryBus whose onSubscriberError handler throws', () => {
  it('still delivers every event once to every subscriber (the subscribers after the throwing one, and *, must not miss it)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 3, () => 2);
    await outbox.sync();
    const bus = new MemoryBus({
      retain: true,
      onSubscriberError: () => {
        throw new Error('the error handler failed too');
      },
    });
    const own: number[] = [];
    const all: number[] = [];
    bus.subscribe('S', (e) => {
      own.push(e.eventSeq);
      if (e.eventSeq === 3) throw new Error('subscriber failed on event 3');
    });
    bus.subscribe('*', (e) => all.push(e.eventSeq));
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5 } });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'everything acknowledged', () => p.stats());
    expect(heldSeqs(bus, 'S')).toEqual(range(1, 6));
    expect(own).toEqual(range(1, 6));
    // Before the fix: [1, 2, 4, 5, 6]. The handler's exception escapes publishNow after the event was
    // stored (memory-bus.ts deliver()), so the '*' subscribers never get event 3: the publisher takes
    // it for a failed publish and republishes it, and the bus answers DUPLICATE without delivering.
    expect(all).toEqual(range(1, 6));
  });
});

describe('a bus whose publishNow returns nothing', () => {
  it('does not crash the process with an uncaught TypeError, and publishing goes on (or fails with a typed error)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 3, () => 2);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    const bus: Bus = {
      name: 'returns-void',
      publish(): void {
        throw new Error('publish must not be used when publishNow exists');
      },
      // A bus written in JavaScript that stores and returns nothing (the callback path accepts a
      // missing acknowledgement: `ack?.duplicate === true`).
      publishNow(msg: BusMessage) {
        inner.publishNow(msg);
        return undefined as unknown as ReturnType<NonNullable<Bus['publishNow']>>;
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5 } });
    let progressed = false;
    const uncaught = await collectingUncaught(async () => {
      p.start();
      progressed = await eventually(() => p.stats().acknowledgedOffset === outbox.durableOffset || p.stats().lastError !== undefined, 2_000);
    });
    // Before the fix: TypeError "Cannot read properties of undefined (reading 'duplicate')" thrown out of
    // the pump's setImmediate (publisher.ts, `if (ack.duplicate)` in the publishNow branch), and
    // publishing stops after event 1 with no error reported.
    expect(uncaught.map(String)).toEqual([]);
    expect(progressed).toBe(true);
    const err = p.stats().lastError;
    if (err !== undefined) expect(err).toBeInstanceOf(OutboxError);
    else expect(heldSeqs(inner, 'S')).toEqual(range(1, 6));
    expect(p.stats().running).toBe(true);
  });
});

describe('acknowledged(offset) across stop(): STOPPED', () => {
  it('a waiter for an offset never reached settles once stop() is done (it must not hang for ever)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 3, () => 2);
    await outbox.sync();
    const bus: Bus = {
      name: 'down',
      publish(_msg, done) {
        done(new OutboxError('BUS_ERROR', 'injected: the bus is down'));
      },
      close: () => Promise.resolve(),
    };
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5 } });
    p.start();
    const waiter: { outcome: 'pending' | 'resolved' | 'rejected'; reason: unknown } = { outcome: 'pending', reason: undefined };
    p.acknowledged(outbox.durableOffset).then(
      () => {
        waiter.outcome = 'resolved';
      },
      (err: unknown) => {
        waiter.outcome = 'rejected';
        waiter.reason = err;
      },
    );
    await until(() => p.stats().failures >= 2, 5_000, 'the bus failing', () => p.stats());
    await within(p.stop(), 5_000, 'stop()');
    await settle(10);
    // Before the fix: still pending (the waiters list is never settled by stop()): a caller that awaits
    // the catch-up before shutting down hangs for ever (the engine guards its own wait with a timer).
    expect(waiter.outcome).toBe('rejected');
    expectOutboxErrorCode(waiter.reason, 'STOPPED');
  });
});

describe('a polling publisher (no outbox option) and its outbox: CURSOR_AHEAD, and an outbox made again is reported', () => {
  it('refuses to start on a cursor past the end of the outbox (CURSOR_AHEAD), instead of skipping the events written below the cursor', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 3, () => 2);
    await outbox.sync();
    // A cursor at a real command boundary of a longer outbox of the same history (the outbox lost
    // commands 4 and 5, which were published): the same layout, written to another directory.
    const twin = new EventWriter(openOutbox(tmpDir()));
    twin.commands('S', 5, () => 2);
    const ahead = twin.boundaries[4];
    if (!ahead) throw new Error('no boundary');
    expect(ahead.offset).toBeGreaterThan(outbox.durableOffset);
    writeCursor(dir, { offset: ahead.offset, lastEventSeq: ahead.eventSeq, commits: 1, history: outbox.history });
    const bus = new MemoryBus({ retain: true });
    const p = publisher({ dir, bus, pollIntervalMs: 2 });
    let thrown: unknown;
    try {
      p.start();
    } catch (err) {
      thrown = err;
    }
    // Before the fix: start() succeeds; once commands 4..8 are written, events 7..10 (below the cursor's
    // offset) are never published and 11..16 are. The README: "A cursor past the end of its outbox
    // stops start() with CURSOR_AHEAD"; publisher.ts start() checks it only with the outbox option.
    if (thrown === undefined) {
      w.commands('S', 5, () => 2);
      await outbox.sync();
      await until(() => p.stats().readOffset === outbox.durableOffset, 5_000, 'the outbox read', () => p.stats());
      await settle(5);
    }
    expect(thrown, `held: ${JSON.stringify(heldSeqs(bus, 'S'))}`).toBeInstanceOf(OutboxError);
    expect((thrown as OutboxError).code).toBe('CURSOR_AHEAD');
  });

  it('publishes an outbox made again in its directory while it runs (or reports it), instead of tailing the deleted file in silence', async () => {
    const dir = tmpDir();
    const first = openOutbox(dir);
    new EventWriter(first).commands('S', 3, () => 2);
    await first.sync();
    const bus = new MemoryBus({ retain: true });
    const errors: Error[] = [];
    const p = publisher({ dir, bus, pollIntervalMs: 2, commitIntervalMs: 2, onError: (e) => errors.push(e) });
    p.start();
    await until(() => bus.lastEventSeq('S') === 6, 5_000, 'the first outbox published', () => p.stats());
    await until(() => p.stats().committedOffset === first.durableOffset, 5_000, 'its cursor committed', () => p.stats());
    // The engine's data directory is wiped and the engine starts afresh (another process).
    await first.close();
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    const second = openOutbox(dir);
    expect(second.history).not.toBe(first.history);
    const secondWriter = new EventWriter(second);
    secondWriter.commands('T', 4, () => 2); // another symbol: no id in common with the first outbox
    await second.sync();
    const noticed = await eventually(() => bus.lastEventSeq('T') === 8 || errors.length > 0, 3_000);
    // Before the fix: nothing of the new outbox is published and nothing is reported (lastError undefined,
    // lagBytes 0): the reader keeps the deleted segment open (same file name) and never looks again.
    expect(noticed, `stats: ${JSON.stringify(p.stats())}`).toBe(true);
    if (errors.length > 0) {
      // Reported: the publisher must be restarted to publish the new outbox; then it does.
      expectOutboxErrorCode(errors[0], 'HISTORY_MISMATCH');
      // The new outbox grows past the offset the publisher had reached in the old one: its retries
      // must not read the new files from there and publish them under the old history.
      secondWriter.commands('T', 20, () => 2);
      await second.sync();
      const retried = errors.length;
      await until(() => errors.length >= retried + 3, 5_000, 'three more retries', () => p.stats());
      expect(bus.lastEventSeq('T')).toBe(0);
      expect(bus.messages('S').every((m) => m.history === first.history)).toBe(true);
      expect(bus.lastEventSeq('S')).toBe(6);
      await p.stop();
      p.start();
      await until(() => bus.lastEventSeq('T') === 48, 5_000, 'the new outbox published after a restart', () => p.stats());
      expect(bus.messages('T').map((m) => m.history)).toEqual(range(1, 48).map(() => second.history));
      await p.stop();
    }
    if (errors.length === 0) {
      expect(heldSeqs(bus, 'T')).toEqual(range(1, 8));
      expect(bus.messages('T').map((m) => m.history)).toEqual(range(1, 8).map(() => second.history));
    }
  });
});

describe('a polling publisher retrying a failed publish while its outbox is made again', () => {
  it('does not publish the new outbox under the old history from its retry; after a restart it publishes it under the new one', async () => {
    const dir = tmpDir();
    const first = openOutbox(dir);
    new EventWriter(first).commands('S', 3, () => 2);
    await first.sync();
    const mem = new MemoryBus({ retain: true });
    let down = true;
    const bus: Bus = {
      name: 'flaky',
      publish: (m, done) => {
        mem.publish(m, done);
      },
      publishNow(m: BusMessage) {
        if (down) throw new OutboxError('BUS_ERROR', 'injected: the bus is down');
        return mem.publishNow(m);
      },
      close: () => Promise.resolve(),
    };
    const errors: Error[] = [];
    const p = publisher({ dir, bus, pollIntervalMs: 2, commitIntervalMs: 2, backoff: { initialMs: 150, maxMs: 150, jitter: 0 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => errors.length >= 1, 5_000, 'a failed publish', () => p.stats());
    // While the publisher waits to retry, the data directory is wiped and a new outbox written.
    await first.close();
    for (const name of fs.readdirSync(dir)) fs.rmSync(path.join(dir, name), { recursive: true, force: true });
    const second = openOutbox(dir);
    new EventWriter(second).commands('T', 4, () => 2);
    await second.sync();
    down = false;
    await until(() => errors.some((e) => e instanceof OutboxError && e.code === 'HISTORY_MISMATCH'), 5_000, 'HISTORY_MISMATCH', () => p.stats());
    expect(mem.messages('T')).toEqual([]);
    await p.stop();
    p.start();
    await until(() => mem.lastEventSeq('T') === 8, 5_000, 'the new outbox published after a restart', () => p.stats());
    expect(mem.messages('T').map((m) => m.history)).toEqual(range(1, 8).map(() => second.history));
    await p.stop();
  });
});

// -------------------------------------------------------------------------------------------------
// Guards (correct today)

describe('the publisher while the bus is down', () => {
  it('never answering: holds at most `window` messages, reads no further than the window, commits nothing, and stop() returns', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 200, () => 2);
    await outbox.sync();
    let calls = 0;
    const bus: Bus = {
      name: 'black-hole',
      publish(): void {
        calls++; // neither stored nor acknowledged, ever
      },
      close: () => Promise.resolve(),
    };
    const window = 8;
    const p = publisher({ dir, bus, outbox, window, ackTimeoutMs: 40, commitIntervalMs: 1, backoff: { initialMs: 1, maxMs: 5 } });
    p.start();
    const seen: { inFlight: number; readOffset: number }[] = [];
    await until(
      () => {
        const s = p.stats();
        seen.push({ inFlight: s.inFlight, readOffset: s.readOffset });
        return s.failures >= 4;
      },
      10_000,
      'four timeouts',
      () => p.stats(),
    );
    // Each attempt publishes the same first `window` events again; nothing beyond them is read.
    const windowEnd = w.boundaries[window / 2 - 1]?.offset ?? -1;
    for (const s of seen) {
      expect(s.inFlight).toBeLessThanOrEqual(window);
      expect(s.readOffset).toBeLessThanOrEqual(windowEnd);
    }
    expect(calls).toBeLessThanOrEqual(window * (p.stats().failures + 1));
    expectOutboxErrorCode(p.stats().lastError, 'PUBLISH_TIMEOUT');
    await within(p.stop(), 5_000, 'stop()');
    expect(p.stats()).toMatchObject({ inFlight: 0, acknowledgedOffset: 0, committedOffset: 0, running: false });
    expect(readCursor(dir).offset).toBe(0);
  });
});

function expectOutboxErrorCode(err: unknown, code: string): void {
  expect(err).toBeInstanceOf(OutboxError);
  expect((err as OutboxError).code).toBe(code);
}

describe('late acknowledgements across stop()/start()', () => {
  it('answers held from before a stop() change nothing after the restart: counts stay right, each event is held once, the cursor reaches the end', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 4, () => 2);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 1_000, commitIntervalMs: 1 });
    p.start();
    await until(() => bus.calls.length === 8, 5_000, 'eight in flight', () => p.stats());
    bus.releaseCall(0);
    bus.releaseCall(1); // command 1 acknowledged
    await until(() => p.stats().acknowledgedOffset > 0, 5_000, 'command 1 acknowledged', () => p.stats());
    await within(p.stop(), 5_000, 'stop()'); // gives up on the others after the timeout
    expect(readCursor(dir)).toMatchObject({ lastEventSeq: 2 });
    const old = [...bus.held.keys()];
    const n0 = bus.calls.length;
    expect(old.length).toBeGreaterThan(0);
    p.start();
    await until(() => bus.calls.length === n0 + 6, 5_000, 'events 3..8 published again', () => p.stats());
    // Now the answers from before the stop() arrive (all stored: duplicates for the bus).
    for (const i of old) bus.releaseCall(i);
    await settle(5);
    expect(p.stats().inFlight).toBe(6);
    expect(p.stats().acknowledgedOffset).toBe(readCursor(dir).offset); // nothing advanced by them
    bus.auto = true;
    bus.release();
    await until(() => readCursor(dir).offset === outbox.durableOffset, 5_000, 'the cursor at the end', () => p.stats());
    expect(p.stats().inFlight).toBe(0);
    expect(bus.calls.slice(n0).map((m) => m.eventSeq)).toEqual(range(3, 8));
    expectHeld(bus.inner, { S: 8 });
  });
});

describe('a publishNow bus that fails in the middle of a command, then stop()', () => {
  it('commits the cursor at the last command whose events were all acknowledged, and a restart delivers the rest once', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 4, () => 3);
    await outbox.sync();
    const inner = new MemoryBus();
    const seen: number[] = [];
    inner.subscribe('S', (e) => seen.push(e.eventSeq));
    let down = true;
    const bus: Bus = {
      name: 'fails-from-event-8',
      publish(): void {
        throw new Error('publish must not be used when publishNow exists');
      },
      publishNow(msg: BusMessage) {
        if (down && msg.eventSeq >= 8) throw new OutboxError('BUS_ERROR', `injected: down at ${msg.id}`);
        return inner.publishNow(msg);
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 1, backoff: { initialMs: 5_000, maxMs: 5_000, jitter: 0 } });
    p.start();
    await until(() => p.stats().failures === 1, 5_000, 'the failure at event 8', () => p.stats());
    await within(p.stop(), 5_000, 'stop()');
    // Events 1..7 are stored; command 3 (events 7..9) is not complete: the cursor is after command 2.
    expect(readCursor(dir)).toMatchObject({ offset: w.boundaries[1]?.offset, lastEventSeq: 6, history: outbox.history });
    expect(seen).toEqual(range(1, 7));
    down = false;
    p.start();
    await until(() => readCursor(dir).offset === outbox.durableOffset, 5_000, 'the rest published', () => p.stats());
    expect(seen).toEqual(range(1, 12));
    expect(p.stats().duplicates).toBe(1); // event 7, stored before the failure
  });
});

describe('the engine driving a fault-injecting bus', () => {
  const SYM = 'BTCUSDT';
  const limit = (orderId: number, side: 'buy' | 'sell', price: number, qty: number): LimitCommand => ({
    type: 'limit',
    symbol: SYM,
    seq: 0,
    reqId: orderId,
    orderId,
    userId: 1 + (orderId % 3),
    ts: 0,
    side,
    price,
    qty,
    tif: 'GTC',
    stp: 'NONE',
  });

  it('failures, out-of-order and doubled acknowledgements: the bus holds each event once, in order, with its id and history; close() commits the cursor at the end; a reopen publishes nothing again', async () => {
    const dataDir = tmpDir();
    const evDir = path.join(dataDir, SYM, 'ev');
    const bus = new ChaosBus(new Set([1, 9, 30, 31, 77, 150]), 42);
    onCleanup(() => bus.close());
    const errors: Error[] = [];
    const options = {
      dataDir,
      symbols: [{ symbol: SYM }],
      segmentSize: 2 << 20,
      bus,
      publisher: { window: 16, ackTimeoutMs: 2_000, commitIntervalMs: 2, backoff: { initialMs: 1, maxMs: 10 }, onError: (e: Error) => errors.push(e) },
    };
    let engine = await Engine.open(options);
    const r = prng(9);
    const outcomes = [];
    for (let i = 1; i <= 120; i++) {
      outcomes.push(engine.submit(limit(i, r() < 0.5 ? 'buy' : 'sell', 100 + Math.floor(r() * 5), 1 + Math.floor(r() * 3))));
    }
    const events = (await Promise.all(outcomes)).flatMap((o) => o.events);
    const last = Math.max(...events.map((e) => e.eventSeq));
    const durableEnd = engine.actor(SYM)?.durableEventOffset;
    await engine.close();
    expect(readCursor(evDir)).toMatchObject({ offset: durableEnd, lastEventSeq: last, history: readHistory(evDir) });
    const held = bus.inner.messages(SYM);
    expect(held.map((m) => m.eventSeq)).toEqual(range(1, last));
    expect(held.map((m) => m.id)).toEqual(range(1, last).map((n) => `${SYM}:${n}`));
    expect(held.map((m) => m.event)).toEqual(events.sort((a, b) => a.eventSeq - b.eventSeq));
    expect(bus.failed).toBeGreaterThanOrEqual(2);
    expect(bus.reordered).toBeGreaterThan(0);
    expect(errors.length).toBeGreaterThan(0); // failures of messages after an earlier failure are not reported again
    expect(errors.every((e) => e instanceof OutboxError)).toBe(true);

    // Reopened on the same bus: nothing is published again (the cursor is at the end).
    const callsBefore = bus.calls;
    engine = await Engine.open(options);
    await settle(10);
    await engine.close();
    expect(bus.calls).toBe(callsBefore);
    expect(bus.inner.messages(SYM)).toHaveLength(last);
  });
});
