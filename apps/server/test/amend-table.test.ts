// A review of the amendment and cancel semantics a trader relies on, as a table of cases: an order
// in each state (resting untouched, partially filled, filled, canceled, rejected, IOC / FOK / market
// orders that never rested, a post-only order, another user's order, an unknown id, an id of another
// symbol) meets each request (PATCH qty smaller / equal / larger than what is left, the original qty
// after partial fills, a price alone (crossing or not, post-only too), price and qty, an empty body,
// qty 0; DELETE twice). Each case checks the status and error code (README: PATCH /v1/orders, the
// error table), the order view after it, the events in the answer, the L2 book (GET, and the
// WebSocket book streams of depths 1, 2 and 100 applied update by update), recent trades, each
// user's `orders` channel, and time priority kept or lost (which order a one-lot probe fills first
// afterwards). Every case runs twice, each time on a fresh server: its requests under test over
// REST, then over WebSocket (`amend`, `cancel` ops; setup orders always over REST); both runs must
// end the same (answers, views, book, probes; timestamps and error message texts aside, the codes
// compared). Self-trade prevention of an amended order that crosses the user's own resting order is
// covered per mode. No case found a bug when this was written.
import type { Event } from '@gx3/codecs';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { userIdOf } from '../src/auth.js';
import type { OrderView } from '../src/gateway.js';
import { ALICE, API_KEYS, BOB, book, CAROL, removeTmpDirs, request, start, SYM, TEST_INSTRUMENT, until, WsClient, wsUrl, trades, type OrderRequest, type TestServer, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

const OTHER = 'OTHER';
const DAVE = 'dave-key-24680';
const KEYS = { alice: ALICE, bob: BOB, carol: CAROL, dave: DAVE } as const;
type Who = keyof typeof KEYS;
const UID: Record<Who, number> = { alice: userIdOf('alice'), bob: userIdOf('bob'), carol: userIdOf('carol'), dave: userIdOf('dave') };
type Via = 'rest' | 'ws';
/** The depths of the WebSocket book subscriptions every case checks against GET /v1/book. */
const BOOK_DEPTHS = [1, 2, 100] as const;

/** The README's error table: the HTTP status of each code (a WebSocket error carries the code alone). */
const STATUS_OF: Record<string, number> = {
  VALIDATION: 400,
  MALFORMED_JSON: 400,
  BAD_REQUEST: 400,
  UNAUTHORIZED: 401,
  NOT_OWNER: 403,
  NOT_FOUND: 404,
  UNKNOWN_SYMBOL: 404,
  ORDER_NOT_FOUND: 404,
  DUPLICATE_CLIENT_ORDER_ID: 409,
  REJECTED: 409,
  RATE_LIMITED: 429,
  BACKPRESSURE: 503,
  HALTED: 503,
  SHUTTING_DOWN: 503,
};

/** A command's answer, over either API, as one shape: the status (200 for a WebSocket `ok`), the error code, the order and events. */
interface Answer {
  status: number;
  code?: string;
  message?: string;
  order?: OrderView;
  events?: Event[];
}

const running = new Set<Market>();
afterEach(async () => {
  for (const m of [...running]) await m.close();
});

/** Removes what may differ between two runs of the same case: timestamps, and error messages (REST's schema words them otherwise). */
function strip<T>(x: T): T {
  return JSON.parse(JSON.stringify(x, (k, v: unknown) => (k === 'ts' || k === 'updatedAt' || k === 'message' ? undefined : v))) as T;
}

/** One fresh server (symbols TEST and OTHER, users alice, bob, carol and dave, the prober), its requests under test sent over `via`. */
class Market {
  private readonly ws = new Map<Who, WsClient>();
  /** Each user's connection subscribed to the `orders` channel (its own orders as they change). */
  private readonly watchers = new Map<Who, WsClient>();
  private readonly owners = new Map<string, Who>();
  private constructor(
    readonly server: TestServer,
    readonly via: Via,
    /** Anonymous book subscribers of TEST, by depth. */
    private readonly feeds: ReadonlyMap<number, WsClient>,
  ) {}

  static async open(via: Via): Promise<Market> {
    const server = await start({ apiKeys: [...API_KEYS, { user: 'dave', key: DAVE }], instruments: [TEST_INSTRUMENT, { ...TEST_INSTRUMENT, symbol: OTHER }] });
    const feeds = new Map<number, WsClient>();
    const m = new Market(server, via, feeds);
    running.add(m);
    for (const depth of BOOK_DEPTHS) {
      const feed = await WsClient.connect(wsUrl(server.url));
      feeds.set(depth, feed);
      const ack = await feed.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth });
      expect(ack.ok, JSON.stringify(ack)).toBe(true);
      await feed.next((f) => f.type === 'book.snapshot', 'the book snapshot');
    }
    if (via === 'ws') {
      for (const who of ['alice', 'bob', 'carol'] as const) m.ws.set(who, await WsClient.connect(wsUrl(server.url), { 'x-api-key': KEYS[who] }));
    }
    for (const who of ['alice', 'bob', 'carol', 'dave'] as const) {
      const w = await WsClient.connect(wsUrl(server.url), { 'x-api-key': KEYS[who] });
      m.watchers.set(who, w);
      const sub = await w.call({ op: 'subscribe', channel: 'orders' });
      expect(sub.ok, JSON.stringify(sub)).toBe(true);
    }
    return m;
  }

  async close(): Promise<void> {
    if (!running.delete(this)) return;
    for (const c of this.ws.values()) await c.close();
    for (const c of this.watchers.values()) await c.close();
    for (const c of this.feeds.values()) await c.close();
    await this.server.close();
  }

  /** Places an order over REST (setting up a case); it must be taken (200). */
  async place(who: Who, order: OrderRequest & { symbol?: string }): Promise<OrderView> {
    const r = await request(this.server.url, 'POST', '/v1/orders', { key: KEYS[who], json: { symbol: SYM, type: 'limit', ...order } });
    const o = r.body.order;
    if (r.status !== 200 || o === undefined) throw new Error(`place ${JSON.stringify(order)}: ${r.status} ${r.text}`);
    this.owners.set(`${o.symbol}/${o.orderId}`, who);
    return o;
  }

  private static fromRest(r: { status: number; body: { order?: OrderView; events?: Event[]; error?: { code: string; message: string } } }): Answer {
    const a: Answer = { status: r.status };
    if (r.body.error !== undefined) {
      a.code = r.body.error.code;
      a.message = r.body.error.message;
    }
    if (r.body.order !== undefined) a.order = r.body.order;
    if (r.body.events !== undefined) a.events = r.body.events;
    return a;
  }

  private static fromWs(f: WsMsg): Answer {
    if (f.ok === true) {
      const a: Answer = { status: 200 };
      if (f.order !== undefined) a.order = f.order;
      if (f.events !== undefined) a.events = f.events;
      return a;
    }
    const code = f.error?.code ?? '?';
    return { status: STATUS_OF[code] ?? -1, code, message: f.error?.message ?? '' };
  }

  private client(who: Who): WsClient {
    const c = this.ws.get(who);
    if (c === undefined) throw new Error(`no WebSocket client for ${who}`);
    return c;
  }

  /** PATCH /v1/orders/{symbol}/{orderId} with `body`, or the WebSocket `amend` op with the same fields. */
  async amend(who: Who, orderId: number, body: Record<string, unknown>, symbol = SYM): Promise<Answer> {
    if (this.via === 'rest') return Market.fromRest(await request(this.server.url, 'PATCH', `/v1/orders/${symbol}/${orderId}`, { key: KEYS[who], json: body }));
    return Market.fromWs(await this.client(who).call({ op: 'amend', symbol, orderId, ...body }));
  }

  /** DELETE /v1/orders/{symbol}/{orderId}, or the WebSocket `cancel` op. */
  async cancel(who: Who, orderId: number, symbol = SYM): Promise<Answer> {
    if (this.via === 'rest') return Market.fromRest(await request(this.server.url, 'DELETE', `/v1/orders/${symbol}/${orderId}`, { key: KEYS[who] }));
    return Market.fromWs(await this.client(who).call({ op: 'cancel', symbol, orderId }));
  }

  /** PATCH and DELETE without an API key, or the `amend` and `cancel` ops on an anonymous connection. */
  async anonymous(kind: 'amend' | 'cancel', orderId: number, body: Record<string, unknown> = {}): Promise<Answer> {
    if (this.via === 'rest') {
      const path = `/v1/orders/${SYM}/${orderId}`;
      return Market.fromRest(kind === 'amend' ? await request(this.server.url, 'PATCH', path, { json: body }) : await request(this.server.url, 'DELETE', path));
    }
    const anon = this.feeds.get(100) as WsClient;
    return Market.fromWs(await anon.call({ op: kind, symbol: SYM, orderId, ...body }));
  }

  /** The order as its owner reads it (GET). */
  async view(orderId: number, symbol = SYM): Promise<OrderView> {
    const who = this.owners.get(`${symbol}/${orderId}`);
    if (who === undefined) throw new Error(`no order ${symbol}/${orderId} placed by this test`);
    const r = await request(this.server.url, 'GET', `/v1/orders/${symbol}/${orderId}`, { key: KEYS[who] });
    if (r.status !== 200 || r.body.order === undefined) throw new Error(`get ${symbol}/${orderId}: ${r.status} ${r.text}`);
    return r.body.order;
  }

  /** The L2 book (GET), without its sequence number. */
  async book(symbol = SYM): Promise<{ bids: [number, number][]; asks: [number, number][] }> {
    const b = await book(this.server.url, 100, symbol);
    return { bids: b.bids, asks: b.asks };
  }

  /**
   * Which of `ids` (resting orders on TEST) a one-lot IOC of dave's at `price` fills: dave sells to
   * probe bids, buys to probe asks. Time priority kept or lost shows here.
   */
  async firstFilled(takerSide: 'buy' | 'sell', price: number, ids: number[]): Promise<number | undefined> {
    const before = await Promise.all(ids.map((id) => this.view(id)));
    await this.place('dave', { side: takerSide, price, qty: 1, tif: 'IOC' });
    const after = await Promise.all(ids.map((id) => this.view(id)));
    const grew = ids.filter((_, i) => (after[i] as OrderView).filledQty > (before[i] as OrderView).filledQty);
    expect(grew.length, `the probe filled ${JSON.stringify(grew)}`).toBeLessThanOrEqual(1);
    return grew[0];
  }

  /**
   * Each user's `orders` channel: only the user's own orders, and the last view pushed of each order
   * placed in this case is the view GET answers (updatedAt included).
   */
  async checkOrderStreams(): Promise<void> {
    const expected = new Map<string, OrderView>();
    for (const key of this.owners.keys()) {
      const [symbol, id] = key.split('/') as [string, string];
      const v = await this.view(Number(id), symbol);
      expected.set(key, v);
      // The view holds together: a live order's qty is what it filled plus what it has open.
      if (v.status === 'open' || v.status === 'partially_filled') {
        expect(v.remainingQty > 0 && v.qty === v.filledQty + v.remainingQty && (v.status === 'open') === (v.filledQty === 0), `a live order's view: ${JSON.stringify(v)}`).toBe(true);
      } else {
        expect(v.remainingQty, `an ended order's view: ${JSON.stringify(v)}`).toBe(0);
        if (v.status === 'filled') expect(v.filledQty, `a filled order's view: ${JSON.stringify(v)}`).toBe(v.qty);
      }
    }
    const pushed = new Map<string, OrderView>();
    const collect = (): void => {
      pushed.clear();
      for (const [who, w] of this.watchers) {
        for (const f of w.received) {
          if (f.type !== 'orders') continue;
          for (const o of f.orders ?? []) {
            expect(o.user, `${who}'s orders channel shows ${JSON.stringify(o)}`).toBe(who);
            pushed.set(`${o.symbol}/${o.orderId}`, o);
          }
        }
      }
    };
    const same = (): boolean => {
      collect();
      return [...expected].every(([k, v]) => JSON.stringify(pushed.get(k)) === JSON.stringify(v));
    };
    await until(same, () => `the orders channels to show every order as GET does`, 5000).catch(() => undefined);
    collect();
    expect(Object.fromEntries([...expected.keys()].map((k) => [k, pushed.get(k)])), 'the last views pushed on the orders channels').toEqual(Object.fromEntries(expected));
  }

  /** Recent trades (GET /v1/trades), newest first, without ids and timestamps. */
  async trades(): Promise<{ price: number; qty: number; takerSide: string }[]> {
    return (await trades(this.server.url, 100)).map((t) => ({ price: t.price, qty: t.qty, takerSide: t.takerSide }));
  }

  /**
   * Each WebSocket book stream (snapshot, then updates with contiguous seq) applied, equal to GET
   * /v1/book at its depth: an amendment that moves a level out of the top (or one into it) is
   * streamed too.
   */
  async checkBookStream(): Promise<void> {
    for (const [depth, feed] of this.feeds) {
      const rest = await book(this.server.url, depth);
      let seq = -1;
      const levels = { bids: new Map<number, number>(), asks: new Map<number, number>() };
      const apply = (): void => {
        seq = -1;
        levels.bids.clear();
        levels.asks.clear();
        for (const f of feed.received) {
          if (f.symbol !== SYM) continue;
          if (f.type === 'book.snapshot') {
            levels.bids.clear();
            levels.asks.clear();
          } else if (f.type === 'book.update') {
            expect(f.seq, `depth ${depth}: book.update seq follows the previous`).toBe(seq + 1);
          } else continue;
          for (const [p, q] of f.bids ?? []) {
            if (q === 0) levels.bids.delete(p);
            else levels.bids.set(p, q);
          }
          for (const [p, q] of f.asks ?? []) {
            if (q === 0) levels.asks.delete(p);
            else levels.asks.set(p, q);
          }
          seq = f.seq as number;
        }
      };
      await until(() => {
        apply();
        return seq >= rest.seq;
      }, `the book stream of depth ${depth} to reach seq ${rest.seq}`);
      const bids = [...levels.bids].sort((x, y) => y[0] - x[0]);
      const asks = [...levels.asks].sort((x, y) => x[0] - y[0]);
      expect({ seq, bids, asks }, `the WebSocket book stream of depth ${depth} applied`).toEqual({ seq: rest.seq, bids: rest.bids, asks: rest.asks });
    }
  }
}

// -------------------------------------------------------------------------------------------------
// The table

interface Case {
  readonly name: string;
  /** Runs the case on a fresh market; returns what both runs (REST, WebSocket) must agree on. */
  readonly run: (m: Market) => Promise<unknown>;
}
const CASES: Case[] = [];
function row(name: string, run: Case['run']): void {
  CASES.push({ name, run });
}

const P = 1000;
const ok = (events: unknown[], order: Partial<OrderView>): unknown => ({ status: 200, events, order: expect.objectContaining(order) as unknown });
const refused = (status: number, code: string): unknown => ({ status, code, message: expect.any(String) as unknown });

function amended(orderId: number, price: number, qty: number, kind: 'REDUCE' | 'REPLACE' | 'SELF_TRADE_DECREMENT', side: 'buy' | 'sell' = 'buy', who: Who = 'alice'): unknown {
  return { type: 'amended', symbol: SYM, orderId, userId: UID[who], side, price, qty, kind };
}
function added(orderId: number, price: number, qty: number, side: 'buy' | 'sell' = 'buy', who: Who = 'alice'): unknown {
  return { type: 'added', symbol: SYM, orderId, userId: UID[who], side, price, qty };
}
function canceled(orderId: number, qty: number, reason: 'USER' | 'UNFILLED' | 'SELF_TRADE', who: Who = 'alice'): unknown {
  return { type: 'canceled', symbol: SYM, orderId, userId: UID[who], reason, qty };
}
/** A trade as the taker's answer shows it against another user's order: no maker order id, user id or remaining quantity. */
function anonTrade(takerOrderId: number, price: number, qty: number, takerSide: 'buy' | 'sell' = 'buy', who: Who = 'alice'): unknown {
  return { type: 'trade', symbol: SYM, takerOrderId, takerUserId: UID[who], takerSide, price, qty };
}
function expectAnonymous(events: Event[] | undefined): void {
  for (const e of events ?? []) {
    if (e.type !== 'trade') continue;
    expect(e).not.toHaveProperty('makerOrderId');
    expect(e).not.toHaveProperty('makerUserId');
    expect(e).not.toHaveProperty('makerRemaining');
  }
}

/** Alice's buy of 10 at P (a), then carol's buy of 10 at P behind it (c). */
async function restingPair(m: Market, tif: 'GTC' | 'POST' = 'GTC'): Promise<{ a: number; c: number }> {
  const a = await m.place('alice', { side: 'buy', price: P, qty: 10, tif });
  const c = await m.place('carol', { side: 'buy', price: P, qty: 10 });
  return { a: a.orderId, c: c.orderId };
}

/** Alice's buy of 10 at P with 4 filled by bob (6 left), then carol's buy of 10 at P behind it. */
async function partialPair(m: Market): Promise<{ a: number; c: number }> {
  const a = await m.place('alice', { side: 'buy', price: P, qty: 10 });
  await m.place('bob', { side: 'sell', price: P, qty: 4 });
  const c = await m.place('carol', { side: 'buy', price: P, qty: 10 });
  expect(await m.view(a.orderId)).toMatchObject({ qty: 10, filledQty: 4, remainingQty: 6, status: 'partially_filled' });
  return { a: a.orderId, c: c.orderId };
}

/** A refused request on a resting order: nothing changes (view, updatedAt included, and book), and the order keeps its time priority. */
async function refusedLeavesAlone(m: Market, a: number, c: number, send: () => Promise<Answer>, status: number, code: string, why: string): Promise<unknown> {
  const view = await m.view(a);
  const bk = await m.book();
  const answer = await send();
  expect(answer).toEqual(refused(status, code));
  expect(answer.message, 'the message tells why').toContain(why);
  expect(await m.view(a), 'the order is unchanged').toEqual(view);
  expect(await m.book(), 'the book is unchanged').toEqual(bk);
  await m.checkBookStream();
  expect(await m.firstFilled('sell', view.price, [a, c]), 'time priority kept').toBe(a);
  return { answer, view, bk };
}

// ---- resting, untouched: alice's 10 at P ahead of carol's 10 at P ------------------------------

row('resting | PATCH qty smaller (10 -> 4) | 200 REDUCE, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  const r = await m.amend('alice', a, { qty: 4 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 4, 'REDUCE'))], { qty: 4, filledQty: 0, remainingQty: 4, status: 'open', price: P }));
  expect(await m.view(a)).toEqual(r.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 14]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority kept').toBe(a);
  return { r, bk };
});

row('resting | PATCH qty equal to what is left (10) | 409 REJECTED, nothing changes, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  const out = await refusedLeavesAlone(m, a, c, () => m.amend('alice', a, { qty: 10 }), 409, 'REJECTED', 'AMEND_NO_CHANGE');
  return out;
});

row('resting | PATCH qty larger (10 -> 15) | 200 REPLACE at its price, loses priority', async (m) => {
  const { a, c } = await restingPair(m);
  const r = await m.amend('alice', a, { qty: 15 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 15, 'REPLACE')), expect.objectContaining(added(a, P, 15))], { qty: 15, filledQty: 0, remainingQty: 15, status: 'open', price: P }));
  expect(await m.view(a)).toEqual(r.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 25]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority lost').toBe(c);
  return { r, bk };
});

row('resting | PATCH price only, not crossing (P -> P-5, then back to P) | 200 REPLACE each time, loses priority', async (m) => {
  const { a, c } = await restingPair(m);
  const r1 = await m.amend('alice', a, { price: P - 5 });
  expect(r1).toEqual(ok([expect.objectContaining(amended(a, P - 5, 10, 'REPLACE')), expect.objectContaining(added(a, P - 5, 10))], { qty: 10, filledQty: 0, remainingQty: 10, status: 'open', price: P - 5 }));
  expect(await m.book()).toEqual({ bids: [[P, 10], [P - 5, 10]], asks: [] });
  await m.checkBookStream();
  const r2 = await m.amend('alice', a, { price: P });
  expect(r2).toEqual(ok([expect.objectContaining(amended(a, P, 10, 'REPLACE')), expect.objectContaining(added(a, P, 10))], { qty: 10, remainingQty: 10, status: 'open', price: P }));
  expect(await m.view(a)).toEqual(r2.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 20]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority lost by the round trip').toBe(c);
  return { r1, r2, bk };
});

row('resting | PATCH price only, better and not crossing (P -> P+5) | 200 REPLACE, rests alone at the better price', async (m) => {
  const { a, c } = await restingPair(m);
  await m.place('bob', { side: 'sell', price: P + 10, qty: 4 });
  const r = await m.amend('alice', a, { price: P + 5 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P + 5, 10, 'REPLACE')), expect.objectContaining(added(a, P + 5, 10))], { qty: 10, remainingQty: 10, status: 'open', price: P + 5 }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 5, 10], [P, 10]], asks: [[P + 10, 4]] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'the better price fills first').toBe(a);
  return { r, bk };
});

row('resting | PATCH price only, crossing part of it (P -> P+10 against 4 at P+10) | 200 REPLACE, trades at the maker price, the rest rests', async (m) => {
  const { a, c } = await restingPair(m);
  const ask = await m.place('bob', { side: 'sell', price: P + 10, qty: 4 });
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [expect.objectContaining(amended(a, P + 10, 10, 'REPLACE')), expect.objectContaining(anonTrade(a, P + 10, 4)), expect.objectContaining(added(a, P + 10, 6))],
      { qty: 10, filledQty: 4, remainingQty: 6, status: 'partially_filled', price: P + 10 },
    ),
  );
  expectAnonymous(r.events);
  expect(await m.view(a)).toEqual(r.order);
  expect(await m.view(ask.orderId)).toMatchObject({ filledQty: 4, remainingQty: 0, status: 'filled' });
  expect(await m.trades(), 'the trade, the amended order its taker').toEqual([{ price: P + 10, qty: 4, takerSide: 'buy' }]);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 6], [P, 10]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return { r, bk };
});

row('resting | PATCH price only, crossing all of it | 200 REPLACE, filled, then PATCH and DELETE 404 ORDER_NOT_FOUND', async (m) => {
  const { a } = await restingPair(m);
  await m.place('bob', { side: 'sell', price: P + 10, qty: 15 });
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P + 10, 10, 'REPLACE')), expect.objectContaining(anonTrade(a, P + 10, 10))], { qty: 10, filledQty: 10, remainingQty: 0, status: 'filled', price: P + 10 }));
  expectAnonymous(r.events);
  expect(await m.view(a)).toEqual(r.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 10]], asks: [[P + 10, 5]] });
  expect(await m.trades()).toEqual([{ price: P + 10, qty: 10, takerSide: 'buy' }]);
  await m.checkBookStream();
  const again = await m.amend('alice', a, { qty: 1 });
  const del = await m.cancel('alice', a);
  expect(again).toEqual(refused(404, 'ORDER_NOT_FOUND'));
  expect(del).toEqual(refused(404, 'ORDER_NOT_FOUND'));
  return { r, bk, again, del };
});

row('resting | PATCH price only, equal to its price | 409 REJECTED, nothing changes, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  return refusedLeavesAlone(m, a, c, () => m.amend('alice', a, { price: P }), 409, 'REJECTED', 'AMEND_NO_CHANGE');
});

row('resting | PATCH price (same) and qty smaller | 200 REDUCE, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  const r = await m.amend('alice', a, { price: P, qty: 6 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 6, 'REDUCE'))], { qty: 6, filledQty: 0, remainingQty: 6, status: 'open', price: P }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 16]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority kept').toBe(a);
  return { r, bk };
});

row('resting | PATCH price (same) and qty equal | 409 REJECTED, nothing changes, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  return refusedLeavesAlone(m, a, c, () => m.amend('alice', a, { price: P, qty: 10 }), 409, 'REJECTED', 'AMEND_NO_CHANGE');
});

row('resting | PATCH price (same) and qty larger | 200 REPLACE, loses priority', async (m) => {
  const { a, c } = await restingPair(m);
  const r = await m.amend('alice', a, { price: P, qty: 12 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 12, 'REPLACE')), expect.objectContaining(added(a, P, 12))], { qty: 12, filledQty: 0, remainingQty: 12, status: 'open', price: P }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 22]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority lost').toBe(c);
  return { r, bk };
});

row('resting | PATCH new price and smaller qty, not crossing | 200 REPLACE (a new price is never a reduction)', async (m) => {
  const { a, c } = await restingPair(m);
  await m.place('carol', { side: 'buy', price: P - 5, qty: 2 });
  const r = await m.amend('alice', a, { price: P - 5, qty: 3 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P - 5, 3, 'REPLACE')), expect.objectContaining(added(a, P - 5, 3))], { qty: 3, filledQty: 0, remainingQty: 3, status: 'open', price: P - 5 }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 10], [P - 5, 5]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(c);
  return { r, bk };
});

row('resting | PATCH new price and qty, crossing all of it | 200 REPLACE, filled at the maker price', async (m) => {
  const { a } = await restingPair(m);
  await m.place('bob', { side: 'sell', price: P + 10, qty: 10 });
  const r = await m.amend('alice', a, { price: P + 20, qty: 6 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P + 20, 6, 'REPLACE')), expect.objectContaining(anonTrade(a, P + 10, 6))], { qty: 6, filledQty: 6, remainingQty: 0, status: 'filled', price: P + 20 }));
  expectAnonymous(r.events);
  expect(await m.view(a)).toEqual(r.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 10]], asks: [[P + 10, 4]] });
  expect(await m.trades()).toEqual([{ price: P + 10, qty: 6, takerSide: 'buy' }]);
  await m.checkBookStream();
  return { r, bk };
});

row('resting | PATCH price only, crossing several levels (asks 2 @P+5, 3 @P+10, 4 @P+20; new price P+10) | trades at each maker price, best first, the rest rests', async (m) => {
  const { a, c } = await restingPair(m);
  await m.place('bob', { side: 'sell', price: P + 10, qty: 3 });
  await m.place('bob', { side: 'sell', price: P + 5, qty: 2 });
  await m.place('bob', { side: 'sell', price: P + 20, qty: 4 });
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [
        expect.objectContaining(amended(a, P + 10, 10, 'REPLACE')),
        expect.objectContaining(anonTrade(a, P + 5, 2)),
        expect.objectContaining(anonTrade(a, P + 10, 3)),
        expect.objectContaining(added(a, P + 10, 5)),
      ],
      { qty: 10, filledQty: 5, remainingQty: 5, status: 'partially_filled', price: P + 10 },
    ),
  );
  expectAnonymous(r.events);
  expect(await m.trades()).toEqual([
    { price: P + 10, qty: 3, takerSide: 'buy' },
    { price: P + 5, qty: 2, takerSide: 'buy' },
  ]);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 5], [P, 10]], asks: [[P + 20, 4]] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return { r, bk };
});

row('resting sell | PATCH qty smaller keeps priority; qty larger loses it; price crossing the bids trades at the bid prices', async (m) => {
  const s1 = await m.place('alice', { side: 'sell', price: P, qty: 10 });
  const s2 = await m.place('carol', { side: 'sell', price: P, qty: 10 });
  await m.place('bob', { side: 'buy', price: P - 5, qty: 3 });
  await m.place('bob', { side: 'buy', price: P - 10, qty: 3 });
  const r1 = await m.amend('alice', s1.orderId, { qty: 8 });
  expect(r1).toEqual(ok([expect.objectContaining(amended(s1.orderId, P, 8, 'REDUCE', 'sell'))], { qty: 8, remainingQty: 8, status: 'open', price: P }));
  expect(await m.firstFilled('buy', P, [s1.orderId, s2.orderId]), 'reduction: priority kept').toBe(s1.orderId);
  const r2 = await m.amend('alice', s1.orderId, { qty: 9 });
  expect(r2).toEqual(ok([expect.objectContaining(amended(s1.orderId, P, 9, 'REPLACE', 'sell')), expect.objectContaining(added(s1.orderId, P, 9, 'sell'))], { qty: 10, filledQty: 1, remainingQty: 9, status: 'partially_filled', price: P }));
  expect(await m.firstFilled('buy', P, [s1.orderId, s2.orderId]), 'size increase: priority lost').toBe(s2.orderId);
  const r3 = await m.amend('alice', s1.orderId, { price: P - 10 });
  expect(r3).toEqual(
    ok(
      [
        expect.objectContaining(amended(s1.orderId, P - 10, 9, 'REPLACE', 'sell')),
        expect.objectContaining(anonTrade(s1.orderId, P - 5, 3, 'sell')),
        expect.objectContaining(anonTrade(s1.orderId, P - 10, 3, 'sell')),
        expect.objectContaining(added(s1.orderId, P - 10, 3, 'sell')),
      ],
      { qty: 10, filledQty: 7, remainingQty: 3, status: 'partially_filled', price: P - 10 },
    ),
  );
  expectAnonymous(r3.events);
  expect((await m.trades()).slice(0, 2)).toEqual([
    { price: P - 10, qty: 3, takerSide: 'sell' },
    { price: P - 5, qty: 3, takerSide: 'sell' },
  ]);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [], asks: [[P - 10, 3], [P, 9]] });
  await m.checkBookStream();
  return { r1, r2, r3, bk };
});

row('resting | PATCH empty body {} | 400 VALIDATION, nothing changes, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  return refusedLeavesAlone(m, a, c, () => m.amend('alice', a, {}), 400, 'VALIDATION', 'body');
});

row('resting | PATCH qty 0 | 400 VALIDATION, nothing changes, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  return refusedLeavesAlone(m, a, c, () => m.amend('alice', a, { qty: 0 }), 400, 'VALIDATION', 'qty');
});

row('resting | PATCH bad values (price 0, price out of band, qty above maxQty, negative, fraction, string, extra field) | 400 VALIDATION each, nothing changes', async (m) => {
  const { a, c } = await restingPair(m);
  const view = await m.view(a);
  const answers: Answer[] = [];
  const cases: [Record<string, unknown>, string][] = [
    [{ price: 0 }, 'price'],
    [{ price: 99 }, 'price'],
    [{ price: 10_001 }, 'price'],
    [{ qty: 1001 }, 'qty'],
    [{ qty: -1 }, 'qty'],
    [{ qty: 2.5 }, 'qty'],
    [{ qty: '5' }, 'qty'],
    [{ qty: null }, 'qty'],
    [{ qty: 5, tif: 'IOC' }, 'tif'],
    [{ price: P, qty: 0 }, 'qty'],
  ];
  for (const [body, field] of cases) {
    const r = await m.amend('alice', a, body);
    expect(r, JSON.stringify(body)).toEqual(refused(400, 'VALIDATION'));
    expect(r.message, `${JSON.stringify(body)}: the message names the field`).toMatch(new RegExp(`^${field}: `));
    answers.push(r);
  }
  expect(await m.view(a)).toEqual(view);
  expect(await m.book()).toEqual({ bids: [[P, 20]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return answers;
});

row('resting | DELETE, DELETE again, PATCH after | 200 canceled USER 10; then 404 ORDER_NOT_FOUND twice', async (m) => {
  const { a, c } = await restingPair(m);
  const d1 = await m.cancel('alice', a);
  expect(d1).toEqual(ok([expect.objectContaining(canceled(a, 10, 'USER'))], { qty: 10, filledQty: 0, remainingQty: 0, status: 'canceled', price: P, reason: 'USER' }));
  const view = await m.view(a);
  expect(view).toEqual(d1.order);
  const d2 = await m.cancel('alice', a);
  const p = await m.amend('alice', a, { qty: 5 });
  expect(d2).toEqual(refused(404, 'ORDER_NOT_FOUND'));
  expect(p).toEqual(refused(404, 'ORDER_NOT_FOUND'));
  expect(await m.view(a), 'the second DELETE changes nothing').toEqual(view);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 10]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(c);
  return { d1, d2, p, bk };
});

row('resting | DELETE twice at once | one 200 (canceled USER 10), the other 404 ORDER_NOT_FOUND', async (m) => {
  const { a, c } = await restingPair(m);
  const both = await Promise.all([m.cancel('alice', a), m.cancel('alice', a)]);
  const sorted = [...both].sort((x, y) => x.status - y.status);
  expect(sorted).toEqual([
    ok([expect.objectContaining(canceled(a, 10, 'USER'))], { qty: 10, filledQty: 0, remainingQty: 0, status: 'canceled', reason: 'USER' }),
    refused(404, 'ORDER_NOT_FOUND'),
  ]);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 10]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(c);
  return { sorted, bk };
});

row('resting | PATCH qty larger and PATCH price sent at once | both 200; whatever their order, the order ends at the new price with the new qty', async (m) => {
  const { a } = await restingPair(m);
  const both = await Promise.all([m.amend('alice', a, { qty: 15 }), m.amend('alice', a, { price: P + 5 })]);
  for (const r of both) expect(r.status, JSON.stringify(r)).toBe(200);
  const view = await m.view(a);
  expect(view).toMatchObject({ price: P + 5, qty: 15, filledQty: 0, remainingQty: 15, status: 'open' });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 5, 15], [P, 10]], asks: [] });
  await m.checkBookStream();
  return { view, bk };
});

// ---- partially filled: alice's 10 at P, 4 filled, 6 left, ahead of carol's 10 at P ---------------

row('partially filled | PATCH qty smaller than left (6 -> 3) | 200 REDUCE, qty 7 = 4 filled + 3, keeps priority', async (m) => {
  const { a, c } = await partialPair(m);
  const r = await m.amend('alice', a, { qty: 3 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 3, 'REDUCE'))], { qty: 7, filledQty: 4, remainingQty: 3, status: 'partially_filled', price: P }));
  expect(await m.view(a)).toEqual(r.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 13]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority kept').toBe(a);
  return { r, bk };
});

row('partially filled | PATCH qty equal to what is left (6) | 409 REJECTED, nothing changes, keeps priority', async (m) => {
  const { a, c } = await partialPair(m);
  return refusedLeavesAlone(m, a, c, () => m.amend('alice', a, { qty: 6 }), 409, 'REJECTED', 'AMEND_NO_CHANGE');
});

row('partially filled | PATCH qty equal to the original qty (10, with 6 left) | 200 REPLACE to 10 open (14 in all), loses priority', async (m) => {
  const { a, c } = await partialPair(m);
  const r = await m.amend('alice', a, { qty: 10 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 10, 'REPLACE')), expect.objectContaining(added(a, P, 10))], { qty: 14, filledQty: 4, remainingQty: 10, status: 'partially_filled', price: P }));
  expect(await m.view(a)).toEqual(r.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 20]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority lost').toBe(c);
  return { r, bk };
});

row('partially filled | PATCH qty between left and original (8: 6 left, 10 ordered) | 200 REPLACE (a size increase), loses priority', async (m) => {
  const { a, c } = await partialPair(m);
  const r = await m.amend('alice', a, { qty: 8 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 8, 'REPLACE')), expect.objectContaining(added(a, P, 8))], { qty: 12, filledQty: 4, remainingQty: 8, status: 'partially_filled', price: P }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 18]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'priority lost').toBe(c);
  return { r, bk };
});

row('partially filled | PATCH price only, not crossing | 200 REPLACE of the 6 left (not the original 10)', async (m) => {
  const { a, c } = await partialPair(m);
  const r = await m.amend('alice', a, { price: P - 5 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P - 5, 6, 'REPLACE')), expect.objectContaining(added(a, P - 5, 6))], { qty: 10, filledQty: 4, remainingQty: 6, status: 'partially_filled', price: P - 5 }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 10], [P - 5, 6]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P - 5, [a, c])).toBe(c);
  return { r, bk };
});

row('partially filled | PATCH price only, crossing | 200 REPLACE of the 6 left, trades 2, rests 4', async (m) => {
  const { a, c } = await partialPair(m);
  await m.place('bob', { side: 'sell', price: P + 10, qty: 2 });
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [expect.objectContaining(amended(a, P + 10, 6, 'REPLACE')), expect.objectContaining(anonTrade(a, P + 10, 2)), expect.objectContaining(added(a, P + 10, 4))],
      { qty: 10, filledQty: 6, remainingQty: 4, status: 'partially_filled', price: P + 10 },
    ),
  );
  expectAnonymous(r.events);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 4], [P, 10]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return { r, bk };
});

row('partially filled | PATCH price (same) and qty equal to the original (10) | 200 REPLACE to 10 open, loses priority; then price and qty crossing', async (m) => {
  const { a, c } = await partialPair(m);
  const r1 = await m.amend('alice', a, { price: P, qty: 10 });
  expect(r1).toEqual(ok([expect.objectContaining(amended(a, P, 10, 'REPLACE')), expect.objectContaining(added(a, P, 10))], { qty: 14, filledQty: 4, remainingQty: 10, status: 'partially_filled', price: P }));
  expect(await m.firstFilled('sell', P, [a, c]), 'priority lost').toBe(c);
  await m.place('bob', { side: 'sell', price: P + 10, qty: 20 });
  const r2 = await m.amend('alice', a, { price: P + 15, qty: 5 });
  expect(r2).toEqual(ok([expect.objectContaining(amended(a, P + 15, 5, 'REPLACE')), expect.objectContaining(anonTrade(a, P + 10, 5))], { qty: 9, filledQty: 9, remainingQty: 0, status: 'filled', price: P + 15 }));
  const bk = await m.book();
  expect(bk, "carol's 10 less the probe's lot").toEqual({ bids: [[P, 9]], asks: [[P + 10, 15]] });
  await m.checkBookStream();
  return { r1, r2, bk };
});

row('partially filled | DELETE, DELETE again | 200 canceled USER 6 (filledQty kept); then 404 ORDER_NOT_FOUND', async (m) => {
  const { a, c } = await partialPair(m);
  const d1 = await m.cancel('alice', a);
  expect(d1).toEqual(ok([expect.objectContaining(canceled(a, 6, 'USER'))], { qty: 10, filledQty: 4, remainingQty: 0, status: 'canceled', price: P, reason: 'USER' }));
  const d2 = await m.cancel('alice', a);
  expect(d2).toEqual(refused(404, 'ORDER_NOT_FOUND'));
  expect(await m.view(a)).toEqual(d1.order);
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 10]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(c);
  return { d1, d2, bk };
});

// ---- orders that do not rest: every amendment and cancel is 404 ORDER_NOT_FOUND; another user's is 403

function ended(name: string, expected: Partial<OrderView>, make: (m: Market) => Promise<number>): void {
  row(`${name} | PATCH qty smaller / equal / larger, price, price and qty; DELETE twice | 404 ORDER_NOT_FOUND each ({} and qty 0: 400), bob 403 NOT_OWNER; nothing changes`, async (m) => {
    const id = await make(m);
    const view = await m.view(id);
    expect(view).toMatchObject(expected);
    const bk = await m.book();
    const answers: Answer[] = [];
    for (const body of [{ qty: 1 }, { qty: Math.max(1, view.qty) }, { qty: view.qty + 5 }, { price: P + 5 }, { price: P - 5, qty: 2 }]) {
      const r = await m.amend('alice', id, body);
      expect(r, JSON.stringify(body)).toEqual(refused(404, 'ORDER_NOT_FOUND'));
      answers.push(r);
    }
    for (const body of [{}, { qty: 0 }]) {
      const r = await m.amend('alice', id, body);
      expect(r, JSON.stringify(body)).toEqual(refused(400, 'VALIDATION'));
      answers.push(r);
    }
    for (let k = 0; k < 2; k++) {
      const r = await m.cancel('alice', id);
      expect(r, 'DELETE').toEqual(refused(404, 'ORDER_NOT_FOUND'));
      answers.push(r);
    }
    const bobPatch = await m.amend('bob', id, { qty: 1 });
    const bobDelete = await m.cancel('bob', id);
    expect(bobPatch, "bob's PATCH").toEqual(refused(403, 'NOT_OWNER'));
    expect(bobDelete, "bob's DELETE").toEqual(refused(403, 'NOT_OWNER'));
    expect(await m.view(id), 'the order is unchanged').toEqual(view);
    expect(await m.book(), 'the book is unchanged').toEqual(bk);
    await m.checkBookStream();
    return { view, bk, answers, bobPatch, bobDelete };
  });
}

ended('filled', { status: 'filled', qty: 10, filledQty: 10, remainingQty: 0 }, async (m) => {
  const a = await m.place('alice', { side: 'buy', price: P, qty: 10 });
  await m.place('bob', { side: 'sell', price: P, qty: 12 });
  return a.orderId;
});

ended('canceled (DELETE before)', { status: 'canceled', reason: 'USER', qty: 10, filledQty: 0, remainingQty: 0 }, async (m) => {
  const a = await m.place('alice', { side: 'buy', price: P, qty: 10 });
  await m.place('bob', { side: 'sell', price: P + 10, qty: 3 });
  const d = await m.cancel('alice', a.orderId);
  expect(d.status).toBe(200);
  return a.orderId;
});

ended('rejected (POST that would cross)', { status: 'rejected', reason: 'POST_ONLY_WOULD_CROSS', filledQty: 0, remainingQty: 0, tif: 'POST' }, async (m) => {
  await m.place('bob', { side: 'sell', price: P, qty: 3 });
  return (await m.place('alice', { side: 'buy', price: P, qty: 10, tif: 'POST' })).orderId;
});

ended('IOC that never rested (nothing to match)', { status: 'canceled', reason: 'UNFILLED', filledQty: 0, remainingQty: 0, tif: 'IOC' }, async (m) => {
  await m.place('bob', { side: 'sell', price: P + 10, qty: 3 });
  return (await m.place('alice', { side: 'buy', price: P, qty: 10, tif: 'IOC' })).orderId;
});

ended('IOC partially filled, rest dropped', { status: 'canceled', reason: 'UNFILLED', qty: 10, filledQty: 3, remainingQty: 0, tif: 'IOC' }, async (m) => {
  await m.place('bob', { side: 'sell', price: P, qty: 3 });
  await m.place('bob', { side: 'sell', price: P + 10, qty: 3 });
  return (await m.place('alice', { side: 'buy', price: P, qty: 10, tif: 'IOC' })).orderId;
});

ended('FOK that could not fill (rejected)', { status: 'rejected', reason: 'FOK_NOT_FILLABLE', filledQty: 0, remainingQty: 0, tif: 'FOK' }, async (m) => {
  await m.place('bob', { side: 'sell', price: P, qty: 3 });
  return (await m.place('alice', { side: 'buy', price: P, qty: 10, tif: 'FOK' })).orderId;
});

ended('FOK filled', { status: 'filled', qty: 3, filledQty: 3, remainingQty: 0, tif: 'FOK' }, async (m) => {
  await m.place('bob', { side: 'sell', price: P, qty: 5 });
  return (await m.place('alice', { side: 'buy', price: P, qty: 3, tif: 'FOK' })).orderId;
});

ended('market order with nothing to match', { status: 'canceled', reason: 'UNFILLED', type: 'market', filledQty: 0, remainingQty: 0 }, async (m) => {
  await m.place('bob', { side: 'buy', price: P - 10, qty: 3 });
  return (await m.place('alice', { side: 'buy', type: 'market', qty: 10 })).orderId;
});

ended('market order partially filled', { status: 'canceled', reason: 'UNFILLED', type: 'market', qty: 10, filledQty: 4, remainingQty: 0 }, async (m) => {
  await m.place('bob', { side: 'sell', price: P + 10, qty: 4 });
  await m.place('bob', { side: 'buy', price: P - 10, qty: 3 });
  return (await m.place('alice', { side: 'buy', type: 'market', qty: 10 })).orderId;
});

// ---- post-only: alice's POST buy of 10 at P ahead of carol's 10 at P, bob's ask of 5 at P+10 -----

async function postSetup(m: Market): Promise<{ a: number; c: number }> {
  const pair = await restingPair(m, 'POST');
  await m.place('bob', { side: 'sell', price: P + 10, qty: 5 });
  return pair;
}

row('POST | PATCH price only, not crossing (P -> P+5) | 200 REPLACE, still post-only', async (m) => {
  const { a, c } = await postSetup(m);
  const r = await m.amend('alice', a, { price: P + 5 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P + 5, 10, 'REPLACE')), expect.objectContaining(added(a, P + 5, 10))], { qty: 10, remainingQty: 10, status: 'open', price: P + 5, tif: 'POST' }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 5, 10], [P, 10]], asks: [[P + 10, 5]] });
  await m.checkBookStream();
  // Still post-only: a price that would cross is refused now.
  const cross = await m.amend('alice', a, { price: P + 10 });
  expect(cross).toEqual(refused(409, 'REJECTED'));
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return { r, bk, cross };
});

row('POST | PATCH price only, crossing (P -> P+10) | 409 REJECTED (POST_ONLY_WOULD_CROSS), nothing changes, keeps priority', async (m) => {
  const { a, c } = await postSetup(m);
  const out = await refusedLeavesAlone(m, a, c, () => m.amend('alice', a, { price: P + 10 }), 409, 'REJECTED', 'POST_ONLY_WOULD_CROSS');
  return out;
});

row('POST | PATCH price and qty, crossing (P+20, 3) | 409 REJECTED, nothing changes, keeps priority', async (m) => {
  const { a, c } = await postSetup(m);
  return refusedLeavesAlone(m, a, c, () => m.amend('alice', a, { price: P + 20, qty: 3 }), 409, 'REJECTED', 'POST_ONLY_WOULD_CROSS');
});

row('POST | PATCH qty smaller | 200 REDUCE, keeps priority; qty larger | 200 REPLACE, loses priority', async (m) => {
  const { a, c } = await postSetup(m);
  const r1 = await m.amend('alice', a, { qty: 7 });
  expect(r1).toEqual(ok([expect.objectContaining(amended(a, P, 7, 'REDUCE'))], { qty: 7, remainingQty: 7, status: 'open', price: P, tif: 'POST' }));
  expect(await m.firstFilled('sell', P, [a, c]), 'reduction: priority kept').toBe(a);
  const r2 = await m.amend('alice', a, { qty: 9 });
  expect(r2).toEqual(ok([expect.objectContaining(amended(a, P, 9, 'REPLACE')), expect.objectContaining(added(a, P, 9))], { qty: 10, filledQty: 1, remainingQty: 9, status: 'partially_filled', price: P, tif: 'POST' }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 19]], asks: [[P + 10, 5]] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c]), 'size increase: priority lost').toBe(c);
  return { r1, r2, bk };
});

// ---- whose order, which id, which symbol ---------------------------------------------------------

row("another user's resting order | bob's PATCH (each kind) and DELETE | 403 NOT_OWNER, nothing changes, keeps priority", async (m) => {
  const { a, c } = await restingPair(m);
  const view = await m.view(a);
  const answers: Answer[] = [];
  for (const body of [{ qty: 4 }, { qty: 10 }, { qty: 15 }, { price: P + 5 }, { price: P, qty: 2 }]) answers.push(await m.amend('bob', a, body));
  answers.push(await m.cancel('bob', a));
  answers.push(await m.cancel('bob', a));
  for (const r of answers) expect(r).toEqual(refused(403, 'NOT_OWNER'));
  const get = await request(m.server.url, 'GET', `/v1/orders/${SYM}/${a}`, { key: BOB });
  expect(get.status).toBe(403);
  expect(await m.view(a)).toEqual(view);
  expect(await m.book()).toEqual({ bids: [[P, 20]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return answers;
});

row('no API key | PATCH and DELETE | 401 UNAUTHORIZED, nothing changes, keeps priority', async (m) => {
  const { a, c } = await restingPair(m);
  const view = await m.view(a);
  const answers = [await m.anonymous('amend', a, { qty: 4 }), await m.anonymous('amend', a, { price: P + 5 }), await m.anonymous('cancel', a)];
  for (const r of answers) expect(r).toEqual(refused(401, 'UNAUTHORIZED'));
  expect(await m.view(a)).toEqual(view);
  expect(await m.book()).toEqual({ bids: [[P, 20]], asks: [] });
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return answers;
});

row('unknown order id | PATCH and DELETE | 404 ORDER_NOT_FOUND; id 0 | 400 VALIDATION', async (m) => {
  const { a } = await restingPair(m);
  const view = await m.view(a);
  const answers = [await m.amend('alice', 999, { qty: 4 }), await m.amend('alice', 999, { price: P + 5 }), await m.cancel('alice', 999), await m.cancel('alice', 999)];
  for (const r of answers) expect(r).toEqual(refused(404, 'ORDER_NOT_FOUND'));
  const zero = [await m.amend('alice', 0, { qty: 4 }), await m.cancel('alice', 0)];
  for (const r of zero) expect(r).toEqual(refused(400, 'VALIDATION'));
  expect(await m.view(a)).toEqual(view);
  return { answers, zero };
});

row('an id of another symbol | PATCH and DELETE OTHER/{id of a TEST order} | 404 ORDER_NOT_FOUND, the TEST order unchanged; unknown symbol 404 UNKNOWN_SYMBOL', async (m) => {
  const { a, c } = await restingPair(m);
  const view = await m.view(a);
  const answers = [await m.amend('alice', a, { qty: 4 }, OTHER), await m.amend('alice', a, { price: P + 5 }, OTHER), await m.cancel('alice', a, OTHER)];
  for (const r of answers) expect(r).toEqual(refused(404, 'ORDER_NOT_FOUND'));
  const unknown = [await m.amend('alice', a, { qty: 4 }, 'NOPE'), await m.cancel('alice', a, 'NOPE')];
  for (const r of unknown) expect(r).toEqual(refused(404, 'UNKNOWN_SYMBOL'));
  expect(await m.view(a)).toEqual(view);
  expect(await m.book()).toEqual({ bids: [[P, 20]], asks: [] });
  await m.checkBookStream();
  expect(await m.firstFilled('sell', P, [a, c])).toBe(a);
  return { answers, unknown };
});

row('the same id on two symbols | alice owns TEST/1 and OTHER/1, bob owns OTHER/2 | each request acts on its own symbol only; OTHER/2 is 403 for alice', async (m) => {
  const t = await m.place('alice', { side: 'buy', price: P, qty: 10 });
  const o = await m.place('alice', { side: 'buy', price: P, qty: 10, symbol: OTHER });
  const b = await m.place('bob', { side: 'sell', price: P + 10, qty: 5, symbol: OTHER });
  await m.place('bob', { side: 'sell', price: P + 10, qty: 5 });
  expect(o.orderId).toBe(t.orderId);
  const tBefore = await m.view(t.orderId);
  const r1 = await m.amend('alice', o.orderId, { qty: 4 }, OTHER);
  expect(r1).toEqual({ status: 200, order: expect.objectContaining({ symbol: OTHER, orderId: o.orderId, qty: 4, remainingQty: 4 }) as unknown, events: [expect.objectContaining({ ...(amended(o.orderId, P, 4, 'REDUCE') as object), symbol: OTHER })] });
  expect(await m.view(t.orderId), 'the TEST order with the same id is unchanged').toEqual(tBefore);
  const d = await m.cancel('alice', t.orderId);
  expect(d).toEqual({ status: 200, order: expect.objectContaining({ symbol: SYM, status: 'canceled' }) as unknown, events: [expect.objectContaining(canceled(t.orderId, 10, 'USER'))] });
  expect(await m.view(o.orderId, OTHER), 'the OTHER order with the same id still rests').toMatchObject({ status: 'open', remainingQty: 4 });
  const foreign = [await m.amend('alice', b.orderId, { qty: 1 }, OTHER), await m.cancel('alice', b.orderId, OTHER)];
  for (const r of foreign) expect(r).toEqual(refused(403, 'NOT_OWNER'));
  const books = { test: await m.book(), other: await m.book(OTHER) };
  expect(books).toEqual({ test: { bids: [], asks: [[P + 10, 5]] }, other: { bids: [[P, 4]], asks: [[P + 10, 5]] } });
  await m.checkBookStream();
  return { r1, d, foreign, books };
});

// ---- self-trade prevention: alice's buy of 5 at P (mode X) amended to P+10, where her own ask rests

type Stp = 'NONE' | 'CANCEL_NEWEST' | 'CANCEL_OLDEST' | 'CANCEL_BOTH' | 'DECREMENT_CANCEL';

/** Alice's buy of 5 at P with `stp` (a), her own ask of `askQty` at P+10 (s, stp `askStp`), carol's bid of 2 at P-10 (c). */
async function stpSetup(m: Market, stp: Stp, askQty = 3, askStp: Stp = 'NONE'): Promise<{ a: number; s: number }> {
  const a = await m.place('alice', { side: 'buy', price: P, qty: 5, stp });
  const s = await m.place('alice', { side: 'sell', price: P + 10, qty: askQty, stp: askStp });
  await m.place('carol', { side: 'buy', price: P - 10, qty: 2 });
  return { a: a.orderId, s: s.orderId };
}

row('STP NONE | amended buy crosses her own ask (3) | self-trade at P+10 (the maker shown: her own), rests 2', async (m) => {
  const { a, s } = await stpSetup(m, 'NONE');
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [
        expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')),
        expect.objectContaining({ type: 'trade', makerOrderId: s, takerOrderId: a, makerUserId: UID.alice, takerUserId: UID.alice, price: P + 10, qty: 3, makerRemaining: 0 }),
        expect.objectContaining(added(a, P + 10, 2)),
      ],
      { qty: 5, filledQty: 3, remainingQty: 2, status: 'partially_filled', price: P + 10 },
    ),
  );
  expect(await m.view(s)).toMatchObject({ status: 'filled', filledQty: 3, remainingQty: 0 });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 2], [P - 10, 2]], asks: [] });
  await m.checkBookStream();
  return { r, bk, s: await m.view(s) };
});

row("STP NONE on the amended order, CANCEL_BOTH on the resting one | the incoming (amended) order's mode decides: a self-trade", async (m) => {
  const { a, s } = await stpSetup(m, 'NONE', 3, 'CANCEL_BOTH');
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r.events?.map((e) => e.type)).toEqual(['amended', 'trade', 'added']);
  expect(r.order).toMatchObject({ filledQty: 3, remainingQty: 2, status: 'partially_filled' });
  expect(await m.view(s)).toMatchObject({ status: 'filled' });
  await m.checkBookStream();
  return r;
});

row('STP CANCEL_NEWEST | amended buy crosses her own ask | the amended order is canceled (SELF_TRADE 5), her ask stays', async (m) => {
  const { a, s } = await stpSetup(m, 'CANCEL_NEWEST');
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok([expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')), expect.objectContaining(canceled(a, 5, 'SELF_TRADE'))], {
      qty: 5,
      filledQty: 0,
      remainingQty: 0,
      status: 'canceled',
      reason: 'SELF_TRADE',
    }),
  );
  expect(await m.view(a)).toEqual(r.order);
  expect(await m.view(s)).toMatchObject({ status: 'open', remainingQty: 3, filledQty: 0 });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P - 10, 2]], asks: [[P + 10, 3]] });
  await m.checkBookStream();
  expect(await m.amend('alice', a, { qty: 1 }), 'it no longer rests').toEqual(refused(404, 'ORDER_NOT_FOUND'));
  return { r, bk };
});

row('STP CANCEL_OLDEST | amended buy crosses her own ask | her ask is canceled (SELF_TRADE 3), the amended order rests 5 at P+10', async (m) => {
  const { a, s } = await stpSetup(m, 'CANCEL_OLDEST');
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok([expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')), expect.objectContaining(canceled(s, 3, 'SELF_TRADE')), expect.objectContaining(added(a, P + 10, 5))], {
      qty: 5,
      filledQty: 0,
      remainingQty: 5,
      status: 'open',
      price: P + 10,
    }),
  );
  expect(await m.view(s)).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE', remainingQty: 0 });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 5], [P - 10, 2]], asks: [] });
  await m.checkBookStream();
  return { r, bk };
});

row("STP CANCEL_OLDEST | her own ask ahead of bob's at the same price | her ask canceled, bob's filled (4), the rest (1) rests", async (m) => {
  const { a, s } = await stpSetup(m, 'CANCEL_OLDEST');
  const bob = await m.place('bob', { side: 'sell', price: P + 10, qty: 4 });
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [
        expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')),
        expect.objectContaining(canceled(s, 3, 'SELF_TRADE')),
        expect.objectContaining(anonTrade(a, P + 10, 4)),
        expect.objectContaining(added(a, P + 10, 1)),
      ],
      { qty: 5, filledQty: 4, remainingQty: 1, status: 'partially_filled', price: P + 10 },
    ),
  );
  expectAnonymous(r.events);
  expect(await m.view(bob.orderId)).toMatchObject({ status: 'filled' });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 1], [P - 10, 2]], asks: [] });
  await m.checkBookStream();
  return { r, bk };
});

row('STP CANCEL_BOTH | amended buy crosses her own ask | both canceled (SELF_TRADE)', async (m) => {
  const { a, s } = await stpSetup(m, 'CANCEL_BOTH');
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok([expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')), expect.objectContaining(canceled(s, 3, 'SELF_TRADE')), expect.objectContaining(canceled(a, 5, 'SELF_TRADE'))], {
      filledQty: 0,
      remainingQty: 0,
      status: 'canceled',
      reason: 'SELF_TRADE',
    }),
  );
  expect(await m.view(s)).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE' });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P - 10, 2]], asks: [] });
  await m.checkBookStream();
  return { r, bk };
});

row('STP DECREMENT_CANCEL | amended buy of 5 crosses her own ask of 3 | ask canceled, the amended order decremented to 2 and rests', async (m) => {
  const { a, s } = await stpSetup(m, 'DECREMENT_CANCEL');
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [
        expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')),
        expect.objectContaining(canceled(s, 3, 'SELF_TRADE')),
        expect.objectContaining(amended(a, P + 10, 2, 'SELF_TRADE_DECREMENT')),
        expect.objectContaining(added(a, P + 10, 2)),
      ],
      { filledQty: 0, remainingQty: 2, status: 'open', price: P + 10 },
    ),
  );
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 2], [P - 10, 2]], asks: [] });
  await m.checkBookStream();
  return { r, bk };
});

row('STP DECREMENT_CANCEL | amended buy of 5 crosses her own ask of 8 | ask decremented to 3, the amended order canceled', async (m) => {
  const { a, s } = await stpSetup(m, 'DECREMENT_CANCEL', 8);
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')), expect.objectContaining(amended(s, P + 10, 3, 'SELF_TRADE_DECREMENT', 'sell')), expect.objectContaining(canceled(a, 5, 'SELF_TRADE'))],
      { filledQty: 0, remainingQty: 0, status: 'canceled', reason: 'SELF_TRADE' },
    ),
  );
  expect(await m.view(s)).toMatchObject({ status: 'open', remainingQty: 3, filledQty: 0 });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P - 10, 2]], asks: [[P + 10, 3]] });
  await m.checkBookStream();
  return { r, bk };
});

row("STP CANCEL_NEWEST | amended buy trades bob's better ask first, then meets her own | 2 traded, the rest canceled (SELF_TRADE)", async (m) => {
  const { a, s } = await stpSetup(m, 'CANCEL_NEWEST');
  await m.place('bob', { side: 'sell', price: P + 5, qty: 2 });
  const r = await m.amend('alice', a, { price: P + 10 });
  expect(r).toEqual(
    ok([expect.objectContaining(amended(a, P + 10, 5, 'REPLACE')), expect.objectContaining(anonTrade(a, P + 5, 2)), expect.objectContaining(canceled(a, 3, 'SELF_TRADE'))], {
      qty: 5,
      filledQty: 2,
      remainingQty: 0,
      status: 'canceled',
      reason: 'SELF_TRADE',
      price: P + 10,
    }),
  );
  expectAnonymous(r.events);
  expect(await m.view(s)).toMatchObject({ status: 'open', remainingQty: 3 });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P - 10, 2]], asks: [[P + 10, 3]] });
  await m.checkBookStream();
  return { r, bk };
});

row("STP DECREMENT_CANCEL | amended buy of 10 trades bob's 3, then meets her own ask of 4 | ask canceled, the order decremented to 3 and rests (qty 6 = 3 filled + 3)", async (m) => {
  const a = await m.place('alice', { side: 'buy', price: P, qty: 10, stp: 'DECREMENT_CANCEL' });
  await m.place('bob', { side: 'sell', price: P + 5, qty: 3 });
  const s = await m.place('alice', { side: 'sell', price: P + 10, qty: 4 });
  const r = await m.amend('alice', a.orderId, { price: P + 10 });
  expect(r).toEqual(
    ok(
      [
        expect.objectContaining(amended(a.orderId, P + 10, 10, 'REPLACE')),
        expect.objectContaining(anonTrade(a.orderId, P + 5, 3)),
        expect.objectContaining(canceled(s.orderId, 4, 'SELF_TRADE')),
        expect.objectContaining(amended(a.orderId, P + 10, 3, 'SELF_TRADE_DECREMENT')),
        expect.objectContaining(added(a.orderId, P + 10, 3)),
      ],
      { qty: 6, filledQty: 3, remainingQty: 3, status: 'partially_filled', price: P + 10 },
    ),
  );
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P + 10, 3]], asks: [] });
  await m.checkBookStream();
  return { r, bk };
});

row('STP CANCEL_NEWEST on a sell | amended ask crosses her own bid | the amended ask is canceled, her bid stays', async (m) => {
  const ask = await m.place('alice', { side: 'sell', price: P + 10, qty: 4, stp: 'CANCEL_NEWEST' });
  const bid = await m.place('alice', { side: 'buy', price: P, qty: 3 });
  const r = await m.amend('alice', ask.orderId, { price: P - 5, qty: 6 });
  expect(r).toEqual(
    ok([expect.objectContaining(amended(ask.orderId, P - 5, 6, 'REPLACE', 'sell')), expect.objectContaining(canceled(ask.orderId, 6, 'SELF_TRADE'))], {
      status: 'canceled',
      reason: 'SELF_TRADE',
      remainingQty: 0,
    }),
  );
  expect(await m.view(bid.orderId)).toMatchObject({ status: 'open', remainingQty: 3 });
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 3]], asks: [] });
  await m.checkBookStream();
  return { r, bk };
});

row('STP with a qty alone | a size increase never crosses: no STP, REPLACE at its price', async (m) => {
  const { a } = await stpSetup(m, 'CANCEL_BOTH');
  const r = await m.amend('alice', a, { qty: 9 });
  expect(r).toEqual(ok([expect.objectContaining(amended(a, P, 9, 'REPLACE')), expect.objectContaining(added(a, P, 9))], { remainingQty: 9, status: 'open', price: P }));
  const bk = await m.book();
  expect(bk).toEqual({ bids: [[P, 9], [P - 10, 2]], asks: [[P + 10, 3]] });
  await m.checkBookStream();
  return { r, bk };
});

// -------------------------------------------------------------------------------------------------

async function runCase(c: Case, via: Via): Promise<unknown> {
  const m = await Market.open(via);
  try {
    const record = strip(await c.run(m));
    await m.checkBookStream();
    await m.checkOrderStreams();
    return record;
  } finally {
    await m.close();
  }
}

describe('amendments and cancels, case by case, over REST then over WebSocket', () => {
  for (const c of CASES) {
    it(c.name, async () => {
      const rest = await runCase(c, 'rest');
      const ws = await runCase(c, 'ws');
      expect(ws, 'the same case over WebSocket answers and ends the same as over REST').toEqual(rest);
    });
  }
});
