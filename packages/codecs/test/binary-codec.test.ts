// The binary form: its layouts (checked against BINARY_LAYOUTS with a plain table-driven reader),
// golden records that pin the wire format, and specific bad records.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AMEND_KINDS,
  BINARY_LAYOUTS,
  BINARY_MAX_LENGTH,
  BINARY_TYPE_TAGS,
  BINARY_VERSION,
  binaryCodec,
  CANCEL_REASONS,
  COMMAND_TYPES,
  DecodedMessage,
  DecodeError,
  MESSAGE_TYPES,
  ORDER_TYPES,
  REJECT_REASONS,
  SELF_TRADE_PREVENTIONS,
  SIDES,
  TIMES_IN_FORCE,
  type Message,
  type MessageType,
} from '../src/index.js';
import { fieldsOf, messageArb, thrown, WITH_CLIENT_ORDER_ID } from './support.js';

/** A u64 LE read with BigInt, independently of the codec. */
const readU64 = (b: Uint8Array, at: number): bigint => Buffer.from(b).readBigUInt64LE(at);

describe('binary layouts', () => {
  it('list every field of every type once, back to back, then the symbol, then (orders and their answers) the optional client order id', () => {
    for (const type of MESSAGE_TYPES) {
      const layout = BINARY_LAYOUTS[type];
      const cid = WITH_CLIENT_ORDER_ID.includes(type) ? ['clientOrderId length (optional)', 'clientOrderId'] : [];
      const order =
        type === 'rejected' ? ['side (optional)', 'tif (optional)', 'stp (optional)', 'price (optional)', 'qty (optional)'] : type === 'accepted' ? ['stp (optional)'] : [];
      expect(layout.map((f) => f.field).sort()).toEqual(['version', 'type', ...fieldsOf(type).map(([n]) => n), 'symbol length', ...cid, ...order].sort());
      const symbolAt = layout.findIndex((f) => f.field === 'symbol');
      let at = 0;
      for (const f of layout.slice(0, symbolAt + 1)) {
        expect(f.offset).toBe(at);
        at += f.size;
      }
      expect(layout[symbolAt]).toMatchObject({ field: 'symbol', encoding: 'ASCII', size: 0 });
      // After the symbol, offsets count from the symbol's end; the rejected order's from the client order id's end.
      expect(layout.slice(symbolAt + 1, symbolAt + 3)).toEqual(
        cid.length === 0
          ? []
          : [
              { offset: 0, size: 1, field: 'clientOrderId length (optional)', encoding: 'u8' },
              { offset: 1, size: 0, field: 'clientOrderId', encoding: 'ASCII' },
            ],
      );
      expect(layout.slice(symbolAt + 3)).toEqual(
        order.length === 0
          ? []
          : type === 'accepted'
            ? [{ offset: 0, size: 1, field: 'stp (optional)', encoding: 'u8 enum' }]
            : [
              { offset: 0, size: 1, field: 'side (optional)', encoding: 'u8 enum' },
              { offset: 1, size: 1, field: 'tif (optional)', encoding: 'u8 enum' },
              { offset: 2, size: 1, field: 'stp (optional)', encoding: 'u8 enum' },
              { offset: 3, size: 8, field: 'price (optional)', encoding: 'u64 LE' },
              { offset: 11, size: 8, field: 'qty (optional)', encoding: 'u64 LE' },
            ],
      );
    }
  });

  it('are where encode puts each field (read back by a table-driven reader)', () => {
    const enumLists: Record<string, readonly string[]> = { side: SIDES, takerSide: SIDES, tif: TIMES_IN_FORCE, stp: SELF_TRADE_PREVENTIONS, orderType: ORDER_TYPES, commandType: COMMAND_TYPES, kind: AMEND_KINDS };
    fc.assert(
      fc.property(messageArb, (msg) => {
        const b = binaryCodec.encodeToBuffer(msg);
        const m = msg as unknown as Record<string, unknown>;
        const read: Record<string, unknown> = {};
        const symbolEnd = (BINARY_LAYOUTS[msg.type].find((f) => f.field === 'symbol')?.offset ?? 0) + msg.symbol.length;
        const cid = (msg as { clientOrderId?: string }).clientOrderId;
        // The rejected order, or the accepted order's stp.
        const order = (msg.type === 'rejected' && msg.side !== undefined) || (msg.type === 'accepted' && msg.stp !== undefined) ? msg : undefined;
        const orderAt = symbolEnd + (cid === undefined ? 1 : 1 + cid.length);
        for (const f of BINARY_LAYOUTS[msg.type]) {
          if (f.field.endsWith(' (optional)') && f.field !== 'clientOrderId length (optional)') {
            // The rejected order or the accepted stp, after the client order id (a length of 0 when there is none).
            if (order === undefined) continue;
            const name = f.field.replace(' (optional)', '');
            const at = orderAt + f.offset;
            const got = f.encoding === 'u64 LE' ? Number(readU64(b, at)) : enumLists[name]?.[b[at] ?? -1];
            expect(got).toBe(m[name]);
          } else if (f.field === 'clientOrderId length (optional)') {
            if (order !== undefined || cid !== undefined) expect(b[symbolEnd + f.offset]).toBe(cid?.length ?? 0);
            else expect(b.length).toBe(symbolEnd);
          } else if (f.field === 'clientOrderId') {
            if (cid !== undefined) expect(Buffer.from(b).toString('latin1', symbolEnd + f.offset, symbolEnd + f.offset + cid.length)).toBe(cid);
          } else if (f.field === 'version') expect(b[f.offset]).toBe(BINARY_VERSION);
          else if (f.field === 'type') expect(b[f.offset]).toBe(BINARY_TYPE_TAGS[msg.type]);
          else if (f.field === 'symbol length') expect(b[f.offset]).toBe(msg.symbol.length);
          else if (f.field === 'symbol') read.symbol = Buffer.from(b).toString('latin1', f.offset, symbolEnd);
          else if (f.encoding === 'u64 LE') read[f.field] = Number(readU64(b, f.offset));
          else {
            const list = f.field === 'reason' ? (msg.type === 'rejected' ? REJECT_REASONS : CANCEL_REASONS) : enumLists[f.field];
            read[f.field] = list?.[b[f.offset] ?? -1];
          }
        }
        for (const [name] of fieldsOf(msg.type)) expect(read[name]).toBe(m[name]);
        expect(b.length).toBe(order !== undefined ? orderAt + (msg.type === 'rejected' ? 19 : 1) : symbolEnd + (cid === undefined ? 0 : 1 + cid.length));
      }),
      { numRuns: 300 },
    );
  });

  it('has the longest record at BINARY_MAX_LENGTH (a rejected limit order with a 32-character symbol, a 64-character client order id and its order)', () => {
    expect(BINARY_MAX_LENGTH).toBe(45 + 32 + 1 + 64 + 19);
    const longest: Message = { type: 'rejected', symbol: 'S'.repeat(32), seq: 1, eventSeq: 1, ts: 1, commandType: 'limit', orderId: 1, userId: 1, reason: 'FOK_NOT_FILLABLE', clientOrderId: 'c'.repeat(64), side: 'buy', price: 1, qty: 1, tif: 'FOK', stp: 'NONE' };
    expect(binaryCodec.encodeToBuffer(longest)).toHaveLength(BINARY_MAX_LENGTH);
    expect(binaryCodec.maxLength).toBe(BINARY_MAX_LENGTH);
  });
});

describe('binary wire format (golden records: a change here breaks every log written before it)', () => {
  it('pins the enum codes (their index in the lists of types.ts) and the type tags', () => {
    expect(SIDES).toEqual(['buy', 'sell']);
    expect(TIMES_IN_FORCE).toEqual(['GTC', 'IOC', 'FOK', 'POST']);
    expect(SELF_TRADE_PREVENTIONS).toEqual(['NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL']);
    expect(COMMAND_TYPES).toEqual(['limit', 'market', 'cancel', 'amend']);
    expect(ORDER_TYPES).toEqual(['limit', 'market']);
    expect(CANCEL_REASONS).toEqual(['USER', 'UNFILLED', 'SELF_TRADE']);
    expect(AMEND_KINDS).toEqual(['REDUCE', 'REPLACE', 'SELF_TRADE_DECREMENT']);
    expect(REJECT_REASONS.slice(0, 3)).toEqual(['INVALID_ORDER_ID', 'INVALID_USER_ID', 'INVALID_SIDE']);
    expect(REJECT_REASONS.at(-1)).toBe('UNKNOWN_SYMBOL');
    expect(REJECT_REASONS).toHaveLength(18);
    expect(BINARY_TYPE_TAGS).toEqual({ limit: 1, market: 2, cancel: 3, amend: 4, accepted: 16, rejected: 17, added: 18, trade: 19, canceled: 20, amended: 21, cmdEnd: 22 });
  });

  const samples: [Message, string][] = [
    [
      { type: 'limit', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 1_700_000_000_000_001, side: 'sell', price: 100_050, qty: 7, tif: 'POST', stp: 'CANCEL_BOTH' },
      '0101010303010000000000000002000000000000000300000000000000040000000000000001401e18240a0600d28601000000000007000000000000000742544355534454',
    ],
    [
      { type: 'market', symbol: 'ETH-USD', seq: 2, reqId: 0, orderId: 2 ** 32 + 5, userId: 0, ts: 6, side: 'buy', qty: 9, stp: 'DECREMENT_CANCEL' },
      '01020004020000000000000000000000000000000500000001000000000000000000000006000000000000000900000000000000074554482d555344',
    ],
    [{ type: 'cancel', symbol: 'A', seq: 3, reqId: 4, orderId: 5, userId: 6, ts: 7 }, '0103030000000000000004000000000000000500000000000000060000000000000007000000000000000141'],
    [
      { type: 'amend', symbol: 'X.Y_Z', seq: 4, reqId: 5, orderId: 6, userId: 7, ts: 8, price: 9, qty: 10 },
      '01040400000000000000050000000000000006000000000000000700000000000000080000000000000009000000000000000a0000000000000005582e595f5a',
    ],
    [
      { type: 'accepted', symbol: 'BTCUSDT', seq: 5, eventSeq: 11, ts: 12, orderType: 'market', orderId: 13, userId: 14, side: 'sell', price: 0, qty: 15, tif: 'IOC' },
      '011001010105000000000000000b000000000000000c000000000000000d000000000000000e0000000000000000000000000000000f000000000000000742544355534454',
    ],
    [
      { type: 'rejected', symbol: 'BTCUSDT', seq: 6, eventSeq: 16, ts: 17, commandType: 'amend', orderId: 0, userId: 18, reason: 'UNKNOWN_SYMBOL' },
      '01110311060000000000000010000000000000001100000000000000000000000000000012000000000000000742544355534454',
    ],
    [
      { type: 'added', symbol: 'BTCUSDT', seq: 7, eventSeq: 19, ts: 20, orderId: 21, userId: 22, side: 'buy', price: 23, qty: 24 },
      '01120007000000000000001300000000000000140000000000000015000000000000001600000000000000170000000000000018000000000000000742544355534454',
    ],
    [
      {
        type: 'trade',
        symbol: 'BTCUSDT',
        seq: 8,
        eventSeq: 25,
        ts: 26,
        makerOrderId: 27,
        takerOrderId: 28,
        makerUserId: 29,
        takerUserId: 30,
        takerSide: 'sell',
        price: 31,
        qty: 32,
        makerRemaining: Number.MAX_SAFE_INTEGER,
      },
      '011301080000000000000019000000000000001a000000000000001b000000000000001c000000000000001d000000000000001e000000000000001f000000000000002000000000000000ffffffffffff1f000742544355534454',
    ],
    [
      { type: 'canceled', symbol: 'BTCUSDT', seq: 9, eventSeq: 33, ts: 34, orderId: 35, userId: 36, reason: 'SELF_TRADE', qty: 37 },
      '0114020900000000000000210000000000000022000000000000002300000000000000240000000000000025000000000000000742544355534454',
    ],
    [
      { type: 'amended', symbol: 'BTCUSDT', seq: 10, eventSeq: 38, ts: 39, orderId: 40, userId: 41, side: 'buy', price: 42, qty: 43, kind: 'REPLACE' },
      '011500010a0000000000000026000000000000002700000000000000280000000000000029000000000000002a000000000000002b000000000000000742544355534454',
    ],
    [{ type: 'cmdEnd', symbol: 'BTCUSDT', seq: 11, eventSeq: 44, ts: 45, events: 3 }, '01160b000000000000002c000000000000002d0000000000000003000000000000000742544355534454'],
    // With a client order id: the same record as without one, then its length and its bytes.
    [
      { type: 'limit', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 1_700_000_000_000_001, side: 'sell', price: 100_050, qty: 7, tif: 'POST', stp: 'CANCEL_BOTH', clientOrderId: 'a:1' },
      '0101010303010000000000000002000000000000000300000000000000040000000000000001401e18240a0600d28601000000000007000000000000000742544355534454' + '03613a31',
    ],
    [
      { type: 'rejected', symbol: 'BTCUSDT', seq: 6, eventSeq: 16, ts: 17, commandType: 'limit', orderId: 3, userId: 18, reason: 'FOK_NOT_FILLABLE', clientOrderId: 'Z-9' },
      '0111000b060000000000000010000000000000001100000000000000030000000000000012000000000000000742544355534454' + '035a2d39',
    ],
    // With the rejected order: after the client order id (length 0 when there is none), side, tif, stp, price, qty.
    [
      { type: 'rejected', symbol: 'BTCUSDT', seq: 6, eventSeq: 16, ts: 17, commandType: 'limit', orderId: 3, userId: 18, reason: 'POST_ONLY_WOULD_CROSS', side: 'sell', price: 100_050, qty: 7, tif: 'POST', stp: 'CANCEL_BOTH' },
      '0111000a060000000000000010000000000000001100000000000000030000000000000012000000000000000742544355534454' + '00' + '010303' + 'd286010000000000' + '0700000000000000',
    ],
    [
      { type: 'rejected', symbol: 'BTCUSDT', seq: 6, eventSeq: 16, ts: 17, commandType: 'market', orderId: 3, userId: 18, reason: 'QTY_ABOVE_MAX', clientOrderId: 'm1', side: 'buy', price: 0, qty: 9, tif: 'IOC', stp: 'NONE' },
      '0111010806000000000000001000000000000000110000000000000003000000000000001200000000000000074254435553445402' + '6d31' + '000100' + '0000000000000000' + '0900000000000000',
    ],
  ];

  it('covers every type', () => {
    expect(new Set(samples.map(([m]) => m.type))).toEqual(new Set(MESSAGE_TYPES));
  });

  it.each(samples)('encodes and decodes the golden %s', (msg, hex) => {
    expect(binaryCodec.encodeToBuffer(msg).toString('hex')).toBe(hex);
    expect(binaryCodec.decode(Buffer.from(hex, 'hex'))).toEqual(msg);
  });
});

describe('binary codec: bad records', () => {
  const limit: Message = { type: 'limit', symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, side: 'sell', price: 6, qty: 7, tif: 'GTC', stp: 'NONE' };
  const good = (): Uint8Array => Uint8Array.from(binaryCodec.encodeToBuffer(limit));
  const at = (type: MessageType, field: string): number => BINARY_LAYOUTS[type].find((f) => f.field === field)?.offset ?? -1;
  const patched = (patch: (b: Uint8Array) => void): Uint8Array => {
    const b = good();
    patch(b);
    return b;
  };
  const u64 = (b: Uint8Array, offset: number, lo: number, hi: number): void => {
    const v = Buffer.alloc(8);
    v.writeUInt32LE(lo, 0);
    v.writeUInt32LE(hi, 4);
    b.set(v, offset);
  };

  const cases: [string, Uint8Array, string, string | undefined][] = [
    ['empty', new Uint8Array(0), 'TRUNCATED', '@0'],
    ['version 0', patched((b) => (b[0] = 0)), 'UNKNOWN_VERSION', 'version'],
    ['version 2', patched((b) => (b[0] = 2)), 'UNKNOWN_VERSION', 'version'],
    ['a version byte alone', Uint8Array.of(1), 'TRUNCATED', '@1'],
    ['a wrong version byte alone', Uint8Array.of(9), 'UNKNOWN_VERSION', 'version'],
    ['type tag 0', patched((b) => (b[1] = 0)), 'UNKNOWN_TYPE', 'type'],
    ['type tag 5', patched((b) => (b[1] = 5)), 'UNKNOWN_TYPE', 'type'],
    ['type tag 255', patched((b) => (b[1] = 255)), 'UNKNOWN_TYPE', 'type'],
    ['a header alone', Uint8Array.of(1, 1), 'TRUNCATED', '@2'],
    ['a record cut inside the fixed part', good().subarray(0, 30), 'TRUNCATED', '@30'],
    ['a record cut inside the symbol', good().subarray(0, 64), 'TRUNCATED', '@64'],
    // A limit order may end with a client order id: a byte after its symbol starts one.
    ['one trailing byte (a client order id of length 0)', Uint8Array.of(...good(), 0), 'INVALID_FIELD', 'clientOrderId'],
    ['a client order id length of 65', Uint8Array.of(...good(), 65, ...Buffer.from('a'.repeat(65))), 'INVALID_FIELD', 'clientOrderId'],
    ['a client order id cut short', Uint8Array.of(...good(), 3, 0x61, 0x62), 'TRUNCATED', '@72'],
    ['a byte after the client order id', Uint8Array.of(...good(), 2, 0x61, 0x62, 0x63), 'TRAILING_BYTES', '@72'],
    ['a client order id with a space', Uint8Array.of(...good(), 3, 0x61, 0x20, 0x62), 'INVALID_FIELD', 'clientOrderId'],
    ['a client order id with a non-ASCII byte', Uint8Array.of(...good(), 1, 0xe9), 'INVALID_FIELD', 'clientOrderId'],
    ['one trailing byte after a cancel (no client order id)', Uint8Array.of(...binaryCodec.encodeToBuffer({ type: 'cancel', symbol: 'A', seq: 3, reqId: 4, orderId: 5, userId: 6, ts: 7 }), 0), 'TRAILING_BYTES', '@44'],
    ['a symbol length of 0', patched((b) => (b[at('limit', 'symbol length')] = 0)), 'INVALID_FIELD', 'symbol'],
    ['a symbol length of 33', Uint8Array.of(...good().subarray(0, 61), 33, ...Buffer.from('A'.repeat(33))), 'INVALID_FIELD', 'symbol'],
    ['a symbol length of 255 (not an allocation of 255)', patched((b) => (b[at('limit', 'symbol length')] = 255)), 'INVALID_FIELD', 'symbol'],
    ['a symbol length longer than the record', patched((b) => (b[at('limit', 'symbol length')] = 8)), 'TRUNCATED', '@69'],
    // The symbol's last byte, 'T' (84), is then read as a client order id's length.
    ['a symbol length shorter than the record', patched((b) => (b[at('limit', 'symbol length')] = 6)), 'INVALID_FIELD', 'clientOrderId'],
    ['a lower-case symbol byte', patched((b) => (b[at('limit', 'symbol')] = 0x62)), 'INVALID_FIELD', 'symbol'],
    ['a NUL symbol byte', patched((b) => (b[at('limit', 'symbol') + 6] = 0)), 'INVALID_FIELD', 'symbol'],
    ['a non-ASCII symbol byte', patched((b) => (b[at('limit', 'symbol') + 3] = 0xc3)), 'INVALID_FIELD', 'symbol'],
    ['side code 2', patched((b) => (b[at('limit', 'side')] = 2)), 'INVALID_FIELD', 'side'],
    ['tif code 4', patched((b) => (b[at('limit', 'tif')] = 4)), 'INVALID_FIELD', 'tif'],
    ['stp code 255', patched((b) => (b[at('limit', 'stp')] = 255)), 'INVALID_FIELD', 'stp'],
    ['a price of 0', patched((b) => { u64(b, at('limit', 'price'), 0, 0); }), 'INVALID_FIELD', 'price'],
    ['a qty of 0', patched((b) => { u64(b, at('limit', 'qty'), 0, 0); }), 'INVALID_FIELD', 'qty'],
    ['an orderId of 0', patched((b) => { u64(b, at('limit', 'orderId'), 0, 0); }), 'INVALID_FIELD', 'orderId'],
    ['a price of 2^53 (high half 0x200000)', patched((b) => { u64(b, at('limit', 'price'), 0, 0x200000); }), 'INVALID_FIELD', 'price'],
    ['a ts of 2^64 - 1', patched((b) => { u64(b, at('limit', 'ts'), 0xffffffff, 0xffffffff); }), 'INVALID_FIELD', 'ts'],
    ['a seq with the top bit set (not negative: unsafe)', patched((b) => { u64(b, at('limit', 'seq'), 0, 0x80000000); }), 'INVALID_FIELD', 'seq'],
  ];

  it.each(cases)('%s gives %s (%s)', (_what, bytes, code, field) => {
    const e = thrown(() => binaryCodec.decode(bytes));
    expect(e).toBeInstanceOf(DecodeError);
    expect(e).toMatchObject({ code, field });
  });

  it('accepts the largest safe integer (high half 0x1fffff, low half 0xffffffff)', () => {
    const b = patched((x) => { u64(x, at('limit', 'price'), 0xffffffff, 0x1fffff); });
    expect(binaryCodec.decode(b)).toMatchObject({ price: Number.MAX_SAFE_INTEGER });
  });

  it('checks the cross-field rules of accepted and amended events, and of amend commands', () => {
    const accepted = binaryCodec.encodeToBuffer({ type: 'accepted', symbol: 'X', seq: 1, eventSeq: 1, ts: 1, orderType: 'market', orderId: 1, userId: 0, side: 'buy', price: 0, qty: 1, tif: 'IOC' });
    accepted[at('accepted', 'orderType')] = 0; // now a limit order at price 0
    expect(thrown(() => binaryCodec.decode(accepted))).toMatchObject({ code: 'INVALID_FIELD', field: 'price' });
    const amended = binaryCodec.encodeToBuffer({ type: 'amended', symbol: 'X', seq: 1, eventSeq: 1, ts: 1, orderId: 1, userId: 0, side: 'buy', price: 0, qty: 1, kind: 'SELF_TRADE_DECREMENT' });
    amended[at('amended', 'kind')] = 0; // REDUCE at price 0
    expect(thrown(() => binaryCodec.decode(amended))).toMatchObject({ code: 'INVALID_FIELD', field: 'price' });
    // An amend's qty 0 keeps the order's remaining quantity: only with a new price.
    const keep = { type: 'amend', symbol: 'X', seq: 1, reqId: 0, orderId: 1, userId: 0, ts: 1, price: 7, qty: 0 } as const;
    expect(binaryCodec.decode(binaryCodec.encodeToBuffer(keep))).toEqual(keep);
    expect(thrown(() => binaryCodec.encodeToBuffer({ ...keep, price: 0 }))).toMatchObject({ code: 'INVALID_FIELD', field: 'qty' });
    const both0 = binaryCodec.encodeToBuffer(keep);
    u64(both0, at('amend', 'price'), 0, 0);
    expect(thrown(() => binaryCodec.decode(both0))).toMatchObject({ code: 'INVALID_FIELD', field: 'qty' });
  });

  it('refuses bad arguments as programming errors', () => {
    expect(() => binaryCodec.decode('01' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => binaryCodec.decodeInto(good(), -1, 3, new DecodedMessage())).toThrow(RangeError);
    expect(() => binaryCodec.decodeInto(good(), 0, 1.5, new DecodedMessage())).toThrow(RangeError);
  });

  it('does not let the symbol cache pass a bad symbol that differs from a cached one in one byte', () => {
    const out = new DecodedMessage();
    const a = good();
    binaryCodec.decodeInto(a, 0, a.length, out);
    const bad = patched((b) => (b[at('limit', 'symbol')] = 0x62));
    expect(() => binaryCodec.decodeInto(bad, 0, bad.length, out)).toThrow(DecodeError);
    expect(binaryCodec.decodeInto(a, 0, a.length, out).symbol).toBe('BTCUSDT');
  });
});
