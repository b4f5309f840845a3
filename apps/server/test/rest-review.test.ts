// The REST side from a review: old resting orders across a restart (placed more than 64 MiB of
// outbox ago), malformed percent-encodings and __proto__ members in the API format, per-user client
// order id windows (these failed on the code before their fixes), and differential runs against the engine.
import { Side } from '@gx3/orderbook';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { userIdOf } from '../src/auth.js';
import { ALICE, BOB, CAROL, book, Client, removeTmpDirs, request, start, SYM, trades, type OrderRequest, type RawSettings, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

const running: TestServer[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.close();
});

async function serve(settings: RawSettings = {}, dataDir?: string): Promise<TestServer> {
  const s = await start(settings, dataDir);
  running.push(s);
  return s;
}

async function restart(server: TestServer, settings: RawSettings = {}): Promise<TestServer> {
  await server.close();
  running.splice(running.indexOf(server), 1);
  return serve(settings, server.dataDir);
}

/** A small deterministic generator (LCG). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

// -------------------------------------------------------------------------------------------------

describe('found by the review', () => {
  it('a resting, partially filled order whose placement is older than the last 64 MiB of the outbox keeps qty, filledQty, status and clientOrderId after a restart', async () => {
    // json codec and durability none only make the filler cheaper to write; the bug does not depend on them.
    const settings: RawSettings = { codec: 'json', durability: 'none' };
    let server = await serve(settings);
    const alice = new Client(server.url, ALICE);
    const maker = await alice.place({ side: 'sell', price: 1000, qty: 10, clientOrderId: 'placed-long-ago' });
    await new Client(server.url, BOB).place({ side: 'buy', price: 1000, qty: 4 });
    const before = await alice.order(maker.order.orderId);
    expect(before).toMatchObject({ qty: 10, filledQty: 4, remainingQty: 6, status: 'partially_filled', clientOrderId: 'placed-long-ago' });

    // More than 64 MiB of outbox after it: IOC orders that never trade (placed through the gateway
    // in-process, only to be quick about it: about 650 bytes of outbox each).
    const carol = { name: 'carol', id: userIdOf('carol') };
    for (let k = 0; k < 3000; k++) {
      const batch = [];
      for (let j = 0; j < 50; j++) {
        batch.push(
          server.gateway.place(carol, { symbol: SYM, side: 'buy', type: 'limit', price: 100, qty: 1, tif: 'IOC', stp: 'NONE', clientOrderId: `f${k}-${j}-`.padEnd(64, 'x') }),
        );
      }
      await Promise.all(batch);
    }
    expect(await alice.order(maker.order.orderId)).toEqual(before);
    const recent = await trades(server.url);
    expect(recent).toHaveLength(1);

    server = await restart(server, settings);
    // The acknowledged order is the same order after the restart (it was partially filled, it
    // carries its client order id), not a fresh 6-lot order with nothing filled; and the recent
    // trades are still the recent trades.
    expect({ order: await new Client(server.url, ALICE).order(maker.order.orderId), trades: await trades(server.url) }).toEqual({ order: before, trades: recent });
  });

  it('a request path with a malformed percent-encoding is answered 400 BAD_REQUEST in the API error format', async () => {
    const server = await serve();
    for (const p of ['/v1/book/%E0%A4%A', '/v1/orders/TEST/%E0%A4%A']) {
      const r = await request(server.url, 'GET', p, { key: ALICE });
      expect(r.status, p).toBe(400);
      expect(r.headers.get('content-type'), p).toMatch(/^application\/json/);
      expect(r.body, p).toEqual({ error: { code: 'BAD_REQUEST', message: expect.any(String) as string } });
    }
  });

  it('a request with a malformed percent-encoding is counted in gx3_http_requests_total', async () => {
    const server = await serve();
    expect((await request(server.url, 'GET', '/v1/book/%E0%A4%A')).status).toBe(400);
    const metrics = (await request(server.url, 'GET', '/metrics')).text;
    expect(metrics).toMatch(/^gx3_http_requests_total\{method="GET",route="[^"]*",status="400"\} 1$/m);
  });

  it('an order body with a "__proto__" member (valid JSON, a field the order does not have) is 400 VALIDATION naming it, not MALFORMED_JSON', async () => {
    const server = await serve();
    for (const extra of ['"__proto__":{"x":1}', '"constructor":{"prototype":{"x":1}}']) {
      const raw = `{"symbol":"${SYM}","side":"buy","type":"limit","price":1000,"qty":1,${extra}}`;
      expect(() => JSON.parse(raw) as unknown).not.toThrow();
      const r = await request(server.url, 'POST', '/v1/orders', { key: ALICE, raw, contentType: 'application/json' });
      expect(r.status, extra).toBe(400);
      expect(r.body.error?.code, `${extra}: ${r.text}`).toBe('VALIDATION');
      expect(r.body.error?.message, extra).toMatch(/__proto__|constructor/);
    }
    expect(await book(server.url)).toMatchObject({ bids: [], asks: [] });
  });

  it("the client order ids of one user are not pushed out of the de-duplication window by another user's orders (the window is per user)", async () => {
    const server = await serve({ clientOrderIdWindow: 2 });
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const first = await alice.post({ side: 'buy', price: 900, qty: 1, clientOrderId: 'alice-1' });
    expect(first.status).toBe(200);
    for (let i = 0; i < 3; i++) await bob.place({ side: 'buy', price: 800, qty: 1, clientOrderId: `bob-${i}` });
    // Alice sent one order: her retry of it is a duplicate, whatever bob did meanwhile.
    const again = await alice.post({ side: 'buy', price: 900, qty: 1, clientOrderId: 'alice-1' });
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(again.body.order?.orderId).toBe(first.body.order?.orderId);
    expect((await book(server.url)).bids).toEqual([
      [900, 1],
      [800, 3],
    ]);
    // And the window rebuilt at a restart is per user too.
    const again2 = await new Client((await restart(server, { clientOrderIdWindow: 2 })).url, ALICE).post({ side: 'buy', price: 900, qty: 1, clientOrderId: 'alice-1' });
    expect(again2.body).toMatchObject({ duplicate: true, order: { orderId: first.body.order?.orderId } });
  });
});

// -------------------------------------------------------------------------------------------------

describe('against the engine', () => {
  /** Random orders, cancels and amendments from three users, six at a time; the views checked against the engine's book. */
  async function differential(seed: number, settings: RawSettings): Promise<void> {
    let server = await serve(settings);
    const r = rng(seed);
    const pick = <T,>(a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
    const placed: { key: string; id: number }[] = [];

    const check = async (tag: string): Promise<void> => {
      const actor = server.engine.actor(SYM);
      if (actor === undefined) throw new Error('no actor');
      const level = (l: { price: number; qty: number }): [number, number] => [l.price, l.qty];
      const b = await book(server.url, 1000);
      expect({ bids: b.bids, asks: b.asks }, tag).toEqual({ bids: actor.book.depth(Side.Buy, 1000).map(level), asks: actor.book.depth(Side.Sell, 1000).map(level) });
      for (const { key, id } of placed) {
        const res = await new Client(server.url, key).get(id);
        expect(res.status, `${tag}: order ${id}`).toBe(200);
        const o = res.body.order;
        if (o === undefined) throw new Error('no order');
        const resting = actor.book.getOrder(id);
        if (resting !== undefined) {
          expect({ price: o.price, remainingQty: o.remainingQty }, `${tag}: order ${id}`).toEqual({ price: resting.price, remainingQty: resting.qty });
          expect(['open', 'partially_filled'], `${tag}: order ${id}`).toContain(o.status);
          expect(o.status === 'partially_filled', `${tag}: order ${id}`).toBe(o.filledQty > 0);
        } else {
          expect(['filled', 'canceled', 'rejected'], `${tag}: order ${id}`).toContain(o.status);
          expect(o.remainingQty, `${tag}: order ${id}`).toBe(0);
        }
        if (o.status !== 'rejected') expect(o.filledQty + o.remainingQty, `${tag}: order ${id}`).toBeLessThanOrEqual(o.qty);
      }
    };

    for (let i = 0; i < 120; i++) {
      const batch: Promise<void>[] = [];
      for (let j = 0; j < 6; j++) {
        batch.push(
          (async () => {
            const key = pick([ALICE, BOB, CAROL]);
            const c = new Client(server.url, key);
            const x = r();
            if (x < 0.55 || placed.length === 0) {
              const type = r() < 0.15 ? 'market' : 'limit';
              const o: OrderRequest = {
                side: pick(['buy', 'sell'] as const),
                qty: 1 + Math.floor(r() * 10),
                type,
                stp: pick(['NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] as const),
              };
              if (type === 'limit') {
                o.price = 990 + Math.floor(r() * 20);
                o.tif = pick(['GTC', 'GTC', 'GTC', 'IOC', 'FOK', 'POST'] as const);
              }
              const res = await c.post(o);
              expect(res.status, res.text).toBe(200);
              placed.push({ key, id: res.body.order?.orderId ?? 0 });
            } else if (x < 0.7) {
              const t = pick(placed);
              expect([200, 404]).toContain((await new Client(server.url, t.key).cancel(t.id)).status);
            } else {
              const t = pick(placed);
              const y = r();
              const change = y < 0.4 ? { qty: 1 + Math.floor(r() * 12) } : y < 0.7 ? { price: 990 + Math.floor(r() * 20) } : { qty: 1 + Math.floor(r() * 12), price: 990 + Math.floor(r() * 20) };
              expect([200, 404, 409]).toContain((await new Client(server.url, t.key).amend(t.id, change)).status);
            }
          })(),
        );
      }
      await Promise.all(batch);
      if (i % 40 === 39) await check(`step ${i}`);
    }
    const views = await Promise.all(placed.map(({ key, id }) => new Client(server.url, key).get(id)));
    const recent = await trades(server.url, 1000);
    const seqBefore = (await book(server.url)).seq;

    server = await restart(server, settings);
    await check('after the restart');
    const after = await Promise.all(placed.map(({ key, id }) => new Client(server.url, key).get(id)));
    for (let k = 0; k < placed.length; k++) expect(after[k]?.body, `order ${placed[k]?.id} after the restart`).toEqual(views[k]?.body);
    expect(await trades(server.url, 1000)).toEqual(recent);
    expect((await book(server.url)).seq).toBeGreaterThanOrEqual(seqBefore);
  }

  it('random orders (every tif and stp), cancels and amendments: the book and every order agree with the engine, and are the same after a restart', async () => {
    await differential(7, {});
  });

  it('the same with the json codec and interval durability', async () => {
    await differential(11, { codec: 'json', durability: 'interval' });
  });

  it("another user's order can be neither read, cancelled nor amended (403 NOT_OWNER), and stays as it was", async () => {
    const server = await serve();
    const alice = new Client(server.url, ALICE);
    const bob = new Client(server.url, BOB);
    const { order } = await alice.place({ side: 'sell', price: 1000, qty: 5, clientOrderId: 'mine' });
    for (const r of [await bob.get(order.orderId), await bob.cancel(order.orderId), await bob.amend(order.orderId, { qty: 1 }), await bob.amend(order.orderId, { price: 1005 })]) {
      expect(r.status).toBe(403);
      expect(r.body.error?.code).toBe('NOT_OWNER');
      expect(r.text).not.toContain('mine');
    }
    expect(await alice.order(order.orderId)).toEqual(order);
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 5]], bids: [] });
  });

  it('PATCH {qty} above what a partially filled order has left is its new open quantity (cancel-replace), qty = filled + open', async () => {
    const server = await serve();
    const alice = new Client(server.url, ALICE);
    const { order } = await alice.place({ side: 'sell', price: 1000, qty: 10 });
    await new Client(server.url, BOB).place({ side: 'buy', price: 1000, qty: 3 });
    const r = await alice.amend(order.orderId, { qty: 9 });
    expect(r.status, r.text).toBe(200);
    expect(r.body.order).toMatchObject({ qty: 12, filledQty: 3, remainingQty: 9, status: 'partially_filled', price: 1000 });
    expect(r.body.events?.map((e) => e.type)).toEqual(['amended', 'added']);
    expect(await book(server.url)).toMatchObject({ asks: [[1000, 9]] });
  });

  it('a resubmitted clientOrderId answers the original outcome while the first is in flight and after it, placing one order', async () => {
    const server = await serve();
    const alice = new Client(server.url, ALICE);
    const o = { side: 'buy' as const, price: 950, qty: 2, clientOrderId: 'once' };
    const all = await Promise.all([alice.post(o), alice.post(o), alice.post(o)]);
    const later = await alice.post(o);
    const ids = new Set([...all, later].map((r) => r.body.order?.orderId));
    expect(ids.size).toBe(1);
    expect([...all, later].filter((r) => r.body.duplicate === true)).toHaveLength(3);
    expect(await book(server.url)).toMatchObject({ bids: [[950, 2]] });
  });
});
