// Review of the NATS JetStream bus and its use by the publisher, against the shared server
// (NATS_URL): every event type at its largest read back from the stream byte for byte against the
// outbox (binary and JSON outboxes, the longest prefixes and symbol); streams made beforehand with
// another configuration (max_msgs with discard=new, no_ack, discard=old with a tiny limit); a stream
// deleted while publishing; the bus closed while publishing; two publishers of one outbox at once;
// symbols that cannot end a subject, events held behind a republished one whose stored copy differs,
// and durations no timer can have. Without a server the tests are skipped with
// a warning, except under CI where that is a failure. Each test has streams of its own, deleted after.
import {
  codecByName,
  type AcceptedEvent,
  type AddedEvent,
  type AmendedEvent,
  type CanceledEvent,
  type Codec,
  type Event,
  type RejectedEvent,
  type TradeEvent,
} from '@gx3/codecs';
import fs from 'node:fs';
import path from 'node:path';
import { WalReader, WalRecord } from '@gx3/wal';
import { type JetStreamManager } from '@nats-io/jetstream';
import { type NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  HISTORY_FILE,
  HISTORY_HEADER,
  NatsJetStreamBus,
  readCursor,
  subjectPrefixProblem,
  type EventOutbox,
  type NatsBusOptions,
  type Publisher,
} from '../src/index.js';
import { EventWriter, expectOutboxError, openOutbox, publisher, range, removeTmpDirs, runCleanups, sleep, tmpDir, trade, uniqueTag, until } from './helpers.js';
import { deleteStreams, manager, NATS_URL, natsProblem, testStreamOptions, unavailable } from './nats-helpers.js';

const nats = unavailable(`NATS JetStream at ${NATS_URL}`, await natsProblem(NATS_URL), 'set NATS_URL to a server with JetStream');

afterEach(runCleanups);
afterAll(removeTmpDirs);

// Under CI, a missing server is a failure, reported by this test.
const natsFailure = nats.failure;
if (natsFailure !== undefined) {
  it('has a NATS JetStream server (required under CI)', () => {
    expect.fail(natsFailure);
  });
}

interface OutboxEvent {
  bytes: Uint8Array;
  event: Event;
}

/** The events of the outbox in `dir` in log order (CmdEnd markers left out), with their stored bytes. */
function outboxEvents(dir: string, codec: Codec): OutboxEvent[] {
  const r = new WalReader(dir, {});
  const rec = new WalRecord();
  const out: OutboxEvent[] = [];
  try {
    for (let x = r.next(rec); x !== null; x = r.next(rec)) {
      const bytes = Uint8Array.prototype.slice.call(x.buf.subarray(x.start, x.end));
      const event = codec.decode(bytes) as Event;
      if (event.type !== 'cmdEnd') out.push({ bytes, event });
    }
  } finally {
    r.close();
  }
  return out;
}

interface StoredMessage {
  seq: number;
  subject: string;
  msgId: string | undefined;
  history: string | undefined;
  bytes: Uint8Array;
}

/** Every message `stream` holds, in stream order, as stored (read one by one: the streams here are small). */
async function streamMessages(jsm: JetStreamManager, stream: string): Promise<StoredMessage[]> {
  const info = await jsm.streams.info(stream);
  const out: StoredMessage[] = [];
  if (info.state.messages === 0) return out;
  for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq });
    if (m === null) continue;
    out.push({ seq: m.seq, subject: m.subject, msgId: m.header.get('Nats-Msg-Id'), history: m.header.get(HISTORY_HEADER), bytes: m.data });
  }
  return out;
}

/** A publisher with short timeouts and backoff, collecting the errors it reports. */
function fastPublisher(dir: string, bus: NatsJetStreamBus, outbox: EventOutbox, errors: Error[], extra: { window?: number; cursorDir?: string } = {}): Publisher {
  return publisher({ dir, bus, outbox, window: 64, ackTimeoutMs: 1000, commitIntervalMs: 1, backoff: { initialMs: 5, maxMs: 30 }, onError: (e) => errors.push(e), ...extra });
}

function codes(errors: Error[]): string[] {
  return [...new Set(errors.map((e) => (e as { code?: string }).code ?? e.name))];
}

const MAX = Number.MAX_SAFE_INTEGER;

/** One event of every type (and both forms of some), each field at its largest, numbered from `eventSeq` on. */
function everyEventType(symbol: string, firstEventSeq: number, seq: number): Event[] {
  const coid = 'Az09._:-'.repeat(8); // 64 characters, every class of the rule
  let n = firstEventSeq;
  const ts = MAX - 10 + seq;
  const accepted: AcceptedEvent = { type: 'accepted', symbol, seq, eventSeq: n++, ts, orderType: 'limit', orderId: MAX, userId: MAX, side: 'sell', price: MAX, qty: MAX, tif: 'POST', clientOrderId: coid, stp: 'DECREMENT_CANCEL' };
  const acceptedMarket: AcceptedEvent = { type: 'accepted', symbol, seq, eventSeq: n++, ts, orderType: 'market', orderId: MAX - 1, userId: 0, side: 'buy', price: 0, qty: 1, tif: 'IOC', stp: 'NONE' };
  const rejected: RejectedEvent = {
    type: 'rejected',
    symbol,
    seq,
    eventSeq: n++,
    ts,
    commandType: 'limit',
    orderId: MAX,
    userId: MAX,
    reason: 'UNKNOWN_SYMBOL',
    clientOrderId: coid,
    side: 'sell',
    price: MAX,
    qty: MAX,
    tif: 'FOK',
    stp: 'CANCEL_BOTH',
  };
  const rejectedCancel: RejectedEvent = { type: 'rejected', symbol, seq, eventSeq: n++, ts, commandType: 'cancel', orderId: 0, userId: 0, reason: 'NOT_OWNER' };
  const added: AddedEvent = { type: 'added', symbol, seq, eventSeq: n++, ts, orderId: MAX, userId: MAX, side: 'sell', price: MAX, qty: MAX };
  const traded: TradeEvent = { type: 'trade', symbol, seq, eventSeq: n++, ts, makerOrderId: MAX, takerOrderId: MAX - 1, makerUserId: MAX, takerUserId: MAX, takerSide: 'sell', price: MAX, qty: MAX, makerRemaining: MAX };
  const canceled: CanceledEvent = { type: 'canceled', symbol, seq, eventSeq: n++, ts, orderId: MAX, userId: MAX, reason: 'SELF_TRADE', qty: MAX };
  const amended: AmendedEvent = { type: 'amended', symbol, seq, eventSeq: n, ts, orderId: MAX, userId: MAX, side: 'sell', price: 0, qty: MAX, kind: 'SELF_TRADE_DECREMENT' };
  return [accepted, acceptedMarket, rejected, rejectedCancel, added, traded, canceled, amended];
}

describe.skipIf(nats.skip)(`NatsJetStreamBus review (server at ${NATS_URL})`, () => {
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  const streams: string[] = [];
  const buses: NatsJetStreamBus[] = [];

  beforeAll(async () => {
    ({ nc, jsm } = await manager(NATS_URL));
  });

  afterAll(async () => {
    for (const b of buses) await b.close().catch(() => undefined);
    if ((jsm as JetStreamManager | undefined) !== undefined) await deleteStreams(jsm, streams);
    await (nc as NatsConnection | undefined)?.close();
  });

  /** A bus on streams of its own; the streams of `symbols` are deleted after the tests. */
  async function connect(options: NatsBusOptions, ...symbols: string[]): Promise<NatsJetStreamBus> {
    const bus = await NatsJetStreamBus.connect(options);
    buses.push(bus);
    for (const s of symbols) streams.push(bus.stream(s));
    return bus;
  }

  /**
   * Asserts that the symbol's stream holds exactly the outbox's events of that symbol: in order, from
   * stream sequence 1, on the symbol's subject, each with its id and the outbox's history, and the
   * very bytes of the outbox record.
   */
  async function expectStreamIsOutbox(bus: NatsJetStreamBus, symbol: string, dir: string, outbox: EventOutbox): Promise<void> {
    const expected = outboxEvents(dir, outbox.codec).filter((r) => r.event.symbol === symbol);
    const stored = await streamMessages(jsm, bus.stream(symbol));
    expect(stored.map((m) => m.msgId), `ids in ${bus.stream(symbol)}`).toEqual(expected.map((r) => `${symbol}:${r.event.eventSeq}`));
    expect(stored.map((m) => m.seq)).toEqual(range(1, expected.length));
    for (let i = 0; i < stored.length; i++) {
      const s = stored[i] as StoredMessage;
      const e = expected[i] as OutboxEvent;
      expect(s.subject).toBe(bus.subject(symbol));
      expect(s.history).toBe(outbox.history);
      expect(Buffer.from(s.bytes).equals(Buffer.from(e.bytes)), `bytes of ${s.msgId ?? '?'}`).toBe(true);
      expect(outbox.codec.decode(s.bytes)).toEqual(e.event);
    }
  }

  for (const codecName of ['binary', 'json'] as const) {
    it(`every event type at its largest (${codecName} outbox, 32-character stream prefix and symbol, 128-character subject prefix): the stream holds the outbox's bytes exactly; published again from offset 0, all are duplicates`, async () => {
      const tag = uniqueTag();
      const streamPrefix = `${tag}-`.padEnd(32, 'P');
      let subjectPrefix = `rv.${tag}`;
      while (subjectPrefix.length < 128) subjectPrefix += '.a_-Z9';
      subjectPrefix = subjectPrefix.slice(0, 128).replace(/\.$/, 'x');
      expect([streamPrefix.length, subjectPrefix.length, subjectPrefixProblem(subjectPrefix)]).toEqual([32, 128, undefined]);
      const symbol = 'ABCDEFG.IJKLMNO_QRSTUVW-YZ012345'; // 32 characters, every class of the engine's rule
      const other = 'B';
      const bus = await connect({ servers: NATS_URL, streamPrefix, subjectPrefix, storage: 'memory', ackTimeoutMs: 2000 }, symbol, other);
      const dir = tmpDir();
      const outbox = openOutbox(dir, { codec: codecName });
      let eventSeq = 1;
      for (let seq = 1; seq <= 4; seq++) {
        const events = everyEventType(symbol, eventSeq, seq);
        for (const e of events) outbox.append(e);
        eventSeq += events.length;
        outbox.appendCmdEnd(symbol, seq, eventSeq - 1, events.length, MAX);
        outbox.append(trade(other, seq, seq));
        outbox.appendCmdEnd(other, seq, seq, 1, MAX);
      }
      await outbox.sync();
      const errors: Error[] = [];
      const p = fastPublisher(dir, bus, outbox, errors, { window: 7 });
      p.start();
      await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 10_000, 'everything acknowledged', () => ({ ...p.stats(), errors: errors.map((e) => e.message) }));
      await p.stop();
      expect(p.stats()).toMatchObject({ published: 36, acknowledged: 36, duplicates: 0, failures: 0 });
      await expectStreamIsOutbox(bus, symbol, dir, outbox);
      await expectStreamIsOutbox(bus, other, dir, outbox);

      // From offset 0 again (another cursor directory): JetStream recognises every id, and the bus
      // finds the stored bytes equal to the outbox's (no EVENT_MISMATCH).
      const again = fastPublisher(dir, bus, outbox, errors, { cursorDir: tmpDir() });
      again.start();
      await until(() => again.stats().acknowledgedOffset === outbox.durableOffset, 10_000, 'everything acknowledged again', () => ({ ...again.stats(), errors: errors.map((e) => e.message) }));
      await again.stop();
      expect(again.stats()).toMatchObject({ published: 36, acknowledged: 36, duplicates: 36, failures: 0 });
      expect(errors).toEqual([]);
      await expectStreamIsOutbox(bus, symbol, dir, outbox);
    });
  }

  it('a stream made beforehand with max_msgs 5 and discard=new: the refusals are retried and reported, nothing past the limit nor out of order is stored, the cursor stays behind; once the limit is raised, every event once', async () => {
    const bus = await connect(testStreamOptions('MX'), 'S');
    const name = bus.stream('S');
    await jsm.streams.add({ name, subjects: [bus.subject('S')], storage: 'memory', max_msgs: 5, discard: 'new' });
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 6); // events 1..12, two per command
    await outbox.sync();
    const errors: Error[] = [];
    const p = fastPublisher(dir, bus, outbox, errors, { window: 16 });
    p.start();
    await until(() => errors.length >= 5, 5_000, 'refusals reported', () => p.stats());
    expect(codes(errors)).toEqual(['BUS_ERROR']);
    expect(errors[0]?.message).toMatch(/maximum messages/);
    expect((await streamMessages(jsm, name)).map((m) => m.msgId)).toEqual(['S:1', 'S:2', 'S:3', 'S:4', 'S:5']);
    // Event 5 is stored but its command (events 5-6) is not: the cursor stays at the end of command 2.
    expect(p.stats().acknowledgedOffset).toBeLessThanOrEqual(w.boundaries[1]?.offset ?? -1);
    expect(p.stats().consecutiveFailures).toBeGreaterThan(0);
    await jsm.streams.update(name, { max_msgs: -1 });
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 10_000, 'everything acknowledged after the limit was raised', () => p.stats());
    await p.stop();
    expect(readCursor(dir).offset).toBe(outbox.durableOffset);
    expect(p.stats().consecutiveFailures).toBe(0);
    await expectStreamIsOutbox(bus, 'S', dir, outbox);
  });

  it('a stream made beforehand with no_ack (JetStream never answers): PUBLISH_TIMEOUT, republished, each event stored once; once acknowledgements come, the publisher catches up with duplicates only', async () => {
    const bus = await connect({ ...testStreamOptions('NA'), ackTimeoutMs: 200 }, 'S');
    const name = bus.stream('S');
    await jsm.streams.add({ name, subjects: [bus.subject('S')], storage: 'memory', no_ack: true });
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 6);
    await outbox.sync();
    const errors: Error[] = [];
    const p = fastPublisher(dir, bus, outbox, errors, { window: 16 });
    p.start();
    await until(() => errors.length >= 3, 5_000, 'timeouts reported', () => p.stats());
    expect(codes(errors)).toEqual(['PUBLISH_TIMEOUT']);
    expect(p.stats()).toMatchObject({ acknowledged: 0, acknowledgedOffset: 0 });
    await expectStreamIsOutbox(bus, 'S', dir, outbox); // republished, but de-duplicated by id
    await jsm.streams.update(name, { no_ack: false });
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 10_000, 'everything acknowledged', () => p.stats());
    await p.stop();
    expect(p.stats()).toMatchObject({ duplicates: 12, consecutiveFailures: 0 });
    await expectStreamIsOutbox(bus, 'S', dir, outbox);
  });

  it('the stream deleted while publishing: the bus makes it again and the publisher publishes the outbox again from its start; the new stream holds every event once, in order', async () => {
    const bus = await connect(testStreamOptions('DL'), 'S');
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 1500, (i) => 1 + (i % 3)); // 3000 events
    await outbox.sync();
    const errors: Error[] = [];
    const p = fastPublisher(dir, bus, outbox, errors);
    p.start();
    await until(() => p.stats().acknowledged > 600, 10_000, 'a part acknowledged', () => p.stats());
    await jsm.streams.delete(bus.stream('S'));
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', () => ({ ...p.stats(), errors: errors.slice(-3).map((e) => e.message) }));
    await p.stop();
    expect(errors.length).toBeGreaterThan(0);
    await expectStreamIsOutbox(bus, 'S', dir, outbox);
  });

  it('the bus closed while publishing: BUS_CLOSED, stop() returns, the cursor is not past what the stream holds; a new bus goes on, and the stream holds every event once, in order', async () => {
    const opts = testStreamOptions('CL');
    const bus = await connect(opts, 'S');
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 1500, (i) => 1 + (i % 3));
    await outbox.sync();
    const errors: Error[] = [];
    const p = fastPublisher(dir, bus, outbox, errors);
    p.start();
    await until(() => p.stats().acknowledged > 600, 10_000, 'a part acknowledged', () => p.stats());
    await bus.close();
    await until(() => errors.length >= 2, 5_000, 'BUS_CLOSED reported', () => p.stats());
    await p.stop();
    expect(codes(errors)).toEqual(['BUS_CLOSED']);
    const stored = await streamMessages(jsm, bus.stream('S'));
    expect(stored.map((m) => m.msgId)).toEqual(range(1, stored.length).map((n) => `S:${n}`));
    expect(readCursor(dir).lastEventSeq).toBeLessThanOrEqual(stored.length);
    expect(readCursor(dir).lastEventSeq).toBeGreaterThan(0);

    const bus2 = await connect(opts);
    const p2 = fastPublisher(dir, bus2, outbox, errors);
    p2.start();
    await until(() => p2.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged on the new bus', () => p2.stats());
    await p2.stop();
    expect(p2.stats().failures).toBe(0);
    await expectStreamIsOutbox(bus2, 'S', dir, outbox);
  });

  it('a stream made beforehand with max_msgs 5 (discard=old): published again from offset 0, inside and after the duplicate window, every event is a duplicate and nothing is stored again', async () => {
    const opts = testStreamOptions('DO', 1000);
    const bus = await connect(opts, 'S');
    const name = bus.stream('S');
    await jsm.streams.add({ name, subjects: [bus.subject('S')], storage: 'memory', max_msgs: 5, duplicate_window: 1000 * 1_000_000 });
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    new EventWriter(outbox).commands('S', 10); // events 1..20; the stream keeps 16..20
    await outbox.sync();
    const errors: Error[] = [];
    const p = fastPublisher(dir, bus, outbox, errors, { window: 16 });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 5_000, 'everything acknowledged', () => p.stats());
    await p.stop();
    for (const wait of [0, 1500]) {
      await sleep(wait);
      // Inside the window: JetStream's duplicates of discarded messages, vouched for by the subject's
      // last event. After it: the order refusals, settled by the subject's last event.
      const again = fastPublisher(dir, bus, outbox, errors, { window: 16, cursorDir: tmpDir() });
      again.start();
      await until(() => again.stats().acknowledgedOffset === outbox.durableOffset, 5_000, `everything acknowledged again (after ${wait} ms)`, () => ({ ...again.stats(), errors: errors.map((e) => e.message) }));
      await again.stop();
      expect(again.stats()).toMatchObject({ published: 20, duplicates: 20, failures: 0 });
      expect((await streamMessages(jsm, name)).map((m) => m.msgId)).toEqual(['S:16', 'S:17', 'S:18', 'S:19', 'S:20']);
    }
    expect(errors).toEqual([]);
  });

  it('two publishers of one outbox at once (two buses, two cursors): the stream holds every event once, in order; of all acknowledgements, exactly one per event says stored', async () => {
    const opts = testStreamOptions('TW');
    const bus = await connect(opts, 'S');
    const bus2 = await connect(opts);
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('S', 800, (i) => 1 + (i % 4));
    await outbox.sync();
    const errors: Error[] = [];
    const p = fastPublisher(dir, bus, outbox, errors, { window: 128 });
    const p2 = fastPublisher(dir, bus2, outbox, errors, { window: 128, cursorDir: tmpDir() });
    p.start();
    p2.start();
    await until(
      () => p.stats().acknowledgedOffset === outbox.durableOffset && p2.stats().acknowledgedOffset === outbox.durableOffset,
      20_000,
      'everything acknowledged by both',
      () => [p.stats(), p2.stats()],
    );
    await p.stop();
    await p2.stop();
    await expectStreamIsOutbox(bus, 'S', dir, outbox);
    const a = p.stats();
    const b = p2.stats();
    // Each event was stored once; an acknowledgement dropped by a rewind (a failure) is one fewer.
    const stores = a.acknowledged - a.duplicates + (b.acknowledged - b.duplicates);
    if (a.failures + b.failures === 0) expect(stores).toBe(w.events);
    else expect(stores).toBeLessThanOrEqual(w.events);
  });

  // -------------------------------------------------------------------------------------------
  // Refusals, and the order after a mismatch

  it('a symbol that cannot end a NATS subject (BTC., A..B) is refused with INVALID_OPTIONS naming it; no stream is made (the engine and the gateway refuse such symbols too)', async () => {
    // The subject is `<subjectPrefix>.<symbol>`: `BTC.` and `A..B` would give an empty token, which
    // NATS refuses ("invalid subject"); before, every publish failed with BUS_ERROR for ever.
    const symbols = ['BTC.', 'A..B'];
    const bus = await connect(testStreamOptions('SY'), ...symbols);
    const codec = codecByName('binary');
    for (const symbol of symbols) {
      const e = trade(symbol, 1, 1);
      const err = await new Promise<Error | null>((resolve) => {
        bus.publish({ symbol, eventSeq: 1, id: `${symbol}:1`, previousId: undefined, payload: codec.encodeToBuffer(e), event: e }, (failed) => {
          resolve(failed);
        });
      });
      expectOutboxError(err, 'INVALID_OPTIONS');
      expect(err?.message).toContain(JSON.stringify(symbol));
      await expect(jsm.streams.info(bus.stream(symbol))).rejects.toThrow(/not found/i);
    }
  });

  it("an event JetStream holds with other bytes (EVENT_MISMATCH) stops the outbox's next events, which wait for it instead of going in flight after it: none is stored after the stream's copy", async () => {
    // README, failure modes: "JetStream holds an event id with other bytes than the outbox's (the
    // outbox lost events that were published without its cursor being ahead: a power loss under
    // durability none before the cursor's commit) | EVENT_MISMATCH ... retried and reported, nothing
    // dropped", and "nothing is stored out of order". Here the outbox (same history) lost events 5-6
    // that the stream holds, and the engine wrote other events 5', 6', 7' in their place. The
    // publisher sends 5', 6', 7' pipelined: 5' and 6' are JetStream duplicates by id and fail with
    // EVENT_MISMATCH, but 7' goes with Nats-Expected-Last-Msg-Id `S:6`, the id of the stream's (other)
    // event 6, so JetStream stores it: the stream ends 1 2 3 4 5 6 7', an event after predecessors
    // that are not its own, while 5' and 6' can never be stored. (src/nats-bus.ts: the order check
    // compares ids only, and settleDuplicate cannot recall the messages already sent after it.)
    const bus = await connect(testStreamOptions('EM', 60_000), 'S');
    const dirA = tmpDir();
    const a = openOutbox(dirA);
    new EventWriter(a).commands('S', 3); // events 1..6
    await a.sync();
    const errors: Error[] = [];
    const pa = fastPublisher(dirA, bus, a, errors);
    pa.start();
    await until(() => pa.stats().acknowledgedOffset === a.durableOffset, 5_000, 'the first outbox published', () => pa.stats());
    await pa.stop();
    expect(errors).toEqual([]);
    // The same outbox after the loss: its history, events 1..4 as before, then other events 5', 6', 7'.
    const dirB = tmpDir();
    fs.writeFileSync(path.join(dirB, HISTORY_FILE), `${a.history}\n`);
    const b = openOutbox(dirB);
    expect(b.history).toBe(a.history);
    new EventWriter(b).commands('S', 2);
    for (let n = 5; n <= 7; n++) b.append({ ...trade('S', 3, n), price: 999 });
    b.appendCmdEnd('S', 3, 7, 3, 1);
    await b.sync();
    const pb = fastPublisher(dirB, bus, b, errors);
    pb.start();
    await until(() => errors.length >= 2, 5_000, 'EVENT_MISMATCH reported', () => pb.stats());
    await pb.stop();
    expect(codes(errors)).toEqual(['EVENT_MISMATCH']);
    const codec = codecByName('binary');
    const stored = await streamMessages(jsm, bus.stream('S'));
    expect(stored.map((m) => `${m.msgId ?? '?'} price ${(codec.decode(m.bytes) as TradeEvent).price}`)).toEqual(
      outboxEvents(dirA, a.codec).map((r) => `S:${r.event.eventSeq} price ${(r.event as TradeEvent).price}`),
    );
  });

  it.each([
    ['ackTimeoutMs', Number.NaN],
    ['ackTimeoutMs', 0],
    ['ackTimeoutMs', -1],
    ['ackTimeoutMs', 1.5],
    ['duplicateWindowMs', Number.POSITIVE_INFINITY],
    ['duplicateWindowMs', 0],
    ['connectTimeoutMs', Number.NaN],
    ['connectTimeoutMs', '5000'],
  ])('connect() refuses %s %s with INVALID_OPTIONS before connecting (with ackTimeoutMs NaN, a message JetStream never answered would never fail)', async (name, value) => {
    const opts = { ...testStreamOptions('NN'), servers: 'nats://127.0.0.1:1', [name]: value } as NatsBusOptions;
    const err = await NatsJetStreamBus.connect(opts).then(
      () => undefined,
      (e: unknown) => e,
    );
    expectOutboxError(err, 'INVALID_OPTIONS');
    expect((err as Error).message).toContain(name);
  });
});
