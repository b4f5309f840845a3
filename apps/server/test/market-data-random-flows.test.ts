// Market data from a review: the state the gateway builds from the durable outbox events (order
// states, L2 levels, recent trades, the history limits) and how REST and WebSocket present it, under
// seeded random order flows of several users (every tif, market orders, every STP mode, cancels,
// amendments of price and quantity, some of them concurrent, over HTTP and WebSocket), with small
// `orderHistory` / `recentTrades` and a restart on the same data directory in the middle.
//
// After every step: GET /v1/book equals the engine's book and the books rebuilt from WebSocket
// snapshots plus their updates at several depths (seq one by one, no level lost or stale, no zero
// level left); GET /v1/trades and the trades channel agree with the trades of the command answers.
// At checkpoints: every order's GET equals a reference folded from the bus's whole events (fills,
// status, reason), live orders are never evicted, ended orders beyond `orderHistory` are, and the
// owner's `orders` channel ends on the GET view.
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { binaryCodec, jsonCodec, type Event } from '@gx3/codecs';
import { WalReader, WalRecord } from '@gx3/wal';
import { userIdOf } from '../src/auth.js';
import { Side as BookSide } from '@gx3/orderbook';
import { MemoryBus } from '@gx3/outbox-publisher';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { OrderView } from '../src/gateway.js';
import { ALICE, BOB, book, CAROL, Client, removeTmpDirs, request, rng, start, SYM, trades, until, WsClient, wsUrl, tmpDir, type RawSettings, type Res, type TestServer, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c().catch(() => undefined);
});

type Level = [number, number];

// ---------------------------------------------------------------------------------------------
// The reference: the bus's whole events folded into orders, independently of market-state.ts.

interface RefOrder {
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
  /** Rank among the ended orders (0: live). */
  endedAt: number;
}

class Reference {
  readonly orders = new Map<number, RefOrder>();
  readonly trades: Extract<Event, { type: 'trade' }>[] = [];
  lastSeq = 0;
  ended = 0;

  attach(server: TestServer): () => void {
    if (!(server.bus instanceof MemoryBus)) throw new Error('the test servers run on the MemoryBus');
    return server.bus.subscribe(SYM, (e) => {
      this.apply(e);
    });
  }

  private end(o: RefOrder): void {
    o.endedAt = ++this.ended;
  }

  apply(e: Event): void {
    if (e.eventSeq <= this.lastSeq) return; // republished after the restart
    expect(e.eventSeq, 'bus event sequence numbers without gaps').toBe(this.lastSeq + 1);
    this.lastSeq = e.eventSeq;
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
          endedAt: 0,
        });
        return;
      case 'rejected': {
        if (e.commandType !== 'limit' && e.commandType !== 'market') return;
        const o: RefOrder = {
          orderId: e.orderId,
          userId: e.userId,
          side: e.side ?? '?',
          type: e.commandType,
          tif: e.tif ?? '?',
          price: e.price ?? -1,
          qty: e.qty ?? -1,
          filledQty: 0,
          remainingQty: 0,
          status: 'rejected',
          reason: e.reason,
          clientOrderId: e.clientOrderId,
          updatedAt: e.ts,
          endedAt: 0,
        };
        this.orders.set(e.orderId, o);
        this.end(o);
        return;
      }
      case 'added': {
        const o = this.orders.get(e.orderId) as RefOrder;
        o.price = e.price;
        o.remainingQty = e.qty;
        o.status = o.filledQty > 0 ? 'partially_filled' : 'open';
        o.updatedAt = e.ts;
        return;
      }
      case 'trade': {
        this.trades.push(e);
        const m = this.orders.get(e.makerOrderId) as RefOrder;
        m.filledQty += e.qty;
        m.remainingQty = e.makerRemaining;
        m.updatedAt = e.ts;
        m.status = e.makerRemaining === 0 ? 'filled' : 'partially_filled';
        if (e.makerRemaining === 0) this.end(m);
        const t = this.orders.get(e.takerOrderId) as RefOrder;
        t.filledQty += e.qty;
        t.remainingQty -= e.qty;
        t.updatedAt = e.ts;
        t.status = t.remainingQty === 0 ? 'filled' : 'partially_filled';
        if (t.remainingQty === 0) this.end(t);
        return;
      }
      case 'canceled': {
        const o = this.orders.get(e.orderId) as RefOrder;
        o.status = 'canceled';
        o.reason = e.reason;
        o.remainingQty = 0;
        o.updatedAt = e.ts;
        this.end(o);
        return;
      }
      case 'amended': {
        const o = this.orders.get(e.orderId) as RefOrder;
        if (e.kind === 'REPLACE') {
          o.price = e.price;
          o.qty = o.filledQty + e.qty;
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

  live(o: RefOrder): boolean {
    return o.status === 'open' || o.status === 'partially_filled';
  }
}

// ---------------------------------------------------------------------------------------------
// A book rebuilt from a WebSocket snapshot and its updates, with every problem it saw.

class Mirror {
  bids = new Map<number, number>();
  asks = new Map<number, number>();
  seq = -1;
  snapshots = 0;
  readonly problems: string[] = [];
  private cursor = 0;
  constructor(
    readonly ws: WsClient,
    readonly depth: number,
  ) {}

  pull(): void {
    for (; this.cursor < this.ws.received.length; this.cursor++) {
      const m = this.ws.received[this.cursor] as WsMsg;
      if (m.symbol !== SYM) continue;
      if (m.type === 'book.snapshot') {
        this.snapshots++;
        this.bids = new Map(m.bids ?? []);
        this.asks = new Map(m.asks ?? []);
        for (const [p, q] of [...(m.bids ?? []), ...(m.asks ?? [])]) if (!(q > 0)) this.problems.push(`depth ${this.depth}: snapshot ${m.seq} holds level ${p} with qty ${q}`);
        this.seq = m.seq ?? -1;
      } else if (m.type === 'book.update') {
        if (m.seq !== this.seq + 1) this.problems.push(`depth ${this.depth}: update ${m.seq} after ${this.seq}`);
        this.seq = m.seq ?? -1;
        for (const [side, levels] of [
          [this.bids, m.bids],
          [this.asks, m.asks],
        ] as const) {
          const seen = new Set<number>();
          for (const [p, q] of levels ?? []) {
            if (seen.has(p)) this.problems.push(`depth ${this.depth}: update ${m.seq} names level ${p} twice`);
            seen.add(p);
            if (q === 0) {
              if (!side.has(p)) this.problems.push(`depth ${this.depth}: update ${m.seq} removes level ${p} the client does not hold`);
              side.delete(p);
            } else {
              if (side.get(p) === q) this.problems.push(`depth ${this.depth}: update ${m.seq} repeats level ${p} at ${q}, unchanged`);
              side.set(p, q);
            }
          }
        }
      }
    }
  }

  view(): { bids: Level[]; asks: Level[] } {
    const sort = (m: Map<number, number>, desc: boolean): Level[] => [...m.entries()].sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0]));
    return { bids: sort(this.bids, true), asks: sort(this.asks, false) };
  }
}

function engineBook(server: TestServer, depth = 100_000): { bids: Level[]; asks: Level[] } {
  const b = server.engine.actor(SYM)?.book;
  if (b === undefined) throw new Error('no actor');
  return {
    bids: b.depth(BookSide.Buy, depth).map((l) => [l.price, l.qty] as Level),
    asks: b.depth(BookSide.Sell, depth).map((l) => [l.price, l.qty] as Level),
  };
}

/** JSON with sorted keys (to compare two objects whatever the order of their members). */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (x !== null && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => a.localeCompare(b))) : x));
}

/** Levels best first, each price once, every quantity positive. */
function wellFormed(levels: readonly Level[], desc: boolean): boolean {
  for (let i = 0; i < levels.length; i++) {
    const [p, q] = levels[i] as Level;
    if (!(q > 0) || !Number.isSafeInteger(q) || !Number.isSafeInteger(p)) return false;
    const prev = levels[i - 1];
    if (prev !== undefined && (desc ? prev[0] <= p : prev[0] >= p)) return false;
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// The flow.

interface Trader {
  name: string;
  key: string;
  http: Client;
  ws: WsClient;
  id: number;
}

interface AnswerTrade {
  id: number;
  price: number;
  qty: number;
  takerSide: string;
  ts: number;
}

const DEPTHS = [1, 3, 1000] as const;

async function connect(url: string, query = ''): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(url, query));
  closers.push(() => c.close());
  return c;
}

interface Feeds {
  mirrors: Mirror[];
  tradesWs: WsClient;
}

async function subscribeAll(url: string): Promise<Feeds> {
  const mirrors: Mirror[] = [];
  for (const d of DEPTHS) {
    const c = await connect(url);
    expect(await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: d })).toMatchObject({ ok: true });
    await c.next((m) => m.type === 'book.snapshot');
    mirrors.push(new Mirror(c, d));
  }
  const tradesWs = await connect(url);
  expect(await tradesWs.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true });
  return { mirrors, tradesWs };
}

async function traders(url: string): Promise<Trader[]> {
  const out: Trader[] = [];
  for (const [name, key] of [
    ['alice', ALICE],
    ['bob', BOB],
    ['carol', CAROL],
  ] as const) {
    const ws = await connect(url, `?apiKey=${key}`);
    expect(await ws.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    out.push({ name, key, http: new Client(url, key), ws, id: 0 });
  }
  return out;
}

/** A command's answer over either API, as {status, body}. */
interface Answer {
  status: number;
  order?: OrderView;
  events?: Event[];
  code?: string;
  text: string;
}

function fromHttp(r: Res): Answer {
  return { status: r.status, ...(r.body.order ? { order: r.body.order } : {}), ...(r.body.events ? { events: r.body.events } : {}), ...(r.body.error ? { code: r.body.error.code } : {}), text: r.text };
}

const WS_STATUS: Record<string, number> = { VALIDATION: 400, NOT_OWNER: 403, ORDER_NOT_FOUND: 404, REJECTED: 409 };
function fromWs(m: WsMsg): Answer {
  if (m.ok === true) return { status: 200, ...(m.order ? { order: m.order } : {}), ...(m.events ? { events: m.events } : {}), text: JSON.stringify(m) };
  return { status: WS_STATUS[m.error?.code ?? ''] ?? 500, code: m.error?.code ?? '?', text: JSON.stringify(m) };
}

async function runFlow(seed: number, settings: { orderHistory: number; recentTrades: number } & RawSettings, steps: number): Promise<void> {
  let server = await start(settings);
  const dataDir = server.dataDir;
  let closed = false;
  closers.unshift(async () => {
    if (!closed) await server.close();
  });
  const ref = new Reference();
  let detach = ref.attach(server);
  closers.unshift(() => {
    detach();
    return Promise.resolve();
  });
  let users = await traders(server.url);
  let feeds = await subscribeAll(server.url);
  const answerTrades = new Map<number, AnswerTrade>();
  /** The trades of the answers since the trades channel was (re)subscribed. */
  let streamedSince = 0;
  let maxSeqServed = 0;
  const rand = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const int = (lo: number, hi: number): number => lo + Math.floor(rand() * (hi - lo + 1));

  // Each user's engine id, from the accepted event of a first order (far from the market, left resting).
  for (const u of users) {
    const placed = await u.http.place({ side: 'buy', price: 100, qty: 1 });
    const acc = placed.events.find((e) => e.type === 'accepted');
    u.id = acc?.type === 'accepted' ? acc.userId : 0;
  }
  const byId = (id: number): Trader => users.find((u) => u.id === id) as Trader;

  const noteAnswer = (a: Answer, what: string): void => {
    expect([200, 403, 404, 409], `${what}: ${a.text}`).toContain(a.status);
    if (a.status === 409) expect(a.code, `${what}: ${a.text}`).toBe('REJECTED');
    for (const e of a.events ?? []) {
      if (e.type !== 'trade') continue;
      expect(answerTrades.has(e.eventSeq), `trade ${e.eventSeq} in two answers`).toBe(false);
      answerTrades.set(e.eventSeq, { id: e.eventSeq, price: e.price, qty: e.qty, takerSide: e.takerSide, ts: e.ts });
    }
  };

  const send = async (u: Trader, overWs: boolean, frame: Record<string, unknown>, http: () => Promise<Res>): Promise<Answer> => (overWs ? fromWs(await u.ws.call(frame)) : fromHttp(await http()));

  const action = (u: Trader): (() => Promise<void>) => {
    const overWs = rand() < 0.4;
    const r = rand();
    const mine = [...ref.orders.values()].filter((o) => o.userId === u.id && ref.live(o) && o.price !== 100);
    if (r < 0.5 || mine.length === 0) {
      const side = pick(['buy', 'sell'] as const);
      const stp = pick(['NONE', 'NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] as const);
      const qty = int(1, 8);
      const order =
        rand() < 0.15
          ? { symbol: SYM, side, type: 'market' as const, qty, stp }
          : { symbol: SYM, side, type: 'limit' as const, price: side === 'buy' ? int(995, 1004) : int(998, 1007), qty, tif: pick(['GTC', 'GTC', 'GTC', 'IOC', 'FOK', 'POST'] as const), stp };
      return async () => {
        const a = await send(u, overWs, { op: 'order', order }, () => u.http.post(order));
        expect(a.status, a.text).toBe(200);
        noteAnswer(a, `order ${JSON.stringify(order)}`);
      };
    }
    const o = pick(mine);
    if (r < 0.7) {
      return async () => {
        noteAnswer(await send(u, overWs, { op: 'cancel', symbol: SYM, orderId: o.orderId }, () => u.http.cancel(o.orderId)), `cancel ${o.orderId}`);
      };
    }
    const change: { qty?: number; price?: number } = {};
    const k = rand();
    if (k < 0.4) change.qty = int(1, 10);
    else if (k < 0.75) change.price = o.side === 'buy' ? int(995, 1006) : int(996, 1007);
    else {
      change.qty = int(1, 10);
      change.price = o.side === 'buy' ? int(995, 1006) : int(996, 1007);
    }
    return async () => {
      noteAnswer(await send(u, overWs, { op: 'amend', symbol: SYM, orderId: o.orderId, ...change }, () => u.http.amend(o.orderId, change)), `amend ${o.orderId} ${JSON.stringify(change)}`);
    };
  };

  const gwLastEventSeq = (): number => (server.gateway.feeds.get(SYM)?.state.lastEventSeq ?? 0);
  const waitBus = (): Promise<void> => until(() => ref.lastSeq >= gwLastEventSeq(), () => `the bus to reach ${gwLastEventSeq()} (at ${ref.lastSeq})`);

  /** The book over REST, the engine's, and every mirror's. */
  const checkBooks = async (step: string): Promise<void> => {
    const rest = await book(server.url, 1000);
    expect(wellFormed(rest.bids, true) && wellFormed(rest.asks, false), `${step}: GET /v1/book well formed ${JSON.stringify(rest)}`).toBe(true);
    expect({ step, bids: rest.bids, asks: rest.asks }, 'GET /v1/book equals the engine\'s book').toEqual({ step, ...engineBook(server) });
    expect(rest.seq, `${step}: the book's seq never goes back`).toBeGreaterThanOrEqual(maxSeqServed);
    maxSeqServed = rest.seq;
    for (const m of feeds.mirrors) {
      await until(
        () => {
          m.pull();
          return m.seq >= rest.seq;
        },
        () => `${step}: depth ${m.depth} to reach seq ${rest.seq} (at ${m.seq})`,
        5000,
      );
      expect(m.problems, step).toEqual([]);
      expect(m.seq, `${step}: depth ${m.depth} at the book's seq`).toBe(rest.seq);
      expect({ step, depth: m.depth, ...m.view() }).toEqual({ step, depth: m.depth, bids: rest.bids.slice(0, m.depth), asks: rest.asks.slice(0, m.depth) });
    }
    for (const d of [1, 3]) {
      const top = await book(server.url, d);
      expect({ step, d, bids: top.bids, asks: top.asks }).toEqual({ step, d, bids: rest.bids.slice(0, d), asks: rest.asks.slice(0, d) });
    }
  };

  /** GET /v1/trades and the trades channel against the trades of the answers. */
  const checkTrades = async (step: string): Promise<void> => {
    const fromAnswers = [...answerTrades.values()].sort((a, b) => b.id - a.id);
    const got = await trades(server.url, 1000);
    expect(got.every((t) => t.symbol === SYM)).toBe(true);
    expect(
      { step, trades: got.map((t) => ({ id: t.id, price: t.price, qty: t.qty, takerSide: t.takerSide, ts: t.ts })) },
      'GET /v1/trades: the latest recentTrades trades of the answers, newest first',
    ).toEqual({ step, trades: fromAnswers.slice(0, settings.recentTrades) });
    const limited = await trades(server.url, 2);
    expect(limited.map((t) => t.id)).toEqual(fromAnswers.slice(0, Math.min(2, settings.recentTrades)).map((t) => t.id));
    const want = fromAnswers.filter((t) => t.id > streamedSince).reverse();
    const streamed = (): AnswerTrade[] => feeds.tradesWs.all((m) => m.type === 'trades').flatMap((m) => m.trades ?? []);
    await until(() => streamed().length >= want.length, () => `${step}: ${want.length} trades on the trades channel (${streamed().length})`, 5000);
    expect({ step, streamed: streamed() }, 'the trades channel: every trade of the answers once, in order').toEqual({ step, streamed: want });
  };

  /** Every order's GET against the reference; `strict`: the history holds exactly the latest orderHistory ended orders. */
  const checkOrders = async (step: string, strict: boolean): Promise<void> => {
    await waitBus();
    const actorBook = server.engine.actor(SYM)?.book;
    for (const o of ref.orders.values()) {
      const owner = byId(o.userId);
      const r = await owner.http.get(o.orderId);
      const evicted = o.endedAt > 0 && o.endedAt <= ref.ended - settings.orderHistory;
      if (ref.live(o)) {
        expect(r.status, `${step}: live order ${o.orderId} is served: ${r.text}`).toBe(200);
        expect(actorBook?.getOrder(o.orderId)?.qty, `${step}: live order ${o.orderId} rests in the engine with its remaining qty`).toBe(o.remainingQty);
      } else if (evicted && strict) {
        expect(r.status, `${step}: order ${o.orderId}, ended #${o.endedAt} of ${ref.ended}, is pushed out of the history: ${r.text}`).toBe(404);
        expect(r.body.error?.code).toBe('ORDER_NOT_FOUND');
        continue;
      } else if (evicted && r.status === 404) {
        continue;
      } else {
        expect(r.status, `${step}: ended order ${o.orderId} (#${o.endedAt} of ${ref.ended}) is kept: ${r.text}`).toBe(200);
      }
      expect({ step, view: r.body.order }).toEqual({ step, view: wantView(o, owner.name) });
      // Someone else asking: 403 whether it rests or ended.
      const other = users.find((u) => u.id !== o.userId) as Trader;
      const forbidden = await other.http.get(o.orderId);
      expect(forbidden.status, `${step}: another user's GET of order ${o.orderId}`).toBe(403);
    }
    // The orders channel: the last frame of each order of the user is its GET view.
    for (const u of users) {
      const mine = [...ref.orders.values()].filter((o) => o.userId === u.id);
      const want = new Map<number, OrderView>();
      for (const o of mine) {
        const r = await u.http.get(o.orderId);
        if (r.status === 200) want.set(o.orderId, r.body.order as OrderView);
      }
      const last = (): Map<number, OrderView> => {
        const m = new Map<number, OrderView>();
        for (const f of u.ws.all((x) => x.type === 'orders')) {
          expect(f.symbol).toBe(SYM);
          for (const v of f.orders ?? []) m.set(v.orderId, v);
        }
        return m;
      };
      await until(
        () => [...want].every(([id, v]) => !last().has(id) || canonical(last().get(id)) === canonical(v)),
        () => `${step}: ${u.name}'s orders channel to end on the GET views`,
        5000,
      );
      for (const [id, v] of want) if (last().has(id)) expect({ step, id, last: last().get(id) }).toEqual({ step, id, last: v });
      expect([...last().values()].every((v) => v.user === u.name)).toBe(true);
    }
  };

  /** A command that ends no order (a far bid placed): the pushed-out orders are forgotten. */
  const flush = async (): Promise<void> => {
    const u = users[2] as Trader;
    noteAnswer(fromHttp(await u.http.post({ side: 'buy', price: 100, qty: 1 })), 'flush');
  };

  const half = Math.floor(steps / 2);
  for (let step = 0; step < steps; step++) {
    // One to three users act at once: their commands may share a durable batch.
    const n = int(1, 3);
    const actors = [...users].sort(() => rand() - 0.5).slice(0, n);
    await Promise.all(actors.map((u) => action(u)()));
    const what = `seed ${seed} step ${step}`;
    await checkBooks(what);
    await checkTrades(what);
    if (step % 15 === 14 || step === half) {
      await flush();
      await checkBooks(`${what} (flushed)`);
      await checkOrders(what, true);
    }
    if (step === half) {
      // A restart on the same data directory: everything as it was, the L2 seq not going back.
      const before = {
        book: await book(server.url, 1000),
        trades: await trades(server.url, 1000),
        views: new Map<number, Res>(),
      };
      for (const o of ref.orders.values()) before.views.set(o.orderId, await byId(o.userId).http.get(o.orderId));
      const seqSeen = Math.max(...feeds.mirrors.map((m) => m.seq));
      for (const c of [...feeds.mirrors.map((m) => m.ws), feeds.tradesWs, ...users.map((u) => u.ws)]) await c.close();
      detach();
      await server.close();
      server = await start(settings, dataDir);
      detach = ref.attach(server);
      const ids = new Map(users.map((u) => [u.key, u.id]));
      users = await traders(server.url);
      for (const u of users) u.id = ids.get(u.key) ?? 0;
      feeds = await subscribeAll(server.url);
      streamedSince = Math.max(0, ...answerTrades.keys());
      for (const m of feeds.mirrors) {
        m.pull();
        expect(m.seq, 'the snapshot after the restart is not behind a seq served before').toBeGreaterThanOrEqual(seqSeen);
      }
      const after = await book(server.url, 1000);
      expect({ bids: after.bids, asks: after.asks }).toEqual({ bids: before.book.bids, asks: before.book.asks });
      expect(await trades(server.url, 1000)).toEqual(before.trades);
      for (const [id, r] of before.views) {
        const now = await byId(ref.orders.get(id)?.userId ?? 0).http.get(id);
        expect({ id, status: now.status, body: now.body }, 'an order reads as before the restart').toEqual({ id, status: r.status, body: r.body });
      }
      await checkBooks(`${what} (restarted)`);
      await checkOrders(`${what} (restarted)`, true);
    }
  }
  await flush();
  await checkBooks(`seed ${seed} end`);
  await checkTrades(`seed ${seed} end`);
  await checkOrders(`seed ${seed} end`, true);
  // The flow did what it is meant to: trades, every end of an order, evictions.
  const statuses = new Set([...ref.orders.values()].map((o) => o.status));
  expect([...statuses].sort()).toEqual(expect.arrayContaining(['canceled', 'filled', 'open', 'rejected']));
  expect(ref.trades.length).toBeGreaterThan(settings.recentTrades);
  expect(ref.ended).toBeGreaterThan(settings.orderHistory);
  detach();
  closed = true;
  await server.close();
}

describe('market data under seeded random order flows, with small history limits and a restart', () => {
  it.each([
    [101, 12, 7, 90, {}],
    [202, 1, 1, 70, {}],
    [303, 40, 25, 90, { codec: 'json', durability: 'interval' }],
  ])('seed %i (orderHistory %i, recentTrades %i, %i steps, %j): REST book = WS mirrors = engine after every step; trades = answers; orders = reference; evictions exact', async (seed, orderHistory, recentTrades, steps, extra) => {
    await runFlow(seed, { orderHistory, recentTrades, ...extra }, steps);
  }, 60_000);
});



// ---------------------------------------------------------------------------------------------

/** The events of a symbol's outbox in `dataDir`, read from the files (the engine may hold them open). */
function outboxEvents(dataDir: string, symbol = SYM, codec: 'binary' | 'json' = 'binary'): Event[] {
  const reader = new WalReader(path.join(dataDir, symbol, 'ev'), {});
  const rec = new WalRecord();
  const c = codec === 'json' ? jsonCodec : binaryCodec;
  const out: Event[] = [];
  try {
    for (let r = reader.next(rec); r; r = reader.next(rec)) {
      const e = c.decode(r.buf.subarray(r.start, r.end)) as Event;
      if (e.type !== 'cmdEnd') out.push(e);
    }
  } finally {
    reader.close();
  }
  return out;
}

/** The view GET must show of a reference order. */
function wantView(o: RefOrder, user: string, symbol = SYM): Record<string, unknown> {
  const want: Record<string, unknown> = {
    orderId: o.orderId,
    symbol,
    user,
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
  return want;
}

const NAMES: Record<number, { name: string; key: string }> = {
  [userIdOf('alice')]: { name: 'alice', key: ALICE },
  [userIdOf('bob')]: { name: 'bob', key: BOB },
  [userIdOf('carol')]: { name: 'carol', key: CAROL },
};

describe('the outbox rolling to new segments', () => {
  it('books of 1,000-order frames across three outbox segments: WS mirrors = REST = engine after each frame; after a restart the book, trades and order views are the same', async () => {
    const settings = { rateLimit: 1_000_000, rateBurst: 1_000_000 };
    let server = await start(settings);
    let closed = false;
    closers.unshift(async () => {
      if (!closed) await server.close();
    });
    const feeds = await subscribeAll(server.url);
    const a = await connect(server.url, `?apiKey=${ALICE}`);
    const b = await connect(server.url, `?apiKey=${BOB}`);
    const rand = rng(5);
    const evDir = path.join(server.dataDir, SYM, 'ev');
    const segments = (): number => fs.readdirSync(evDir).filter((f) => f.endsWith('.wal')).length;
    let frames = 0;
    while (segments() < 3) {
      expect(frames, 'three segments within 60 frames').toBeLessThan(60);
      const list = Array.from({ length: 1000 }, () => {
        const side = rand() < 0.5 ? 'buy' : 'sell';
        return { symbol: SYM, side, type: 'limit', price: side === 'buy' ? 900 + Math.floor(rand() * 120) : 1000 + Math.floor(rand() * 120), qty: 1 + Math.floor(rand() * 5), tif: rand() < 0.7 ? 'GTC' : 'IOC' };
      });
      const r = await (frames % 2 === 0 ? a : b).call({ op: 'order', order: list });
      expect(r.results?.every((x) => x.ok === true)).toBe(true);
      frames++;
      const rest = await book(server.url, 1000);
      expect({ bids: rest.bids, asks: rest.asks }).toEqual(engineBook(server, 1000));
      for (const m of feeds.mirrors) {
        await until(() => {
          m.pull();
          return m.seq >= rest.seq;
        }, `depth ${m.depth} to reach ${rest.seq}`);
        expect(m.problems).toEqual([]);
        expect(m.view()).toEqual({ bids: rest.bids.slice(0, m.depth), asks: rest.asks.slice(0, m.depth) });
      }
    }
    const ref = new Reference();
    for (const e of outboxEvents(server.dataDir)) ref.apply(e);
    expect(ref.trades.length).toBeGreaterThan(1000);
    const sample = [...ref.orders.values()].filter((o) => o.orderId % 53 === 0 || ref.live(o));
    const views = async (): Promise<unknown[]> => {
      const out: unknown[] = [];
      for (const o of sample.filter((_x, i) => i % 7 === 0)) out.push((await new Client(server.url, NAMES[o.userId]?.key as string).get(o.orderId)).body);
      return out;
    };
    const before = { book: await book(server.url, 1000), trades: await trades(server.url, 1000), views: await views() };
    expect(before.trades.map((t) => t.id)).toEqual(ref.trades.slice(-1000).reverse().map((t) => t.eventSeq));
    expect(before.views).toEqual(sample.filter((_x, i) => i % 7 === 0).map((o) => ({ order: wantView(o, NAMES[o.userId]?.name as string) })));
    closed = true;
    await server.close();
    server = await start(settings, server.dataDir);
    closed = false;
    const after = { book: await book(server.url, 1000), trades: await trades(server.url, 1000), views: await views() };
    expect(after.book.seq).toBeGreaterThanOrEqual(before.book.seq);
    expect({ ...after, book: { bids: after.book.bids, asks: after.book.asks } }).toEqual({ ...before, book: { bids: before.book.bids, asks: before.book.asks } });
  }, 60_000);
});

describe('two symbols', () => {
  it('one connection with a book subscription per symbol (depths 3 and 10,000, beyond what REST serves) and both trades channels: each symbol\'s stream is its own book, trades and orders carry their symbol; order ids are per symbol', async () => {
    const S2 = 'ETH-X';
    const settings = {
      instruments: [
        { symbol: SYM, minPrice: 100, maxPrice: 10_000, maxQty: 1000 },
        { symbol: S2, minPrice: 1, maxPrice: 100_000, maxQty: 1000 },
      ],
      rateLimit: 1_000_000,
      rateBurst: 1_000_000,
    };
    const server = await start(settings);
    closers.unshift(() => server.close());
    const md = await connect(server.url);
    const depthOf: Record<string, number> = { [SYM]: 3, [S2]: 10_000 };
    for (const s of [SYM, S2]) {
      expect(await md.call({ op: 'subscribe', channel: 'book', symbol: s, depth: depthOf[s] })).toMatchObject({ ok: true });
      expect(await md.call({ op: 'subscribe', channel: 'trades', symbol: s })).toMatchObject({ ok: true });
    }
    const a = await connect(server.url, `?apiKey=${ALICE}`);
    expect(await a.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    const rand = rng(9);
    const levelsOf = (s: string, d: number): { bids: Level[]; asks: Level[] } => {
      const bk = server.engine.actor(s)?.book;
      return { bids: bk?.depth(BookSide.Buy, d).map((l) => [l.price, l.qty] as Level) ?? [], asks: bk?.depth(BookSide.Sell, d).map((l) => [l.price, l.qty] as Level) ?? [] };
    };
    const answered = new Map<string, number[]>([
      [SYM, []],
      [S2, []],
    ]);
    for (let f = 0; f < 5; f++) {
      for (const s of [SYM, S2]) {
        const base = s === SYM ? 1000 : 50_000;
        const spread = s === SYM ? 50 : 3000;
        const list = Array.from({ length: 1000 }, () => {
          const side = rand() < 0.5 ? 'buy' : 'sell';
          return { symbol: s, side, type: 'limit', price: side === 'buy' ? base - spread + Math.floor(rand() * (spread + 10)) : base - 10 + Math.floor(rand() * spread), qty: 1 + Math.floor(rand() * 5) };
        });
        const r = await a.call({ op: 'order', order: list });
        expect(r.results?.every((x) => x.ok === true)).toBe(true);
        for (const x of r.results ?? []) for (const e of x.events ?? []) if (e.type === 'trade') answered.get(s)?.push(e.eventSeq);
      }
      for (const s of [SYM, S2]) {
        const rest = await request(server.url, 'GET', `/v1/book/${s}?depth=1000`);
        expect({ bids: rest.body.bids, asks: rest.body.asks }).toEqual(levelsOf(s, 1000));
        const frames = (): WsMsg[] => md.received.filter((m) => m.symbol === s && (m.type === 'book.snapshot' || m.type === 'book.update'));
        await until(() => frames().some((m) => m.seq === rest.body.seq), `${s}'s book stream to reach ${rest.body.seq}`);
        const bids = new Map<number, number>();
        const asks = new Map<number, number>();
        let seq = -1;
        for (const m of frames()) {
          if (m.type === 'book.update') expect(m.seq, s).toBe(seq + 1);
          seq = m.seq as number;
          for (const [side, levels] of [
            [bids, m.bids],
            [asks, m.asks],
          ] as const) {
            for (const [p, q] of levels ?? []) {
              if (q === 0) side.delete(p);
              else side.set(p, q);
            }
          }
        }
        expect({ s, bids: [...bids].sort((x, y) => y[0] - x[0]), asks: [...asks].sort((x, y) => x[0] - y[0]) }).toEqual({ s, ...levelsOf(s, depthOf[s] as number) });
      }
    }
    expect(levelsOf(S2, 10_000).bids.length + levelsOf(S2, 10_000).asks.length, 'S2 holds more levels than REST serves').toBeGreaterThan(2000);
    for (const s of [SYM, S2]) {
      const want = answered.get(s) ?? [];
      expect(want.length).toBeGreaterThan(0);
      const rest = (await request(server.url, 'GET', `/v1/trades/${s}?limit=1000`)).body.trades ?? [];
      expect(rest.every((t) => t.symbol === s)).toBe(true);
      expect(rest.map((t) => t.id)).toEqual([...want].sort((x, y) => y - x).slice(0, 1000));
      await until(() => md.all((m) => m.type === 'trades' && m.symbol === s).flatMap((m) => m.trades ?? []).length >= want.length, `${s}'s trades`);
      expect(md.all((m) => m.type === 'trades' && m.symbol === s).flatMap((m) => (m.trades ?? []).map((t) => t.id))).toEqual([...want].sort((x, y) => x - y));
    }
    const alice = new Client(server.url, ALICE);
    expect((await alice.order(1, SYM)).symbol).toBe(SYM);
    expect((await alice.order(1, S2)).symbol).toBe(S2);
    expect((await alice.order(1, SYM)).price).toBeLessThan(2000);
    expect((await alice.order(1, S2)).price).toBeGreaterThan(40_000);
    const orderFrames = a.all((m) => m.type === 'orders');
    expect(orderFrames.length).toBeGreaterThan(0);
    for (const f of orderFrames) for (const o of f.orders ?? []) expect(o.symbol).toBe(f.symbol);
  }, 60_000);
});

/**
 * Copies a data directory that a running server is writing, in a fixed order (each symbol's
 * outbox before its command log, so the copy of the outbox lags). A file that goes while the
 * directory is copied (a temporary file renamed into place, such as the publisher's cursor) is
 * skipped, as a crash at that moment would have left one name or the other.
 */
async function copyWhileWritten(src: string, dest: string): Promise<void> {
  fs.mkdirSync(dest, { recursive: true });
  let names: string[];
  try {
    names = fs.readdirSync(src);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw err;
  }
  const rank = (n: string): number => (n === 'ev' ? 0 : n === 'cmd' ? 1 : 2);
  names.sort((x, y) => rank(x) - rank(y) || (x < y ? -1 : x > y ? 1 : 0));
  for (const name of names) {
    const from = path.join(src, name);
    const to = path.join(dest, name);
    let st: fs.Stats;
    try {
      st = fs.lstatSync(from);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (st.isDirectory()) await copyWhileWritten(from, to);
    else if (st.isFile()) {
      try {
        await fsp.copyFile(from, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
  }
}

describe('starting on crash images of the data directory', () => {
  it('copies taken while orders, cancels and amendments stream in (the copy of the outbox may lack the last commands\' events, derived again at the start): the book, its seq, the trades and the order views agree with the recovered outbox and the engine', async () => {
    const settings = { rateLimit: 1_000_000, rateBurst: 1_000_000 };
    const server = await start(settings);
    let closed = false;
    closers.unshift(async () => {
      if (!closed) await server.close();
    });
    const a = await connect(server.url, `?apiKey=${ALICE}`);
    const b = await connect(server.url, `?apiKey=${BOB}`);
    const rand = rng(77);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    let stop = false;
    const flood = async (ws: WsClient): Promise<void> => {
      while (!stop) {
        const list = Array.from({ length: 50 }, () => {
          const side = pick(['buy', 'sell'] as const);
          if (rand() < 0.1) return { symbol: SYM, side, type: 'market', qty: 1 + Math.floor(rand() * 5) };
          return {
            symbol: SYM,
            side,
            type: 'limit',
            price: side === 'buy' ? 990 + Math.floor(rand() * 15) : 1000 + Math.floor(rand() * 15),
            qty: 1 + Math.floor(rand() * 5),
            tif: pick(['GTC', 'GTC', 'IOC', 'FOK', 'POST']),
            stp: pick(['NONE', 'CANCEL_OLDEST', 'DECREMENT_CANCEL']),
          };
        });
        const r = await ws.call({ op: 'order', order: list });
        for (const o of (r.results ?? []).filter((x) => x.order?.status === 'open').slice(0, 5)) {
          if (rand() < 0.5) ws.send({ op: 'cancel', symbol: SYM, orderId: o.order?.orderId });
          else ws.send({ op: 'amend', symbol: SYM, orderId: o.order?.orderId, price: 995 + Math.floor(rand() * 10) });
        }
      }
    };
    const running = [flood(a), flood(b)];
    const copies: string[] = [];
    for (let i = 0; i < 3; i++) {
      await until(() => (server.engine.actor(SYM)?.durableSeq ?? 0) > 1500 * (i + 1), 'more commands');
      const dir = tmpDir('gx3-crash-image-');
      // Copied while the server writes on: the two logs are caught at different points.
      await copyWhileWritten(server.dataDir, dir);
      fs.rmSync(path.join(dir, 'LOCK'), { force: true });
      copies.push(dir);
    }
    stop = true;
    await Promise.all(running);
    closed = true;
    await server.close();
    for (const dir of copies) {
      const s = await start(settings, dir);
      try {
        const ref = new Reference();
        for (const e of outboxEvents(dir)) ref.apply(e);
        const rest = await book(s.url, 1000);
        expect({ bids: rest.bids, asks: rest.asks }).toEqual(engineBook(s, 1000));
        expect(rest.seq, 'the book\'s seq is the last event\'s').toBe(ref.lastSeq);
        const live = [...ref.orders.values()].filter((o) => ref.live(o));
        expect(live.every((o) => s.engine.actor(SYM)?.book.getOrder(o.orderId)?.qty === o.remainingQty)).toBe(true);
        expect(s.engine.actor(SYM)?.book.orderCount).toBe(live.length);
        const all = [...ref.orders.values()];
        for (const o of [...all.filter((_x, i) => i % 41 === 0), ...all.slice(-40)]) {
          const who = NAMES[o.userId] as { name: string; key: string };
          expect((await new Client(s.url, who.key).get(o.orderId)).body.order).toEqual(wantView(o, who.name));
        }
        expect((await trades(s.url, 1000)).map((t) => t.id)).toEqual(ref.trades.slice(-1000).reverse().map((t) => t.eventSeq));
        const ws = await connect(s.url);
        await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 1000 });
        const snap = await ws.next((m) => m.type === 'book.snapshot');
        expect({ seq: snap.seq, bids: snap.bids, asks: snap.asks }).toEqual({ seq: rest.seq, bids: rest.bids, asks: rest.asks });
        await ws.close();
      } finally {
        await s.close();
      }
    }
  }, 60_000);
});

// ---------------------------------------------------------------------------------------------

describe('a resubmitted client order id whose order was pushed out of the order history', () => {
  it('before a restart: the answer is the original outcome, its order included', async () => {
    const server = await start({ orderHistory: 2 });
    closers.unshift(() => server.close());
    const alice = new Client(server.url, ALICE);
    const first = await alice.post({ side: 'buy', price: 500, qty: 2, tif: 'IOC', clientOrderId: 'ioc-1' });
    expect(first.body.order).toMatchObject({ orderId: 1, status: 'canceled', reason: 'UNFILLED', clientOrderId: 'ioc-1' });
    for (let i = 0; i < 4; i++) await alice.place({ side: 'buy', price: 500, qty: 1, tif: 'IOC' });
    expect((await alice.get(1)).status, 'pushed out of the history').toBe(404);
    const again = await alice.post({ side: 'buy', price: 500, qty: 2, tif: 'IOC', clientOrderId: 'ioc-1' });
    expect(again.status).toBe(200);
    expect(again.body).toEqual({ ...first.body, duplicate: true });
  });
});

describe('a resubmitted client order id whose order was pushed out of the order history, after a restart', () => {
  it('answers the original outcome with its order (not an answer without `order`), over HTTP and WebSocket', async () => {
    let server = await start({ orderHistory: 2 });
    closers.unshift(() => server.close());
    const alice = new Client(server.url, ALICE);
    const first = await alice.post({ side: 'buy', price: 500, qty: 2, tif: 'IOC', clientOrderId: 'ioc-1' });
    expect(first.body.order).toMatchObject({ orderId: 1, status: 'canceled', reason: 'UNFILLED', clientOrderId: 'ioc-1' });
    // Four more orders end: order 1 leaves the history of ended orders (orderHistory 2)...
    for (let i = 0; i < 4; i++) await alice.place({ side: 'buy', price: 500, qty: 1, tif: 'IOC' });
    // ...but its client order id stays in alice's window (100,000 by default).
    await server.close();
    server = await start({ orderHistory: 2 }, server.dataDir);
    const again = await new Client(server.url, ALICE).post({ side: 'buy', price: 500, qty: 2, tif: 'IOC', clientOrderId: 'ioc-1' });
    expect(again.status).toBe(200);
    expect(again.body.duplicate).toBe(true);
    expect(again.body.events).toEqual(first.body.events);
    // Before the fix: {"events":[...],"duplicate":true}, without `order`.
    expect(again.body.order, 'the duplicate answer carries the order').toEqual(first.body.order);
    const ws = await connect(server.url, `?apiKey=${ALICE}`);
    const viaWs = await ws.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'limit', price: 500, qty: 2, tif: 'IOC', clientOrderId: 'ioc-1' } });
    expect(viaWs).toMatchObject({ ok: true, duplicate: true });
    expect(viaWs.order, 'the duplicate answer carries the order (WebSocket)').toEqual(first.body.order);
  });
});
