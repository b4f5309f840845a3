// The WebSocket side against the REST side, from a review: L2 streams against GET /v1/book at several
// depths, seq continuity (across a restart, and when the feed fails in the middle of a batch: that
// one failed on the code before its fix), trades and own-order streams, request ids and array frames,
// frames with ignored fields, subscriptions after unsubscribe.
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { resolveConfig } from '../src/config.js';
import { startServer as startRaw } from '../src/server.js';
import { ALICE, API_KEYS, BOB, book, Client, gatedIO, pathAwareIO, removeTmpDirs, rng, SEGMENT, silentLogger, start, SYM, TEST_INSTRUMENT, tmpDir, trades, until, WsClient, wsUrl, type TestServer, type WsMsg } from './helpers.js';

afterAll(removeTmpDirs);

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

async function connect(server: { url: string }, query = ''): Promise<WsClient> {
  const c = await WsClient.connect(wsUrl(server.url, query));
  closers.push(() => c.close());
  return c;
}

async function startServer(settings: Record<string, unknown> = {}, dir?: string): Promise<TestServer> {
  const s = await start(settings, dir);
  let closed = false;
  closers.unshift(async () => {
    if (!closed) await s.close();
    closed = true;
  });
  return s;
}


/** A book reconstructed from a snapshot and its numbered updates; records every problem seen. */
class L2Mirror {
  bids = new Map<number, number>();
  asks = new Map<number, number>();
  seq = -1;
  problems: string[] = [];
  private cursor = 0;
  constructor(
    readonly ws: WsClient,
    readonly depth: number,
  ) {}

  /** Applies every book frame received since the last call. */
  pull(): void {
    for (; this.cursor < this.ws.received.length; this.cursor++) {
      const m = this.ws.received[this.cursor] as WsMsg;
      if (m.type === 'book.snapshot') {
        this.bids = new Map(m.bids ?? []);
        this.asks = new Map(m.asks ?? []);
        this.seq = m.seq ?? -1;
      } else if (m.type === 'book.update') {
        if (m.seq !== this.seq + 1) this.problems.push(`depth ${this.depth}: update seq ${m.seq} after ${this.seq}`);
        this.seq = m.seq ?? -1;
        for (const [side, levels] of [
          [this.bids, m.bids],
          [this.asks, m.asks],
        ] as const) {
          for (const [p, q] of levels ?? []) {
            if (q === 0) side.delete(p);
            else side.set(p, q);
          }
        }
      }
    }
  }

  view(): { bids: [number, number][]; asks: [number, number][] } {
    const sort = (m: Map<number, number>, desc: boolean): [number, number][] => [...m.entries()].sort((a, b) => (desc ? b[0] - a[0] : a[0] - b[0]));
    return { bids: sort(this.bids, true), asks: sort(this.asks, false) };
  }
}

const limit = (side: 'buy' | 'sell', price: number, qty: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ symbol: SYM, side, type: 'limit', price, qty, ...extra });

describe('L2 stream against GET /v1/book', () => {
  it.each([[12345, 'binary'], [777, 'json'], [99, 'none'], [98, 'interval']])('random orders (single and array frames, STP), cancels, amends and replaces (seed %i, %s): every depth\'s stream applied to its snapshot equals GET /v1/book, seq one by one; trades and own orders follow', async (seed, codec) => {
    const server = await startServer(codec === 'none' || codec === 'interval' ? { durability: codec } : { codec });
    const depths = [1, 2, 3, 5, 1000];
    const mirrors: L2Mirror[] = [];
    // One connection per depth (a connection holds one book subscription per symbol).
    for (const d of depths) {
      const c = await connect(server);
      expect(await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: d })).toMatchObject({ ok: true });
      await c.next((m) => m.type === 'book.snapshot');
      mirrors.push(new L2Mirror(c, d));
    }
    const tradesWs = await connect(server);
    expect(await tradesWs.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true });
    const a = await connect(server, `?apiKey=${ALICE}`);
    const b = await connect(server, `?apiKey=${BOB}`);
    for (const c of [a, b]) expect(await c.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    const users = [a, b];
    const keyOf = (ws: WsClient): string => (ws === a ? ALICE : BOB);
    const nameOf = (ws: WsClient): string => (ws === a ? 'alice' : 'bob');
    const mine = new Map<WsClient, Set<number>>([
      [a, new Set()],
      [b, new Set()],
    ]);
    const open: { ws: WsClient; id: number }[] = [];
    const rand = rng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const randomOrder = (): Record<string, unknown> => {
      const side = pick(['buy', 'sell'] as const);
      const price = side === 'buy' ? 1000 + Math.floor(rand() * 8) : 1004 + Math.floor(rand() * 8);
      const tif = pick(['GTC', 'GTC', 'GTC', 'IOC', 'POST', 'FOK'] as const);
      const stp = pick(['NONE', 'NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] as const);
      return rand() < 0.1 ? { symbol: SYM, side, type: 'market', qty: 1 + Math.floor(rand() * 6), stp } : limit(side, price, 1 + Math.floor(rand() * 6), { tif, stp });
    };
    const note = (ws: WsClient, ans: WsMsg): void => {
      if (ans.order === undefined) return;
      mine.get(ws)?.add(ans.order.orderId);
      if (['open', 'partially_filled'].includes(ans.order.status) && !open.some((x) => x.id === ans.order?.orderId)) open.push({ ws, id: ans.order.orderId });
    };
    for (let step = 0; step < 120; step++) {
      const ws = pick(users);
      const r = rand();
      if (r < 0.15) {
        // An array frame: its orders go into one durable batch (often one L2 update).
        const list = Array.from({ length: 2 + Math.floor(rand() * 5) }, randomOrder);
        const ans = await ws.call({ op: 'order', order: list });
        expect(ans.results).toHaveLength(list.length);
        for (const [i, res] of (ans.results ?? []).entries()) {
          expect(res.ok, JSON.stringify(res)).toBe(true);
          // Aligned: the result in slot i is the order of slot i (its accepted or rejected event says what it asked for).
          expect(res.order, JSON.stringify([list[i], res])).toMatchObject({ side: list[i]?.side, type: list[i]?.type });
          expect(res.events?.[0], JSON.stringify([list[i], res])).toMatchObject({ side: list[i]?.side, qty: list[i]?.qty, price: list[i]?.price ?? 0 });
          note(ws, res);
        }
      } else if (r < 0.55 || open.length === 0) {
        const ans = await ws.call({ op: 'order', order: randomOrder() });
        expect(ans.ok, JSON.stringify(ans)).toBe(true);
        note(ws, ans);
      } else {
        const k = Math.floor(rand() * open.length);
        const o = open[k] as { ws: WsClient; id: number };
        const r2 = rand();
        let ans: WsMsg;
        if (r2 < 0.35) ans = await o.ws.call({ op: 'cancel', symbol: SYM, orderId: o.id });
        else if (r2 < 0.6) ans = await o.ws.call({ op: 'amend', symbol: SYM, orderId: o.id, qty: 1 + Math.floor(rand() * 6) });
        else if (r2 < 0.85) ans = await o.ws.call({ op: 'amend', symbol: SYM, orderId: o.id, price: 1000 + Math.floor(rand() * 12) });
        else ans = await o.ws.call({ op: 'amend', symbol: SYM, orderId: o.id, price: 1000 + Math.floor(rand() * 12), qty: 1 + Math.floor(rand() * 6) });
        if (ans.ok !== true) expect(ans.error?.code, JSON.stringify(ans)).toBe('REJECTED');
      }
      // Which orders still rest: drop those that ended (known through GET).
      for (let i = open.length - 1; i >= 0; i--) {
        const x = open[i] as { ws: WsClient; id: number };
        const g = await new Client(server.url, keyOf(x.ws)).order(x.id);
        if (!['open', 'partially_filled'].includes(g.status)) open.splice(i, 1);
      }
      const rest = await book(server.url, 1000);
      for (const m of mirrors) {
        await until(() => {
          m.pull();
          return m.seq >= rest.seq;
        }, `depth ${m.depth} to reach seq ${rest.seq}`);
        expect(m.problems).toEqual([]);
        expect(m.seq).toBe(rest.seq);
        const want = await book(server.url, Math.min(m.depth, 1000));
        expect({ step, depth: m.depth, ...m.view() }).toEqual({ step, depth: m.depth, bids: want.bids, asks: want.asks });
      }
    }
    // Trades: each once, as GET /v1/trades has them.
    const all = await trades(server.url, 1000);
    await until(() => tradesWs.all((m) => m.type === 'trades').flatMap((m) => m.trades ?? []).length >= all.length, 'every trade on the trades channel');
    const streamed = tradesWs.all((m) => m.type === 'trades').flatMap((m) => m.trades ?? []);
    expect(streamed).toEqual([...all].reverse().map((t) => ({ id: t.id, price: t.price, qty: t.qty, takerSide: t.takerSide, ts: t.ts })));
    expect(all.length).toBeGreaterThan(10);
    // Own orders: only the user's, and the last update of each of its orders is the order as GET shows it.
    for (const ws of users) {
      expect(await ws.call({ op: 'ping' })).toMatchObject({ pong: true });
      const updates = ws.all((m) => m.type === 'orders').flatMap((m) => m.orders ?? []);
      expect(updates.every((o) => o.user === nameOf(ws)), JSON.stringify(updates.filter((o) => o.user !== nameOf(ws)))).toBe(true);
      const last = new Map<number, unknown>();
      for (const o of updates) last.set(o.orderId, o);
      for (const id of mine.get(ws) ?? []) {
        const g = await new Client(server.url, keyOf(ws)).order(id);
        expect({ id, last: last.get(id) }).toEqual({ id, last: g });
      }
    }
  }, 30_000);
});

describe('shutdown with WebSocket orders in flight', () => {
  it.each(['order', 'array', 'amend'])('every %s taken before close() is answered on its connection before the 1001 close', async (kind) => {
    const g = gatedIO();
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT] });
    const server = await startRaw(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io: g.io } });
    const shut: { closing?: Promise<void> } = {};
    closers.push(async () => {
      g.gate.holdAll = false;
      g.release();
      await (shut.closing ?? server.close());
    });
    const ws = await WsClient.connect(wsUrl(server.url, `?apiKey=${ALICE}`));
    closers.push(() => ws.close());
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    const resting = kind === 'amend' ? (await ws.call({ op: 'order', order: limit('buy', 1000, 5) })).order?.orderId : undefined;
    g.gate.holdAll = true; // processed, not durable
    const n = 20;
    for (let i = 0; i < n; i++) {
      if (kind === 'order') ws.send({ op: 'order', id: `o${i}`, order: limit('buy', 500 + i, 1) });
      else if (kind === 'array') ws.send({ op: 'order', id: `o${i}`, order: [limit('buy', 500 + i, 1), limit('sell', 5000 + i, 1)] });
      else ws.send({ op: 'amend', id: `o${i}`, symbol: SYM, orderId: resting, price: 1000 + i + 1 });
    }
    const before = actor.processedSeq;
    // Taken: processed, or (amendments of one order, carried out one at a time) waiting their turn.
    await until(() => actor.processedSeq >= before + n * (kind === 'array' ? 2 : 1) || (kind === 'amend' && server.gateway.amendmentsInFlight >= n), 'the orders taken');
    const closing = server.close();
    shut.closing = closing;
    await until(() => g.held() > 0, 'a held fsync');
    g.gate.holdAll = false;
    g.release();
    await closing;
    await until(() => ws.closeInfo !== undefined, 'the close');
    expect(ws.closeInfo?.code).toBe(1001);
    // Every request taken was durable by the end of the shutdown: its answer must have been sent.
    const answered = ws.received.filter((m) => typeof m.id === 'string' && m.id.startsWith('o')).map((m) => m.id);
    expect(answered.length, JSON.stringify(ws.received.slice(-3))).toBe(n);
  }, 30_000);
});

describe('restart', () => {
  it('after a restart: the snapshot seq is above every seq served before (or the same book), updates go on one by one and equal GET /v1/book; fills of orders placed before reach their owner', async () => {
    const dir = tmpDir();
    let server = await startServer({}, dir);
    let ws = await connect(server);
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 3 })).toMatchObject({ ok: true });
    const alice = await connect(server, `?apiKey=${ALICE}`);
    const placed: number[] = [];
    for (let i = 0; i < 4; i++) placed.push((await alice.call({ op: 'order', order: limit('sell', 1000 + i, 2) })).order?.orderId as number);
    expect(await alice.call({ op: 'cancel', symbol: SYM, orderId: placed[3] })).toMatchObject({ ok: true });
    // A rejected cancel: an event, no L2 change.
    expect(await alice.call({ op: 'cancel', symbol: SYM, orderId: placed[3] })).toMatchObject({ ok: false });
    const m1 = new L2Mirror(ws, 3);
    const last = await book(server.url, 3);
    await until(() => {
      m1.pull();
      return m1.seq >= last.seq;
    }, 'the updates before the restart');
    const served = new Map<number, string>();
    for (const m of ws.received) if (m.type?.startsWith('book') === true) served.set(m.seq as number, '');
    served.set(last.seq, JSON.stringify(m1.view()));
    await ws.close();
    await alice.close();
    await server.close();

    server = await startServer({}, dir);
    ws = await connect(server);
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 3 })).toMatchObject({ ok: true });
    const snap = await ws.next((m) => m.type === 'book.snapshot');
    const m2 = new L2Mirror(ws, 3);
    m2.pull();
    if (served.has(snap.seq as number)) expect(JSON.stringify(m2.view())).toBe(served.get(snap.seq as number));
    expect(snap.seq).toBeGreaterThanOrEqual(last.seq);
    const alice2 = await connect(server, `?apiKey=${ALICE}`);
    expect(await alice2.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    const bob = await connect(server, `?apiKey=${BOB}`);
    expect(await bob.call({ op: 'order', order: { symbol: SYM, side: 'buy', type: 'market', qty: 3 } })).toMatchObject({ ok: true });
    expect(await bob.call({ op: 'order', order: limit('buy', 990, 1) })).toMatchObject({ ok: true });
    const now = await book(server.url, 3);
    await until(() => {
      m2.pull();
      return m2.seq >= now.seq;
    }, 'the updates after the restart');
    expect(m2.problems).toEqual([]);
    expect(m2.view()).toEqual({ bids: now.bids, asks: now.asks });
    expect(m2.seq).toBe(now.seq);
    await until(() => alice2.all((m) => m.type === 'orders').flatMap((m) => m.orders ?? []).some((o) => o.orderId === placed[1]), "alice's second order's fill");
    const updates = alice2.all((m) => m.type === 'orders').flatMap((m) => m.orders ?? []);
    expect(updates.map((o) => [o.orderId, o.status, o.filledQty, o.remainingQty])).toEqual([
      [placed[0], 'filled', 2, 0],
      [placed[1], 'partially_filled', 1, 1],
    ]);
  }, 30_000);
});

describe('concurrent order entry', () => {
  it('frames from several connections at once: results aligned with their orders, each request answered once under its id, L2 streams at every depth equal GET /v1/book, trades once each', async () => {
    const server = await startServer();
    const mirrors: L2Mirror[] = [];
    for (const d of [1, 2, 4, 1000]) {
      const c = await connect(server);
      expect(await c.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: d })).toMatchObject({ ok: true });
      mirrors.push(new L2Mirror(c, d));
    }
    const tradesWs = await connect(server);
    expect(await tradesWs.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true });
    const conns = [await connect(server, `?apiKey=${ALICE}`), await connect(server, `?apiKey=${BOB}`), await connect(server, `?apiKey=${ALICE}`)];
    const rand = rng(4242);
    const sent = new Map<string, { ws: WsClient; orders: Record<string, unknown>[] | Record<string, unknown> }>();
    for (let i = 0; i < 300; i++) {
      const ws = conns[i % conns.length] as WsClient;
      const mk = (): Record<string, unknown> => {
        const side = rand() < 0.5 ? 'buy' : 'sell';
        return limit(side, side === 'buy' ? 1000 + Math.floor(rand() * 6) : 1003 + Math.floor(rand() * 6), 1 + Math.floor(rand() * 4), { tif: rand() < 0.2 ? 'IOC' : 'GTC' });
      };
      const orders = rand() < 0.3 ? Array.from({ length: 1 + Math.floor(rand() * 4) }, mk) : mk();
      const id = i % 2 === 0 ? `c${i}` : i;
      sent.set(String(id), { ws, orders });
      ws.send({ op: 'order', id, order: orders });
    }
    for (const [id, { ws, orders }] of sent) {
      const ans = await ws.next((m) => String(m.id) === id, `the answer to ${id}`);
      const list = Array.isArray(orders) ? orders : [orders];
      const results = Array.isArray(orders) ? (ans.results ?? []) : [ans];
      expect(results).toHaveLength(list.length);
      for (const [k, r] of results.entries()) {
        expect(r.ok, JSON.stringify(r)).toBe(true);
        expect(r.events?.[0]).toMatchObject({ type: 'accepted', side: list[k]?.side, price: list[k]?.price, qty: list[k]?.qty });
      }
    }
    for (const ws of conns) {
      expect(await ws.call({ op: 'ping' })).toMatchObject({ pong: true });
      const ids = ws.received.filter((m) => m.id !== undefined && sent.has(String(m.id))).map((m) => String(m.id));
      expect(new Set(ids).size).toBe(ids.length);
    }
    const rest = await book(server.url, 1000);
    for (const m of mirrors) {
      await until(() => {
        m.pull();
        return m.seq >= rest.seq;
      }, `depth ${m.depth} at seq ${rest.seq}`);
      expect(m.problems).toEqual([]);
      const want = await book(server.url, Math.min(m.depth, 1000));
      expect(m.view()).toEqual({ bids: want.bids, asks: want.asks });
    }
    const all = await trades(server.url, 1000);
    await until(() => tradesWs.all((m) => m.type === 'trades').flatMap((m) => m.trades ?? []).length >= all.length, 'the trades');
    expect(tradesWs.all((m) => m.type === 'trades').flatMap((m) => m.trades ?? []).map((t) => t.id)).toEqual([...all].reverse().map((t) => t.id));
  }, 30_000);
});

describe('a feed that fails in the middle of a batch', () => {
  it('sends what it applied before the failure: GET /v1/book at the same seq equals what book subscribers hold', async () => {
    const { nodeFileIO } = await import('@gx3/wal');
    const fail = { on: false };
    const io = pathAwareIO((pathOf) => ({
      // While `fail.on`: reads of the outbox's segments after its first fail (EIO).
      read: (fd, buf, offset, length, position) => {
        const p = pathOf(fd);
        if (fail.on && p.includes('/ev/') && !p.endsWith('00000000000000000000.wal')) throw Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
        return nodeFileIO.read(fd, buf, offset, length, position);
      },
    }));
    const config = resolveConfig({ host: '127.0.0.1', port: 0, dataDir: tmpDir(), apiKeys: API_KEYS, instruments: [TEST_INSTRUMENT], rateBurst: 100_000, rateLimit: 100_000 });
    const server = await startRaw(config, { logger: silentLogger, engine: { segmentSize: SEGMENT, io } });
    closers.unshift(() => server.close());
    const md = await connect(server);
    expect(await md.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 10 })).toMatchObject({ ok: true });
    const mirror = new L2Mirror(md, 10);
    const alice = await connect(server, `?apiKey=${ALICE}`);
    const actor = server.engine.actor(SYM);
    if (actor === undefined) throw new Error('no actor');
    // Resting orders (each its own level) until the outbox's first segment is nearly full.
    let n = 0;
    const frame = (base = 100): Record<string, unknown>[] => Array.from({ length: 1000 }, () => limit('buy', base + (n++ % 1000), 1));
    while (actor.durableEventOffset < SEGMENT - 150_000) expect((await alice.call({ op: 'order', order: frame() })).results).toHaveLength(1000);
    const before = await book(server.url, 10);
    await until(() => {
      mirror.pull();
      return mirror.seq >= before.seq;
    }, 'the updates so far');
    fail.on = true;
    // Its events (better bids than any before) run into the next segment: the feed reads the first part, then fails.
    expect((await alice.call({ op: 'order', order: frame(5000) })).results).toHaveLength(1000);
    const feed = server.gateway.feeds.get(SYM);
    await until(() => feed?.error !== undefined, 'the feed failed');
    const after = await book(server.url, 10);
    mirror.pull();
    expect(mirror.problems).toEqual([]);
    // Nothing more comes after the failure; the seq the subscribers are at is the book's seq...
    expect(mirror.seq).toBe(after.seq);
    // ...and the same seq means the same book.
    expect(mirror.view()).toEqual({ bids: after.bids, asks: after.asks });
  }, 30_000);
});

describe('market data before the answer', () => {
  it('on one connection: the book update, the trades and the own-order updates a command caused arrive before its answer (orders, cancels, size-increase amends)', async () => {
    const server = await startServer();
    const ws = await connect(server, `?apiKey=${ALICE}`);
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 5 })).toMatchObject({ ok: true });
    expect(await ws.call({ op: 'subscribe', channel: 'trades', symbol: SYM })).toMatchObject({ ok: true });
    expect(await ws.call({ op: 'subscribe', channel: 'orders' })).toMatchObject({ ok: true });
    const bob = new Client(server.url, BOB);
    const maker = await bob.place({ side: 'sell', price: 1000, qty: 5 });
    await until(() => ws.received.some((m) => m.type === 'book.update'), 'the maker on the book');
    const check = async (frame: Record<string, unknown>, wantTrade: boolean): Promise<WsMsg> => {
      const seqBefore = (await book(server.url, 5)).seq;
      const ans = await ws.call(frame);
      expect(ans.ok, JSON.stringify(ans)).toBe(true);
      const at = ws.received.indexOf(ans);
      const earlier = ws.received.slice(0, at);
      const now = await book(server.url, 5);
      expect(now.seq).toBeGreaterThan(seqBefore);
      expect(earlier.some((m) => m.type === 'book.update' && m.seq === now.seq), `book.update ${now.seq} before the answer`).toBe(true);
      const order = ans.order as { orderId: number; status: string; remainingQty: number };
      expect(earlier.some((m) => m.type === 'orders' && m.orders?.some((o) => o.orderId === order.orderId && o.status === order.status && o.remainingQty === order.remainingQty) === true), 'the order update before the answer').toBe(true);
      if (wantTrade) {
        const t = (await trades(server.url, 1))[0];
        expect(earlier.some((m) => m.type === 'trades' && m.trades?.some((x) => x.id === t?.id) === true), 'the trade before the answer').toBe(true);
      }
      return ans;
    };
    await check({ op: 'order', order: limit('buy', 1000, 2) }, true);
    const resting = await check({ op: 'order', order: limit('buy', 990, 2) }, false);
    const id = resting.order?.orderId;
    await check({ op: 'amend', symbol: SYM, orderId: id, qty: 4 }, false); // size increase: two commands
    await check({ op: 'amend', symbol: SYM, orderId: id, price: 1000 }, true); // a replace that trades
    await check({ op: 'cancel', symbol: SYM, orderId: id }, false);
    expect(maker.order.orderId).toBeGreaterThan(0);
  }, 20_000);
});

describe('subscriptions', () => {
  it('a resubscription at another depth replaces the first (its snapshot and updates at the new depth); after unsubscribe nothing comes; subscribers joining a depth mid-stream stay right', async () => {
    const server = await startServer();
    const alice = new Client(server.url, ALICE);
    for (let i = 0; i < 6; i++) await alice.place({ side: 'buy', price: 1000 + i, qty: 1 + i });
    const ws = await connect(server);
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 5 })).toMatchObject({ ok: true });
    expect(await ws.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 2 })).toMatchObject({ ok: true });
    const snaps = ws.all((m) => m.type === 'book.snapshot');
    expect(snaps.map((m) => m.bids?.length)).toEqual([5, 2]);
    // A second subscriber of depth 2 joins after an update.
    await alice.place({ side: 'buy', price: 1010, qty: 1 });
    const late = await connect(server);
    expect(await late.call({ op: 'subscribe', channel: 'book', symbol: SYM, depth: 2 })).toMatchObject({ ok: true });
    const mEarly = new L2Mirror(ws, 2);
    const mLate = new L2Mirror(late, 2);
    const x = await alice.place({ side: 'buy', price: 1011, qty: 1 });
    await alice.cancel(x.order.orderId);
    await alice.place({ side: 'sell', type: 'market', qty: 3 });
    const want = await book(server.url, 2);
    for (const m of [mEarly, mLate]) {
      await until(() => {
        m.pull();
        return m.seq >= want.seq;
      }, 'the updates');
      expect(m.problems).toEqual([]);
      expect(m.view()).toEqual({ bids: want.bids, asks: want.asks });
    }
    expect(ws.all((m) => m.type === 'book.update').every((m) => (m.bids?.length ?? 0) <= 4)).toBe(true);
    expect(await ws.call({ op: 'unsubscribe', channel: 'book', symbol: SYM })).toMatchObject({ ok: true, subscribed: false });
    const count = ws.all((m) => m.type?.startsWith('book') === true).length;
    await alice.place({ side: 'buy', price: 1020, qty: 1 });
    expect(await late.call({ op: 'ping' })).toMatchObject({ pong: true });
    await until(() => {
      mLate.pull();
      return mLate.seq === want.seq + 1;
    }, 'the late subscriber\'s update');
    expect(await ws.call({ op: 'ping' })).toMatchObject({ pong: true });
    expect(ws.all((m) => m.type?.startsWith('book') === true)).toHaveLength(count);
  }, 20_000);
});
