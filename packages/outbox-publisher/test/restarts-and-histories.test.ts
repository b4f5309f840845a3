// The publisher across stop()/start() and permanent failures, and outbox histories on JetStream
// with many messages in flight, purged streams and deleted streams.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryBus, NatsJetStreamBus, OutboxError, type Bus, type BusMessage } from '../src/index.js';
import { EventWriter, expectHeld, openOutbox, publisher, publishUntilAcknowledged, removeTmpDirs, runCleanups, sleep, tmpDir, until } from './helpers.js';
import { deleteStreams, manager, NATS_URL, natsProblem, readStream, testStreamOptions, unavailable } from './nats-helpers.js';

const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL');

afterEach(runCleanups);
afterAll(removeTmpDirs);

describe('review: Publisher', () => {
  it('a start() while stop() is still committing the cursor starts again once the stop is done, and publishes what follows', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 5);
    await outbox.sync();
    const bus = new MemoryBus({ retain: true });
    // A long commit interval: stop() has a cursor to write, on the thread pool.
    const p = publisher({ dir, bus, outbox, commitIntervalMs: 60_000 });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'first batch acknowledged', () => p.stats());
    expect(p.stats().committedOffset).toBe(0);
    const stopped = p.stop();
    await until(() => !p.stats().running, 5_000, 'stop() under way');
    p.start(); // restarted before stop() resolved (a supervisor that restarts without awaiting)
    await stopped;
    w.commands('S', 5);
    await outbox.sync();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'second batch acknowledged', () => p.stats());
    expectHeld(bus, { S: 20 });
  });

  it('a polling publisher started before its outbox was first opened sends every event with the outbox history id', async () => {
    const dir = tmpDir(); // the engine (another process) has not opened its outbox yet
    const bus = new MemoryBus({ retain: true });
    const p = publisher({ dir, bus, pollIntervalMs: 5, commitIntervalMs: 5 });
    p.start();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 2);
    await outbox.sync();
    await until(() => bus.lastEventSeq('S') === 4, 5_000, 'events published', () => p.stats());
    expect(bus.messages('S').map((m) => m.history)).toEqual([1, 2, 3, 4].map(() => outbox.history));
  });

  it('a permanently failing event in the middle of a command: consecutiveFailures and the backoff grow (the command\'s earlier events, acknowledged again as duplicates, do not reset them)', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 3, () => 2);
    await outbox.sync();
    const inner = new MemoryBus({ retain: true });
    const bus: Bus = {
      name: 'refuses-event-4',
      publish(): void {
        throw new Error('publish must not be called when publishNow exists');
      },
      publishNow(msg: BusMessage) {
        if (msg.eventSeq === 4) throw new OutboxError('BUS_ERROR', 'injected: event 4 is refused every time');
        return inner.publishNow(msg);
      },
      close: () => inner.close(),
    };
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 5, maxMs: 5_000, jitter: 0 } });
    p.start();
    // With a doubling backoff from 5 ms, three failures in a row take 35 ms; give it far longer.
    await until(() => p.stats().consecutiveFailures >= 3, 5_000, 'three failures in a row', () => p.stats());
  });

});

describe.skipIf(nats.skip)('review: NATS JetStream bus and outbox histories', () => {
  const streams: string[] = [];
  afterAll(async () => {
    const { nc, jsm } = await manager(NATS_URL);
    await deleteStreams(jsm, streams);
    await nc.close();
  });


  for (const afterWindow of [false, true]) {
    it(`stores none of a fresh outbox's events after another history's, with many in flight (${afterWindow ? 'after' : 'inside'} the duplicate window)`, async () => {
      const opts = testStreamOptions('RV', afterWindow ? 300 : 60_000);
      const bus = await NatsJetStreamBus.connect(opts);
      streams.push(bus.stream('S'));
      try {
        const dirA = tmpDir();
        const a = openOutbox(dirA);
        new EventWriter(a).commands('S', 3); // events 1..6 of history A
        await a.sync();
        expect(await publishUntilAcknowledged(dirA, a, bus, 5_000)).toMatchObject({ acknowledged: true, errors: [] });
        if (afterWindow) await sleep(800);
        // The data directory was wiped; the new outbox has more events than the stream holds.
        const dirB = tmpDir();
        const b = openOutbox(dirB);
        new EventWriter(b).commands('S', 5); // events 1..10 of history B
        await b.sync();
        const bus2 = await NatsJetStreamBus.connect(opts);
        try {
          await publishUntilAcknowledged(dirB, b, bus2, 600);
        } finally {
          await bus2.close();
        }
        const { nc, jsm } = await manager(NATS_URL);
        try {
          const held = await readStream(nc, jsm, bus.stream('S'));
          // Nothing of history B may be stored (README: "nothing of the new history is stored or dropped").
          expect(held.map((m) => [m.event.eventSeq, m.history === a.history ? 'A' : m.history === b.history ? 'B' : m.history])).toEqual(
            [1, 2, 3, 4, 5, 6].map((n) => [n, 'A']),
          );
        } finally {
          await nc.close();
        }
      } finally {
        await bus.close();
      }
    });
  }

  it('does not take a fresh outbox\'s events for duplicates of a purged stream\'s (inside the duplicate window)', async () => {
    const opts = testStreamOptions('RP', 60_000);
    const bus = await NatsJetStreamBus.connect(opts);
    streams.push(bus.stream('S'));
    try {
      const dirA = tmpDir();
      const a = openOutbox(dirA);
      new EventWriter(a).commands('S', 3); // events 1..6 of history A
      await a.sync();
      expect(await publishUntilAcknowledged(dirA, a, bus, 5_000)).toMatchObject({ acknowledged: true, errors: [] });
      // The operator empties the stream that holds the old history (instead of deleting it).
      const { nc, jsm } = await manager(NATS_URL);
      try {
        await jsm.streams.purge(bus.stream('S'));
        const dirB = tmpDir();
        const b = openOutbox(dirB);
        new EventWriter(b).commands('S', 2); // events 1..4 of history B
        await b.sync();
        const bus2 = await NatsJetStreamBus.connect(opts);
        let acknowledged = false;
        try {
          acknowledged = (await publishUntilAcknowledged(dirB, b, bus2, 1_000)).acknowledged;
        } finally {
          await bus2.close();
        }
        // Either B's events are stored, or they are refused (and wait in the outbox): never acknowledged unstored.
        const stored = (await readStream(nc, jsm, bus.stream('S'))).map((m) => [m.event.eventSeq, m.history === b.history ? 'B' : m.history]);
        expect({ acknowledged, stored }).toEqual(acknowledged ? { acknowledged, stored: [1, 2, 3, 4].map((n) => [n, 'B']) } : { acknowledged, stored: [] });
      } finally {
        await nc.close();
      }
    } finally {
      await bus.close();
    }
  });


  it('publishes again once the mismatching stream is deleted as the HISTORY_MISMATCH error says (the stream is made again)', async () => {
    const opts = testStreamOptions('RD', 60_000);
    const bus = await NatsJetStreamBus.connect(opts);
    streams.push(bus.stream('S'));
    const dirA = tmpDir();
    const a = openOutbox(dirA);
    new EventWriter(a).commands('S', 2);
    await a.sync();
    try {
      expect(await publishUntilAcknowledged(dirA, a, bus, 5_000)).toMatchObject({ acknowledged: true, errors: [] });
    } finally {
      await bus.close();
    }
    const dirB = tmpDir();
    const b = openOutbox(dirB);
    new EventWriter(b).commands('S', 2);
    await b.sync();
    const bus2 = await NatsJetStreamBus.connect(opts);
    const errors: Error[] = [];
    const p = publisher({ dir: dirB, bus: bus2, outbox: b, ackTimeoutMs: 1000, commitIntervalMs: 5, backoff: { initialMs: 5, maxMs: 50 }, onError: (e) => errors.push(e) });
    p.start();
    const { nc, jsm } = await manager(NATS_URL);
    try {
      await until(() => errors.some((e) => (e as { code?: string }).code === 'HISTORY_MISMATCH'), 5_000, 'HISTORY_MISMATCH reported');
      // The recovery the error message gives: delete the stream. The publisher retries by itself.
      await jsm.streams.delete(bus2.stream('S'));
      await until(() => p.stats().acknowledgedOffset === b.durableOffset, 5_000, "the new history published after the old stream's deletion", () => ({
        ...p.stats(),
        lastError: errors.at(-1)?.message,
      }));
      expect((await readStream(nc, jsm, bus2.stream('S'))).map((m) => [m.event.eventSeq, m.history === b.history])).toEqual([1, 2, 3, 4].map((n) => [n, true]));
    } finally {
      await p.stop();
      await bus2.close();
      await nc.close();
    }
  });

});
