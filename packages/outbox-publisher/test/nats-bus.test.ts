// The NATS JetStream bus against the shared server (NATS_URL, default nats://127.0.0.1:4222): a
// stream per symbol holding every event exactly once and in order (counted, and read back with
// its Nats-Msg-Id and payload), republishing adding nothing (duplicates counted), the order check
// (Nats-Expected-Last-Msg-Id), ensureStream on existing streams, a closed bus. Without a server
// the tests are skipped with a warning, except under CI where that is a failure.
import { codecByName, type Event } from '@gx3/codecs';
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventOutbox, messageId, NatsJetStreamBus, OutboxError, Publisher, readCursor, streamName, type BusMessage, type PublishAck } from '../src/index.js';
import { EventWriter, expectOutboxError, range, rejectionOf, removeTmpDirs, tmpDir, trade, uniqueTag, until } from './helpers.js';
import { deleteStreams, freePort, manager, NATS_URL, natsProblem, readStream, unavailable } from './nats-helpers.js';

const SMALL = { segmentSize: 256 << 10, maxRecordSize: 4096 } as const;
const codec = codecByName('binary');

const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL to a server with JetStream');

afterAll(removeTmpDirs);

describe('stream and subject names', () => {
  it('escapes characters a stream name may not hold, so that distinct symbols get distinct streams', () => {
    expect(streamName('GX3', 'BTCUSDT')).toBe('GX3_BTCUSDT');
    expect(streamName('GX3', 'BTC.USDT')).toBe('GX3_BTC_x2e_USDT');
    expect(streamName('GX3', 'BTC_USDT')).toBe('GX3_BTC__USDT');
    expect(streamName('P', 'A-B_C.D')).toBe('P_A-B__C_x2e_D');
  });

  it('connect() fails with BUS_ERROR when no server answers', async () => {
    const port = await freePort();
    const err = await rejectionOf(NatsJetStreamBus.connect({ servers: `nats://127.0.0.1:${port}`, connectTimeoutMs: 500 }));
    const e = expectOutboxError(err, 'BUS_ERROR');
    expect(e.message).toContain(String(port));
  });
});

function plainMessage(symbol: string, eventSeq: number): BusMessage {
  const event = trade(symbol, eventSeq, eventSeq);
  return {
    symbol,
    eventSeq,
    id: messageId(symbol, eventSeq),
    previousId: eventSeq > 1 ? messageId(symbol, eventSeq - 1) : undefined,
    payload: codec.encodeToBuffer(event),
    event,
  };
}

function publishOnce(bus: NatsJetStreamBus, msg: BusMessage): Promise<{ err: Error | null; ack: PublishAck | undefined }> {
  return new Promise((resolve) => {
    bus.publish(msg, (err, ack) => {
      resolve({ err, ack });
    });
  });
}

// Under CI, a missing server is a failure, reported by this test.
const natsFailure = nats.failure;
if (natsFailure !== undefined) {
  it('has a NATS JetStream server (required under CI)', () => {
    expect.fail(natsFailure);
  });
}

describe.skipIf(nats.skip)(`NatsJetStreamBus (server at ${NATS_URL})`, () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams = new Set<string>();
  const buses: NatsJetStreamBus[] = [];
  const outboxes: EventOutbox[] = [];

  beforeAll(async () => {
    ({ nc, jsm } = await manager(NATS_URL));
  });

  afterAll(async () => {
    for (const b of buses) await b.close().catch(() => undefined);
    for (const o of outboxes) await o.close().catch(() => undefined);
    if (jsm as JetStreamManager | undefined) await deleteStreams(jsm, streams);
    await (nc as NatsConnection | undefined)?.close();
  });

  /** A bus with a unique stream prefix and subject prefix (its streams are deleted afterwards). */
  async function bus(opts: { ackTimeoutMs?: number } = {}): Promise<{ bus: NatsJetStreamBus; prefix: string; subjects: string; track: (symbol: string) => string }> {
    const tag = uniqueTag();
    const prefix = `T${tag}`;
    const subjects = `gx3test.${tag}.events`;
    const b = await NatsJetStreamBus.connect({ servers: NATS_URL, streamPrefix: prefix, subjectPrefix: subjects, storage: 'memory', ...opts });
    buses.push(b);
    const track = (symbol: string): string => {
      const name = b.stream(symbol);
      streams.add(name);
      return name;
    };
    return { bus: b, prefix, subjects, track };
  }

  function outbox(dir: string): EventOutbox {
    const o = EventOutbox.open(dir, { durability: 'batch', ...SMALL });
    outboxes.push(o);
    return o;
  }

  /** Asserts that `stream` holds exactly events 1..n of `symbol`, in order, with ids, subject and payloads. */
  async function expectStream(stream: string, symbol: string, subject: string, n: number): Promise<void> {
    const info = await jsm.streams.info(stream);
    expect(info.state.messages, `messages in ${stream}`).toBe(n);
    expect(info.state.first_seq).toBe(1);
    expect(info.state.last_seq).toBe(n);
    const stored = await readStream(nc, jsm, stream);
    expect(stored.map((m) => m.event.eventSeq), `event sequence numbers in ${stream}`).toEqual(range(1, n));
    expect(stored.map((m) => m.seq)).toEqual(range(1, n));
    for (const m of stored) {
      expect(m.subject).toBe(subject);
      expect(m.msgId).toBe(`${symbol}:${m.event.eventSeq}`);
      expect(m.event).toEqual(trade(symbol, m.event.seq, m.event.eventSeq));
    }
  }

  it('names subjects <subjectPrefix>.<symbol> (gx3.events.<symbol> by default) and streams <streamPrefix>_<symbol>', async () => {
    const b = await NatsJetStreamBus.connect({ servers: NATS_URL });
    buses.push(b);
    expect(b.name).toBe('nats-jetstream');
    expect(b.subject('BTCUSDT')).toBe('gx3.events.BTCUSDT');
    expect(b.stream('BTCUSDT')).toBe('GX3_BTCUSDT');
    expect(b.stream('BTC.USDT')).toBe('GX3_BTC_x2e_USDT');
    await b.close();
  });

  it('a Publisher stores every event exactly once and in order, one stream per symbol; a second publisher from offset 0 adds nothing', async () => {
    const { bus: b, subjects, track } = await bus();
    const dir = tmpDir();
    const o = outbox(dir);
    const w = new EventWriter(o);
    const symbols = ['AAA', 'BBB.X'];
    for (let c = 0; c < 600; c++) w.command(symbols[c % 2] ?? 'AAA', 1 + (c % 3));
    await o.sync();
    for (const s of symbols) track(s);
    const p = new Publisher({ dir, bus: b, outbox: o, window: 128, commitIntervalMs: 5 });
    p.start();
    await until(() => p.stats().acknowledgedOffset === o.durableOffset, 30_000, 'everything acknowledged', () => p.stats());
    await p.stop();
    expect(p.stats()).toMatchObject({ published: w.events, acknowledged: w.events, duplicates: 0, failures: 0 });
    expect(readCursor(dir).offset).toBe(o.durableOffset);
    for (const s of symbols) await expectStream(b.stream(s), s, `${subjects}.${s}`, w.lastEventSeq(s));
    const info = await jsm.streams.info(b.stream('AAA'));
    expect(info.config.subjects).toEqual([`${subjects}.AAA`]);
    expect(info.config.storage).toBe('memory');
    expect(info.config.duplicate_window).toBe(120_000 * 1_000_000);

    // Republish everything: a fresh cursor directory, from offset 0.
    const again = new Publisher({ dir, cursorDir: tmpDir(), bus: b, outbox: o, window: 128 });
    again.start();
    await until(() => again.stats().acknowledgedOffset === o.durableOffset, 30_000, 'everything acknowledged again', () => again.stats());
    await again.stop();
    expect(again.stats()).toMatchObject({ published: w.events, acknowledged: w.events, duplicates: w.events, failures: 0 });
    for (const s of symbols) {
      const si = await jsm.streams.info(b.stream(s));
      expect(si.state.messages).toBe(w.lastEventSeq(s));
    }
  });

  it('publishes events appended while it runs, intact (outbox mode, small window, writer bursts)', async () => {
    const { bus: b, subjects, track } = await bus();
    const dir = tmpDir();
    const o = outbox(dir);
    const w = new EventWriter(o);
    track('TAIL');
    const p = new Publisher({ dir, bus: b, outbox: o, window: 8, commitIntervalMs: 2 });
    p.start();
    try {
      for (let round = 0; round < 40; round++) {
        w.commands('TAIL', 10, (i) => 1 + ((round + i) % 3));
        await o.sync();
        if (round % 8 === 7) await until(() => p.stats().acknowledgedOffset === o.durableOffset, 30_000, `round ${round} acknowledged`, () => p.stats());
      }
      await until(() => p.stats().acknowledgedOffset === o.durableOffset, 30_000, 'everything acknowledged', () => p.stats());
    } finally {
      await p.stop();
    }
    await expectStream(b.stream('TAIL'), 'TAIL', `${subjects}.TAIL`, w.lastEventSeq('TAIL'));
  });

  it('publishes an outbox written by another writer, intact (polling mode)', async () => {
    const { bus: b, subjects, track } = await bus();
    const dir = tmpDir();
    const writer = outbox(dir);
    const w = new EventWriter(writer);
    track('POLL');
    const p = new Publisher({ dir, bus: b, pollIntervalMs: 2, window: 64 });
    p.start();
    try {
      for (let round = 0; round < 20; round++) {
        w.commands('POLL', 10, () => 2);
        await writer.sync();
        if (round % 5 === 4) await until(() => p.stats().acknowledgedOffset === writer.durableOffset, 30_000, `round ${round} acknowledged`, () => p.stats());
      }
      await until(() => p.stats().acknowledgedOffset === writer.durableOffset, 30_000, 'everything acknowledged', () => p.stats());
    } finally {
      await p.stop();
    }
    await expectStream(b.stream('POLL'), 'POLL', `${subjects}.POLL`, w.lastEventSeq('POLL'));
  });

  it('the stream enforces the order: a first message, a duplicate, a gap (OUT_OF_ORDER), and no start in the middle', async () => {
    const { bus: b, track } = await bus();
    track('ORD');
    track('MID');
    const first = await publishOnce(b, plainMessage('ORD', 1));
    expect(first.err).toBeNull();
    expect(first.ack).toEqual({ duplicate: false });
    const second = await publishOnce(b, plainMessage('ORD', 2));
    expect(second.ack).toEqual({ duplicate: false });
    const dup = await publishOnce(b, plainMessage('ORD', 2));
    expect(dup.err).toBeNull();
    expect(dup.ack).toEqual({ duplicate: true });
    const dup1 = await publishOnce(b, plainMessage('ORD', 1));
    expect(dup1.ack).toEqual({ duplicate: true });
    const gap = await publishOnce(b, plainMessage('ORD', 4));
    expectOutboxError(gap.err, 'OUT_OF_ORDER');
    expect(gap.ack).toBeUndefined();
    const third = await publishOnce(b, plainMessage('ORD', 3));
    expect(third.ack).toEqual({ duplicate: false });
    expect((await jsm.streams.info(b.stream('ORD'))).state.messages).toBe(3);
    // An empty stream refuses a message that has a predecessor.
    const mid = await publishOnce(b, plainMessage('MID', 5));
    expectOutboxError(mid.err, 'OUT_OF_ORDER');
    expect((await jsm.streams.info(b.stream('MID'))).state.messages).toBe(0);
  });

  it('ensureStream reuses an existing stream that holds the subject, and refuses one that does not (BUS_ERROR)', async () => {
    const { bus: b, subjects, track } = await bus();
    const good = track('GOOD');
    await jsm.streams.add({ name: good, subjects: [`${subjects}.GOOD`], storage: 'memory', max_msgs: 12_345 });
    await b.ensureStream('GOOD');
    const info = await jsm.streams.info(good);
    expect(info.config.max_msgs).toBe(12_345); // not recreated
    const ok = await publishOnce(b, plainMessage('GOOD', 1));
    expect(ok.err).toBeNull();

    const bad = track('BAD');
    const other = `${subjects}.elsewhere`;
    await jsm.streams.add({ name: bad, subjects: [other], storage: 'memory' });
    const e = expectOutboxError(await rejectionOf(b.ensureStream('BAD')), 'BUS_ERROR');
    expect(e.message).toContain(bad);
    expect(e.message).toContain(`${subjects}.BAD`);
    expect(e.message).toContain(other);
    // A publish to that symbol fails the same way, and the check is made again (not cached).
    const pub = await publishOnce(b, plainMessage('BAD', 1));
    expectOutboxError(pub.err, 'BUS_ERROR');
    expect((await jsm.streams.info(bad)).state.messages).toBe(0);
    // Once the stream is fixed, publishing works.
    await jsm.streams.update(bad, { subjects: [other, `${subjects}.BAD`] });
    const fixed = await publishOnce(b, plainMessage('BAD', 1));
    expect(fixed.err).toBeNull();
    expect((await jsm.streams.info(bad)).state.messages).toBe(1);
  });

  it('a closed bus refuses with BUS_CLOSED', async () => {
    const { bus: b, track } = await bus();
    track('CLS');
    expect((await publishOnce(b, plainMessage('CLS', 1))).err).toBeNull();
    await b.close();
    const r = await publishOnce(b, plainMessage('CLS', 2));
    expect(r.err).toBeInstanceOf(OutboxError);
    expect((r.err as OutboxError).code).toBe('BUS_CLOSED');
    await b.close(); // twice is fine
  });

  it('decodes what it stores with the outbox codec (payload bytes unchanged)', async () => {
    const { bus: b, track } = await bus();
    const name = track('RAW');
    const m = plainMessage('RAW', 1);
    expect((await publishOnce(b, m)).err).toBeNull();
    const got = await jsm.streams.getMessage(name, { seq: 1 });
    expect(got).not.toBeNull();
    expect(Buffer.from(got?.data ?? new Uint8Array()).equals(Buffer.from(m.payload))).toBe(true);
    expect(got?.header.get('Nats-Msg-Id')).toBe('RAW:1');
    expect(codec.decode(got?.data ?? new Uint8Array()) as Event).toEqual(m.event);
  });
});
