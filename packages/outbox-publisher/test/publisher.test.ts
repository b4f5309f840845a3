// The Publisher with in-process buses: every event exactly once and in order, CmdEnd never
// published, the cursor (committed at CmdEnd boundaries, at the outbox end after stop()), restarts
// from the cursor, the durable end, polling, the window, stats, rewinds and duplicates, stop()
// with a bus that never answers, bad options, I/O errors and a corrupt outbox.
import fs from 'node:fs';
import path from 'node:path';
import { WalError } from '@gx3/wal';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { CURSOR_FILE, EventOutbox, MemoryBus, OutboxError, Publisher, readCursor, writeCursor, type AckCallback, type Bus, type BusMessage, type PublisherOptions } from '../src/index.js';
import {
  EventWriter,
  expectHeld,
  expectOutboxError,
  GatedBus,
  heldSeqs,
  openOutbox,
  publisher,
  range,
  readOutbox,
  RecordingBus,
  removeTmpDirs,
  runCleanups,
  settle,
  SMALL,
  snapshot,
  thrownBy,
  tmpDir,
  until,
  within,
} from './helpers.js';

afterAll(removeTmpDirs);

afterEach(async () => {
  await runCleanups();
});

/** A state dump for timeout messages. */
function state(p: Publisher): () => unknown {
  return () => p.stats();
}

describe('Publisher', () => {
  it('publishes every event exactly once, in order, with its payload, to a retaining MemoryBus; the cursor ends at the outbox end', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    for (let c = 0; c < 300; c++) w.command(['AAA', 'BBB', 'CCC'][c % 3] ?? 'AAA', 1 + (c % 4));
    await outbox.sync();
    const bus = new MemoryBus({ retain: true });
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 5 });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    await p.stop();
    expectHeld(bus, { AAA: w.lastEventSeq('AAA'), BBB: w.lastEventSeq('BBB'), CCC: w.lastEventSeq('CCC') });
    const s = p.stats();
    expect(s.published).toBe(w.events);
    expect(s.acknowledged).toBe(w.events);
    expect(s.duplicates).toBe(0);
    expect(s.failures).toBe(0);
    expect(s.inFlight).toBe(0);
    expect(s.lagBytes).toBe(0);
    expect(s.running).toBe(false);
    expect(s.committedOffset).toBe(outbox.durableOffset);
    const cursor = readCursor(dir);
    expect(cursor.offset).toBe(outbox.durableOffset);
    expect(cursor.lastEventSeq).toBe(w.lastEventSeq('CCC')); // the last command was CCC's
    expect(cursor.commits).toBeGreaterThanOrEqual(1);
  });

  it('follows the outbox across segment files and window refills (a backlog of several segments)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir, { durability: 'none' });
    const w = new EventWriter(outbox);
    w.commands('AAA', 4000, () => 2); // 8000 events of ~95 bytes: 3 segments of 256 KiB
    await outbox.sync();
    expect(fs.readdirSync(dir).filter((n) => n.endsWith('.wal')).length).toBeGreaterThanOrEqual(3);
    const bus = new RecordingBus();
    const p = publisher({ dir, bus, outbox, window: 256 });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    await p.stop();
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(1, 8000));
    const events = readOutbox(dir).filter((r) => r.event.type !== 'cmdEnd');
    expect(bus.calls.map((m) => m.event)).toEqual(events.map((r) => r.event));
    expect(readCursor(dir).offset).toBe(outbox.durableOffset);
  });

  it('never publishes a CmdEnd marker, and hands the bus the ids and payloads of the outbox records', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 40, (i) => i % 3); // some commands have no event at all: a bare CmdEnd
    await outbox.sync();
    const bus = new RecordingBus();
    const p = publisher({ dir, bus, outbox });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    await p.stop();
    expect(bus.calls.some((m) => m.event.type === 'cmdEnd')).toBe(false);
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(1, w.events));
    const events = readOutbox(dir).filter((r) => r.event.type !== 'cmdEnd');
    expect(bus.calls.map((m) => m.event)).toEqual(events.map((r) => r.event));
    expectHeld(bus.inner, { AAA: w.lastEventSeq('AAA') });
    expect(readCursor(dir).offset).toBe(outbox.durableOffset);
  });

  it('delivers events appended while it runs (woken by the outbox), each once and intact, with a small window', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    const bus = new MemoryBus({ retain: true });
    const delivered: BusMessage[] = [];
    bus.subscribe('*', (_e, m) => delivered.push(snapshot(m)));
    const p = publisher({ dir, bus, outbox, window: 8, commitIntervalMs: 1 });
    p.start();
    for (let round = 0; round < 60; round++) {
      w.commands(round % 2 === 0 ? 'AAA' : 'BBB', 1 + (round % 5), (i) => 1 + ((round + i) % 3));
      await outbox.sync();
      if (round % 10 === 0) await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, `round ${round} acknowledged`, state(p));
    }
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    await p.stop();
    const last = { AAA: w.lastEventSeq('AAA'), BBB: w.lastEventSeq('BBB') };
    // What subscribers saw, copied as it was delivered...
    const bySymbol = (sym: string): number[] => delivered.filter((m) => m.symbol === sym).map((m) => m.eventSeq);
    expect(bySymbol('AAA')).toEqual(range(1, last.AAA));
    expect(bySymbol('BBB')).toEqual(range(1, last.BBB));
    // ...and what the bus retained, read after the publisher read on (payloads must be the bus's own).
    expectHeld(bus, last);
    expect(readCursor(dir).offset).toBe(outbox.durableOffset);
  });

  it('a restarted publisher resumes at the cursor: nothing is published twice, new events are', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 50, () => 2);
    await outbox.sync();
    const first = publisher({ dir, bus: new MemoryBus(), outbox });
    first.start();
    await until(() => first.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'first publisher done', state(first));
    await first.stop();
    expect(readCursor(dir)).toMatchObject({ offset: outbox.durableOffset, lastEventSeq: 100 });

    const bus = new RecordingBus(); // a fresh bus accepts any first message: only the cursor prevents repeats
    const second = publisher({ dir, bus, outbox });
    second.start();
    expect(second.stats().committedOffset).toBe(outbox.durableOffset);
    await settle();
    expect(bus.calls).toEqual([]);
    w.commands('AAA', 5, () => 3);
    await outbox.sync();
    await until(() => second.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'new events acknowledged', state(second));
    await second.stop();
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(101, 115));
    expect(second.stats().published).toBe(15);
    expect(readCursor(dir)).toMatchObject({ offset: outbox.durableOffset, lastEventSeq: 115 });
  });

  it('resumes at a cursor written by hand (a known-good offset)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 10, () => 2);
    await outbox.sync();
    const b = w.boundaries[3];
    if (!b) throw new Error('no boundary');
    writeCursor(dir, { offset: b.offset, lastEventSeq: b.eventSeq, commits: 0 });
    const bus = new RecordingBus();
    const p = publisher({ dir, bus, outbox });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    await p.stop();
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(9, 20));
  });

  it('never reads past the durable end: flushed but unsynced events wait for sync()', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 5, () => 2);
    await outbox.sync();
    const durable = outbox.durableOffset;
    w.commands('AAA', 5, () => 2);
    outbox.flush(); // in the segment file (readable by anyone), not yet durable
    expect(outbox.durableOffset).toBe(durable);
    expect(readOutbox(dir)).toHaveLength(30); // the bytes are there to be (wrongly) read
    const bus = new RecordingBus();
    const p = publisher({ dir, bus, outbox });
    p.start();
    await until(() => p.stats().acknowledgedOffset === durable, 20_000, 'the durable part acknowledged', state(p));
    await settle(30); // acknowledgements wake the publisher: give it every chance to read on
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(1, 10));
    expect(p.stats().readOffset).toBe(durable);
    expect(p.stats().outboxEnd).toBe(durable);
    await outbox.sync();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'the rest acknowledged after sync', state(p));
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(1, 20));
  });

  it('never reads past the durable end while its window is full either', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 4, () => 2);
    await outbox.sync();
    const durable = outbox.durableOffset;
    w.commands('AAA', 4, () => 2);
    outbox.flush();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, window: 3 });
    p.start();
    for (let i = 0; i < 10; i++) {
      await until(() => bus.held.size > 0 || bus.calls.length >= 8, 20_000, 'a publish to acknowledge', state(p));
      bus.release(1);
      await settle(2);
    }
    await settle(20);
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(1, 8));
    expect(p.stats().acknowledgedOffset).toBe(durable);
    await outbox.sync();
    bus.auto = true;
    bus.release();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'the rest acknowledged', state(p));
    expect(heldSeqs(bus.inner, 'AAA')).toEqual(range(1, 16));
  });

  for (const codec of ['binary', 'json'] as const) {
    it(`polls an outbox written by another writer (no outbox option, ${codec} codec)`, async () => {
      const dir = tmpDir();
      const writer = openOutbox(dir, { codec });
      const w = new EventWriter(writer);
      const bus = new MemoryBus({ retain: true });
      const p = publisher({ dir, bus, codec, pollIntervalMs: 2, commitIntervalMs: 1 });
      p.start();
      for (let round = 0; round < 12; round++) {
        w.commands('PPP', 3, () => 2);
        await writer.sync();
        const end = writer.durableOffset;
        await until(() => p.stats().acknowledgedOffset === end, 20_000, `round ${round} picked up by polling`, state(p));
      }
      await until(() => readCursor(dir).offset === writer.durableOffset, 20_000, 'the cursor committed without stop()', state(p));
      await p.stop();
      expectHeld(bus, { PPP: 72 }, writer.codec);
    });
  }

  it('polls an outbox whose log directory does not exist yet', async () => {
    const root = tmpDir();
    const dir = path.join(root, 'ev');
    const cursorDir = tmpDir();
    const bus = new MemoryBus({ retain: true });
    const p = publisher({ dir, cursorDir, bus, pollIntervalMs: 2 });
    p.start();
    await settle(5);
    const writer = openOutbox(dir);
    const w = new EventWriter(writer);
    w.commands('QQQ', 5);
    await writer.sync();
    await until(() => p.stats().acknowledgedOffset === writer.durableOffset, 20_000, 'events picked up', state(p));
    await p.stop();
    expectHeld(bus, { QQQ: 10 });
    expect(fs.existsSync(path.join(cursorDir, CURSOR_FILE))).toBe(true);
    expect(fs.existsSync(path.join(dir, CURSOR_FILE))).toBe(false);
  });

  it('keeps at most `window` messages in flight (CmdEnd markers do not count)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 20, () => 1);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, window: 4 });
    p.start();
    await until(() => bus.calls.length === 4, 20_000, '4 publishes', state(p));
    await settle();
    expect(bus.calls.length).toBe(4);
    expect(p.stats().inFlight).toBe(4);
    bus.release(1);
    await until(() => bus.calls.length === 5, 20_000, 'a fifth publish', state(p));
    await settle();
    expect(bus.calls.length).toBe(5);
    expect(p.stats().inFlight).toBe(4);
    bus.release(3);
    await until(() => bus.calls.length === 8, 20_000, '8 publishes', state(p));
    await settle();
    expect(bus.calls.length).toBe(8);
    bus.auto = true;
    bus.release();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    expect(heldSeqs(bus.inner, 'AAA')).toEqual(range(1, 20));
  });

  it('advances the acknowledged offset only over a contiguous prefix of acknowledged events, to CmdEnd boundaries', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.command('AAA', 3); // events 1..3, calls 0..2
    w.command('AAA', 2); // events 4..5, calls 3..4
    w.command('AAA', 1); // event 6, call 5
    await outbox.sync();
    const [b1, b2, b3] = w.boundaries.map((b) => b.offset);
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 1 });
    p.start();
    await until(() => bus.calls.length === 6, 20_000, '6 publishes', state(p));
    const acked = (): number => p.stats().acknowledgedOffset;
    // Acknowledge out of order: 2, then 5, then 4, then 1, then 3, then 6.
    bus.releaseCall(1);
    bus.releaseCall(4);
    bus.releaseCall(3);
    await settle(3);
    expect(acked()).toBe(0);
    expect(p.stats().lagBytes).toBe(outbox.durableOffset);
    bus.releaseCall(0);
    await settle(3);
    expect(acked()).toBe(0); // event 3 is still missing
    expect(p.stats().lastEventSeq).toBe(2);
    bus.releaseCall(2);
    await settle(3);
    expect(acked()).toBe(b2); // events 1..5: commands 1 and 2
    expect(p.stats().lastEventSeq).toBe(5);
    await until(() => readCursor(dir).offset === b2, 20_000, 'the cursor committed at the second boundary', state(p));
    expect(readCursor(dir).lastEventSeq).toBe(5);
    expect(b1).toBeLessThan(b2 ?? 0);
    bus.releaseCall(5);
    await settle(3);
    expect(acked()).toBe(b3);
    expect(p.stats().lagBytes).toBe(0);
  });

  it('reports lag, counts and the committed offset in stats()', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 10, () => 2);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 1 });
    const before = p.stats();
    expect(before.running).toBe(false);
    expect(before.published).toBe(0);
    p.start();
    await until(() => bus.calls.length === 20, 20_000, '20 publishes', state(p));
    let s = p.stats();
    expect(s.running).toBe(true);
    expect(s.published).toBe(20);
    expect(s.acknowledged).toBe(0);
    expect(s.inFlight).toBe(20);
    expect(s.outboxEnd).toBe(outbox.durableOffset);
    expect(s.lagBytes).toBe(outbox.durableOffset);
    expect(s.acknowledgedOffset).toBe(0);
    expect(s.committedOffset).toBe(0);
    expect(s.readOffset).toBe(outbox.durableOffset);
    bus.release(10);
    await settle(3);
    s = p.stats();
    expect(s.acknowledged).toBe(10);
    expect(s.inFlight).toBe(10);
    expect(s.acknowledgedOffset).toBe(w.boundaries[4]?.offset);
    expect(s.lagBytes).toBe(outbox.durableOffset - (w.boundaries[4]?.offset ?? 0));
    expect(s.lastEventSeq).toBe(10);
    bus.release();
    await until(() => p.stats().committedOffset === outbox.durableOffset, 20_000, 'the cursor committed', state(p));
    s = p.stats();
    expect(s.lagBytes).toBe(0);
    expect(s.acknowledged).toBe(20);
    expect(s.duplicates).toBe(0);
    expect(s.failures).toBe(0);
    expect(s.lastError).toBeUndefined();
    expect(s.lastEventSeq).toBe(20);
    // New durable events show up as lag.
    w.commands('AAA', 1, () => 1);
    await outbox.sync();
    await until(() => p.stats().inFlight === 1, 20_000, 'the new event in flight', state(p));
    expect(p.stats().lagBytes).toBe(outbox.durableOffset - (w.boundaries[9]?.offset ?? 0));
    bus.release();
    await until(() => p.stats().lagBytes === 0, 20_000, 'no lag', state(p));
  });

  it('counts a failure, keeps the last error, calls onError, rewinds and still delivers everything once', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 20, () => 2);
    await outbox.sync();
    const boom = new OutboxError('BUS_ERROR', 'injected: publish 7 failed');
    const inner = new MemoryBus({ retain: true });
    let calls = 0;
    const bus: Bus = {
      name: 'fails-once',
      publish(msg: BusMessage, done: AckCallback): void {
        calls++;
        if (calls === 7) {
          setImmediate(() => {
            done(boom);
          });
          return;
        }
        const copy = snapshot(msg);
        setImmediate(() => {
          inner.publish(copy, done);
        });
      },
      close: () => inner.close(),
    };
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    const s = p.stats();
    expect(s.failures).toBe(1);
    expect(s.lastError).toBe(boom);
    expect(errors).toEqual([boom]);
    expect(s.published).toBeGreaterThan(40);
    expectHeld(inner, { AAA: 40 });
  });

  it('treats a bus that throws from publish (instead of calling back) as a failed publish: rewinds, retries, delivers everything once', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 20, () => 2);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    let calls = 0;
    const bus: Bus = {
      name: 'throws-once',
      publish(msg: BusMessage, done: AckCallback): void {
        calls++;
        if (calls === 5) throw new Error('injected: publish threw');
        inner.publish(msg, done);
      },
      close: () => inner.close(),
    };
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    const s = p.stats();
    expect(s.failures).toBe(1);
    expect(errors.map((e) => e.message)).toEqual(['injected: publish threw']);
    expect(s.running).toBe(true);
    expectHeld(inner, { AAA: 40 });
  });

  it('uses only publishNow of a bus that has it; a publishNow that throws (after storing) is a failed publish: rewinds, retries, counts the duplicate, delivers everything once', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 20, () => 2);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    let calls = 0;
    const bus: Bus = {
      name: 'sync-throws-once',
      publish(): void {
        throw new Error('publish must not be called when publishNow exists');
      },
      publishNow(msg: BusMessage) {
        calls++;
        const ack = inner.publishNow(msg);
        if (calls === 7) throw new OutboxError('BUS_ERROR', 'injected: the acknowledgement of event 7 was lost');
        return ack;
      },
      close: () => inner.close(),
    };
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 1, backoff: { initialMs: 1, maxMs: 5 }, onError: (e) => errors.push(e) });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    await p.stop();
    const s = p.stats();
    expect(errors.map((e) => e.message)).toEqual(['injected: the acknowledgement of event 7 was lost']);
    expect(s).toMatchObject({ failures: 1, inFlight: 0, published: 41, acknowledged: 40, lastEventSeq: 40 });
    // The rewind went back to the end of command 3 (event 6): event 7 was stored before its failure.
    expect(s.duplicates).toBe(1);
    expectHeld(inner, { AAA: 40 });
    expect(readCursor(dir)).toMatchObject({ offset: outbox.durableOffset, lastEventSeq: 40 });
  });

  it('counts duplicates after a rewind: events stored before the failure are acknowledged as duplicates', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 20, () => 2);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    let calls = 0;
    // Stores every message at once, acknowledges on a later turn; the 4th (event 4, the end of
    // command 2) is stored but its acknowledgement is an error (a lost acknowledgement).
    const bus: Bus = {
      name: 'loses-an-ack',
      publish(msg: BusMessage, done: AckCallback): void {
        const n = ++calls;
        inner.publish(snapshot(msg), (err, ack) => {
          setImmediate(() => {
            if (n === 4) done(new OutboxError('PUBLISH_TIMEOUT', 'injected: acknowledgement lost'));
            else done(err, ack);
          });
        });
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5 } });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    const s = p.stats();
    expect(s.failures).toBe(1);
    expect(s.lastError).toBeInstanceOf(OutboxError);
    // Events 3 and 4 (command 2) were stored before the failure and must be republished: the
    // rewind cannot resume past the start of command 2.
    expect(s.duplicates).toBeGreaterThanOrEqual(2);
    expect(s.duplicates).toBeLessThanOrEqual(40);
    expect(s.published).toBeGreaterThanOrEqual(40 + 2);
    expectHeld(inner, { AAA: 40 });
  });

  it('survives a throwing onError handler', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', 5);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    let calls = 0;
    const bus: Bus = {
      name: 'fails-first',
      publish(msg, done) {
        if (++calls === 1) {
          done(new OutboxError('BUS_ERROR', 'injected'));
          return;
        }
        inner.publish(msg, done);
      },
      close: () => inner.close(),
    };
    const p = publisher({
      dir,
      bus,
      outbox,
      backoff: { initialMs: 1 },
      onError: () => {
        throw new Error('handler failed');
      },
    });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    expect(p.stats().failures).toBe(1);
    expect(heldSeqs(inner, 'AAA')).toEqual(range(1, 10));
  });

  it('retries with backoff until the bus accepts (counting attempts)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', 3);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    let attempts = 0;
    const bus: Bus = {
      name: 'down-for-a-while',
      publish(msg, done) {
        attempts++;
        if (attempts <= 6) {
          done(new OutboxError('BUS_ERROR', `injected failure ${attempts}`));
          return;
        }
        inner.publish(msg, done);
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 4 } });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    expect(p.stats().failures).toBe(6);
    expect(attempts).toBe(6 + 6); // one publish per failed attempt (it failed at once), then 6 events
    expect(heldSeqs(inner, 'AAA')).toEqual(range(1, 6));
  });

  it('stop() waits for messages in flight that are acknowledged in time, then commits everything', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', 10, () => 2);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 20_000, commitIntervalMs: 60_000 });
    p.start();
    await until(() => bus.calls.length === 20, 20_000, '20 publishes', state(p));
    let stopped = false;
    const stopping = p.stop().then(() => {
      stopped = true;
    });
    await settle(5);
    expect(stopped).toBe(false);
    bus.release();
    await within(stopping, 20_000, 'stop()');
    expect(readCursor(dir).offset).toBe(outbox.durableOffset);
    expect(p.stats().committedOffset).toBe(outbox.durableOffset);
  });

  it('stop() while the bus never acknowledges returns after the acknowledgement timeout and commits only acknowledged progress', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 6, () => 3);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 300, commitIntervalMs: 60_000 });
    p.start();
    await until(() => bus.calls.length === 18, 20_000, '18 publishes', state(p));
    // Acknowledge commands 1 and 2 and the first two events of command 3; nothing else, ever.
    bus.release(8);
    await until(() => p.stats().acknowledged === 8, 20_000, '8 acknowledgements', state(p));
    expect(readCursor(dir).offset).toBe(0); // not committed yet (long commit interval)
    await within(p.stop(), 20_000, 'stop()');
    const cursor = readCursor(dir);
    expect(cursor.offset).toBe(w.boundaries[1]?.offset);
    expect(cursor.lastEventSeq).toBe(6);
    expect(p.stats().running).toBe(false);
    expect(p.stats().acknowledged).toBe(8);
    // Late acknowledgements after stop() change nothing.
    bus.release();
    await settle(3);
    expect(p.stats().acknowledged).toBe(8);
    expect(readCursor(dir).offset).toBe(w.boundaries[1]?.offset);
    // The next publisher republishes from command 3 (events 7..18), duplicates included.
    const bus2 = new RecordingBus();
    const p2 = publisher({ dir, bus: bus2, outbox });
    p2.start();
    await until(() => p2.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'the rest acknowledged', state(p2));
    expect(bus2.calls.map((m) => m.eventSeq)).toEqual(range(7, 18));
  });

  it('a message without acknowledgement times out (PUBLISH_TIMEOUT) and is republished', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', 5, () => 2);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    let calls = 0;
    const bus: Bus = {
      name: 'swallows-one',
      publish(msg, done) {
        calls++;
        if (msg.eventSeq === 10 && calls === 10) return; // the last event, first time: neither stored nor acknowledged
        inner.publish(msg, done);
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 100, backoff: { initialMs: 1, maxMs: 5 } });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    expect(p.stats().failures).toBe(1);
    expectOutboxError(p.stats().lastError, 'PUBLISH_TIMEOUT');
    expect(calls).toBeGreaterThan(10);
    expect(heldSeqs(inner, 'AAA')).toEqual(range(1, 10));
  });

  it('acknowledged(offset) resolves once everything before the offset is acknowledged', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 4, () => 2);
    await outbox.sync();
    const bus = new GatedBus();
    const p = publisher({ dir, bus, outbox });
    p.start();
    await until(() => bus.calls.length === 8, 20_000, '8 publishes', state(p));
    let done = false;
    const target = w.boundaries[1]?.offset ?? -1;
    const waiting = p.acknowledged(target).then(() => {
      done = true;
    });
    bus.release(3);
    await settle(3);
    expect(done).toBe(false);
    bus.release(1);
    await within(waiting, 20_000, 'acknowledged()');
    expect(p.stats().acknowledgedOffset).toBeGreaterThanOrEqual(target);
    await within(p.acknowledged(0), 1000, 'acknowledged(0)');
    bus.auto = true;
    bus.release();
  });

  it('reports a cursor that cannot be written (CURSOR_IO) and keeps publishing', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', 5);
    await outbox.sync();
    const cursorDir = path.join(tmpDir(), 'gone'); // missing: reads as offset 0, writes fail
    const bus = new MemoryBus({ retain: true });
    const errors: Error[] = [];
    const p = publisher({ dir, cursorDir, bus, outbox, commitIntervalMs: 1, onError: (e) => errors.push(e) });
    p.start();
    await until(() => p.stats().lastError !== undefined, 20_000, 'the commit failure reported', state(p));
    expectOutboxError(p.stats().lastError, 'CURSOR_IO');
    expect(p.stats().committedOffset).toBe(0);
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    expect(heldSeqs(bus, 'AAA')).toEqual(range(1, 10));
  });

  it('stops at a corrupt outbox record with a WalError CORRUPT and publishes nothing past it', async () => {
    const dir = tmpDir();
    const outbox = EventOutbox.open(dir, { durability: 'batch', ...SMALL });
    const w = new EventWriter(outbox);
    w.commands('AAA', 10, () => 2);
    await outbox.sync();
    await outbox.close();
    // Flip a byte in the payload of the first event of command 6 (event 11).
    const rec = readOutbox(dir).find((r) => r.event.eventSeq === 11 && r.event.type === 'trade');
    if (!rec) throw new Error('no record for event 11');
    const seg = fs.readdirSync(dir).find((n) => n.endsWith('.wal'));
    if (!seg) throw new Error('no segment');
    const file = path.join(dir, seg);
    const b = fs.readFileSync(file);
    b[rec.offset + 8 + 3] = (b[rec.offset + 8 + 3] ?? 0) ^ 0x40;
    fs.writeFileSync(file, b);
    const bus = new MemoryBus({ retain: true });
    const p = publisher({ dir, bus, pollIntervalMs: 2, backoff: { initialMs: 1, maxMs: 10 } });
    p.start();
    await until(() => p.stats().failures >= 2, 20_000, 'the corruption reported (and retried)', state(p));
    const err = p.stats().lastError;
    expect(err).toBeInstanceOf(WalError);
    expect((err as WalError).code).toBe('CORRUPT');
    expect(heldSeqs(bus, 'AAA')).toEqual(range(1, 10));
    expect(p.stats().acknowledgedOffset).toBe(w.boundaries[4]?.offset);
  });

  it('refuses invalid options with INVALID_OPTIONS', () => {
    const dir = tmpDir();
    const bus = new MemoryBus();
    const bad: Partial<PublisherOptions>[] = [
      { window: 0 },
      { window: -1 },
      { window: Number.NaN },
      { pollIntervalMs: 0 },
      { commitIntervalMs: -1 },
      { ackTimeoutMs: 0 },
      { ackTimeoutMs: Number.POSITIVE_INFINITY },
      { backoff: { initialMs: 0 } },
      { backoff: { maxMs: -5 } },
      { backoff: { jitter: 1.5 } },
      { backoff: { jitter: -0.1 } },
      { backoff: { jitter: Number.NaN } },
    ];
    for (const o of bad) {
      const e = thrownBy(() => new Publisher({ dir, bus, ...o }));
      expectOutboxError(e, 'INVALID_OPTIONS');
    }
    expect(() => new Publisher({ dir, bus, commitIntervalMs: 0, backoff: { jitter: 0 } })).not.toThrow();
    expect(() => new Publisher({ dir, bus, backoff: { jitter: 1 } })).not.toThrow();
  });

  it('start() and stop() are idempotent', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('AAA', 3);
    await outbox.sync();
    const bus = new RecordingBus();
    const p = publisher({ dir, bus, outbox });
    await p.stop(); // never started
    p.start();
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', state(p));
    await p.stop();
    await p.stop();
    expect(bus.calls.map((m) => m.eventSeq)).toEqual(range(1, 6));
  });

  describe('a stopped publisher started again', () => {
    it('publishes after a stop() that came during a retry backoff', async () => {
      const dir = tmpDir();
      const outbox = openOutbox(dir);
      new EventWriter(outbox).commands('AAA', 3);
      await outbox.sync();
      const inner = new MemoryBus({ retain: true });
      let failing = true;
      const bus: Bus = {
        name: 'switchable',
        publish(msg, done) {
          if (failing) done(new OutboxError('BUS_ERROR', 'injected: down'));
          else inner.publish(msg, done);
        },
        close: () => inner.close(),
      };
      const p = publisher({ dir, bus, outbox, backoff: { initialMs: 60_000, maxMs: 60_000, jitter: 0 } });
      p.start();
      await until(() => p.stats().failures === 1, 20_000, 'a failure (then a long backoff)', state(p));
      await p.stop();
      failing = false;
      p.start();
      await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 10_000, 'everything acknowledged after the restart', state(p));
      expect(heldSeqs(inner, 'AAA')).toEqual(range(1, 6));
    });

    it('commits its cursor periodically again (not only on stop())', async () => {
      const dir = tmpDir();
      const outbox = openOutbox(dir);
      const w = new EventWriter(outbox);
      w.commands('AAA', 3);
      await outbox.sync();
      const bus = new MemoryBus();
      const p = publisher({ dir, bus, outbox, commitIntervalMs: 200 });
      p.start();
      await within(p.acknowledged(outbox.durableOffset), 20_000, 'acknowledged()');
      await p.stop(); // a commit was due in 200 ms: stop() commits at once instead
      expect(readCursor(dir).offset).toBe(outbox.durableOffset);
      p.start();
      w.commands('AAA', 3);
      await outbox.sync();
      await within(p.acknowledged(outbox.durableOffset), 20_000, 'acknowledged() after the restart');
      await until(() => readCursor(dir).offset === outbox.durableOffset, 10_000, 'the cursor committed while running', state(p));
    });
  });
});
