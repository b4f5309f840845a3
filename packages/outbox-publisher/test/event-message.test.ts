// EventMessage (bus.ts), the message the publisher hands a bus over a record of its read buffer:
// its event is decoded lazily from the payload bytes with the given codec (or is the one it was
// given) and equals the event encoded there, whatever the record's offset in the buffer; its id is
// `<symbol>:<eventSeq>` and its previous id that of eventSeq - 1 (none for the first event); once
// released, its payload and an event never decoded throw MESSAGE_RELEASED, while an event decoded
// before the release stays readable; detach() makes an independent copy that outlives the release.
// Then with the Publisher: a bus that keeps the message and reads its payload or event after
// `publish` returned gets MESSAGE_RELEASED (and the publisher reports it when the bus fails the
// message with it), while a bus that detaches during `publish` reads intact events later.
import {
  BinaryCodec,
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
import fc from 'fast-check';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { EventMessage, type AckCallback, type OutboxError, type Bus, type BusMessage } from '../src/index.js';
import { EventWriter, expectOutboxError, openOutbox, publisher, range, readOutbox, removeTmpDirs, runCleanups, thrownBy, tmpDir, trade, until } from './helpers.js';

afterAll(removeTmpDirs);

const MAX = 2 ** 53 - 1;
const TS = 1_732_450_000_000_000;
const binary = codecByName('binary');
const json = codecByName('json');

function events(symbol: string): Event[] {
  const accepted: AcceptedEvent = { type: 'accepted', symbol, seq: 1, eventSeq: 1, ts: TS, orderType: 'limit', orderId: MAX, userId: 7, side: 'buy', price: 100, qty: 5, tif: 'GTC' };
  const rejected: RejectedEvent = { type: 'rejected', symbol, seq: 2, eventSeq: 2, ts: TS + 1, commandType: 'cancel', orderId: 12, userId: 8, reason: 'UNKNOWN_ORDER' };
  const added: AddedEvent = { type: 'added', symbol, seq: 3, eventSeq: 3, ts: TS + 2, orderId: 13, userId: 9, side: 'sell', price: 101, qty: 2 };
  const tradeEvent: TradeEvent = {
    type: 'trade',
    symbol,
    seq: 4,
    eventSeq: 4,
    ts: TS + 3,
    makerOrderId: 13,
    takerOrderId: 14,
    makerUserId: 9,
    takerUserId: 10,
    takerSide: 'buy',
    price: 101,
    qty: 1,
    makerRemaining: 1,
  };
  const canceled: CanceledEvent = { type: 'canceled', symbol, seq: 5, eventSeq: 5, ts: TS + 4, orderId: 13, userId: 9, reason: 'USER', qty: 1 };
  const amended: AmendedEvent = { type: 'amended', symbol, seq: 6, eventSeq: MAX, ts: TS + 5, orderId: 15, userId: 11, side: 'buy', price: 101, qty: 3, kind: 'REDUCE' };
  return [accepted, rejected, added, tradeEvent, canceled, amended];
}

/** `e` encoded with `codec` into a buffer of junk bytes at `at`, followed by `after` junk bytes. */
function encodedAt(e: Event, codec: Codec, at: number, after = 16): { buf: Uint8Array; start: number; end: number } {
  const buf = new Uint8Array(at + codec.maxLength + after).fill(0xa5);
  const n = codec.encode(e, buf, at);
  return { buf, start: at, end: at + n };
}

/** An EventMessage over `e` encoded at `at` in a larger buffer (not pre-decoded unless `given`). */
function messageOf(e: Event, at = 13, codec: Codec = binary, given?: Event): { msg: EventMessage; buf: Uint8Array; start: number; end: number } {
  const { buf, start, end } = encodedAt(e, codec, at);
  const msg = given === undefined ? new EventMessage(e.symbol, e.eventSeq, buf, start, end, codec) : new EventMessage(e.symbol, e.eventSeq, buf, start, end, codec, given);
  return { msg, buf, start, end };
}

describe('EventMessage', () => {
  it('decodes its event from the payload bytes with its codec, for every event type and both codecs', () => {
    for (const codec of [binary, json]) {
      for (const [i, e] of events('BTC-USD').entries()) {
        const { msg, buf, start, end } = messageOf(e, 3 + 7 * i, codec);
        expect(msg.payload, `${codec.name} ${e.type}`).toEqual(buf.subarray(start, end));
        expect(msg.payload.length).toBe(end - start);
        expect(msg.event, `${codec.name} ${e.type}`).toEqual(e);
        expect(msg.event).toBe(msg.event); // decoded once
      }
    }
  });

  it('decodes lazily: corrupting the payload before the first read of event changes what it decodes to', () => {
    const e = trade('AAA', 3, 5);
    const { msg, buf, start, end } = messageOf(e);
    const fresh = new BinaryCodec();
    // Rewrite the record in place with a different event of the same length (another price).
    const other: TradeEvent = { ...e, price: e.price + 1 };
    expect(fresh.encode(other, buf, start)).toBe(end - start);
    expect(msg.event).toEqual(other); // read from the bytes as they are now, not as they were at construction
  });

  it('uses the event it was given instead of decoding', () => {
    const e = trade('AAA', 1, 1);
    const given: TradeEvent = { ...e, qty: 999 };
    const { msg } = messageOf(e, 0, binary, given);
    expect(msg.event).toBe(given);
  });

  it('decodes the event of any record at any offset (property)', () => {
    const arbEvent = fc.constantFrom(...events('ETH-USD'));
    fc.assert(
      fc.property(arbEvent, fc.nat(200), fc.nat(64), fc.constantFrom('binary', 'json'), (e, at, after, name) => {
        const codec = codecByName(name);
        const { buf, start, end } = encodedAt(e, codec, at, after);
        const msg = new EventMessage(e.symbol, e.eventSeq, buf, start, end, codec);
        expect(msg.event).toEqual(e);
        expect(codec.decode(msg.payload)).toEqual(e);
      }),
      { numRuns: 200 },
    );
  });

  it('has the id <symbol>:<eventSeq> and the previous id of eventSeq - 1, none for the first event', () => {
    const cases: [string, number, string, string | undefined][] = [
      ['BTC-USD', 1, 'BTC-USD:1', undefined],
      ['BTC-USD', 2, 'BTC-USD:2', 'BTC-USD:1'],
      ['A.B_C', 10, 'A.B_C:10', 'A.B_C:9'],
      ['X', MAX, `X:${MAX}`, `X:${MAX - 1}`],
    ];
    for (const [symbol, eventSeq, id, previousId] of cases) {
      const msg = new EventMessage(symbol, eventSeq, new Uint8Array(0), 0, 0, binary);
      expect(msg.symbol).toBe(symbol);
      expect(msg.eventSeq).toBe(eventSeq);
      expect(msg.id).toBe(id);
      expect(msg.previousId).toBe(previousId);
    }
    expect(new EventMessage('S', 9_007_199_254_740_991, new Uint8Array(0), 0, 0, binary).id).toBe('S:9007199254740991');
  });

  it('after release(), reading the payload throws MESSAGE_RELEASED; ids stay readable', () => {
    const e = trade('AAA', 2, 4);
    const { msg } = messageOf(e);
    msg.release();
    const err = expectOutboxError(thrownBy(() => msg.payload), 'MESSAGE_RELEASED');
    expect(err.message).toContain('AAA:4');
    expect(msg.id).toBe('AAA:4');
    expect(msg.previousId).toBe('AAA:3');
    expect(msg.symbol).toBe('AAA');
    expect(msg.eventSeq).toBe(4);
  });

  it('after release(), reading an event never decoded throws MESSAGE_RELEASED', () => {
    const { msg } = messageOf(trade('AAA', 2, 4));
    msg.release();
    expectOutboxError(thrownBy(() => msg.event), 'MESSAGE_RELEASED');
    expectOutboxError(thrownBy(() => msg.event), 'MESSAGE_RELEASED'); // and again
  });

  it('after release(), an event decoded before (or given) is still returned', () => {
    const e = trade('AAA', 2, 4);
    const { msg, buf } = messageOf(e);
    const before = msg.event;
    msg.release();
    buf.fill(0); // the publisher reuses its buffer
    expect(msg.event).toBe(before);
    expect(msg.event).toEqual(e);

    const given = messageOf(e, 5, binary, e).msg;
    given.release();
    expect(given.event).toBe(e);
    expectOutboxError(thrownBy(() => given.payload), 'MESSAGE_RELEASED');
  });

  it('detach() copies the payload: later writes to the original buffer do not change it, and it outlives the release', () => {
    const e = trade('AAA', 2, 4);
    const { msg, buf, start, end } = messageOf(e, 21);
    const bytes = Uint8Array.prototype.slice.call(buf, start, end);
    const copy = msg.detach();
    expect(copy).toBeInstanceOf(EventMessage);
    expect(copy.payload).toEqual(bytes);
    expect(copy.payload.buffer).not.toBe(buf.buffer);
    expect(copy.payload.byteLength).toBe(end - start);
    buf.fill(0xff);
    msg.release();
    expectOutboxError(thrownBy(() => msg.payload), 'MESSAGE_RELEASED');
    expect(copy.payload).toEqual(bytes);
    expect(copy.event).toEqual(e);
    expect(binary.decode(copy.payload)).toEqual(e);
    expect(copy.id).toBe('AAA:4');
    expect(copy.previousId).toBe('AAA:3');
    expect(copy.symbol).toBe('AAA');
    expect(copy.eventSeq).toBe(4);
    // releasing the original again does not release the copy
    msg.release();
    expect(copy.payload).toEqual(bytes);
  });

  it('detach() of a message never read before carries the decoded event', () => {
    const e = events('SOL-USD')[0] as Event;
    const { msg, buf } = messageOf(e);
    const copy = msg.detach();
    buf.fill(0);
    expect(copy.event).toEqual(e);
  });

  it('detach() after release() throws MESSAGE_RELEASED (the bytes are gone)', () => {
    const { msg } = messageOf(trade('AAA', 1, 1));
    msg.release();
    expectOutboxError(thrownBy(() => msg.detach()), 'MESSAGE_RELEASED');
  });
});

// ---------------------------------------------------------------------------------------------
// With the Publisher

afterEach(async () => {
  await runCleanups();
});

interface Deferred {
  id: string;
  payload: Uint8Array | undefined;
  event: Event | undefined;
  payloadError: unknown;
  eventError: unknown;
}

/**
 * A bus that keeps each message and reads it on a later turn (after `publish` returned). With
 * `failWithReadError`, it fails the message with what the read threw; otherwise it records the error
 * and acknowledges. With `readEventDuringPublish`, it reads `msg.event` during `publish` first.
 */
class LateReaderBus implements Bus {
  readonly name = 'late-reader';
  readonly deferred: Deferred[] = [];
  readonly calls: string[] = [];
  /** Events read during `publish` (with `readEventDuringPublish`). */
  readonly early: Event[] = [];

  constructor(private readonly opts: { failWithReadError?: boolean; readEventDuringPublish?: boolean } = {}) {}

  publish(msg: BusMessage, done: AckCallback): void {
    this.calls.push(msg.id);
    if (this.opts.readEventDuringPublish === true) this.early.push(msg.event);
    setImmediate(() => {
      const d: Deferred = { id: msg.id, payload: undefined, event: undefined, payloadError: undefined, eventError: undefined };
      try {
        d.payload = Uint8Array.prototype.slice.call(msg.payload);
      } catch (err) {
        d.payloadError = err;
      }
      try {
        d.event = msg.event;
      } catch (err) {
        d.eventError = err;
      }
      this.deferred.push(d);
      const readError = d.payloadError ?? d.eventError;
      if (this.opts.failWithReadError === true && readError !== undefined) done(readError as Error);
      else done(null, { duplicate: false });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** A bus that detaches each message during `publish` and reads the copy on a later turn. */
class DetachingBus implements Bus {
  readonly name = 'detaching';
  readonly read: { id: string; payload: Uint8Array; event: Event }[] = [];

  publish(msg: BusMessage, done: AckCallback): void {
    const kept = msg instanceof EventMessage ? msg.detach() : msg;
    setImmediate(() => {
      this.read.push({ id: kept.id, payload: kept.payload, event: kept.event });
      done(null, { duplicate: false });
    });
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

describe('EventMessage with the Publisher', () => {
  it('a bus reading a kept message after publish returned gets MESSAGE_RELEASED for the payload and the undecoded event', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 5, () => 2);
    await outbox.sync();
    const bus = new LateReaderBus();
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, onError: (err) => errors.push(err) });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', () => p.stats());
    await p.stop();
    expect(bus.calls).toEqual(range(1, 10).map((n) => `AAA:${n}`));
    expect(bus.deferred).toHaveLength(10);
    for (const d of bus.deferred) {
      expectOutboxError(d.payloadError, 'MESSAGE_RELEASED');
      expect((d.payloadError as OutboxError).message).toContain(d.id);
      expectOutboxError(d.eventError, 'MESSAGE_RELEASED');
      expect(d.payload).toBeUndefined();
      expect(d.event).toBeUndefined();
    }
    expect(errors).toEqual([]); // the bus acknowledged: nothing failed
    expect(p.stats().failures).toBe(0);
  });

  it('an event read during publish stays readable afterwards, while the payload does not', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 4, () => 3);
    await outbox.sync();
    const bus = new LateReaderBus({ readEventDuringPublish: true });
    const p = publisher({ dir, bus, outbox });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', () => p.stats());
    await p.stop();
    const stored = readOutbox(dir).filter((r) => r.event.type !== 'cmdEnd').map((r) => r.event);
    expect(stored).toHaveLength(12);
    expect(bus.early).toEqual(stored);
    expect(bus.deferred.map((d) => d.event)).toEqual(stored);
    expect(bus.deferred.map((d) => d.eventError)).toEqual(stored.map(() => undefined));
    for (const d of bus.deferred) expectOutboxError(d.payloadError, 'MESSAGE_RELEASED');
  });

  it('with the JSON codec (decoded up front), the event stays readable after publish but the payload does not', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir, { codec: 'json' });
    const w = new EventWriter(outbox);
    w.commands('BBB', 3, () => 2);
    await outbox.sync();
    const bus = new LateReaderBus();
    const p = publisher({ dir, bus, outbox });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', () => p.stats());
    await p.stop();
    expect(bus.deferred.map((d) => d.event)).toEqual(range(1, 6).map((n) => trade('BBB', Math.ceil(n / 2), n)));
    for (const d of bus.deferred) expectOutboxError(d.payloadError, 'MESSAGE_RELEASED');
  });

  it('a bus that fails the message with the MESSAGE_RELEASED it got: the publisher reports it and retries', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    w.commands('AAA', 2, () => 1);
    await outbox.sync();
    const bus = new LateReaderBus({ failWithReadError: true });
    const errors: Error[] = [];
    const p = publisher({ dir, bus, outbox, backoff: { initialMs: 1, maxMs: 5, jitter: 0 }, onError: (err) => errors.push(err) });
    p.start();
    await until(() => errors.length >= 3, 20_000, 'three failures', () => p.stats());
    await p.stop();
    for (const err of errors) expectOutboxError(err, 'MESSAGE_RELEASED');
    const s = p.stats();
    expectOutboxError(s.lastError, 'MESSAGE_RELEASED');
    expect(s.failures).toBeGreaterThanOrEqual(3);
    expect(s.committedOffset).toBe(0); // nothing was ever acknowledged
    expect(bus.calls[0]).toBe('AAA:1');
    expect(bus.calls.filter((id) => id === 'AAA:1').length).toBeGreaterThanOrEqual(3); // retried from the start
  });

  it('a bus that detaches during publish reads intact events later, across buffer reuse', async () => {
    const dir = tmpDir();
    const outbox = openOutbox(dir);
    const w = new EventWriter(outbox);
    for (let c = 0; c < 200; c++) w.command(c % 2 === 0 ? 'AAA' : 'BBB', 1 + (c % 3));
    await outbox.sync();
    const bus = new DetachingBus();
    const p = publisher({ dir, bus, outbox, window: 16 });
    p.start();
    await until(() => p.stats().acknowledgedOffset === outbox.durableOffset, 20_000, 'everything acknowledged', () => p.stats());
    await p.stop();
    const stored = readOutbox(dir).filter((r) => r.event.type !== 'cmdEnd').map((r) => r.event);
    expect(bus.read).toHaveLength(w.events);
    expect(bus.read.map((r) => r.event)).toEqual(stored);
    expect(bus.read.map((r) => binary.decode(r.payload))).toEqual(stored);
    expect(bus.read.map((r) => r.id)).toEqual(stored.map((e) => `${e.symbol}:${e.eventSeq}`));
  });
});
