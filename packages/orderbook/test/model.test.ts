// Model-based test: random command sequences run through the real OrderBook and through a small,
// deliberately naive order book written here (plain arrays, re-sorted on every look, slow on purpose).
// After every command the two must agree on the returned RejectReason, the exact list of events and
// the whole visible state, and the book's own audit() must pass.
//
// The model follows the documented contract (types.ts, the comments of order-book.ts and the
// matching rules of shared/workloads/README.md), not the implementation. Where the contract is
// silent, the choices made here are listed next to the code that makes them:
// - validation precedence when several fields are invalid (the same order as the book checks them),
// - cancel/reduce/amend emit no `accepted` event (onAccepted is for new order commands),
// - a decrement-and-cancel that zeroes an order reports the quantity it had before the decrement,
//   the resting order's event first.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  AmendKind,
  CancelReason,
  CommandKind,
  EventRecorder,
  OrderBook,
  RejectReason,
  SelfTradePrevention,
  Side,
  TIME_IN_FORCE_NAMES,
  TimeInForce,
  type BookEvent,
  type DepthLevel,
  type OrderBookOptions,
  type OrderView,
} from '../src/index.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SAFE_BIG = BigInt(MAX_SAFE);

// ---------------------------------------------------------------------------------------------
// Commands.

type Cmd =
  | { t: 'limit'; id: number; user: number; side: number; price: number; qty: number; tif: number; stp: number }
  | { t: 'market'; id: number; user: number; side: number; qty: number; stp: number }
  | { t: 'cancel'; id: number }
  | { t: 'reduce'; id: number; qty: number }
  | { t: 'amend'; id: number; price: number; qty: number };

const fmt = (c: Cmd): string => {
  switch (c.t) {
    case 'limit':
      return `submitLimit(${c.id}, ${c.user}, ${c.side}, ${c.price}, ${c.qty}, ${c.tif}, ${c.stp})`;
    case 'market':
      return `submitMarket(${c.id}, ${c.user}, ${c.side}, ${c.qty}, ${c.stp})`;
    case 'cancel':
      return `cancel(${c.id})`;
    case 'reduce':
      return `reduce(${c.id}, ${c.qty})`;
    case 'amend':
      return `amend(${c.id}, ${c.price}, ${c.qty})`;
  }
};

const applyToBook = (book: OrderBook, c: Cmd): RejectReason => {
  switch (c.t) {
    case 'limit':
      return book.submitLimit(c.id, c.user, c.side as Side, c.price, c.qty, c.tif as TimeInForce, c.stp as SelfTradePrevention);
    case 'market':
      return book.submitMarket(c.id, c.user, c.side as Side, c.qty, c.stp as SelfTradePrevention);
    case 'cancel':
      return book.cancel(c.id);
    case 'reduce':
      return book.reduce(c.id, c.qty);
    case 'amend':
      return book.amend(c.id, c.price, c.qty);
  }
};

// ---------------------------------------------------------------------------------------------
// The model.

interface ModelConfig {
  readonly minPrice: number;
  readonly maxPrice: number;
  readonly maxQty: number;
}

interface MOrder {
  id: number;
  user: number;
  side: Side;
  price: number;
  qty: number;
  tif: TimeInForce;
  stp: SelfTradePrevention;
  /** Arrival sequence: time priority (lower is earlier). */
  seq: number;
}

interface Outcome {
  reason: RejectReason;
  events: BookEvent[];
}

const isPositiveSafe = (x: number): boolean => Number.isSafeInteger(x) && x > 0;

const byPriority =
  (side: Side) =>
  (a: MOrder, b: MOrder): number =>
    (side === Side.Buy ? b.price - a.price : a.price - b.price) || a.seq - b.seq;

/** Outcome kinds seen by the model, to check that the generators reach every path. */
type Seen = Set<string>;

class Model {
  orders: MOrder[];
  seq: number;
  /** Events of the command in progress (on a scratch copy until the command is known to apply). */
  events: BookEvent[] = [];
  /** What kind of taker is matching, for the coverage keys. */
  ctx = '';

  constructor(
    readonly cfg: ModelConfig,
    readonly seen: Seen,
    orders: MOrder[] = [],
    seq = 0,
  ) {
    this.orders = orders;
    this.seq = seq;
  }

  private scratch(): Model {
    return new Model(
      this.cfg,
      this.seen,
      this.orders.map((o) => ({ ...o })),
      this.seq,
    );
  }

  private commit(s: Model): Outcome {
    this.orders = s.orders;
    this.seq = s.seq;
    return { reason: RejectReason.None, events: s.events };
  }

  private reject(kind: CommandKind, orderId: number, reason: RejectReason): Outcome {
    return { reason, events: [{ type: 'rejected', kind, orderId, reason }] };
  }

  // Queries -------------------------------------------------------------------------------------

  /** Resting orders of one side, in priority order. */
  side(side: Side): MOrder[] {
    return this.orders.filter((o) => o.side === side).sort(byPriority(side));
  }

  find(id: number): MOrder | undefined {
    return this.orders.find((o) => o.id === id);
  }

  best(side: Side): number | null {
    return this.side(side)[0]?.price ?? null;
  }

  depth(side: Side): DepthLevel[] {
    const out: { price: number; qty: number; orders: number }[] = [];
    for (const o of this.side(side)) {
      const last = out[out.length - 1];
      if (last !== undefined && last.price === o.price) {
        last.qty += o.qty;
        last.orders++;
      } else {
        out.push({ price: o.price, qty: o.qty, orders: 1 });
      }
    }
    return out;
  }

  view(o: MOrder): OrderView {
    return { orderId: o.id, userId: o.user, side: o.side, price: o.price, qty: o.qty, timeInForce: o.tif, selfTradePrevention: o.stp };
  }

  /** Whether an order on `side` limited at `price` (null: any price) meets the best opposite order. */
  private crosses(side: Side, price: number | null): boolean {
    const opp = this.best(side === Side.Buy ? Side.Sell : Side.Buy);
    if (opp === null) return false;
    if (price === null) return true;
    return side === Side.Buy ? opp <= price : opp >= price;
  }

  /** Whether some price level holds more than MAX_SAFE_INTEGER in total (counted exactly). */
  private overflows(): boolean {
    const sums = new Map<string, bigint>();
    for (const o of this.orders) {
      const key = `${o.side}:${o.price}`;
      sums.set(key, (sums.get(key) ?? 0n) + BigInt(o.qty));
    }
    for (const v of sums.values()) if (v > MAX_SAFE_BIG) return true;
    return false;
  }

  // Mutations (on a scratch copy) -------------------------------------------------------------

  private remove(o: MOrder): void {
    this.orders = this.orders.filter((x) => x !== o);
  }

  private rest(id: number, user: number, side: Side, price: number, qty: number, tif: TimeInForce, stp: SelfTradePrevention): void {
    this.orders.push({ id, user, side, price, qty, tif, stp, seq: this.seq++ });
    this.events.push({ type: 'added', orderId: id, userId: user, side, price, qty });
  }

  private cancelResting(o: MOrder): void {
    this.remove(o);
    this.events.push({ type: 'canceled', orderId: o.id, userId: o.user, reason: CancelReason.SelfTrade, qty: o.qty });
  }

  /**
   * Matches an incoming order against the best opposite order, one order at a time, re-sorting
   * the book on every step. Returns what is left of the taker (0 when self-trade prevention
   * canceled it) and how much of it traded.
   */
  private match(
    id: number,
    user: number,
    side: Side,
    limit: number | null,
    qty: number,
    stp: SelfTradePrevention,
    takerPrice: number,
  ): { left: number; filled: number } {
    let filled = 0;
    const opposite = side === Side.Buy ? Side.Sell : Side.Buy;
    while (qty > 0 && this.crosses(side, limit)) {
      const m = this.side(opposite)[0];
      if (m === undefined) break;
      if (stp !== SelfTradePrevention.None && m.user === user) {
        this.seen.add(`stp:${stp}`);
        this.seen.add(`stp:${stp}:${this.ctx}`);
        switch (stp) {
          case SelfTradePrevention.CancelNewest:
            this.events.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty });
            return { left: 0, filled };
          case SelfTradePrevention.CancelOldest:
            this.cancelResting(m);
            continue;
          case SelfTradePrevention.CancelBoth:
            this.cancelResting(m);
            this.events.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty });
            return { left: 0, filled };
          case SelfTradePrevention.DecrementCancel: {
            const d = Math.min(m.qty, qty);
            if (m.qty === d) {
              this.cancelResting(m);
            } else {
              m.qty -= d;
              this.events.push({
                type: 'amended',
                orderId: m.id,
                userId: m.user,
                side: m.side,
                price: m.price,
                qty: m.qty,
                kind: AmendKind.SelfTradeDecrement,
              });
            }
            qty -= d;
            if (qty === 0) {
              this.events.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.SelfTrade, qty: d });
              return { left: 0, filled };
            }
            this.events.push({ type: 'amended', orderId: id, userId: user, side, price: takerPrice, qty, kind: AmendKind.SelfTradeDecrement });
            continue;
          }
        }
      }
      const fill = Math.min(m.qty, qty);
      m.qty -= fill;
      qty -= fill;
      filled += fill;
      this.seen.add(`trade:${this.ctx}`);
      this.events.push({
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
      if (m.qty === 0) this.remove(m);
    }
    return { left: qty, filled };
  }

  // Commands ----------------------------------------------------------------------------------

  private validateNew(id: number, user: number, side: number, qty: number, stp: number): RejectReason {
    if (!isPositiveSafe(id)) return RejectReason.InvalidOrderId;
    if (!Number.isSafeInteger(user) || user < 0) return RejectReason.InvalidUserId;
    if (side !== Side.Buy && side !== Side.Sell) return RejectReason.InvalidSide;
    if (!isPositiveSafe(qty)) return RejectReason.InvalidQty;
    if (qty > this.cfg.maxQty) return RejectReason.QtyAboveMax;
    if (!([0, 1, 2, 3, 4] as number[]).includes(stp)) return RejectReason.InvalidSelfTradePrevention;
    return RejectReason.None;
  }

  apply(c: Cmd): Outcome {
    switch (c.t) {
      case 'limit':
        return this.limit(c.id, c.user, c.side, c.price, c.qty, c.tif, c.stp);
      case 'market':
        return this.market(c.id, c.user, c.side, c.qty, c.stp);
      case 'cancel':
        return this.cancel(c.id);
      case 'reduce':
        return this.reduce(c.id, c.qty);
      case 'amend':
        return this.amend(c.id, c.price, c.qty);
    }
  }

  private limit(id: number, user: number, sideIn: number, price: number, qty: number, tifIn: number, stpIn: number): Outcome {
    const K = CommandKind.Limit;
    const bad = this.validateNew(id, user, sideIn, qty, stpIn);
    if (bad !== RejectReason.None) return this.reject(K, id, bad);
    if (!Number.isSafeInteger(price) || price <= 0) return this.reject(K, id, RejectReason.InvalidPrice);
    if (price < this.cfg.minPrice || price > this.cfg.maxPrice) return this.reject(K, id, RejectReason.PriceOutOfBand);
    if (!([0, 1, 2, 3] as number[]).includes(tifIn)) return this.reject(K, id, RejectReason.InvalidTimeInForce);
    if (this.find(id) !== undefined) return this.reject(K, id, RejectReason.DuplicateOrderId);
    const side = sideIn as Side;
    const tif = tifIn as TimeInForce;
    const stp = stpIn as SelfTradePrevention;
    // Post-only: refused if it would match anything on arrival.
    if (tif === TimeInForce.POST && this.crosses(side, price)) return this.reject(K, id, RejectReason.PostOnlyWouldCross);
    // Everything else: run it on a copy, then decide.
    const s = this.scratch();
    s.ctx = TIME_IN_FORCE_NAMES[tif];
    s.events.push({ type: 'accepted', kind: K, orderId: id, userId: user, side, price, qty });
    const { left, filled } = s.match(id, user, side, price, qty, stp, price);
    // Fill or kill: filled completely on arrival, or rejected with nothing traded.
    if (tif === TimeInForce.FOK && filled < qty) return this.reject(K, id, RejectReason.FokNotFillable);
    if (left > 0) {
      if (tif === TimeInForce.GTC || tif === TimeInForce.POST) s.rest(id, user, side, price, left, tif, stp);
      else s.events.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.Unfilled, qty: left });
    }
    if (s.overflows()) return this.reject(K, id, RejectReason.LevelQtyOverflow);
    if (tif === TimeInForce.FOK) {
      this.seen.add('fok:filled');
      if (s.events.some((e) => e.type === 'canceled' && e.reason === CancelReason.SelfTrade)) this.seen.add('fok:filled:self-trade');
    }
    return this.commit(s);
  }

  private market(id: number, user: number, sideIn: number, qty: number, stpIn: number): Outcome {
    const K = CommandKind.Market;
    const bad = this.validateNew(id, user, sideIn, qty, stpIn);
    if (bad !== RejectReason.None) return this.reject(K, id, bad);
    if (this.find(id) !== undefined) return this.reject(K, id, RejectReason.DuplicateOrderId);
    const side = sideIn as Side;
    const s = this.scratch();
    s.ctx = 'MARKET';
    s.events.push({ type: 'accepted', kind: K, orderId: id, userId: user, side, price: 0, qty });
    const { left } = s.match(id, user, side, null, qty, stpIn as SelfTradePrevention, 0);
    if (left > 0) s.events.push({ type: 'canceled', orderId: id, userId: user, reason: CancelReason.Unfilled, qty: left });
    return this.commit(s);
  }

  private cancel(id: number): Outcome {
    const K = CommandKind.Cancel;
    if (!isPositiveSafe(id)) return this.reject(K, id, RejectReason.InvalidOrderId);
    const o = this.find(id);
    if (o === undefined) return this.reject(K, id, RejectReason.UnknownOrder);
    const s = this.scratch();
    s.orders = s.orders.filter((x) => x.id !== id);
    s.events.push({ type: 'canceled', orderId: id, userId: o.user, reason: CancelReason.User, qty: o.qty });
    return this.commit(s);
  }

  private reduce(id: number, newQty: number): Outcome {
    const K = CommandKind.Amend;
    if (!isPositiveSafe(id)) return this.reject(K, id, RejectReason.InvalidOrderId);
    if (!isPositiveSafe(newQty)) return this.reject(K, id, RejectReason.InvalidQty);
    const o = this.find(id);
    if (o === undefined) return this.reject(K, id, RejectReason.UnknownOrder);
    if (newQty >= o.qty) return this.reject(K, id, RejectReason.AmendNotReducing);
    return this.reduceInPlace(o, newQty);
  }

  /** Same price, smaller quantity: keeps time priority. */
  private reduceInPlace(o: MOrder, newQty: number): Outcome {
    const s = this.scratch();
    const so = s.find(o.id);
    if (so === undefined) throw new Error('model: order vanished');
    so.qty = newQty;
    s.events.push({ type: 'amended', orderId: o.id, userId: o.user, side: o.side, price: o.price, qty: newQty, kind: AmendKind.Reduce });
    return this.commit(s);
  }

  private amend(id: number, newPrice: number, newQty: number): Outcome {
    const K = CommandKind.Amend;
    if (!isPositiveSafe(id)) return this.reject(K, id, RejectReason.InvalidOrderId);
    if (!Number.isSafeInteger(newPrice) || newPrice <= 0) return this.reject(K, id, RejectReason.InvalidPrice);
    if (!isPositiveSafe(newQty)) return this.reject(K, id, RejectReason.InvalidQty);
    if (newQty > this.cfg.maxQty) return this.reject(K, id, RejectReason.QtyAboveMax);
    if (newPrice < this.cfg.minPrice || newPrice > this.cfg.maxPrice) return this.reject(K, id, RejectReason.PriceOutOfBand);
    const o = this.find(id);
    if (o === undefined) return this.reject(K, id, RejectReason.UnknownOrder);
    if (newPrice === o.price) {
      if (newQty === o.qty) return this.reject(K, id, RejectReason.AmendNoChange);
      if (newQty < o.qty) return this.reduceInPlace(o, newQty);
    }
    // Cancel-replace: keeps the id, loses priority, matched again at the new price like an
    // incoming order; a post-only order that would cross is refused and left as it was.
    if (o.tif === TimeInForce.POST && this.crosses(o.side, newPrice)) return this.reject(K, id, RejectReason.PostOnlyWouldCross);
    const s = this.scratch();
    s.ctx = 'AMEND';
    s.orders = s.orders.filter((x) => x.id !== id);
    s.events.push({ type: 'amended', orderId: id, userId: o.user, side: o.side, price: newPrice, qty: newQty, kind: AmendKind.Replace });
    const { left } = s.match(id, o.user, o.side, newPrice, newQty, o.stp, newPrice);
    if (left > 0) s.rest(id, o.user, o.side, newPrice, left, o.tif, o.stp);
    if (s.overflows()) return this.reject(K, id, RejectReason.LevelQtyOverflow);
    return this.commit(s);
  }
}

// ---------------------------------------------------------------------------------------------
// Generated commands refer to ids, prices and quantities partly through the model's state at the
// time they run (a live order, a free id, the order's own price...), so that cancels and amends
// mostly hit live orders and amends often keep the price or the size.

type IdRef = { k: 'live'; n: number } | { k: 'free'; n: number } | { k: 'raw'; v: number };
/** `cross` n: n ticks through the best opposite price (an aggressive price), if there is one. */
type PriceRef = { k: 'pass'; n: number } | { k: 'cross'; n: number } | { k: 'raw'; v: number };
type AmendPriceRef = { k: 'same' } | { k: 'delta'; d: number } | { k: 'cross'; n: number } | { k: 'raw'; v: number };
type QtyRef = { k: 'rel'; d: number } | { k: 'raw'; v: number };

type RawCmd =
  | { t: 'limit'; id: IdRef; user: number; side: number; price: PriceRef; qty: number; tif: number; stp: number }
  | { t: 'market'; id: IdRef; user: number; side: number; qty: number; stp: number }
  | { t: 'cancel'; id: IdRef }
  | { t: 'reduce'; id: IdRef; qty: QtyRef }
  | { t: 'amend'; id: IdRef; price: AmendPriceRef; qty: QtyRef };

interface Scenario {
  readonly name: string;
  readonly cfg: ModelConfig;
  /** Valid prices in the band, and prices out of it. */
  readonly prices: fc.Arbitrary<number>;
  readonly outOfBand: readonly number[];
  /** Passive prices: `pass` n resolves to passive[side][n % length]. */
  readonly passive: readonly [readonly number[], readonly number[]];
  /** Valid quantities (some may be above maxQty). */
  readonly qtys: fc.Arbitrary<number>;
  readonly maxIdSmall: number;
}

const INVALID_IDS = [0, -0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, 2 ** 53 + 2, -(2 ** 53)];
const BIG_IDS = [2 ** 31, 2 ** 32 + 1, 2 ** 40, MAX_SAFE - 1, MAX_SAFE];
const INVALID_USERS = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53];
const INVALID_SIDES = [2, -1, 0.5, Number.NaN, 255];
const INVALID_PRICES = [0, -0, -5, 100.5, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 2 ** 53, -(2 ** 53)];
const INVALID_QTYS = [0, -0, -1, 2.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, 2 ** 53 + 2];
const INVALID_TIFS = [4, -1, 1.5, Number.NaN, 255];
const INVALID_STPS = [5, -1, 2.5, Number.NaN, 255];

const w = <T>(weight: number, arbitrary: fc.Arbitrary<T>): { weight: number; arbitrary: fc.Arbitrary<T> } => ({ weight, arbitrary });

function commandArb(sc: Scenario): fc.Arbitrary<RawCmd> {
  const nat = fc.nat(1000);
  const smallId = fc.integer({ min: 1, max: sc.maxIdSmall });
  const rawId = (v: fc.Arbitrary<number>): fc.Arbitrary<IdRef> => v.map((x) => ({ k: 'raw' as const, v: x }));
  const newId: fc.Arbitrary<IdRef> = fc.oneof(
    w(24, nat.map((n) => ({ k: 'free' as const, n }))),
    w(3, rawId(smallId)),
    w(1, nat.map((n) => ({ k: 'live' as const, n }))),
    w(1, rawId(fc.constantFrom(...INVALID_IDS))),
    w(1, rawId(fc.constantFrom(...BIG_IDS))),
  );
  const oldId: fc.Arbitrary<IdRef> = fc.oneof(
    w(18, nat.map((n) => ({ k: 'live' as const, n }))),
    w(3, rawId(smallId)),
    w(1, rawId(fc.constantFrom(...INVALID_IDS))),
    w(1, rawId(fc.constantFrom(...BIG_IDS))),
  );
  // Mostly two users, so that self-matches are frequent.
  const user = fc.oneof(w(50, fc.constantFrom(1, 2)), w(10, fc.constant(3)), w(2, fc.constant(0)), w(1, fc.constantFrom(...INVALID_USERS)));
  const side = fc.oneof(w(60, fc.constantFrom(Side.Buy, Side.Sell)), w(1, fc.constantFrom(...INVALID_SIDES)));
  const price = fc.oneof(w(50, sc.prices), w(2, fc.constantFrom(...sc.outOfBand)), w(1, fc.constantFrom(...INVALID_PRICES)));
  const cross = fc.integer({ min: 0, max: 2 }).map((n) => ({ k: 'cross' as const, n }));
  const limitPrice: fc.Arbitrary<PriceRef> = fc.oneof(
    w(3, nat.map((n) => ({ k: 'pass' as const, n }))),
    w(2, cross),
    w(4, price.map((v) => ({ k: 'raw' as const, v }))),
  );
  const qty = fc.oneof(w(60, sc.qtys), w(1, fc.constantFrom(...INVALID_QTYS)));
  const tif = fc.oneof(
    w(30, fc.constant(TimeInForce.GTC)),
    w(10, fc.constant(TimeInForce.IOC)),
    w(10, fc.constant(TimeInForce.FOK)),
    w(10, fc.constant(TimeInForce.POST)),
    w(1, fc.constantFrom(...INVALID_TIFS)),
  );
  const stp = fc.oneof(
    w(25, fc.constant(SelfTradePrevention.None)),
    w(
      30,
      fc.constantFrom(
        SelfTradePrevention.CancelNewest,
        SelfTradePrevention.CancelOldest,
        SelfTradePrevention.CancelBoth,
        SelfTradePrevention.DecrementCancel,
      ),
    ),
    w(1, fc.constantFrom(...INVALID_STPS)),
  );
  const relQty = (lo: number, hi: number): fc.Arbitrary<QtyRef> =>
    fc.oneof(
      w(8, fc.integer({ min: lo, max: hi }).map((d) => ({ k: 'rel' as const, d }))),
      w(2, qty.map((v) => ({ k: 'raw' as const, v }))),
    );
  const amendPrice: fc.Arbitrary<AmendPriceRef> = fc.oneof(
    w(6, fc.constant({ k: 'same' as const })),
    w(4, fc.integer({ min: -3, max: 3 }).map((d) => ({ k: 'delta' as const, d }))),
    w(2, cross),
    w(3, price.map((v) => ({ k: 'raw' as const, v }))),
  );
  return fc.oneof(
    w(40, fc.record({ t: fc.constant('limit' as const), id: newId, user, side, price: limitPrice, qty, tif, stp })),
    w(6, fc.record({ t: fc.constant('market' as const), id: newId, user, side, qty, stp })),
    w(10, fc.record({ t: fc.constant('cancel' as const), id: oldId })),
    w(7, fc.record({ t: fc.constant('reduce' as const), id: oldId, qty: relQty(-4, 1) })),
    w(14, fc.record({ t: fc.constant('amend' as const), id: oldId, price: amendPrice, qty: relQty(-2, 3) })),
  );
}

function resolve(raw: RawCmd, m: Model, sc: Scenario): Cmd {
  const liveIds = m.orders.map((o) => o.id).sort((a, b) => a - b);
  const id = (ref: IdRef): number => {
    if (ref.k === 'raw') return ref.v;
    const pool = ref.k === 'live' ? liveIds : Array.from({ length: sc.maxIdSmall }, (_, i) => i + 1).filter((i) => m.find(i) === undefined);
    return pool[ref.n % Math.max(1, pool.length)] ?? (ref.n % sc.maxIdSmall) + 1;
  };
  const passive = (side: number, n: number): number => {
    const list = sc.passive[side === Side.Sell ? 1 : 0];
    return list[n % list.length] ?? sc.cfg.minPrice;
  };
  const crossing = (side: number, n: number): number => {
    const sell = side === Side.Sell;
    const best = m.best(sell ? Side.Buy : Side.Sell);
    if (best === null) return passive(side, n);
    return Math.min(sc.cfg.maxPrice, Math.max(sc.cfg.minPrice, sell ? best - n : best + n));
  };
  switch (raw.t) {
    case 'limit': {
      const p = raw.price;
      const price = p.k === 'raw' ? p.v : p.k === 'pass' ? passive(raw.side, p.n) : crossing(raw.side, p.n);
      return { t: 'limit', id: id(raw.id), user: raw.user, side: raw.side, price, qty: raw.qty, tif: raw.tif, stp: raw.stp };
    }
    case 'market':
      return { t: 'market', id: id(raw.id), user: raw.user, side: raw.side, qty: raw.qty, stp: raw.stp };
    case 'cancel':
      return { t: 'cancel', id: id(raw.id) };
    case 'reduce':
    case 'amend': {
      const orderId = id(raw.id);
      const o = m.find(orderId);
      const qty = raw.qty.k === 'raw' ? raw.qty.v : (o?.qty ?? 1) + raw.qty.d;
      if (raw.t === 'reduce') return { t: 'reduce', id: orderId, qty };
      const p = raw.price;
      const base = o?.price ?? sc.passive[0][0] ?? sc.cfg.minPrice;
      const price = p.k === 'raw' ? p.v : p.k === 'same' ? base : p.k === 'delta' ? base + p.d : crossing(o?.side ?? Side.Buy, p.n);
      return { t: 'amend', id: orderId, price, qty };
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Running one sequence through both.

const optionsArb = fc.record({
  initialOrders: fc.constantFrom(1, 2, 3, 64, undefined),
  initialLevels: fc.constantFrom(1, 2, 3, 64, undefined),
  idWindow: fc.constantFrom(1, 2, 4, 8, 32, 1024, undefined),
});

type Opts = { initialOrders: number | undefined; initialLevels: number | undefined; idWindow: number | undefined };

const bookOptions = (sc: Scenario, o: Opts): OrderBookOptions => ({
  minPrice: sc.cfg.minPrice,
  maxPrice: sc.cfg.maxPrice,
  maxQty: sc.cfg.maxQty,
  ...(o.initialOrders === undefined ? {} : { initialOrders: o.initialOrders }),
  ...(o.initialLevels === undefined ? {} : { initialLevels: o.initialLevels }),
  ...(o.idWindow === undefined ? {} : { idWindow: o.idWindow }),
});

type Row = [orderId: number, userId: number, price: number, qty: number];

function bookRows(book: OrderBook, side: Side): Row[] {
  const rows: Row[] = [];
  book.forEachOrder(side, (id, user, price, qty) => rows.push([id, user, price, qty]));
  return rows;
}

function modelRows(m: Model, side: Side): Row[] {
  return m.side(side).map((o) => [o.id, o.user, o.price, o.qty]);
}

function compareState(book: OrderBook, m: Model): void {
  for (const side of [Side.Buy, Side.Sell]) {
    expect(bookRows(book, side), `orders of side ${side}`).toEqual(modelRows(m, side));
    const depth = m.depth(side);
    expect(book.depth(side, 1_000), `depth of side ${side}`).toEqual(depth);
    expect(book.ordersOn(side), `ordersOn(${side})`).toBe(m.side(side).length);
    expect(book.levelsOn(side), `levelsOn(${side})`).toBe(depth.length);
  }
  expect(book.bestBid, 'bestBid').toBe(m.best(Side.Buy));
  expect(book.bestAsk, 'bestAsk').toBe(m.best(Side.Sell));
  expect(book.orderCount, 'orderCount').toBe(m.orders.length);
}

/** The final, more expensive comparison: per-id lookups, truncated depth and forEachLevel. */
function compareFinal(book: OrderBook, m: Model, sc: Scenario): void {
  compareState(book, m);
  const ids = new Set<number>([...Array.from({ length: sc.maxIdSmall + 2 }, (_, i) => i), ...BIG_IDS, ...INVALID_IDS]);
  for (const o of m.orders) ids.add(o.id);
  for (const id of ids) {
    const o = m.find(id);
    expect(book.has(id), `has(${id})`).toBe(o !== undefined);
    expect(book.getOrder(id), `getOrder(${id})`).toEqual(o === undefined ? undefined : m.view(o));
  }
  for (const side of [Side.Buy, Side.Sell]) {
    const depth = m.depth(side);
    for (const n of [0, 1, 2, 3]) expect(book.depth(side, n), `depth(${side}, ${n})`).toEqual(depth.slice(0, n));
    const levels: DepthLevel[] = [];
    book.forEachLevel(side, Number.POSITIVE_INFINITY, (price, qty, orders) => levels.push({ price, qty, orders }));
    expect(levels, `forEachLevel(${side})`).toEqual(depth);
  }
}

/**
 * Runs `items` through a fresh book and a fresh model, comparing after every command; returns the
 * book's events, command by command. On a mismatch the error lists the commands up to the failing one.
 */
function runSequence<C>(
  sc: Scenario,
  opts: Opts,
  items: readonly C[],
  toCmd: (item: C, m: Model) => Cmd,
  seen: Seen,
): { events: BookEvent[][]; book: OrderBook } {
  const recorder = new EventRecorder();
  const book = new OrderBook(bookOptions(sc, opts), recorder);
  const model = new Model(sc.cfg, seen);
  const trace: string[] = [];
  const out: BookEvent[][] = [];
  try {
    for (const item of items) {
      const cmd = toCmd(item, model);
      trace.push(fmt(cmd));
      const got = applyToBook(book, cmd);
      const events = recorder.take();
      out.push(events);
      const want = model.apply(cmd);
      expect(events, 'events').toEqual(want.events);
      expect(got, 'returned reason').toBe(want.reason);
      seen.add(`${cmd.t}:${want.reason}`);
      for (const e of want.events) {
        seen.add(e.type === 'canceled' ? `canceled:${e.reason}` : e.type === 'amended' ? `amended:${e.kind}` : e.type);
      }
      book.audit();
      compareState(book, model);
    }
    compareFinal(book, model, sc);
    return { events: out, book };
  } catch (e) {
    const opt = JSON.stringify(bookOptions(sc, opts));
    const msg = e instanceof Error ? e.message : String(e);
    throw new Error(`${msg}\n\nbook = new OrderBook(${opt}); then, the last one failing:\n  ${trace.join('\n  ')}\n`, { cause: e });
  }
}

// ---------------------------------------------------------------------------------------------
// Scenarios.

const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo + 1 }, (_, i) => lo + i);

/** A narrow band where prices collide all the time, small sizes, three users. */
const NARROW: Scenario = {
  name: 'narrow band',
  cfg: { minPrice: 90, maxPrice: 110, maxQty: 20 },
  prices: fc.integer({ min: 90, max: 110 }),
  outOfBand: [1, 88, 89, 111, 112, 1_000_000_000],
  passive: [range(90, 100).reverse(), range(100, 110)],
  qtys: fc.oneof(w(30, fc.integer({ min: 1, max: 8 })), w(6, fc.integer({ min: 9, max: 20 })), w(1, fc.constantFrom(21, 25, 1000))),
  maxIdSmall: 40,
};

/** A wide band with prices around the price index's 32,768-tick page boundaries. */
const WIDE_PRICES = [1, 2, 32_767, 32_768, 32_769, 32_770, 65_535, 65_536, 65_537, 65_538, 98_304, 98_305, 98_306, 99_999, 100_000];
const WIDE: Scenario = {
  name: 'wide band across price-index pages',
  cfg: { minPrice: 1, maxPrice: 100_000, maxQty: 20 },
  prices: fc.constantFrom(...WIDE_PRICES),
  outOfBand: [100_001, 2 ** 31],
  passive: [WIDE_PRICES.slice(0, 8).reverse(), WIDE_PRICES.slice(7)],
  qtys: fc.integer({ min: 1, max: 10 }),
  maxIdSmall: 40,
};

/** Huge quantities, up to MAX_SAFE_INTEGER, so that level totals can overflow. */
const HUGE: Scenario = {
  name: 'huge quantities and level overflow',
  cfg: { minPrice: 90, maxPrice: 110, maxQty: MAX_SAFE },
  prices: fc.integer({ min: 95, max: 105 }),
  outOfBand: [89, 111],
  passive: [range(95, 100).reverse(), range(100, 105)],
  qtys: fc.oneof(
    w(4, fc.integer({ min: 1, max: 5 })),
    w(4, fc.constantFrom(2 ** 51, 2 ** 52, 2 ** 52 + 1, 3 * 2 ** 51, MAX_SAFE - 2, MAX_SAFE - 1, MAX_SAFE)),
    w(2, fc.integer({ min: 1, max: MAX_SAFE })),
  ),
  maxIdSmall: 24,
};

/** MODEL_RUNS_FACTOR=20 runs every property 20 times as often (a deeper search, not for CI). */
const RUNS_FACTOR = Math.max(1, Number(process.env.MODEL_RUNS_FACTOR ?? 1) || 1);

function check(sc: Scenario, numRuns: number, maxLength: number, mustSee: readonly string[]): void {
  const seen: Seen = new Set();
  fc.assert(
    fc.property(optionsArb, fc.array(commandArb(sc), { minLength: 1, maxLength, size: 'max' }), (opts, raws) => {
      runSequence(sc, opts, raws, (raw, m) => resolve(raw, m, sc), seen);
    }),
    { numRuns: numRuns * RUNS_FACTOR },
  );
  // The generators must reach every path the scenario is meant to exercise.
  expect(mustSee.filter((k) => !seen.has(k))).toEqual([]);
}

const R = RejectReason;
const COMMON_MUST_SEE = [
  `limit:${R.None}`,
  `limit:${R.InvalidOrderId}`,
  `limit:${R.InvalidUserId}`,
  `limit:${R.InvalidSide}`,
  `limit:${R.InvalidPrice}`,
  `limit:${R.InvalidQty}`,
  `limit:${R.InvalidTimeInForce}`,
  `limit:${R.InvalidSelfTradePrevention}`,
  `limit:${R.PriceOutOfBand}`,
  `limit:${R.DuplicateOrderId}`,
  `limit:${R.PostOnlyWouldCross}`,
  `limit:${R.FokNotFillable}`,
  `market:${R.None}`,
  `market:${R.DuplicateOrderId}`,
  `market:${R.InvalidQty}`,
  `cancel:${R.None}`,
  `cancel:${R.UnknownOrder}`,
  `cancel:${R.InvalidOrderId}`,
  `reduce:${R.None}`,
  `reduce:${R.AmendNotReducing}`,
  `reduce:${R.UnknownOrder}`,
  `reduce:${R.InvalidQty}`,
  `amend:${R.None}`,
  `amend:${R.AmendNoChange}`,
  `amend:${R.PostOnlyWouldCross}`,
  `amend:${R.UnknownOrder}`,
  `amend:${R.InvalidPrice}`,
  `amend:${R.InvalidQty}`,
  `amend:${R.PriceOutOfBand}`,
  'trade',
  'added',
  'fok:filled',
  `canceled:${CancelReason.User}`,
  `canceled:${CancelReason.Unfilled}`,
  `canceled:${CancelReason.SelfTrade}`,
  `amended:${AmendKind.Reduce}`,
  `amended:${AmendKind.Replace}`,
  `amended:${AmendKind.SelfTradeDecrement}`,
  `stp:${SelfTradePrevention.CancelNewest}`,
  `stp:${SelfTradePrevention.CancelOldest}`,
  `stp:${SelfTradePrevention.CancelBoth}`,
  `stp:${SelfTradePrevention.DecrementCancel}`,
  'trade:AMEND',
  'trade:IOC',
  'trade:MARKET',
  `stp:${SelfTradePrevention.CancelOldest}:MARKET`,
  `stp:${SelfTradePrevention.CancelBoth}:GTC`,
  `stp:${SelfTradePrevention.DecrementCancel}:IOC`,
];

describe('OrderBook against a naive model', () => {
  it('agrees on a narrow price band (prices collide, 3 users, every command and reject)', () => {
    check(NARROW, 300, 150, [...COMMON_MUST_SEE, `limit:${R.QtyAboveMax}`, `amend:${R.QtyAboveMax}`]);
  });

  it('agrees on a wide band across price-index pages', () => {
    check(WIDE, 150, 120, [`limit:${R.None}`, 'trade', `amend:${R.None}`, `stp:${SelfTradePrevention.DecrementCancel}`]);
  });

  it('agrees with huge quantities and level-quantity overflow', () => {
    check(HUGE, 200, 120, [`limit:${R.None}`, 'trade', `limit:${R.LevelQtyOverflow}`, `amend:${R.LevelQtyOverflow}`]);
  });
});

// ---------------------------------------------------------------------------------------------
// Fixed sequences for paths that random sequences reach only rarely, with the expected events
// written out by hand (so that the model itself is checked against the contract too).

const { Buy: B, Sell: S } = Side;
const { GTC, IOC, FOK, POST } = TimeInForce;
const STP = SelfTradePrevention;

const L = (id: number, user: number, side: Side, price: number, qty: number, tif: TimeInForce = GTC, stp: SelfTradePrevention = STP.None): Cmd => ({
  t: 'limit',
  id,
  user,
  side,
  price,
  qty,
  tif,
  stp,
});
const M = (id: number, user: number, side: Side, qty: number, stp: SelfTradePrevention = STP.None): Cmd => ({ t: 'market', id, user, side, qty, stp });
const A = (id: number, price: number, qty: number): Cmd => ({ t: 'amend', id, price, qty });

const accepted = (orderId: number, userId: number, side: Side, price: number, qty: number, kind: CommandKind = CommandKind.Limit): BookEvent => ({
  type: 'accepted',
  kind,
  orderId,
  userId,
  side,
  price,
  qty,
});
const rejected = (kind: CommandKind, orderId: number, reason: RejectReason): BookEvent => ({ type: 'rejected', kind, orderId, reason });
const added = (orderId: number, userId: number, side: Side, price: number, qty: number): BookEvent => ({ type: 'added', orderId, userId, side, price, qty });
const trade = (makerId: number, takerId: number, makerUserId: number, takerUserId: number, takerSide: Side, price: number, qty: number, makerRemaining: number): BookEvent => ({
  type: 'trade',
  makerId,
  takerId,
  makerUserId,
  takerUserId,
  takerSide,
  price,
  qty,
  makerRemaining,
});
const canceled = (orderId: number, userId: number, reason: CancelReason, qty: number): BookEvent => ({ type: 'canceled', orderId, userId, reason, qty });
const amended = (orderId: number, userId: number, side: Side, price: number, qty: number, kind: AmendKind): BookEvent => ({
  type: 'amended',
  orderId,
  userId,
  side,
  price,
  qty,
  kind,
});

/** Runs `steps` through book and model (which must agree) and checks the book's events against the hand-written ones. */
function expectSteps(steps: readonly (readonly [Cmd, BookEvent[]])[]): OrderBook {
  const opts: Opts = { initialOrders: 2, initialLevels: 2, idWindow: 4 };
  const { events, book } = runSequence(NARROW, opts, steps, ([cmd]) => cmd, new Set());
  steps.forEach(([cmd, want], i) => {
    expect(events[i], fmt(cmd)).toEqual(want);
  });
  return book;
}

describe('OrderBook and the model on fixed sequences', () => {
  it('fill-or-kill with cancel-oldest cancels its own resting orders and fills from the others', () => {
    const book = expectSteps([
      [L(1, 1, S, 100, 2), [accepted(1, 1, S, 100, 2), added(1, 1, S, 100, 2)]],
      [L(2, 2, S, 100, 3), [accepted(2, 2, S, 100, 3), added(2, 2, S, 100, 3)]],
      [L(3, 1, B, 101, 3, FOK, STP.CancelOldest), [accepted(3, 1, B, 101, 3), canceled(1, 1, CancelReason.SelfTrade, 2), trade(2, 3, 2, 1, B, 100, 3, 0)]],
    ]);
    expect(book.orderCount).toBe(0);
  });

  it('fill-or-kill that meets its own order under any other prevention mode is not fillable', () => {
    const book = expectSteps([
      [L(1, 1, S, 100, 2), [accepted(1, 1, S, 100, 2), added(1, 1, S, 100, 2)]],
      [L(2, 2, S, 100, 3), [accepted(2, 2, S, 100, 3), added(2, 2, S, 100, 3)]],
      [L(3, 1, B, 101, 3, FOK, STP.DecrementCancel), [rejected(CommandKind.Limit, 3, RejectReason.FokNotFillable)]],
      [L(4, 1, B, 101, 3, FOK, STP.CancelNewest), [rejected(CommandKind.Limit, 4, RejectReason.FokNotFillable)]],
      [L(5, 1, B, 101, 3, FOK, STP.CancelBoth), [rejected(CommandKind.Limit, 5, RejectReason.FokNotFillable)]],
      [L(6, 1, B, 100, 6, FOK), [rejected(CommandKind.Limit, 6, RejectReason.FokNotFillable)]],
      [L(7, 1, B, 100, 5, FOK), [accepted(7, 1, B, 100, 5), trade(1, 7, 1, 1, B, 100, 2, 0), trade(2, 7, 2, 1, B, 100, 3, 0)]],
    ]);
    expect(book.orderCount).toBe(0);
  });

  it('decrement-and-cancel reduces both sides, cancels whichever reaches zero, the resting one first', () => {
    const book = expectSteps([
      [L(1, 1, S, 100, 5), [accepted(1, 1, S, 100, 5), added(1, 1, S, 100, 5)]],
      [L(2, 2, S, 100, 1), [accepted(2, 2, S, 100, 1), added(2, 2, S, 100, 1)]],
      [
        L(3, 1, B, 100, 2, GTC, STP.DecrementCancel),
        [accepted(3, 1, B, 100, 2), amended(1, 1, S, 100, 3, AmendKind.SelfTradeDecrement), canceled(3, 1, CancelReason.SelfTrade, 2)],
      ],
      [
        L(4, 1, B, 100, 4, IOC, STP.DecrementCancel),
        [
          accepted(4, 1, B, 100, 4),
          canceled(1, 1, CancelReason.SelfTrade, 3),
          amended(4, 1, B, 100, 1, AmendKind.SelfTradeDecrement),
          trade(2, 4, 2, 1, B, 100, 1, 0),
        ],
      ],
      [L(5, 1, S, 100, 2), [accepted(5, 1, S, 100, 2), added(5, 1, S, 100, 2)]],
      [
        M(6, 1, B, 2, STP.DecrementCancel),
        [accepted(6, 1, B, 0, 2, CommandKind.Market), canceled(5, 1, CancelReason.SelfTrade, 2), canceled(6, 1, CancelReason.SelfTrade, 2)],
      ],
    ]);
    expect(book.orderCount).toBe(0);
  });

  it('amend: a reduction keeps priority, an increase or a new price re-queues and re-matches', () => {
    const book = expectSteps([
      [L(1, 1, B, 95, 5), [accepted(1, 1, B, 95, 5), added(1, 1, B, 95, 5)]],
      [L(2, 2, B, 95, 5), [accepted(2, 2, B, 95, 5), added(2, 2, B, 95, 5)]],
      [A(1, 95, 3), [amended(1, 1, B, 95, 3, AmendKind.Reduce)]],
      [A(1, 95, 4), [amended(1, 1, B, 95, 4, AmendKind.Replace), added(1, 1, B, 95, 4)]],
      [A(2, 95, 5), [rejected(CommandKind.Amend, 2, RejectReason.AmendNoChange)]],
      [L(3, 1, S, 100, 1), [accepted(3, 1, S, 100, 1), added(3, 1, S, 100, 1)]],
      [L(4, 3, S, 100, 2), [accepted(4, 3, S, 100, 2), added(4, 3, S, 100, 2)]],
      [L(5, 1, B, 96, 5, GTC, STP.DecrementCancel), [accepted(5, 1, B, 96, 5), added(5, 1, B, 96, 5)]],
      [
        A(5, 100, 5),
        [
          amended(5, 1, B, 100, 5, AmendKind.Replace),
          canceled(3, 1, CancelReason.SelfTrade, 1),
          amended(5, 1, B, 100, 4, AmendKind.SelfTradeDecrement),
          trade(4, 5, 3, 1, B, 100, 2, 0),
          added(5, 1, B, 100, 2),
        ],
      ],
      [L(6, 2, S, 101, 1, POST), [accepted(6, 2, S, 101, 1), added(6, 2, S, 101, 1)]],
      [A(6, 100, 1), [rejected(CommandKind.Amend, 6, RejectReason.PostOnlyWouldCross)]],
      [L(7, 1, S, 102, 1, GTC, STP.CancelNewest), [accepted(7, 1, S, 102, 1), added(7, 1, S, 102, 1)]],
      [A(7, 100, 1), [amended(7, 1, S, 100, 1, AmendKind.Replace), canceled(7, 1, CancelReason.SelfTrade, 1)]],
    ]);
    expect(bookRows(book, B)).toEqual([
      [5, 1, 100, 2],
      [2, 2, 95, 5],
      [1, 1, 95, 4],
    ]);
    expect(bookRows(book, S)).toEqual([[6, 2, 101, 1]]);
    expect(book.has(7)).toBe(false);
  });
});
