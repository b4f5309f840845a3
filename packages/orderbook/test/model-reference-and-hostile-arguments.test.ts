// The book against a naive model of its own (seeded differential runs over wide and narrow bands,
// huge quantities and the widest band), against the shared reference matcher, with hostile argument
// types (a Symbol as the stp was a TypeError before its fix), and level refills and priority.
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  AmendKind,
  CancelReason,
  CommandKind,
  EventRecorder,
  OrderBook,
  RejectReason,
  SelfTradePrevention as STP,
  Side,
  TimeInForce as TIF,
  type BookEvent,
  type OrderBookOptions,
} from '../src/index.js';

const { Buy, Sell } = Side;

// ---------------------------------------------------------------------------------------------
// A small deterministic PRNG (mulberry32).
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// A naive model of the documented rules: an array of resting orders, sorted on every look.

interface MO {
  id: number;
  user: number;
  side: Side;
  price: number;
  qty: number;
  tif: TIF;
  stp: STP;
  seq: number;
}

class NaiveBook {
  orders: MO[] = [];
  seq = 0;
  ev: BookEvent[] = [];
  constructor(readonly minPrice: number, readonly maxPrice: number, readonly maxQty: number) {}

  sideOrders(side: Side): MO[] {
    return this.orders
      .filter((o) => o.side === side)
      .sort((a, b) => (side === Buy ? b.price - a.price : a.price - b.price) || a.seq - b.seq);
  }
  best(side: Side): number | null {
    return this.sideOrders(side)[0]?.price ?? null;
  }
  find(id: number): MO | undefined {
    return this.orders.find((o) => o.id === id);
  }
  crosses(side: Side, price: number | null): boolean {
    const opp = this.best(side === Buy ? Sell : Buy);
    if (opp === null) return false;
    if (price === null) return true;
    return side === Buy ? opp <= price : opp >= price;
  }
  /** Exact level total (BigInt), minus `except`'s own quantity. */
  overflows(side: Side, price: number, add: number, except?: MO): boolean {
    let s = BigInt(add);
    for (const o of this.orders) if (o.side === side && o.price === price && o !== except) s += BigInt(o.qty);
    return s > BigInt(Number.MAX_SAFE_INTEGER);
  }
  rej(kind: CommandKind, id: number, reason: RejectReason): RejectReason {
    this.ev.push({ type: 'rejected', kind, orderId: id, reason });
    return reason;
  }
  rest(id: number, user: number, side: Side, price: number, qty: number, tif: TIF, stp: STP): void {
    this.orders.push({ id, user, side, price, qty, tif, stp, seq: this.seq++ });
    this.ev.push({ type: 'added', orderId: id, userId: user, side, price, qty });
  }
  remove(o: MO): void {
    this.orders = this.orders.filter((x) => x !== o);
  }
  cancelResting(o: MO): void {
    this.remove(o);
    this.ev.push({ type: 'canceled', orderId: o.id, userId: o.user, reason: CancelReason.SelfTrade, qty: o.qty });
  }
  /** Can a FOK fill completely (README: counts liquidity reachable before a self-match stops it). */
  canFill(user: number, side: Side, price: number, qty: number, stp: STP): boolean {
    let need = qty;
    for (const m of this.sideOrders(side === Buy ? Sell : Buy)) {
      if (side === Buy ? m.price > price : m.price < price) break;
      if (stp !== STP.None && m.user === user) {
        if (stp === STP.CancelOldest) continue;
        return false;
      }
      need -= m.qty;
      if (need <= 0) return true;
    }
    return false;
  }
  match(id: number, user: number, side: Side, limit: number | null, qty: number, stp: STP, takerPrice: number): number {
    const opp = side === Buy ? Sell : Buy;
    while (qty > 0 && this.crosses(side, limit)) {
      const m = this.sideOrders(opp)[0] as MO;
      if (stp !== STP.None && m.user === user) {
        if (stp === STP.CancelNewest) {
          this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty });
          return 0;
        }
        if (stp === STP.CancelOldest) {
          this.cancelResting(m);
          continue;
        }
        if (stp === STP.CancelBoth) {
          this.cancelResting(m);
          this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty });
          return 0;
        }
        const d = Math.min(m.qty, qty);
        if (m.qty === d) this.cancelResting(m);
        else {
          m.qty -= d;
          this.ev.push({ type: 'amended', orderId: m.id, userId: m.user, side: m.side, price: m.price, qty: m.qty, kind: AmendKind.SelfTradeDecrement });
        }
        qty -= d;
        if (qty === 0) {
          this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty: d });
          return 0;
        }
        this.ev.push({ type: 'amended', orderId: id, userId: user, side, price: takerPrice, qty, kind: AmendKind.SelfTradeDecrement });
        continue;
      }
      const fill = Math.min(m.qty, qty);
      m.qty -= fill;
      qty -= fill;
      this.ev.push({ type: 'trade', makerId: m.id, takerId: id, makerUserId: m.user, takerUserId: user, takerSide: side, price: m.price, qty: fill, makerRemaining: m.qty });
      if (m.qty === 0) this.remove(m);
    }
    return qty;
  }
  limit(id: number, user: number, side: Side, price: number, qty: number, tif: TIF, stp: STP): RejectReason {
    const K = CommandKind.Limit;
    if (qty > this.maxQty) return this.rej(K, id, RejectReason.QtyAboveMax);
    if (this.find(id)) return this.rej(K, id, RejectReason.DuplicateOrderId);
    const crossing = this.crosses(side, price);
    if (tif === TIF.POST && crossing) return this.rej(K, id, RejectReason.PostOnlyWouldCross);
    if (tif === TIF.FOK && !this.canFill(user, side, price, qty, stp)) return this.rej(K, id, RejectReason.FokNotFillable);
    if (!crossing && (tif === TIF.GTC || tif === TIF.POST) && this.overflows(side, price, qty)) {
      return this.rej(K, id, RejectReason.LevelQtyOverflow);
    }
    this.ev.push({ type: 'accepted', kind: K, orderId: id, userId: user, side, price, qty });
    const left = this.match(id, user, side, price, qty, stp, price);
    if (left > 0) {
      if (tif === TIF.GTC || tif === TIF.POST) this.rest(id, user, side, price, left, tif, stp);
      else this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.Unfilled, qty: left });
    }
    return RejectReason.None;
  }
  market(id: number, user: number, side: Side, qty: number, stp: STP): RejectReason {
    if (qty > this.maxQty) return this.rej(CommandKind.Market, id, RejectReason.QtyAboveMax);
    if (this.find(id)) return this.rej(CommandKind.Market, id, RejectReason.DuplicateOrderId);
    this.ev.push({ type: 'accepted', kind: CommandKind.Market, orderId: id, userId: user, side, price: 0, qty });
    const left = this.match(id, user, side, null, qty, stp, 0);
    if (left > 0) this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.Unfilled, qty: left });
    return RejectReason.None;
  }
  cancel(id: number): RejectReason {
    const o = this.find(id);
    if (!o) return this.rej(CommandKind.Cancel, id, RejectReason.UnknownOrder);
    this.remove(o);
    this.ev.push({ type: 'canceled', orderId: id, userId: o.user, reason: CancelReason.User, qty: o.qty });
    return RejectReason.None;
  }
  reduce(id: number, q: number): RejectReason {
    const o = this.find(id);
    if (!o) return this.rej(CommandKind.Amend, id, RejectReason.UnknownOrder);
    if (q >= o.qty) return this.rej(CommandKind.Amend, id, RejectReason.AmendNotReducing);
    o.qty = q;
    this.ev.push({ type: 'amended', orderId: id, userId: o.user, side: o.side, price: o.price, qty: q, kind: AmendKind.Reduce });
    return RejectReason.None;
  }
  amend(id: number, price: number, q: number): RejectReason {
    const K = CommandKind.Amend;
    if (q > this.maxQty) return this.rej(K, id, RejectReason.QtyAboveMax);
    const o = this.find(id);
    if (!o) return this.rej(K, id, RejectReason.UnknownOrder);
    if (price === o.price) {
      if (q === o.qty) return this.rej(K, id, RejectReason.AmendNoChange);
      if (q < o.qty) return this.reduce(id, q);
    }
    const crossing = this.crosses(o.side, price);
    if (crossing && o.tif === TIF.POST) return this.rej(K, id, RejectReason.PostOnlyWouldCross);
    if (!crossing && this.overflows(o.side, price, q, o)) {
      return this.rej(K, id, RejectReason.LevelQtyOverflow);
    }
    this.remove(o);
    this.ev.push({ type: 'amended', orderId: id, userId: o.user, side: o.side, price, qty: q, kind: AmendKind.Replace });
    const left = this.match(id, o.user, o.side, price, q, o.stp, price);
    if (left > 0) this.rest(id, o.user, o.side, price, left, o.tif, o.stp);
    return RejectReason.None;
  }
  rows(side: Side): [number, number, number, number][] {
    return this.sideOrders(side).map((o) => [o.id, o.user, o.price, o.qty]);
  }
}

function bookRows(book: OrderBook, side: Side): [number, number, number, number][] {
  const rows: [number, number, number, number][] = [];
  book.forEachOrder(side, (id, user, price, qty) => rows.push([id, user, price, qty]));
  return rows;
}

interface FuzzCfg {
  seed: number;
  steps: number;
  opts: OrderBookOptions;
  prices: number[];
  users: number;
  maxQty: number;
  /** How far new ids jump: ids increase by 1..idJump. */
  idJump: number;
}

/** Random commands against book and model; compares events, returns and state after every step. */
function fuzz(cfg: FuzzCfg): void {
  const rec = new EventRecorder();
  const book = new OrderBook(cfg.opts, rec);
  const minPrice = cfg.opts.minPrice ?? 1;
  const maxPrice = cfg.opts.maxPrice ?? 1_000_000_000;
  const model = new NaiveBook(minPrice, maxPrice, cfg.opts.maxQty ?? 2 ** 48);
  const r = rng(cfg.seed);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
  let nextId = 1;
  const usedIds: number[] = [];
  const trace: string[] = [];
  const liveIds = (): number[] => model.orders.map((o) => o.id);
  for (let step = 0; step < cfg.steps; step++) {
    const k = r();
    let got: RejectReason;
    let want: RejectReason;
    let line: string;
    const qty = cfg.maxQty > 2 ** 40 && r() < 0.5 ? pick([cfg.maxQty, cfg.maxQty - 1, 2 ** 51, 3 * 2 ** 50, 1, 2]) : 1 + Math.floor(r() * cfg.maxQty);
    const user = 1 + Math.floor(r() * cfg.users);
    const side: Side = r() < 0.5 ? Buy : Sell;
    const stp: STP = r() < 0.5 ? STP.None : (pick([1, 2, 3, 4]));
    // new ids: mostly fresh increasing ids, sometimes an id used before (reuse after fill/cancel)
    const newId = (): number => {
      if (usedIds.length > 0 && r() < 0.15) return pick(usedIds);
      const id = nextId;
      nextId += 1 + Math.floor(r() * cfg.idJump);
      usedIds.push(id);
      return id;
    };
    const oldId = (): number => {
      const live = liveIds();
      if (live.length > 0 && r() < 0.85) return pick(live);
      return usedIds.length > 0 ? pick(usedIds) : 1;
    };
    if (k < 0.45) {
      const id = newId();
      const price = pick(cfg.prices);
      const tif = pick([TIF.GTC, TIF.GTC, TIF.GTC, TIF.IOC, TIF.FOK, TIF.POST]);
      line = `submitLimit(${id}, ${user}, ${side}, ${price}, ${qty}, ${tif}, ${stp})`;
      got = book.submitLimit(id, user, side, price, qty, tif, stp);
      want = model.limit(id, user, side, price, qty, tif, stp);
    } else if (k < 0.52) {
      const id = newId();
      line = `submitMarket(${id}, ${user}, ${side}, ${qty}, ${stp})`;
      got = book.submitMarket(id, user, side, qty, stp);
      want = model.market(id, user, side, qty, stp);
    } else if (k < 0.7) {
      const id = oldId();
      line = `cancel(${id})`;
      got = book.cancel(id);
      want = model.cancel(id);
    } else if (k < 0.8) {
      const id = oldId();
      const o = model.find(id);
      const q = Math.max(1, (o?.qty ?? 2) - 1 - Math.floor(r() * 3));
      line = `reduce(${id}, ${q})`;
      got = book.reduce(id, q);
      want = model.reduce(id, q);
    } else {
      const id = oldId();
      const o = model.find(id);
      const price = r() < 0.4 && o ? o.price : pick(cfg.prices);
      const q = r() < 0.5 && o ? Math.max(1, o.qty + Math.floor(r() * 5) - 2) : qty;
      line = `amend(${id}, ${price}, ${q})`;
      got = book.amend(id, price, q);
      want = model.amend(id, price, q);
    }
    trace.push(line);
    const ctx = `seed ${cfg.seed} step ${step}: ${trace.slice(-12).join('; ')}`;
    expect(rec.take(), ctx).toEqual(model.ev.splice(0));
    expect(got, ctx).toBe(want);
    expect(bookRows(book, Buy), ctx).toEqual(model.rows(Buy));
    expect(bookRows(book, Sell), ctx).toEqual(model.rows(Sell));
    expect(book.bestBid, ctx).toBe(model.best(Buy));
    expect(book.bestAsk, ctx).toBe(model.best(Sell));
    expect(book.orderCount, ctx).toBe(model.orders.length);
    if (step % 16 === 0) book.audit();
  }
  book.audit();
  for (const id of usedIds) {
    const o = model.find(id);
    expect(book.has(id)).toBe(o !== undefined);
    expect(book.ownerOf(id)).toBe(o === undefined ? -1 : o.user);
    expect(book.getOrder(id)?.qty).toBe(o?.qty);
  }
}

// ---------------------------------------------------------------------------------------------

describe('differential fuzz against a naive model', () => {
  it('wide default band with prices spread over many price-index pages, tiny pools and id window', () => {
    const prices: number[] = [];
    const r = rng(99);
    for (let i = 0; i < 40; i++) prices.push(1 + Math.floor(r() * 999_999_999));
    prices.push(1, 1_000_000_000, 32_768, 32_769, 1_048_576, 1_048_577);
    for (const seed of [1, 2, 3]) {
      fuzz({ seed, steps: 1500, opts: { initialOrders: 1, initialLevels: 1, idWindow: 4 }, prices, users: 3, maxQty: 20, idJump: 3 });
    }
  });

  it('narrow band, heavy collisions, ids jumping past the id window', () => {
    const prices = Array.from({ length: 12 }, (_, i) => 95 + i);
    for (const seed of [11, 12, 13]) {
      fuzz({ seed, steps: 2000, opts: { minPrice: 90, maxPrice: 110, initialOrders: 2, initialLevels: 2, idWindow: 8 }, prices, users: 2, maxQty: 10, idJump: 20 });
    }
  });

  it('huge quantities near the safe-integer limit (level-total overflow checks), one and two users', () => {
    const prices = Array.from({ length: 6 }, (_, i) => 98 + i);
    for (const [seed, users] of [[31, 1], [32, 2], [33, 2]] as const) {
      fuzz({ seed, steps: 1500, opts: { minPrice: 90, maxPrice: 110, maxQty: 2 ** 52, initialOrders: 1, initialLevels: 1, idWindow: 2 }, prices, users, maxQty: 2 ** 52, idJump: 2 });
    }
  });

  it('a 2^31-1 tick band with orders at both ends and in between', () => {
    const maxPrice = 2 ** 31 - 1;
    const prices = [1, 2, 3, 32_768, 65_536, 2 ** 30, 2 ** 30 + 1, maxPrice - 32_768, maxPrice - 1, maxPrice];
    fuzz({ seed: 21, steps: 1500, opts: { minPrice: 1, maxPrice, initialOrders: 4, initialLevels: 4, idWindow: 16 }, prices, users: 3, maxQty: 6, idJump: 1 });
  });
});

// ---------------------------------------------------------------------------------------------
// The shared workloads: the book, driven line by line, must reproduce the reference matcher's summary.


// ../shared beside the repository (the shared workloads, as CI checks them out).
const WORKLOADS = fileURLToPath(new URL('../../../../shared/workloads', import.meta.url));

class SummarySink {
  trades = 0;
  volume = 0;
  th = createHash('sha256');
  onAccepted(): void {}
  onRejected(): void {}
  onAdded(): void {}
  onCanceled(): void {}
  onAmended(): void {}
  onTrade(makerId: number, takerId: number, _mu: number, _tu: number, _s: Side, price: number, qty: number): void {
    this.trades++;
    this.volume += qty;
    this.th.update(`${makerId},${takerId},${price},${qty};`);
  }
}

function replaySummary(csv: string): Record<string, unknown> {
  const sink = new SummarySink();
  const book = new OrderBook({ minPrice: 1, maxPrice: 1_000_000_000, initialOrders: 1024, initialLevels: 64 }, sink);
  const n = { cancels: 0, cancelRejects: 0, rejects: 0, amends: 0, amendRejects: 0 };
  const lines = csv.trim().split('\n');
  const tifs: Record<string, TIF> = { GTC: TIF.GTC, IOC: TIF.IOC, FOK: TIF.FOK, POST: TIF.POST };
  for (const ln of lines) {
    const f = ln.split(',');
    const num = (k: number): number => Number(f[k]);
    const side = f[2] === 'B' ? Buy : Sell;
    switch (f[0]) {
      case 'L':
        if (book.submitLimit(num(1), 1, side, num(3), num(4), tifs[f[5] ?? 'GTC']) !== RejectReason.None) n.rejects++;
        break;
      case 'M':
        if (book.submitMarket(num(1), 1, side, num(3)) !== RejectReason.None) n.rejects++;
        break;
      case 'C':
        if (book.cancel(num(1)) === RejectReason.None) n.cancels++;
        else n.cancelRejects++;
        break;
      case 'A':
        if (book.reduce(num(1), num(2)) === RejectReason.None) n.amends++;
        else n.amendRejects++;
        break;
      default:
        throw new Error(`bad line ${ln}`);
    }
  }
  book.audit();
  const bh = createHash('sha256');
  const rest = { B: { count: 0, qty: 0 }, S: { count: 0, qty: 0 } };
  for (const [s, side] of [['B', Buy], ['S', Sell]] as const) {
    book.forEachOrder(side, (id, _u, price, qty) => {
      bh.update(`${s},${price},${id},${qty};`);
      rest[s].count++;
      rest[s].qty += qty;
    });
  }
  return {
    ops: lines.length,
    trades: sink.trades,
    volume: sink.volume,
    ...n,
    restingBids: rest.B.count,
    restingBidQty: rest.B.qty,
    restingAsks: rest.S.count,
    restingAskQty: rest.S.qty,
    bestBid: book.bestBid,
    bestAsk: book.bestAsk,
    tradeHash: sink.th.digest('hex').slice(0, 16),
    bookHash: bh.digest('hex').slice(0, 16),
  };
}

describe('the shared workloads against the reference matcher', () => {
  it.each([
    ['W2 mix, 30k ops', ['--ops', '30000', '--prefill', '2000', '--seed', '7', '--mix', '40,25,10,5,5,5,5,5']],
    ['narrow band, crossing, big sizes', ['--ops', '30000', '--prefill', '500', '--seed', '3', '--band', '4', '--cross', '6', '--maxqty', '1000', '--mix', '30,20,15,10,10,10,10,10']],
  ])('reproduces ref.mjs exactly: %s', (_name, args) => {
    const dir = mkdtempSync(join(tmpdir(), 'gx3-review-'));
    try {
      const csv = execFileSync(process.execPath, [join(WORKLOADS, 'gen.mjs'), ...args], { encoding: 'utf8', maxBuffer: 1 << 28 });
      const file = join(dir, 'w.csv');
      writeFileSync(file, csv);
      const want = JSON.parse(execFileSync(process.execPath, [join(WORKLOADS, 'ref.mjs'), file], { encoding: 'utf8' })) as Record<string, unknown>;
      expect(replaySummary(readFileSync(file, 'utf8'))).toEqual(want);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Bad input must be a rejection, never an exception (README, Invariants).

describe('bad input is a rejection, never an exception', () => {
  function bookWithTwoOrders(): { book: OrderBook; rec: EventRecorder; before: string } {
    const rec = new EventRecorder();
    const book = new OrderBook({ minPrice: 1, maxPrice: 1000 }, rec);
    book.submitLimit(1, 1, Buy, 10, 5);
    book.submitLimit(2, 2, Sell, 20, 5);
    rec.take();
    return { book, rec, before: JSON.stringify([book.depth(Buy, 10), book.depth(Sell, 10)]) };
  }

  it('submitLimit with a Symbol as the self-trade prevention mode is rejected (INVALID_SELF_TRADE_PREVENTION), not thrown', () => {
    const { book, rec, before } = bookWithTwoOrders();
    let reason: RejectReason | undefined;
    expect(() => {
      reason = book.submitLimit(3, 1, Buy, 20, 1, TIF.GTC, Symbol('stp') as unknown as STP);
    }).not.toThrow();
    expect(reason).toBe(RejectReason.InvalidSelfTradePrevention);
    expect(rec.take()).toEqual([{ type: 'rejected', kind: CommandKind.Limit, orderId: 3, reason: RejectReason.InvalidSelfTradePrevention }]);
    expect(JSON.stringify([book.depth(Buy, 10), book.depth(Sell, 10)])).toBe(before);
  });

  it('submitMarket with a Symbol as the self-trade prevention mode is rejected, not thrown', () => {
    const { book, rec, before } = bookWithTwoOrders();
    let reason: RejectReason | undefined;
    expect(() => {
      reason = book.submitMarket(3, 1, Buy, 1, Symbol('stp') as unknown as STP);
    }).not.toThrow();
    expect(reason).toBe(RejectReason.InvalidSelfTradePrevention);
    expect(rec.take()).toEqual([{ type: 'rejected', kind: CommandKind.Market, orderId: 3, reason: RejectReason.InvalidSelfTradePrevention }]);
    expect(JSON.stringify([book.depth(Buy, 10), book.depth(Sell, 10)])).toBe(before);
  });

  it('every command refuses non-number arguments in every position without throwing or changing the book', () => {
    const weird: unknown[] = [1n, 0n, {}, [], null, '1', true, () => 1, { valueOf: () => 1 }, Number.NaN, Symbol('x')];
    const { book, before } = bookWithTwoOrders();
    const calls: [string, (v: unknown) => RejectReason][] = [];
    for (let pos = 0; pos < 5; pos++) {
      calls.push([`submitLimit arg ${pos}`, (v) => {
        const a: unknown[] = [3, 1, Buy, 15, 1];
        a[pos] = v;
        return (book.submitLimit as (...x: unknown[]) => RejectReason)(...a);
      }]);
    }
    calls.push(['submitLimit tif', (v) => book.submitLimit(3, 1, Buy, 15, 1, v as TIF)]);
    for (let pos = 0; pos < 4; pos++) {
      calls.push([`submitMarket arg ${pos}`, (v) => {
        const a: unknown[] = [4, 1, Sell, 1];
        a[pos] = v;
        return (book.submitMarket as (...x: unknown[]) => RejectReason)(...a);
      }]);
    }
    calls.push(['cancel', (v) => book.cancel(v as number)]);
    calls.push(['reduce id', (v) => book.reduce(v as number, 1)], ['reduce qty', (v) => book.reduce(1, v as number)]);
    calls.push(['amend id', (v) => book.amend(v as number, 11, 3)], ['amend price', (v) => book.amend(1, v as number, 3)], ['amend qty', (v) => book.amend(1, 11, v as number)]);
    for (const [name, call] of calls) {
      for (const v of weird) {
        let r: RejectReason | undefined;
        expect(() => {
          r = call(v);
        }, `${name} with ${typeof v}`).not.toThrow();
        expect(r, `${name} with ${typeof v}`).not.toBe(RejectReason.None);
      }
    }
    expect(JSON.stringify([book.depth(Buy, 10), book.depth(Sell, 10)])).toBe(before);
    book.audit();
  });
});

// ---------------------------------------------------------------------------------------------
// Targeted sequences: levels that empty and refill, ids reused, pools that grow mid-match.

describe('targeted sequences', () => {
  it('a level that empties by fills and refills keeps FIFO order and the right best price; ids are reusable', () => {
    const rec = new EventRecorder();
    const book = new OrderBook({ minPrice: 1, maxPrice: 1000, initialOrders: 1, initialLevels: 1, idWindow: 2 }, rec);
    for (let round = 0; round < 5; round++) {
      // rest three asks at 100 and one at 101 with the same ids each round
      book.submitLimit(1, 1, Sell, 100, 2);
      book.submitLimit(2, 2, Sell, 100, 3);
      book.submitLimit(3, 1, Sell, 101, 4);
      book.submitLimit(4, 2, Sell, 100, 1);
      expect(book.bestAsk).toBe(100);
      rec.take();
      book.submitLimit(10 + round, 3, Buy, 101, 7, TIF.IOC);
      const trades = rec.take().filter((e) => e.type === 'trade').map((e) => (e.type === 'trade' ? [e.makerId, e.price, e.qty] : []));
      expect(trades).toEqual([
        [1, 100, 2],
        [2, 100, 3],
        [4, 100, 1],
        [3, 101, 1],
      ]);
      expect(book.bestAsk).toBe(101);
      expect(book.getOrder(3)?.qty).toBe(3);
      book.cancel(3);
      expect(book.bestAsk).toBeNull();
      expect(book.orderCount).toBe(0);
      book.audit();
    }
  });

  it('a reduce at the head of a level keeps its place; an amend up moves it to the back', () => {
    const rec = new EventRecorder();
    const book = new OrderBook({ minPrice: 1, maxPrice: 1000 }, rec);
    book.submitLimit(1, 1, Buy, 50, 5);
    book.submitLimit(2, 2, Buy, 50, 5);
    book.submitLimit(3, 3, Buy, 50, 5);
    expect(book.reduce(1, 1)).toBe(RejectReason.None);
    expect(book.amend(2, 50, 6)).toBe(RejectReason.None);
    expect(bookRows(book, Buy)).toEqual([
      [1, 1, 50, 1],
      [3, 3, 50, 5],
      [2, 2, 50, 6],
    ]);
    expect(book.depth(Buy, 1)).toEqual([{ price: 50, qty: 12, orders: 3 }]);
    book.audit();
  });
});
