// Edges of both codecs, from a review: a missing symbol in a fresh process, resizable buffers,
// decode of what is not a Uint8Array, maxLength, the order in which JSON reports a rounded number,
// and round trips, refusals and hostile input at the edges. Deterministic (fixed seeds).
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  AMEND_KINDS,
  BINARY_TYPE_TAGS,
  binaryCodec,
  CANCEL_REASONS,
  COMMAND_TYPES,
  DecodedMessage,
  DecodeError,
  EncodeError,
  jsonCodec,
  MESSAGE_TYPES,
  ORDER_TYPES,
  REJECT_REASONS,
  SELF_TRADE_PREVENTIONS,
  SIDES,
  TIMES_IN_FORCE,
  type Codec,
  type Message,
  type MessageType,
} from '../src/index.js';
import { ARBS, expectedInvalidField, messageArb } from './support.js';

const CODECS: readonly Codec[] = [jsonCodec, binaryCodec];
const MAX = Number.MAX_SAFE_INTEGER;
const SEED = 0x5eed;

/** A valid message of each type (every field set), with `over` applied. */
function sample(type: MessageType, over: Record<string, unknown> = {}): Message {
  const base: Record<MessageType, Record<string, unknown>> = {
    limit: { symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, side: 'buy', price: 6, qty: 7, tif: 'GTC', stp: 'NONE' },
    market: { symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, side: 'sell', qty: 7, stp: 'NONE' },
    cancel: { symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5 },
    amend: { symbol: 'BTCUSDT', seq: 1, reqId: 2, orderId: 3, userId: 4, ts: 5, price: 6, qty: 7 },
    accepted: { symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderType: 'limit', orderId: 4, userId: 5, side: 'buy', price: 6, qty: 7, tif: 'GTC' },
    rejected: { symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, commandType: 'limit', orderId: 4, userId: 5, reason: 'INVALID_PRICE' },
    added: { symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderId: 4, userId: 5, side: 'buy', price: 6, qty: 7 },
    trade: {
      symbol: 'BTCUSDT',
      seq: 1,
      eventSeq: 2,
      ts: 3,
      makerOrderId: 4,
      takerOrderId: 5,
      makerUserId: 6,
      takerUserId: 7,
      takerSide: 'sell',
      price: 8,
      qty: 9,
      makerRemaining: 10,
    },
    canceled: { symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderId: 4, userId: 5, reason: 'USER', qty: 6 },
    amended: { symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, orderId: 4, userId: 5, side: 'buy', price: 6, qty: 7, kind: 'REDUCE' },
    cmdEnd: { symbol: 'BTCUSDT', seq: 1, eventSeq: 2, ts: 3, events: 4 },
  };
  return { type, ...base[type], ...over } as unknown as Message;
}

function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Bugs
// ---------------------------------------------------------------------------------------------

describe('binary encode before any valid symbol was encoded (fresh module)', () => {
  it('refuses a message without a symbol with EncodeError INVALID_FIELD symbol, not a TypeError', async () => {
    vi.resetModules();
    const fresh = await import('../src/index.js');
    for (const type of MESSAGE_TYPES) {
      const msg = { ...sample(type) } as Record<string, unknown>;
      delete msg.symbol;
      // JSON names the field, as the README says both codecs do.
      expect(caught(() => fresh.jsonCodec.encodedLength(msg as unknown as Message))).toMatchObject({ code: 'INVALID_FIELD', field: 'symbol' });
      const e = caught(() => fresh.binaryCodec.encodedLength(msg as unknown as Message));
      expect(e, `${type}: ${String(e)}`).toBeInstanceOf(fresh.EncodeError);
      expect(e).toMatchObject({ code: 'INVALID_FIELD', field: 'symbol' });
      const e2 = caught(() => fresh.binaryCodec.encode({ ...msg, symbol: undefined } as unknown as Message, new Uint8Array(200), 0));
      expect(e2, `${type}: ${String(e2)}`).toBeInstanceOf(fresh.EncodeError);
    }
  });
});

describe('binary codec on a resizable ArrayBuffer (a length-tracking Uint8Array)', () => {
  const RAB = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
  const msg = sample('limit', { clientOrderId: 'c-1' });

  it('encodes and decodes at an offset that exists only after the buffer grew (no RangeError, no partial write)', () => {
    const ab = new RAB(128, { maxByteLength: 4096 });
    const buf = new Uint8Array(ab);
    const n = binaryCodec.encode(msg, buf, 0); // caches a view of the buffer at its first size
    ab.resize(4096);
    expect(buf.length).toBe(4096);
    const e = caught(() => binaryCodec.encode(msg, buf, 1000));
    expect(e, String(e)).toBeUndefined();
    expect(Buffer.from(buf.subarray(1000, 1000 + n))).toEqual(binaryCodec.encodeToBuffer(msg));
    expect(binaryCodec.decodeInto(buf, 1000, n, new DecodedMessage()).toMessage()).toEqual(msg);
  });

  it('decodes a record still inside the buffer after it shrank (no TypeError)', () => {
    const ab = new RAB(512, { maxByteLength: 4096 });
    const buf = new Uint8Array(ab);
    const n = binaryCodec.encode(msg, buf, 300);
    binaryCodec.decodeInto(buf, 300, n, new DecodedMessage()); // caches a view of 512 bytes
    const m = binaryCodec.encode(msg, buf, 0);
    ab.resize(200);
    const e = caught(() => binaryCodec.decodeInto(buf, 0, m, new DecodedMessage()));
    expect(e, String(e)).toBeUndefined();
  });
});

describe('JSON decode of something that is not a Uint8Array', () => {
  it('is a TypeError (a programming error), as in the binary codec, not a decoded message or a DecodeError', () => {
    const text = jsonCodec.encodeToBuffer(sample('cancel')).toString();
    const ab = new TextEncoder().encode(text).buffer;
    const inputs: unknown[] = [ab, new DataView(ab), text];
    for (const input of inputs) {
      expect(caught(() => binaryCodec.decode(input as Uint8Array))).toBeInstanceOf(TypeError);
      const e = caught(() => jsonCodec.decode(input as Uint8Array));
      expect(e, `${Object.prototype.toString.call(input)} gave ${JSON.stringify(e)}`).toBeInstanceOf(TypeError);
    }
  });
});

describe('maxLength', () => {
  /** The longest valid message of each type that has variable parts. */
  const longest = (): Message[] => {
    const S = 'X'.repeat(32);
    const C = 'c'.repeat(64);
    const out: Message[] = [];
    const longestOf = (values: readonly string[]): string => values.reduce((a, b) => (b.length > a.length ? b : a));
    for (const commandType of ['limit', 'market']) {
      out.push(
        sample('rejected', {
          symbol: S,
          seq: MAX,
          eventSeq: MAX,
          ts: MAX,
          commandType,
          orderId: MAX,
          userId: MAX,
          reason: longestOf(REJECT_REASONS),
          clientOrderId: C,
          side: 'sell',
          price: commandType === 'market' ? 0 : MAX,
          qty: MAX,
          tif: 'POST',
          stp: longestOf(SELF_TRADE_PREVENTIONS),
        }),
      );
    }
    out.push(
      sample('accepted', { symbol: S, seq: MAX, eventSeq: MAX, ts: MAX, orderId: MAX, userId: MAX, side: 'sell', price: MAX, qty: MAX, tif: 'POST', clientOrderId: C, stp: 'DECREMENT_CANCEL' }),
      sample('limit', { symbol: S, seq: MAX, reqId: MAX, orderId: MAX, userId: MAX, ts: MAX, side: 'sell', price: MAX, qty: MAX, tif: 'POST', stp: 'DECREMENT_CANCEL', clientOrderId: C }),
      sample('trade', { symbol: S, seq: MAX, eventSeq: MAX, ts: MAX, makerOrderId: MAX, takerOrderId: MAX, makerUserId: MAX, takerUserId: MAX, price: MAX, qty: MAX, makerRemaining: MAX }),
    );
    return out;
  };

  it('binary: is the length of the longest valid record; JSON: holds the longest (441 bytes, a rejected limit order)', () => {
    const binaryLongest = Math.max(...longest().map((m) => binaryCodec.encodedLength(m)));
    expect(binaryLongest).toBe(binaryCodec.maxLength);
    const jsonLongest = Math.max(...longest().map((m) => jsonCodec.encodedLength(m)));
    expect(jsonLongest).toBe(441);
    expect(jsonCodec.maxLength).toBeGreaterThanOrEqual(jsonLongest);
  });
});

// ---------------------------------------------------------------------------------------------
// Checks that pass (what the README promises, at the edges)
// ---------------------------------------------------------------------------------------------

describe('round trips at edge values', () => {
  const INT_FIELDS = ['seq', 'reqId', 'orderId', 'userId', 'ts', 'eventSeq', 'price', 'qty', 'makerOrderId', 'takerOrderId', 'makerUserId', 'takerUserId', 'makerRemaining', 'events'];
  const edges = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 1e8, 1e15, 1e15 - 1, MAX - 1, MAX];

  it('every integer field of every type at every edge value, through both codecs and decodeInto, and across codecs', () => {
    const out = new DecodedMessage();
    for (const type of MESSAGE_TYPES) {
      const m0 = sample(type) as unknown as Record<string, unknown>;
      for (const f of INT_FIELDS.filter((k) => k in m0)) {
        for (const v of edges) {
          const m = { ...m0, [f]: v } as Record<string, unknown>;
          if (type === 'accepted' && f === 'price') m.orderType = v === 0 ? 'market' : 'limit';
          if (type === 'amended' && f === 'price' && v === 0) m.kind = 'SELF_TRADE_DECREMENT';
          if (expectedInvalidField(m) !== undefined) {
            for (const c of CODECS) expect(caught(() => c.encodedLength(m as unknown as Message))).toMatchObject({ code: 'INVALID_FIELD', field: f });
            continue;
          }
          const msg = m as unknown as Message;
          const bin = binaryCodec.encodeToBuffer(msg);
          const json = jsonCodec.encodeToBuffer(msg);
          expect(json.toString()).toBe(JSON.stringify({ v: 1, ...msg }));
          expect(binaryCodec.decode(bin)).toEqual(msg);
          expect(jsonCodec.decode(json)).toEqual(msg);
          expect(binaryCodec.decodeInto(Uint8Array.from(bin), 0, bin.length, out).toMessage()).toEqual(msg);
          expect(binaryCodec.encodeToBuffer(jsonCodec.decode(json))).toEqual(bin);
        }
      }
    }
  });

  it('every value of every enum field, with its index as the binary code', () => {
    const enums: [MessageType, string, readonly string[], number][] = [
      ['limit', 'side', SIDES, 2],
      ['limit', 'tif', TIMES_IN_FORCE, 3],
      ['limit', 'stp', SELF_TRADE_PREVENTIONS, 4],
      ['market', 'side', SIDES, 2],
      ['market', 'stp', SELF_TRADE_PREVENTIONS, 3],
      ['accepted', 'side', SIDES, 3],
      ['accepted', 'tif', TIMES_IN_FORCE, 4],
      ['rejected', 'commandType', COMMAND_TYPES, 2],
      ['rejected', 'reason', REJECT_REASONS, 3],
      ['added', 'side', SIDES, 2],
      ['trade', 'takerSide', SIDES, 2],
      ['canceled', 'reason', CANCEL_REASONS, 2],
      ['amended', 'side', SIDES, 2],
      ['amended', 'kind', AMEND_KINDS, 3],
    ];
    for (const [type, field, values, at] of enums) {
      values.forEach((value, i) => {
        const msg = sample(type, { [field]: value });
        const bin = binaryCodec.encodeToBuffer(msg);
        expect(bin[at]).toBe(i);
        for (const c of CODECS) expect(c.decode(c.encodeToBuffer(msg))).toEqual(msg);
      });
    }
    ORDER_TYPES.forEach((orderType, i) => {
      const msg = sample('accepted', { orderType, price: orderType === 'market' ? 0 : 5 });
      expect(binaryCodec.encodeToBuffer(msg)[2]).toBe(i);
      for (const c of CODECS) expect(c.decode(c.encodeToBuffer(msg))).toEqual(msg);
    });
    for (const stp of SELF_TRADE_PREVENTIONS) {
      for (const m of [sample('accepted', { stp }), sample('rejected', { commandType: 'market', side: 'sell', price: 0, qty: 1, tif: 'IOC', stp })]) {
        for (const c of CODECS) expect(c.decode(c.encodeToBuffer(m))).toEqual(m);
      }
    }
  });

  it('32-character symbols and 64-character client order ids of every allowed character', () => {
    const symChars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-';
    const cidChars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:-';
    for (let k = 0; k < symChars.length; k += 8) {
      const symbol = (symChars.slice(k) + symChars).slice(0, 32);
      const clientOrderId = (cidChars.slice(k) + cidChars).slice(0, 64);
      for (const type of ['limit', 'market', 'accepted', 'rejected'] as const) {
        const msg = sample(type, { symbol, clientOrderId });
        for (const c of CODECS) expect(c.decode(c.encodeToBuffer(msg))).toEqual(msg);
        // The plain Uint8Array path (the client order id read byte by byte, not through Buffer#toString).
        const bin = Uint8Array.from(binaryCodec.encodeToBuffer(msg));
        expect(binaryCodec.decodeInto(bin, 0, bin.length, new DecodedMessage()).toMessage()).toEqual(msg);
      }
    }
  });
});

describe('encode refuses invalid messages, writing nothing', () => {
  const bad: [MessageType, Record<string, unknown>, string][] = [
    ['limit', { clientOrderId: 'é' }, 'clientOrderId'],
    ['limit', { clientOrderId: '日本' }, 'clientOrderId'],
    ['limit', { clientOrderId: 'a'.repeat(65) }, 'clientOrderId'],
    ['limit', { clientOrderId: '' }, 'clientOrderId'],
    ['limit', { clientOrderId: 'a b' }, 'clientOrderId'],
    ['limit', { clientOrderId: null }, 'clientOrderId'],
    ['market', { clientOrderId: 5 }, 'clientOrderId'],
    ['limit', { symbol: 'X'.repeat(33) }, 'symbol'],
    ['limit', { symbol: 'btc' }, 'symbol'],
    ['limit', { symbol: 'BTC\u0130' }, 'symbol'],
    ['limit', { price: 0.5 }, 'price'],
    ['limit', { price: -1 }, 'price'],
    ['limit', { qty: NaN }, 'qty'],
    ['limit', { qty: MAX + 1 }, 'qty'],
    ['limit', { ts: 2 ** 64 }, 'ts'],
    ['limit', { userId: 1n }, 'userId'],
    ['limit', { side: 'BUY' }, 'side'],
    ['limit', { tif: 'gtc' }, 'tif'],
    ['limit', { stp: 'length' }, 'stp'],
    ['accepted', { stp: 'toString' }, 'stp'],
    ['accepted', { orderType: 'market' }, 'price'],
    ['amended', { price: 0 }, 'price'],
    ['amend', { price: 0, qty: 0 }, 'qty'],
    ['rejected', { side: 'buy' }, 'price'],
    ['rejected', { commandType: 'cancel', side: 'buy', price: 1, qty: 1, tif: 'GTC', stp: 'NONE' }, 'side'],
    ['rejected', { commandType: 'market', side: 'buy', price: 1, qty: 1, tif: 'GTC', stp: 'NONE' }, 'price'],
    ['rejected', { side: 'buy', price: 1, qty: 0, tif: 'GTC', stp: 'NONE' }, 'qty'],
    ['cmdEnd', { events: -0.5 }, 'events'],
    ['trade', { makerRemaining: Infinity }, 'makerRemaining'],
  ];
  it.each(bad.map(([t, o, f]) => [`${t} ${Object.entries(o).map(([k, v]) => `${k}=${typeof v === 'bigint' ? `${v}n` : typeof v === 'number' ? String(v) : JSON.stringify(v)}`).join(',')}`, t, o, f] as const))(
    '%s -> INVALID_FIELD in both codecs, buffer untouched',
    (_title, type, over, field) => {
    const msg = sample(type, over);
    for (const c of CODECS) {
      const buf = new Uint8Array(600).fill(0xaa);
      const e = caught(() => c.encode(msg, buf, 7));
      expect(e).toBeInstanceOf(EncodeError);
      expect(e).toMatchObject({ code: 'INVALID_FIELD', field });
      expect(caught(() => c.encodedLength(msg))).toMatchObject({ code: 'INVALID_FIELD', field });
      expect(buf.every((x) => x === 0xaa)).toBe(true);
    }
  },
  );

  it('BUFFER_TOO_SMALL at every offset where the record does not fit, writing nothing; fits exactly at the last offset', () => {
    fc.assert(
      fc.property(messageArb, (msg) => {
        for (const c of CODECS) {
          const n = c.encodedLength(msg);
          const size = n + 5;
          for (let off = 0; off <= size + 1; off++) {
            const buf = new Uint8Array(size).fill(0xaa);
            if (off + n <= size) {
              expect(c.encode(msg, buf, off)).toBe(n);
              expect(buf.subarray(0, off).every((x) => x === 0xaa) && buf.subarray(off + n).every((x) => x === 0xaa)).toBe(true);
            } else {
              expect(caught(() => c.encode(msg, buf, off))).toMatchObject({ code: 'BUFFER_TOO_SMALL' });
              expect(buf.every((x) => x === 0xaa)).toBe(true);
            }
          }
        }
      }),
      { numRuns: 40, seed: SEED },
    );
  });
});

describe('decodeInto reuse: no field leaks from one record into the next', () => {
  it('the optional parts (client order id, accepted stp, rejected order) never leak, in any sequence of records', () => {
    const withOpt = [
      sample('limit', { clientOrderId: 'L1' }),
      sample('market', { clientOrderId: 'M1' }),
      sample('accepted', { clientOrderId: 'A1', stp: 'CANCEL_BOTH' }),
      sample('accepted', { stp: 'CANCEL_OLDEST' }),
      sample('rejected', { clientOrderId: 'R1', side: 'sell', price: 9, qty: 3, tif: 'FOK', stp: 'CANCEL_NEWEST' }),
      sample('rejected', { side: 'sell', price: 9, qty: 3, tif: 'FOK', stp: 'CANCEL_NEWEST' }),
      sample('rejected', { clientOrderId: 'R2' }),
    ];
    const without = ['limit', 'market', 'accepted', 'rejected', 'cancel', 'trade'].map((t) => sample(t as MessageType));
    const all = [...withOpt, ...without];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...all), { minLength: 2, maxLength: 12 }), (seq) => {
        const out = new DecodedMessage();
        for (const msg of seq) {
          const bin = binaryCodec.encodeToBuffer(msg);
          expect(binaryCodec.decodeInto(bin, 0, bin.length, out).toMessage()).toEqual(msg);
          expect(binaryCodec.decode(bin)).toEqual(msg);
          expect(jsonCodec.decode(jsonCodec.encodeToBuffer(msg))).toEqual(msg);
        }
      }),
      { numRuns: 200, seed: SEED },
    );
  });

  it('a failed decode in between does not make the next record carry fields of the failed one', () => {
    const out = new DecodedMessage();
    const good = sample('accepted');
    const badRec = binaryCodec.encodeToBuffer(sample('accepted', { clientOrderId: 'X1', stp: 'CANCEL_BOTH' }));
    badRec[2] = 7; // orderType: unknown code, found after the trailer was read
    expect(caught(() => binaryCodec.decodeInto(badRec, 0, badRec.length, out))).toBeInstanceOf(DecodeError);
    const g = binaryCodec.encodeToBuffer(good);
    expect(binaryCodec.decodeInto(g, 0, g.length, out).toMessage()).toEqual(good);
    const jbad = Buffer.from('{"v":1,"type":"rejected","symbol":"A","seq":1,"eventSeq":2,"ts":3,"commandType":"limit","orderId":4,"userId":5,"reason":"INVALID_PRICE","clientOrderId":"Z9","side":"buy","price":1,"qty":1,"tif":"GTC","stp":"NONE","x":1}');
    expect(caught(() => jsonCodec.decode(jbad))).toMatchObject({ code: 'INVALID_FIELD', field: 'x' });
    const r = sample('rejected');
    expect(jsonCodec.decode(jsonCodec.encodeToBuffer(r))).toEqual(r);
  });
});

describe('cross-codec agreement (seeded fuzz)', () => {
  it('a message decoded by either codec re-encodes identically through the other, for every type', () => {
    for (const type of MESSAGE_TYPES) {
      fc.assert(
        fc.property(ARBS[type], (msg) => {
          const bin = binaryCodec.encodeToBuffer(msg);
          const json = jsonCodec.encodeToBuffer(msg);
          expect(jsonCodec.encodeToBuffer(binaryCodec.decode(bin))).toEqual(json);
          expect(binaryCodec.encodeToBuffer(jsonCodec.decode(json))).toEqual(bin);
          expect(JSON.parse(json.toString())).toEqual({ v: 1, ...msg });
        }),
        { numRuns: 60, seed: SEED },
      );
    }
  });
});

describe('hostile binary input (seeded fuzz)', () => {
  const TAGS = Object.values(BINARY_TYPE_TAGS);

  it('multi-byte corruption of valid records: a DecodeError, or a valid message whose record is exactly those bytes; Buffer and Uint8Array agree', () => {
    fc.assert(
      fc.property(messageArb, fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 4 }), fc.nat(200), (msg, edits, cutSeed) => {
        const rec = Uint8Array.from(binaryCodec.encodeToBuffer(msg));
        for (const [i, v] of edits) rec[i % rec.length] = v;
        const length = cutSeed % 3 === 0 ? Math.min(rec.length, cutSeed % (rec.length + 1)) : rec.length;
        const outcome = (bytes: Uint8Array, off: number): unknown => {
          try {
            return binaryCodec.decodeInto(bytes, off, length, new DecodedMessage()).toMessage();
          } catch (e) {
            if (!(e instanceof DecodeError)) throw e;
            return { code: e.code, field: e.field === undefined || e.field.startsWith('@') ? undefined : e.field };
          }
        };
        const a = outcome(rec, 0);
        const padded = new Uint8Array(length + 37).fill(0xff);
        padded.set(rec.subarray(0, length), 11);
        const b = outcome(Buffer.from(padded), 11);
        expect(b).toEqual(a);
        if ((a as { type?: string }).type !== undefined) {
          const m = a as Message;
          expect(expectedInvalidField(m as unknown as Record<string, unknown>)).toBeUndefined();
          expect(Buffer.from(binaryCodec.encodeToBuffer(m))).toEqual(Buffer.from(rec.subarray(0, length)));
        }
      }),
      { numRuns: 1500, seed: SEED },
    );
  });

  it('every length byte value (symbol and client order id) behind every tag: typed errors only', () => {
    for (const tag of TAGS) {
      for (let symLen = 0; symLen < 256; symLen += 1) {
        for (const extra of [0, 1, 2, 20, 70, 200]) {
          const body = new Uint8Array(2 + 100 + extra).fill(0x41);
          body[0] = 1;
          body[1] = tag;
          const type = MESSAGE_TYPES.find((t) => BINARY_TYPE_TAGS[t] === tag) as MessageType;
          const fixed = binaryCodec.encodedLength(sample(type, { symbol: 'A' })) - 1;
          // enums 0, integers small
          for (let i = 2; i < fixed - 1; i++) body[i] = 0;
          body[fixed - 1] = symLen;
          const e = caught(() => binaryCodec.decode(body.subarray(0, Math.min(body.length, fixed + extra))));
          if (e !== undefined) expect(e).toBeInstanceOf(DecodeError);
        }
      }
    }
  });
});

describe('hostile JSON input', () => {
  const ok = (text: string): unknown => {
    try {
      return jsonCodec.decode(Buffer.from(text));
    } catch (e) {
      expect(e).toBeInstanceOf(DecodeError);
      return e;
    }
  };
  const base = '{"v":1,"type":"cancel","symbol":"BTCUSDT","seq":0,"reqId":0,"orderId":1,"userId":0,"ts":0}';

  it('deep nesting, huge numbers and exponents, long strings, odd keys: DecodeError only', () => {
    const texts = [
      '['.repeat(100000) + ']'.repeat(100000),
      '{"a":'.repeat(5000) + '1' + '}'.repeat(5000),
      base.replace('"ts":0', `"ts":${'9'.repeat(400)}`),
      base.replace('"ts":0', '"ts":1e999999999'),
      base.replace('"ts":0', '"ts":0e999999999'),
      base.replace('"ts":0', '"ts":1.5e-999999999'),
      base.replace('"ts":0', `"ts":0.${'0'.repeat(400)}1e401`),
      base.replace('"ts":0', `"ts":1.${'0'.repeat(500)}1`),
      base.replace('"symbol":"BTCUSDT"', `"symbol":"${'A'.repeat(100000)}"`),
      base.replace('{', '{"__proto__":{"v":2},'),
      base.replace('{', '{"constructor":1,'),
      base.replace('"type":"cancel"', '"type":"__proto__"'),
      base.replace('"type":"cancel"', '"type":"toString"'),
      base.replace('"v":1', '"v":1.0000000000000001'),
      base.replace('"symbol":"BTCUSDT"', '"symbol":"BTC\\u0055SDT"'),
      base + ' '.repeat(100000),
      '\u00ef\u00bb\u00bf' + base,
    ];
    const results = texts.map(ok);
    // A few that must decode, with the value the text denotes.
    expect(results[4]).toMatchObject({ ts: 0 });
    expect(results[6]).toMatchObject({ ts: 1 });
    expect(results[14]).toMatchObject({ symbol: 'BTCUSDT' });
    expect(results[15]).toMatchObject({ type: 'cancel' });
    // A few that must not.
    for (const i of [2, 3, 5, 7, 8, 9, 10, 11, 12]) expect(results[i]).toBeInstanceOf(DecodeError);
  });

  it('random token soup around a valid record: a DecodeError or a valid message (seeded)', () => {
    const tokens = ['{', '}', '[', ']', ',', ':', '"v"', '1', '1.0', '1e2', '-0', '"type"', '"cancel"', '"symbol"', '"A"', '"seq"', '"ts"', ' ', '\\', '"', 'null', 'true', '"orderId"', '9007199254740993', '0.5'];
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...tokens), { maxLength: 40 }), fc.nat(base.length), (soup, at) => {
        const text = base.slice(0, at) + soup.join('') + base.slice(at);
        const r = ok(text);
        if (!(r instanceof DecodeError)) {
          expect(expectedInvalidField(r as Record<string, unknown>)).toBeUndefined();
          expect(jsonCodec.decode(jsonCodec.encodeToBuffer(r as Message))).toEqual(r);
        }
      }),
      { numRuns: 1500, seed: SEED },
    );
  });
});

describe('JSON decode reports the first defect in canonical order, a rounded number included', () => {
  // 1.00000000000000001 is not an integer (JSON.parse reads it as 1): INVALID_FIELD seq, whatever comes after seq.
  const rounded = '{"v":1,"type":"cancel","symbol":"BTCUSDT","seq":1.00000000000000001,"reqId":0,"orderId":1,"userId":0,"ts":0}';

  it('alone: INVALID_FIELD seq', () => {
    expect(caught(() => jsonCodec.decode(Buffer.from(rounded)))).toMatchObject({ code: 'INVALID_FIELD', field: 'seq' });
  });

  it('with a later field of the wrong type: still seq (the first invalid field in canonical order)', () => {
    const text = rounded.replace('"ts":0', '"ts":"x"');
    expect(caught(() => jsonCodec.decode(Buffer.from(text)))).toMatchObject({ code: 'INVALID_FIELD', field: 'seq' });
  });

  it('with a later field missing: still INVALID_FIELD seq, not MISSING_FIELD ts', () => {
    const text = rounded.replace(',"ts":0', '');
    expect(caught(() => jsonCodec.decode(Buffer.from(text)))).toMatchObject({ code: 'INVALID_FIELD', field: 'seq' });
  });

  it('with an unknown key: still seq (unknown keys are checked last)', () => {
    const text = rounded.replace('"ts":0', '"ts":0,"x":1');
    expect(caught(() => jsonCodec.decode(Buffer.from(text)))).toMatchObject({ code: 'INVALID_FIELD', field: 'seq' });
  });
  it('a fraction nested in an unknown member that names a field inside: the unknown member, not that field', () => {
    const text = '{"v":1,"type":"cancel","symbol":"BTCUSDT","seq":1,"reqId":0,"orderId":1,"userId":0,"ts":0,"extra":{"seq":0.5}}';
    expect(caught(() => jsonCodec.decode(Buffer.from(text)))).toMatchObject({ code: 'INVALID_FIELD', field: 'extra' });
  });

  it('a version written 1.00000000000000001 (read as 1): INVALID_FIELD v; 1.5: UNKNOWN_VERSION', () => {
    expect(caught(() => jsonCodec.decode(Buffer.from(rounded.replace('"v":1', '"v":1.00000000000000001').replace('1.00000000000000001,"reqId"', '1,"reqId"'))))).toMatchObject({ code: 'INVALID_FIELD', field: 'v' });
    expect(caught(() => jsonCodec.decode(Buffer.from(rounded.replace('"v":1', '"v":1.5'))))).toMatchObject({ code: 'UNKNOWN_VERSION', field: 'v' });
  });
});
