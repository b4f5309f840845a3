// The optional client order id of orders and of the accepted and rejected events that answer them:
// its rule in both codecs, its absence, and the reuse of one DecodedMessage across records with
// and without one.
import { describe, expect, it } from 'vitest';
import { binaryCodec, DecodedMessage, jsonCodec, type Codec, type Message } from '../src/index.js';
import { thrown } from './support.js';

const limit: Message = { type: 'limit', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, side: 'buy', price: 6, qty: 7, tif: 'GTC', stp: 'NONE' };
const market: Message = { type: 'market', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, side: 'sell', qty: 7, stp: 'NONE' };
const accepted: Message = { type: 'accepted', symbol: 'BTCUSDT', seq: 1, eventSeq: 1, ts: 5, orderType: 'limit', orderId: 3, userId: 4, side: 'buy', price: 6, qty: 7, tif: 'GTC' };
const rejected: Message = { type: 'rejected', symbol: 'BTCUSDT', seq: 1, eventSeq: 1, ts: 5, commandType: 'limit', orderId: 3, userId: 4, reason: 'POST_ONLY_WOULD_CROSS' };

const BAD: [string, unknown][] = [
  ['empty', ''],
  ['65 characters', 'a'.repeat(65)],
  ['a space', 'a b'],
  ['a slash', 'a/b'],
  ['a non-ASCII character', 'caf\u00e9'],
  ['a quote (would need escaping in JSON)', 'a"b'],
  ['a number', 42],
  ['null', null],
];

describe.each([jsonCodec, binaryCodec].map((c) => [c.name, c] as [string, Codec]))('%s codec: clientOrderId', (_name, codec) => {
  it.each([limit, market, accepted, rejected])('round-trips a $type with and without one', (msg) => {
    for (const id of ['a', 'Order_1:x.y-z', 'Z'.repeat(64)]) {
      const m = { ...msg, clientOrderId: id } as Message;
      expect(codec.decode(codec.encodeToBuffer(m))).toStrictEqual(m);
    }
    expect(codec.decode(codec.encodeToBuffer(msg))).toStrictEqual(msg);
    // undefined is absent: the same bytes as without the property.
    expect(codec.encodeToBuffer({ ...msg, clientOrderId: undefined })).toEqual(codec.encodeToBuffer(msg));
  });

  it.each(BAD)('refuses a client order id that is %s with INVALID_FIELD clientOrderId, writing nothing', (_what, bad) => {
    for (const msg of [limit, market, accepted, rejected]) {
      const buf = new Uint8Array(codec.maxLength + 8).fill(0xee);
      const err = thrown(() => codec.encode({ ...msg, clientOrderId: bad } as unknown as Message, buf, 4));
      expect(err).toMatchObject({ name: 'EncodeError', code: 'INVALID_FIELD', field: 'clientOrderId' });
      expect(buf.every((b) => b === 0xee)).toBe(true);
    }
  });

  it('ignores a client order id on a type that has none (as any other extra property)', () => {
    const cancel: Message = { type: 'cancel', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5 };
    expect(codec.encodeToBuffer({ ...cancel, clientOrderId: 'x' } as unknown as Message)).toEqual(codec.encodeToBuffer(cancel));
  });
});

describe('json codec: decoding a clientOrderId', () => {
  const text = (o: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ v: 1, ...o }));

  it('refuses one on a type that has none as an unknown field, and null or a bad one as invalid', () => {
    const cancel = { type: 'cancel', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5 };
    expect(thrown(() => jsonCodec.decode(text({ ...cancel, clientOrderId: 'x' })))).toMatchObject({ code: 'INVALID_FIELD', field: 'clientOrderId' });
    expect(thrown(() => jsonCodec.decode(text({ ...limit, clientOrderId: null })))).toMatchObject({ code: 'INVALID_FIELD', field: 'clientOrderId' });
    expect(thrown(() => jsonCodec.decode(text({ ...limit, clientOrderId: 'a b' })))).toMatchObject({ code: 'INVALID_FIELD', field: 'clientOrderId' });
    expect(jsonCodec.decode(text({ ...limit, clientOrderId: 'ok-1' }))).toStrictEqual({ ...limit, clientOrderId: 'ok-1' });
  });
});

describe('binary codec: one DecodedMessage across records', () => {
  it('a record without a client order id, decoded after one with, has none', () => {
    const out = new DecodedMessage();
    const a = binaryCodec.encodeToBuffer({ ...limit, clientOrderId: 'first' });
    const b = binaryCodec.encodeToBuffer(limit);
    expect(binaryCodec.decodeInto(a, 0, a.length, out).clientOrderId).toBe('first');
    expect(binaryCodec.decodeInto(b, 0, b.length, out).clientOrderId).toBeUndefined();
    expect(out.toMessage()).toStrictEqual(limit);
  });

  it('reads a record written before client order ids were logged (it ends at its symbol)', () => {
    // The golden limit record of binary-codec.test.ts, byte for byte.
    const old = Buffer.from('0101010303010000000000000002000000000000000300000000000000040000000000000001401e18240a0600d28601000000000007000000000000000742544355534454', 'hex');
    expect(binaryCodec.decode(old)).not.toHaveProperty('clientOrderId');
  });
});

describe.each([jsonCodec, binaryCodec].map((c) => [c.name, c] as [string, Codec]))('%s codec: a rejected order in its rejection', (_name, codec) => {
  const order = { side: 'sell', price: 6, qty: 7, tif: 'POST', stp: 'CANCEL_BOTH' } as const;

  it('round-trips with and without a client order id, and for a market order at price 0', () => {
    for (const m of [
      { ...rejected, ...order },
      { ...rejected, ...order, clientOrderId: 'r-1' },
      { ...rejected, commandType: 'market', ...order, price: 0, tif: 'IOC' },
    ] as Message[]) {
      expect(codec.decode(codec.encodeToBuffer(m))).toStrictEqual(m);
    }
  });

  it.each([
    ['one field missing (all five or none)', { ...rejected, ...order, qty: undefined }, 'qty'],
    ['on a cancel rejection', { ...rejected, commandType: 'cancel', ...order }, 'side'],
    ['a price for a market order', { ...rejected, commandType: 'market', ...order }, 'price'],
    ['price 0 for a limit order', { ...rejected, ...order, price: 0 }, 'price'],
    ['an unknown tif', { ...rejected, ...order, tif: 'DAY' }, 'tif'],
  ])('refuses %s with INVALID_FIELD naming the field', (_what, m, field) => {
    expect(thrown(() => codec.encodeToBuffer(m as unknown as Message))).toMatchObject({ code: 'INVALID_FIELD', field });
  });
});

describe('binary codec: a rejection cut inside its order', () => {
  it('is TRUNCATED, and a client order id length of 0 with nothing after it too', () => {
    const bytes = binaryCodec.encodeToBuffer({ ...rejected, side: 'buy', price: 1, qty: 1, tif: 'GTC', stp: 'NONE' });
    expect(thrown(() => binaryCodec.decode(bytes.subarray(0, bytes.length - 1)))).toMatchObject({ code: 'TRUNCATED' });
    expect(thrown(() => binaryCodec.decode(bytes.subarray(0, bytes.length - 19)))).toMatchObject({ code: 'TRUNCATED' });
    expect(thrown(() => binaryCodec.decode(Buffer.concat([bytes, Buffer.of(0)])))).toMatchObject({ code: 'TRAILING_BYTES' });
  });
});

describe.each([jsonCodec, binaryCodec].map((c) => [c.name, c] as [string, Codec]))('%s codec: an accepted order’s stp', (_name, codec) => {
  it('round-trips with and without a client order id, and is absent from an event that has none', () => {
    for (const m of [
      { ...accepted, stp: 'CANCEL_OLDEST' },
      { ...accepted, clientOrderId: 'a-1', stp: 'DECREMENT_CANCEL' },
      { ...accepted, orderType: 'market', price: 0, tif: 'IOC', stp: 'NONE' },
    ] as Message[]) {
      expect(codec.decode(codec.encodeToBuffer(m))).toStrictEqual(m);
    }
    expect(codec.decode(codec.encodeToBuffer(accepted))).not.toHaveProperty('stp');
  });

  it('refuses an unknown one with INVALID_FIELD stp', () => {
    expect(thrown(() => codec.encodeToBuffer({ ...accepted, stp: 'SOMETIMES' } as unknown as Message))).toMatchObject({ code: 'INVALID_FIELD', field: 'stp' });
  });
});

describe('binary codec: an accepted event’s stp', () => {
  it('is one byte after the client order id, whose length is then 0 when there is none', () => {
    const without = binaryCodec.encodeToBuffer(accepted);
    const withStp = binaryCodec.encodeToBuffer({ ...accepted, stp: 'CANCEL_BOTH' });
    expect(withStp.length).toBe(without.length + 2);
    expect(Buffer.compare(withStp.subarray(0, without.length), without)).toBe(0);
    expect([...withStp.subarray(without.length)]).toEqual([0, 3]); // no client order id; CANCEL_BOTH is index 3
    const withBoth = binaryCodec.encodeToBuffer({ ...accepted, clientOrderId: 'ab', stp: 'CANCEL_NEWEST' });
    expect([...withBoth.subarray(without.length)]).toEqual([2, 0x61, 0x62, 1]);
  });

  it('a record without one, decoded after one with, has none (one DecodedMessage across records)', () => {
    const out = new DecodedMessage();
    const a = binaryCodec.encodeToBuffer({ ...accepted, stp: 'CANCEL_BOTH' });
    const b = binaryCodec.encodeToBuffer(accepted);
    expect(binaryCodec.decodeInto(a, 0, a.length, out).toMessage()).toHaveProperty('stp', 'CANCEL_BOTH');
    expect(binaryCodec.decodeInto(b, 0, b.length, out).toMessage()).toStrictEqual(accepted);
  });

  it('cut, or followed by more bytes, or an unknown code, is a DecodeError', () => {
    const bytes = binaryCodec.encodeToBuffer({ ...accepted, stp: 'NONE' });
    // Cut after the 0 length: the length announced an stp.
    expect(thrown(() => binaryCodec.decode(bytes.subarray(0, bytes.length - 1)))).toMatchObject({ code: 'TRUNCATED' });
    expect(thrown(() => binaryCodec.decode(Buffer.concat([bytes, Buffer.of(0)])))).toMatchObject({ code: 'TRAILING_BYTES' });
    const bad = Buffer.from(bytes);
    bad[bad.length - 1] = 9;
    expect(thrown(() => binaryCodec.decode(bad))).toMatchObject({ code: 'INVALID_FIELD', field: 'stp' });
  });
});
