// Delivery at its edges: a bus that acknowledges a message twice (the publisher counts the first
// answer only, and still times out the message whose answer never came); symbols whose stream names
// would collide (BTC.USDT, BTC_USDT); a publisher that restarts from an older cursor after the
// duplicate window has passed (JetStream no longer recognises the ids: the order check, and the
// subject's last message, keep every event stored once and let the publisher go on).
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { MemoryBus, NatsJetStreamBus, writeCursor, type AckCallback, type Bus, type BusMessage } from '../src/index.js';
import { EventWriter, openOutbox, publisher, range, removeTmpDirs, runCleanups, sleep, tmpDir, uniqueTag, until } from './helpers.js';
import { deleteStreams, manager, NATS_URL, natsProblem, readStream, unavailable } from './nats-helpers.js';

const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL');

afterEach(runCleanups);
afterAll(removeTmpDirs);

describe('a bus that calls the acknowledgement callback twice', () => {
  it('still republishes a message whose acknowledgement never came (inFlight must not be double-decremented)', async () => {
    const inner = new MemoryBus({ retain: true });
    let dropped = false;
    const bus: Bus = {
      name: 'double-ack',
      publish(msg: BusMessage, done: AckCallback): void {
        if (msg.eventSeq === 2 && !dropped) {
          dropped = true; // the acknowledgement of the first attempt of event 2 is lost
          return;
        }
        inner.publish(msg, (err, ack) => {
          done(err, ack);
          if (msg.eventSeq === 1) done(err, ack); // a faulty bus acknowledges event 1 twice
        });
      },
      close: () => inner.close(),
    };
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.command('S', 2);
    await outbox.sync();
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 100, commitIntervalMs: 5, backoff: { initialMs: 5, maxMs: 20 } });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 3_000, 'event 2 republished after its lost acknowledgement', () => p.stats()).catch((e: unknown) => {
      throw new Error(`${(e as Error).message}; stats.inFlight=${p.stats().inFlight}, held=${JSON.stringify(inner.messages('S').map((m) => m.eventSeq))}`);
    });
    expect(inner.messages('S').map((m) => m.eventSeq)).toEqual([1, 2]);
  });
});

describe.skipIf(nats.skip)('NATS JetStream bus', () => {
  const streams: string[] = [];
  afterAll(async () => {
    const { nc, jsm } = await manager(NATS_URL);
    await deleteStreams(jsm, streams);
    await nc.close();
  });

  it('two valid symbols (BTC.USDT and BTC_USDT) can both be published', async () => {
    const prefix = `RF${uniqueTag()}`;
    const bus = await NatsJetStreamBus.connect({ streamPrefix: prefix, subjectPrefix: `${prefix}.ev`, storage: 'memory', ackTimeoutMs: 1000 });
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.command('BTC.USDT', 2);
    w.command('BTC_USDT', 2);
    await outbox.sync();
    streams.push(bus.stream('BTC.USDT'), bus.stream('BTC_USDT'));
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, ackTimeoutMs: 1000, commitIntervalMs: 5, backoff: { initialMs: 5, maxMs: 50 }, onError: (e) => errors.push(e) });
    p.start();
    try {
      await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 3_000, 'both symbols published', () => ({ ...p.stats(), lastError: errors.at(-1)?.message }));
    } finally {
      await p.stop();
      await bus.close();
    }
  });

  /**
   * Publishes `eventsPerCommand` (one command each) of `symbol` to a fresh stream whose duplicate
   * window is 0.5 s; writes the cursor a crash would have left (`crashAt`), waits past the window
   * and publishes again from it. Resolves with the event numbers the stream then holds.
   */
  async function republishAfterWindow(symbol: string, eventsPerCommand: number[], crashAt: (w: EventWriter) => { offset: number; lastEventSeq: number }): Promise<number[]> {
    const prefix = `RF${uniqueTag()}`;
    const opts = { streamPrefix: prefix, subjectPrefix: `${prefix}.ev`, storage: 'memory' as const, ackTimeoutMs: 1000, duplicateWindowMs: 500 };
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    for (const n of eventsPerCommand) w.command(symbol, n);
    await outbox.sync();
    const bus1 = await NatsJetStreamBus.connect(opts);
    streams.push(bus1.stream(symbol));
    const p1 = publisher({ dir, bus: bus1, outbox, commitIntervalMs: 5 });
    p1.start();
    await until(() => p1.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'first run acknowledged');
    await p1.stop();
    await bus1.close();
    writeCursor(dir, { ...crashAt(w), commits: 0 });
    await sleep(1_500); // a publisher down longer than the duplicate window
    const bus2 = await NatsJetStreamBus.connect(opts);
    const errors: Error[] = [];
    const p2 = publisher({ dir, bus: bus2, outbox, ackTimeoutMs: 1000, commitIntervalMs: 5, backoff: { initialMs: 5, maxMs: 50 }, onError: (e) => errors.push(e) });
    p2.start();
    try {
      await until(() => p2.stats().acknowledgedOffset === outbox.durableOffset, 4_000, 'second run acknowledged', () => ({ ...p2.stats(), lastError: errors.at(-1)?.message }));
    } finally {
      await p2.stop();
      await bus2.close();
    }
    const { nc, jsm } = await manager(NATS_URL);
    try {
      return (await readStream(nc, jsm, bus1.stream(symbol))).map((m) => m.event.eventSeq);
    } finally {
      await nc.close();
    }
  }

  it('a restart from the cursor after the duplicate window stores no event twice (first events)', async () => {
    // The publisher crashed before its cursor was ever written.
    expect(await republishAfterWindow('DW', [3], () => ({ offset: 0, lastEventSeq: 0 }))).toEqual(range(1, 3));
  });

  it('a restart from a mid-outbox cursor after the duplicate window makes progress (no endless OUT_OF_ORDER)', async () => {
    // The cursor was last written after the first command (events 1-2); events 3-4 are on the bus.
    const stored = await republishAfterWindow('DX', [2, 2], (w) => {
      const b0 = w.boundaries[0];
      if (!b0) throw new Error('no boundary');
      return { offset: b0.offset, lastEventSeq: b0.eventSeq };
    });
    expect(stored).toEqual(range(1, 4));
  });
});
