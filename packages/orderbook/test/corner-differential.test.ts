// Corner-case differential test of the order book.
//
// Seeded random command streams, from generators biased towards the corners of the matching rules
// (prices at the band edges, quantities of 1 and of maxQty, many orders at one level, fill-or-kill
// orders that exactly fill or miss by one lot across several levels, post-only orders that touch or
// stop one tick short of the opposite side, market orders on an empty or one-sided book, every
// self-trade prevention mode between one user's orders at several levels, amendments up, down, to
// the same quantity, to another price, of filled, canceled and unknown orders, cancels of unknown
// and ended ids, order id reuse), run through the book and through:
//
// 1. the shared reference matcher (../shared/workloads/ref.mjs, run in-process) for the streams its
//    CSV can express: every fill, the final book and the summary counters must be equal;
// 2. a naive oracle written here from workloads/README.md and the book's README (levels as plain
//    arrays, ref.mjs style, extended with users, self-trade prevention and amend): the returned
//    reason and every event must be equal, command by command.
//
// After every command the book is also checked on its own: audit(), the invariants through the
// public API only (level totals and counts equal the sum of their orders, no empty level, levels
// strictly ordered, best bid < best ask, every counter), and a lot ledger built from the events
// alone (every lot of every order is traded, canceled, decremented or resting: none appears or
// vanishes; a FOK fills completely, a POST never trades, no trade between one user's orders under
// a prevention mode, a trade never goes through the taker's limit).
//
// A mismatch is shrunk (delta debugging over the commands, then simpler fields) to a minimal
// reproduction, printed as the calls to make.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  AmendKind,
  CancelReason,
  CommandKind,
  EventRecorder,
  OrderBook,
  OrderBookError,
  RejectReason,
  SelfTradePrevention as STP,
  Side,
  TimeInForce as TIF,
  type BookEvent,
  type OrderBookOptions,
} from '../src/index.js';

const { Buy, Sell } = Side;
const MAX_SAFE = Number.MAX_SAFE_INTEGER;

// ---------------------------------------------------------------------------------------------
// Seeded PRNG (xorshift-multiply over 32 bits).

function prng(seed: number): () => number {
  let s = (seed * 2654435761) >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4294967296;
  };
}

// ---------------------------------------------------------------------------------------------
// Concrete commands.

type Cmd =
  | { t: 'L'; id: number; user: number; side: number; price: number; qty: number; tif: number; stp: number }
  | { t: 'M'; id: number; user: number; side: number; qty: number; stp: number }
  | { t: 'C'; id: number }
  | { t: 'R'; id: number; qty: number }
  | { t: 'A'; id: number; price: number; qty: number };

function fmt(c: Cmd): string {
  switch (c.t) {
    case 'L':
      return `book.submitLimit(${c.id}, ${c.user}, ${c.side}, ${c.price}, ${c.qty}, ${c.tif}, ${c.stp});`;
    case 'M':
      return `book.submitMarket(${c.id}, ${c.user}, ${c.side}, ${c.qty}, ${c.stp});`;
    case 'C':
      return `book.cancel(${c.id});`;
    case 'R':
      return `book.reduce(${c.id}, ${c.qty});`;
    case 'A':
      return `book.amend(${c.id}, ${c.price}, ${c.qty});`;
  }
}

function applyBook(book: OrderBook, c: Cmd): RejectReason {
  switch (c.t) {
    case 'L':
      return book.submitLimit(c.id, c.user, c.side as Side, c.price, c.qty, c.tif as TIF, c.stp as STP);
    case 'M':
      return book.submitMarket(c.id, c.user, c.side as Side, c.qty, c.stp as STP);
    case 'C':
      return book.cancel(c.id);
    case 'R':
      return book.reduce(c.id, c.qty);
    case 'A':
      return book.amend(c.id, c.price, c.qty);
  }
}

interface Scenario {
  readonly name: string;
  readonly minPrice: number;
  readonly maxPrice: number;
  readonly maxQty: number;
  readonly extra: OrderBookOptions;
  /** Prices worth hitting besides the band edges and the prices near the best (page boundaries...). */
  readonly notable: readonly number[];
  /** Quantities worth using besides 1 and maxQty. */
  readonly qtys: readonly number[];
}

const options = (sc: Scenario): OrderBookOptions => ({ minPrice: sc.minPrice, maxPrice: sc.maxPrice, maxQty: sc.maxQty, ...sc.extra });

// ---------------------------------------------------------------------------------------------
// The oracle: ref.mjs's data structures (a Map of price -> FIFO array and a best-first array of
// prices per side), extended with users, time in force, self-trade prevention and amend, emitting
// the events the book's README promises.

interface RO {
  id: number;
  user: number;
  side: Side;
  price: number;
  qty: number;
  tif: TIF;
  stp: STP;
}

class RefSide {
  readonly levels = new Map<number, RO[]>();
  readonly prices: number[] = [];
  constructor(readonly buy: boolean) {}
  better(a: number, b: number): boolean {
    return this.buy ? a > b : a < b;
  }
  best(): number | null {
    return this.prices[0] ?? null;
  }
  push(o: RO): void {
    let l = this.levels.get(o.price);
    if (l === undefined) {
      l = [];
      this.levels.set(o.price, l);
      let i = 0;
      while (i < this.prices.length && this.better(this.prices[i] as number, o.price)) i++;
      this.prices.splice(i, 0, o.price);
    }
    l.push(o);
  }
  remove(o: RO): void {
    const l = this.levels.get(o.price) as RO[];
    l.splice(l.indexOf(o), 1);
    if (l.length === 0) {
      this.levels.delete(o.price);
      this.prices.splice(this.prices.indexOf(o.price), 1);
    }
  }
  levelSum(price: number): bigint {
    let s = 0n;
    for (const o of this.levels.get(price) ?? []) s += BigInt(o.qty);
    return s;
  }
  /** Orders best first, each level in time priority. */
  *orders(): Generator<RO> {
    for (const p of this.prices) yield* this.levels.get(p) as RO[];
  }
}

const safePos = (x: number): boolean => Number.isSafeInteger(x) && x > 0;

class RefBook {
  readonly bids = new RefSide(true);
  readonly asks = new RefSide(false);
  readonly live = new Map<number, RO>();
  ev: BookEvent[] = [];
  constructor(readonly sc: Scenario) {}

  own(side: Side): RefSide {
    return side === Buy ? this.bids : this.asks;
  }
  opp(side: Side): RefSide {
    return side === Buy ? this.asks : this.bids;
  }
  /** Whether `price` (null: a market order) reaches `px` for a taker on `side`. */
  reaches(side: Side, limit: number | null, px: number): boolean {
    return limit === null || (side === Buy ? px <= limit : px >= limit);
  }
  crosses(side: Side, limit: number | null): boolean {
    const b = this.opp(side).best();
    return b !== null && this.reaches(side, limit, b);
  }

  apply(c: Cmd): { reason: RejectReason; events: BookEvent[] } {
    this.ev = [];
    let reason: RejectReason;
    switch (c.t) {
      case 'L':
        reason = this.limit(c.id, c.user, c.side, c.price, c.qty, c.tif, c.stp);
        break;
      case 'M':
        reason = this.market(c.id, c.user, c.side, c.qty, c.stp);
        break;
      case 'C':
        reason = this.cancel(c.id);
        break;
      case 'R':
        reason = this.reduce(c.id, c.qty);
        break;
      case 'A':
        reason = this.amend(c.id, c.price, c.qty);
        break;
    }
    return { reason, events: this.ev };
  }

  private rej(kind: CommandKind, orderId: number, reason: RejectReason): RejectReason {
    this.ev.push({ type: 'rejected', kind, orderId, reason });
    return reason;
  }

  private validateNew(id: number, user: number, side: number, qty: number, stp: number): RejectReason {
    if (!safePos(id)) return RejectReason.InvalidOrderId;
    if (!Number.isSafeInteger(user) || user < 0) return RejectReason.InvalidUserId;
    if (side !== Buy && side !== Sell) return RejectReason.InvalidSide;
    if (!safePos(qty)) return RejectReason.InvalidQty;
    if (qty > this.sc.maxQty) return RejectReason.QtyAboveMax;
    if (!(Number.isInteger(stp) && stp >= 0 && stp <= 4)) return RejectReason.InvalidSelfTradePrevention;
    return RejectReason.None;
  }

  /** README: a FOK counts the liquidity it reaches before a self-match would stop it; CancelOldest skips self orders. */
  fokLiquidity(user: number, side: Side, limit: number, stp: STP): number {
    let sum = 0;
    for (const m of this.opp(side).orders()) {
      if (!this.reaches(side, limit, m.price)) break;
      if (stp !== STP.None && m.user === user) {
        if (stp === STP.CancelOldest) continue;
        break;
      }
      sum += m.qty;
    }
    return sum;
  }

  private restOrder(o: RO): void {
    this.own(o.side).push(o);
    this.live.set(o.id, o);
    this.ev.push({ type: 'added', orderId: o.id, userId: o.user, side: o.side, price: o.price, qty: o.qty });
  }

  private drop(o: RO): void {
    this.own(o.side).remove(o);
    this.live.delete(o.id);
  }

  private selfCancel(o: RO): void {
    this.drop(o);
    this.ev.push({ type: 'canceled', orderId: o.id, userId: o.user, reason: CancelReason.SelfTrade, qty: o.qty });
  }

  /** Returns the taker's unfilled rest (0 when self-trade prevention ended it). */
  private match(id: number, user: number, side: Side, limit: number | null, qty: number, stp: STP, takerPrice: number): number {
    const opp = this.opp(side);
    while (qty > 0) {
      const px = opp.best();
      if (px === null || !this.reaches(side, limit, px)) break;
      const m = (opp.levels.get(px) as RO[])[0] as RO;
      if (stp !== STP.None && m.user === user) {
        if (stp === STP.CancelNewest) {
          this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty });
          return 0;
        }
        if (stp === STP.CancelOldest) {
          this.selfCancel(m);
          continue;
        }
        if (stp === STP.CancelBoth) {
          this.selfCancel(m);
          this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty });
          return 0;
        }
        const d = Math.min(m.qty, qty);
        if (d === m.qty) this.selfCancel(m);
        else {
          m.qty -= d;
          this.ev.push({ type: 'amended', orderId: m.id, userId: m.user, side: m.side, price: m.price, qty: m.qty, kind: AmendKind.SelfTradeDecrement });
        }
        if (d === qty) {
          this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty });
          return 0;
        }
        qty -= d;
        this.ev.push({ type: 'amended', orderId: id, userId: user, side, price: takerPrice, qty, kind: AmendKind.SelfTradeDecrement });
        continue;
      }
      const fill = Math.min(m.qty, qty);
      m.qty -= fill;
      qty -= fill;
      this.ev.push({
        type: 'trade',
        makerId: m.id,
        takerId: id,
        makerUserId: m.user,
        takerUserId: user,
        takerSide: side,
        price: m.price,
        qty: fill,
        makerRemaining: m.qty,
      });
      if (m.qty === 0) this.drop(m);
    }
    return qty;
  }

  private limit(id: number, user: number, sideIn: number, price: number, qty: number, tifIn: number, stpIn: number): RejectReason {
    const K = CommandKind.Limit;
    const bad = this.validateNew(id, user, sideIn, qty, stpIn);
    if (bad !== RejectReason.None) return this.rej(K, id, bad);
    if (!Number.isSafeInteger(price) || price <= 0) return this.rej(K, id, RejectReason.InvalidPrice);
    if (price < this.sc.minPrice || price > this.sc.maxPrice) return this.rej(K, id, RejectReason.PriceOutOfBand);
    if (![TIF.GTC, TIF.IOC, TIF.FOK, TIF.POST].includes(tifIn as TIF)) return this.rej(K, id, RejectReason.InvalidTimeInForce);
    if (this.live.has(id)) return this.rej(K, id, RejectReason.DuplicateOrderId);
    const side = sideIn as Side;
    const tif = tifIn as TIF;
    const stp = stpIn as STP;
    const crossing = this.crosses(side, price);
    if (tif === TIF.POST && crossing) return this.rej(K, id, RejectReason.PostOnlyWouldCross);
    if (tif === TIF.FOK && this.fokLiquidity(user, side, price, stp) < qty) return this.rej(K, id, RejectReason.FokNotFillable);
    if (!crossing && (tif === TIF.GTC || tif === TIF.POST) && this.own(side).levelSum(price) + BigInt(qty) > BigInt(MAX_SAFE)) {
      return this.rej(K, id, RejectReason.LevelQtyOverflow);
    }
    this.ev.push({ type: 'accepted', kind: K, orderId: id, userId: user, side, price, qty });
    const left = this.match(id, user, side, price, qty, stp, price);
    if (left > 0) {
      if (tif === TIF.GTC || tif === TIF.POST) this.restOrder({ id, user, side, price, qty: left, tif, stp });
      else this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.Unfilled, qty: left });
    }
    return RejectReason.None;
  }

  private market(id: number, user: number, sideIn: number, qty: number, stpIn: number): RejectReason {
    const K = CommandKind.Market;
    const bad = this.validateNew(id, user, sideIn, qty, stpIn);
    if (bad !== RejectReason.None) return this.rej(K, id, bad);
    if (this.live.has(id)) return this.rej(K, id, RejectReason.DuplicateOrderId);
    const side = sideIn as Side;
    this.ev.push({ type: 'accepted', kind: K, orderId: id, userId: user, side, price: 0, qty });
    const left = this.match(id, user, side, null, qty, stpIn as STP, 0);
    if (left > 0) this.ev.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.Unfilled, qty: left });
    return RejectReason.None;
  }

  private cancel(id: number): RejectReason {
    if (!safePos(id)) return this.rej(CommandKind.Cancel, id, RejectReason.InvalidOrderId);
    const o = this.live.get(id);
    if (o === undefined) return this.rej(CommandKind.Cancel, id, RejectReason.UnknownOrder);
    this.drop(o);
    this.ev.push({ type: 'canceled', orderId: id, userId: o.user, reason: CancelReason.User, qty: o.qty });
    return RejectReason.None;
  }

  private reduce(id: number, q: number): RejectReason {
    const K = CommandKind.Amend;
    if (!safePos(id)) return this.rej(K, id, RejectReason.InvalidOrderId);
    if (!safePos(q)) return this.rej(K, id, RejectReason.InvalidQty);
    const o = this.live.get(id);
    if (o === undefined) return this.rej(K, id, RejectReason.UnknownOrder);
    if (q >= o.qty) return this.rej(K, id, RejectReason.AmendNotReducing);
    o.qty = q;
    this.ev.push({ type: 'amended', orderId: id, userId: o.user, side: o.side, price: o.price, qty: q, kind: AmendKind.Reduce });
    return RejectReason.None;
  }

  private amend(id: number, price: number, q: number): RejectReason {
    const K = CommandKind.Amend;
    if (!safePos(id)) return this.rej(K, id, RejectReason.InvalidOrderId);
    if (!Number.isSafeInteger(price) || price <= 0) return this.rej(K, id, RejectReason.InvalidPrice);
    if (!safePos(q)) return this.rej(K, id, RejectReason.InvalidQty);
    if (q > this.sc.maxQty) return this.rej(K, id, RejectReason.QtyAboveMax);
    if (price < this.sc.minPrice || price > this.sc.maxPrice) return this.rej(K, id, RejectReason.PriceOutOfBand);
    const o = this.live.get(id);
    if (o === undefined) return this.rej(K, id, RejectReason.UnknownOrder);
    const own = this.own(o.side);
    if (price === o.price) {
      if (q === o.qty) return this.rej(K, id, RejectReason.AmendNoChange);
      if (q < o.qty) return this.reduce(id, q);
      if (own.levelSum(price) - BigInt(o.qty) + BigInt(q) > BigInt(MAX_SAFE)) return this.rej(K, id, RejectReason.LevelQtyOverflow);
    }
    const crossing = this.crosses(o.side, price);
    if (crossing && o.tif === TIF.POST) return this.rej(K, id, RejectReason.PostOnlyWouldCross);
    if (!crossing && price !== o.price && own.levelSum(price) + BigInt(q) > BigInt(MAX_SAFE)) return this.rej(K, id, RejectReason.LevelQtyOverflow);
    this.drop(o);
    this.ev.push({ type: 'amended', orderId: id, userId: o.user, side: o.side, price, qty: q, kind: AmendKind.Replace });
    const left = this.match(id, o.user, o.side, price, q, o.stp, price);
    if (left > 0) this.restOrder({ ...o, price, qty: left });
    return RejectReason.None;
  }

  rows(side: Side): string[] {
    return [...this.own(side).orders()].map((o) => `${o.id}/u${o.user}@${o.price}x${o.qty}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Checks of the book on its own: invariants through the public API, and the lot ledger.

function bookRows(book: OrderBook, side: Side): string[] {
  const out: string[] = [];
  book.forEachOrder(side, (id, user, price, qty) => out.push(`${id}/u${user}@${price}x${qty}`));
  return out;
}

/** The invariants, through the public API only; returns the first broken one. */
function invariantProblem(book: OrderBook, sc: Scenario): string | null {
  try {
    book.audit();
  } catch (e) {
    return `audit(): ${(e as Error).message}`;
  }
  const seen = new Set<number>();
  let total = 0;
  for (const side of [Buy, Sell]) {
    const levels: [number, number, number][] = [];
    book.forEachLevel(side, Number.POSITIVE_INFINITY, (price, qty, orders) => levels.push([price, qty, orders]));
    const fromOrders: [number, number, number][] = [];
    let bad: string | null = null;
    book.forEachOrder(side, (id, user, price, qty) => {
      if (seen.has(id)) bad ??= `order ${id} listed twice`;
      seen.add(id);
      if (!(Number.isSafeInteger(qty) && qty > 0 && qty <= sc.maxQty)) bad ??= `order ${id} rests with quantity ${qty}`;
      if (price < sc.minPrice || price > sc.maxPrice) bad ??= `order ${id} rests at ${price}, out of the band`;
      const v = book.getOrder(id);
      if (!book.has(id) || v === undefined || v.qty !== qty || v.price !== price || v.userId !== user || v.side !== side) bad ??= `getOrder(${id}) disagrees with forEachOrder`;
      if (book.ownerOf(id) !== user) bad ??= `ownerOf(${id}) is ${book.ownerOf(id)}, not ${user}`;
      const last = fromOrders[fromOrders.length - 1];
      if (last !== undefined && last[0] === price) {
        last[1] += qty;
        last[2]++;
      } else fromOrders.push([price, qty, 1]);
    });
    if (bad !== null) return bad;
    if (JSON.stringify(levels) !== JSON.stringify(fromOrders)) return `side ${side}: levels ${JSON.stringify(levels)} are not the sum of their orders ${JSON.stringify(fromOrders)}`;
    for (let i = 1; i < levels.length; i++) {
      const a = (levels[i - 1] as [number, number, number])[0];
      const b = (levels[i] as [number, number, number])[0];
      if (side === Buy ? !(a > b) : !(a < b)) return `side ${side}: levels out of order (${a} then ${b})`;
    }
    const best = side === Buy ? book.bestBid : book.bestAsk;
    if (best !== (levels[0]?.[0] ?? null)) return `best of side ${side} is ${best}, its first level ${levels[0]?.[0]}`;
    const n = fromOrders.reduce((s, l) => s + l[2], 0);
    if (book.ordersOn(side) !== n) return `ordersOn(${side}) = ${book.ordersOn(side)}, ${n} listed`;
    if (book.levelsOn(side) !== levels.length) return `levelsOn(${side}) = ${book.levelsOn(side)}, ${levels.length} listed`;
    const depth = book.depth(side, 3).map((d) => [d.price, d.qty, d.orders]);
    if (JSON.stringify(depth) !== JSON.stringify(levels.slice(0, 3))) return `depth(${side}, 3) disagrees with forEachLevel`;
    total += n;
  }
  if (book.orderCount !== total) return `orderCount = ${book.orderCount}, ${total} listed`;
  if (book.bestBid !== null && book.bestAsk !== null && !(book.bestBid < book.bestAsk)) return `crossed book: ${book.bestBid} >= ${book.bestAsk}`;
  return null;
}

interface LedgerEntry {
  open: number;
  resting: boolean;
  side: Side;
  price: number;
  user: number;
}

/**
 * Follows every order's open quantity from the events alone, command by command: the events of a
 * command must account for every lot (traded, canceled, decremented, or resting), and the rules
 * that need no oracle must hold.
 */
class Ledger {
  readonly orders = new Map<number, LedgerEntry>();

  /** `amendStp`: the prevention mode of the order an amend names, as it was before the command. */
  check(c: Cmd, reason: RejectReason, events: BookEvent[], book: OrderBook, amendStp: number): string | null {
    const problem = this.follow(c, reason, events, amendStp);
    if (problem !== null) return `ledger: ${problem}`;
    let n = 0;
    for (const [id, o] of this.orders) {
      if (!o.resting) return `ledger: order ${id} has ${o.open} lots neither resting, traded nor canceled`;
      n++;
      const v = book.getOrder(id);
      if (v === undefined || v.qty !== o.open || v.price !== o.price || v.side !== o.side) {
        return `ledger: order ${id} should rest ${o.open} at ${o.price}, the book says ${JSON.stringify(v)}`;
      }
    }
    if (n !== book.orderCount) return `ledger: ${n} orders rest by the events, the book counts ${book.orderCount}`;
    return null;
  }

  private follow(c: Cmd, reason: RejectReason, events: BookEvent[], amendStp: number): string | null {
    if (reason !== RejectReason.None) {
      const e = events[0];
      if (events.length !== 1 || e?.type !== 'rejected' || e.reason !== reason) return `a rejected command emitted ${JSON.stringify(events)}`;
      return null;
    }
    if (events.some((e) => e.type === 'rejected')) return 'an applied command emitted a rejection';
    // The taker of this command (a new order, or the order a cancel-replace re-enters).
    let taker: { id: number; side: Side; limit: number | null; user: number; filled: number; qty: number } | null = null;
    const stp = c.t === 'L' || c.t === 'M' ? c.stp : c.t === 'A' ? amendStp : STP.None;
    let pendingDecrement: number | null = null;
    for (let i = 0; i < events.length; i++) {
      const e = events[i] as BookEvent;
      const at = `event ${i} ${JSON.stringify(e)}`;
      switch (e.type) {
        case 'accepted': {
          if (i !== 0) return `${at}: accepted is not first`;
          if (e.kind === CommandKind.Market ? e.price !== 0 : false) return `${at}: a market order's price is not 0`;
          if (this.orders.has(e.orderId)) return `${at}: accepted with the id of a resting order`;
          this.orders.set(e.orderId, { open: e.qty, resting: false, side: e.side, price: e.price, user: e.userId });
          taker = { id: e.orderId, side: e.side, limit: e.kind === CommandKind.Market ? null : e.price, user: e.userId, filled: 0, qty: e.qty };
          break;
        }
        case 'trade': {
          const m = this.orders.get(e.makerId);
          const t = this.orders.get(e.takerId);
          if (m === undefined || !m.resting) return `${at}: the maker is not resting`;
          if (t === undefined || t.resting || taker === null || taker.id !== e.takerId) return `${at}: the taker is not this command's order`;
          if (!(e.qty > 0) || e.qty > m.open || e.qty > t.open) return `${at}: trades more than maker (${m.open}) or taker (${t.open}) has`;
          if (e.price !== m.price) return `${at}: not at the maker's price ${m.price}`;
          if (m.side === taker.side || e.takerSide !== taker.side) return `${at}: maker and taker on the same side`;
          if (taker.limit !== null && (taker.side === Buy ? e.price > taker.limit : e.price < taker.limit)) return `${at}: through the taker's limit ${taker.limit}`;
          if (m.user === t.user && stp !== STP.None) return `${at}: a trade between orders of user ${m.user} under prevention mode ${stp}`;
          m.open -= e.qty;
          t.open -= e.qty;
          taker.filled += e.qty;
          if (m.open !== e.makerRemaining) return `${at}: makerRemaining should be ${m.open}`;
          if (m.open === 0) this.orders.delete(e.makerId);
          if (t.open === 0) this.orders.delete(e.takerId);
          break;
        }
        case 'canceled': {
          const o = this.orders.get(e.orderId);
          if (o === undefined) return `${at}: cancels an order with no open lots`;
          if (e.qty !== o.open) return `${at}: cancels ${e.qty} of ${o.open} open lots`;
          if (e.reason === CancelReason.User && (c.t !== 'C' || !o.resting)) return `${at}: a USER cancel outside a cancel command`;
          if (e.reason === CancelReason.Unfilled && (o.resting || taker?.id !== e.orderId)) return `${at}: UNFILLED for a resting order`;
          if (e.reason === CancelReason.SelfTrade && stp === STP.DecrementCancel) {
            if (o.resting) pendingDecrement = o.open;
            else if (pendingDecrement !== e.qty) return `${at}: the taker's decrement differs from the maker's ${pendingDecrement}`;
            else pendingDecrement = null;
          }
          this.orders.delete(e.orderId);
          break;
        }
        case 'amended': {
          const o = this.orders.get(e.orderId);
          if (o === undefined) return `${at}: amends an order with no open lots`;
          if (e.kind === AmendKind.Reduce) {
            if (!o.resting || e.qty >= o.open || e.price !== o.price || c.t === 'L' || c.t === 'M') return `${at}: a bad REDUCE of ${JSON.stringify(o)}`;
            o.open = e.qty;
          } else if (e.kind === AmendKind.Replace) {
            if (!o.resting || c.t !== 'A' || i !== 0) return `${at}: a bad REPLACE`;
            o.open = e.qty;
            o.resting = false;
            o.price = e.price;
            taker = { id: e.orderId, side: o.side, limit: e.price, user: o.user, filled: 0, qty: e.qty };
          } else {
            if (!(e.qty > 0 && e.qty < o.open)) return `${at}: a decrement that does not decrease ${o.open}`;
            const d = o.open - e.qty;
            if (o.resting) {
              if (pendingDecrement !== null) return `${at}: two maker decrements in a row`;
              pendingDecrement = d;
            } else {
              if (pendingDecrement !== d) return `${at}: the taker's decrement ${d} differs from the maker's ${pendingDecrement}`;
              pendingDecrement = null;
            }
            o.open = e.qty;
          }
          break;
        }
        case 'added': {
          const o = this.orders.get(e.orderId);
          if (o === undefined || o.resting || e.qty !== o.open) return `${at}: adds ${e.qty}, ${o?.open} open`;
          if (i !== events.length - 1) return `${at}: added is not last`;
          if (taker !== null && taker.limit !== e.price) return `${at}: rests away from its limit ${taker.limit}`;
          if (c.t === 'L' && c.tif !== TIF.GTC && c.tif !== TIF.POST) return `${at}: an IOC or FOK order rests`;
          if (c.t === 'M') return `${at}: a market order rests`;
          o.resting = true;
          o.price = e.price;
          o.side = e.side;
          break;
        }
        case 'rejected':
          break;
      }
    }
    if (pendingDecrement !== null) return `a maker was decremented by ${pendingDecrement} and the taker was not`;
    if (c.t === 'L' && c.tif === TIF.FOK && taker !== null && taker.filled !== taker.qty) return `an accepted FOK filled ${taker.filled} of ${taker.qty}`;
    if (c.t === 'L' && c.tif === TIF.POST && taker !== null && taker.filled !== 0) return `a POST order traded ${taker.filled}`;
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// One run, and shrinking.

interface Failure {
  step: number;
  message: string;
}

/** Runs `cmds` through a fresh book, the oracle, the ledger and the invariants; the first mismatch, or null. */
function runOnce(sc: Scenario, cmds: readonly Cmd[]): Failure | null {
  const rec = new EventRecorder();
  let book: OrderBook;
  try {
    book = new OrderBook(options(sc), rec);
  } catch (e) {
    return { step: -1, message: `constructor threw ${String(e)}` };
  }
  const ref = new RefBook(sc);
  const ledger = new Ledger();
  const ids = new Set<number>();
  for (let i = 0; i < cmds.length; i++) {
    const c = cmds[i] as Cmd;
    ids.add(c.id);
    const amendStp = c.t === 'A' ? (book.getOrder(c.id)?.selfTradePrevention ?? STP.None) : STP.None;
    let got: RejectReason;
    try {
      got = applyBook(book, c);
    } catch (e) {
      return { step: i, message: `the book threw ${String(e)}` };
    }
    const events = rec.take();
    const want = ref.apply(c);
    if (got !== want.reason) return { step: i, message: `returned ${got}, the oracle ${want.reason}` };
    if (JSON.stringify(events) !== JSON.stringify(want.events)) {
      return { step: i, message: `events differ:\n  book:   ${JSON.stringify(events)}\n  oracle: ${JSON.stringify(want.events)}` };
    }
    const inv = invariantProblem(book, sc);
    if (inv !== null) return { step: i, message: inv };
    const led = ledger.check(c, got, events, book, amendStp);
    if (led !== null) return { step: i, message: led };
    for (const side of [Buy, Sell]) {
      const a = bookRows(book, side);
      const b = ref.rows(side);
      if (a.join() !== b.join()) return { step: i, message: `side ${side} differs:\n  book:   ${a.join(' ')}\n  oracle: ${b.join(' ')}` };
    }
  }
  // Per-order states at the end, for every id the commands named.
  for (const id of ids) {
    const o = ref.live.get(id);
    const v = safePos(id) ? book.getOrder(id) : undefined;
    const want = o === undefined ? undefined : { orderId: id, userId: o.user, side: o.side, price: o.price, qty: o.qty, timeInForce: o.tif, selfTradePrevention: o.stp };
    if (JSON.stringify(v) !== JSON.stringify(want)) return { step: cmds.length, message: `getOrder(${id}) is ${JSON.stringify(v)}, the oracle ${JSON.stringify(want)}` };
    if (book.has(id) !== (o !== undefined)) return { step: cmds.length, message: `has(${id}) is ${book.has(id)}` };
  }
  return null;
}

/** Delta debugging over the commands, then simpler fields; returns a minimal failing list. */
function shrink(cmds: readonly Cmd[], fails: (cs: readonly Cmd[]) => boolean): Cmd[] {
  let cur = [...cmds];
  let n = 2;
  let budget = 4000;
  while (cur.length >= 2 && budget-- > 0) {
    const chunk = Math.ceil(cur.length / n);
    let reduced = false;
    for (let start = 0; start < cur.length; start += chunk) {
      const cand = [...cur.slice(0, start), ...cur.slice(start + chunk)];
      if (fails(cand)) {
        cur = cand;
        n = Math.max(n - 1, 2);
        reduced = true;
        break;
      }
    }
    if (!reduced) {
      if (n >= cur.length) break;
      n = Math.min(cur.length, n * 2);
    }
  }
  // Simpler fields, one at a time.
  const simpler = (c: Cmd): Cmd[] => {
    const out: Cmd[] = [];
    if ('stp' in c && c.stp !== 0) out.push({ ...c, stp: 0 });
    if ('tif' in c && c.tif !== 0) out.push({ ...c, tif: 0 });
    if ('user' in c && c.user !== 1) out.push({ ...c, user: 1 });
    if ('qty' in c && c.qty > 1) out.push({ ...c, qty: 1 }, { ...c, qty: c.qty - 1 });
    return out;
  };
  for (let changed = true; changed && budget-- > 0; ) {
    changed = false;
    for (let i = 0; i < cur.length; i++) {
      for (const s of simpler(cur[i] as Cmd)) {
        const cand = [...cur.slice(0, i), s, ...cur.slice(i + 1)];
        if (fails(cand)) {
          cur = cand;
          changed = true;
          break;
        }
      }
    }
  }
  return cur;
}

function report(sc: Scenario, cmds: readonly Cmd[], f: Failure): string {
  const min = shrink(cmds.slice(0, f.step + 1), (cs) => runOnce(sc, cs) !== null);
  const mf = runOnce(sc, min) as Failure;
  return [
    `${sc.name}: ${f.message}`,
    `minimal reproduction (${min.length} of ${f.step + 1} commands), failing at command ${mf.step + 1}: ${mf.message}`,
    `  const book = new OrderBook(${JSON.stringify(options(sc))}, new EventRecorder());`,
    ...min.map((c) => `  ${fmt(c)}`),
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The corner-biased generator. It keeps an oracle of its own to aim at the state each command
// meets (the best prices, the liquidity a FOK can reach, the live, ended and unknown ids).

interface GenOptions {
  /** Only what ref.mjs's CSV can say: one user, no prevention, no amend, valid fields in the band, market orders never with a live id. */
  csv: boolean;
  /** Commands per stream. */
  length: number;
}

interface Coverage {
  [key: string]: number;
}

function generate(sc: Scenario, seed: number, g: GenOptions, cov: Coverage): Cmd[] {
  const r = prng(seed);
  const int = (lo: number, hi: number): number => lo + Math.floor(r() * (hi - lo + 1));
  const chance = (p: number): boolean => r() < p;
  const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)] as T;
  const ref = new RefBook(sc);
  const out: Cmd[] = [];
  const used = new Set<number>();
  let nextId = 1;
  const { minPrice: lo, maxPrice: hi, maxQty } = sc;
  const clamp = (p: number): number => Math.min(hi, Math.max(lo, p));

  const count = (k: string): void => {
    cov[k] = (cov[k] ?? 0) + 1;
  };
  const push = (c: Cmd): void => {
    out.push(c);
    used.add(c.id);
    // The corner this command meets, judged before it runs.
    const corners: string[] = [];
    if (c.t === 'M' && ref.opp(c.side as Side).best() === null) corners.push(ref.own(c.side as Side).best() === null ? 'market:empty book' : 'market:one-sided book');
    if (c.t === 'L' && (c.side === Buy || c.side === Sell)) {
      const side: Side = c.side;
      const ob = ref.opp(side).best();
      if (c.tif === TIF.POST && ob !== null && c.price === ob) corners.push('post:touches');
      if (c.tif === TIF.POST && ob !== null && c.price === (side === Buy ? ob - 1 : ob + 1)) corners.push('post:one tick short');
      if (c.tif === TIF.FOK && c.stp >= 0 && c.stp <= 4) {
        const avail = ref.fokLiquidity(c.user, side, c.price, c.stp as STP);
        if (avail > 0 && c.qty === avail) corners.push('fok:exact');
        if (avail > 0 && c.qty === avail + 1) corners.push('fok:one lot short');
      }
      if (c.price === lo || c.price === hi) corners.push('limit:band edge');
      if (c.qty === maxQty) corners.push('limit:maxQty');
    }
    const priceOf = new Map<number, number>();
    for (const [id, o] of ref.live) priceOf.set(id, o.price);
    const res = ref.apply(c);
    count(`${c.t}${c.t === 'L' ? c.tif : ''}:${res.reason}`);
    for (const k of corners) count(`${k}:${res.reason === RejectReason.None ? 'ok' : 'refused'}`);
    const tradePrices = new Set<number>();
    const selfPrices = new Set<number>();
    for (const e of res.events) {
      count(e.type === 'canceled' ? `canceled:${e.reason}` : e.type === 'amended' ? `amended:${e.kind}` : e.type);
      if (e.type === 'trade') tradePrices.add(e.price);
      const self = (e.type === 'canceled' && e.reason === CancelReason.SelfTrade) || (e.type === 'amended' && e.kind === AmendKind.SelfTradeDecrement);
      const makerPrice = self && e.orderId !== c.id ? priceOf.get(e.orderId) : undefined;
      if (makerPrice !== undefined) selfPrices.add(makerPrice);
    }
    if (c.t === 'L' && c.tif === TIF.FOK && tradePrices.size > 1) count('fok:filled across levels');
    if (selfPrices.size > 1) count(`stp:${c.t === 'L' || c.t === 'M' ? c.stp : 'amend'}:several levels`);
  };
  const liveIds = (): number[] => [...ref.live.keys()];
  const endedIds = (): number[] => [...used].filter((id) => safePos(id) && !ref.live.has(id));
  const freshId = (): number => {
    if (chance(0.03)) nextId += pick([7, 100, 1 << 10]); // jumps past small id windows
    while (used.has(nextId)) nextId++; // never used (a cancel of an unknown id may have named it)
    return nextId++;
  };
  const newId = (market: boolean): number => {
    const x = r();
    const ended = endedIds();
    if (x < 0.12 && ended.length > 0) return pick(ended); // reuse of a filled or canceled id
    if (x < 0.17 && !(g.csv && market)) {
      const live = liveIds();
      if (live.length > 0) return pick(live); // a duplicate of a live id
    }
    if (x < 0.19 && !g.csv) return pick([0, -1, 1.5, MAX_SAFE + 1]);
    return freshId();
  };
  const oldId = (): number => {
    const x = r();
    const live = liveIds();
    if (x < 0.7 && live.length > 0) return pick(live);
    const ended = endedIds();
    if (x < 0.88 && ended.length > 0) return pick(ended);
    if (x < 0.96 || g.csv) return nextId + int(0, 5); // never seen
    return pick([0, -7, 2.5]);
  };
  const sideOf = (): Side => (chance(0.5) ? Buy : Sell);
  const users = [1, 2, 3];
  /** Often the user of the best opposite order, or of an order deeper in the book: self-matches. */
  const userFor = (side: Side): number => {
    if (g.csv) return 1;
    const opp = [...ref.opp(side).orders()];
    if (opp.length > 0 && chance(0.5)) return (chance(0.6) ? (opp[0] as RO) : pick(opp)).user;
    return pick(users);
  };
  const stpOf = (): number => (g.csv || chance(0.3) ? STP.None : pick([STP.CancelNewest, STP.CancelOldest, STP.CancelBoth, STP.DecrementCancel]));
  const smallQty = (): number => {
    const x = r();
    if (x < 0.3) return 1;
    if (x < 0.45) return maxQty;
    if (x < 0.5) return Math.max(1, maxQty - 1);
    if (x < 0.53 && !g.csv) return maxQty + 1;
    if (x < 0.65 && sc.qtys.length > 0) return pick(sc.qtys);
    return int(1, Math.min(maxQty, 6));
  };
  const badPrice = (): number => pick([lo - 1, hi + 1, 0, -1, 1.5].filter((p) => p !== lo && p !== hi));
  /** A price that does not cross: an existing own level, the own band edge, one tick short of the opposite best, or random. */
  const passivePrice = (side: Side): number => {
    const ob = ref.opp(side).best();
    const ownLevels = ref.own(side).prices;
    const x = r();
    if (x < 0.35 && ownLevels.length > 0) return pick(ownLevels);
    if (x < 0.5) return side === Buy ? lo : hi;
    if (x < 0.65 && ob !== null) return clamp(side === Buy ? ob - 1 : ob + 1);
    if (x < 0.72 && sc.notable.length > 0) return pick(sc.notable);
    const limit = ob === null ? (side === Buy ? hi : lo) : clamp(side === Buy ? ob - 1 : ob + 1);
    return side === Buy ? int(lo, Math.max(lo, limit)) : int(Math.min(hi, limit), hi);
  };
  /** A price that crosses: at the opposite best, a tick or two through it, a level deeper, or the far band edge. */
  const crossingPrice = (side: Side): number => {
    const opp = ref.opp(side);
    const ob = opp.best();
    if (ob === null) return passivePrice(side);
    const x = r();
    if (x < 0.3) return ob;
    if (x < 0.5) return clamp(side === Buy ? ob + 1 : ob - 1);
    if (x < 0.75 && opp.prices.length > 1) return pick(opp.prices);
    return side === Buy ? hi : lo;
  };

  const limitCmd = (tif: number, price: number, qty: number, side: Side, user = userFor(side), stp = stpOf()): void => {
    push({ t: 'L', id: newId(false), user, side, price, qty, tif, stp });
  };

  while (out.length < g.length) {
    const x = r() * 100;
    const side = sideOf();
    if (x < 18) {
      // passive GTC or POST, often onto an existing level
      limitCmd(chance(0.75) ? TIF.GTC : TIF.POST, chance(0.03) && !g.csv ? badPrice() : passivePrice(side), smallQty(), side);
    } else if (x < 30) {
      // aggressive GTC or IOC
      limitCmd(chance(0.5) ? TIF.GTC : TIF.IOC, crossingPrice(side), chance(0.3) ? maxQty : smallQty(), side);
    } else if (x < 38) {
      // FOK that fills exactly, misses by one lot, or has one to spare, often across several levels
      const price = crossingPrice(side);
      const user = userFor(side);
      const stp = stpOf();
      const avail = ref.fokLiquidity(user, side, price, stp as STP);
      const want = Math.min(maxQty, Math.max(1, avail + pick([0, 0, 1, -1])));
      limitCmd(TIF.FOK, price, chance(0.1) ? smallQty() : want, side, user, stp);
    } else if (x < 44) {
      // POST touching the opposite best or one tick short of it
      const ob = ref.opp(side).best();
      const price = ob === null ? passivePrice(side) : clamp(chance(0.5) ? ob : side === Buy ? ob - 1 : ob + 1);
      limitCmd(TIF.POST, price, smallQty(), side);
    } else if (x < 50) {
      // market: the whole opposite side, one lot more or less, 1, maxQty; often on an empty or one-sided book
      let total = 0;
      for (const o of ref.opp(side).orders()) total += o.qty;
      const qty = Math.min(maxQty, Math.max(1, chance(0.5) ? total + pick([0, 1, -1]) : smallQty()));
      push({ t: 'M', id: newId(true), user: userFor(side), side, qty: chance(0.03) && !g.csv ? maxQty + 1 : qty, stp: stpOf() });
    } else if (x < 62) {
      push({ t: 'C', id: oldId() });
    } else if (x < 70) {
      const id = oldId();
      const o = ref.live.get(id);
      const cur = o?.qty ?? 2;
      push({ t: 'R', id, qty: pick([cur - 1, 1, cur, cur + 1, g.csv ? 0 : -1, Math.max(1, cur >> 1)]) });
    } else if (x < 86 && !g.csv) {
      // amend: up, down, to the same quantity, to another price (passive, crossing, band edge, out of band)
      const id = oldId();
      const o = ref.live.get(id);
      const cur = o?.qty ?? 3;
      const s = o?.side ?? side;
      const qty = pick([cur - 1, 1, cur, cur, cur + 1, maxQty, maxQty + 1, smallQty()]);
      const y = r();
      const price = o === undefined ? passivePrice(s) : y < 0.45 ? o.price : y < 0.65 ? passivePrice(s) : y < 0.85 ? crossingPrice(s) : y < 0.95 ? (s === Buy ? hi : lo) : badPrice();
      push({ t: 'A', id, price, qty });
    } else if (x < 93) {
      // many orders at one price from several users, some of them the same user
      const price = passivePrice(side);
      const k = int(3, 9);
      for (let i = 0; i < k; i++) limitCmd(TIF.GTC, price, smallQty(), side, g.csv ? 1 : pick(users), STP.None);
    } else if (x < 96) {
      // wipe one side (an empty or one-sided book for what follows)
      for (const o of [...ref.own(side).orders()]) push({ t: 'C', id: o.id });
    } else {
      // one user's orders at several levels, then the same user crossing them under some mode
      const user = g.csv ? 1 : pick(users);
      const base = passivePrice(side);
      for (let i = 0; i < 3; i++) limitCmd(TIF.GTC, clamp(side === Buy ? base - i : base + i), smallQty(), side, user, STP.None);
      const taker: Side = side === Buy ? Sell : Buy;
      limitCmd(pick([TIF.GTC, TIF.IOC, TIF.FOK]), side === Buy ? lo : hi, pick([1, maxQty, smallQty()]), taker, user, stpOf());
    }
  }
  return out.slice(0, g.length);
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

const TINY: Scenario = {
  name: 'narrow band, maxQty 12, tiny pools and id window',
  minPrice: 100,
  maxPrice: 112,
  maxQty: 12,
  extra: { initialOrders: 1, initialLevels: 1, idWindow: 4 },
  notable: [100, 101, 106, 111, 112],
  qtys: [2, 3, 11],
};

const WIDEST: Scenario = {
  name: 'the widest band (2^31 - 1 prices), edges and page boundaries',
  minPrice: 1,
  maxPrice: 2 ** 31 - 1,
  maxQty: 1000,
  extra: { initialOrders: 2, initialLevels: 2, idWindow: 8 },
  notable: [1, 2, 32_768, 32_769, 65_536, 2 ** 30, 2 ** 31 - 32_768, 2 ** 31 - 2, 2 ** 31 - 1],
  qtys: [999, 500],
};

const TOP: Scenario = {
  name: 'a band ending at MAX_SAFE_INTEGER, huge quantities (level totals near 2^53)',
  minPrice: MAX_SAFE - 24,
  maxPrice: MAX_SAFE,
  maxQty: MAX_SAFE,
  extra: { initialOrders: 4, initialLevels: 2, idWindow: 1024 },
  notable: [MAX_SAFE - 24, MAX_SAFE - 12, MAX_SAFE - 1],
  qtys: [2 ** 52, 2 ** 52 + 1, 3 * 2 ** 51, MAX_SAFE - 1, 2],
};

const ONE_PRICE: Scenario = {
  name: 'a band of a single price',
  minPrice: 7,
  maxPrice: 7,
  maxQty: 5,
  extra: { initialOrders: 1, initialLevels: 1, idWindow: 2 },
  notable: [],
  qtys: [2, 4],
};

/** CORNER_RUNS_FACTOR=50 runs 50 times as many seeds (a deeper search, not for CI). */
const RUNS_FACTOR = Math.max(1, Number(process.env.CORNER_RUNS_FACTOR ?? 1) || 1);

function differential(sc: Scenario, seeds: number, length: number, mustSee: readonly string[]): void {
  const cov: Coverage = {};
  for (let seed = 1; seed <= seeds * RUNS_FACTOR; seed++) {
    const cmds = generate(sc, seed * 7919 + length, { csv: false, length }, cov);
    const f = runOnce(sc, cmds);
    if (f !== null) throw new Error(`seed ${seed}: ${report(sc, cmds, f)}`);
  }
  if (process.env.CORNER_COVERAGE) console.log(sc.name, JSON.stringify(cov));
  // The generator reached the corners it is meant to reach.
  expect(mustSee.filter((k) => (cov[k] ?? 0) === 0)).toEqual([]);
}

const R = RejectReason;
const CORNERS = [
  `L${TIF.GTC}:${R.None}`,
  `L${TIF.IOC}:${R.None}`,
  `L${TIF.FOK}:${R.None}`,
  `L${TIF.FOK}:${R.FokNotFillable}`,
  `L${TIF.POST}:${R.None}`,
  `L${TIF.POST}:${R.PostOnlyWouldCross}`,
  `L${TIF.GTC}:${R.DuplicateOrderId}`,
  `L${TIF.GTC}:${R.PriceOutOfBand}`,
  `L${TIF.GTC}:${R.QtyAboveMax}`,
  `M:${R.None}`,
  `M:${R.DuplicateOrderId}`,
  `C:${R.None}`,
  `C:${R.UnknownOrder}`,
  `C:${R.InvalidOrderId}`,
  `R:${R.None}`,
  `R:${R.AmendNotReducing}`,
  `R:${R.UnknownOrder}`,
  `A:${R.None}`,
  `A:${R.AmendNoChange}`,
  `A:${R.UnknownOrder}`,
  `A:${R.PostOnlyWouldCross}`,
  `A:${R.QtyAboveMax}`,
  'trade',
  'added',
  `canceled:${CancelReason.User}`,
  `canceled:${CancelReason.Unfilled}`,
  `canceled:${CancelReason.SelfTrade}`,
  `amended:${AmendKind.Reduce}`,
  `amended:${AmendKind.Replace}`,
  `amended:${AmendKind.SelfTradeDecrement}`,
];

describe('corner-biased streams: the book against the oracle, the ledger and the invariants, after every command', () => {
  it('narrow band with maxQty 12 (band edges and maxQty hit all the time, pools and id window grow and spill)', () => {
    differential(TINY, 150, 300, [
      ...CORNERS,
      `A:${R.PriceOutOfBand}`,
      'market:empty book:ok',
      'market:one-sided book:ok',
      'post:touches:refused',
      'post:one tick short:ok',
      'fok:exact:ok',
      'fok:one lot short:refused',
      'fok:filled across levels',
      'limit:band edge:ok',
      'limit:maxQty:ok',
      `stp:${STP.CancelOldest}:several levels`,
      `stp:${STP.DecrementCancel}:several levels`,
      'stp:amend:several levels',
    ]);
  });

  it('the widest band, orders at both edges and across price-index pages', () => {
    differential(WIDEST, 60, 250, [`L${TIF.GTC}:${R.None}`, `L${TIF.FOK}:${R.None}`, 'trade', `A:${R.None}`, `amended:${AmendKind.SelfTradeDecrement}`]);
  });

  it('a band ending at MAX_SAFE_INTEGER with quantities up to it (level-total overflow refusals)', () => {
    differential(TOP, 60, 250, [`L${TIF.GTC}:${R.None}`, `L${TIF.GTC}:${R.LevelQtyOverflow}`, `A:${R.LevelQtyOverflow}`, 'trade', `L${TIF.FOK}:${R.None}`]);
  });

  it('a band of one price (every buy meets every sell at the same tick)', () => {
    differential(ONE_PRICE, 60, 200, [`L${TIF.GTC}:${R.None}`, `L${TIF.POST}:${R.PostOnlyWouldCross}`, `L${TIF.FOK}:${R.None}`, 'trade', `amended:${AmendKind.SelfTradeDecrement}`]);
  });
});

// ---------------------------------------------------------------------------------------------
// ref.mjs itself, run in-process on the streams its CSV can express.

const REF_MJS = fileURLToPath(new URL('../../../../shared/workloads/ref.mjs', import.meta.url));
const HAVE_REF = existsSync(REF_MJS);

interface RefRun {
  summary: Record<string, unknown>;
  fills: string[];
  book: string[];
}

/** ref.mjs as a function of the CSV text: its two imports supplied, what it hashes recorded, its output line parsed. */
function refMjs(): (csv: string) => RefRun {
  const src = readFileSync(REF_MJS, 'utf8');
  const body = src
    .split('\n')
    .filter((l) => !l.startsWith('#!') && !/^import\s/.test(l))
    .join('\n');
  // eslint-disable-next-line @typescript-eslint/no-implied-eval -- ref.mjs is run as it is, with its imports supplied
  const fn = new Function('readFileSync', 'createHash', 'process', 'console', `'use strict';\n${body}`) as (...a: unknown[]) => void;
  return (csv) => {
    const fed: string[][] = [];
    let line = '';
    const hasher = (alg: string): unknown => {
      const h = createHash(alg);
      const mine: string[] = [];
      fed.push(mine);
      const w = {
        update: (s: string) => {
          mine.push(s);
          h.update(s);
          return w;
        },
        digest: (enc: 'hex') => h.digest(enc),
      };
      return w;
    };
    fn(() => csv, hasher, { argv: ['node', 'ref.mjs', 'stream.csv'] }, { log: (s: string) => (line += s) });
    return { summary: JSON.parse(line) as Record<string, unknown>, fills: fed[0] ?? [], book: fed[1] ?? [] };
  };
}

const TIF_NAME = ['GTC', 'IOC', 'FOK', 'POST'];
const csvLine = (c: Cmd): string => {
  switch (c.t) {
    case 'L':
      return `L,${c.id},${c.side === Buy ? 'B' : 'S'},${c.price},${c.qty},${TIF_NAME[c.tif]}`;
    case 'M':
      return `M,${c.id},${c.side === Buy ? 'B' : 'S'},${c.qty}`;
    case 'C':
      return `C,${c.id}`;
    case 'R':
      return `A,${c.id},${c.qty}`;
    case 'A':
      throw new Error('no CSV for amend');
  }
};

/** The book replayed on the same commands, summarized as ref.mjs summarizes. */
function bookSummary(sc: Scenario, cmds: readonly Cmd[]): RefRun {
  const fills: string[] = [];
  const rec = new EventRecorder();
  const book = new OrderBook(options(sc), rec);
  const n = { trades: 0, volume: 0, cancels: 0, cancelRejects: 0, rejects: 0, amends: 0, amendRejects: 0 };
  for (const c of cmds) {
    const r = applyBook(book, c);
    for (const e of rec.take()) {
      if (e.type === 'trade') {
        n.trades++;
        n.volume += e.qty;
        fills.push(`${e.makerId},${e.takerId},${e.price},${e.qty};`);
      }
    }
    if (c.t === 'C') {
      if (r === R.None) n.cancels++;
      else n.cancelRejects++;
    } else if (c.t === 'R') {
      if (r === R.None) n.amends++;
      else n.amendRejects++;
    } else if (r !== R.None) n.rejects++;
    book.audit();
  }
  const rows: string[] = [];
  const rest = { B: [0, 0], S: [0, 0] } as Record<'B' | 'S', [number, number]>;
  for (const [tag, side] of [['B', Buy], ['S', Sell]] as const) {
    book.forEachOrder(side, (id, _u, price, qty) => {
      rows.push(`${tag},${price},${id},${qty};`);
      rest[tag][0]++;
      rest[tag][1] += qty;
    });
  }
  const digest = (parts: string[]): string => {
    const h = createHash('sha256');
    for (const p of parts) h.update(p);
    return h.digest('hex').slice(0, 16);
  };
  return {
    summary: {
      ops: cmds.length,
      ...n,
      restingBids: rest.B[0],
      restingBidQty: rest.B[1],
      restingAsks: rest.S[0],
      restingAskQty: rest.S[1],
      bestBid: book.bestBid,
      bestAsk: book.bestAsk,
      tradeHash: digest(fills),
      bookHash: digest(rows),
    },
    fills,
    book: rows,
  };
}

describe.skipIf(!HAVE_REF)('corner-biased CSV streams: the book against ref.mjs (every fill, the final book, the summary)', () => {
  const ref = HAVE_REF ? refMjs() : (): RefRun => expect.fail('no ref.mjs');

  it('runs ref.mjs in-process as `node ref.mjs FILE` does (on one corner stream)', () => {
    const csv = generate(TINY, 5, { csv: true, length: 200 }, {}).map(csvLine).join('\n');
    const dir = mkdtempSync(join(tmpdir(), 'gx3-corner-'));
    try {
      const file = join(dir, 'stream.csv');
      writeFileSync(file, `${csv}\n`);
      const out = execFileSync(process.execPath, [REF_MJS, file], { encoding: 'utf8' });
      expect(ref(csv).summary).toEqual(JSON.parse(out));
      expect(bookSummary(TINY, generate(TINY, 5, { csv: true, length: 200 }, {})).summary).toEqual(JSON.parse(out));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it.each([
    ['narrow band, maxQty 12', TINY, 200, 250],
    ['the widest band', WIDEST, 60, 200],
    ['one price', ONE_PRICE, 60, 150],
  ] as const)('%s', (_name, sc, seeds, length) => {
    const cov: Coverage = {};
    for (let seed = 1; seed <= seeds * RUNS_FACTOR; seed++) {
      const cmds = generate(sc, seed * 104_729 + 3, { csv: true, length }, cov);
      const mismatch = (cs: readonly Cmd[]): string | null => {
        const want = ref(cs.map(csvLine).join('\n'));
        const got = bookSummary(sc, cs);
        if (got.fills.join(' ') !== want.fills.join(' ')) return `fills:\n  book: ${got.fills.join(' ')}\n  ref:  ${want.fills.join(' ')}`;
        if (got.book.join(' ') !== want.book.join(' ')) return `final book:\n  book: ${got.book.join(' ')}\n  ref:  ${want.book.join(' ')}`;
        if (JSON.stringify(got.summary) !== JSON.stringify(want.summary)) return `summary:\n  book: ${JSON.stringify(got.summary)}\n  ref:  ${JSON.stringify(want.summary)}`;
        // The oracle agrees with ref.mjs too (it is the judge of the streams ref.mjs cannot read).
        const oracle = new RefBook(sc);
        const ofills: string[] = [];
        for (const c of cs) for (const e of oracle.apply(c).events) if (e.type === 'trade') ofills.push(`${e.makerId},${e.takerId},${e.price},${e.qty};`);
        if (ofills.join(' ') !== want.fills.join(' ')) return `the oracle's fills differ from ref.mjs's: ${ofills.join(' ')}`;
        return null;
      };
      const m = mismatch(cmds);
      if (m !== null) {
        const min = shrink(cmds, (cs) => cs.length > 0 && mismatch(cs) !== null);
        throw new Error(`seed ${seed}: ${m}\nminimal CSV (${min.length} lines): ${mismatch(min)}\n${min.map(csvLine).join('\n')}`);
      }
    }
    expect(
      [`L${TIF.FOK}:${R.None}`, `L${TIF.FOK}:${R.FokNotFillable}`, `L${TIF.POST}:${R.PostOnlyWouldCross}`, `M:${R.None}`, `C:${R.UnknownOrder}`, `R:${R.None}`, 'trade'].filter(
        (k) => (cov[k] ?? 0) === 0,
      ),
    ).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------
// Fixed corners, with the expected outcome written out.

function fresh(sc: Scenario = TINY): { book: OrderBook; rec: EventRecorder } {
  const rec = new EventRecorder();
  return { book: new OrderBook(options(sc), rec), rec };
}

describe('fixed corners', () => {
  it('a FOK across four levels fills with exactly the liquidity it reaches and is refused one lot above it', () => {
    const { book, rec } = fresh();
    book.submitLimit(1, 1, Sell, 100, 3);
    book.submitLimit(2, 2, Sell, 101, 4);
    book.submitLimit(3, 1, Sell, 101, 1);
    book.submitLimit(4, 3, Sell, 103, 2);
    book.submitLimit(5, 3, Sell, 104, 9);
    rec.take();
    expect(book.submitLimit(6, 2, Buy, 103, 11, TIF.FOK)).toBe(R.FokNotFillable);
    expect(rec.take()).toEqual([{ type: 'rejected', kind: CommandKind.Limit, orderId: 6, reason: R.FokNotFillable }]);
    expect(book.submitLimit(7, 2, Buy, 103, 10, TIF.FOK)).toBe(R.None);
    expect(rec.take().filter((e) => e.type === 'trade').map((e) => (e.type === 'trade' ? [e.makerId, e.price, e.qty, e.makerRemaining] : []))).toEqual([
      [1, 100, 3, 0],
      [2, 101, 4, 0],
      [3, 101, 1, 0],
      [4, 103, 2, 0],
    ]);
    expect(book.bestAsk).toBe(104);
    expect(invariantProblem(book, TINY)).toBeNull();
  });

  it('a FOK under cancel-newest is refused when its own order stands between it and enough liquidity, even a level deeper', () => {
    const { book } = fresh();
    book.submitLimit(1, 2, Sell, 100, 3);
    book.submitLimit(2, 1, Sell, 101, 1);
    book.submitLimit(3, 2, Sell, 101, 5);
    expect(book.submitLimit(4, 1, Buy, 101, 4, TIF.FOK, STP.CancelNewest)).toBe(R.FokNotFillable);
    expect(book.submitLimit(5, 1, Buy, 101, 3, TIF.FOK, STP.CancelNewest)).toBe(R.None); // enough before the self order
    expect(bookRows(book, Sell)).toEqual(['2/u1@101x1', '3/u2@101x5']);
  });

  it('a post-only order touching the opposite best is refused; one tick short it rests', () => {
    const { book } = fresh();
    book.submitLimit(1, 1, Sell, 105, 2);
    book.submitLimit(2, 1, Buy, 103, 2);
    expect(book.submitLimit(3, 2, Buy, 105, 1, TIF.POST)).toBe(R.PostOnlyWouldCross);
    expect(book.submitLimit(4, 2, Sell, 103, 1, TIF.POST)).toBe(R.PostOnlyWouldCross);
    expect(book.submitLimit(5, 2, Buy, 104, 1, TIF.POST)).toBe(R.None);
    expect(book.submitLimit(6, 2, Sell, 105, 1, TIF.POST)).toBe(R.None);
    expect([book.bestBid, book.bestAsk]).toEqual([104, 105]);
  });

  it('orders at both band edges: a market order sweeps to the far edge; the edges are inclusive and one tick past them is refused', () => {
    const { book, rec } = fresh();
    expect(book.submitLimit(1, 1, Buy, 100, 12)).toBe(R.None);
    expect(book.submitLimit(2, 1, Sell, 112, 12)).toBe(R.None);
    expect(book.submitLimit(3, 1, Buy, 99, 1)).toBe(R.PriceOutOfBand);
    expect(book.submitLimit(4, 1, Sell, 113, 1)).toBe(R.PriceOutOfBand);
    expect(book.amend(1, 99, 12)).toBe(R.PriceOutOfBand);
    expect(book.amend(2, 113, 12)).toBe(R.PriceOutOfBand);
    rec.take();
    expect(book.submitMarket(5, 2, Buy, 12)).toBe(R.None);
    expect(book.submitMarket(6, 2, Sell, 12)).toBe(R.None);
    expect(rec.take().filter((e) => e.type === 'trade').map((e) => (e.type === 'trade' ? [e.makerId, e.price, e.qty] : []))).toEqual([
      [2, 112, 12],
      [1, 100, 12],
    ]);
    expect(book.submitMarket(7, 2, Sell, 12)).toBe(R.None); // empty book: accepted, all of it unfilled
    expect(rec.take()).toEqual([
      { type: 'accepted', kind: CommandKind.Market, orderId: 7, userId: 2, side: Sell, price: 0, qty: 12 },
      { type: 'canceled', orderId: 7, userId: 2, reason: CancelReason.Unfilled, qty: 12 },
    ]);
    expect(book.submitMarket(8, 2, Sell, 13)).toBe(R.QtyAboveMax);
  });

  it('three hundred orders at one level fill in arrival order; a cancel from the middle and a reduce keep the others in place', () => {
    const { book, rec } = fresh({ ...TINY, maxQty: 1000, extra: {} });
    for (let id = 1; id <= 300; id++) book.submitLimit(id, 1 + (id % 3), Sell, 106, 1 + (id % 5));
    book.cancel(150);
    book.reduce(151, 1);
    book.amend(152, 106, 100); // a size increase: to the back
    rec.take();
    let total = 0;
    book.forEachOrder(Sell, (_id, _u, _p, q) => (total += q));
    expect(book.submitLimit(1000, 9, Buy, 106, total + 1, TIF.FOK)).toBe(R.FokNotFillable);
    expect(book.submitLimit(1001, 9, Buy, 106, total, TIF.FOK)).toBe(R.None);
    const makers = rec.take().flatMap((e) => (e.type === 'trade' ? [e.makerId] : []));
    const order = [...Array.from({ length: 300 }, (_, i) => i + 1).filter((id) => id !== 150 && id !== 152), 152];
    expect(makers).toEqual(order);
    expect(book.orderCount).toBe(0);
    expect(book.levelsOn(Sell)).toBe(0);
    expect(invariantProblem(book, TINY)).toBeNull();
  });

  it('every prevention mode against one user’s orders at three levels, with another user’s order behind them', () => {
    const outcomes: Record<number, string[]> = {};
    for (const stp of [STP.None, STP.CancelNewest, STP.CancelOldest, STP.CancelBoth, STP.DecrementCancel]) {
      const { book } = fresh();
      book.submitLimit(1, 1, Sell, 101, 2);
      book.submitLimit(2, 1, Sell, 102, 2);
      book.submitLimit(3, 2, Sell, 102, 2);
      book.submitLimit(4, 1, Sell, 103, 2);
      expect(book.submitLimit(10, 1, Buy, 103, 5, TIF.GTC, stp)).toBe(R.None);
      outcomes[stp] = [...bookRows(book, Buy), ...bookRows(book, Sell)];
      expect(invariantProblem(book, TINY)).toBeNull();
    }
    expect(outcomes).toEqual({
      [STP.None]: ['3/u2@102x1', '4/u1@103x2'],
      [STP.CancelNewest]: ['1/u1@101x2', '2/u1@102x2', '3/u2@102x2', '4/u1@103x2'],
      [STP.CancelOldest]: ['10/u1@103x3'],
      [STP.CancelBoth]: ['2/u1@102x2', '3/u2@102x2', '4/u1@103x2'],
      // 5 - 2 (order 1) - 2 (order 2) = 1, traded with order 3 of user 2
      [STP.DecrementCancel]: ['3/u2@102x1', '4/u1@103x2'],
    });
  });

  it('amendments of a filled, a canceled, an unknown and an IOC order are UNKNOWN_ORDER and change nothing', () => {
    const { book, rec } = fresh();
    book.submitLimit(1, 1, Sell, 105, 2);
    book.submitLimit(2, 2, Buy, 105, 2); // fills 1
    book.submitLimit(3, 1, Sell, 106, 2);
    book.cancel(3);
    book.submitLimit(4, 1, Sell, 107, 2, TIF.IOC);
    book.submitLimit(5, 1, Sell, 110, 3);
    rec.take();
    for (const id of [1, 2, 3, 4, 99]) {
      expect(book.amend(id, 108, 1)).toBe(R.UnknownOrder);
      expect(book.reduce(id, 1)).toBe(R.UnknownOrder);
      expect(book.cancel(id)).toBe(R.UnknownOrder);
    }
    expect(rec.take().every((e) => e.type === 'rejected' && e.reason === R.UnknownOrder)).toBe(true);
    expect(bookRows(book, Sell)).toEqual(['5/u1@110x3']);
  });

  it('an id is reusable once its order ended, with a fresh time priority, and refused while it rests', () => {
    const { book } = fresh();
    book.submitLimit(1, 1, Buy, 104, 2);
    book.submitLimit(2, 2, Buy, 104, 2);
    expect(book.submitLimit(1, 3, Buy, 103, 1)).toBe(R.DuplicateOrderId);
    expect(book.submitMarket(2, 3, Sell, 1)).toBe(R.DuplicateOrderId);
    book.cancel(1);
    expect(book.submitLimit(1, 3, Buy, 104, 5)).toBe(R.None);
    expect(bookRows(book, Buy)).toEqual(['2/u2@104x2', '1/u3@104x5']);
  });
});

// ---------------------------------------------------------------------------------------------
// Bugs.

/** Constructs, or returns what the constructor threw. */
function construct(opts: unknown, sink?: unknown): { book?: OrderBook; err?: unknown } {
  try {
    return { book: new OrderBook(opts as OrderBookOptions, sink as EventRecorder) };
  } catch (err) {
    return { err };
  }
}

describe('invalid construction arguments (options that are not an object, a sink without its methods) are OrderBookError INVALID_OPTIONS, not a TypeError later', () => {
  // README, Failure modes: "invalid constructor options | OrderBookError with code INVALID_OPTIONS,
  // naming the option"; errors.ts: "Commands never throw". The constructor reads `options` and keeps
  // `sink` without a check (order-book.ts, constructor): null options throw a TypeError there, and a
  // null sink (or one without the sink's methods) is accepted and makes the first command throw a
  // TypeError. Either a typed refusal at construction or a working book is acceptable; a TypeError is not.
  it('new OrderBook(null) is refused with OrderBookError INVALID_OPTIONS (or treated as no options)', () => {
    const { book, err } = construct(null);
    if (book === undefined) {
      expect(err).toBeInstanceOf(OrderBookError);
      expect((err as OrderBookError).code).toBe('INVALID_OPTIONS');
    } else {
      expect(book.submitLimit(1, 1, Buy, 100, 1)).toBe(R.None);
    }
  });

  it.each([
    ['null', null],
    ['method-less ({})', {}],
  ])('a %s sink is refused at construction with OrderBookError INVALID_OPTIONS, not a TypeError from the first command', (_name, sink) => {
    const { book, err } = construct({ minPrice: 1, maxPrice: 1000 }, sink);
    if (book === undefined) {
      expect(err).toBeInstanceOf(OrderBookError);
      expect((err as OrderBookError).code).toBe('INVALID_OPTIONS');
    } else {
      expect(() => book.submitLimit(1, 1, Buy, 100, 1)).not.toThrow();
      expect(() => book.cancel(77)).not.toThrow();
    }
  });
});
