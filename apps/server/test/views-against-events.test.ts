// The gateway's market state (order views, L2 book, recent trades, order history) against
// what the engine did. An independent account is kept from the bus's whole events (a reference
// fold written here) and from the engine's own book; hand-computed expectations pin the semantics.
import type { Event } from '@gx3/codecs';
import { Side as BookSide } from '@gx3/orderbook';
import { MemoryBus } from '@gx3/outbox-publisher';
import { afterAll, describe, expect, it } from 'vitest';
import type { OrderView } from '../src/gateway.js';
import { ALICE, BOB, book, CAROL, Client, removeTmpDirs, start, SYM, trades, until, WsClient, wsUrl, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

interface Ref {
  orderId: number;
  userId: number;
  side: string;
  type: string;
  tif: string;
  price: number;
  qty: number;
  filledQty: number;
  remainingQty: number;
  status: string;
  reason: string | undefined;
  clientOrderId: string | undefined;
  updatedAt: number;
  resting: boolean;
  endedAt: number; // order in which it ended (0: live)
}

/** The reference account, folded from the bus's whole events. */
class Model {
  readonly orders = new Map<number, Ref>();
  readonly trades: Event[] = [];
  lastSeq = 0;
  private ended = 0;

  attach(server: TestServer): () => void {
    const bus = server.bus;
    if (!(bus instanceof MemoryBus)) throw new Error('the test servers run on the MemoryBus');
    return bus.subscribe(SYM, (e) => {
      this.apply(e);
    });
  }

  apply(e: Event): void {
    if (e.eventSeq <= this.lastSeq) return; // republished after a restart
    this.lastSeq = e.eventSeq;
    const end = (o: Ref): void => {
      o.endedAt = ++this.ended;
      o.resting = false;
    };
    switch (e.type) {
      case 'accepted':
        this.orders.set(e.orderId, {
          orderId: e.orderId,
          userId: e.userId,
          side: e.side,
          type: e.orderType,
          tif: e.tif,
          price: e.price,
          qty: e.qty,
          filledQty: 0,
          remainingQty: e.qty,
          status: 'new',
          reason: undefined,
          clientOrderId: e.clientOrderId,
          updatedAt: e.ts,
          resting: false,
          endedAt: 0,
        });
        return;
      case 'rejected': {
        if (e.commandType !== 'limit' && e.commandType !== 'market') return;
        const o: Ref = {
          orderId: e.orderId,
          userId: e.userId,
          side: e.side ?? 'buy',
          type: e.commandType,
          tif: e.tif ?? 'GTC',
          price: e.price ?? 0,
          qty: e.qty ?? 0,
          filledQty: 0,
          remainingQty: 0,
          status: 'rejected',
          reason: e.reason,
          clientOrderId: e.clientOrderId,
          updatedAt: e.ts,
          resting: false,
          endedAt: 0,
        };
        this.orders.set(e.orderId, o);
        end(o);
        return;
      }
      case 'added': {
        const o = this.orders.get(e.orderId) as Ref;
        o.price = e.price;
        o.remainingQty = e.qty;
        o.resting = true;
        o.status = o.filledQty > 0 ? 'partially_filled' : 'open';
        o.updatedAt = e.ts;
        return;
      }
      case 'trade': {
        this.trades.push(e);
        const m = this.orders.get(e.makerOrderId) as Ref;
        m.filledQty += e.qty;
        m.remainingQty = e.makerRemaining;
        m.updatedAt = e.ts;
        m.status = e.makerRemaining === 0 ? 'filled' : 'partially_filled';
        if (e.makerRemaining === 0) end(m);
        const t = this.orders.get(e.takerOrderId) as Ref;
        t.filledQty += e.qty;
        t.remainingQty -= e.qty;
        t.updatedAt = e.ts;
        t.status = t.remainingQty === 0 ? 'filled' : 'partially_filled';
        if (t.remainingQty === 0) end(t);
        return;
      }
      case 'canceled': {
        const o = this.orders.get(e.orderId) as Ref;
        o.status = 'canceled';
        o.reason = e.reason;
        o.remainingQty = 0;
        o.updatedAt = e.ts;
        end(o);
        return;
      }
      case 'amended': {
        const o = this.orders.get(e.orderId) as Ref;
        if (e.kind === 'REPLACE') {
          o.price = e.price;
          o.qty = o.filledQty + e.qty;
          o.resting = false;
        } else {
          o.qty -= o.remainingQty - e.qty;
        }
        o.remainingQty = e.qty;
        o.updatedAt = e.ts;
        return;
      }
      default:
        return;
    }
  }
}

function engineBook(server: TestServer): { bids: [number, number][]; asks: [number, number][] } {
  const b = server.engine.actor(SYM)?.book;
  if (b === undefined) throw new Error('no actor');
  return {
    bids: b.depth(BookSide.Buy, 1000).map((l) => [l.price, l.qty] as [number, number]),
    asks: b.depth(BookSide.Sell, 1000).map((l) => [l.price, l.qty] as [number, number]),
  };
}

/** Compares every order's GET view with the model and the engine's book; the book and trades too. */
async function compareAll(server: TestServer, model: Model, clients: Record<number, Client>, opts: { historyKept?: number } = {}): Promise<void> {
  const b = engineBook(server);
  const got = await book(server.url, 1000);
  expect({ bids: got.bids, asks: got.asks }, 'the L2 book equals the engine book').toEqual(b);
  const actorBook = server.engine.actor(SYM)?.book;
  for (const o of model.orders.values()) {
    const client = clients[o.userId] as Client;
    const r = await client.get(o.orderId);
    const maxEnded = Math.max(0, ...[...model.orders.values()].map((x) => x.endedAt));
    const pushedOut = opts.historyKept !== undefined && o.endedAt > 0 && o.endedAt <= maxEnded - opts.historyKept;
    if (pushedOut) {
      expect(r.status, `order ${o.orderId} pushed out of the history`).toBe(404);
      continue;
    }
    expect(r.status, `GET order ${o.orderId}: ${r.text}`).toBe(200);
    const v = r.body.order as OrderView;
    const want: Partial<OrderView> = {
      orderId: o.orderId,
      side: o.side,
      type: o.type,
      tif: o.tif,
      price: o.price,
      qty: o.qty,
      filledQty: o.filledQty,
      remainingQty: o.remainingQty,
      status: o.status,
      updatedAt: o.updatedAt,
    };
    if (o.reason !== undefined) want.reason = o.reason;
    if (o.clientOrderId !== undefined) want.clientOrderId = o.clientOrderId;
    expect(v, `order ${o.orderId}`).toMatchObject(want);
    if (o.reason === undefined) expect(v.reason, `order ${o.orderId} reason`).toBeUndefined();
    // The engine's own book: a live order rests there with its remaining quantity.
    const inBook = actorBook?.getOrder(o.orderId);
    if (v.status === 'open' || v.status === 'partially_filled') {
      expect(inBook?.qty, `order ${o.orderId} rests in the engine with its remainingQty`).toBe(v.remainingQty);
      expect(inBook?.price, `order ${o.orderId} price`).toBe(v.price);
      expect(v.qty).toBe(v.filledQty + v.remainingQty);
    } else {
      expect(inBook, `ended order ${o.orderId} is not in the engine's book`).toBeUndefined();
      expect(v.remainingQty).toBe(0);
    }
    if (v.status === 'filled') expect(v.filledQty).toBe(v.qty);
  }
  // Trades: newest first, the model's trades in reverse.
  const want = model.trades
    .slice()
    .reverse()
    .map((t) => (t.type === 'trade' ? { id: t.eventSeq, price: t.price, qty: t.qty, takerSide: t.takerSide, ts: t.ts } : undefined));
  const limit = Math.min(server.config.recentTrades, 1000);
  const got2 = await trades(server.url, 1000);
  expect(got2.length).toBe(Math.min(limit, want.length));
  expect(got2.map((t) => ({ id: t.id, price: t.price, qty: t.qty, takerSide: t.takerSide, ts: t.ts }))).toEqual(want.slice(0, got2.length));
}

function clientsOf(url: string, ids: { alice: number; bob: number; carol: number }): Record<number, Client> {
  return { [ids.alice]: new Client(url, ALICE), [ids.bob]: new Client(url, BOB), [ids.carol]: new Client(url, CAROL) };
}

async function userIds(url: string): Promise<{ alice: number; bob: number; carol: number }> {
  // Each user's engine id, from the accepted event of an order of theirs (placed far from the market, canceled).
  const out: Record<string, number> = {};
  for (const [name, key] of [['alice', ALICE], ['bob', BOB], ['carol', CAROL]] as const) {
    const c = new Client(url, key);
    const { events, order } = await c.place({ side: 'buy', price: 100, qty: 1 });
    const acc = events.find((e) => e.type === 'accepted');
    out[name] = acc?.type === 'accepted' ? acc.userId : 0;
    await c.cancel(order.orderId);
  }
  return out as { alice: number; bob: number; carol: number };
}

async function waitBus(server: TestServer, model: Model): Promise<void> {
  const gwState = (server.gateway as unknown as { feeds: Map<string, { state: { lastEventSeq: number } }> }).feeds.get(SYM)?.state;
  await until(() => model.lastSeq >= (gwState?.lastEventSeq ?? 0), () => `the bus to reach ${gwState?.lastEventSeq} (at ${model.lastSeq})`);
}

describe('market-state views against the engine', () => {
  it('every event kind: views, book and trades agree with the engine, across a restart', async () => {
    let server = await start({ recentTrades: 1000 });
    const dataDir = server.dataDir;
    const model = new Model();
    let detach = model.attach(server);
    try {
      const ids = await userIds(server.url);
      let cl = clientsOf(server.url, ids);
      const A = (): Client => cl[ids.alice] as Client;
      const B = (): Client => cl[ids.bob] as Client;
      const C = (): Client => cl[ids.carol] as Client;
      // Asks at several levels, a market buy sweeping them.
      await A().place({ side: 'sell', price: 1000, qty: 3 });
      await B().place({ side: 'sell', price: 1001, qty: 4 });
      await A().place({ side: 'sell', price: 1002, qty: 5 });
      await C().place({ side: 'buy', type: 'market', qty: 9 }); // 3 + 4 + 2
      // IOC partially filled, FOK rejected and FOK filled, POST rejected and POST resting.
      await C().place({ side: 'buy', price: 1002, qty: 10, tif: 'IOC', clientOrderId: 'ioc-1' });
      await A().place({ side: 'sell', price: 1010, qty: 4 });
      await C().place({ side: 'buy', price: 1010, qty: 5, tif: 'FOK' }); // rejected
      await C().place({ side: 'buy', price: 1010, qty: 4, tif: 'FOK' }); // filled
      await B().place({ side: 'buy', price: 990, qty: 6, tif: 'POST' });
      await B().place({ side: 'sell', price: 990, qty: 6, tif: 'POST' }); // would cross: rejected
      // Self-trade prevention, every mode.
      await A().place({ side: 'sell', price: 1020, qty: 5 });
      await A().place({ side: 'buy', price: 1020, qty: 3, stp: 'CANCEL_NEWEST' });
      await A().place({ side: 'buy', price: 1020, qty: 2, stp: 'CANCEL_OLDEST' }); // cancels the ask, rests
      await B().place({ side: 'sell', price: 1030, qty: 4 });
      await B().place({ side: 'sell', price: 1031, qty: 4 });
      await B().place({ side: 'buy', price: 1031, qty: 3, stp: 'CANCEL_BOTH' });
      await C().place({ side: 'sell', price: 1040, qty: 2 });
      await C().place({ side: 'sell', price: 1041, qty: 5 });
      await C().place({ side: 'buy', price: 1041, qty: 4, stp: 'DECREMENT_CANCEL' }); // cancels 1040 (2), decrements 1041 to 3, taker canceled
      await C().place({ side: 'sell', price: 1050, qty: 2 });
      await A().place({ side: 'sell', price: 1050, qty: 2 });
      await C().place({ side: 'buy', price: 1050, qty: 6, stp: 'DECREMENT_CANCEL' }); // taker decremented to 4, trades 2 with alice, rests 2
      await waitBus(server, model);
      expect(model.orders.size).toBeGreaterThan(20);
      await compareAll(server, model, cl);

      // Reductions, replaces, price changes that cross and trade, cancels of partially filled orders.
      const r1 = (await B().place({ side: 'buy', price: 980, qty: 10 })).order.orderId;
      expect((await B().amend(r1, { qty: 7 })).status).toBe(200); // reduce
      await C().place({ side: 'sell', type: 'market', qty: 9 }); // fills the POST bid (6 @990), then 3 of r1
      expect((await B().amend(r1, { qty: 9 })).status).toBe(200); // size increase: replace
      const s1 = (await A().place({ side: 'sell', price: 1100, qty: 8 })).order.orderId;
      await C().place({ side: 'buy', price: 1100, qty: 3 }); // s1 partially filled
      expect((await A().amend(s1, { price: 975 })).status).toBe(200); // crosses r1 at 980: trades
      const p1 = (await B().place({ side: 'buy', price: 970, qty: 5 })).order.orderId;
      await C().place({ side: 'sell', price: 970, qty: 2 });
      expect((await B().cancel(p1)).status).toBe(200); // cancel of a partially filled order
      await waitBus(server, model);
      await compareAll(server, model, cl);

      // A restart, then more.
      detach();
      await server.close();
      server = await start({ recentTrades: 1000 }, dataDir);
      detach = model.attach(server);
      cl = clientsOf(server.url, ids);
      await compareAll(server, model, cl);
      await A().place({ side: 'sell', price: 1200, qty: 3 });
      await B().place({ side: 'buy', type: 'market', qty: 20 });
      await waitBus(server, model);
      await compareAll(server, model, cl);
    } finally {
      detach();
      await server.close();
    }
  }, 30_000);

  it('a small orderHistory and recentTrades: the latest ended orders and trades are kept, across a restart', async () => {
    const settings = { recentTrades: 3, orderHistory: 3 };
    let server = await start(settings);
    const dataDir = server.dataDir;
    const model = new Model();
    let detach = model.attach(server);
    try {
      const ids = await userIds(server.url);
      let cl = clientsOf(server.url, ids);
      const A = (): Client => cl[ids.alice] as Client;
      const B = (): Client => cl[ids.bob] as Client;
      for (let i = 0; i < 4; i++) {
        await A().place({ side: 'sell', price: 1000 + i, qty: 2 });
      }
      await B().place({ side: 'buy', type: 'market', qty: 7 }); // fills 3 asks, 1 of the 4th
      await A().place({ side: 'sell', price: 1500, qty: 1, tif: 'POST' });
      await A().place({ side: 'buy', price: 1500, qty: 1, tif: 'POST' }); // rejected
      const keep = (await B().place({ side: 'buy', price: 500, qty: 3 })).order.orderId; // live, stays
      await A().place({ side: 'buy', price: 200, qty: 1, tif: 'IOC' }); // canceled unfilled
      await A().place({ side: 'sell', price: 100, qty: 1 }); // trades with the 500 bid (2 left)
      await B().place({ side: 'sell', price: 9000, qty: 1 }); // one more command: pushed-out orders are forgotten
      await waitBus(server, model);
      await compareAll(server, model, cl, { historyKept: 3 });
      expect((await B().get(keep)).body.order?.status).toBe('partially_filled');
      detach();
      await server.close();
      server = await start(settings, dataDir);
      detach = model.attach(server);
      cl = clientsOf(server.url, ids);
      await compareAll(server, model, cl, { historyKept: 3 });
      await A().place({ side: 'buy', price: 9000, qty: 1 }); // trades, fills bob's ask
      await B().place({ side: 'sell', price: 9500, qty: 1 });
      await waitBus(server, model);
      await compareAll(server, model, cl, { historyKept: 3 });
    } finally {
      detach();
      await server.close();
    }
  }, 30_000);

  it('WebSocket streams: a book of depth 2 rebuilt from its updates, the trades and the orders channel agree with GET', async () => {
    const server = await start();
    try {
      const alice = new Client(server.url, ALICE);
      const bob = new Client(server.url, BOB);
      const md = await WsClient.connect(wsUrl(server.url));
      const mine = await WsClient.connect(wsUrl(server.url), { 'x-api-key': ALICE });
      expect((await md.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 2 })).ok).toBe(true);
      expect((await md.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).ok).toBe(true);
      expect((await mine.call({ op: 'subscribe', channel: 'orders' })).ok).toBe(true);
      const snap = await md.next((m) => m.type === 'book.snapshot');
      const ids: number[] = [];
      for (const [price, qty] of [[1000, 3], [1001, 2], [1002, 4], [1003, 1]] as const) ids.push((await alice.place({ side: 'sell', price, qty })).order.orderId);
      ids.push((await alice.place({ side: 'buy', price: 990, qty: 5 })).order.orderId);
      await bob.place({ side: 'buy', type: 'market', qty: 4 }); // 3 @1000, 1 @1001
      await bob.place({ side: 'sell', price: 990, qty: 2 }); // alice's bid partially filled
      expect((await alice.amend(ids[2] as number, { qty: 2 })).status).toBe(200);
      expect((await alice.amend(ids[3] as number, { price: 990 })).status).toBe(200); // crosses her own bid: STP NONE, trades
      expect((await alice.cancel(ids[1] as number)).status).toBe(200);
      const last = (await alice.place({ side: 'buy', price: 995, qty: 1, tif: 'IOC' })).order.orderId;
      ids.push(last);
      const finalBook = await book(server.url, 2);
      await md.next((m) => m.type === 'book.update' && m.seq === finalBook.seq, 'the last book update');
      // Rebuild.
      const bids = new Map(snap.bids);
      const asks = new Map(snap.asks);
      let seq = snap.seq as number;
      for (const u of md.all((m) => m.type === 'book.update')) {
        expect(u.seq).toBe(seq + 1);
        seq = u.seq as number;
        for (const [p, q] of u.bids ?? []) if (q === 0) bids.delete(p); else bids.set(p, q);
        for (const [p, q] of u.asks ?? []) if (q === 0) asks.delete(p); else asks.set(p, q);
      }
      const sorted = (m: Map<number, number>, desc: boolean): [number, number][] => [...m.entries()].sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0]));
      expect({ bids: sorted(bids, true), asks: sorted(asks, false) }).toEqual({ bids: finalBook.bids, asks: finalBook.asks });
      expect(finalBook.bids.concat()).toEqual(engineBook(server).bids.slice(0, 2));
      expect(finalBook.asks.concat()).toEqual(engineBook(server).asks.slice(0, 2));
      // Trades: every frame's trades, oldest first, are GET's reversed.
      const all = await trades(server.url);
      await until(() => md.all((m) => m.type === 'trades').flatMap((m) => m.trades ?? []).length >= all.length, 'the trades frames');
      const streamed = md.all((m) => m.type === 'trades').flatMap((m) => m.trades ?? []);
      expect(streamed).toEqual(all.slice().reverse().map((t) => ({ id: t.id, price: t.price, qty: t.qty, takerSide: t.takerSide, ts: t.ts })));
      // Orders: the last frame of each of alice's orders is its GET view.
      await until(() => mine.all((m) => m.type === 'orders').some((m) => (m.orders ?? []).some((o) => o.orderId === last)), 'the last order frame');
      const lastSeen = new Map<number, OrderView>();
      const prevAt = new Map<number, number>();
      for (const m of mine.all((x) => x.type === 'orders')) {
        for (const o of m.orders ?? []) {
          expect(o.updatedAt, `order ${o.orderId} updatedAt never goes back`).toBeGreaterThanOrEqual(prevAt.get(o.orderId) ?? 0);
          prevAt.set(o.orderId, o.updatedAt);
          lastSeen.set(o.orderId, o);
        }
      }
      for (const id of ids) expect(lastSeen.get(id), `order ${id}`).toEqual(await alice.order(id));
      await md.close();
      await mine.close();
    } finally {
      await server.close();
    }
  }, 30_000);
});
