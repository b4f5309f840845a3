// The limit order book of one symbol: price-time priority, pure and synchronous.
//
// Layout: orders and price levels live in struct-of-arrays pools (typed arrays) addressed by slot;
// each level keeps its orders in an intrusive doubly linked FIFO (prev/next slots), so a cancel
// unlinks in O(1). A paged tick-indexed ladder (`PriceIndex`) maps prices to levels and finds the
// next best price through an occupancy bitmap; the best bid and ask are cached. Order ids map to
// slots through `IdIndex`. Nothing is allocated per command in steady state: events go to the
// sink as primitives, pools grow by doubling only when full.

import { OrderBookError } from './errors.js';
import { IdIndex } from './internal/id-index.js';
import { PriceIndex } from './internal/price-index.js';
import {
  AmendKind,
  CancelReason,
  CommandKind,
  RejectReason,
  SelfTradePrevention,
  Side,
  TimeInForce,
  type BookEventSink,
  type DepthLevel,
  type OrderBookOptions,
  type OrderView,
} from './types.js';

const MAX_SAFE = Number.MAX_SAFE_INTEGER;
const MAX_SPAN = 2 ** 31 - 1;
const NIL = -1;

const isId = (x: number): boolean => Number.isSafeInteger(x) && x > 0;
const isPositive = (x: number): boolean => Number.isSafeInteger(x) && x > 0;

/** A sink that ignores every event. */
export const NOOP_SINK: BookEventSink = {
  onAccepted() {},
  onRejected() {},
  onAdded() {},
  onTrade() {},
  onCanceled() {},
  onAmended() {},
};

export class OrderBook {
  readonly minPrice: number;
  readonly maxPrice: number;
  readonly maxQty: number;

  private sink: BookEventSink;
  private readonly span: number;
  private readonly prices: PriceIndex;
  private readonly ids: IdIndex;

  // Orders (struct of arrays, by slot).
  private oCap = 0;
  private oId = new Float64Array(0);
  private oUser = new Float64Array(0);
  private oQty = new Float64Array(0);
  private oLevel = new Int32Array(0);
  private oPrev = new Int32Array(0);
  private oNext = new Int32Array(0);
  private oTif = new Uint8Array(0);
  private oStp = new Uint8Array(0);
  private oFree = new Int32Array(0);
  private oFreeTop = 0;

  // Price levels (struct of arrays, by level id).
  private lCap = 0;
  private lHead = new Int32Array(0);
  private lTail = new Int32Array(0);
  private lQty = new Float64Array(0);
  private lCount = new Int32Array(0);
  private lTick = new Int32Array(0);
  private lSide = new Uint8Array(0);
  private lFree = new Int32Array(0);
  private lFreeTop = 0;

  // Best prices as ticks (price - minPrice), NIL when the side is empty.
  private bestBidTick = NIL;
  private bestAskTick = NIL;
  private bidOrders = 0;
  private askOrders = 0;
  private bidLevels = 0;
  private askLevels = 0;

  constructor(options: OrderBookOptions = {}, sink: BookEventSink = NOOP_SINK) {
    if (typeof options !== 'object' || options === null) throw invalid('options', 'an object (or left out)', options);
    checkSink(sink);
    const minPrice = options.minPrice ?? 1;
    const maxPrice = options.maxPrice ?? 1_000_000_000;
    const maxQty = options.maxQty ?? 2 ** 48;
    const initialOrders = options.initialOrders ?? 65_536;
    const initialLevels = options.initialLevels ?? 4_096;
    const idWindow = options.idWindow ?? 1 << 20;
    if (!isPositive(minPrice)) throw invalid('minPrice', 'a positive safe integer', minPrice);
    if (!isPositive(maxPrice) || maxPrice < minPrice) throw invalid('maxPrice', 'a safe integer >= minPrice', maxPrice);
    if (maxPrice - minPrice + 1 > MAX_SPAN) throw invalid('maxPrice', `at most ${MAX_SPAN - 1} ticks above minPrice`, maxPrice);
    if (!isPositive(maxQty)) throw invalid('maxQty', 'a positive safe integer', maxQty);
    if (!isPositive(initialOrders) || initialOrders > 1 << 28) throw invalid('initialOrders', 'an integer in 1..2^28', initialOrders);
    if (!isPositive(initialLevels) || initialLevels > 1 << 28) throw invalid('initialLevels', 'an integer in 1..2^28', initialLevels);
    if (!isPositive(idWindow) || idWindow > 1 << 28 || (idWindow & (idWindow - 1)) !== 0) {
      throw invalid('idWindow', 'a power of two up to 2^28', idWindow);
    }
    this.minPrice = minPrice;
    this.maxPrice = maxPrice;
    this.maxQty = maxQty;
    this.span = maxPrice - minPrice + 1;
    this.sink = sink;
    this.prices = new PriceIndex(this.span);
    this.ids = new IdIndex(idWindow);
    this.growOrders(initialOrders);
    this.growLevels(initialLevels);
  }

  /** Replaces the event sink (for example after recovery, to start publishing). */
  setSink(sink: BookEventSink): void {
    checkSink(sink);
    this.sink = sink;
  }

  // ---------------------------------------------------------------------------------------------
  // Commands. Each returns RejectReason.None (0) when applied, or the reason it was refused (also
  // delivered as an `onRejected` event). A refused command changes nothing.

  /** A limit order. The unfilled rest of a GTC or POST order rests at `price`. */
  submitLimit(
    orderId: number,
    userId: number,
    side: Side,
    price: number,
    qty: number,
    tif: TimeInForce = TimeInForce.GTC,
    stp: SelfTradePrevention = SelfTradePrevention.None,
  ): RejectReason {
    const bad = this.validateOrder(orderId, userId, side, qty, stp);
    if (bad !== RejectReason.None) return this.reject(CommandKind.Limit, orderId, bad);
    if (!Number.isSafeInteger(price) || price <= 0) return this.reject(CommandKind.Limit, orderId, RejectReason.InvalidPrice);
    if (price < this.minPrice || price > this.maxPrice) return this.reject(CommandKind.Limit, orderId, RejectReason.PriceOutOfBand);
    if (tif !== TimeInForce.GTC && tif !== TimeInForce.IOC && tif !== TimeInForce.FOK && tif !== TimeInForce.POST) {
      return this.reject(CommandKind.Limit, orderId, RejectReason.InvalidTimeInForce);
    }
    if (this.ids.get(orderId) !== NIL) return this.reject(CommandKind.Limit, orderId, RejectReason.DuplicateOrderId);
    const tick = price - this.minPrice;
    const crossing = side === Side.Buy ? this.bestAskTick !== NIL && this.bestAskTick <= tick : this.bestBidTick !== NIL && this.bestBidTick >= tick;
    let level = NIL;
    if (crossing) {
      if (tif === TimeInForce.POST) return this.reject(CommandKind.Limit, orderId, RejectReason.PostOnlyWouldCross);
      if (tif === TimeInForce.FOK && !this.canFill(userId, side, tick, qty, stp)) {
        return this.reject(CommandKind.Limit, orderId, RejectReason.FokNotFillable);
      }
    } else {
      if (tif === TimeInForce.FOK) return this.reject(CommandKind.Limit, orderId, RejectReason.FokNotFillable);
      if (tif !== TimeInForce.IOC) {
        level = this.prices.get(tick);
        if (level !== NIL && (this.lQty[level] as number) + qty > MAX_SAFE) {
          return this.reject(CommandKind.Limit, orderId, RejectReason.LevelQtyOverflow);
        }
      }
    }
    this.sink.onAccepted(CommandKind.Limit, orderId, userId, side, price, qty);
    let left = qty;
    if (crossing) left = this.match(orderId, userId, side, tick, qty, stp, price);
    if (left > 0) {
      if (tif === TimeInForce.GTC || tif === TimeInForce.POST) this.rest(orderId, userId, side, tick, left, tif, stp, level);
      else this.sink.onCanceled(orderId, userId, CancelReason.Unfilled, left);
    }
    return RejectReason.None;
  }

  /** A market order: matches at any price; the unfilled rest is canceled. */
  submitMarket(
    orderId: number,
    userId: number,
    side: Side,
    qty: number,
    stp: SelfTradePrevention = SelfTradePrevention.None,
  ): RejectReason {
    const bad = this.validateOrder(orderId, userId, side, qty, stp);
    if (bad !== RejectReason.None) return this.reject(CommandKind.Market, orderId, bad);
    if (this.ids.get(orderId) !== NIL) return this.reject(CommandKind.Market, orderId, RejectReason.DuplicateOrderId);
    this.sink.onAccepted(CommandKind.Market, orderId, userId, side, 0, qty);
    const limit = side === Side.Buy ? this.span - 1 : 0;
    const left = this.match(orderId, userId, side, limit, qty, stp, 0);
    if (left > 0) this.sink.onCanceled(orderId, userId, CancelReason.Unfilled, left);
    return RejectReason.None;
  }

  /** Cancels a resting order. */
  cancel(orderId: number): RejectReason {
    if (!isId(orderId)) return this.reject(CommandKind.Cancel, orderId, RejectReason.InvalidOrderId);
    const o = this.ids.get(orderId);
    if (o === NIL) return this.reject(CommandKind.Cancel, orderId, RejectReason.UnknownOrder);
    const qty = this.oQty[o] as number;
    const user = this.oUser[o] as number;
    this.removeOrder(o);
    this.sink.onCanceled(orderId, user, CancelReason.User, qty);
    return RejectReason.None;
  }

  /** Reduces a resting order to `newQty` remaining (0 < newQty < remaining), keeping its time priority. */
  reduce(orderId: number, newQty: number): RejectReason {
    if (!isId(orderId)) return this.reject(CommandKind.Amend, orderId, RejectReason.InvalidOrderId);
    if (!isPositive(newQty)) return this.reject(CommandKind.Amend, orderId, RejectReason.InvalidQty);
    const o = this.ids.get(orderId);
    if (o === NIL) return this.reject(CommandKind.Amend, orderId, RejectReason.UnknownOrder);
    if (newQty >= (this.oQty[o] as number)) return this.reject(CommandKind.Amend, orderId, RejectReason.AmendNotReducing);
    this.reduceResting(o, newQty, AmendKind.Reduce);
    return RejectReason.None;
  }

  /**
   * Amends a resting order to `newPrice` and `newQty` remaining. A reduction at the same price keeps
   * time priority; a price change or a size increase is a cancel-replace: the order keeps its id,
   * loses its priority and is matched again at the new price like an incoming order (a post-only
   * order that would cross is refused and left as it was).
   */
  amend(orderId: number, newPrice: number, newQty: number): RejectReason {
    if (!isId(orderId)) return this.reject(CommandKind.Amend, orderId, RejectReason.InvalidOrderId);
    if (!Number.isSafeInteger(newPrice) || newPrice <= 0) return this.reject(CommandKind.Amend, orderId, RejectReason.InvalidPrice);
    if (!isPositive(newQty)) return this.reject(CommandKind.Amend, orderId, RejectReason.InvalidQty);
    if (newQty > this.maxQty) return this.reject(CommandKind.Amend, orderId, RejectReason.QtyAboveMax);
    if (newPrice < this.minPrice || newPrice > this.maxPrice) return this.reject(CommandKind.Amend, orderId, RejectReason.PriceOutOfBand);
    const o = this.ids.get(orderId);
    if (o === NIL) return this.reject(CommandKind.Amend, orderId, RejectReason.UnknownOrder);
    const level = this.oLevel[o] as number;
    const oldQty = this.oQty[o] as number;
    const tick = newPrice - this.minPrice;
    const side = this.lSide[level] as Side;
    if (tick === (this.lTick[level] as number)) {
      if (newQty === oldQty) return this.reject(CommandKind.Amend, orderId, RejectReason.AmendNoChange);
      if (newQty < oldQty) {
        this.reduceResting(o, newQty, AmendKind.Reduce);
        return RejectReason.None;
      }
      if ((this.lQty[level] as number) - oldQty + newQty > MAX_SAFE) {
        return this.reject(CommandKind.Amend, orderId, RejectReason.LevelQtyOverflow);
      }
    }
    const tif = this.oTif[o] as TimeInForce;
    const stp = this.oStp[o] as SelfTradePrevention;
    const user = this.oUser[o] as number;
    const crossing = side === Side.Buy ? this.bestAskTick !== NIL && this.bestAskTick <= tick : this.bestBidTick !== NIL && this.bestBidTick >= tick;
    if (crossing && tif === TimeInForce.POST) return this.reject(CommandKind.Amend, orderId, RejectReason.PostOnlyWouldCross);
    if (!crossing && tick !== (this.lTick[level] as number)) {
      const target = this.prices.get(tick);
      if (target !== NIL && (this.lQty[target] as number) + newQty > MAX_SAFE) {
        return this.reject(CommandKind.Amend, orderId, RejectReason.LevelQtyOverflow);
      }
    }
    this.removeOrder(o);
    this.sink.onAmended(orderId, user, side, newPrice, newQty, AmendKind.Replace);
    let left = newQty;
    if (crossing) left = this.match(orderId, user, side, tick, newQty, stp, newPrice);
    if (left > 0) this.rest(orderId, user, side, tick, left, tif, stp, NIL);
    return RejectReason.None;
  }

  // ---------------------------------------------------------------------------------------------
  // Queries.

  /** The best bid price, or null when there are no bids. */
  get bestBid(): number | null {
    return this.bestBidTick === NIL ? null : this.bestBidTick + this.minPrice;
  }

  /** The best ask price, or null when there are no asks. */
  get bestAsk(): number | null {
    return this.bestAskTick === NIL ? null : this.bestAskTick + this.minPrice;
  }

  /** Resting orders. */
  get orderCount(): number {
    return this.bidOrders + this.askOrders;
  }

  /** Resting orders on one side. */
  ordersOn(side: Side): number {
    return side === Side.Buy ? this.bidOrders : this.askOrders;
  }

  /** Price levels on one side. */
  levelsOn(side: Side): number {
    return side === Side.Buy ? this.bidLevels : this.askLevels;
  }

  /** Whether `orderId` is resting. */
  has(orderId: number): boolean {
    return isId(orderId) && this.ids.get(orderId) !== NIL;
  }

  /** The user id of the resting order `orderId`, or -1 when it is not resting. Does not allocate. */
  ownerOf(orderId: number): number {
    if (!isId(orderId)) return NIL;
    const o = this.ids.get(orderId);
    return o === NIL ? NIL : (this.oUser[o] as number);
  }

  /** The resting order `orderId`, or undefined (never seen, filled or canceled). */
  getOrder(orderId: number): OrderView | undefined {
    if (!isId(orderId)) return undefined;
    const o = this.ids.get(orderId);
    if (o === NIL) return undefined;
    const level = this.oLevel[o] as number;
    return {
      orderId,
      userId: this.oUser[o] as number,
      side: this.lSide[level] as Side,
      price: (this.lTick[level] as number) + this.minPrice,
      qty: this.oQty[o] as number,
      timeInForce: this.oTif[o] as TimeInForce,
      selfTradePrevention: this.oStp[o] as SelfTradePrevention,
    };
  }

  /** Aggregated depth: up to `maxLevels` levels of one side, best first. */
  depth(side: Side, maxLevels: number): DepthLevel[] {
    const out: DepthLevel[] = [];
    this.forEachLevel(side, maxLevels, (price, qty, orders) => {
      out.push({ price, qty, orders });
    });
    return out;
  }

  /** Visits up to `maxLevels` levels of one side, best first, without allocating. */
  forEachLevel(side: Side, maxLevels: number, visit: (price: number, qty: number, orders: number) => void): void {
    let t = side === Side.Buy ? this.bestBidTick : this.bestAskTick;
    for (let n = 0; t !== NIL && n < maxLevels; n++) {
      const level = this.prices.get(t);
      visit(t + this.minPrice, this.lQty[level] as number, this.lCount[level] as number);
      t = side === Side.Buy ? this.prices.prev(t - 1) : this.prices.next(t + 1);
    }
  }

  /** Visits every resting order of one side in priority order (best price first, then time). */
  forEachOrder(side: Side, visit: (orderId: number, userId: number, price: number, qty: number) => void): void {
    let t = side === Side.Buy ? this.bestBidTick : this.bestAskTick;
    while (t !== NIL) {
      const level = this.prices.get(t);
      const price = t + this.minPrice;
      for (let o = this.lHead[level] as number; o !== NIL; o = this.oNext[o] as number) {
        visit(this.oId[o] as number, this.oUser[o] as number, price, this.oQty[o] as number);
      }
      t = side === Side.Buy ? this.prices.prev(t - 1) : this.prices.next(t + 1);
    }
  }

  /** Checks every structural invariant; throws OrderBookError('INVARIANT_VIOLATED') on the first broken one. */
  audit(): void {
    for (const side of [Side.Buy, Side.Sell]) {
      let t = side === Side.Buy ? this.bestBidTick : this.bestAskTick;
      let levels = 0;
      let orders = 0;
      let last = NIL;
      while (t !== NIL) {
        const level = this.prices.get(t);
        if (level === NIL) fail(`no level at occupied tick ${t}`);
        if (this.lTick[level] !== t) fail(`level ${level} records tick ${this.lTick[level]}, indexed at ${t}`);
        if (this.lSide[level] !== side) fail(`level at tick ${t} is on the wrong side`);
        if (last !== NIL && (side === Side.Buy ? t >= last : t <= last)) fail(`levels out of order at tick ${t}`);
        let qty = 0;
        let count = 0;
        let prev = NIL;
        for (let o = this.lHead[level] as number; o !== NIL; o = this.oNext[o] as number) {
          if (this.oPrev[o] !== prev) fail(`broken back link at order slot ${o}`);
          if (this.oLevel[o] !== level) fail(`order slot ${o} names level ${this.oLevel[o]}, is in ${level}`);
          const q = this.oQty[o] as number;
          if (!(q > 0)) fail(`order ${this.oId[o]} rests with quantity ${q}`);
          if (this.ids.get(this.oId[o] as number) !== o) fail(`order ${this.oId[o]} is not indexed by its id`);
          qty += q;
          count++;
          prev = o;
        }
        if (this.lTail[level] !== prev) fail(`level at tick ${t} has a wrong tail`);
        if (count === 0) fail(`empty level at tick ${t}`);
        if (count !== this.lCount[level] || qty !== this.lQty[level]) fail(`level at tick ${t} miscounts its orders or quantity`);
        levels++;
        orders += count;
        last = t;
        t = side === Side.Buy ? this.prices.prev(t - 1) : this.prices.next(t + 1);
      }
      if (levels !== this.levelsOn(side) || orders !== this.ordersOn(side)) fail(`side ${side} miscounts its levels or orders`);
    }
    if (this.bestBidTick !== NIL && this.bestAskTick !== NIL && this.bestBidTick >= this.bestAskTick) {
      fail(`crossed book: bid ${this.bestBid} >= ask ${this.bestAsk}`);
    }
    let indexed = 0;
    for (let t = this.prices.next(0); t !== NIL; t = this.prices.next(t + 1)) indexed++;
    if (indexed !== this.bidLevels + this.askLevels) fail(`${indexed} ticks indexed for ${this.bidLevels + this.askLevels} levels`);
    if (this.oCap - this.oFreeTop !== this.orderCount) fail('order slots leaked');
    if (this.lCap - this.lFreeTop !== this.bidLevels + this.askLevels) fail('level slots leaked');
  }

  // ---------------------------------------------------------------------------------------------
  // Internals.

  private validateOrder(orderId: number, userId: number, side: Side, qty: number, stp: SelfTradePrevention): RejectReason {
    if (!isId(orderId)) return RejectReason.InvalidOrderId;
    if (!Number.isSafeInteger(userId) || userId < 0) return RejectReason.InvalidUserId;
    if (side !== Side.Buy && side !== Side.Sell) return RejectReason.InvalidSide;
    if (!isPositive(qty)) return RejectReason.InvalidQty;
    if (qty > this.maxQty) return RejectReason.QtyAboveMax;
    if (!(Number.isInteger(stp) && stp >= 0 && stp <= 4)) return RejectReason.InvalidSelfTradePrevention;
    return RejectReason.None;
  }

  private reject(kind: CommandKind, orderId: number, reason: RejectReason): RejectReason {
    this.sink.onRejected(kind, orderId, reason);
    return reason;
  }

  /**
   * Matches an incoming order against the opposite side while the best opposite price is within
   * `limitTick`. Returns the unfilled quantity (0 when self-trade prevention canceled the taker).
   */
  private match(
    takerId: number,
    takerUser: number,
    side: Side,
    limitTick: number,
    qty: number,
    stp: SelfTradePrevention,
    takerPrice: number,
  ): number {
    const buy = side === Side.Buy;
    const sink = this.sink;
    const oQty = this.oQty;
    const oUser = this.oUser;
    const oNext = this.oNext;
    const minPrice = this.minPrice;
    while (qty > 0) {
      const t = buy ? this.bestAskTick : this.bestBidTick;
      if (t === NIL || (buy ? t > limitTick : t < limitTick)) break;
      const level = this.prices.get(t);
      const price = t + minPrice;
      let o = this.lHead[level] as number;
      while (o !== NIL && qty > 0) {
        const next = oNext[o] as number;
        const makerUser = oUser[o] as number;
        const mq = oQty[o] as number;
        if (stp !== SelfTradePrevention.None && makerUser === takerUser) {
          // Self-trade prevention: no trade between the two.
          if (stp === SelfTradePrevention.CancelNewest) {
            sink.onCanceled(takerId, takerUser, CancelReason.SelfTrade, qty);
            return 0;
          }
          if (stp === SelfTradePrevention.DecrementCancel) {
            const d = mq < qty ? mq : qty;
            qty -= d;
            if (mq === d) {
              this.cancelResting(o, CancelReason.SelfTrade);
            } else {
              this.reduceResting(o, mq - d, AmendKind.SelfTradeDecrement);
            }
            if (qty === 0) {
              sink.onCanceled(takerId, takerUser, CancelReason.SelfTrade, d);
              return 0;
            }
            sink.onAmended(takerId, takerUser, side, takerPrice, qty, AmendKind.SelfTradeDecrement);
            o = next;
            continue;
          }
          // CancelOldest and CancelBoth cancel the resting order.
          const last = next === NIL;
          this.cancelResting(o, CancelReason.SelfTrade);
          if (stp === SelfTradePrevention.CancelBoth) {
            sink.onCanceled(takerId, takerUser, CancelReason.SelfTrade, qty);
            return 0;
          }
          if (last) break; // the level is gone with its last order
          o = next;
          continue;
        }
        const fill = mq < qty ? mq : qty;
        const rest = mq - fill;
        qty -= fill;
        oQty[o] = rest;
        this.lQty[level] = (this.lQty[level] as number) - fill;
        sink.onTrade(this.oId[o] as number, takerId, makerUser, takerUser, side, price, fill, rest);
        if (rest === 0) this.removeOrder(o);
        o = next;
      }
    }
    return qty;
  }

  /** Whether a fill-or-kill order could be filled completely right now. */
  private canFill(takerUser: number, side: Side, limitTick: number, qty: number, stp: SelfTradePrevention): boolean {
    const buy = side === Side.Buy;
    let t = buy ? this.bestAskTick : this.bestBidTick;
    let need = qty;
    while (t !== NIL && (buy ? t <= limitTick : t >= limitTick)) {
      const level = this.prices.get(t);
      if (stp === SelfTradePrevention.None) {
        need -= this.lQty[level] as number;
        if (need <= 0) return true;
      } else {
        for (let o = this.lHead[level] as number; o !== NIL; o = this.oNext[o] as number) {
          if (this.oUser[o] === takerUser) {
            // Cancel-oldest removes the resting order and goes on; every other mode stops the fill here.
            if (stp === SelfTradePrevention.CancelOldest) continue;
            return false;
          }
          need -= this.oQty[o] as number;
          if (need <= 0) return true;
        }
      }
      t = buy ? this.prices.next(t + 1) : this.prices.prev(t - 1);
    }
    return false;
  }

  /** Appends a new order to the level at `tick` (creating the level if `level` is NIL). */
  private rest(
    orderId: number,
    userId: number,
    side: Side,
    tick: number,
    qty: number,
    tif: TimeInForce,
    stp: SelfTradePrevention,
    level: number,
  ): void {
    if (level === NIL) {
      level = this.prices.get(tick);
      if (level === NIL) level = this.openLevel(side, tick);
    }
    if (this.oFreeTop === 0) this.growOrders(this.oCap * 2);
    const o = this.oFree[--this.oFreeTop] as number;
    this.oId[o] = orderId;
    this.oUser[o] = userId;
    this.oQty[o] = qty;
    this.oLevel[o] = level;
    this.oTif[o] = tif;
    this.oStp[o] = stp;
    const tail = this.lTail[level] as number;
    this.oPrev[o] = tail;
    this.oNext[o] = NIL;
    if (tail === NIL) this.lHead[level] = o;
    else this.oNext[tail] = o;
    this.lTail[level] = o;
    this.lQty[level] = (this.lQty[level] as number) + qty;
    this.lCount[level] = (this.lCount[level] as number) + 1;
    if (side === Side.Buy) this.bidOrders++;
    else this.askOrders++;
    this.ids.set(orderId, o);
    this.sink.onAdded(orderId, userId, side, tick + this.minPrice, qty);
  }

  private openLevel(side: Side, tick: number): number {
    if (this.lFreeTop === 0) this.growLevels(this.lCap * 2);
    const level = this.lFree[--this.lFreeTop] as number;
    this.lHead[level] = NIL;
    this.lTail[level] = NIL;
    this.lQty[level] = 0;
    this.lCount[level] = 0;
    this.lTick[level] = tick;
    this.lSide[level] = side;
    this.prices.insert(tick, level);
    if (side === Side.Buy) {
      this.bidLevels++;
      if (this.bestBidTick === NIL || tick > this.bestBidTick) this.bestBidTick = tick;
    } else {
      this.askLevels++;
      if (this.bestAskTick === NIL || tick < this.bestAskTick) this.bestAskTick = tick;
    }
    return level;
  }

  /** Unlinks a resting order, frees its slot, and closes its level when it was the last order. */
  private removeOrder(o: number): void {
    const level = this.oLevel[o] as number;
    const prev = this.oPrev[o] as number;
    const next = this.oNext[o] as number;
    if (prev === NIL) this.lHead[level] = next;
    else this.oNext[prev] = next;
    if (next === NIL) this.lTail[level] = prev;
    else this.oPrev[next] = prev;
    this.lQty[level] = (this.lQty[level] as number) - (this.oQty[o] as number);
    const count = (this.lCount[level] as number) - 1;
    this.lCount[level] = count;
    const side = this.lSide[level] as Side;
    if (side === Side.Buy) this.bidOrders--;
    else this.askOrders--;
    this.ids.delete(this.oId[o] as number);
    this.oQty[o] = 0;
    this.oFree[this.oFreeTop++] = o;
    if (count === 0) this.closeLevel(level, side);
  }

  private closeLevel(level: number, side: Side): void {
    const tick = this.lTick[level] as number;
    this.prices.remove(tick);
    this.lFree[this.lFreeTop++] = level;
    if (side === Side.Buy) {
      this.bidLevels--;
      if (tick === this.bestBidTick) this.bestBidTick = this.bidLevels === 0 ? NIL : this.prices.prev(tick - 1);
    } else {
      this.askLevels--;
      if (tick === this.bestAskTick) this.bestAskTick = this.askLevels === 0 ? NIL : this.prices.next(tick + 1);
    }
  }

  private cancelResting(o: number, reason: CancelReason): void {
    const orderId = this.oId[o] as number;
    const user = this.oUser[o] as number;
    const qty = this.oQty[o] as number;
    this.removeOrder(o);
    this.sink.onCanceled(orderId, user, reason, qty);
  }

  private reduceResting(o: number, newQty: number, kind: AmendKind): void {
    const level = this.oLevel[o] as number;
    this.lQty[level] = (this.lQty[level] as number) - ((this.oQty[o] as number) - newQty);
    this.oQty[o] = newQty;
    this.sink.onAmended(
      this.oId[o] as number,
      this.oUser[o] as number,
      this.lSide[level] as Side,
      (this.lTick[level] as number) + this.minPrice,
      newQty,
      kind,
    );
  }

  // Pools grow by doubling; fresh typed arrays are filled once so that their pages are faulted in
  // here, not on the hot path.
  private growOrders(cap: number): void {
    const old = this.oCap;
    this.oId = grownF64(this.oId, cap);
    this.oUser = grownF64(this.oUser, cap);
    this.oQty = grownF64(this.oQty, cap);
    this.oLevel = grownI32(this.oLevel, cap);
    this.oPrev = grownI32(this.oPrev, cap);
    this.oNext = grownI32(this.oNext, cap);
    this.oTif = grownU8(this.oTif, cap);
    this.oStp = grownU8(this.oStp, cap);
    const free = new Int32Array(cap);
    free.set(this.oFree.subarray(0, this.oFreeTop));
    let top = this.oFreeTop;
    for (let o = cap - 1; o >= old; o--) free[top++] = o;
    this.oFree = free;
    this.oFreeTop = top;
    this.oCap = cap;
  }

  private growLevels(cap: number): void {
    const old = this.lCap;
    this.lHead = grownI32(this.lHead, cap);
    this.lTail = grownI32(this.lTail, cap);
    this.lQty = grownF64(this.lQty, cap);
    this.lCount = grownI32(this.lCount, cap);
    this.lTick = grownI32(this.lTick, cap);
    this.lSide = grownU8(this.lSide, cap);
    const free = new Int32Array(cap);
    free.set(this.lFree.subarray(0, this.lFreeTop));
    let top = this.lFreeTop;
    for (let l = cap - 1; l >= old; l--) free[top++] = l;
    this.lFree = free;
    this.lFreeTop = top;
    this.lCap = cap;
  }
}

function grownF64(a: Float64Array<ArrayBuffer>, cap: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(cap).fill(0);
  b.set(a);
  return b;
}

function grownI32(a: Int32Array<ArrayBuffer>, cap: number): Int32Array<ArrayBuffer> {
  const b = new Int32Array(cap).fill(0);
  b.set(a);
  return b;
}

function grownU8(a: Uint8Array<ArrayBuffer>, cap: number): Uint8Array<ArrayBuffer> {
  const b = new Uint8Array(cap).fill(0);
  b.set(a);
  return b;
}

const SINK_METHODS = ['onAccepted', 'onRejected', 'onAdded', 'onTrade', 'onCanceled', 'onAmended'] as const;

/** A sink must have every method: one missing would throw a TypeError from the middle of a command. */
function checkSink(sink: unknown): void {
  const missing = typeof sink === 'object' && sink !== null ? SINK_METHODS.filter((m) => typeof (sink as Record<string, unknown>)[m] !== 'function') : SINK_METHODS;
  if (missing.length > 0) throw new OrderBookError('INVALID_OPTIONS', `OrderBook sink must be an object with the methods ${SINK_METHODS.join(', ')}; missing: ${missing.join(', ')}`);
}

function invalid(option: string, expected: string, got: unknown): OrderBookError {
  return new OrderBookError('INVALID_OPTIONS', `OrderBook option ${option} must be ${expected}, got ${String(got)}`);
}

function fail(message: string): never {
  throw new OrderBookError('INVARIANT_VIOLATED', message);
}
