// The REST API through real sockets (fetch against a server on 127.0.0.1): order entry of every
// kind (limit, market, each time in force, each self-trade prevention, client order ids), cancels,
// amendments (a reduction keeps time priority, a price change or an increase does not), queries
// of orders, the aggregated book and the recent trades, the instruments, health and metrics.
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { book, Client, removeTmpDirs, request, SYM, start, TEST_INSTRUMENT, trades, ALICE, BOB, CAROL, type TestServer } from './helpers.js';

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

describe('POST /v1/orders', () => {
  it('places a limit order that rests (GTC by default) and answers with the order and its events', async () => {
    const r = await alice.post({ side: 'buy', price: 1000, qty: 10 });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(r.body.order).toMatchObject({ orderId: 1, symbol: SYM, user: 'alice', side: 'buy', type: 'limit', tif: 'GTC', price: 1000, qty: 10, filledQty: 0, remainingQty: 10, status: 'open' });
    expect(r.body.events?.map((e) => e.type)).toEqual(['accepted', 'added']);
    expect(r.body.events?.[0]).toMatchObject({ type: 'accepted', orderId: 1, side: 'buy', price: 1000, qty: 10, tif: 'GTC', orderType: 'limit' });
    expect(r.body.duplicate).toBeUndefined();
    expect(await book(server.url)).toMatchObject({ bids: [[1000, 10]], asks: [] });
  });

  it('matches a crossing limit order at the maker price, and the rest of it rests', async () => {
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 4 });
    const r = await bob.place({ side: 'buy', price: 1010, qty: 10 });
    expect(r.events.map((e) => e.type)).toEqual(['accepted', 'trade', 'added']);
    expect(r.events[1]).toMatchObject({ type: 'trade', price: 1000, qty: 4, takerOrderId: r.order.orderId, takerSide: 'buy' });
    // Trading is anonymous: the taker's answer does not name the maker's order or user.
    expect(r.events[1]).not.toHaveProperty('makerOrderId');
    expect(r.events[1]).not.toHaveProperty('makerUserId');
    expect(r.events[1]).not.toHaveProperty('makerRemaining');
    expect(await alice.order(maker.order.orderId)).toMatchObject({ status: 'filled', filledQty: 4 });
    expect(r.order).toMatchObject({ status: 'partially_filled', filledQty: 4, remainingQty: 6, price: 1010 });
    expect(await book(server.url)).toMatchObject({ bids: [[1010, 6]], asks: [] });
  });

  it('fills a market order against the best prices and cancels what is left (a market order is IOC)', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 3 });
    await alice.place({ side: 'sell', price: 1001, qty: 3 });
    const r = await bob.place({ side: 'buy', type: 'market', qty: 10 });
    expect(r.order).toMatchObject({ type: 'market', tif: 'IOC', price: 0, qty: 10, filledQty: 6, remainingQty: 0, status: 'canceled', reason: 'UNFILLED' });
    expect(r.events.filter((e) => e.type === 'trade').map((e) => [e.type === 'trade' ? e.price : 0, e.type === 'trade' ? e.qty : 0])).toEqual([
      [1000, 3],
      [1001, 3],
    ]);
    expect(r.events.at(-1)).toMatchObject({ type: 'canceled', reason: 'UNFILLED', qty: 4 });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });

  it('fills a market order completely when the book holds enough', async () => {
    await alice.place({ side: 'buy', price: 900, qty: 5 });
    const r = await bob.place({ side: 'sell', type: 'market', qty: 5 });
    expect(r.order).toMatchObject({ status: 'filled', filledQty: 5, remainingQty: 0 });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });

  it('IOC: fills what it can now and cancels the rest, never resting', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 2 });
    const r = await bob.place({ side: 'buy', price: 1000, qty: 5, tif: 'IOC' });
    expect(r.order).toMatchObject({ tif: 'IOC', filledQty: 2, remainingQty: 0, status: 'canceled', reason: 'UNFILLED' });
    expect(r.events.map((e) => e.type)).toEqual(['accepted', 'trade', 'canceled']);
    const none = await bob.place({ side: 'buy', price: 1000, qty: 5, tif: 'IOC' });
    expect(none.order).toMatchObject({ filledQty: 0, status: 'canceled', reason: 'UNFILLED' });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });

  it('FOK: rejected with FOK_NOT_FILLABLE when it cannot fill completely (the book untouched), filled when it can', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 3 });
    const no = await bob.place({ side: 'buy', price: 1000, qty: 4, tif: 'FOK' });
    expect(no.events.map((e) => e.type)).toEqual(['rejected']);
    expect(no.events[0]).toMatchObject({ reason: 'FOK_NOT_FILLABLE' });
    expect(no.order).toMatchObject({ status: 'rejected', reason: 'FOK_NOT_FILLABLE', filledQty: 0, remainingQty: 0 });
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 3]] });
    const yes = await bob.place({ side: 'buy', price: 1000, qty: 3, tif: 'FOK' });
    expect(yes.order).toMatchObject({ tif: 'FOK', status: 'filled', filledQty: 3 });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });

  it("a rejected order's view shows what was asked (side, price, quantity, time in force), in the answer and by GET", async () => {
    const r = await bob.place({ side: 'sell', price: 1500, qty: 4, tif: 'FOK' });
    expect(r.order).toMatchObject({ status: 'rejected', side: 'sell', type: 'limit', price: 1500, qty: 4, tif: 'FOK', filledQty: 0, remainingQty: 0 });
    expect(await bob.order(r.order.orderId)).toEqual(r.order);
  });

  it('POST (post-only): rests when it does not cross, rejected with POST_ONLY_WOULD_CROSS when it would', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 3 });
    const rests = await bob.place({ side: 'buy', price: 999, qty: 2, tif: 'POST' });
    expect(rests.order).toMatchObject({ tif: 'POST', status: 'open', remainingQty: 2 });
    const crosses = await bob.place({ side: 'buy', price: 1000, qty: 2, tif: 'POST' });
    expect(crosses.order).toMatchObject({ status: 'rejected', reason: 'POST_ONLY_WOULD_CROSS' });
    expect(crosses.events.some((e) => e.type === 'trade')).toBe(false);
    expect(await book(server.url)).toMatchObject({ bids: [[999, 2]], asks: [[1000, 3]] });
  });

  it('stp NONE (the default): a user may trade with themself', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 3 });
    const r = await alice.place({ side: 'buy', price: 1000, qty: 3 });
    expect(r.events.filter((e) => e.type === 'trade')).toHaveLength(1);
    expect(r.order.status).toBe('filled');
  });

  it('stp CANCEL_NEWEST: the incoming order is canceled, the resting one stays', async () => {
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.place({ side: 'buy', price: 1000, qty: 4, stp: 'CANCEL_NEWEST' });
    expect(r.events.some((e) => e.type === 'trade')).toBe(false);
    expect(r.order).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE', filledQty: 0 });
    expect(await alice.order(maker.order.orderId)).toMatchObject({ status: 'open', remainingQty: 10 });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [[1000, 10]] });
  });

  it('stp CANCEL_OLDEST: the resting order is canceled and the incoming one goes on (and rests)', async () => {
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.place({ side: 'buy', price: 1000, qty: 4, stp: 'CANCEL_OLDEST' });
    expect(r.events.some((e) => e.type === 'trade')).toBe(false);
    expect(r.order).toMatchObject({ status: 'open', remainingQty: 4 });
    expect(await alice.order(maker.order.orderId)).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE', remainingQty: 0 });
    expect(await book(server.url)).toMatchObject({ bids: [[1000, 4]], asks: [] });
  });

  it('stp CANCEL_BOTH: both orders are canceled', async () => {
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.place({ side: 'buy', price: 1000, qty: 4, stp: 'CANCEL_BOTH' });
    expect(r.order).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE' });
    expect(await alice.order(maker.order.orderId)).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE' });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });

  it('stp DECREMENT_CANCEL: the resting order shrinks by the smaller quantity, the incoming one is canceled', async () => {
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.place({ side: 'buy', price: 1000, qty: 4, stp: 'DECREMENT_CANCEL' });
    expect(r.events.some((e) => e.type === 'trade')).toBe(false);
    expect(r.events.find((e) => e.type === 'amended')).toMatchObject({ orderId: maker.order.orderId, kind: 'SELF_TRADE_DECREMENT', qty: 6 });
    expect(r.order).toMatchObject({ status: 'canceled', reason: 'SELF_TRADE' });
    expect(await alice.order(maker.order.orderId)).toMatchObject({ status: 'open', remainingQty: 6 });
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 6]] });
  });

  it('stp only acts between orders of the same user: another user trades', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await bob.place({ side: 'buy', price: 1000, qty: 4, stp: 'CANCEL_NEWEST' });
    expect(r.order).toMatchObject({ status: 'filled', filledQty: 4 });
  });

  it('keeps the clientOrderId on the order (in the answer and by GET)', async () => {
    const r = await alice.place({ side: 'buy', price: 1000, qty: 1, clientOrderId: 'my-order_1.a:b' });
    expect(r.order.clientOrderId).toBe('my-order_1.a:b');
    expect((await alice.order(r.order.orderId)).clientOrderId).toBe('my-order_1.a:b');
    const plain = await alice.place({ side: 'buy', price: 1000, qty: 1 });
    expect(plain.order.clientOrderId).toBeUndefined();
  });

  it('the same clientOrderId of two users are different orders', async () => {
    const a = await alice.place({ side: 'buy', price: 1000, qty: 1, clientOrderId: 'same' });
    const b = await bob.place({ side: 'buy', price: 1000, qty: 1, clientOrderId: 'same' });
    expect(b.order.orderId).not.toBe(a.order.orderId);
    expect(b.order.user).toBe('bob');
  });
});

describe('DELETE /v1/orders/{symbol}/{orderId}', () => {
  it('cancels a resting order: its remaining quantity leaves the book; a second cancel is 404', async () => {
    const a = await alice.place({ side: 'buy', price: 1000, qty: 10 });
    await alice.place({ side: 'buy', price: 1000, qty: 5 });
    const r = await alice.cancel(a.order.orderId);
    expect(r.status).toBe(200);
    expect(r.body.order).toMatchObject({ orderId: a.order.orderId, status: 'canceled', reason: 'USER', remainingQty: 0 });
    expect(r.body.events).toEqual([expect.objectContaining({ type: 'canceled', orderId: a.order.orderId, reason: 'USER', qty: 10 })]);
    expect(await book(server.url)).toMatchObject({ bids: [[1000, 5]] });
    const again = await alice.cancel(a.order.orderId);
    expect(again.status).toBe(404);
    expect(again.body.error?.code).toBe('ORDER_NOT_FOUND');
  });

  it('accepts a cancel (and a GET) that says content-type: application/json but sends no body', async () => {
    const a = await alice.place({ side: 'buy', price: 1000, qty: 3 });
    const got = await request(server.url, 'GET', `/v1/orders/${SYM}/${a.order.orderId}`, { key: ALICE, contentType: 'application/json' });
    expect(got.status).toBe(200);
    const r = await request(server.url, 'DELETE', `/v1/orders/${SYM}/${a.order.orderId}`, { key: ALICE, contentType: 'application/json' });
    expect(r.status, r.text).toBe(200);
    expect(r.body.order).toMatchObject({ status: 'canceled' });
  });

  it('cancels the rest of a partially filled order; a filled order cannot be canceled', async () => {
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    await bob.place({ side: 'buy', price: 1000, qty: 4 });
    const r = await alice.cancel(a.order.orderId);
    expect(r.body.order).toMatchObject({ status: 'canceled', filledQty: 4, remainingQty: 0 });
    expect(r.body.events?.[0]).toMatchObject({ type: 'canceled', qty: 6 });
    const filled = await alice.place({ side: 'sell', price: 1000, qty: 1 });
    await bob.place({ side: 'buy', price: 1000, qty: 1 });
    const late = await alice.cancel(filled.order.orderId);
    expect(late.status).toBe(404);
    expect(late.body.error?.code).toBe('ORDER_NOT_FOUND');
  });
});

describe('PATCH /v1/orders/{symbol}/{orderId}', () => {
  it('a smaller quantity at the same price keeps time priority (REDUCE)', async () => {
    const first = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const second = await bob.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.amend(first.order.orderId, { qty: 5 });
    expect(r.status).toBe(200);
    expect(r.body.events).toEqual([expect.objectContaining({ type: 'amended', kind: 'REDUCE', orderId: first.order.orderId, qty: 5, price: 1000 })]);
    expect(r.body.order).toMatchObject({ qty: 5, remainingQty: 5, price: 1000, status: 'open' });
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 15]] });
    // The reduced order is still first in line.
    const taker = await carol.place({ side: 'buy', price: 1000, qty: 5 });
    const trade = taker.events.find((e) => e.type === 'trade');
    expect(trade).toMatchObject({ qty: 5 });
    expect(await alice.order(first.order.orderId)).toMatchObject({ status: 'filled' });
    expect(await bob.order(second.order.orderId)).toMatchObject({ status: 'open', remainingQty: 10 });
  });

  it('a larger quantity loses time priority (REPLACE)', async () => {
    const first = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const second = await bob.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.amend(first.order.orderId, { qty: 20 });
    expect(r.status).toBe(200);
    expect(r.body.events?.find((e) => e.type === 'amended')).toMatchObject({ kind: 'REPLACE', qty: 20 });
    expect(r.body.order).toMatchObject({ qty: 20, remainingQty: 20, status: 'open' });
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 30]] });
    const taker = await carol.place({ side: 'buy', price: 1000, qty: 5 });
    expect(taker.events.find((e) => e.type === 'trade')).toMatchObject({ qty: 5 });
    expect(await bob.order(second.order.orderId)).toMatchObject({ filledQty: 5, remainingQty: 5 });
    expect(await alice.order(first.order.orderId)).toMatchObject({ filledQty: 0, remainingQty: 20 });
  });

  it('a new price moves the order to its new level (and it loses priority)', async () => {
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const other = await bob.place({ side: 'sell', price: 1005, qty: 1 });
    const r = await alice.amend(a.order.orderId, { price: 1005 });
    expect(r.status).toBe(200);
    expect(r.body.order).toMatchObject({ price: 1005, remainingQty: 10, status: 'open' });
    expect(await book(server.url)).toMatchObject({ asks: [[1005, 11]] });
    const taker = await carol.place({ side: 'buy', price: 1005, qty: 1 });
    expect(taker.events.find((e) => e.type === 'trade')).toMatchObject({ price: 1005, qty: 1 });
    expect(await bob.order(other.order.orderId)).toMatchObject({ status: 'filled' });
    expect(await alice.order(a.order.orderId)).toMatchObject({ filledQty: 0, remainingQty: 10 });
  });

  it('a new price and quantity at once; a price that crosses trades at once', async () => {
    await bob.place({ side: 'buy', price: 990, qty: 3 });
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.amend(a.order.orderId, { price: 990, qty: 8 });
    expect(r.status).toBe(200);
    expect(r.body.events?.map((e) => e.type)).toEqual(['amended', 'trade', 'added']);
    expect(r.body.order).toMatchObject({ price: 990, filledQty: 3, remainingQty: 5, status: 'partially_filled' });
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [[990, 5]] });
  });

  it('an amendment that changes nothing is refused (409 REJECTED), the order unchanged', async () => {
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    const r = await alice.amend(a.order.orderId, { qty: 10, price: 1000 });
    expect(r.status).toBe(409);
    expect(r.body.error?.code).toBe('REJECTED');
    expect(r.body.error?.message).toMatch(/AMEND_NO_CHANGE/);
    expect(await alice.order(a.order.orderId)).toMatchObject({ remainingQty: 10, price: 1000 });
  });

  it('cannot amend an order that no longer rests (404)', async () => {
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    await alice.cancel(a.order.orderId);
    const r = await alice.amend(a.order.orderId, { qty: 1 });
    expect(r.status).toBe(404);
    expect(r.body.error?.code).toBe('ORDER_NOT_FOUND');
  });
});

describe('GET /v1/orders/{symbol}/{orderId}', () => {
  it('answers the order as it is now: open, partially filled, filled, canceled', async () => {
    const a = await alice.place({ side: 'sell', price: 1000, qty: 10, clientOrderId: 'q1' });
    expect(await alice.order(a.order.orderId)).toEqual(a.order);
    await bob.place({ side: 'buy', price: 1000, qty: 4 });
    const partial = await alice.order(a.order.orderId);
    expect(partial).toMatchObject({ orderId: a.order.orderId, symbol: SYM, user: 'alice', side: 'sell', type: 'limit', tif: 'GTC', price: 1000, qty: 10, filledQty: 4, remainingQty: 6, status: 'partially_filled', clientOrderId: 'q1' });
    expect(partial.updatedAt).toBeGreaterThanOrEqual(a.order.updatedAt);
    await bob.place({ side: 'buy', price: 1000, qty: 6 });
    expect(await alice.order(a.order.orderId)).toMatchObject({ filledQty: 10, remainingQty: 0, status: 'filled' });
    const b = await bob.place({ side: 'buy', price: 900, qty: 1 });
    await bob.cancel(b.order.orderId);
    expect(await bob.order(b.order.orderId)).toMatchObject({ status: 'canceled', reason: 'USER' });
  });
});

describe('GET /v1/book/{symbol}', () => {
  it('aggregates the orders of a price level, best levels first, limited by depth', async () => {
    await alice.place({ side: 'buy', price: 1000, qty: 1 });
    await bob.place({ side: 'buy', price: 1000, qty: 2 });
    await alice.place({ side: 'buy', price: 999, qty: 3 });
    await alice.place({ side: 'buy', price: 1001, qty: 4 });
    await alice.place({ side: 'sell', price: 1010, qty: 5 });
    await bob.place({ side: 'sell', price: 1010, qty: 6 });
    await bob.place({ side: 'sell', price: 1005, qty: 7 });
    await bob.place({ side: 'sell', price: 1020, qty: 8 });
    const full = await request(server.url, 'GET', `/v1/book/${SYM}`);
    expect(full.status).toBe(200);
    expect(full.body).toMatchObject({
      symbol: SYM,
      bids: [
        [1001, 4],
        [1000, 3],
        [999, 3],
      ],
      asks: [
        [1005, 7],
        [1010, 11],
        [1020, 8],
      ],
    });
    expect(await book(server.url, 2)).toMatchObject({
      bids: [
        [1001, 4],
        [1000, 3],
      ],
      asks: [
        [1005, 7],
        [1010, 11],
      ],
    });
    expect(await book(server.url, 1)).toMatchObject({ bids: [[1001, 4]], asks: [[1005, 7]] });
  });

  it("the book's seq grows with each change of a level, not with orders that change none", async () => {
    const s0 = (await book(server.url)).seq;
    await alice.place({ side: 'buy', price: 1000, qty: 1 });
    const s1 = (await book(server.url)).seq;
    expect(s1).toBe(s0 + 1);
    await alice.place({ side: 'buy', price: 2000, qty: 1, tif: 'IOC' }); // no liquidity: changes no level
    expect((await book(server.url)).seq).toBe(s1);
  });

  it('an empty book; depth out of range (400 naming depth); an unknown symbol (404)', async () => {
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
    for (const q of ['0', '1001', 'abc', '-1', '1.5']) {
      const r = await request(server.url, 'GET', `/v1/book/${SYM}?depth=${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error?.code).toBe('VALIDATION');
      expect(r.body.error?.message).toMatch(/^depth: /);
    }
    const r = await request(server.url, 'GET', '/v1/book/NOPE');
    expect(r.status).toBe(404);
    expect(r.body.error?.code).toBe('UNKNOWN_SYMBOL');
  });
});

describe('GET /v1/trades/{symbol}', () => {
  it('answers the latest trades, newest first, limited by limit', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 10 });
    await bob.place({ side: 'buy', price: 1000, qty: 1 });
    await bob.place({ side: 'buy', price: 1000, qty: 2 });
    await alice.place({ side: 'buy', price: 900, qty: 5 });
    await bob.place({ side: 'sell', price: 900, qty: 3 });
    const all = await trades(server.url);
    expect(all.map((t) => [t.price, t.qty, t.takerSide])).toEqual([
      [900, 3, 'sell'],
      [1000, 2, 'buy'],
      [1000, 1, 'buy'],
    ]);
    expect(all.every((t) => t.symbol === SYM)).toBe(true);
    const ids = all.map((t) => t.id);
    expect([...ids].sort((a, b) => b - a)).toEqual(ids);
    expect(new Set(ids).size).toBe(3);
    expect(await trades(server.url, 2)).toEqual(all.slice(0, 2));
    expect(await trades(server.url, 1)).toEqual(all.slice(0, 1));
  });

  it("a trade's id is its event's sequence number", async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 1 });
    const r = await bob.place({ side: 'buy', price: 1000, qty: 1 });
    const t = r.events.find((e) => e.type === 'trade');
    expect((await trades(server.url, 1))[0]?.id).toBe(t?.eventSeq);
  });

  it('no trades yet; limit out of range (400 naming limit); an unknown symbol (404)', async () => {
    expect(await trades(server.url)).toEqual([]);
    const bad = await request(server.url, 'GET', `/v1/trades/${SYM}?limit=0`);
    expect(bad.status).toBe(400);
    expect(bad.body.error?.message).toMatch(/^limit: /);
    const unknown = await request(server.url, 'GET', '/v1/trades/NOPE');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error?.code).toBe('UNKNOWN_SYMBOL');
  });
});

describe('GET /v1/instruments, unknown routes', () => {
  it('lists the configured instruments', async () => {
    const r = await request(server.url, 'GET', '/v1/instruments');
    expect(r.status).toBe(200);
    expect(r.body.instruments).toEqual([TEST_INSTRUMENT]);
  });

  it('answers 404 NOT_FOUND for a route that does not exist', async () => {
    const r = await request(server.url, 'GET', '/v1/nothing-here');
    expect(r.status).toBe(404);
    expect(r.body.error?.code).toBe('NOT_FOUND');
  });
});

describe('health', () => {
  it('/health: live, ready, and per symbol its watermarks', async () => {
    await alice.place({ side: 'buy', price: 1000, qty: 1 });
    await alice.place({ side: 'buy', price: 1000, qty: 1 });
    const r = await request(server.url, 'GET', '/health');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: 'ok', live: true, ready: true });
    expect(r.body.symbols?.[SYM]).toMatchObject({ halted: false, processedSeq: 2, durableSeq: 2, queued: 0 });
  });

  it('/health/live and /health/ready', async () => {
    const live = await request(server.url, 'GET', '/health/live');
    expect(live.status).toBe(200);
    expect(live.body).toEqual({ live: true });
    const ready = await request(server.url, 'GET', '/health/ready');
    expect(ready.status).toBe(200);
    expect(ready.body).toEqual({ ready: true, status: 'ok' });
  });
});

describe('GET /metrics', () => {
  it('answers Prometheus text with the gx3_ metrics, counting what happened', async () => {
    await alice.place({ side: 'sell', price: 1000, qty: 1 });
    await bob.place({ side: 'buy', price: 1000, qty: 1 });
    await bob.cancel(99);
    const r = await request(server.url, 'GET', '/metrics');
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/plain/);
    const lines = r.text.split('\n');
    const value = (prefix: string): number | undefined => {
      const line = lines.find((l) => l.startsWith(prefix + ' '));
      return line === undefined ? undefined : Number(line.slice(prefix.length + 1));
    };
    expect(r.text).toContain('# TYPE gx3_http_requests_total counter');
    expect(value('gx3_http_requests_total{method="POST",route="/v1/orders",status="200"}')).toBe(2);
    expect(value('gx3_http_requests_total{method="DELETE",route="/v1/orders/:symbol/:orderId",status="404"}')).toBe(1);
    expect(value('gx3_commands_total{kind="limit",outcome="ok"}')).toBe(2);
    expect(value(`gx3_engine_durable_seq{symbol="${SYM}"}`)).toBe(2);
    expect(value(`gx3_engine_processed_seq{symbol="${SYM}"}`)).toBe(2);
    expect(value(`gx3_engine_halted{symbol="${SYM}"}`)).toBe(0);
    expect(value(`gx3_book_orders{symbol="${SYM}"}`)).toBe(0);
    expect(value('gx3_command_durable_seconds_count{kind="limit"}')).toBe(2);
    expect(r.text).toMatch(/^gx3_process_/m);
    expect(r.text).toContain('gx3_ws_connections');
    expect(r.text).toContain('gx3_rate_limited_total');
  });
});
