// Encoding: into a caller's buffer at an offset, BUFFER_TOO_SMALL, and refusal of invalid messages
// (both codecs naming the same field as the README's rules).
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { binaryCodec, EncodeError, jsonCodec, MESSAGE_TYPES, type Codec, type Message, type MessageType } from '../src/index.js';
import { ARBS, badValues, expectedInvalidField, fieldsOf, messageArb, natArb, thrown } from './support.js';

const CODECS: readonly Codec[] = [jsonCodec, binaryCodec];

describe.each(CODECS.map((c) => [c.name, c] as const))('%s codec encode', (_name, codec) => {
  it('writes exactly encodedLength bytes at the offset and leaves the rest of the buffer untouched', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(64), fc.nat(64), fc.integer({ min: 0, max: 255 }), (msg, offset, slack, fill) => {
        const n = codec.encodedLength(msg);
        const buf = new Uint8Array(offset + n + slack).fill(fill);
        expect(codec.encode(msg, buf, offset)).toBe(n);
        expect(buf.subarray(0, offset).every((b) => b === fill)).toBe(true);
        expect(buf.subarray(offset + n).every((b) => b === fill)).toBe(true);
        expect(codec.decode(buf.subarray(offset, offset + n))).toEqual(msg);
        expect(Buffer.from(buf.subarray(offset, offset + n))).toEqual(codec.encodeToBuffer(msg));
      }),
      { numRuns: 200 },
    );
  });

  it('writes into a Buffer as into a Uint8Array, offset 0 by default', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        const a = Buffer.alloc(codec.maxLength);
        const n = codec.encode(msg, a);
        expect(a.subarray(0, n)).toEqual(codec.encodeToBuffer(msg));
      }),
      { numRuns: 50 },
    );
  });

  it('throws BUFFER_TOO_SMALL, writing nothing, when the record does not fit', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(32), fc.integer({ min: 1, max: 400 }), (msg, offset, short) => {
        const n = codec.encodedLength(msg);
        const size = Math.max(0, offset + n - short);
        const buf = new Uint8Array(size).fill(0xa5);
        const e = thrown(() => codec.encode(msg, buf, offset));
        expect(e).toBeInstanceOf(EncodeError);
        expect((e as EncodeError).code).toBe('BUFFER_TOO_SMALL');
        expect(buf.every((b) => b === 0xa5)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('fits a record of maxLength bytes in a buffer of maxLength bytes', () => {
    // A rejected limit order with the longest symbol and client order id, and its order (a trade's
    // record is the longest without the optional fields).
    const longest = { type: 'rejected', symbol: 'S'.repeat(32), clientOrderId: 'c'.repeat(64) } as const;
    const filled = Object.fromEntries(fieldsOf('rejected').map(([name]) => [name, Number.MAX_SAFE_INTEGER]));
    const order = { side: 'sell', price: Number.MAX_SAFE_INTEGER, qty: Number.MAX_SAFE_INTEGER, tif: 'FOK', stp: 'CANCEL_BOTH' };
    const msg = { ...filled, ...longest, commandType: 'limit', reason: 'FOK_NOT_FILLABLE', ...order } as unknown as Message;
    const n = codec.encode(msg, new Uint8Array(codec.maxLength));
    if (codec.name === 'binary') expect(n).toBe(codec.maxLength);
    else expect(n).toBeLessThanOrEqual(codec.maxLength);
  });

  it.each(MESSAGE_TYPES)('refuses an invalid field of %s with INVALID_FIELD naming it, writing nothing', (type: MessageType) => {
    const cases = fc.oneof(
      ...fieldsOf(type).map(([name, rule]) => fc.record({ name: fc.constant(name), bad: fc.constantFrom(...badValues(rule)) })),
    );
    fc.assert(
      fc.property(ARBS[type], cases, ({ ...msg }, { name, bad }) => {
        const m = { ...msg, [name]: bad };
        const buf = new Uint8Array(512).fill(7);
        const e = thrown(() => codec.encode(m, buf, 3));
        expect(e).toBeInstanceOf(EncodeError);
        expect((e as EncodeError).code).toBe('INVALID_FIELD');
        expect((e as EncodeError).field).toBe(name);
        expect(buf.every((b) => b === 7)).toBe(true);
        expect(thrown(() => codec.encodedLength(m))).toMatchObject({ name: 'EncodeError', code: 'INVALID_FIELD', field: name });
        expect(() => codec.encodeToBuffer(m)).toThrow(EncodeError);
      }),
      { numRuns: 150 },
    );
  });

  it('refuses a missing field', () => {
    fc.assert(
      fc.property(messageArb, fc.nat(), (msg, i) => {
        const fields = fieldsOf(msg.type);
        const [name] = fields[i % fields.length] ?? ['symbol'];
        const m = { ...msg } as Record<string, unknown>;
        Reflect.deleteProperty(m, name);
        const e = thrown(() => codec.encode(m as unknown as Message, new Uint8Array(512)));
        expect(e).toMatchObject({ code: 'INVALID_FIELD', field: name });
      }),
      { numRuns: 100 },
    );
  });

  it('names the same field as the rules for messages with many invalid fields', () => {
    const junk = fc.oneof(natArb, fc.constantFrom<unknown>(-1, 0, 1.5, 'buy', 'X', null, undefined, 'SELF_TRADE_DECREMENT', 'market'));
    const loose = fc.constantFrom(...MESSAGE_TYPES).chain((type) =>
      fc.tuple(ARBS[type], fc.array(fc.tuple(fc.boolean(), junk), { minLength: 12, maxLength: 12 })).map(([msg, patches]) => {
        const m: Record<string, unknown> = { ...msg };
        fieldsOf(type).forEach(([name], i) => {
          const [replace, value] = patches[i] ?? [false, undefined];
          if (replace) m[name] = value;
        });
        return m;
      }),
    );
    fc.assert(
      fc.property(loose, (m) => {
        const want = expectedInvalidField(m);
        const e = thrown(() => {
          codec.encode(m as unknown as Message, new Uint8Array(512));
          throw new Error('valid');
        });
        if (want === undefined) expect((e as Error).message).toBe('valid');
        else expect(e).toMatchObject({ name: 'EncodeError', code: 'INVALID_FIELD', field: want });
        if (want !== undefined) expect(thrown(() => codec.encodedLength(m as unknown as Message))).toMatchObject({ code: 'INVALID_FIELD', field: want });
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['a market accepted event with a price', { type: 'accepted', orderType: 'market', price: 5 }],
    ['a limit accepted event at price 0', { type: 'accepted', orderType: 'limit', price: 0 }],
    ['an amended event at price 0 that is not a self-trade decrement', { type: 'amended', price: 0, kind: 'REDUCE' }],
  ])('refuses %s (INVALID_FIELD price)', (_what, patch) => {
    const base = patch.type === 'accepted' ? ARBS.accepted : ARBS.amended;
    fc.assert(
      fc.property(base, (msg) => {
        expect(thrown(() => codec.encodeToBuffer({ ...msg, ...patch } as Message))).toMatchObject({ code: 'INVALID_FIELD', field: 'price' });
      }),
      { numRuns: 20 },
    );
  });

  it.each([
    ['null', null],
    ['a number', 5],
    ['an unknown type', { type: 'order' }],
    ['a prototype property as type', { type: 'toString' }],
    ['no type', { symbol: 'BTCUSDT' }],
  ])('refuses %s as a message (INVALID_FIELD type)', (_what, m) => {
    expect(thrown(() => codec.encode(m as unknown as Message, new Uint8Array(512)))).toMatchObject({ code: 'INVALID_FIELD', field: 'type' });
    expect(thrown(() => codec.encodedLength(m as unknown as Message))).toMatchObject({ code: 'INVALID_FIELD', field: 'type' });
  });

  it('refuses a bad buffer or offset as a programming error', () => {
    const msg: Message = { type: 'cancel', symbol: 'BTCUSDT', seq: 0, reqId: 0, orderId: 1, userId: 0, ts: 0 };
    expect(() => codec.encode(msg, [] as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => codec.encode(msg, new Uint8Array(200), -1)).toThrow(RangeError);
    expect(() => codec.encode(msg, new Uint8Array(200), 1.5)).toThrow(RangeError);
    expect(thrown(() => codec.encode(msg, new Uint8Array(200), 201))).toMatchObject({ code: 'BUFFER_TOO_SMALL' });
  });
});
