// Bad requests over HTTP: a table of them, each answered with its status and `{ error: { code,
// message } }` (the message naming the field where there is one), while the server keeps serving
// and loses nothing (the book, the orders and the next order id are as before the table). Then
// client order ids (a resubmission answers the original outcome, a different order under the same
// id is 409), the rate limit (429 with Retry-After), the refusal while shutting down (503), and an
// I/O error that halts the symbol (503 HALTED, not ready).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALICE, BOB, book, CAROL, Client, faults, removeTmpDirs, request, start, SYM, within, type RequestOptions, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

/** A small band (100..200 ticks) and at most 1,000 lots, a small body limit. */
const SETTINGS = { instruments: [{ symbol: SYM, minPrice: 100, maxPrice: 200, maxQty: 1000 }], bodyLimit: 2048 };

const order = (o: Record<string, unknown>): Record<string, unknown> => ({ symbol: SYM, side: 'buy', type: 'limit', price: 150, qty: 1, ...o });
const without = (field: string): Record<string, unknown> => Object.fromEntries(Object.entries(order({})).filter(([k]) => k !== field));

interface Case {
  name: string;
  method?: string;
  path?: string;
  /** Default: alice's key; null: none. */
  key?: string | null;
  req: RequestOptions;
  status: number;
  code: string;
  /** The field the message must start with (`field: ...`). */
  field?: string;
  /** Something else the message must match. */
  message?: RegExp;
}

// Orders 1 (alice, sell 10 @ 150) and 3 (bob, sell 3 @ 160) rest; 2 (alice, buy 5 @ 120) too.
const CASES: Case[] = [
  { name: 'malformed JSON', req: { raw: '{"symbol":"TEST","side":', contentType: 'application/json' }, status: 400, code: 'MALFORMED_JSON' },
  { name: 'an empty JSON body', req: { raw: '', contentType: 'application/json' }, status: 400, code: 'MALFORMED_JSON' },
  { name: 'text/plain', req: { raw: JSON.stringify(order({})), contentType: 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a form', req: { raw: 'symbol=TEST&qty=1', contentType: 'application/x-www-form-urlencoded' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a JSON array', req: { json: [order({})] }, status: 400, code: 'VALIDATION', field: 'body' },
  { name: 'a JSON string', req: { json: 'buy' }, status: 400, code: 'VALIDATION', field: 'body' },
  { name: 'JSON null', req: { raw: 'null', contentType: 'application/json' }, status: 400, code: 'VALIDATION', field: 'body' },
  { name: 'missing symbol', req: { json: without('symbol') }, status: 400, code: 'VALIDATION', field: 'symbol', message: /required/ },
  { name: 'missing side', req: { json: without('side') }, status: 400, code: 'VALIDATION', field: 'side', message: /required/ },
  { name: 'missing type', req: { json: without('type') }, status: 400, code: 'VALIDATION', field: 'type', message: /required/ },
  { name: 'missing qty', req: { json: without('qty') }, status: 400, code: 'VALIDATION', field: 'qty', message: /required/ },
  { name: 'missing price of a limit order', req: { json: without('price') }, status: 400, code: 'VALIDATION', field: 'price', message: /required/ },
  { name: 'an extra field', req: { json: order({ leverage: 100 }) }, status: 400, code: 'VALIDATION', field: 'leverage', message: /not a field/ },
  { name: 'a string for qty', req: { json: order({ qty: '1' }) }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'a string for price', req: { json: order({ price: '150' }) }, status: 400, code: 'VALIDATION', field: 'price' },
  { name: 'a boolean for qty', req: { json: order({ qty: true }) }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'null for price', req: { json: order({ price: null }) }, status: 400, code: 'VALIDATION', field: 'price' },
  { name: 'a negative qty', req: { json: order({ qty: -1 }) }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'a negative price', req: { json: order({ price: -150 }) }, status: 400, code: 'VALIDATION', field: 'price' },
  { name: 'a zero qty', req: { json: order({ qty: 0 }) }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'a zero price', req: { json: order({ price: 0 }) }, status: 400, code: 'VALIDATION', field: 'price' },
  { name: 'a fractional qty', req: { json: order({ qty: 1.5 }) }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'a fractional price', req: { json: order({ price: 150.25 }) }, status: 400, code: 'VALIDATION', field: 'price' },
  {
    name: 'an unsafe integer qty (raw JSON text)',
    req: { raw: '{"symbol":"TEST","side":"buy","type":"limit","price":150,"qty":9007199254740993}', contentType: 'application/json' },
    status: 400,
    code: 'VALIDATION',
    field: 'qty',
  },
  {
    name: 'an unsafe integer price (raw JSON text)',
    req: { raw: '{"symbol":"TEST","side":"buy","type":"limit","price":9007199254740993,"qty":1}', contentType: 'application/json' },
    status: 400,
    code: 'VALIDATION',
    field: 'price',
  },
  { name: 'a qty of 1e400 (Infinity)', req: { raw: '{"symbol":"TEST","side":"buy","type":"limit","price":150,"qty":1e400}', contentType: 'application/json' }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'an unknown side', req: { json: order({ side: 'hold' }) }, status: 400, code: 'VALIDATION', field: 'side' },
  { name: 'an unknown type', req: { json: order({ type: 'stop' }) }, status: 400, code: 'VALIDATION', field: 'type' },
  { name: 'an unknown tif', req: { json: order({ tif: 'GTD' }) }, status: 400, code: 'VALIDATION', field: 'tif' },
  { name: 'an unknown stp', req: { json: order({ stp: 'MAYBE' }) }, status: 400, code: 'VALIDATION', field: 'stp' },
  { name: 'a clientOrderId with a space', req: { json: order({ clientOrderId: 'a b' }) }, status: 400, code: 'VALIDATION', field: 'clientOrderId' },
  { name: 'a clientOrderId of 65 characters', req: { json: order({ clientOrderId: 'x'.repeat(65) }) }, status: 400, code: 'VALIDATION', field: 'clientOrderId' },
  { name: 'a number for symbol', req: { json: order({ symbol: 7 }) }, status: 400, code: 'VALIDATION', field: 'symbol' },
  { name: 'an unknown symbol', req: { json: order({ symbol: 'NOPE' }) }, status: 404, code: 'UNKNOWN_SYMBOL', field: 'symbol', message: /NOPE/ },
  { name: 'a price above the band', req: { json: order({ price: 201 }) }, status: 400, code: 'VALIDATION', field: 'price', message: /100\.\.200/ },
  { name: 'a price below the band', req: { json: order({ price: 99 }) }, status: 400, code: 'VALIDATION', field: 'price', message: /band/ },
  { name: 'a price for a market order', req: { json: order({ type: 'market', price: 150 }) }, status: 400, code: 'VALIDATION', field: 'price', message: /market/ },
  { name: 'a tif for a market order', req: { json: { symbol: SYM, side: 'buy', type: 'market', qty: 1, tif: 'GTC' } }, status: 400, code: 'VALIDATION', field: 'tif' },
  { name: 'a qty above maxQty', req: { json: order({ qty: 1001 }) }, status: 400, code: 'VALIDATION', field: 'qty', message: /1000/ },
  { name: 'a body above bodyLimit', req: { raw: JSON.stringify(order({ pad: 'x'.repeat(3000) })), contentType: 'application/json' }, status: 413, code: 'BODY_TOO_LARGE' },
  { name: 'no API key', key: null, req: { json: order({}) }, status: 401, code: 'UNAUTHORIZED', message: /x-api-key/ },
  { name: 'an unknown API key', key: 'not-a-key-at-all', req: { json: order({}) }, status: 401, code: 'UNAUTHORIZED', message: /unknown API key/ },
  { name: 'an unknown API key, before the body is looked at', key: 'not-a-key-at-all', req: { raw: '{oops', contentType: 'application/json' }, status: 401, code: 'UNAUTHORIZED' },
  { name: "GET of someone else's order", method: 'GET', path: `/v1/orders/${SYM}/3`, req: {}, status: 403, code: 'NOT_OWNER' },
  { name: "DELETE of someone else's order", method: 'DELETE', path: `/v1/orders/${SYM}/3`, req: {}, status: 403, code: 'NOT_OWNER' },
  { name: "PATCH of someone else's order", method: 'PATCH', path: `/v1/orders/${SYM}/3`, req: { json: { qty: 1 } }, status: 403, code: 'NOT_OWNER' },
  { name: 'GET of an unknown order', method: 'GET', path: `/v1/orders/${SYM}/999`, req: {}, status: 404, code: 'ORDER_NOT_FOUND' },
  { name: 'DELETE of an unknown order', method: 'DELETE', path: `/v1/orders/${SYM}/999`, req: {}, status: 404, code: 'ORDER_NOT_FOUND' },
  { name: 'PATCH of an unknown order', method: 'PATCH', path: `/v1/orders/${SYM}/999`, req: { json: { qty: 1 } }, status: 404, code: 'ORDER_NOT_FOUND' },
  { name: 'GET without an API key', method: 'GET', path: `/v1/orders/${SYM}/1`, key: null, req: {}, status: 401, code: 'UNAUTHORIZED' },
  { name: 'DELETE with an unknown API key', method: 'DELETE', path: `/v1/orders/${SYM}/1`, key: 'not-a-key-at-all', req: {}, status: 401, code: 'UNAUTHORIZED' },
  { name: 'an order id that is not a number', method: 'GET', path: `/v1/orders/${SYM}/abc`, req: {}, status: 400, code: 'VALIDATION', field: 'orderId' },
  { name: 'an order id of 0', method: 'DELETE', path: `/v1/orders/${SYM}/0`, req: {}, status: 400, code: 'VALIDATION', field: 'orderId' },
  { name: 'an order id with a leading zero', method: 'GET', path: `/v1/orders/${SYM}/01`, req: {}, status: 400, code: 'VALIDATION', field: 'orderId' },
  { name: 'an order id beyond 2^53', method: 'GET', path: `/v1/orders/${SYM}/9007199254740993`, req: {}, status: 400, code: 'VALIDATION', field: 'orderId' },
  { name: 'an order of an unknown symbol', method: 'DELETE', path: '/v1/orders/NOPE/1', req: {}, status: 404, code: 'UNKNOWN_SYMBOL' },
  { name: 'PATCH with nothing to change', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { json: {} }, status: 400, code: 'VALIDATION' },
  { name: 'PATCH with an extra field', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { json: { qty: 5, side: 'buy' } }, status: 400, code: 'VALIDATION', field: 'side' },
  { name: 'PATCH with a string qty', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { json: { qty: '5' } }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'PATCH with a zero qty', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { json: { qty: 0 } }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'PATCH with a fractional price', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { json: { price: 150.5 } }, status: 400, code: 'VALIDATION', field: 'price' },
  { name: 'PATCH with a price out of the band', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { json: { price: 500 } }, status: 400, code: 'VALIDATION', field: 'price', message: /band/ },
  { name: 'PATCH with a qty above maxQty', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { json: { qty: 5000 } }, status: 400, code: 'VALIDATION', field: 'qty' },
  { name: 'PATCH with malformed JSON', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { raw: '{"qty":', contentType: 'application/json' }, status: 400, code: 'MALFORMED_JSON' },
  { name: 'PATCH as text/plain', method: 'PATCH', path: `/v1/orders/${SYM}/1`, req: { raw: '{"qty":5}', contentType: 'text/plain' }, status: 415, code: 'UNSUPPORTED_MEDIA_TYPE' },
  { name: 'a route that does not exist', method: 'POST', path: '/v1/order', req: { json: order({}) }, status: 404, code: 'NOT_FOUND' },
];

describe('a table of bad requests', () => {
  let server: TestServer;
  let alice: Client;
  let bob: Client;

  beforeAll(async () => {
    server = await start(SETTINGS);
    alice = new Client(server.url, ALICE);
    bob = new Client(server.url, BOB);
    expect((await alice.place({ side: 'sell', price: 150, qty: 10 })).order.orderId).toBe(1);
    expect((await alice.place({ side: 'buy', price: 120, qty: 5 })).order.orderId).toBe(2);
    expect((await bob.place({ side: 'sell', price: 160, qty: 3 })).order.orderId).toBe(3);
  });

  afterAll(async () => {
    await server.close();
  });

  it.each(CASES)('$name: $status $code', async (c) => {
    const key = c.key === undefined ? ALICE : c.key === null ? undefined : c.key;
    const r = await request(server.url, c.method ?? 'POST', c.path ?? '/v1/orders', { ...c.req, ...(key === undefined ? {} : { key }) });
    expect(r.status, r.text).toBe(c.status);
    expect(r.headers.get('content-type')).toMatch(/^application\/json/);
    expect(Object.keys(r.body)).toEqual(['error']);
    expect(Object.keys(r.body.error ?? {}).sort()).toEqual(['code', 'message']);
    expect(r.body.error?.code).toBe(c.code);
    expect(typeof r.body.error?.message).toBe('string');
    if (c.field !== undefined) expect(r.body.error?.message.startsWith(`${c.field}: `), r.body.error?.message).toBe(true);
    if (c.message !== undefined) expect(r.body.error?.message).toMatch(c.message);
  });

  it('after the table: the book and the orders are as before, no order id was used, and a good order works', async () => {
    expect(await book(server.url)).toMatchObject({
      bids: [[120, 5]],
      asks: [
        [150, 10],
        [160, 3],
      ],
    });
    expect(await alice.order(1)).toMatchObject({ status: 'open', side: 'sell', price: 150, qty: 10, remainingQty: 10 });
    expect(await alice.order(2)).toMatchObject({ status: 'open', side: 'buy', price: 120, qty: 5, remainingQty: 5 });
    expect(await bob.order(3)).toMatchObject({ status: 'open', side: 'sell', price: 160, qty: 3, remainingQty: 3 });
    const good = await bob.place({ side: 'buy', price: 150, qty: 4 });
    expect(good.order).toMatchObject({ orderId: 4, status: 'filled', filledQty: 4 });
    expect(await alice.order(1)).toMatchObject({ remainingQty: 6, status: 'partially_filled' });
    const health = await request(server.url, 'GET', '/health');
    expect(health.body).toMatchObject({ status: 'ok', ready: true });
  });
});

describe('client order ids', () => {
  let server: TestServer;
  let alice: Client;

  beforeAll(async () => {
    server = await start(SETTINGS);
    alice = new Client(server.url, ALICE);
  });

  afterAll(async () => {
    await server.close();
  });

  it('a resubmission with the same body answers the original outcome (duplicate: true) and places no second order', async () => {
    const first = await alice.post({ side: 'buy', price: 130, qty: 7, clientOrderId: 'dup-1' });
    expect(first.status).toBe(200);
    expect(first.body.duplicate).toBeUndefined();
    const again = await alice.post({ side: 'buy', price: 130, qty: 7, clientOrderId: 'dup-1' });
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(again.body.order).toEqual(first.body.order);
    expect(again.body.events).toEqual(first.body.events);
    expect(await book(server.url)).toMatchObject({ bids: [[130, 7]] });
    // No order id was taken by the resubmission.
    const next = await alice.place({ side: 'buy', price: 110, qty: 1 });
    expect(next.order.orderId).toBe((first.body.order?.orderId ?? 0) + 1);
  });

  it('the same clientOrderId with a different body is 409 DUPLICATE_CLIENT_ORDER_ID, placing nothing', async () => {
    await alice.place({ side: 'buy', price: 131, qty: 2, clientOrderId: 'dup-2' });
    const before = await book(server.url);
    for (const change of [{ qty: 3 }, { price: 132 }, { side: 'sell' as const }, { tif: 'IOC' as const }, { stp: 'CANCEL_BOTH' as const }]) {
      const r = await alice.post({ side: 'buy', price: 131, qty: 2, clientOrderId: 'dup-2', ...change });
      expect(r.status, JSON.stringify(change)).toBe(409);
      expect(r.body.error?.code).toBe('DUPLICATE_CLIENT_ORDER_ID');
      expect(r.body.error?.message).toContain('dup-2');
    }
    expect(await book(server.url)).toEqual(before);
  });

  it('concurrent submissions under one clientOrderId place one order; the others answer it as duplicates', async () => {
    const rs = await Promise.all(Array.from({ length: 5 }, () => alice.post({ side: 'sell', price: 190, qty: 1, clientOrderId: 'dup-3' })));
    expect(rs.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(new Set(rs.map((r) => r.body.order?.orderId)).size).toBe(1);
    expect(rs.filter((r) => r.body.duplicate === true)).toHaveLength(4);
    expect((await book(server.url)).asks).toEqual([[190, 1]]);
  });

  it('another user may use the same clientOrderId', async () => {
    const bob = new Client(server.url, BOB);
    const a = await alice.place({ side: 'sell', price: 195, qty: 1, clientOrderId: 'shared' });
    const b = await bob.post({ side: 'sell', price: 195, qty: 1, clientOrderId: 'shared' });
    expect(b.status).toBe(200);
    expect(b.body.duplicate).toBeUndefined();
    expect(b.body.order?.orderId).not.toBe(a.order.orderId);
  });
});

describe('the rate limit', () => {
  it('answers a flood beyond the burst with 429 RATE_LIMITED and Retry-After, per API key, placing nothing for them', async () => {
    const server = await start({ ...SETTINGS, rateLimit: 1, rateBurst: 3 });
    try {
      const carol = new Client(server.url, CAROL);
      const rs = await Promise.all(Array.from({ length: 10 }, (_, i) => carol.post({ side: 'buy', price: 100 + i, qty: 1 })));
      const ok = rs.filter((r) => r.status === 200);
      const limited = rs.filter((r) => r.status === 429);
      expect(ok.length + limited.length).toBe(10);
      // The burst is 3 and one more token comes per second: at most a few more pass however slow this runs.
      expect(ok.length).toBeGreaterThanOrEqual(3);
      expect(limited.length).toBeGreaterThan(0);
      for (const r of limited) {
        expect(r.body.error?.code).toBe('RATE_LIMITED');
        expect(r.headers.get('retry-after')).toMatch(/^[1-9]\d*$/);
      }
      // Only the accepted requests placed orders.
      expect((await book(server.url)).bids.length).toBe(ok.length);
      // The rate limit is per key: alice is not limited.
      const alice = new Client(server.url, ALICE);
      expect((await alice.post({ side: 'sell', price: 200, qty: 1 })).status).toBe(200);
      // Queries of market data are not limited.
      expect((await request(server.url, 'GET', `/v1/book/${SYM}`)).status).toBe(200);
      // The key is limited before the body is read.
      const bad = await request(server.url, 'POST', '/v1/orders', { key: CAROL, raw: '{oops', contentType: 'application/json' });
      expect(bad.status).toBe(429);
      const metrics = await request(server.url, 'GET', '/metrics');
      expect(metrics.text).toMatch(new RegExp(`^gx3_rate_limited_total ${limited.length + 1}$`, 'm'));
    } finally {
      await server.close();
    }
  });
});

describe('shutting down', () => {
  it('refuses new commands with 503 SHUTTING_DOWN and Retry-After once intake stopped; queries still answer', async () => {
    const server = await start(SETTINGS);
    try {
      const alice = new Client(server.url, ALICE);
      const a = await alice.place({ side: 'buy', price: 150, qty: 1 });
      server.gateway.stopIntake(); // what close() does first
      const r = await alice.post({ side: 'buy', price: 150, qty: 1 });
      expect(r.status).toBe(503);
      expect(r.body.error?.code).toBe('SHUTTING_DOWN');
      expect(r.headers.get('retry-after')).toBe('5');
      const c = await alice.cancel(a.order.orderId);
      expect(c.status).toBe(503);
      expect(c.body.error?.code).toBe('SHUTTING_DOWN');
      expect(await alice.order(a.order.orderId)).toMatchObject({ status: 'open' });
      expect(await book(server.url)).toMatchObject({ bids: [[150, 1]] });
    } finally {
      await server.close();
    }
  });
});

describe('an I/O error', () => {
  it('halts the symbol: 503 HALTED for its commands, /health and /health/ready say not ready, live stays 200', async () => {
    const server = await start(SETTINGS);
    try {
      const alice = new Client(server.url, ALICE);
      const before = await alice.place({ side: 'buy', price: 150, qty: 1 });
      faults.failSyncs = true;
      // The order whose fdatasync fails is not acknowledged.
      const failed = await alice.post({ side: 'buy', price: 151, qty: 1 });
      faults.failSyncs = false;
      expect(failed.status).toBe(503);
      expect(failed.body.error?.code).toBe('HALTED');
      expect(failed.headers.get('retry-after')).toBe('30');
      // Halted: nothing more is taken, even with the disk healthy again, until a restart.
      const after = await alice.post({ side: 'buy', price: 152, qty: 1 });
      expect(after.status).toBe(503);
      expect(after.body.error?.code).toBe('HALTED');
      expect((await alice.cancel(before.order.orderId)).body.error?.code).toBe('HALTED');

      const health = await request(server.url, 'GET', '/health');
      expect(health.status).toBe(503);
      expect(health.headers.get('retry-after')).toBe('5');
      expect(health.body).toMatchObject({ status: 'halted', live: true, ready: false });
      expect(health.body.symbols?.[SYM]).toMatchObject({ halted: true, haltedBy: expect.stringMatching(/EIO/) as unknown });
      const ready = await request(server.url, 'GET', '/health/ready');
      expect(ready.status).toBe(503);
      expect(ready.body).toEqual({ ready: false, status: 'halted' });
      expect((await request(server.url, 'GET', '/health/live')).status).toBe(200);
      const metrics = await request(server.url, 'GET', '/metrics');
      expect(metrics.text).toMatch(new RegExp(`^gx3_engine_halted\\{symbol="${SYM}"\\} 1$`, 'm'));
      // What was acknowledged before is still served.
      expect(await alice.order(before.order.orderId)).toMatchObject({ status: 'open' });
      expect(await book(server.url)).toMatchObject({ bids: [[150, 1]] });
    } finally {
      faults.failSyncs = false;
      await within(server.close(), 15_000, 'close() of a halted server');
    }
  });

  it('after a restart the symbol works again, with every acknowledged order', async () => {
    const server = await start(SETTINGS);
    const alice = new Client(server.url, ALICE);
    const acked = await alice.place({ side: 'sell', price: 190, qty: 2 });
    faults.failSyncs = true;
    const failed = await alice.post({ side: 'sell', price: 191, qty: 2 });
    faults.failSyncs = false;
    expect(failed.body.error?.code).toBe('HALTED');
    await within(server.close(), 15_000, 'close() of a halted server');
    const again = await start(SETTINGS, server.dataDir);
    try {
      const a2 = new Client(again.url, ALICE);
      expect(await a2.order(acked.order.orderId)).toMatchObject({ status: 'open', price: 190, qty: 2 });
      expect((await request(again.url, 'GET', '/health/ready')).status).toBe(200);
      const next = await a2.place({ side: 'sell', price: 192, qty: 1 });
      expect(next.order.orderId).toBeGreaterThan(acked.order.orderId);
    } finally {
      await again.close();
    }
  });
});
