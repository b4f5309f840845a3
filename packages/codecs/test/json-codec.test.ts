// The JSON form: its canonical encoding, what decoding accepts, and a table of bad inputs each
// with the error code and field it must give.
import { describe, expect, it } from 'vitest';
import { DecodeError, jsonCodec, JSON_MAX_LENGTH, type Message } from '../src/index.js';
import { thrown } from './support.js';

const limit: Message = { type: 'limit', symbol: 'BTCUSDT', seq: 7, reqId: 0, orderId: 42, userId: 0, ts: 1_700_000_000_123_456, side: 'buy', price: 100_050, qty: 3, tif: 'GTC', stp: 'NONE' };
const LIMIT_JSON =
  '{"v":1,"type":"limit","symbol":"BTCUSDT","seq":7,"reqId":0,"orderId":42,"userId":0,"ts":1700000000123456,"side":"buy","price":100050,"qty":3,"tif":"GTC","stp":"NONE"}';

const bytes = (s: string): Uint8Array => Buffer.from(s, 'utf8');
/** The limit record with `patch` applied: a property set to a JSON text, or removed (undefined). */
function limitWith(patch: Record<string, string | undefined>): string {
  const parts = Object.entries(JSON.parse(LIMIT_JSON) as Record<string, unknown>)
    .filter(([k]) => !(k in patch) || patch[k] !== undefined)
    .map(([k, v]) => `${JSON.stringify(k)}:${k in patch ? (patch[k] as string) : JSON.stringify(v)}`);
  for (const [k, v] of Object.entries(patch)) if (v !== undefined && !(k in (JSON.parse(LIMIT_JSON) as object))) parts.push(`${JSON.stringify(k)}:${v}`);
  return `{${parts.join(',')}}`;
}

describe('json codec: the encoded form', () => {
  it('is a canonical UTF-8 JSON object: v, type, then the fields in the order of types.ts', () => {
    expect(jsonCodec.encodeToBuffer(limit).toString('utf8')).toBe(LIMIT_JSON);
    expect(jsonCodec.encodedLength(limit)).toBe(LIMIT_JSON.length);
  });

  it('writes large and edge integers exactly, as JSON.stringify does', () => {
    for (const n of [0, 1, 9, 10, 99, 100, 2 ** 31, 2 ** 32, 1e15, 1e15 + 1, Number.MAX_SAFE_INTEGER]) {
      const m: Message = { type: 'cmdEnd', symbol: 'A', seq: n, eventSeq: n, ts: n, events: n };
      expect(jsonCodec.encodeToBuffer(m).toString()).toBe(JSON.stringify({ v: 1, ...m }));
    }
  });

  it('has a maxLength that holds the longest record', () => {
    expect(JSON_MAX_LENGTH).toBeGreaterThan(300);
    expect(jsonCodec.maxLength).toBe(JSON_MAX_LENGTH);
  });
});

describe('json codec: what decoding accepts', () => {
  it('fields in any order, with whitespace', () => {
    const text = ` {\n "stp": "NONE", "tif":"GTC", "qty": 3, "price":100050, "side":"buy", "ts":1700000000123456, "userId":0,\t"orderId":42,
      "reqId":0, "seq":7, "symbol":"BTCUSDT", "type":"limit", "v":1 } \n`;
    expect(jsonCodec.decode(bytes(text))).toEqual(limit);
  });

  it('a market accepted event at price 0 and a self-trade decrement at price 0', () => {
    const accepted = { type: 'accepted', symbol: 'X', seq: 1, eventSeq: 1, ts: 1, orderType: 'market', orderId: 1, userId: 0, side: 'sell', price: 0, qty: 1, tif: 'IOC' };
    expect(jsonCodec.decode(bytes(JSON.stringify({ v: 1, ...accepted })))).toEqual(accepted);
    const amended = { type: 'amended', symbol: 'X', seq: 1, eventSeq: 2, ts: 1, orderId: 1, userId: 0, side: 'sell', price: 0, qty: 1, kind: 'SELF_TRADE_DECREMENT' };
    expect(jsonCodec.decode(bytes(JSON.stringify({ v: 1, ...amended })))).toEqual(amended);
  });

  it('-0 as 0, and number texts whose value is a safe integer (1.0, 1e2)', () => {
    const m = jsonCodec.decode(bytes(limitWith({ seq: '-0', qty: '1.0', price: '1e2' })));
    expect(Object.is((m as { seq: number }).seq, 0)).toBe(true);
    expect(m).toMatchObject({ qty: 1, price: 100 });
  });

  it('a duplicated key, whose last value wins (JSON.parse semantics; see the README)', () => {
    expect(jsonCodec.decode(bytes(LIMIT_JSON.replace('"qty":3', '"qty":3,"qty":4')))).toMatchObject({ qty: 4 });
  });

  it('a subarray of a larger buffer', () => {
    const buf = Buffer.from(`xx${LIMIT_JSON}yy`);
    expect(jsonCodec.decode(buf.subarray(2, buf.length - 2))).toEqual(limit);
  });
});

describe('json codec: bad inputs', () => {
  const cases: [string, string | Uint8Array, string, string | undefined][] = [
    ['empty input', '', 'MALFORMED', undefined],
    ['whitespace only', '  \n', 'MALFORMED', undefined],
    ['an unterminated object', LIMIT_JSON.slice(0, -1), 'MALFORMED', undefined],
    ['a trailing comma', LIMIT_JSON.replace('}', ',}'), 'MALFORMED', undefined],
    ['garbage after the object', `${LIMIT_JSON}x`, 'MALFORMED', undefined],
    ['two objects', `${LIMIT_JSON}${LIMIT_JSON}`, 'MALFORMED', undefined],
    ['single quotes', "{'v':1}", 'MALFORMED', undefined],
    ['invalid UTF-8', Uint8Array.of(0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d), 'MALFORMED', undefined],
    ['an overlong UTF-8 encoding', Uint8Array.of(0x7b, 0x22, 0xc0, 0xaf, 0x22, 0x3a, 0x31, 0x7d), 'MALFORMED', undefined],
    ['null', 'null', 'MALFORMED', undefined],
    ['an array', `[${LIMIT_JSON}]`, 'MALFORMED', undefined],
    ['a string', '"limit"', 'MALFORMED', undefined],
    ['a number', '1', 'MALFORMED', undefined],
    ['an empty object', '{}', 'MISSING_FIELD', 'v'],
    ['no version', limitWith({ v: undefined }), 'MISSING_FIELD', 'v'],
    ['a string version', limitWith({ v: '"1"' }), 'INVALID_FIELD', 'v'],
    ['a null version', limitWith({ v: 'null' }), 'INVALID_FIELD', 'v'],
    ['version 2', limitWith({ v: '2' }), 'UNKNOWN_VERSION', 'v'],
    ['version 0', limitWith({ v: '0' }), 'UNKNOWN_VERSION', 'v'],
    ['version 1.5', limitWith({ v: '1.5' }), 'UNKNOWN_VERSION', 'v'],
    ['no type', limitWith({ type: undefined }), 'MISSING_FIELD', 'type'],
    ['a numeric type', limitWith({ type: '1' }), 'INVALID_FIELD', 'type'],
    ['an unknown type', limitWith({ type: '"order"' }), 'UNKNOWN_TYPE', 'type'],
    ['a type in the wrong case', limitWith({ type: '"LIMIT"' }), 'UNKNOWN_TYPE', 'type'],
    ['a prototype property as type', limitWith({ type: '"toString"' }), 'UNKNOWN_TYPE', 'type'],
    ['__proto__ as type', limitWith({ type: '"__proto__"' }), 'UNKNOWN_TYPE', 'type'],
    ['a missing symbol', limitWith({ symbol: undefined }), 'MISSING_FIELD', 'symbol'],
    ['a missing price', limitWith({ price: undefined }), 'MISSING_FIELD', 'price'],
    ['a missing stp (the last field)', limitWith({ stp: undefined }), 'MISSING_FIELD', 'stp'],
    ['a lower-case symbol', limitWith({ symbol: '"btcusdt"' }), 'INVALID_FIELD', 'symbol'],
    ['an empty symbol', limitWith({ symbol: '""' }), 'INVALID_FIELD', 'symbol'],
    ['a 33-character symbol', limitWith({ symbol: `"${'A'.repeat(33)}"` }), 'INVALID_FIELD', 'symbol'],
    ['a symbol with a space', limitWith({ symbol: '"BTC USDT"' }), 'INVALID_FIELD', 'symbol'],
    ['a symbol with a slash', limitWith({ symbol: '"BTC/USDT"' }), 'INVALID_FIELD', 'symbol'],
    ['a symbol with an escaped NUL', limitWith({ symbol: '"BTC\\u0000"' }), 'INVALID_FIELD', 'symbol'],
    ['a numeric symbol', limitWith({ symbol: '123' }), 'INVALID_FIELD', 'symbol'],
    ['a price as a string', limitWith({ price: '"100050"' }), 'INVALID_FIELD', 'price'],
    ['a price of 0', limitWith({ price: '0' }), 'INVALID_FIELD', 'price'],
    ['a negative price', limitWith({ price: '-5' }), 'INVALID_FIELD', 'price'],
    ['a fractional price', limitWith({ price: '100.5' }), 'INVALID_FIELD', 'price'],
    ['a price of 2^53', limitWith({ price: '9007199254740992' }), 'INVALID_FIELD', 'price'],
    ['a price of 2^53 + 1 (rounds to 2^53)', limitWith({ price: '9007199254740993' }), 'INVALID_FIELD', 'price'],
    ['a price that overflows to Infinity', limitWith({ price: '1e400' }), 'INVALID_FIELD', 'price'],
    ['a null price', limitWith({ price: 'null' }), 'INVALID_FIELD', 'price'],
    ['a boolean qty', limitWith({ qty: 'true' }), 'INVALID_FIELD', 'qty'],
    ['a qty of 0', limitWith({ qty: '0' }), 'INVALID_FIELD', 'qty'],
    ['an orderId of 0', limitWith({ orderId: '0' }), 'INVALID_FIELD', 'orderId'],
    ['a negative userId', limitWith({ userId: '-1' }), 'INVALID_FIELD', 'userId'],
    ['a negative seq', limitWith({ seq: '-1' }), 'INVALID_FIELD', 'seq'],
    ['a fractional reqId', limitWith({ reqId: '0.5' }), 'INVALID_FIELD', 'reqId'],
    ['a ts as an ISO date', limitWith({ ts: '"2024-01-01T00:00:00Z"' }), 'INVALID_FIELD', 'ts'],
    ['an object ts', limitWith({ ts: '{"us":1}' }), 'INVALID_FIELD', 'ts'],
    ['an upper-case side', limitWith({ side: '"BUY"' }), 'INVALID_FIELD', 'side'],
    ['a numeric side', limitWith({ side: '0' }), 'INVALID_FIELD', 'side'],
    ['an unknown tif', limitWith({ tif: '"GTD"' }), 'INVALID_FIELD', 'tif'],
    ['an unknown stp', limitWith({ stp: '"CANCEL"' }), 'INVALID_FIELD', 'stp'],
    ['an unknown field', limitWith({ foo: '1' }), 'INVALID_FIELD', 'foo'],
    ['a field of another type', limitWith({ eventSeq: '1' }), 'INVALID_FIELD', 'eventSeq'],
    ['a __proto__ field', LIMIT_JSON.replace(/}$/, ',"__proto__":{}}'), 'INVALID_FIELD', '__proto__'],
    ['an invalid value before a missing field (fields in canonical order)', limitWith({ seq: '-1', price: undefined }), 'INVALID_FIELD', 'seq'],
    ['a missing field before an unknown one', limitWith({ qty: undefined, foo: '1' }), 'MISSING_FIELD', 'qty'],
    [
      'a market accepted event with a price',
      '{"v":1,"type":"accepted","symbol":"X","seq":1,"eventSeq":1,"ts":1,"orderType":"market","orderId":1,"userId":0,"side":"buy","price":5,"qty":1,"tif":"IOC"}',
      'INVALID_FIELD',
      'price',
    ],
    [
      'a limit accepted event at price 0',
      '{"v":1,"type":"accepted","symbol":"X","seq":1,"eventSeq":1,"ts":1,"orderType":"limit","orderId":1,"userId":0,"side":"buy","price":0,"qty":1,"tif":"GTC"}',
      'INVALID_FIELD',
      'price',
    ],
    [
      'an amended event at price 0 that is a REDUCE',
      '{"v":1,"type":"amended","symbol":"X","seq":1,"eventSeq":1,"ts":1,"orderId":1,"userId":0,"side":"buy","price":0,"qty":1,"kind":"REDUCE"}',
      'INVALID_FIELD',
      'price',
    ],
    ['a trade with makerRemaining -1', '{"v":1,"type":"trade","symbol":"X","seq":1,"eventSeq":1,"ts":1,"makerOrderId":1,"takerOrderId":2,"makerUserId":0,"takerUserId":0,"takerSide":"buy","price":1,"qty":1,"makerRemaining":-1}', 'INVALID_FIELD', 'makerRemaining'],
    ['a rejected event with an unknown reason', '{"v":1,"type":"rejected","symbol":"X","seq":1,"eventSeq":1,"ts":1,"commandType":"cancel","orderId":0,"userId":0,"reason":"NOPE"}', 'INVALID_FIELD', 'reason'],
    ['a canceled event with a reject reason', '{"v":1,"type":"canceled","symbol":"X","seq":1,"eventSeq":1,"ts":1,"orderId":1,"userId":0,"reason":"UNKNOWN_ORDER","qty":1}', 'INVALID_FIELD', 'reason'],
    ['a cmdEnd without events', '{"v":1,"type":"cmdEnd","symbol":"X","seq":1,"eventSeq":1,"ts":1}', 'MISSING_FIELD', 'events'],
  ];

  it.each(cases)('%s: %s gives %s (field %s)', (_what, input, code, field) => {
    const e = thrown(() => jsonCodec.decode(typeof input === 'string' ? bytes(input) : input));
    expect(e).toBeInstanceOf(DecodeError);
    expect(e).toMatchObject({ name: 'DecodeError', code, field });
  });

  it('keeps the parser error as the cause of MALFORMED', () => {
    const e = thrown(() => jsonCodec.decode(bytes('{"v":')));
    expect((e as DecodeError).cause).toBeInstanceOf(SyntaxError);
  });

  it('passes valid records in the table style (the table is not vacuous)', () => {
    expect(jsonCodec.decode(bytes(limitWith({})))).toEqual(limit);
    expect(jsonCodec.decode(bytes(limitWith({ userId: '0', reqId: '0', seq: '0', ts: '0' })))).toMatchObject({ userId: 0, ts: 0 });
  });
});
