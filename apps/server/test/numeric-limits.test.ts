// A review of numeric limits end to end through the server, as a venue operator configures them:
// instruments whose maxQty is 2^53 - 1 or 2^48, bands of 2^31 - 1 ticks at 1 and ending at 2^53 - 1,
// price levels filled to exactly 2^53 - 1 lots by many large orders (and the lot after refused),
// market orders sweeping many huge levels, amendments that grow huge orders, order ids reaching
// 2^53 - 1, and client order ids of the longest length. Every answer must be correct to the last
// lot (the JSON text read losslessly, each integer a safe integer equal to what the engine's own
// book holds, through GET, the WebSocket L2 snapshot and updates, the order views and the events,
// and again after a restart) or a clear typed error: never a rounded number, a 500 or a crash.
import { Engine } from '@gx3/engine';
import { Side as BookSide } from '@gx3/orderbook';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { userIdOf } from '../src/auth.js';
import type { InstrumentConfig } from '../src/config.js';
import { ALICE, BOB, CAROL, removeTmpDirs, request, SEGMENT, start, tmpDir, until, WsClient, wsUrl, type TestServer } from './helpers.js';

afterAll(removeTmpDirs);

const running = new Set<TestServer>();
afterEach(async () => {
  for (const s of [...running]) {
    running.delete(s);
    await s.close();
  }
});

const MAX = Number.MAX_SAFE_INTEGER; // 2^53 - 1
const BMAX = BigInt(MAX);
const P48 = 2 ** 48;
const SPAN = 2 ** 31 - 1; // the widest band: 2^31 - 1 prices

/** A band of 2^31 - 1 ticks from 1, quantities up to 2^53 - 1. */
const WIDE: InstrumentConfig = { symbol: 'WIDE', minPrice: 1, maxPrice: SPAN, maxQty: MAX };
/** A band of 2^31 - 1 ticks from 1, quantities up to 2^48. */
const Q48: InstrumentConfig = { symbol: 'Q48', minPrice: 1, maxPrice: SPAN, maxQty: P48 };
/** A band of 2^30 ticks ending at 2^53 - 1, quantities up to 2^53 - 1. */
const HI: InstrumentConfig = { symbol: 'HI', minPrice: 2 ** 53 - 2 ** 30, maxPrice: MAX, maxQty: MAX };
/** The widest band ending at 2^53 - 1: 2^31 - 1 ticks from 2^53 - 2^31 + 1. */
const TOP: InstrumentConfig = { symbol: 'TOP', minPrice: 2 ** 53 - 2 ** 31 + 1, maxPrice: MAX, maxQty: MAX };
/** A band of 2^31 - 1 ticks ending at 2^53 - 2 (minPrice 2^53 - 2^31), quantities up to 2^48. */
const HI48: InstrumentConfig = { symbol: 'HI48', minPrice: 2 ** 53 - 2 ** 31, maxPrice: 2 ** 53 - 2, maxQty: P48 };

async function serve(instruments: InstrumentConfig[], dataDir?: string): Promise<TestServer> {
  const s = await start({ instruments }, dataDir);
  running.add(s);
  return s;
}

async function restart(s: TestServer, instruments: InstrumentConfig[]): Promise<TestServer> {
  running.delete(s);
  await s.close();
  return serve(instruments, s.dataDir);
}

// ---------------------------------------------------------------------------------------------
// Lossless JSON: every integer literal is read as a BigInt (JSON.parse would round one past 2^53).

type J = bigint | number | string | boolean | null | J[] | { [k: string]: J };

/** The number literals of a JSON text, outside its strings. */
function numberLiterals(text: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const c = text[i] as string;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j] as string)) j++;
      out.push(text.slice(i, j));
      i = j;
    } else i++;
  }
  return out;
}

/** The number literals of a JSON text that are not safe integers written plainly (rounded, unsafe, fractions). */
function unsafeLiterals(text: string): string[] {
  return numberLiterals(text).filter((lit) => !/^-?\d+$/.test(lit) || !Number.isSafeInteger(Number(lit)) || String(Number(lit)) !== lit.replace(/^-0$/, '0'));
}

const MARK = '@@number@@';

/** JSON.parse with every integer literal as a BigInt (other numbers as numbers). */
function exact(text: string): J {
  let out = '';
  for (let i = 0; i < text.length; ) {
    const c = text[i] as string;
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      out += text.slice(i, j + 1);
      i = j + 1;
    } else if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i;
      while (j < text.length && /[-+0-9.eE]/.test(text[j] as string)) j++;
      out += `"${MARK}${text.slice(i, j)}"`;
      i = j;
    } else {
      out += c;
      i++;
    }
  }
  return JSON.parse(out, (_k, v: unknown) => {
    if (typeof v !== 'string' || !v.startsWith(MARK)) return v;
    const lit = v.slice(MARK.length);
    return /^-?\d+$/.test(lit) ? BigInt(lit) : Number(lit);
  }) as J;
}

interface XRes {
  status: number;
  text: string;
  /** The body read losslessly. */
  x: Record<string, J>;
}

async function call(base: string, method: string, path: string, key?: string, body?: unknown, raw?: string): Promise<XRes> {
  const r = await request(base, method, path, {
    ...(key === undefined ? {} : { key }),
    ...(raw !== undefined ? { raw, contentType: 'application/json' } : body === undefined ? {} : { json: body }),
  });
  let x: Record<string, J> = {};
  try {
    x = exact(r.text) as Record<string, J>;
  } catch {
    // not JSON
  }
  return { status: r.status, text: r.text, x };
}

interface XOrder {
  orderId: bigint;
  price: bigint;
  qty: bigint;
  filledQty: bigint;
  remainingQty: bigint;
  status: string;
  reason?: string;
  clientOrderId?: string;
  [k: string]: J | undefined;
}

interface XEvent {
  type: string;
  [k: string]: J;
}

/** Places an order that must be answered 200 with only safe integers; its order and events, read losslessly. */
async function place(base: string, key: string, order: Record<string, unknown>): Promise<{ order: XOrder; events: XEvent[]; text: string }> {
  const r = await call(base, 'POST', '/v1/orders', key, { type: 'limit', ...order });
  if (r.status !== 200) throw new Error(`place ${JSON.stringify(order)}: ${r.status} ${r.text}`);
  expect(unsafeLiterals(r.text), `numbers that are not safe integers in ${r.text.slice(0, 300)}`).toEqual([]);
  return { order: r.x.order as unknown as XOrder, events: r.x.events as unknown as XEvent[], text: r.text };
}

async function getOrder(base: string, key: string, symbol: string, id: bigint | number): Promise<XRes> {
  return call(base, 'GET', `/v1/orders/${symbol}/${id}`, key);
}

type Levels = [bigint, bigint][];

/** GET /v1/book read losslessly (every number checked to be a safe integer). */
async function httpBook(base: string, symbol: string): Promise<{ seq: bigint; bids: Levels; asks: Levels }> {
  const r = await call(base, 'GET', `/v1/book/${symbol}?depth=1000`);
  expect(r.status).toBe(200);
  expect(unsafeLiterals(r.text), `numbers that are not safe integers in GET /v1/book: ${r.text.slice(0, 300)}`).toEqual([]);
  return { seq: r.x.seq as bigint, bids: r.x.bids as unknown as Levels, asks: r.x.asks as unknown as Levels };
}

/** The engine's own book, aggregated, best first. */
function engineBook(s: TestServer, symbol: string): { bids: Levels; asks: Levels } {
  const book = s.engine.actor(symbol)?.book;
  if (book === undefined) throw new Error(`no actor for ${symbol}`);
  const side = (sd: BookSide): Levels => {
    const out: Levels = [];
    book.forEachLevel(sd, 1_000_000, (price, qty) => {
      expect(Number.isSafeInteger(price) && Number.isSafeInteger(qty), `engine level ${price} ${qty}`).toBe(true);
      out.push([BigInt(price), BigInt(qty)]);
    });
    return out;
  };
  return { bids: side(BookSide.Buy), asks: side(BookSide.Sell) };
}

/** GET /v1/book and the engine's book hold the same levels, to the lot. */
async function expectBookMatchesEngine(s: TestServer, symbol: string): Promise<{ seq: bigint; bids: Levels; asks: Levels }> {
  const b = await httpBook(s.url, symbol);
  const e = engineBook(s, symbol);
  expect(b.bids).toEqual(e.bids);
  expect(b.asks).toEqual(e.asks);
  return b;
}

/** A book subscriber that keeps the raw frames and folds the L2 snapshot and updates losslessly. */
class L2Watcher {
  readonly raw: string[] = [];
  seq = -1n;
  readonly bids = new Map<bigint, bigint>();
  readonly asks = new Map<bigint, bigint>();
  gaps: string[] = [];

  private constructor(
    readonly client: WsClient,
    readonly symbol: string,
  ) {
    client.ws.on('message', (data: Buffer) => {
      const text = data.toString('utf8');
      this.raw.push(text);
      const m = exact(text) as Record<string, J>;
      if (m.symbol !== this.symbol) return;
      if (m.type === 'book.snapshot') {
        this.bids.clear();
        this.asks.clear();
        for (const [p, q] of m.bids as unknown as Levels) this.bids.set(p, q);
        for (const [p, q] of m.asks as unknown as Levels) this.asks.set(p, q);
        this.seq = m.seq as bigint;
      } else if (m.type === 'book.update') {
        if (m.seq !== this.seq + 1n) this.gaps.push(`${this.seq} -> ${JSON.stringify(m.seq, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))}`);
        for (const [p, q] of m.bids as unknown as Levels) {
          if (q === 0n) this.bids.delete(p);
          else this.bids.set(p, q);
        }
        for (const [p, q] of m.asks as unknown as Levels) {
          if (q === 0n) this.asks.delete(p);
          else this.asks.set(p, q);
        }
        this.seq = m.seq as bigint;
      }
    });
  }

  static async open(base: string, symbol: string): Promise<L2Watcher> {
    const c = await WsClient.connect(wsUrl(base));
    const w = new L2Watcher(c, symbol);
    const ack = await c.call({ op: 'subscribe', channel: 'book', symbol });
    if (ack.ok === false) throw new Error(`subscribe: ${JSON.stringify(ack)}`);
    await until(() => w.seq >= 0n, 'the book snapshot');
    return w;
  }

  levels(): { bids: Levels; asks: Levels } {
    const sorted = (m: Map<bigint, bigint>, desc: boolean): Levels => [...m].sort((a, b) => (a[0] === b[0] ? 0 : (a[0] < b[0]) !== desc ? -1 : 1));
    return { bids: sorted(this.bids, true), asks: sorted(this.asks, false) };
  }

  /** Waits until the subscriber is at GET's sequence number, then checks it holds the same levels and only safe integers. */
  async expectMatches(b: { seq: bigint; bids: Levels; asks: Levels }): Promise<void> {
    await until(() => this.seq >= b.seq, `the WebSocket L2 at seq ${b.seq} (at ${this.seq})`);
    expect(this.seq).toBe(b.seq);
    expect(this.gaps, 'gaps in the L2 sequence').toEqual([]);
    for (const t of this.raw) expect(unsafeLiterals(t), `numbers that are not safe integers in ${t.slice(0, 300)}`).toEqual([]);
    const l = this.levels();
    expect(l.bids).toEqual(b.bids.slice(0, 1000));
    expect(l.asks).toEqual(b.asks.slice(0, 1000));
  }

  close(): Promise<void> {
    return this.client.close();
  }
}

const sum = (xs: bigint[]): bigint => xs.reduce((a, b) => a + b, 0n);

// =============================================================================================

describe('numeric limits, end to end through the server', () => {
  it('refuses instrument limits no book can hold with INVALID_CONFIG, and serves those at the limits exactly', async () => {
    const refused: { name: string; inst: unknown; field: RegExp }[] = [
      { name: 'a band of 2^31 prices', inst: { symbol: 'X', minPrice: 1, maxPrice: 2 ** 31, maxQty: 1 }, field: /maxPrice/ },
      { name: 'maxQty 2^53', inst: { symbol: 'X', minPrice: 1, maxPrice: 10, maxQty: 2 ** 53 }, field: /maxQty/ },
      { name: 'a band ending at 2^53', inst: { symbol: 'X', minPrice: 2 ** 53 - 2 ** 31 + 2, maxPrice: 2 ** 53, maxQty: 1 }, field: /maxPrice/ },
      { name: 'maxQty 0', inst: { symbol: 'X', minPrice: 1, maxPrice: 10, maxQty: 0 }, field: /maxQty/ },
      { name: 'a fractional maxQty', inst: { symbol: 'X', minPrice: 1, maxPrice: 10, maxQty: 1.5 }, field: /maxQty/ },
      { name: 'maxQty written as 2^53 + 1 (read as 2^53)', inst: 'X:1:10:9007199254740993', field: /maxQty/ },
      { name: 'minPrice written as 2^53 + 1', inst: 'X:9007199254740993:9007199254740993:1', field: /minPrice/ },
    ];
    for (const r of refused) {
      const err = await start({ instruments: typeof r.inst === 'string' ? r.inst : [r.inst] }, tmpDir()).then(
        async (s) => {
          await s.close();
          return undefined;
        },
        (e: unknown) => e as { code?: string; message: string },
      );
      expect(err, r.name).toBeDefined();
      expect(err?.code, `${r.name}: ${err?.message}`).toBe('INVALID_CONFIG');
      expect(err?.message, r.name).toMatch(r.field);
    }

    // At the limits, from the environment's form too: served exactly.
    const s = await serve([WIDE, Q48, HI, HI48]);
    const r = await call(s.url, 'GET', '/v1/instruments');
    expect(r.status).toBe(200);
    expect(unsafeLiterals(r.text)).toEqual([]);
    expect(r.x.instruments).toEqual(
      [WIDE, Q48, HI, HI48].map((i) => ({ symbol: i.symbol, minPrice: BigInt(i.minPrice), maxPrice: BigInt(i.maxPrice), maxQty: BigInt(i.maxQty) })),
    );
    const fromEnv = await start({ instruments: `HI:${HI.minPrice}:${HI.maxPrice}:${HI.maxQty}` }, tmpDir());
    running.add(fromEnv);
    expect(fromEnv.config.instruments).toEqual([HI]);
  });

  it('takes the widest band that ends at 2^53 - 1 (2^31 - 1 ticks from 2^53 - 2^31 + 1), as the engine does', async () => {
    // The engine and its book take this band.
    const dir = tmpDir();
    const engine = await Engine.open({ dataDir: dir, symbols: [TOP], segmentSize: SEGMENT });
    await engine.close();
    // So must the server's configuration (it allows bands of up to 2^31 - 1 ticks: maxPrice <= minPrice + 2^31 - 2).
    const s = await serve([TOP], dir);
    const bid = await place(s.url, ALICE, { symbol: 'TOP', side: 'buy', price: TOP.minPrice, qty: MAX });
    const ask = await place(s.url, BOB, { symbol: 'TOP', side: 'sell', price: TOP.maxPrice, qty: MAX });
    expect([bid.order.price, ask.order.price]).toEqual([BigInt(TOP.minPrice), BMAX]);
    const mkt = await place(s.url, CAROL, { symbol: 'TOP', side: 'buy', type: 'market', qty: 1 });
    expect(mkt.events.find((e) => e.type === 'trade')).toMatchObject({ price: BMAX, qty: 1n });
    const b = await expectBookMatchesEngine(s, 'TOP');
    expect(b.bids).toEqual([[BigInt(TOP.minPrice), BMAX]]);
    expect(b.asks).toEqual([[BMAX, BMAX - 1n]]);
  });

  it('rests, trades and serves prices at both ends of a 2^31 - 1 tick band from 1 and of one ending at 2^53 - 1', async () => {
    let s = await serve([WIDE, HI, HI48]);
    const ws = await L2Watcher.open(s.url, 'HI');
    // HI: both ends of the band, with the largest quantity.
    const bid = await place(s.url, ALICE, { symbol: 'HI', side: 'buy', price: HI.minPrice, qty: MAX });
    const ask = await place(s.url, BOB, { symbol: 'HI', side: 'sell', price: HI.maxPrice, qty: MAX });
    expect(bid.order.price).toBe(BigInt(HI.minPrice));
    expect(ask.order.price).toBe(BigInt(HI.maxPrice));
    expect(ask.order.remainingQty).toBe(BMAX);
    // One tick outside either end: VALIDATION naming the price (2^53 is not even a safe integer).
    for (const price of [HI.minPrice - 1, HI.maxPrice + 1]) {
      const r = await call(s.url, 'POST', '/v1/orders', ALICE, { symbol: 'HI', side: 'buy', type: 'limit', price, qty: 1 });
      expect(r.status, r.text).toBe(400);
      expect((r.x.error as Record<string, J>).code).toBe('VALIDATION');
      expect((r.x.error as Record<string, J>).message).toMatch(/^price:/);
    }
    // A trade at the top of the band, taken by a buyer with a limit at the top.
    const taker = await place(s.url, CAROL, { symbol: 'HI', side: 'buy', price: HI.maxPrice, qty: MAX - 1, tif: 'IOC' });
    const trade = taker.events.find((e) => e.type === 'trade');
    expect(trade?.price).toBe(BigInt(HI.maxPrice));
    expect(trade?.qty).toBe(BMAX - 1n);
    expect(taker.order.filledQty).toBe(BMAX - 1n);
    // A market sell sweeps the bid at the bottom of the band.
    const mkt = await place(s.url, CAROL, { symbol: 'HI', side: 'sell', type: 'market', qty: 3 });
    expect(mkt.events.filter((e) => e.type === 'trade').map((e) => [e.price, e.qty])).toEqual([[BigInt(HI.minPrice), 3n]]);
    const t = await call(s.url, 'GET', '/v1/trades/HI');
    expect(unsafeLiterals(t.text)).toEqual([]);
    expect((t.x.trades as Record<string, J>[]).map((x) => [x.price, x.qty])).toEqual([
      [BigInt(HI.minPrice), 3n],
      [BigInt(HI.maxPrice), BMAX - 1n],
    ]);
    const b = await expectBookMatchesEngine(s, 'HI');
    expect(b.bids).toEqual([[BigInt(HI.minPrice), BMAX - 3n]]);
    expect(b.asks).toEqual([[BigInt(HI.maxPrice), 1n]]);
    await ws.expectMatches(b);
    await ws.close();
    // HI48 (minPrice 2^53 - 2^31) and WIDE: both ends.
    await place(s.url, ALICE, { symbol: 'HI48', side: 'buy', price: HI48.minPrice, qty: P48 });
    await place(s.url, BOB, { symbol: 'HI48', side: 'sell', price: HI48.maxPrice, qty: P48 });
    await place(s.url, ALICE, { symbol: 'WIDE', side: 'buy', price: 1, qty: MAX });
    await place(s.url, BOB, { symbol: 'WIDE', side: 'sell', price: SPAN, qty: MAX });
    const before = { HI: await expectBookMatchesEngine(s, 'HI'), HI48: await expectBookMatchesEngine(s, 'HI48'), WIDE: await expectBookMatchesEngine(s, 'WIDE') };
    expect(before.HI48.bids).toEqual([[BigInt(HI48.minPrice), BigInt(P48)]]);
    expect(before.HI48.asks).toEqual([[BigInt(HI48.maxPrice), BigInt(P48)]]);
    expect(before.WIDE.bids).toEqual([[1n, BMAX]]);
    expect(before.WIDE.asks).toEqual([[BigInt(SPAN), BMAX]]);

    s = await restart(s, [WIDE, HI, HI48]);
    for (const sym of ['HI', 'HI48', 'WIDE'] as const) {
      const after = await expectBookMatchesEngine(s, sym);
      expect({ bids: after.bids, asks: after.asks }, sym).toEqual({ bids: before[sym].bids, asks: before[sym].asks });
      expect(after.seq >= before[sym].seq).toBe(true);
    }
    const o = await getOrder(s.url, BOB, 'HI', ask.order.orderId);
    expect(unsafeLiterals(o.text)).toEqual([]);
    expect(o.x.order).toMatchObject({ price: BigInt(HI.maxPrice), qty: BMAX, filledQty: BMAX - 1n, remainingQty: 1n, status: 'partially_filled' });
  });

  it('fills one price level to exactly 2^53 - 1 lots with many orders of 2^48, then refuses the next lot with LEVEL_QTY_OVERFLOW (GET, WebSocket L2, order views, engine and restart agree)', async () => {
    let s = await serve([Q48]);
    const ws = await L2Watcher.open(s.url, 'Q48');
    const top = SPAN; // the highest price of the band (tick 2^31 - 2)
    const ids: bigint[] = [];
    for (let i = 0; i < 31; i++) ids.push((await place(s.url, i % 2 === 0 ? ALICE : BOB, { symbol: 'Q48', side: 'buy', price: top, qty: P48 })).order.orderId);
    const last = await place(s.url, ALICE, { symbol: 'Q48', side: 'buy', price: top, qty: P48 - 1 });
    expect(last.order.status).toBe('open');
    let b = await expectBookMatchesEngine(s, 'Q48');
    expect(b.bids).toEqual([[BigInt(top), BMAX]]);
    await ws.expectMatches(b);

    // One more lot at that price: refused by the book, answered 200 with the order rejected.
    const over = await place(s.url, BOB, { symbol: 'Q48', side: 'buy', price: top, qty: 1, clientOrderId: 'over-1' });
    expect(over.order).toMatchObject({ status: 'rejected', reason: 'LEVEL_QTY_OVERFLOW', qty: 1n, filledQty: 0n, remainingQty: 0n });
    expect(over.events.map((e) => e.type)).toEqual(['rejected']);
    const overBig = await place(s.url, BOB, { symbol: 'Q48', side: 'buy', price: top, qty: P48 });
    expect(overBig.order).toMatchObject({ status: 'rejected', reason: 'LEVEL_QTY_OVERFLOW', qty: BigInt(P48) });
    // Above maxQty: VALIDATION naming qty.
    const r = await call(s.url, 'POST', '/v1/orders', ALICE, { symbol: 'Q48', side: 'buy', type: 'limit', price: top, qty: P48 + 1 });
    expect(r.status).toBe(400);
    expect((r.x.error as Record<string, J>).message).toMatch(/^qty:/);
    b = await expectBookMatchesEngine(s, 'Q48');
    expect(b.bids).toEqual([[BigInt(top), BMAX]]);

    // A sell at that price takes 2^48 from the level; the next buy of 2^48 fits again, and one more lot does not.
    const sell = await place(s.url, CAROL, { symbol: 'Q48', side: 'sell', price: top, qty: P48 });
    expect(sell.events.filter((e) => e.type === 'trade').map((e) => e.qty)).toEqual([BigInt(P48)]);
    b = await expectBookMatchesEngine(s, 'Q48');
    expect(b.bids).toEqual([[BigInt(top), BMAX - BigInt(P48)]]);
    const refill = await place(s.url, CAROL, { symbol: 'Q48', side: 'buy', price: top, qty: P48 });
    expect(refill.order.status).toBe('open');
    const again = await place(s.url, CAROL, { symbol: 'Q48', side: 'buy', price: top, qty: 1 });
    expect(again.order.reason).toBe('LEVEL_QTY_OVERFLOW');
    // A second level just below, also full, so that the side holds more than 2^53 lots in all.
    for (let i = 0; i < 31; i++) await place(s.url, BOB, { symbol: 'Q48', side: 'buy', price: top - 1, qty: P48 });
    await place(s.url, BOB, { symbol: 'Q48', side: 'buy', price: top - 1, qty: P48 - 1 });
    b = await expectBookMatchesEngine(s, 'Q48');
    expect(b.bids).toEqual([
      [BigInt(top), BMAX],
      [BigInt(top - 1), BMAX],
    ]);
    await ws.expectMatches(b);
    // Each order's view is exact.
    const first = await getOrder(s.url, ALICE, 'Q48', ids[0] as bigint);
    expect(first.x.order).toMatchObject({ qty: BigInt(P48), filledQty: BigInt(P48), remainingQty: 0n, status: 'filled' });
    const lastView = await getOrder(s.url, ALICE, 'Q48', last.order.orderId);
    expect(lastView.x.order).toMatchObject({ qty: BigInt(P48 - 1), filledQty: 0n, remainingQty: BigInt(P48 - 1), status: 'open' });
    await ws.close();

    // After a restart: the same book, the same views, and the level still refuses one more lot.
    s = await restart(s, [Q48]);
    const after = await expectBookMatchesEngine(s, 'Q48');
    expect(after.bids).toEqual(b.bids);
    const ws2 = await L2Watcher.open(s.url, 'Q48');
    expect(ws2.levels().bids).toEqual(b.bids);
    const lastAfter = await getOrder(s.url, ALICE, 'Q48', last.order.orderId);
    expect(lastAfter.x.order).toEqual(lastView.x.order);
    const dup = await place(s.url, BOB, { symbol: 'Q48', side: 'buy', price: top, qty: 1, clientOrderId: 'over-1' });
    expect(dup.order).toMatchObject({ orderId: over.order.orderId, status: 'rejected', reason: 'LEVEL_QTY_OVERFLOW' });
    const still = await place(s.url, BOB, { symbol: 'Q48', side: 'buy', price: top, qty: 1 });
    expect(still.order.reason).toBe('LEVEL_QTY_OVERFLOW');
    // A sell sweeping both full levels as far as maxQty allows, several times.
    for (let i = 0; i < 3; i++) await place(s.url, CAROL, { symbol: 'Q48', side: 'sell', type: 'market', qty: P48 });
    const end = await expectBookMatchesEngine(s, 'Q48');
    expect(end.bids[0]).toEqual([BigInt(top), BMAX - 3n * BigInt(P48)]);
    await ws2.expectMatches(end);
    await ws2.close();
  });

  it('sweeps many huge levels with one market order: every trade, the fill, the unfilled rest and the L2 exact', async () => {
    let s = await serve([WIDE]);
    const ws = await L2Watcher.open(s.url, 'WIDE');
    // 40 ask levels, each of two orders: the whole side holds more than 2^53 lots.
    const q = Math.floor(MAX / 41); // one level's first order
    const levels = 40;
    for (let i = 0; i < levels; i++) {
      await place(s.url, BOB, { symbol: 'WIDE', side: 'sell', price: 1_000_000 + i * 1000, qty: q });
      await place(s.url, CAROL, { symbol: 'WIDE', side: 'sell', price: 1_000_000 + i * 1000, qty: i + 1 });
    }
    let b = await expectBookMatchesEngine(s, 'WIDE');
    expect(b.asks.length).toBe(levels);
    expect(sum(b.asks.map((l) => l[1])) > BMAX).toBe(false); // 40q + 820 < 2^53 - 1: the sweep fits in one order
    // A FOK buy of 2^53 - 1 cannot fill: rejected, nothing traded.
    const fok = await place(s.url, ALICE, { symbol: 'WIDE', side: 'buy', price: SPAN, qty: MAX, tif: 'FOK' });
    expect(fok.order).toMatchObject({ status: 'rejected', reason: 'FOK_NOT_FILLABLE' });
    // A market buy of 2^53 - 1 sweeps all 40 levels and cancels the rest.
    const mkt = await place(s.url, ALICE, { symbol: 'WIDE', side: 'buy', type: 'market', qty: MAX });
    const tradesOf = mkt.events.filter((e) => e.type === 'trade');
    expect(tradesOf.length).toBe(2 * levels);
    const filled = BigInt(q) * BigInt(levels) + BigInt((levels * (levels + 1)) / 2);
    expect(sum(tradesOf.map((e) => e.qty as bigint))).toBe(filled);
    expect(tradesOf.map((e) => e.price)).toEqual(Array.from({ length: 2 * levels }, (_, k) => BigInt(1_000_000 + Math.floor(k / 2) * 1000)));
    const unfilled = mkt.events.find((e) => e.type === 'canceled');
    expect(unfilled).toMatchObject({ reason: 'UNFILLED', qty: BMAX - filled });
    expect(mkt.order).toMatchObject({ qty: BMAX, filledQty: filled, remainingQty: 0n, status: 'canceled' });
    b = await expectBookMatchesEngine(s, 'WIDE');
    expect(b.asks).toEqual([]);
    await ws.expectMatches(b);
    const t = await call(s.url, 'GET', '/v1/trades/WIDE?limit=1000');
    expect(unsafeLiterals(t.text)).toEqual([]);
    expect(sum((t.x.trades as Record<string, J>[]).map((x) => x.qty as bigint))).toBe(filled);

    // Three bid levels of 2^53 - 1 lots each (two orders each): a market sell of 2^53 - 1 takes exactly the first.
    for (let i = 0; i < 3; i++) {
      await place(s.url, BOB, { symbol: 'WIDE', side: 'buy', price: 500 - i, qty: 2 ** 52 });
      await place(s.url, CAROL, { symbol: 'WIDE', side: 'buy', price: 500 - i, qty: 2 ** 52 - 1 });
    }
    b = await expectBookMatchesEngine(s, 'WIDE');
    expect(b.bids).toEqual([
      [500n, BMAX],
      [499n, BMAX],
      [498n, BMAX],
    ]);
    // FOK sell of 2^53 - 1 at the lowest of them: fillable (the side holds 3 x (2^53 - 1)).
    const fokSell = await place(s.url, ALICE, { symbol: 'WIDE', side: 'sell', price: 498, qty: MAX, tif: 'FOK' });
    expect(fokSell.order).toMatchObject({ status: 'filled', filledQty: BMAX });
    expect(fokSell.events.filter((e) => e.type === 'trade').map((e) => [e.price, e.qty])).toEqual([
      [500n, BigInt(2 ** 52)],
      [500n, BigInt(2 ** 52 - 1)],
    ]);
    // A GTC sell of 2^53 - 1 at 499 takes the level at 499 and does not rest (nothing is left).
    const gtc = await place(s.url, ALICE, { symbol: 'WIDE', side: 'sell', price: 499, qty: MAX });
    expect(gtc.order).toMatchObject({ status: 'filled', filledQty: BMAX, remainingQty: 0n });
    b = await expectBookMatchesEngine(s, 'WIDE');
    expect(b.bids).toEqual([[498n, BMAX]]);
    await ws.expectMatches(b);
    await ws.close();
    s = await restart(s, [WIDE]);
    const after = await expectBookMatchesEngine(s, 'WIDE');
    expect(after.bids).toEqual(b.bids);
    const view = await getOrder(s.url, ALICE, 'WIDE', mkt.order.orderId);
    expect(unsafeLiterals(view.text)).toEqual([]);
    expect(view.x.order).toMatchObject({ qty: BMAX, filledQty: filled, remainingQty: 0n, status: 'canceled' });
  });

  it('refuses amendments that would grow a price level past 2^53 - 1 (409 REJECTED, the order unchanged) and applies those that fit, exactly', async () => {
    let s = await serve([WIDE, Q48]);
    const ws = await L2Watcher.open(s.url, 'WIDE');
    const a = await place(s.url, ALICE, { symbol: 'WIDE', side: 'sell', price: 1000, qty: 2 ** 52 });
    const c = await place(s.url, CAROL, { symbol: 'WIDE', side: 'sell', price: 1000, qty: 2 ** 52 - 10 });
    // Growing a to 2^52 + 9: the level reaches exactly 2^53 - 1 (a cancel-replace at the same price).
    let r = await call(s.url, 'PATCH', `/v1/orders/WIDE/${a.order.orderId}`, ALICE, { qty: 2 ** 52 + 9 });
    expect(r.status, r.text).toBe(200);
    expect(unsafeLiterals(r.text)).toEqual([]);
    expect(r.x.order).toMatchObject({ qty: BigInt(2 ** 52 + 9), remainingQty: BigInt(2 ** 52 + 9), filledQty: 0n });
    let b = await expectBookMatchesEngine(s, 'WIDE');
    expect(b.asks).toEqual([[1000n, BMAX]]);
    // One lot more: 409 REJECTED LEVEL_QTY_OVERFLOW, with and without a price.
    r = await call(s.url, 'PATCH', `/v1/orders/WIDE/${a.order.orderId}`, ALICE, { qty: 2 ** 52 + 10 });
    expect(r.status, r.text).toBe(409);
    expect(r.x.error).toMatchObject({ code: 'REJECTED' });
    expect((r.x.error as Record<string, J>).message).toMatch(/LEVEL_QTY_OVERFLOW/);
    r = await call(s.url, 'PATCH', `/v1/orders/WIDE/${a.order.orderId}`, ALICE, { qty: MAX, price: 1000 });
    expect(r.status, r.text).toBe(409);
    // Moving c onto a full level at another price: refused, c unchanged.
    const d = await place(s.url, BOB, { symbol: 'WIDE', side: 'sell', price: 2000, qty: MAX });
    r = await call(s.url, 'PATCH', `/v1/orders/WIDE/${c.order.orderId}`, CAROL, { price: 2000 });
    expect(r.status, r.text).toBe(409);
    expect((r.x.error as Record<string, J>).message).toMatch(/LEVEL_QTY_OVERFLOW/);
    const cv = await getOrder(s.url, CAROL, 'WIDE', c.order.orderId);
    expect(cv.x.order).toMatchObject({ price: 1000n, qty: BigInt(2 ** 52 - 10), remainingQty: BigInt(2 ** 52 - 10), status: 'open' });
    // Above 2^53 - 1 or maxQty: VALIDATION naming qty.
    r = await call(s.url, 'PATCH', `/v1/orders/WIDE/${a.order.orderId}`, ALICE, undefined, `{"qty":9007199254740992}`);
    expect(r.status, r.text).toBe(400);
    expect((r.x.error as Record<string, J>).message).toMatch(/^qty:/);
    const q48 = await place(s.url, ALICE, { symbol: 'Q48', side: 'buy', price: 5, qty: 1 });
    r = await call(s.url, 'PATCH', `/v1/orders/Q48/${q48.order.orderId}`, ALICE, { qty: P48 + 1 });
    expect(r.status, r.text).toBe(400);
    expect((r.x.error as Record<string, J>).message).toMatch(/^qty: must be at most 281474976710656/);
    r = await call(s.url, 'PATCH', `/v1/orders/Q48/${q48.order.orderId}`, ALICE, { qty: P48 });
    expect(r.status, r.text).toBe(200);
    expect(r.x.order).toMatchObject({ qty: BigInt(P48), remainingQty: BigInt(P48) });
    // Reductions of huge orders keep exact remainders.
    r = await call(s.url, 'PATCH', `/v1/orders/WIDE/${d.order.orderId}`, BOB, { qty: MAX - 1 });
    expect(r.status, r.text).toBe(200);
    expect(r.x.order).toMatchObject({ qty: BMAX - 1n, remainingQty: BMAX - 1n });
    b = await expectBookMatchesEngine(s, 'WIDE');
    expect(b.asks).toEqual([
      [1000n, BMAX],
      [2000n, BMAX - 1n],
    ]);
    await ws.expectMatches(b);
    await ws.close();
    s = await restart(s, [WIDE, Q48]);
    expect((await expectBookMatchesEngine(s, 'WIDE')).asks).toEqual(b.asks);
    const av = await getOrder(s.url, ALICE, 'WIDE', a.order.orderId);
    expect(av.x.order).toMatchObject({ qty: BigInt(2 ** 52 + 9), remainingQty: BigInt(2 ** 52 + 9), filledQty: 0n, status: 'open' });
  });

  it('keeps an order exact when it is amended back up to maxQty after fills (its qty and filledQty would pass 2^53 - 1)', async () => {
    let s = await serve([WIDE]);
    const sell = await place(s.url, ALICE, { symbol: 'WIDE', side: 'sell', price: 1000, qty: MAX });
    await place(s.url, BOB, { symbol: 'WIDE', side: 'buy', price: 1000, qty: 2 }); // fills 2 lots of it
    const id = sell.order.orderId;
    const before = await getOrder(s.url, ALICE, 'WIDE', id);
    expect(before.x.order).toMatchObject({ qty: BMAX, filledQty: 2n, remainingQty: BMAX - 2n });

    // Back up to maxQty (a cancel-replace at the same price): the engine takes it.
    const r = await call(s.url, 'PATCH', `/v1/orders/WIDE/${id}`, ALICE, { qty: MAX });
    const book = s.engine.actor('WIDE')?.book;
    if (r.status !== 200) {
      // A refusal is fine if it is a typed error and the order is left as it was.
      expect([400, 409]).toContain(r.status);
      expect(book?.getOrder(Number(id))?.qty).toBe(MAX - 2);
      return;
    }
    expect(book?.getOrder(Number(id))?.qty).toBe(MAX);
    // Every number of the answer is an exact integer, and the order's quantities add up
    // (soft: each place that shows the order is reported).
    expect.soft(unsafeLiterals(r.text), `numbers past 2^53 - 1 in the PATCH answer ${r.text.slice(0, 400)}`).toEqual([]);
    const o = r.x.order as unknown as XOrder;
    expect.soft(o.remainingQty).toBe(BMAX);
    expect.soft(o.filledQty).toBe(2n);
    expect.soft(o.qty, 'qty = filledQty + remainingQty').toBe(o.filledQty + o.remainingQty);

    // Filled again completely: the order's filled quantity is then 2^53 + 1 lots.
    const taker = await place(s.url, BOB, { symbol: 'WIDE', side: 'buy', type: 'market', qty: MAX });
    expect(taker.order.filledQty).toBe(BMAX);
    const v = await getOrder(s.url, ALICE, 'WIDE', id);
    expect.soft(unsafeLiterals(v.text), `numbers past 2^53 - 1 in the order view ${v.text}`).toEqual([]);
    expect.soft(v.x.order, 'the filled order').toMatchObject({ filledQty: BMAX + 2n, status: 'filled' });
    s = await restart(s, [WIDE]);
    const after = await getOrder(s.url, ALICE, 'WIDE', id);
    expect.soft(unsafeLiterals(after.text), `numbers past 2^53 - 1 in the order view after a restart ${after.text}`).toEqual([]);
  });

  it('refuses a fractional price or quantity that JSON.parse would round to a safe integer (400 VALIDATION), over HTTP and WebSocket', async () => {
    const s = await serve([HI, WIDE]);
    // Prices of the high band are at least 2^52: a fraction there is lost by JSON.parse (9007199254740990.5 reads as 9007199254740990).
    const cases: { name: string; raw: string; field: string }[] = [
      { name: 'a price of 9007199254740990.5', raw: `{"symbol":"HI","side":"buy","type":"limit","price":9007199254740990.5,"qty":1}`, field: 'price' },
      { name: 'a price of 9007199254740989.25', raw: `{"symbol":"HI","side":"buy","type":"limit","price":9007199254740989.25,"qty":1}`, field: 'price' },
      { name: 'a qty of 4503599627370497.5', raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":10,"qty":4503599627370497.5}`, field: 'qty' },
      { name: 'a qty of 9007199254740990.9', raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":10,"qty":9007199254740990.9}`, field: 'qty' },
      // The same loss at any size: 1.0000000000000001 reads as 1.
      { name: 'a qty of 1.0000000000000001', raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":10,"qty":1.0000000000000001}`, field: 'qty' },
    ];
    for (const c of cases) {
      const r = await call(s.url, 'POST', '/v1/orders', ALICE, undefined, c.raw);
      // Soft: each way in is reported.
      expect.soft(r.status, `${c.name}: ${r.status} ${r.text.slice(0, 300)}`).toBe(400);
      expect.soft((r.x.error as Record<string, J> | undefined)?.message, c.name).toMatch(new RegExp(`^${c.field}:`));
    }
    // PATCH: a price with a fraction.
    const o = await place(s.url, ALICE, { symbol: 'HI', side: 'buy', price: HI.minPrice, qty: 1 });
    const p = await call(s.url, 'PATCH', `/v1/orders/HI/${o.order.orderId}`, ALICE, undefined, `{"price":${HI.minPrice + 10}.5}`);
    expect.soft(p.status, `PATCH a fractional price: ${p.text.slice(0, 300)}`).toBe(400);
    // WebSocket: the same order in a frame.
    const c = await WsClient.connect(wsUrl(s.url), { 'x-api-key': BOB });
    c.send(`{"op":"order","id":"frac","order":{"symbol":"HI","side":"sell","type":"limit","price":9007199254740990.5,"qty":1}}`);
    const ans = await c.next((m) => m.id === 'frac', 'the answer to the fractional price');
    expect.soft(ans.error?.code, `WebSocket order with a fractional price: ${JSON.stringify(ans).slice(0, 300)}`).toBe('VALIDATION');
    await c.close();
    // Nothing of any of them reached the book but the one order placed.
    const b = await expectBookMatchesEngine(s, 'HI');
    expect.soft(b.bids, 'HI bids').toEqual([[BigInt(HI.minPrice), 1n]]);
    expect.soft(b.asks, 'HI asks').toEqual([]);
    expect.soft((await expectBookMatchesEngine(s, 'WIDE')).bids, 'WIDE bids').toEqual([]);
  });

  it('refuses numbers past 2^53 - 1 in bodies, WebSocket frames, paths and queries with VALIDATION naming the field', async () => {
    const s = await serve([WIDE]);
    const bodies: { raw: string; field: string }[] = [
      { raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":10,"qty":9007199254740992}`, field: 'qty' },
      { raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":10,"qty":9007199254740993}`, field: 'qty' },
      { raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":10,"qty":1e300}`, field: 'qty' },
      { raw: `{"symbol":"WIDE","side":"buy","type":"market","qty":18014398509481984}`, field: 'qty' },
      { raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":9007199254740993,"qty":1}`, field: 'price' },
      { raw: `{"symbol":"WIDE","side":"buy","type":"limit","price":2147483648,"qty":1}`, field: 'price' },
    ];
    for (const c of bodies) {
      const r = await call(s.url, 'POST', '/v1/orders', ALICE, undefined, c.raw);
      expect(r.status, `${c.raw}: ${r.text}`).toBe(400);
      expect(r.x.error, c.raw).toMatchObject({ code: 'VALIDATION' });
      expect((r.x.error as Record<string, J>).message, c.raw).toMatch(new RegExp(`^${c.field}:`));
    }
    const ws = await WsClient.connect(wsUrl(s.url), { 'x-api-key': ALICE });
    ws.send(`{"op":"order","id":"big","order":{"symbol":"WIDE","side":"buy","type":"limit","price":10,"qty":9007199254740993}}`);
    const ans = await ws.next((m) => m.id === 'big', 'the answer');
    expect(ans.error?.code).toBe('VALIDATION');
    expect(ans.error?.message).toMatch(/qty/);
    const amend = await ws.call({ op: 'amend', symbol: 'WIDE', orderId: 1, qty: 2 ** 53 });
    expect(amend.error?.code).toBe('VALIDATION');
    const depth = await ws.call({ op: 'subscribe', channel: 'book', symbol: 'WIDE', depth: MAX });
    expect(depth.error?.code).toBe('VALIDATION');
    await ws.close();
    for (const id of ['9007199254740992', '9007199254740993', '99999999999999999', '18446744073709551617']) {
      for (const method of ['GET', 'DELETE'] as const) {
        const r = await call(s.url, method, `/v1/orders/WIDE/${id}`, ALICE);
        expect(r.status, `${method} ${id}: ${r.text}`).toBe(400);
        expect((r.x.error as Record<string, J>).message).toMatch(/^orderId:/);
      }
    }
    // The largest order id is a well-formed id, of no order yet.
    expect((await call(s.url, 'GET', `/v1/orders/WIDE/${MAX}`, ALICE)).status).toBe(404);
    for (const q of ['depth=1001', 'depth=9007199254740993', 'depth=99999999999999999999']) {
      const r = await call(s.url, 'GET', `/v1/book/WIDE?${q}`);
      expect(r.status, q).toBe(400);
      expect((r.x.error as Record<string, J>).message).toMatch(/^depth:/);
    }
    const t = await call(s.url, 'GET', '/v1/trades/WIDE?limit=9007199254740993');
    expect(t.status).toBe(400);
    expect(await expectBookMatchesEngine(s, 'WIDE')).toMatchObject({ bids: [], asks: [] });
  });

  it('serves order ids up to 2^53 - 1; an order past them is a typed error, not a 500, and changes nothing', async () => {
    const inst: InstrumentConfig = { symbol: 'IDS', minPrice: 1, maxPrice: 1000, maxQty: MAX };
    const dir = tmpDir();
    // A venue whose order ids are near the end: an order logged with id 2^53 - 3.
    const engine = await Engine.open({ dataDir: dir, symbols: [inst], segmentSize: SEGMENT, codec: 'binary', durability: 'batch' });
    await engine.submit({ type: 'limit', symbol: 'IDS', seq: 0, reqId: 0, orderId: MAX - 2, userId: userIdOf('alice'), ts: 0, side: 'buy', price: 10, qty: MAX, tif: 'GTC', stp: 'NONE' });
    await engine.close();

    let s = await serve([inst], dir);
    const seeded = await getOrder(s.url, ALICE, 'IDS', MAX - 2);
    expect(seeded.status, seeded.text).toBe(200);
    expect(seeded.x.order).toMatchObject({ orderId: BMAX - 2n, qty: BMAX, remainingQty: BMAX });
    const a = await place(s.url, BOB, { symbol: 'IDS', side: 'sell', price: 20, qty: MAX, clientOrderId: 'x'.repeat(64) });
    expect(a.order.orderId).toBe(BMAX - 1n);
    const b = await place(s.url, CAROL, { symbol: 'IDS', side: 'sell', price: 10, qty: 5 });
    expect(b.order.orderId).toBe(BMAX);
    expect(b.events.find((e) => e.type === 'trade')).toMatchObject({ takerOrderId: BMAX, qty: 5n });
    const seededView = await getOrder(s.url, ALICE, 'IDS', MAX - 2);
    expect(seededView.x.order).toMatchObject({ filledQty: 5n, remainingQty: BMAX - 5n });
    const bookBefore = await expectBookMatchesEngine(s, 'IDS');

    // The next order would have id 2^53: a typed error, over HTTP and WebSocket, and nothing placed.
    const next = await call(s.url, 'POST', '/v1/orders', BOB, { symbol: 'IDS', side: 'sell', type: 'limit', price: 30, qty: 1 });
    expect(next.status, next.text).not.toBe(500);
    expect(next.status, next.text).toBeGreaterThanOrEqual(400);
    expect((next.x.error as Record<string, J> | undefined)?.code, next.text).toBeDefined();
    expect((next.x.error as Record<string, J>).code).not.toBe('INTERNAL');
    const ws = await WsClient.connect(wsUrl(s.url), { 'x-api-key': BOB });
    const wsAns = await ws.call({ op: 'order', order: { symbol: 'IDS', side: 'sell', type: 'market', qty: 1 } });
    expect(wsAns.ok).toBe(false);
    expect(wsAns.error?.code).toBeDefined();
    expect(wsAns.error?.code).not.toBe('INTERNAL');
    await ws.close();
    expect(await expectBookMatchesEngine(s, 'IDS')).toEqual(bookBefore);
    // The orders with the largest ids can still be queried, amended and canceled.
    let r = await call(s.url, 'PATCH', `/v1/orders/IDS/${MAX - 1}`, BOB, { qty: 7 });
    expect(r.status, r.text).toBe(200);
    expect(r.x.order).toMatchObject({ orderId: BMAX - 1n, remainingQty: 7n });
    r = await call(s.url, 'DELETE', `/v1/orders/IDS/${MAX - 1}`, BOB);
    expect(r.status, r.text).toBe(200);
    expect(r.x.order).toMatchObject({ orderId: BMAX - 1n, status: 'canceled' });
    const dup = await place(s.url, BOB, { symbol: 'IDS', side: 'sell', price: 20, qty: MAX, clientOrderId: 'x'.repeat(64) });
    expect(dup.order.orderId).toBe(BMAX - 1n);
    expect(exact(dup.text)).toMatchObject({ duplicate: true });
    const bookEnd = await expectBookMatchesEngine(s, 'IDS');

    // After a restart: the same ids, views and book.
    s = await restart(s, [inst]);
    expect(await expectBookMatchesEngine(s, 'IDS')).toMatchObject({ bids: bookEnd.bids, asks: bookEnd.asks });
    const v = await getOrder(s.url, BOB, 'IDS', MAX - 1);
    expect(v.x.order).toMatchObject({ orderId: BMAX - 1n, status: 'canceled', clientOrderId: 'x'.repeat(64) });
    const dup2 = await place(s.url, BOB, { symbol: 'IDS', side: 'sell', price: 20, qty: MAX, clientOrderId: 'x'.repeat(64) });
    expect(dup2.order.orderId).toBe(BMAX - 1n);
    const again = await call(s.url, 'POST', '/v1/orders', BOB, { symbol: 'IDS', side: 'sell', type: 'limit', price: 30, qty: 1 });
    expect(again.status, again.text).not.toBe(500);
    expect((again.x.error as Record<string, J> | undefined)?.code).toBeDefined();
  });

  it('takes clientOrderIds of 64 characters with the largest quantities and prices (also rejected orders, after a restart), and refuses 65', async () => {
    let s = await serve([HI]);
    const cid = 'Az09._:-'.repeat(8);
    expect(cid.length).toBe(64);
    const cid2 = '-:_.90zA'.repeat(8);
    const rest = await place(s.url, ALICE, { symbol: 'HI', side: 'sell', price: HI.maxPrice, qty: MAX, clientOrderId: cid });
    expect(rest.order).toMatchObject({ clientOrderId: cid, price: BigInt(HI.maxPrice), qty: BMAX });
    expect(rest.events[0]).toMatchObject({ type: 'accepted', clientOrderId: cid, qty: BMAX, price: BigInt(HI.maxPrice) });
    // A post-only buy at the top crosses: rejected, and its rejection carries what it asked for.
    const post = await place(s.url, BOB, { symbol: 'HI', side: 'buy', price: HI.maxPrice, qty: MAX, tif: 'POST', clientOrderId: cid2 });
    expect(post.order).toMatchObject({ status: 'rejected', reason: 'POST_ONLY_WOULD_CROSS', qty: BMAX, price: BigInt(HI.maxPrice), clientOrderId: cid2 });
    expect(post.events[0]).toMatchObject({ type: 'rejected', clientOrderId: cid2, qty: BMAX, price: BigInt(HI.maxPrice) });
    for (const bad of [`${cid}a`, '', 'a b', 'é'.repeat(3)]) {
      const r = await call(s.url, 'POST', '/v1/orders', ALICE, { symbol: 'HI', side: 'sell', type: 'limit', price: HI.maxPrice, qty: 1, clientOrderId: bad });
      expect(r.status, bad).toBe(400);
      expect((r.x.error as Record<string, J>).message, bad).toMatch(/^clientOrderId:/);
    }
    const ws = await WsClient.connect(wsUrl(s.url), { 'x-api-key': ALICE });
    const w = await ws.call({ op: 'order', order: { symbol: 'HI', side: 'sell', type: 'limit', price: HI.maxPrice, qty: 1, clientOrderId: `${cid}a` } });
    expect(w.error?.code).toBe('VALIDATION');
    expect(w.error?.message).toMatch(/clientOrderId/);
    const wd = await ws.call({ op: 'order', order: { symbol: 'HI', side: 'sell', type: 'limit', price: HI.maxPrice, qty: MAX, clientOrderId: cid } });
    expect(wd).toMatchObject({ ok: true, duplicate: true });
    expect(wd.order?.orderId).toBe(Number(rest.order.orderId));
    // The same id with another quantity (one lot less): 409.
    const other = await call(s.url, 'POST', '/v1/orders', ALICE, { symbol: 'HI', side: 'sell', type: 'limit', price: HI.maxPrice, qty: MAX - 1, clientOrderId: cid });
    expect(other.status).toBe(409);
    await ws.close();

    s = await restart(s, [HI]);
    const d1 = await place(s.url, ALICE, { symbol: 'HI', side: 'sell', price: HI.maxPrice, qty: MAX, clientOrderId: cid });
    expect(exact(d1.text)).toMatchObject({ duplicate: true, order: { orderId: rest.order.orderId, qty: BMAX, remainingQty: BMAX, clientOrderId: cid } });
    const d2 = await place(s.url, BOB, { symbol: 'HI', side: 'buy', price: HI.maxPrice, qty: MAX, tif: 'POST', clientOrderId: cid2 });
    expect(exact(d2.text)).toMatchObject({ duplicate: true, order: { orderId: post.order.orderId, status: 'rejected', qty: BMAX, clientOrderId: cid2 } });
    const other2 = await call(s.url, 'POST', '/v1/orders', ALICE, { symbol: 'HI', side: 'sell', type: 'limit', price: HI.maxPrice, qty: MAX - 1, clientOrderId: cid });
    expect(other2.status).toBe(409);
    const b = await expectBookMatchesEngine(s, 'HI');
    expect(b.asks).toEqual([[BigInt(HI.maxPrice), BMAX]]);
  });
});
