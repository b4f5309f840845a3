// The hand-written JSON of a command's answer (answer-json.ts): for every event type of @gx3/codecs
// (every enum value of each), for order views with and without their optional members, and for
// user names, symbols and client order ids that need escaping (quotes, backslashes, newlines,
// control characters, non-ASCII, emoji, lone surrogates) as well as plain ones, the text is valid
// JSON and parses to exactly what JSON.stringify of the same object parses to. Also: an answer
// without an order has no `order` member, `duplicate` appears only when true, large safe integers
// and zeros are written exactly, and the one-entry caches of quoted symbols and user names never
// serve a previous string's text for a different one.
import {
  AMEND_KINDS,
  CANCEL_REASONS,
  COMMAND_TYPES,
  ORDER_TYPES,
  REJECT_REASONS,
  SIDES,
  TIMES_IN_FORCE,
  type AcceptedEvent,
  type AddedEvent,
  type AmendedEvent,
  type CanceledEvent,
  type CmdEndEvent,
  type Event,
  type RejectedEvent,
  type TradeEvent,
} from '@gx3/codecs';
import { describe, expect, it } from 'vitest';
import { eventJson, forTaker, orderResultJson, orderResultMembers, orderViewJson } from '../src/answer-json.js';
import type { OrderResult, OrderView } from '../src/gateway.js';

const MAX = 2 ** 53 - 1;
const TS = 1_732_450_000_000_000;
const SYM = 'BTC-USD';

/** `text` parsed (it must be valid JSON) as an object. */
function parse(text: string): Record<string, unknown> {
  const v = JSON.parse(text) as unknown;
  expect(typeof v === 'object' && v !== null && !Array.isArray(v), `an object: ${text}`).toBe(true);
  return v as Record<string, unknown>;
}

/** What JSON.stringify makes of `v`, parsed back. */
function viaStringify(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v)) as unknown;
}

/** Asserts that `text` is valid JSON equal (after parsing) to JSON.stringify of `v`; returns the parsed text. */
function expectSame(text: string, v: unknown): Record<string, unknown> {
  const parsed = parse(text);
  expect(parsed).toStrictEqual(viaStringify(v));
  return parsed;
}

// ---------------------------------------------------------------------------------------------
// Events

function accepted(o: Partial<AcceptedEvent> = {}): AcceptedEvent {
  return { symbol: SYM, seq: 1, eventSeq: 1, ts: TS, type: 'accepted', orderType: 'limit', orderId: 1, userId: 1, side: 'buy', price: 100, qty: 1, tif: 'GTC', ...o };
}

function rejected(o: Partial<RejectedEvent> = {}): RejectedEvent {
  return { symbol: SYM, seq: 1, eventSeq: 1, ts: TS, type: 'rejected', commandType: 'limit', orderId: 1, userId: 1, reason: 'INVALID_PRICE', ...o };
}

function added(o: Partial<AddedEvent> = {}): AddedEvent {
  return { symbol: SYM, seq: 1, eventSeq: 2, ts: TS, type: 'added', orderId: 1, userId: 1, side: 'buy', price: 100, qty: 1, ...o };
}

function tradeEvent(o: Partial<TradeEvent> = {}): TradeEvent {
  return {
    symbol: SYM,
    seq: 2,
    eventSeq: 3,
    ts: TS,
    type: 'trade',
    makerOrderId: 1,
    takerOrderId: 2,
    makerUserId: 1,
    takerUserId: 2,
    takerSide: 'sell',
    price: 100,
    qty: 1,
    makerRemaining: 0,
    ...o,
  };
}

function canceled(o: Partial<CanceledEvent> = {}): CanceledEvent {
  return { symbol: SYM, seq: 3, eventSeq: 4, ts: TS, type: 'canceled', orderId: 1, userId: 1, reason: 'USER', qty: 1, ...o };
}

function amended(o: Partial<AmendedEvent> = {}): AmendedEvent {
  return { symbol: SYM, seq: 4, eventSeq: 5, ts: TS, type: 'amended', orderId: 1, userId: 1, side: 'buy', price: 100, qty: 1, kind: 'REDUCE', ...o };
}

/** Every event type with every value of each of its enum fields, with varied numbers. */
function allEvents(): Event[] {
  const out: Event[] = [];
  let n = 0;
  for (const orderType of ORDER_TYPES) {
    for (const side of SIDES) {
      for (const tif of TIMES_IN_FORCE) {
        n++;
        // Every other one with a client order id.
        const cid = n % 2 === 0 ? { clientOrderId: `c:${n}.x_y-Z` } : {};
        out.push(accepted({ orderType, side, tif, seq: n, eventSeq: n, orderId: MAX - n, userId: n, price: orderType === 'market' ? 0 : 1000 + n, qty: n, ...cid }));
      }
    }
  }
  for (const commandType of COMMAND_TYPES) {
    for (const reason of REJECT_REASONS) {
      n++;
      const isOrder = commandType === 'limit' || commandType === 'market';
      const cid = n % 2 === 0 && isOrder ? { clientOrderId: `r-${n}` } : {};
      // Every third order's rejection with what the order asked for.
      const order = n % 3 === 0 && isOrder ? { side: 'sell' as const, price: commandType === 'market' ? 0 : MAX - n, qty: n, tif: 'FOK' as const, stp: 'CANCEL_BOTH' as const } : {};
      out.push(rejected({ commandType, reason, seq: n, eventSeq: n, orderId: n, userId: MAX, ...cid, ...order }));
    }
  }
  for (const side of SIDES) {
    n++;
    out.push(added({ side, seq: n, eventSeq: n, orderId: n, price: MAX, qty: MAX }));
  }
  for (const takerSide of SIDES) {
    n++;
    out.push(tradeEvent({ takerSide, seq: n, eventSeq: n, makerOrderId: MAX, takerOrderId: MAX - 1, makerUserId: 7, takerUserId: MAX, price: 12_345, qty: 3, makerRemaining: n }));
  }
  for (const reason of CANCEL_REASONS) {
    n++;
    out.push(canceled({ reason, seq: n, eventSeq: n, orderId: n, qty: 0 }));
  }
  for (const kind of AMEND_KINDS) {
    for (const side of SIDES) {
      n++;
      out.push(amended({ kind, side, seq: n, eventSeq: n, orderId: n, price: kind === 'REDUCE' ? 0 : 99, qty: n }));
    }
  }
  return out;
}

describe('eventJson', () => {
  it('writes every event type, with every value of its enum fields, as JSON.stringify does', () => {
    const events = allEvents();
    const types = new Set(events.map((e) => e.type));
    expect([...types].sort()).toEqual(['accepted', 'added', 'amended', 'canceled', 'rejected', 'trade']);
    for (const e of events) {
      const text = eventJson(e);
      const parsed = expectSame(text, e);
      expect(parsed.type).toBe(e.type);
      expect(parsed.eventSeq).toBe(e.eventSeq);
      expect(Object.keys(parsed).sort()).toEqual(Object.keys(e).sort());
    }
  });

  it('writes the fields of an accepted event with their exact values (large safe integers, zero price)', () => {
    const e = accepted({ symbol: 'ETH-USD', seq: MAX, eventSeq: MAX - 1, ts: TS, orderType: 'market', orderId: MAX, userId: 0, side: 'sell', price: 0, qty: MAX, tif: 'IOC' });
    const p = expectSame(eventJson(e), e);
    expect(p).toStrictEqual({
      symbol: 'ETH-USD',
      seq: 9_007_199_254_740_991,
      eventSeq: 9_007_199_254_740_990,
      ts: 1_732_450_000_000_000,
      type: 'accepted',
      orderType: 'market',
      orderId: 9_007_199_254_740_991,
      userId: 0,
      side: 'sell',
      price: 0,
      qty: 9_007_199_254_740_991,
      tif: 'IOC',
    });
    expect(eventJson(e)).toContain('"orderId":9007199254740991');
    expect(eventJson(e)).toContain('"ts":1732450000000000');
  });

  it('writes the fields of each other event type with their exact values', () => {
    expect(parse(eventJson(rejected({ commandType: 'amend', orderId: 42, userId: 7, reason: 'AMEND_NO_CHANGE', seq: 0, eventSeq: 0, ts: 0 })))).toStrictEqual({
      symbol: SYM,
      seq: 0,
      eventSeq: 0,
      ts: 0,
      type: 'rejected',
      commandType: 'amend',
      orderId: 42,
      userId: 7,
      reason: 'AMEND_NO_CHANGE',
    });
    expect(parse(eventJson(added({ orderId: 5, userId: 6, side: 'sell', price: 101, qty: 9 })))).toMatchObject({ type: 'added', orderId: 5, userId: 6, side: 'sell', price: 101, qty: 9 });
    expect(parse(eventJson(tradeEvent({ makerOrderId: 11, takerOrderId: 12, makerUserId: 13, takerUserId: 14, takerSide: 'buy', price: 15, qty: 16, makerRemaining: 17 })))).toMatchObject({
      type: 'trade',
      makerOrderId: 11,
      takerOrderId: 12,
      makerUserId: 13,
      takerUserId: 14,
      takerSide: 'buy',
      price: 15,
      qty: 16,
      makerRemaining: 17,
    });
    expect(parse(eventJson(canceled({ orderId: 21, userId: 22, reason: 'SELF_TRADE', qty: 23 })))).toMatchObject({ type: 'canceled', orderId: 21, userId: 22, reason: 'SELF_TRADE', qty: 23 });
    expect(parse(eventJson(amended({ orderId: 31, userId: 32, side: 'sell', price: 33, qty: 34, kind: 'SELF_TRADE_DECREMENT' })))).toMatchObject({
      type: 'amended',
      orderId: 31,
      userId: 32,
      side: 'sell',
      price: 33,
      qty: 34,
      kind: 'SELF_TRADE_DECREMENT',
    });
  });

  it('writes a CmdEnd marker (the generic fallback) as JSON.stringify does', () => {
    const e: CmdEndEvent = { symbol: SYM, seq: 9, eventSeq: 12, ts: TS, type: 'cmdEnd', events: 3 };
    expect(expectSame(eventJson(e), e)).toMatchObject({ type: 'cmdEnd', events: 3 });
  });

  it('quotes symbols whatever they hold, and alternating symbols get their own text each time', () => {
    const symbols = ['BTC-USD', 'ETH_USD.P', 'A/B', 'Q"T', 'B\\S', 'BTC-USD', 'N\nL', 'ZOË', 'BTC-USD', 'A/B', '🚀'];
    for (const [i, symbol] of symbols.entries()) {
      const e = i % 2 === 0 ? tradeEvent({ symbol }) : accepted({ symbol });
      const p = expectSame(eventJson(e), e);
      expect(p.symbol, `symbol #${i}`).toBe(symbol);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Order views

function view(o: Partial<OrderView> = {}): OrderView {
  return {
    orderId: 1,
    symbol: SYM,
    user: 'alice',
    side: 'buy',
    type: 'limit',
    tif: 'GTC',
    price: 100,
    qty: 10,
    filledQty: 0,
    remainingQty: 10,
    status: 'open',
    updatedAt: TS,
    ...o,
  };
}

/** Strings that need escaping in JSON, or that are outside the plain set answer-json quotes as is. */
const NEED_ESCAPING: readonly string[] = [
  'say "hi"',
  'back\\slash',
  'trailing\\',
  'line\nbreak',
  'carriage\rreturn',
  'tab\there',
  'Zoë',
  'Ünïcødé façade',
  '日本語',
  'emoji 🚀🎉',
  'nul\u0000byte',
  'bell\u0007',
  'escape\u001b[0m',
  'unit sep\u001f',
  'del\u007f',
  'line sep\u2028para sep\u2029',
  'lone high \ud800',
  'lone low \udfff',
  '</script><script>',
  "it's",
  'slash/and?query=1&x',
  '{"json":"inside"}',
  '"',
  '\\',
  String.fromCharCode(...Array.from({ length: 32 }, (_, i) => i)),
];

/** Strings the plain fast path quotes as they are. */
const PLAIN: readonly string[] = ['alice', 'Bob_2', 'carol.smith', 'd-e:f', 'with space', '0123456789', ''];

describe('orderViewJson', () => {
  it('writes a view without reason and clientOrderId: those members are absent', () => {
    const v = view({ orderId: MAX, price: 0, qty: MAX, filledQty: 0, remainingQty: MAX, updatedAt: TS });
    const p = expectSame(orderViewJson(v), v);
    expect(Object.keys(p)).not.toContain('reason');
    expect(Object.keys(p)).not.toContain('clientOrderId');
    expect(p).toStrictEqual({
      orderId: 9_007_199_254_740_991,
      symbol: SYM,
      user: 'alice',
      side: 'buy',
      type: 'limit',
      tif: 'GTC',
      price: 0,
      qty: 9_007_199_254_740_991,
      filledQty: 0,
      remainingQty: 9_007_199_254_740_991,
      status: 'open',
      updatedAt: 1_732_450_000_000_000,
    });
  });

  it('writes reason and clientOrderId when present', () => {
    const cases: OrderView[] = [
      view({ status: 'rejected', reason: 'POST_ONLY_WOULD_CROSS', tif: 'POST', filledQty: 0, remainingQty: 0 }),
      view({ status: 'canceled', reason: 'USER', clientOrderId: 'my-order-1' }),
      view({ status: 'canceled', reason: 'SELF_TRADE' }),
      view({ status: 'filled', clientOrderId: 'abc', filledQty: 10, remainingQty: 0 }),
      view({ status: 'partially_filled', clientOrderId: '', filledQty: 4, remainingQty: 6 }),
      view({ status: 'new', type: 'market', tif: 'IOC', price: 0, side: 'sell' }),
    ];
    for (const v of cases) {
      const p = expectSame(orderViewJson(v), v);
      expect(p.reason).toBe(v.reason);
      expect(p.clientOrderId).toBe(v.clientOrderId);
      expect('reason' in p).toBe(v.reason !== undefined);
      expect('clientOrderId' in p).toBe(v.clientOrderId !== undefined);
      expect(p.status).toBe(v.status);
    }
  });

  it('leaves out members that are present but undefined, as JSON.stringify does', () => {
    // (the type does not allow it with exactOptionalPropertyTypes, but an object spread can make it)
    const v = { ...view(), reason: undefined, clientOrderId: undefined } as unknown as OrderView;
    const p = expectSame(orderViewJson(v), v);
    expect(Object.keys(p)).toHaveLength(12);
  });

  it('escapes user names and client order ids that need it, and writes plain ones as they are', () => {
    for (const s of [...NEED_ESCAPING, ...PLAIN]) {
      const v = view({ user: s, clientOrderId: s });
      const text = orderViewJson(v);
      const p = expectSame(text, v);
      expect(p.user, JSON.stringify(s)).toBe(s);
      expect(p.clientOrderId, JSON.stringify(s)).toBe(s);
    }
    expect(orderViewJson(view({ user: 'plain user', clientOrderId: 'c-1' }))).toContain('"user":"plain user"');
    expect(orderViewJson(view({ user: 'Zoë', clientOrderId: 'q"uote' }))).toContain('"clientOrderId":"q\\"uote"');
  });

  it('a different user name or symbol right after another is never served from the cache', () => {
    // Alternations of each kind of string, including ones that share a prefix, differ only in case,
    // or are the empty string (the cache's initial key).
    const users = ['alice', 'bob', 'alice', 'Zoë', 'Zoë', 'zoë', 'alice', 'alice ', '', 'a"b', 'a\\"b', '', 'bob', '🚀', '🚀🚀', 'bob'];
    const symbols = ['BTC-USD', 'ETH-USD', 'BTC-USD', 'BTC-USD', 'X"Y', 'BTC-USD', 'btc-usd', 'ETH-USD'];
    for (let i = 0; i < 3 * users.length; i++) {
      const user = users[i % users.length] as string;
      const symbol = symbols[i % symbols.length] as string;
      const v = view({ user, symbol, orderId: i + 1 });
      const p = expectSame(orderViewJson(v), v);
      expect(p.user, `call ${i}`).toBe(user);
      expect(p.symbol, `call ${i}`).toBe(symbol);
      expect(p.orderId).toBe(i + 1);
    }
  });

  it('the symbol cache is shared by events and views without mixing them up', () => {
    const seq: [string, 'event' | 'view'][] = [
      ['AAA', 'event'],
      ['BBB', 'view'],
      ['AAA', 'event'],
      ['AAA', 'view'],
      ['C"C', 'event'],
      ['BBB', 'event'],
      ['C"C', 'view'],
    ];
    for (const [symbol, kind] of seq) {
      if (kind === 'event') {
        expect(parse(eventJson(added({ symbol }))).symbol).toBe(symbol);
      } else {
        expect(parse(orderViewJson(view({ symbol }))).symbol).toBe(symbol);
      }
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Whole answers

/** What an answer shows of `r`: its trades against another user's order without the maker's order, user and remaining quantity. */
function asAnswered(r: OrderResult): unknown {
  return { ...r, events: r.events.map((e) => (e.type === 'trade' ? forTaker(e) : e)) };
}

describe('orderResultJson and orderResultMembers', () => {
  const order = view({ orderId: 77, user: 'Zoë "the maker"', clientOrderId: 'cid\n1', status: 'partially_filled', filledQty: 3, remainingQty: 7 });
  const events: Event[] = [
    accepted({ orderId: 77, userId: 3 }),
    tradeEvent({ takerOrderId: 77, makerOrderId: 5, price: 100, qty: 3 }),
    added({ orderId: 77, userId: 3, qty: 7 }),
  ];

  it('writes an order and its events as JSON.stringify does', () => {
    const r: OrderResult = { order, events };
    const p = expectSame(orderResultJson(r), asAnswered(r));
    expect(Object.keys(p).sort()).toEqual(['events', 'order']);
    expect((p.order as Record<string, unknown>).user).toBe('Zoë "the maker"');
    expect((p.events as unknown[]).length).toBe(3);
    expect((p.events as Record<string, unknown>[]).map((e) => e.type)).toEqual(['accepted', 'trade', 'added']);
  });

  it('leaves the order member out when there is no order, and writes an empty event list', () => {
    const none: OrderResult = { order: undefined, events: [] };
    const p = expectSame(orderResultJson(none), asAnswered(none));
    expect(p).toStrictEqual({ events: [] });
    expect(orderResultJson(none)).not.toContain('order');

    const eventsOnly: OrderResult = { order: undefined, events: [canceled({ orderId: 9, reason: 'UNFILLED', qty: 2 })] };
    const q = expectSame(orderResultJson(eventsOnly), asAnswered(eventsOnly));
    expect('order' in q).toBe(false);
    expect(q.events).toStrictEqual([viaStringify(eventsOnly.events[0])]);
  });

  it('writes duplicate: true when set, and no duplicate member otherwise', () => {
    const dup: OrderResult = { order, events, duplicate: true };
    const p = expectSame(orderResultJson(dup), asAnswered(dup));
    expect(p.duplicate).toBe(true);

    const fresh: OrderResult = { order, events };
    expect('duplicate' in expectSame(orderResultJson(fresh), asAnswered(fresh))).toBe(false);

    const dupNoOrder: OrderResult = { order: undefined, events: [], duplicate: true };
    expect(expectSame(orderResultJson(dupNoOrder), asAnswered(dupNoOrder))).toStrictEqual({ events: [], duplicate: true });
  });

  it('every event type in one answer, with escaping names, as JSON.stringify does', () => {
    const all = allEvents();
    for (const [i, user] of [...NEED_ESCAPING, ...PLAIN].entries()) {
      const r: OrderResult = { order: view({ user, clientOrderId: user, orderId: i + 1 }), events: all, ...(i % 2 === 0 ? { duplicate: true } : {}) };
      const p = expectSame(orderResultJson(r), asAnswered(r));
      expect((p.order as Record<string, unknown>).user).toBe(user);
      expect((p.events as unknown[]).length).toBe(all.length);
      expect('duplicate' in p).toBe(i % 2 === 0);
    }
  });

  it('orderResultMembers is the body without its braces, so that the WebSocket answer can wrap it', () => {
    const r: OrderResult = { order, events, duplicate: true };
    const members = orderResultMembers(r);
    expect(members.startsWith('"order":')).toBe(true);
    expect(`{${members}}`).toBe(orderResultJson(r));
    const ws = parse(`{"id":12,"ok":true,${members}}`);
    expect(ws).toStrictEqual({ id: 12, ok: true, ...(viaStringify(asAnswered(r)) as Record<string, unknown>) });

    const bare = orderResultMembers({ order: undefined, events: [] });
    expect(bare).toBe('"events":[]');
  });

  it("a trade against another user's order leaves out the maker's order id, user id and remaining quantity; a self-trade keeps them", () => {
    const other = tradeEvent({ takerOrderId: 77, takerUserId: 3, makerOrderId: 5, makerUserId: 9, makerRemaining: 4 });
    const self = tradeEvent({ takerOrderId: 77, takerUserId: 3, makerOrderId: 6, makerUserId: 3, makerRemaining: 0 });
    const p = parse(orderResultJson({ order, events: [other, self] }));
    const [shown, selfShown] = p.events as Record<string, unknown>[];
    expect(shown).toStrictEqual({ symbol: SYM, seq: 2, eventSeq: 3, ts: TS, type: 'trade', takerOrderId: 77, takerUserId: 3, takerSide: 'sell', price: 100, qty: 1 });
    expect(selfShown).toStrictEqual(viaStringify(self));
    // eventJson alone (not an answer) writes every member.
    expect(parse(eventJson(other))).toStrictEqual(viaStringify(other));
  });
});
