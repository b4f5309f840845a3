// The MemoryBus against the bus contract of bus.ts: duplicates by event sequence number, refusal of
// a gap (OUT_OF_ORDER), a fresh bus accepting a symbol's first message whatever its number,
// subscribers by symbol and '*', throwing subscribers, retention, and a closed bus.
import { codecByName, type Event } from '@gx3/codecs';
import { describe, expect, it } from 'vitest';
import { MemoryBus, messageId, type BusMessage, type PublishAck } from '../src/index.js';
import { expectOutboxError, trade } from './helpers.js';

const codec = codecByName('binary');

/** A message as a plain object (the bus contract only; the publisher's own class is tested through the publisher). */
function msg(symbol: string, eventSeq: number, seq = eventSeq): BusMessage {
  const e = trade(symbol, seq, eventSeq);
  return {
    symbol,
    eventSeq,
    id: messageId(symbol, eventSeq),
    previousId: eventSeq > 1 ? messageId(symbol, eventSeq - 1) : undefined,
    payload: codec.encodeToBuffer(e),
    event: e,
  };
}

/** A message implemented with getters over a buffer the caller reuses (as a publisher's read buffer). */
class ViewMessage implements BusMessage {
  constructor(
    readonly event: Event,
    private readonly buf: Uint8Array,
    private readonly len: number,
  ) {}
  get symbol(): string {
    return this.event.symbol;
  }
  get eventSeq(): number {
    return this.event.eventSeq;
  }
  get id(): string {
    return messageId(this.event.symbol, this.event.eventSeq);
  }
  get previousId(): string | undefined {
    return this.event.eventSeq > 1 ? messageId(this.event.symbol, this.event.eventSeq - 1) : undefined;
  }
  get payload(): Uint8Array {
    return this.buf.subarray(0, this.len);
  }
}

interface Outcome {
  calls: number;
  err: Error | null;
  ack: PublishAck | undefined;
}

/** Publishes synchronously (the MemoryBus answers before returning) and returns the one answer. */
function publish(bus: MemoryBus, m: BusMessage): Outcome {
  const out: Outcome = { calls: 0, err: null, ack: undefined };
  bus.publish(m, (err, ack) => {
    out.calls++;
    out.err = err;
    out.ack = ack;
  });
  expect(out.calls, `answers to ${m.id}`).toBe(1);
  return out;
}

function stored(bus: MemoryBus, m: BusMessage): void {
  const o = publish(bus, m);
  expect(o.err).toBeNull();
  expect(o.ack).toEqual({ duplicate: false });
}

describe('messageId', () => {
  it('is <symbol>:<eventSeq>', () => {
    expect(messageId('BTCUSDT', 42)).toBe('BTCUSDT:42');
    expect(messageId('ETH-USD.P', 1)).toBe('ETH-USD.P:1');
  });
});

describe('MemoryBus', () => {
  it('stores a symbol in order and acknowledges a repeat of any stored number as a duplicate, without storing it again', () => {
    const bus = new MemoryBus({ retain: true });
    for (let i = 1; i <= 5; i++) stored(bus, msg('AAA', i));
    for (const i of [5, 1, 3]) {
      const o = publish(bus, msg('AAA', i));
      expect(o.err).toBeNull();
      expect(o.ack).toEqual({ duplicate: true });
    }
    expect(bus.messages('AAA').map((m) => m.eventSeq)).toEqual([1, 2, 3, 4, 5]);
    expect(bus.lastEventSeq('AAA')).toBe(5);
  });

  it('refuses a message after a gap with OUT_OF_ORDER and stores nothing; the right next message is still accepted', () => {
    const bus = new MemoryBus({ retain: true });
    stored(bus, msg('AAA', 1));
    stored(bus, msg('AAA', 2));
    const o = publish(bus, msg('AAA', 4));
    const e = expectOutboxError(o.err, 'OUT_OF_ORDER');
    expect(e.message).toContain('AAA:4');
    expect(e.message).toContain('AAA:2');
    expect(o.ack).toBeUndefined();
    expect(bus.lastEventSeq('AAA')).toBe(2);
    stored(bus, msg('AAA', 3));
    stored(bus, msg('AAA', 4));
    expect(bus.messages('AAA').map((m) => m.eventSeq)).toEqual([1, 2, 3, 4]);
  });

  it('accepts any first message of a symbol it holds nothing of (a fresh bus after a restart), then checks order from there', () => {
    const bus = new MemoryBus({ retain: true });
    expect(bus.lastEventSeq('BBB')).toBe(0);
    stored(bus, msg('BBB', 17));
    expect(bus.lastEventSeq('BBB')).toBe(17);
    expectOutboxError(publish(bus, msg('BBB', 19)).err, 'OUT_OF_ORDER');
    expect(publish(bus, msg('BBB', 16)).ack).toEqual({ duplicate: true });
    stored(bus, msg('BBB', 18));
    expect(bus.messages('BBB').map((m) => m.eventSeq)).toEqual([17, 18]);
  });

  it('keeps symbols independent', () => {
    const bus = new MemoryBus({ retain: true });
    stored(bus, msg('AAA', 1));
    stored(bus, msg('BBB', 1));
    stored(bus, msg('AAA', 2));
    expect(publish(bus, msg('BBB', 2)).err).toBeNull();
    expectOutboxError(publish(bus, msg('AAA', 4)).err, 'OUT_OF_ORDER');
    expect(bus.messages('AAA').map((m) => m.eventSeq)).toEqual([1, 2]);
    expect(bus.messages('BBB').map((m) => m.eventSeq)).toEqual([1, 2]);
    expect(bus.messages('CCC')).toEqual([]);
  });

  it('delivers each stored message once to the subscribers of its symbol and of *, in order; never a duplicate or a refused message', () => {
    const bus = new MemoryBus();
    const gotA: number[] = [];
    const gotB: number[] = [];
    const gotAll: string[] = [];
    const sameEvent: boolean[] = [];
    bus.subscribe('AAA', (e, m) => {
      sameEvent.push(e === m.event);
      gotA.push(e.eventSeq);
    });
    bus.subscribe('BBB', (e) => gotB.push(e.eventSeq));
    bus.subscribe('*', (_e, m) => gotAll.push(m.id));
    stored(bus, msg('AAA', 1));
    stored(bus, msg('BBB', 1));
    stored(bus, msg('AAA', 2));
    publish(bus, msg('AAA', 2)); // duplicate
    publish(bus, msg('AAA', 5)); // refused
    stored(bus, msg('AAA', 3));
    expect(gotA).toEqual([1, 2, 3]);
    expect(sameEvent).toEqual([true, true, true]);
    expect(gotB).toEqual([1]);
    expect(gotAll).toEqual(['AAA:1', 'BBB:1', 'AAA:2', 'AAA:3']);
  });

  it('stops delivering to an unsubscribed subscriber', () => {
    const bus = new MemoryBus();
    const got: number[] = [];
    const off = bus.subscribe('AAA', (e) => got.push(e.eventSeq));
    stored(bus, msg('AAA', 1));
    off();
    stored(bus, msg('AAA', 2));
    expect(got).toEqual([1]);
  });

  it('a throwing subscriber does not stop delivery to the others nor the acknowledgement, and is reported', () => {
    const reported: { err: unknown; id: string }[] = [];
    const bus = new MemoryBus({ retain: true, onSubscriberError: (err, m) => reported.push({ err, id: m.id }) });
    const boom = new Error('subscriber failed');
    const got: number[] = [];
    const gotAll: number[] = [];
    bus.subscribe('AAA', () => {
      throw boom;
    });
    bus.subscribe('AAA', (e) => got.push(e.eventSeq));
    bus.subscribe('*', (e) => gotAll.push(e.eventSeq));
    stored(bus, msg('AAA', 1));
    stored(bus, msg('AAA', 2));
    expect(got).toEqual([1, 2]);
    expect(gotAll).toEqual([1, 2]);
    expect(reported).toEqual([
      { err: boom, id: 'AAA:1' },
      { err: boom, id: 'AAA:2' },
    ]);
    expect(bus.messages('AAA')).toHaveLength(2);
  });

  it('a throwing subscriber without an error handler is ignored', () => {
    const bus = new MemoryBus();
    const got: number[] = [];
    bus.subscribe('*', () => {
      throw new Error('boom');
    });
    bus.subscribe('*', (e) => got.push(e.eventSeq));
    stored(bus, msg('AAA', 1));
    expect(got).toEqual([1]);
  });

  it('retains messages only with `retain`, but checks order and duplicates either way', () => {
    const bus = new MemoryBus();
    stored(bus, msg('AAA', 1));
    expect(bus.messages('AAA')).toEqual([]);
    expect(bus.lastEventSeq('AAA')).toBe(1);
    expect(publish(bus, msg('AAA', 1)).ack).toEqual({ duplicate: true });
    expectOutboxError(publish(bus, msg('AAA', 3)).err, 'OUT_OF_ORDER');
  });

  it('retains a copy of the payload (the caller may reuse its buffer once publish returns)', () => {
    const bus = new MemoryBus({ retain: true });
    const m1 = msg('AAA', 1);
    const bytes = Buffer.from(m1.payload);
    stored(bus, m1);
    (m1.payload as Buffer).fill(0);
    const kept = bus.messages('AAA')[0];
    expect(kept?.id).toBe('AAA:1');
    expect(Buffer.from(kept?.payload ?? new Uint8Array()).equals(bytes)).toBe(true);
  });

  it('retains every field of a message implemented with getters over a reused buffer', () => {
    const bus = new MemoryBus({ retain: true });
    const buf = new Uint8Array(codec.maxLength);
    const encoded: Buffer[] = [];
    for (let i = 1; i <= 3; i++) {
      const e = trade('VVV', i, i);
      const n = codec.encode(e, buf, 0);
      encoded.push(Buffer.from(buf.subarray(0, n)));
      stored(bus, new ViewMessage(e, buf, n));
    }
    const kept = bus.messages('VVV');
    expect(kept.map((m) => [m.symbol, m.eventSeq, m.id, m.previousId])).toEqual([
      ['VVV', 1, 'VVV:1', undefined],
      ['VVV', 2, 'VVV:2', 'VVV:1'],
      ['VVV', 3, 'VVV:3', 'VVV:2'],
    ]);
    expect(kept.map((m) => m.event.eventSeq)).toEqual([1, 2, 3]);
    expect(kept.map((m) => Buffer.from(m.payload))).toEqual(encoded);
  });

  it('a closed bus refuses with BUS_CLOSED, stores and delivers nothing', async () => {
    const bus = new MemoryBus({ retain: true });
    const got: Event[] = [];
    bus.subscribe('*', (e) => got.push(e));
    stored(bus, msg('AAA', 1));
    await bus.close();
    const o = publish(bus, msg('AAA', 2));
    expectOutboxError(o.err, 'BUS_CLOSED');
    expect(o.ack).toBeUndefined();
    expect(bus.messages('AAA')).toHaveLength(1);
    expect(bus.lastEventSeq('AAA')).toBe(1);
    expect(got).toHaveLength(1);
  });
});
