// The WebSocket API at /v1/ws through real sockets (the ws package's client): authentication (the
// x-api-key header, ?apiKey=, an auth frame; a bad key refused at the upgrade with 401), order entry
// with request ids (one order or an array per frame, a result or an error per order), cancels and
// amendments, the subscriptions (trades; the book: a snapshot, then updates numbered one by one
// which, applied to the snapshot, give the book GET /v1/book answers; a user's own order updates and
// nobody else's), and bad frames answered with errors on a connection that stays usable.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, book, CAROL, Client, engineOverrides, removeTmpDirs, start, SYM, trades, until, UpgradeRefused, WsClient, wsUrl, type TestServer, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

let server: TestServer;
const sockets: WsClient[] = [];

beforeAll(async () => {
  server = await start({ bodyLimit: 2048 });
});

afterAll(async () => {
  for (const s of sockets) await s.close();
  await server.close();
});

async function connect(query = '', headers: Record<string, string> = {}): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(server.url, query), headers);
  sockets.push(c);
  return c;
}

const limit = (side: 'buy' | 'sell', price: number, qty: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ symbol: SYM, side, type: 'limit', price, qty, ...extra });

/** Waits until everything the server sent `c` before now has arrived (a ping's pong comes after it). */
async function drained(c: WsClient): Promise<void> {
  expect(await c.call({ op: 'ping' })).toMatchObject({ pong: true });
}

describe('authentication', () => {
  it('by the x-api-key header of the upgrade request', async () => {
    const c = await connect('', { 'x-api-key': ALICE });
    const r = await c.call({ op: 'order', order: limit('buy', 500, 1) });
    expect(r).toMatchObject({ ok: true, order: { user: 'alice', status: 'open' } });
  });

  it('by ?apiKey= in the URL', async () => {
    const c = await connect(`?apiKey=${BOB}`);
    const r = await c.call({ op: 'order', order: limit('buy', 500, 1) });
    expect(r).toMatchObject({ ok: true, order: { user: 'bob' } });
  });

  it('by an auth frame; orders before it are refused (UNAUTHORIZED), a bad key in it is refused on a connection that stays open', async () => {
    const c = await connect();
    const early = await c.call({ op: 'order', order: limit('buy', 500, 1) });
    expect(early).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    const bad = await c.call({ op: 'auth', key: 'wrong-key-000' });
    expect(bad).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED', message: 'unknown API key' } });
    const missing = await c.call({ op: 'auth' });
    expect(missing).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
    expect(await c.call({ op: 'auth', key: CAROL })).toMatchObject({ ok: true, user: 'carol' });
    expect(await c.call({ op: 'order', order: limit('buy', 500, 1) })).toMatchObject({ ok: true, order: { user: 'carol' } });
  });

  it('refuses the upgrade with 401 and the error body for an unknown key, in the header or the URL', async () => {
    for (const [query, headers] of [
      ['', { 'x-api-key': 'wrong-key-000' }],
      ['?apiKey=wrong-key-000', {}],
    ] as const) {
      const err = await WsClient.connect(wsUrl(server.url, query), headers).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(UpgradeRefused);
      expect((err as UpgradeRefused).status).toBe(401);
      expect(JSON.parse((err as UpgradeRefused).body)).toEqual({ error: { code: 'UNAUTHORIZED', message: 'unknown API key' } });
    }
  });

  it('refuses an upgrade on another path with 404', async () => {
    const err = await WsClient.connect(`${server.url.replace('http', 'ws')}/v1/other`).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((err as UpgradeRefused).status).toBe(404);
  });

  it('needs no key for market data, but does for the orders channel', async () => {
    const c = await connect();
    expect(await c.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true, subscribed: true });
    expect(await c.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: false, error: { code: 'UNAUTHORIZED' } });
  });
});

describe('order entry', () => {
  it('one order per frame: the answer carries the request id, the order and its events', async () => {
    const c = await connect('', { 'x-api-key': ALICE });
    c.send({ op: 'order', id: 77, order: limit('sell', 9000, 3, { clientOrderId: 'ws-1' }) });
    const r = await c.next((m) => m.id === 77);
    expect(r).toMatchObject({ id: 77, ok: true, order: { side: 'sell', price: 9000, qty: 3, status: 'open', clientOrderId: 'ws-1' } });
    expect(r.events?.map((e) => e.type)).toEqual(['accepted', 'added']);
    const viaHttp = await new Client(server.url, ALICE).order(r.order?.orderId ?? 0);
    expect(viaHttp).toEqual(r.order);
    // Resubmitted: the original outcome, no second order.
    const again = await c.call({ op: 'order', order: limit('sell', 9000, 3, { clientOrderId: 'ws-1' }) });
    expect(again).toMatchObject({ ok: true, duplicate: true, order: { orderId: r.order?.orderId } });
    const other = await c.call({ op: 'order', order: limit('sell', 9001, 3, { clientOrderId: 'ws-1' }) });
    expect(other).toMatchObject({ ok: false, error: { code: 'DUPLICATE_CLIENT_ORDER_ID' } });
  });

  it('a bad order is answered with an error naming the field', async () => {
    const c = await connect('', { 'x-api-key': ALICE });
    expect(await c.call({ op: 'order', order: limit('buy', 500, 0) })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\.qty: /) as unknown } });
    expect(await c.call({ op: 'order', order: limit('buy', 50, 1) })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\.price: .*band/) as unknown } });
    expect(await c.call({ op: 'order', order: { ...limit('buy', 500, 1), symbol: 'NOPE' } })).toMatchObject({ ok: false, error: { code: 'UNKNOWN_SYMBOL' } });
    expect(await c.call({ op: 'order', order: limit('buy', 500, 1, { extra: 1 }) })).toMatchObject({ ok: false, error: { message: expect.stringMatching(/^order\.extra: /) as unknown } });
    expect(await c.call({ op: 'order' })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order: /) as unknown } });
    // An unsafe integer, as raw JSON text.
    c.send(`{"op":"order","id":"big","order":{"symbol":"${SYM}","side":"buy","type":"limit","price":500,"qty":9007199254740993}}`);
    expect(await c.next((m) => m.id === 'big')).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\.qty: /) as unknown } });
  });

  it('an array of orders per frame: a result per order, in order, an error for each bad one', async () => {
    const c = await connect('', { 'x-api-key': BOB });
    const r = await c.call({
      op: 'order',
      order: [limit('sell', 8000, 2), limit('sell', 8000, 0), { symbol: SYM, side: 'buy', type: 'market', qty: 1 }, { ...limit('sell', 8000, 1), symbol: 'NOPE' }, limit('sell', 8001, 4, { tif: 'POST' })],
    });
    const results = r.results ?? [];
    expect(results).toHaveLength(5);
    // The orders of a frame are taken in order: the market order (2) trades against the first (0), the best ask.
    expect(results[0]).toMatchObject({ ok: true, order: { price: 8000, qty: 2 } });
    expect(results[1]).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order\[1\]\.qty: /) as unknown } });
    expect(results[2]).toMatchObject({ ok: true, order: { type: 'market', status: 'filled' } });
    expect(results[2]?.events?.find((e) => e.type === 'trade')).toMatchObject({ makerOrderId: results[0]?.order?.orderId, price: 8000, qty: 1 });
    expect(results[3]).toMatchObject({ ok: false, error: { code: 'UNKNOWN_SYMBOL', message: expect.stringMatching(/^order\[3\]\.symbol: /) as unknown } });
    expect(results[4]).toMatchObject({ ok: true, order: { price: 8001, tif: 'POST', status: 'open' } });
    const bob = new Client(server.url, BOB);
    expect(await bob.order(results[0]?.order?.orderId ?? 0)).toMatchObject({ user: 'bob', status: 'partially_filled', remainingQty: 1 });
    expect(await bob.order(results[4]?.order?.orderId ?? 0)).toMatchObject({ user: 'bob', status: 'open', remainingQty: 4 });
    expect(await c.call({ op: 'order', order: [] })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^order: /) as unknown } });
  });

  it('cancels and amends, with errors for unknown orders and orders of others', async () => {
    const alice = await connect('', { 'x-api-key': ALICE });
    const bob = await connect('', { 'x-api-key': BOB });
    const placed = await alice.call({ op: 'order', order: limit('sell', 7000, 10) });
    const id = placed.order?.orderId ?? 0;
    const reduced = await alice.call({ op: 'amend', symbol: SYM, orderId: id, qty: 6 });
    expect(reduced).toMatchObject({ ok: true, order: { remainingQty: 6, price: 7000 } });
    expect(reduced.events).toEqual([expect.objectContaining({ type: 'amended', kind: 'REDUCE', qty: 6 })]);
    const moved = await alice.call({ op: 'amend', symbol: SYM, orderId: id, price: 7001, qty: 7 });
    expect(moved).toMatchObject({ ok: true, order: { remainingQty: 7, price: 7001 } });
    expect(await bob.call({ op: 'cancel', symbol: SYM, orderId: id })).toMatchObject({ ok: false, error: { code: 'NOT_OWNER' } });
    expect(await bob.call({ op: 'amend', symbol: SYM, orderId: id, qty: 1 })).toMatchObject({ ok: false, error: { code: 'NOT_OWNER' } });
    expect(await alice.call({ op: 'amend', symbol: SYM, orderId: id })).toMatchObject({ ok: false, error: { code: 'VALIDATION' } });
    expect(await alice.call({ op: 'amend', symbol: SYM, orderId: id, qty: -1 })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^qty: /) as unknown } });
    expect(await alice.call({ op: 'cancel', symbol: SYM, orderId: 'x' })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^orderId: /) as unknown } });
    expect(await alice.call({ op: 'cancel', symbol: SYM, orderId: id, qty: 1 })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^qty: /) as unknown } });
    expect(await alice.call({ op: 'cancel', symbol: 'NOPE', orderId: id })).toMatchObject({ ok: false, error: { code: 'UNKNOWN_SYMBOL' } });
    const canceled = await alice.call({ op: 'cancel', symbol: SYM, orderId: id });
    expect(canceled).toMatchObject({ ok: true, order: { status: 'canceled', reason: 'USER' } });
    expect(await alice.call({ op: 'cancel', symbol: SYM, orderId: id })).toMatchObject({ ok: false, error: { code: 'ORDER_NOT_FOUND' } });
    expect(await alice.call({ op: 'cancel', symbol: SYM, orderId: 999_999 })).toMatchObject({ ok: false, error: { code: 'ORDER_NOT_FOUND' } });
  });
});

describe('subscriptions', () => {
  it('trades: each trade as it happens, as GET /v1/trades reports it; none after unsubscribing', async () => {
    const c = await connect();
    expect(await c.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true, channel: 'trades', symbol: SYM, subscribed: true });
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    await alice.place({ side: 'sell', price: 6000, qty: 2 });
    await alice.place({ side: 'sell', price: 6001, qty: 2 });
    await bob.place({ side: 'buy', type: 'market', qty: 3 });
    const frame = await c.next((m) => m.type === 'trades');
    expect(frame.symbol).toBe(SYM);
    const latest = await trades(server.url, 2);
    expect(frame.trades).toEqual(
      [...latest].reverse().map((t) => ({ id: t.id, price: t.price, qty: t.qty, takerSide: t.takerSide, ts: t.ts })),
    );
    expect(frame.trades?.map((t) => [t.price, t.qty, t.takerSide])).toEqual([
      [6000, 2, 'buy'],
      [6001, 1, 'buy'],
    ]);
    expect(await c.call({ op: 'unsubscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true, subscribed: false });
    await bob.place({ side: 'buy', type: 'market', qty: 1 });
    await drained(c);
    expect(c.all((m) => m.type === 'trades')).toHaveLength(1);
  });

  it('book: a snapshot, then updates numbered one by one that applied to it give the book GET /v1/book answers', async () => {
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    // Something in the book before the snapshot.
    const a = await alice.place({ side: 'buy', price: 3000, qty: 5 });
    await bob.place({ side: 'buy', price: 3000, qty: 2 });
    await bob.place({ side: 'sell', price: 3100, qty: 4 });
    const c = await connect();
    expect(await c.call({ op: 'subscribe', channel: 'book', symbol: SYM })).toMatchObject({ ok: true, channel: 'book', subscribed: true });
    const snapshot = await c.next((m) => m.type === 'book.snapshot');
    const atSnapshot = await book(server.url, 1000);
    expect({ seq: snapshot.seq, bids: snapshot.bids, asks: snapshot.asks }).toEqual(atSnapshot);
    const levels = {
      bids: new Map(snapshot.bids),
      asks: new Map(snapshot.asks),
    };

    // Changes of every kind: new levels, more at a level, trades, partial fills, reductions, moves, cancels.
    const b1 = await bob.place({ side: 'sell', price: 3050, qty: 3 });
    await alice.place({ side: 'buy', price: 2990, qty: 1 });
    await alice.place({ side: 'buy', price: 3000, qty: 1 });
    await bob.place({ side: 'sell', price: 3000, qty: 6 }); // trades 6 at 3000: all of a, 1 of bob's own
    expect(await alice.order(a.order.orderId)).toMatchObject({ status: 'filled' });
    await bob.amend(b1.order.orderId, { price: 3060 });
    await bob.amend(b1.order.orderId, { qty: 1 });
    await alice.place({ side: 'buy', type: 'market', qty: 2 });
    await bob.cancel(b1.order.orderId);
    await alice.place({ side: 'buy', price: 2500, qty: 9, tif: 'IOC' }); // changes no level
    const now = await book(server.url, 1000);
    expect(now.seq).toBeGreaterThan(atSnapshot.seq + 5);

    const updates: WsMsg[] = [];
    for (let seq = atSnapshot.seq + 1; seq <= now.seq; seq++) {
      updates.push(await c.next((m) => m.type === 'book.update' && m.seq === seq, `book.update ${seq}`));
    }
    await drained(c);
    // Nothing else came: exactly one update per seq, in order.
    expect(c.all((m) => m.type === 'book.update').map((m) => m.seq)).toEqual(updates.map((m) => m.seq));
    for (const u of updates) {
      expect(u.symbol).toBe(SYM);
      for (const [p, q] of u.bids ?? []) {
        if (q === 0) levels.bids.delete(p);
        else levels.bids.set(p, q);
      }
      for (const [p, q] of u.asks ?? []) {
        if (q === 0) levels.asks.delete(p);
        else levels.asks.set(p, q);
      }
    }
    const bids = [...levels.bids].sort((x, y) => y[0] - x[0]);
    const asks = [...levels.asks].sort((x, y) => x[0] - y[0]);
    expect({ bids, asks }).toEqual({ bids: now.bids, asks: now.asks });
  });

  it('book: the snapshot has the depth asked for; a bad depth or symbol is an error', async () => {
    const c = await connect();
    await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 1 });
    const snapshot = await c.next((m) => m.type === 'book.snapshot');
    const top = await book(server.url, 1);
    expect({ bids: snapshot.bids, asks: snapshot.asks }).toEqual({ bids: top.bids, asks: top.asks });
    // A bad depth: one answer, an error, and no subscription (no snapshot, no updates).
    const other = await connect();
    const bad = await other.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 0 });
    expect(bad).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^depth: /) as unknown } });
    await new Client(server.url, ALICE).place({ side: 'buy', price: 150, qty: 1 });
    await drained(other);
    expect(other.all((m) => m.id === bad.id || m.type?.startsWith('book') === true)).toEqual([bad]);
    expect(await c.call({ op: 'subscribe', channel: 'book', symbol: 'NOPE' })).toMatchObject({ ok: false, error: { code: 'UNKNOWN_SYMBOL' } });
    expect(await c.call({ op: 'subscribe', channel: 'book' })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^symbol: /) as unknown } });
    expect(await c.call({ op: 'subscribe', channel: 'weather', symbol: SYM })).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^channel: /) as unknown } });
  });

  it("orders: a user's own order updates, and nobody else's", async () => {
    const aliceWs = await connect('', { 'x-api-key': ALICE });
    const bobWs = await connect('', { 'x-api-key': BOB });
    const carolWs = await connect('', { 'x-api-key': CAROL });
    for (const c of [aliceWs, bobWs]) expect(await c.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true, channel: 'orders', subscribed: true });
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const a = await alice.place({ side: 'sell', price: 4000, qty: 10 });
    const b = await bob.place({ side: 'buy', price: 4000, qty: 4 }); // alice is the maker
    await alice.cancel(a.order.orderId);
    const mine = (c: WsClient): WsMsg[] => c.all((m) => m.type === 'orders');
    await until(() => aliceWs.received.some((m) => m.orders?.some((o) => o.orderId === a.order.orderId && o.status === 'canceled') === true), "alice's cancel in her order updates");
    await drained(bobWs);
    await drained(carolWs);
    const aliceOrders = mine(aliceWs).flatMap((m) => m.orders ?? []);
    const bobOrders = mine(bobWs).flatMap((m) => m.orders ?? []);
    expect(aliceOrders.length).toBeGreaterThan(0);
    expect(aliceOrders.every((o) => o.user === 'alice')).toBe(true);
    expect(bobOrders.every((o) => o.user === 'bob')).toBe(true);
    expect(aliceOrders.filter((o) => o.orderId === a.order.orderId).map((o) => o.status)).toEqual(['open', 'partially_filled', 'canceled']);
    expect(bobOrders.filter((o) => o.orderId === b.order.orderId).map((o) => o.status)).toEqual(['filled']);
    expect(bobOrders.some((o) => o.orderId === a.order.orderId)).toBe(false);
    expect(mine(carolWs)).toEqual([]);
    expect(mine(aliceWs).every((m) => m.symbol === SYM)).toBe(true);
    // Unsubscribed: no more updates.
    expect(await aliceWs.call({ op: 'unsubscribe', channel: 'orders' })).toMatchObject({ ok: true, subscribed: false });
    const before = mine(aliceWs).length;
    await alice.place({ side: 'sell', price: 4001, qty: 1 });
    await drained(aliceWs);
    expect(mine(aliceWs)).toHaveLength(before);
  });
});

describe('bad frames', () => {
  it('are answered with errors while the connection stays usable', async () => {
    const c = await connect('', { 'x-api-key': ALICE });
    c.send('this is not json');
    expect(await c.next((m) => m.error !== undefined)).toEqual({ error: { code: 'MALFORMED_JSON', message: expect.stringMatching(/not valid JSON/) as unknown } });
    for (const text of ['[1,2]', '42', '"ping"', 'null']) {
      c.send(text);
      expect(await c.next((m) => m.error !== undefined), text).toEqual({ error: { code: 'VALIDATION', message: expect.stringMatching(/JSON object/) as unknown } });
    }
    c.send({ op: 'dance', id: 'd1' });
    expect(await c.next((m) => m.id === 'd1')).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^op: /) as unknown } });
    c.send({ id: 'n1' });
    expect(await c.next((m) => m.id === 'n1')).toMatchObject({ ok: false, error: { code: 'VALIDATION', message: expect.stringMatching(/^op: /) as unknown } });
    c.send({ op: 'ping', id: { nested: true } });
    expect(await c.next((m) => m.error?.message.startsWith('id: ') === true)).toMatchObject({ error: { code: 'VALIDATION' } });
    c.send(Buffer.from([1, 2, 3]));
    expect(await c.next((m) => m.error !== undefined)).toEqual({ error: { code: 'UNSUPPORTED_MEDIA_TYPE', message: expect.any(String) as unknown } });
    // Still usable.
    expect(await c.call({ op: 'ping' })).toMatchObject({ pong: true });
    expect(await c.call({ op: 'order', order: limit('buy', 200, 1) })).toMatchObject({ ok: true, order: { status: 'open' } });
    expect(c.closeInfo).toBeUndefined();
  });

  it('a frame above the body limit closes that connection (1009), and only that one', async () => {
    const big = await connect('', { 'x-api-key': ALICE });
    const other = await connect('', { 'x-api-key': ALICE });
    big.send({ op: 'ping', pad: 'x'.repeat(4000) });
    await until(() => big.closeInfo !== undefined, 'the connection to close');
    expect(big.closeInfo?.code).toBe(1009);
    expect(await other.call({ op: 'ping' })).toMatchObject({ pong: true });
  });
});

describe('rate limit over WebSocket', () => {
  it('a RATE_LIMITED answer says how long to wait (error.retryAfter, whole seconds), as HTTP says it in Retry-After', async () => {
    const limited = await start({ rateLimit: 1, rateBurst: 1 });
    const c = await WsClient.connect(wsUrl(limited.url), { 'x-api-key': ALICE });
    try {
      expect(await c.call({ op: 'order', order: limit('buy', 500, 1) })).toMatchObject({ ok: true });
      const refused = await c.call({ op: 'order', order: limit('buy', 501, 1) });
      expect(refused).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
      const wait = refused.error?.retryAfter;
      expect(Number.isSafeInteger(wait) && (wait as number) >= 1).toBe(true);
    } finally {
      await c.close();
      await limited.close();
    }
  });

  it('counts each order of an array; beyond the burst: RATE_LIMITED, nothing placed', async () => {
    const limited = await start({ rateLimit: 1, rateBurst: 3 });
    const c = await WsClient.connect(wsUrl(limited.url), { 'x-api-key': ALICE });
    try {
      const four = await c.call({ op: 'order', order: [limit('buy', 500, 1), limit('buy', 501, 1), limit('buy', 502, 1), limit('buy', 503, 1)] });
      expect(four).toMatchObject({ ok: false, error: { code: 'RATE_LIMITED' } });
      const rs: WsMsg[] = [];
      for (let i = 0; i < 6; i++) rs.push(await c.call({ op: 'order', order: limit('buy', 600 + i, 1) }));
      const ok = rs.filter((r) => r.ok === true).length;
      expect(ok).toBeGreaterThanOrEqual(3);
      expect(rs.filter((r) => r.error?.code === 'RATE_LIMITED').length).toBe(6 - ok);
      expect(6 - ok).toBeGreaterThan(0);
      expect((await book(limited.url)).bids).toHaveLength(ok);
    } finally {
      await c.close();
      await limited.close();
    }
  });
});

describe('backpressure', () => {
  it('orders beyond a full mailbox are refused with BACKPRESSURE, take no order id, and may be retried under their clientOrderId', async () => {
    engineOverrides.mailboxSize = 2;
    const small = await start();
    delete engineOverrides.mailboxSize;
    const c = await WsClient.connect(wsUrl(small.url), { 'x-api-key': ALICE });
    try {
      // One frame: its orders are submitted at once, before the engine runs; the mailbox takes two.
      const r = await c.call({ op: 'order', order: [limit('buy', 500, 1), limit('buy', 501, 1), limit('buy', 502, 1, { clientOrderId: 'retry-me' }), limit('buy', 503, 1)] });
      const results = r.results ?? [];
      expect(results.map((x) => x.ok)).toEqual([true, true, false, false]);
      expect(results.map((x) => x.order?.orderId)).toEqual([1, 2, undefined, undefined]);
      for (const x of results.slice(2)) {
        expect(x.error?.code).toBe('BACKPRESSURE');
      }
      // Nothing was placed for them, and the next order gets the next id, without the refused one's clientOrderId.
      expect((await book(small.url)).bids).toEqual([
        [501, 1],
        [500, 1],
      ]);
      const next = await c.call({ op: 'order', order: limit('buy', 504, 1) });
      expect(next).toMatchObject({ ok: true, order: { orderId: 3, price: 504 } });
      expect(next.order?.clientOrderId).toBeUndefined();
      // The refused order is retried under its clientOrderId: placed now, not a duplicate.
      const retried = await c.call({ op: 'order', order: limit('buy', 502, 1, { clientOrderId: 'retry-me' }) });
      expect(retried).toMatchObject({ ok: true, order: { orderId: 4, clientOrderId: 'retry-me', status: 'open' } });
      expect(retried.duplicate).toBeUndefined();
      const metrics = await (await fetch(`${small.url}/metrics`)).text();
      expect(metrics).toMatch(/^gx3_commands_total\{kind="limit",outcome="refused"\} 2$/m);
    } finally {
      await c.close();
      await small.close();
    }
  });
});

describe('metrics of the WebSocket API', () => {
  it('counts the messages received and sent, as of each scrape', async () => {
    const value = async (direction: string): Promise<number> => {
      const text = await (await fetch(`${server.url}/metrics`)).text();
      const m = new RegExp(`^gx3_ws_messages_total\\{direction="${direction}"\\} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    };
    const inBefore = await value('in');
    const outBefore = await value('out');
    const c = await connect('', { 'x-api-key': ALICE });
    for (let i = 0; i < 5; i++) await drained(c);
    expect(await value('in')).toBe(inBefore + 5);
    expect(await value('out')).toBe(outBefore + 5);
  });
});
