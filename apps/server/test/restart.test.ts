// A graceful restart in-process: orders of every kind (resting, partially filled, filled,
// canceled, reduced, moved, market, rejected), then close() and a new server on the same data
// directory: every acknowledged order answers GET as before, the book and the recent trades are
// the same, new order ids continue above the old ones, and the recovered book keeps time priority.
import { EngineError } from '@gx3/engine';
import { afterAll, describe, expect, it } from 'vitest';
import type { OrderView } from '../src/gateway.js';
import { ALICE, BOB, book, CAROL, Client, removeTmpDirs, start, trades, within, WsClient, wsUrl, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

interface Placed {
  client: Client;
  orderId: number;
}

/** Trades, cancels and amends among three users; returns every order placed, by its owner. */
async function workload(url: string): Promise<Placed[]> {
  const alice = new Client(url, ALICE);
  const bob = new Client(url, BOB);
  const carol = new Client(url, CAROL);
  const placed: Placed[] = [];
  const place = async (client: Client, o: Parameters<Client['place']>[0]): Promise<number> => {
    const { order } = await client.place(o);
    placed.push({ client, orderId: order.orderId });
    return order.orderId;
  };
  const a1 = await place(alice, { side: 'sell', price: 1000, qty: 10 }); // partially filled below
  await place(bob, { side: 'sell', price: 1000, qty: 5 }); // behind a1 in time
  await place(alice, { side: 'sell', price: 1002, qty: 7 }); // rests
  await place(carol, { side: 'buy', price: 1000, qty: 4 }); // fills 4 of a1
  const b2 = await place(bob, { side: 'buy', price: 990, qty: 8 });
  const b3 = await place(bob, { side: 'buy', price: 985, qty: 8 });
  expect((await bob.cancel(b3)).status).toBe(200); // canceled
  expect((await bob.amend(b2, { qty: 6 })).status).toBe(200); // reduced
  const c2 = await place(carol, { side: 'buy', price: 980, qty: 3 });
  expect((await carol.amend(c2, { price: 982 })).status).toBe(200); // moved
  await place(carol, { side: 'sell', type: 'market', qty: 2 }); // fills 2 of b2
  await place(alice, { side: 'buy', price: 1000, qty: 100, tif: 'FOK' }); // rejected
  await place(alice, { side: 'buy', price: 1001, qty: 1, tif: 'IOC' }); // filled against a1
  const a5 = await place(alice, { side: 'buy', price: 995, qty: 2 });
  await place(carol, { side: 'sell', price: 995, qty: 2 }); // a5 filled
  expect(a1).toBe(1);
  expect(a5).toBeGreaterThan(a1);
  return placed;
}

async function views(placed: readonly Placed[], url: string): Promise<OrderView[]> {
  return Promise.all(placed.map(({ client, orderId }) => new Client(url, client.key).order(orderId)));
}

describe('graceful restart (close, then a new server on the same data directory)', () => {
  it('keeps every acknowledged order, the book and the trades; new order ids continue', async () => {
    let server: TestServer = await start();
    const placed = await workload(server.url);
    const before = await views(placed, server.url);
    const bookBefore = await book(server.url);
    const tradesBefore = await trades(server.url);
    expect(tradesBefore.length).toBeGreaterThan(3);
    const lastId = Math.max(...before.map((o) => o.orderId));
    await server.close();

    server = await start({}, server.dataDir);
    try {
      const after = await views(placed, server.url);
      // Every order as it was, the rejected one too (its event carries what it asked for).
      expect(after).toEqual(before);
      expect(before.filter((o) => o.status === 'rejected')).toHaveLength(1);
      const bookAfter = await book(server.url);
      expect({ bids: bookAfter.bids, asks: bookAfter.asks }).toEqual({ bids: bookBefore.bids, asks: bookBefore.asks });
      expect(await trades(server.url)).toEqual(tradesBefore);

      const alice = new Client(server.url, ALICE);
      const next = await alice.place({ side: 'buy', price: 900, qty: 1 });
      expect(next.order.orderId).toBe(lastId + 1);

      // Time priority survived: order 1 (alice, 5 left at 1000) is still ahead of order 2 (bob, 5 at 1000).
      const a1 = after[0];
      expect(a1).toMatchObject({ orderId: 1, remainingQty: 5, status: 'partially_filled' });
      const taker = await new Client(server.url, CAROL).place({ side: 'buy', price: 1000, qty: 6 });
      expect(taker.events.flatMap((e) => (e.type === 'trade' ? [e.qty] : []))).toEqual([5, 1]);
      expect(await alice.order(1)).toMatchObject({ status: 'filled', filledQty: 10 });
      expect(await new Client(server.url, BOB).order(2)).toMatchObject({ filledQty: 1, remainingQty: 4 });
    } finally {
      await server.close();
    }
  });

  it('a second server on a data directory in use does not start (LOCKED), and the first keeps serving', async () => {
    const server = await start();
    try {
      const alice = new Client(server.url, ALICE);
      const first = await alice.place({ side: 'buy', price: 900, qty: 1 });
      const err = await start({}, server.dataDir).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(EngineError);
      expect((err as EngineError).code).toBe('LOCKED');
      expect((err as Error).message).toContain(server.dataDir);
      const second = await alice.place({ side: 'buy', price: 901, qty: 1 });
      expect(second.order.orderId).toBe(first.order.orderId + 1);
      expect(await alice.order(first.order.orderId)).toMatchObject({ status: 'open' });
    } finally {
      await server.close();
    }
  });

  it('a third start after more orders: ids keep increasing, nothing acknowledged is lost', async () => {
    const dataDir = (await (async () => {
      const s = await start();
      await new Client(s.url, ALICE).place({ side: 'buy', price: 1000, qty: 1 });
      await s.close();
      return s;
    })()).dataDir;
    const ids: number[] = [1];
    for (let round = 0; round < 2; round++) {
      const s = await start({}, dataDir);
      try {
        const alice = new Client(s.url, ALICE);
        for (const id of ids) expect(await alice.order(id)).toMatchObject({ status: 'open', qty: 1 });
        ids.push((await alice.place({ side: 'buy', price: 1000, qty: 1 })).order.orderId);
        expect(ids.at(-1)).toBe(ids.length);
        expect((await book(s.url)).bids).toEqual([[1000, ids.length]]);
      } finally {
        await s.close();
      }
    }
  });

  it('close() completes while WebSocket clients are connected, which are told the server is going away (1001)', async () => {
    const server = await start();
    const ws = await WsClient.connect(wsUrl(server.url, `?apiKey=${ALICE}`));
    expect(await ws.call({ op: 'ping' })).toMatchObject({ pong: true });
    await within(server.close(), 15_000, 'close() with a WebSocket client connected');
    await ws.close();
    expect(ws.closeInfo?.code).toBe(1001);
  });
});
