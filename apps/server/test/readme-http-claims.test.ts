// The REST API's README claims checked as a careful user would, through real sockets, where the other
// tests leave them unchecked: the exact members of each answer (an order, a trade, the book, the
// trades), integer ticks and lots, times in microseconds since the epoch, the defaults and maxima of
// `depth` and `limit`, query parameters that are ignored, the user id derived from the name, order
// views that must agree with the events of the same answer (partial fills then a reduction or a
// new price, post-only amendments refused, amendments that change nothing, self-trade prevention,
// and a seeded random flow), an answer made durable by one group commit with later commands, 503
// BACKPRESSURE when too many commands wait for the disk, the body limit at its bound, and
// configuration checks (empty environment variables, symbol names).
import crypto from 'node:crypto';
import type { Event } from '@gx3/codecs';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, resolveConfig, DEFAULTS } from '../src/config.js';
import { ConfigError } from '../src/errors.js';
import type { OrderView } from '../src/gateway.js';
import { startServer } from '../src/server.js';
import { ALICE, API_KEYS, BOB, CAROL, book, Client, gatedIO, removeTmpDirs, request, rng, SEGMENT, silentLogger, start, SYM, TEST_INSTRUMENT, tmpDir, trades, until, type OrderRequest, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

let server: TestServer;
let alice: Client;
let bob: Client;
let carol: Client;

beforeEach(async () => {
  server = await start();
  alice = new Client(server.url, ALICE);
  bob = new Client(server.url, BOB);
  carol = new Client(server.url, CAROL);
});

afterEach(async () => {
  await server.close();
});

const ORDER_KEYS = ['orderId', 'symbol', 'user', 'side', 'type', 'tif', 'price', 'qty', 'filledQty', 'remainingQty', 'status', 'updatedAt'];
const TRADE_KEYS = ['id', 'symbol', 'price', 'qty', 'takerSide', 'ts'];

const sorted = (o: object): string[] => Object.keys(o).sort();
const sortKeys = (o: object | undefined): unknown => (o === undefined ? undefined : Object.fromEntries(Object.entries(o).sort(([a], [b]) => (a < b ? -1 : 1))));
const isTicks = (n: unknown): boolean => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;

/** The events of `events` about order `orderId` (trades where it is maker or taker). */
function about(events: readonly Event[], orderId: number): Event[] {
  return events.filter((e) => ('orderId' in e && e.orderId === orderId) || (e.type === 'trade' && e.takerOrderId === orderId));
}

/**
 * Order `orderId` as `prior` (its view before the command; undefined for a new order) and the
 * events of one command's answer leave it, by the README's meaning of each member: qty what it
 * ordered after amendments (qty = filled + open once amended), filledQty its fills, remainingQty
 * what is open, updatedAt the time of its last event.
 */
function applyEvents(prior: OrderView | undefined, events: readonly Event[], orderId: number, user: string): OrderView | undefined {
  let o: OrderView | undefined = prior === undefined ? undefined : { ...prior };
  const settle = (v: OrderView, ended: boolean): void => {
    v.status = ended ? 'filled' : v.filledQty > 0 ? 'partially_filled' : v.status;
  };
  for (const e of events) {
    if (e.type === 'accepted' && e.orderId === orderId) {
      o = { orderId, symbol: e.symbol, user, side: e.side, type: e.orderType, tif: e.tif, price: e.price, qty: e.qty, filledQty: 0, remainingQty: e.qty, status: 'new', updatedAt: e.ts };
      if (e.clientOrderId !== undefined) o.clientOrderId = e.clientOrderId;
    } else if (e.type === 'rejected' && e.orderId === orderId && (e.commandType === 'limit' || e.commandType === 'market')) {
      o = { orderId, symbol: e.symbol, user, side: e.side ?? 'buy', type: e.commandType, tif: e.tif ?? 'GTC', price: e.price ?? 0, qty: e.qty ?? 0, filledQty: 0, remainingQty: 0, status: 'rejected', reason: e.reason, updatedAt: e.ts };
      if (e.clientOrderId !== undefined) o.clientOrderId = e.clientOrderId;
    } else if (o === undefined) {
      continue;
    } else if (e.type === 'added' && e.orderId === orderId) {
      o.price = e.price;
      o.remainingQty = e.qty;
      o.status = o.filledQty > 0 ? 'partially_filled' : 'open';
      o.updatedAt = e.ts;
    } else if (e.type === 'trade' && e.takerOrderId === orderId) {
      o.filledQty += e.qty;
      o.remainingQty = Math.max(0, o.remainingQty - e.qty);
      settle(o, o.remainingQty === 0);
      o.updatedAt = e.ts;
    } else if (e.type === 'trade' && 'makerOrderId' in e && e.makerOrderId === orderId) {
      o.filledQty += e.qty;
      o.remainingQty = e.makerRemaining;
      settle(o, e.makerRemaining === 0);
      o.updatedAt = e.ts;
    } else if (e.type === 'canceled' && e.orderId === orderId) {
      o.remainingQty = 0;
      o.status = 'canceled';
      o.reason = e.reason;
      o.updatedAt = e.ts;
    } else if (e.type === 'amended' && e.orderId === orderId) {
      if (e.kind === 'REPLACE') {
        o.price = e.price;
        o.qty = o.filledQty + e.qty;
      } else {
        o.qty -= o.remainingQty - e.qty;
      }
      o.remainingQty = e.qty;
      o.updatedAt = e.ts;
    }
  }
  return o;
}

describe('the members and units of the answers (README: REST API table and the order paragraph)', () => {
  it('an order, a trade, the book and the trades answer hold exactly the members listed, integer ticks and lots, and times in microseconds since the epoch', async () => {
    const before = Date.now() * 1000;
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 5 });
    const taker = await bob.place({ side: 'buy', price: 1000, qty: 2, clientOrderId: 'cid-1' });
    const canceled = await alice.cancel(maker.order.orderId);
    const after = Date.now() * 1000;
    // A plain open order: no reason and no clientOrderId member.
    expect(sorted(maker.order)).toEqual([...ORDER_KEYS].sort());
    // A filled order with a client order id: clientOrderId, no reason.
    expect(sorted(taker.order)).toEqual([...ORDER_KEYS, 'clientOrderId'].sort());
    // A canceled order: its reason.
    expect(sorted(canceled.body.order as OrderView)).toEqual([...ORDER_KEYS, 'reason'].sort());
    for (const o of [maker.order, taker.order, canceled.body.order as OrderView]) {
      for (const k of ['orderId', 'price', 'qty', 'filledQty', 'remainingQty', 'updatedAt'] as const) expect(isTicks(o[k]), `${k} of ${JSON.stringify(o)}`).toBe(true);
      // Microseconds since the epoch (a clock in milliseconds or nanoseconds would be off by 1,000).
      expect(o.updatedAt).toBeGreaterThanOrEqual(before - 5_000_000);
      expect(o.updatedAt).toBeLessThanOrEqual(after + 5_000_000);
    }
    expect(['new', 'open', 'partially_filled', 'filled', 'canceled', 'rejected']).toContain(canceled.body.order?.status);

    const t = await request(server.url, 'GET', `/v1/trades/${SYM}`);
    expect(t.status).toBe(200);
    expect(sorted(t.body)).toEqual(['symbol', 'trades']);
    const [trade] = t.body.trades ?? [];
    expect(trade).toBeDefined();
    expect(sorted(trade as object)).toEqual([...TRADE_KEYS].sort());
    expect(trade).toMatchObject({ symbol: SYM, price: 1000, qty: 2, takerSide: 'buy' });
    expect(trade?.ts).toBeGreaterThanOrEqual(before - 5_000_000);
    expect(trade?.ts).toBeLessThanOrEqual(after + 5_000_000);
    // The trade's time is its event's, the one the taker's order was last changed at.
    expect(trade?.ts).toBe(taker.order.updatedAt);

    await alice.place({ side: 'sell', price: 1001, qty: 3 });
    const b = await request(server.url, 'GET', `/v1/book/${SYM}`);
    expect(sorted(b.body)).toEqual(['asks', 'bids', 'seq', 'symbol']);
    expect(b.body).toMatchObject({ symbol: SYM, bids: [], asks: [[1001, 3]] });
    expect(Number.isSafeInteger(b.body.seq)).toBe(true);
  });

  it('GET /v1/book without depth answers 20 levels per side, best first; depth=1000 is the largest accepted', async () => {
    // 25 levels each side: bids 1000..1024, asks 2000..2024.
    for (let i = 0; i < 25; i++) {
      await alice.place({ side: 'buy', price: 1000 + i, qty: i + 1 });
      await bob.place({ side: 'sell', price: 2000 + i, qty: i + 1 });
    }
    const d = await book(server.url);
    expect(d.bids).toHaveLength(20);
    expect(d.asks).toHaveLength(20);
    expect(d.bids[0]).toEqual([1024, 25]);
    expect(d.bids[19]).toEqual([1005, 6]);
    expect(d.asks[0]).toEqual([2000, 1]);
    expect(d.asks[19]).toEqual([2019, 20]);
    const all = await book(server.url, 1000);
    expect(all.bids).toHaveLength(25);
    expect(all.asks).toHaveLength(25);
    expect(all.bids.map(([p]) => p)).toEqual(Array.from({ length: 25 }, (_, i) => 1024 - i));
    expect(all.asks.map(([p]) => p)).toEqual(Array.from({ length: 25 }, (_, i) => 2000 + i));
    const over = await request(server.url, 'GET', `/v1/book/${SYM}?depth=1001`);
    expect(over.status).toBe(400);
    expect(over.body.error?.code).toBe('VALIDATION');
  });

  it('GET /v1/trades without limit answers the newest 100 trades, newest first; limit=1000 answers all of them', async () => {
    // 120 makers of one lot, swept by one market order: 120 trades, at 1000..1119.
    for (let i = 0; i < 120; i++) await alice.place({ side: 'sell', price: 1000 + i, qty: 1 });
    const sweep = await bob.place({ side: 'buy', type: 'market', qty: 120 });
    expect(sweep.order).toMatchObject({ filledQty: 120, status: 'filled' });
    const dflt = await trades(server.url);
    expect(dflt).toHaveLength(100);
    // Newest first: the last trade of the sweep (the highest price) first.
    expect(dflt[0]?.price).toBe(1119);
    expect(dflt[99]?.price).toBe(1020);
    const ids = dflt.map((t) => t.id);
    expect(ids).toEqual([...ids].sort((x, y) => y - x));
    const all = await trades(server.url, 1000);
    expect(all).toHaveLength(120);
    expect(all.slice(0, 100)).toEqual(dflt);
    // Each trade's id is the eventSeq of the trade event in the taker's answer.
    const tradeSeqs = sweep.events.filter((e) => e.type === 'trade').map((e) => e.eventSeq);
    expect(all.map((t) => t.id)).toEqual([...tradeSeqs].reverse());
    const over = await request(server.url, 'GET', `/v1/trades/${SYM}?limit=1001`);
    expect(over.status).toBe(400);
    expect(over.body.error?.message).toMatch(/^limit: /);
  });

  it('query parameters other than depth and limit are ignored, on every route (limit on the book, depth on the trades included)', async () => {
    const placed = await request(server.url, 'POST', `/v1/orders?foo=bar&depth=zero`, { key: ALICE, json: { symbol: SYM, side: 'buy', type: 'limit', price: 1000, qty: 2 } });
    expect(placed.status, placed.text).toBe(200);
    const id = placed.body.order?.orderId as number;
    const got = await request(server.url, 'GET', `/v1/orders/${SYM}/${id}?limit=-1&x=1`, { key: ALICE });
    expect(got.status, got.text).toBe(200);
    const amended = await request(server.url, 'PATCH', `/v1/orders/${SYM}/${id}?price=5`, { key: ALICE, json: { qty: 1 } });
    expect(amended.status, amended.text).toBe(200);
    expect(amended.body.order).toMatchObject({ price: 1000, remainingQty: 1 });
    const b = await request(server.url, 'GET', `/v1/book/${SYM}?limit=abc&side=sell`);
    expect(b.status, b.text).toBe(200);
    expect(b.body.bids).toEqual([[1000, 1]]);
    const t = await request(server.url, 'GET', `/v1/trades/${SYM}?depth=abc`);
    expect(t.status, t.text).toBe(200);
    for (const p of ['/v1/instruments?x=1', '/health?verbose=1', '/health/ready?x', '/health/live?x=y', '/metrics?name[]=gx3']) {
      const r = await request(server.url, 'GET', p);
      expect(r.status, `${p}: ${r.text.slice(0, 200)}`).toBe(200);
    }
    const canceled = await request(server.url, 'DELETE', `/v1/orders/${SYM}/${id}?orderId=999`, { key: ALICE });
    expect(canceled.status, canceled.text).toBe(200);
    expect(canceled.body.order?.orderId).toBe(id);
  });

  it("an order's accepted event carries its side, price, qty, tif and stp (NONE when left out), a refused order's rejected event what it asked for, both with its clientOrderId", async () => {
    const placed = await alice.place({ side: 'sell', price: 1000, qty: 3, clientOrderId: 'ev-1' });
    expect(placed.events[0]).toMatchObject({ type: 'accepted', orderType: 'limit', side: 'sell', price: 1000, qty: 3, tif: 'GTC', stp: 'NONE', clientOrderId: 'ev-1' });
    const post = await alice.post({ side: 'buy', price: 1000, qty: 2, tif: 'POST', stp: 'CANCEL_BOTH', clientOrderId: 'ev-2' });
    expect(post.status).toBe(200);
    expect(post.body.events).toEqual([
      expect.objectContaining({ type: 'rejected', commandType: 'limit', reason: 'POST_ONLY_WOULD_CROSS', side: 'buy', price: 1000, qty: 2, tif: 'POST', stp: 'CANCEL_BOTH', clientOrderId: 'ev-2' }),
    ]);
    const fok = await bob.post({ side: 'buy', price: 1000, qty: 4, tif: 'FOK', stp: 'DECREMENT_CANCEL' });
    expect(fok.body.events).toEqual([expect.objectContaining({ type: 'rejected', reason: 'FOK_NOT_FILLABLE', side: 'buy', price: 1000, qty: 4, tif: 'FOK', stp: 'DECREMENT_CANCEL' })]);
    expect(fok.body.order).toMatchObject({ status: 'rejected', reason: 'FOK_NOT_FILLABLE', qty: 4, filledQty: 0, remainingQty: 0 });
    const market = await bob.place({ side: 'buy', type: 'market', qty: 1, stp: 'CANCEL_NEWEST' });
    expect(market.events[0]).toMatchObject({ type: 'accepted', orderType: 'market', side: 'buy', qty: 1, tif: 'IOC', stp: 'CANCEL_NEWEST' });
  });

  it("a user's engine id is the first 48 bits of the SHA-256 of the name, plus 1 (as the events of an answer carry it)", async () => {
    const expected = (name: string): number => crypto.createHash('sha256').update(name, 'utf8').digest().readUIntBE(0, 6) + 1;
    const a = await alice.place({ side: 'buy', price: 1000, qty: 1 });
    const b = await bob.place({ side: 'buy', price: 1000, qty: 1 });
    expect(a.events.find((e) => e.type === 'accepted')).toMatchObject({ userId: expected('alice') });
    expect(b.events.find((e) => e.type === 'accepted')).toMatchObject({ userId: expected('bob') });
  });
});

describe('order views agree with the events the same answer carries', () => {
  it('a partially filled order reduced at its price (PATCH {qty, price}) keeps time priority: qty = filled + open, and the next taker fills it first', async () => {
    const first = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const second = await bob.place({ side: 'sell', price: 1000, qty: 10 });
    await carol.place({ side: 'buy', price: 1000, qty: 3 });
    const r = await alice.amend(first.order.orderId, { qty: 5, price: 1000 });
    expect(r.status, r.text).toBe(200);
    expect(r.body.events).toEqual([expect.objectContaining({ type: 'amended', kind: 'REDUCE', orderId: first.order.orderId, price: 1000, qty: 5 })]);
    expect(r.body.order).toMatchObject({ price: 1000, qty: 8, filledQty: 3, remainingQty: 5, status: 'partially_filled' });
    expect(await alice.order(first.order.orderId)).toEqual(r.body.order);
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 15]] });
    // Priority kept: the next 5 lots are the reduced order's, not bob's.
    const taker = await carol.place({ side: 'buy', price: 1000, qty: 5 });
    expect(taker.order).toMatchObject({ status: 'filled', filledQty: 5 });
    expect(await alice.order(first.order.orderId)).toMatchObject({ qty: 8, filledQty: 8, remainingQty: 0, status: 'filled' });
    expect(await bob.order(second.order.orderId)).toMatchObject({ filledQty: 0, remainingQty: 10, status: 'open' });
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 10]] });
  });

  it('a new price alone for a partially filled order keeps its open quantity and loses priority; a crossing new price fills it, the answer anonymous and its order filled', async () => {
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    await carol.place({ side: 'buy', price: 1000, qty: 4 });
    const other = await bob.place({ side: 'sell', price: 1005, qty: 2 });
    const moved = await alice.amend(a.order.orderId, { price: 1005 });
    expect(moved.status, moved.text).toBe(200);
    expect(moved.body.events?.map((e) => e.type)).toEqual(['amended', 'added']);
    expect(moved.body.events?.[0]).toMatchObject({ kind: 'REPLACE', price: 1005, qty: 6 });
    expect(moved.body.order).toMatchObject({ price: 1005, qty: 10, filledQty: 4, remainingQty: 6, status: 'partially_filled' });
    expect(await book(server.url)).toMatchObject({ asks: [[1005, 8]], bids: [] });
    // Priority lost: bob's order at 1005 fills first.
    await carol.place({ side: 'buy', price: 1005, qty: 2 });
    expect(await bob.order(other.order.orderId)).toMatchObject({ status: 'filled' });
    expect(await alice.order(a.order.orderId)).toMatchObject({ filledQty: 4, remainingQty: 6 });

    // A bid from carol, then alice moves her ask onto it: the trade is hers as taker.
    const bid = await carol.place({ side: 'buy', price: 1002, qty: 6 });
    const crossed = await alice.amend(a.order.orderId, { price: 1001 });
    expect(crossed.status, crossed.text).toBe(200);
    expect(crossed.body.events?.map((e) => e.type)).toEqual(['amended', 'trade']);
    const trade = crossed.body.events?.[1];
    expect(trade).toMatchObject({ type: 'trade', price: 1002, qty: 6, takerOrderId: a.order.orderId, takerSide: 'sell' });
    // Trading is anonymous: the PATCH answer names neither carol's order nor carol.
    expect(trade).not.toHaveProperty('makerOrderId');
    expect(trade).not.toHaveProperty('makerUserId');
    expect(trade).not.toHaveProperty('makerRemaining');
    expect(crossed.body.order).toMatchObject({ price: 1001, qty: 10, filledQty: 10, remainingQty: 0, status: 'filled' });
    expect(await alice.order(a.order.orderId)).toEqual(crossed.body.order);
    expect(await carol.order(bid.order.orderId)).toMatchObject({ status: 'filled', filledQty: 6 });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });

  it('amendments the engine refuses are 409 REJECTED and change nothing: a post-only order moved to a crossing price, the same quantity alone, the same price alone', async () => {
    await bob.place({ side: 'buy', price: 1000, qty: 5 });
    const p = await alice.place({ side: 'sell', price: 1010, qty: 5, tif: 'POST' });
    const seq = (await book(server.url)).seq;
    const cross = await alice.amend(p.order.orderId, { price: 1000 });
    expect(cross.status, cross.text).toBe(409);
    expect(cross.body.error?.code).toBe('REJECTED');
    expect(cross.body.error?.message).toMatch(/POST_ONLY_WOULD_CROSS/);
    // PATCH {qty} equal to what is left is neither a reduction nor a size increase.
    const sameQty = await alice.amend(p.order.orderId, { qty: 5 });
    expect(sameQty.status, sameQty.text).toBe(409);
    expect(sameQty.body.error).toMatchObject({ code: 'REJECTED' });
    expect(sameQty.body.error?.message).toMatch(/AMEND_NO_CHANGE/);
    const samePrice = await alice.amend(p.order.orderId, { price: 1010 });
    expect(samePrice.status, samePrice.text).toBe(409);
    expect(samePrice.body.error?.message).toMatch(/AMEND_NO_CHANGE/);
    expect(await alice.order(p.order.orderId)).toEqual(p.order);
    const after = await book(server.url);
    expect(after).toEqual({ seq, bids: [[1000, 5]], asks: [[1010, 5]] });
    expect(await trades(server.url)).toEqual([]);
  });

  it('a size increase by quantity alone answers the replace and its added event only (not the refused first attempt)', async () => {
    const a = await alice.place({ side: 'buy', price: 1000, qty: 4 });
    const r = await alice.amend(a.order.orderId, { qty: 9 });
    expect(r.status, r.text).toBe(200);
    expect(r.body.events?.map((e) => e.type)).toEqual(['amended', 'added']);
    expect(r.body.events?.[0]).toMatchObject({ kind: 'REPLACE', price: 1000, qty: 9 });
    expect(r.body.order).toMatchObject({ qty: 9, filledQty: 0, remainingQty: 9, status: 'open', price: 1000 });
  });

  it('DECREMENT_CANCEL with the incoming order the larger: the resting order is canceled, the incoming one decremented and rests; views, events and book agree', async () => {
    const resting = await alice.place({ side: 'sell', price: 1000, qty: 4 });
    await bob.place({ side: 'sell', price: 1000, qty: 3 });
    const r = await alice.place({ side: 'buy', price: 1000, qty: 10, stp: 'DECREMENT_CANCEL' });
    // Alice's own 4 lots are decremented away (no trade), then 3 lots trade with bob, 3 rest.
    expect(r.events.map((e) => e.type)).toEqual(['accepted', 'canceled', 'amended', 'trade', 'added']);
    expect(r.events[1]).toMatchObject({ orderId: resting.order.orderId, reason: 'SELF_TRADE', qty: 4 });
    expect(r.events[2]).toMatchObject({ orderId: r.order.orderId, kind: 'SELF_TRADE_DECREMENT', qty: 6 });
    expect(r.events[4]).toMatchObject({ orderId: r.order.orderId, qty: 3 });
    const mine = about(r.events, r.order.orderId);
    const filled = mine.reduce((n, e) => n + (e.type === 'trade' ? e.qty : 0), 0);
    expect(r.order).toMatchObject({ filledQty: filled, remainingQty: 3, status: 'partially_filled' });
    // What it asked for less what the self-trade prevention took: 10 - 4.
    expect(r.order.qty).toBe(6);
    expect(await alice.order(r.order.orderId)).toEqual(r.order);
    expect(await alice.order(resting.order.orderId)).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE', remainingQty: 0, filledQty: 0 });
    expect(await book(server.url)).toMatchObject({ bids: [[1000, 3]], asks: [] });
  });

  it('IOC with CANCEL_OLDEST: the own resting order is canceled, the next one of another user trades, the rest is canceled UNFILLED; nothing of the IOC rests', async () => {
    const own = await alice.place({ side: 'sell', price: 1000, qty: 2 });
    const theirs = await bob.place({ side: 'sell', price: 1000, qty: 3 });
    const r = await alice.place({ side: 'buy', price: 1000, qty: 5, tif: 'IOC', stp: 'CANCEL_OLDEST' });
    expect(r.events.map((e) => e.type)).toEqual(['accepted', 'canceled', 'trade', 'canceled']);
    expect(r.events[1]).toMatchObject({ orderId: own.order.orderId, reason: 'SELF_TRADE', qty: 2 });
    expect(r.events[3]).toMatchObject({ orderId: r.order.orderId, reason: 'UNFILLED', qty: 2 });
    expect(r.order).toMatchObject({ tif: 'IOC', qty: 5, filledQty: 3, remainingQty: 0, status: 'canceled', reason: 'UNFILLED' });
    expect(await alice.order(own.order.orderId)).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE' });
    expect(await bob.order(theirs.order.orderId)).toMatchObject({ status: 'filled', filledQty: 3 });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });
});

describe('order views against the events of their own answers, under a seeded random flow', () => {
  it('each answer (POST, DELETE, PATCH; every tif and stp, three users) holds its order as the view before it and its own events leave it, and GET then agrees', async () => {
    const r = rng(20240611);
    const pick = <T,>(a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
    const users = [
      { name: 'alice', client: alice },
      { name: 'bob', client: bob },
      { name: 'carol', client: carol },
    ];
    const mine: { u: (typeof users)[number]; id: number }[] = [];
    const mismatches: string[] = [];
    const counts = { post: 0, cancel: 0, amend: 0, refused: 0 };
    for (let i = 0; i < 400; i++) {
      const x = r();
      let res;
      let prior: OrderView | undefined;
      let id: number;
      let u: (typeof users)[number];
      if (x < 0.55 || mine.length === 0) {
        u = pick(users);
        const type = r() < 0.15 ? 'market' : 'limit';
        const o: OrderRequest = { side: pick(['buy', 'sell'] as const), qty: 1 + Math.floor(r() * 10), type, stp: pick(['NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] as const) };
        if (type === 'limit') {
          o.price = 995 + Math.floor(r() * 10);
          o.tif = pick(['GTC', 'GTC', 'GTC', 'IOC', 'FOK', 'POST'] as const);
        }
        if (r() < 0.3) o.clientOrderId = `c-${i}`;
        res = await u.client.post(o);
        expect(res.status, res.text).toBe(200);
        id = res.body.order?.orderId as number;
        mine.push({ u, id });
        counts.post++;
      } else {
        ({ u, id } = pick(mine));
        prior = await u.client.order(id);
        if (x < 0.7) {
          res = await u.client.cancel(id);
          counts.cancel++;
        } else {
          const y = r();
          const change = y < 0.4 ? { qty: 1 + Math.floor(r() * 12) } : y < 0.7 ? { price: 995 + Math.floor(r() * 10) } : { qty: 1 + Math.floor(r() * 12), price: 995 + Math.floor(r() * 10) };
          res = await u.client.amend(id, change);
          counts.amend++;
        }
        if (res.status !== 200) {
          // Refused (404 for an order that has ended, 409 for an amendment that changes nothing
          // or a post-only order that would cross): nothing changed.
          expect([404, 409], res.text).toContain(res.status);
          const still = await u.client.order(id);
          if (JSON.stringify(still) !== JSON.stringify(prior)) mismatches.push(`step ${i}: refused ${res.status} yet order ${id} changed: ${JSON.stringify(prior)} -> ${JSON.stringify(still)}`);
          counts.refused++;
          continue;
        }
      }
      const expected = applyEvents(prior, res.body.events ?? [], id, u.name);
      if (JSON.stringify(sortKeys(res.body.order)) !== JSON.stringify(sortKeys(expected))) {
        mismatches.push(`step ${i}: answer ${JSON.stringify(res.body.order)} but its events leave ${JSON.stringify(expected)} (events ${JSON.stringify(res.body.events)})`);
      }
      const got = await u.client.order(id);
      if (JSON.stringify(sortKeys(got)) !== JSON.stringify(sortKeys(res.body.order))) mismatches.push(`step ${i}: GET ${JSON.stringify(got)} differs from the answer ${JSON.stringify(res.body.order)}`);
    }
    expect(mismatches.slice(0, 5)).toEqual([]);
    // The flow did exercise each kind of request (and refusals).
    expect(Math.min(counts.post, counts.cancel, counts.amend, counts.refused)).toBeGreaterThan(10);
  }, 30_000);
});

describe('an answer made durable in one group commit with later commands', () => {
  // README (REST API): a resubmission "After a restart, the outcome's `order` is the order as
  // recovered (one that has left the order history: as its own command's events left it, as first
  // answered)": the first answer's order is the order as its own command's events left it. With
  // `batch` durability (group commit), the gateway's view holds, by the time the command is
  // durable, the commands made durable by the same sync after it: an answer read from that view
  // said `filled` (filledQty 10, bob's trade time) while its events were `accepted` and `added`
  // only, and a client resubmitting her clientOrderId was told `filled` before a restart and `open`
  // (filledQty 0) after it. The feed now copies the order at the end of its own command's events.
  it('a POST answer shows its order as its own command left it, not as a later command of the same group commit did (open, its events holding no trade); the same resubmission answers alike before and after a restart', async () => {
    const g = gatedIO();
    const dataDir = tmpDir();
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir, apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT], orderHistory: 1 });
    const first = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io } });
    let second: Awaited<ReturnType<typeof startServer>> | undefined;
    try {
      const actor = first.engine.actor(SYM);
      if (actor === undefined) throw new Error('no actor');
      const a = new Client(first.url, ALICE);
      // Carol's order takes the logs' sync (held by the test); alice's and bob's batches are then
      // processed, and their syncs wait for it: one sync (group commit) makes both durable.
      g.gate.holdAll = true;
      const p0 = new Client(first.url, CAROL).post({ side: 'buy', price: 500, qty: 1 });
      await until(() => actor.processedSeq >= 1 && g.held() > 0, "carol's order processed, its sync held");
      const p1 = a.post({ side: 'sell', price: 1000, qty: 10, clientOrderId: 'grouped-1' });
      await until(() => actor.processedSeq >= 2, "alice's order processed");
      const p2 = new Client(first.url, BOB).post({ side: 'buy', price: 1000, qty: 10 });
      await until(() => actor.processedSeq >= 3, "bob's crossing order processed");
      g.gate.holdAll = false;
      g.release();
      expect((await p0).status).toBe(200);
      const r1 = await p1;
      expect((await p2).status).toBe(200);
      expect(r1.status, r1.text).toBe(200);
      const events = r1.body.events ?? [];
      expect(events.map((e) => e.type)).toEqual(['accepted', 'added']);
      const accepted = events[0];
      // The order as its own command's events leave it.
      const asItsEventsLeftIt = { orderId: r1.body.order?.orderId, status: 'open', qty: 10, filledQty: 0, remainingQty: 10, updatedAt: accepted?.ts };
      const pick = (o: OrderView | undefined): Record<string, unknown> => ({ orderId: o?.orderId, status: o?.status, qty: o?.qty, filledQty: o?.filledQty, remainingQty: o?.remainingQty, updatedAt: o?.updatedAt });
      const live = await a.post({ side: 'sell', price: 1000, qty: 10, clientOrderId: 'grouped-1' });
      expect(live.body.duplicate).toBe(true);
      await first.close();
      // After a restart (orderHistory 1: alice's filled order has left the history).
      second = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT } });
      const again = await new Client(second.url, ALICE).post({ side: 'sell', price: 1000, qty: 10, clientOrderId: 'grouped-1' });
      expect(again.body.duplicate).toBe(true);
      expect({ firstAnswer: pick(r1.body.order), liveResubmission: pick(live.body.order), afterRestart: pick(again.body.order) }).toEqual({
        firstAnswer: asItsEventsLeftIt,
        liveResubmission: asItsEventsLeftIt,
        afterRestart: asItsEventsLeftIt,
      });
    } finally {
      g.gate.holdAll = false;
      g.release();
      await first.close();
      await second?.close();
    }
  });
});

describe('HTTP details', () => {
  it('a body of application/json with a charset is taken; a body of exactly bodyLimit bytes is taken, one byte more is 413 BODY_TOO_LARGE', async () => {
    await server.close();
    server = await start({ bodyLimit: 1024 });
    const body = JSON.stringify({ symbol: SYM, side: 'buy', type: 'limit', price: 1000, qty: 1 });
    const charset = await request(server.url, 'POST', '/v1/orders', { key: ALICE, raw: body, contentType: 'application/json; charset=utf-8' });
    expect(charset.status, charset.text).toBe(200);
    // JSON allows whitespace after the value: padded to the limit exactly.
    const exact = body + ' '.repeat(1024 - body.length);
    const atLimit = await request(server.url, 'POST', '/v1/orders', { key: ALICE, raw: exact, contentType: 'application/json' });
    expect(atLimit.status, atLimit.text).toBe(200);
    const over = await request(server.url, 'POST', '/v1/orders', { key: ALICE, raw: `${exact} `, contentType: 'application/json' });
    expect(over.status, over.text).toBe(413);
    expect(over.body.error?.code).toBe('BODY_TOO_LARGE');
    // Two orders taken, the one refused not.
    expect(await book(server.url)).toMatchObject({ bids: [[1000, 2]] });
  });
});

describe('503 BACKPRESSURE when too many commands wait for the disk', () => {
  it('a POST, DELETE or PATCH past maxPending commands not durable is 503 BACKPRESSURE with Retry-After: 1, takes nothing (no order id, the clientOrderId free), and passes once the disk caught up', async () => {
    const g = gatedIO();
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const s = await startServer(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io, maxPending: 1 } });
    try {
      const actor = s.engine.actor(SYM);
      if (actor === undefined) throw new Error('no actor');
      const a = new Client(s.url, ALICE);
      const resting = await a.place({ side: 'buy', price: 1000, qty: 5 });
      g.gate.holdAll = true;
      const first = a.post({ side: 'buy', price: 1001, qty: 1 });
      await until(() => actor.processedSeq >= 2 && g.held() > 0, 'the first order processed, its sync held');
      const refused = [
        await a.post({ side: 'buy', price: 1002, qty: 1, clientOrderId: 'waits-for-disk' }),
        await a.cancel(resting.order.orderId),
        await a.amend(resting.order.orderId, { price: 1003 }),
        await a.amend(resting.order.orderId, { qty: 2 }),
      ];
      for (const r of refused) {
        expect(r.status, r.text).toBe(503);
        expect(r.body.error?.code).toBe('BACKPRESSURE');
        expect(r.headers.get('retry-after')).toBe('1');
      }
      expect(actor.lastSubmittedSeq).toBe(2);
      g.gate.holdAll = false;
      g.release();
      expect((await first).status).toBe(200);
      // Nothing of the refused requests was taken: the resting order as it was, the next id 3.
      expect(await a.order(resting.order.orderId)).toEqual(resting.order);
      const retried = await a.post({ side: 'buy', price: 1002, qty: 1, clientOrderId: 'waits-for-disk' });
      expect(retried.status, retried.text).toBe(200);
      expect(retried.body.duplicate).toBeUndefined();
      expect(retried.body.order?.orderId).toBe(3);
    } finally {
      g.gate.holdAll = false;
      g.release();
      await s.close();
    }
  });
});

describe('configuration', () => {
  it('an environment variable set to the empty string counts as unset (the default, or the config file, is in force)', () => {
    const env = Object.fromEntries(
      ['GX3_HOST', 'GX3_PORT', 'GX3_DATA_DIR', 'GX3_DURABILITY', 'GX3_CODEC', 'GX3_INSTRUMENTS', 'GX3_API_KEYS', 'GX3_BUS', 'GX3_RATE_LIMIT', 'GX3_RATE_BURST', 'GX3_LOG_LEVEL', 'GX3_BODY_LIMIT', 'GX3_CLIENT_ORDER_ID_WINDOW', 'GX3_RECENT_TRADES', 'GX3_ORDER_HISTORY', 'GX3_REQUEST_TIMEOUT_MS', 'GX3_WS_HEARTBEAT_MS', 'GX3_NATS_STREAM_PREFIX', 'GX3_NATS_SUBJECT_PREFIX', 'GX3_CONFIG'].map((k) => [k, '']),
    );
    const c = loadConfig([], env);
    expect({ ...c, help: undefined }).toEqual({ ...DEFAULTS, help: undefined });
  });

  it('symbols: 32 characters of A-Z 0-9 . _ - are served (in bodies and paths), 33 are not; LOCK and LOCK.* are refused, LOCKS and LOCK-1 are not', async () => {
    const long = `A.B_C-${'Z'.repeat(26)}`;
    expect(long).toHaveLength(32);
    await server.close();
    server = await start({ instruments: [{ symbol: long, minPrice: 1, maxPrice: 100, maxQty: 10 }] });
    const a = new Client(server.url, ALICE);
    const placed = await a.post({ symbol: long, side: 'sell', price: 50, qty: 2 });
    expect(placed.status, placed.text).toBe(200);
    const id = placed.body.order?.orderId as number;
    expect((await a.get(id, long)).body.order).toMatchObject({ symbol: long, remainingQty: 2 });
    expect(await book(server.url, undefined, long)).toMatchObject({ asks: [[50, 2]] });
    expect((await a.amend(id, { qty: 1 }, long)).status).toBe(200);
    expect((await a.cancel(id, long)).status).toBe(200);

    const refused = (symbol: string): ConfigError | undefined => {
      try {
        resolveConfig({ instruments: `${symbol}:1:100:10` });
      } catch (err) {
        if (err instanceof ConfigError) return err;
        throw err;
      }
      return undefined;
    };
    expect(refused(`${long}Z`)?.code).toBe('INVALID_CONFIG');
    expect(refused('LOCK')?.message).toMatch(/instruments/);
    expect(refused('LOCK.A')?.message).toMatch(/instruments/);
    expect(refused('LOCKS')).toBeUndefined();
    expect(refused('LOCK-1')).toBeUndefined();
  });
});
