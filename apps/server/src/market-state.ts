// What the gateway knows of one symbol's market, kept from the engine's durable events (never
// from state that is not durable yet): the orders (live ones, and the latest terminal ones), the
// aggregated price levels of the book (L2) with a sequence number per change, and the recent trades.
// At start it is seeded from the recovered book and the tail of the outbox.

import type { DecodedMessage, Event, OrderType, Side, TimeInForce } from '@gx3/codecs';

export type OrderStatus = 'new' | 'open' | 'partially_filled' | 'filled' | 'canceled' | 'rejected';

export interface OrderState {
  orderId: number;
  symbol: string;
  userId: number;
  side: Side;
  type: OrderType;
  tif: TimeInForce;
  /** The limit price (0 for a market order). */
  price: number;
  /** The quantity ordered (after amendments). */
  qty: number;
  filledQty: number;
  remainingQty: number;
  status: OrderStatus;
  /** Why it was rejected or canceled, if it was. */
  reason: string | undefined;
  clientOrderId: string | undefined;
  /** Whether it rests in the book. */
  resting: boolean;
  /** Event time of the last change, in microseconds since the epoch. */
  updatedAt: number;
}

export interface PublicTrade {
  /** The trade's event sequence number: unique per symbol, increasing. */
  id: number;
  symbol: string;
  price: number;
  qty: number;
  takerSide: Side;
  ts: number;
}

/** Changed levels since the last update: price → new quantity (0: the level is gone). */
export interface L2Changes {
  bids: Map<number, number>;
  asks: Map<number, number>;
}

/** Price levels of one side, kept sorted best first. */
class Levels {
  private readonly qty = new Map<number, number>();
  private readonly prices: number[] = [];
  constructor(private readonly descending: boolean) {}

  add(price: number, delta: number): number {
    const q = (this.qty.get(price) ?? 0) + delta;
    if (q > 0) {
      if (!this.qty.has(price)) this.prices.splice(this.indexOf(price), 0, price);
      this.qty.set(price, q);
      return q;
    }
    if (this.qty.delete(price)) this.prices.splice(this.indexOf(price), 1);
    return 0;
  }

  /** The best `n` levels as [price, qty] pairs. */
  top(n: number): [number, number][] {
    const out: [number, number][] = [];
    for (let i = 0; i < this.prices.length && i < n; i++) {
      const p = this.prices[i] as number;
      out.push([p, this.qty.get(p) as number]);
    }
    return out;
  }

  get size(): number {
    return this.prices.length;
  }

  /** Where `price` is or would go (binary search). */
  private indexOf(price: number): number {
    let lo = 0;
    let hi = this.prices.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const p = this.prices[mid] as number;
      if (this.descending ? p > price : p < price) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

export interface MarketStateOptions {
  readonly recentTrades: number;
  readonly orderHistory: number;
}

export class MarketState {
  /** Event sequence number of the last event applied. */
  lastEventSeq = 0;
  /** Sequence number of the L2 book: increases by one with each update that changes a level. */
  l2Seq = 0;

  private readonly orders = new Map<number, OrderState>();
  /** Terminal orders in the order they ended, a ring of `orderHistory` ids (0: empty slot). */
  private terminal: Float64Array;
  private terminalHead = 0;
  /** Ended orders pushed out of the ring, forgotten by the next `forgetPushedOut()`. */
  private pushedOut: number[] = [];
  private readonly bids = new Levels(true);
  private readonly asks = new Levels(false);
  private readonly trades: PublicTrade[] = [];
  private tradeHead = 0;
  private changes: L2Changes = { bids: new Map(), asks: new Map() };

  constructor(
    readonly symbol: string,
    private readonly options: MarketStateOptions,
  ) {
    // Grown as orders end, up to orderHistory: a large history costs memory only once it fills.
    this.terminal = new Float64Array(Math.min(options.orderHistory, INITIAL_HISTORY));
  }

  /** Seeds a live order from the recovered book (its history, if any, came from `apply(e, false)` before). */
  seedResting(orderId: number, userId: number, side: Side, price: number, remaining: number, tif: TimeInForce): void {
    const known = this.orders.get(orderId);
    const o: OrderState = known ?? {
      orderId,
      symbol: this.symbol,
      userId,
      side,
      type: 'limit',
      tif,
      price,
      qty: remaining,
      filledQty: 0,
      remainingQty: remaining,
      status: 'open',
      resting: true,
      updatedAt: 0,
      reason: undefined,
      clientOrderId: undefined,
    };
    o.price = price;
    o.remainingQty = remaining;
    o.qty = Math.max(o.qty, o.filledQty + remaining);
    o.resting = true;
    o.status = o.filledQty > 0 ? 'partially_filled' : 'open';
    this.orders.set(orderId, o);
    (side === 'buy' ? this.bids : this.asks).add(price, remaining);
  }

  /** Forgets orders that the tail of the outbox showed as live but the recovered book does not hold (seeding only). */
  dropUnseededLive(live: ReadonlySet<number>): void {
    for (const [id, o] of this.orders) {
      if ((o.status === 'open' || o.status === 'partially_filled' || o.status === 'new') && !live.has(id)) this.orders.delete(id);
    }
  }

  getOrder(orderId: number): OrderState | undefined {
    return this.orders.get(orderId);
  }

  /** The best `depth` levels of each side. */
  book(depth: number): { bids: [number, number][]; asks: [number, number][] } {
    return { bids: this.bids.top(depth), asks: this.asks.top(depth) };
  }

  get levelCount(): number {
    return this.bids.size + this.asks.size;
  }

  /** The latest `limit` trades, newest first. */
  recentTrades(limit: number): PublicTrade[] {
    const out: PublicTrade[] = [];
    const n = this.trades.length;
    for (let k = 1; k <= n && out.length < limit; k++) out.push(this.trades[(this.tradeHead - k + n) % n] as PublicTrade);
    return out;
  }

  /** The levels changed since the last call (and clears them). */
  takeChanges(): L2Changes | undefined {
    if (this.changes.bids.size === 0 && this.changes.asks.size === 0) return undefined;
    const c = this.changes;
    this.changes = { bids: new Map(), asks: new Map() };
    this.l2Seq++;
    return c;
  }

  /**
   * Applies one durable event (a plain event, or a record decoded in place); adds the orders it
   * changed to `touched` (none for events that change none, such as a rejected cancel). With
   * `levels` false (seeding from the outbox's tail, whose book effects the recovered book already
   * holds), the L2 levels are left alone.
   */
  apply(e: Event | DecodedMessage, levels = true, touched?: Set<OrderState>): void {
    this.lastEventSeq = e.eventSeq;
    switch (e.type) {
      case 'accepted': {
        const o: OrderState = {
          orderId: e.orderId,
          symbol: this.symbol,
          userId: e.userId,
          side: e.side,
          type: e.orderType,
          tif: e.tif,
          price: e.price,
          qty: e.qty,
          filledQty: 0,
          remainingQty: e.qty,
          status: 'new',
          resting: false,
          updatedAt: e.ts,
          reason: undefined,
          clientOrderId: e.clientOrderId,
        };
        this.orders.set(e.orderId, o);
        touched?.add(o);
        return;
      }
      case 'rejected': {
        if (e.commandType !== 'limit' && e.commandType !== 'market') return;
        if (this.orders.get(e.orderId)?.resting === true) return; // a duplicate id: the live order is unchanged
        // The rejection carries what the order asked for (events logged before it did: unknown, shown as zeros).
        const o: OrderState = {
          orderId: e.orderId,
          symbol: this.symbol,
          userId: e.userId,
          side: e.side ?? 'buy',
          type: e.commandType,
          tif: e.tif ?? 'GTC',
          price: e.price ?? 0,
          qty: e.qty ?? 0,
          filledQty: 0,
          remainingQty: 0,
          status: 'rejected',
          resting: false,
          updatedAt: e.ts,
          reason: e.reason,
          clientOrderId: e.clientOrderId,
        };
        this.orders.set(e.orderId, o);
        this.finish(o);
        touched?.add(o);
        return;
      }
      case 'added': {
        const o = this.orderOf(e.orderId, e.userId, e.side, e.price, e.qty, e.ts);
        o.resting = true;
        o.price = e.price;
        o.remainingQty = e.qty;
        o.status = o.filledQty > 0 ? 'partially_filled' : 'open';
        o.updatedAt = e.ts;
        if (levels) this.level(e.side, e.price, e.qty);
        touched?.add(o);
        return;
      }
      case 'trade': {
        this.pushTrade({ id: e.eventSeq, symbol: this.symbol, price: e.price, qty: e.qty, takerSide: e.takerSide, ts: e.ts });
        const makerSide: Side = e.takerSide === 'buy' ? 'sell' : 'buy';
        const maker = this.orderOf(e.makerOrderId, e.makerUserId, makerSide, e.price, e.makerRemaining + e.qty, e.ts);
        maker.filledQty += e.qty;
        maker.remainingQty = e.makerRemaining;
        maker.updatedAt = e.ts;
        if (levels) this.level(makerSide, e.price, -e.qty);
        if (e.makerRemaining === 0) {
          maker.resting = false;
          maker.status = 'filled';
          this.finish(maker);
        } else {
          maker.status = 'partially_filled';
        }
        const taker = this.orderOf(e.takerOrderId, e.takerUserId, e.takerSide, 0, e.qty, e.ts);
        taker.filledQty += e.qty;
        taker.remainingQty = Math.max(0, taker.remainingQty - e.qty);
        taker.updatedAt = e.ts;
        if (taker.remainingQty === 0) {
          taker.status = 'filled';
          this.finish(taker);
        } else {
          taker.status = 'partially_filled';
        }
        touched?.add(maker);
        touched?.add(taker);
        return;
      }
      case 'canceled': {
        const o = this.orders.get(e.orderId);
        if (o === undefined) return;
        if (o.resting && levels) this.level(o.side, o.price, -e.qty);
        o.resting = false;
        o.remainingQty = 0;
        o.status = 'canceled';
        o.reason = e.reason;
        o.updatedAt = e.ts;
        this.finish(o);
        touched?.add(o);
        return;
      }
      case 'amended': {
        const o = this.orders.get(e.orderId);
        if (o === undefined) return;
        if (e.kind === 'REPLACE') {
          if (o.resting && levels) this.level(o.side, o.price, -o.remainingQty);
          o.resting = false;
          o.price = e.price;
          o.qty = o.filledQty + e.qty;
          o.remainingQty = e.qty;
        } else {
          if (o.resting && levels) this.level(o.side, o.price, e.qty - o.remainingQty);
          o.qty -= o.remainingQty - e.qty;
          o.remainingQty = e.qty;
        }
        o.updatedAt = e.ts;
        touched?.add(o);
        return;
      }
      default:
        return;
    }
  }

  private orderOf(orderId: number, userId: number, side: Side, price: number, qty: number, ts: number): OrderState {
    let o = this.orders.get(orderId);
    if (o === undefined) {
      // Seen first in the middle of its life (seeding from the outbox's tail).
      o = { orderId, symbol: this.symbol, userId, side, type: 'limit', tif: 'GTC', price, qty, filledQty: 0, remainingQty: qty, status: 'open', resting: false, updatedAt: ts, reason: undefined, clientOrderId: undefined };
      this.orders.set(orderId, o);
    }
    return o;
  }

  private level(side: Side, price: number, delta: number): void {
    const q = side === 'buy' ? this.bids.add(price, delta) : this.asks.add(price, delta);
    (side === 'buy' ? this.changes.bids : this.changes.asks).set(price, q);
  }

  private pushTrade(t: PublicTrade): void {
    if (this.trades.length < this.options.recentTrades) {
      this.trades.push(t);
      this.tradeHead = this.trades.length % this.options.recentTrades;
      return;
    }
    this.trades[this.tradeHead] = t;
    this.tradeHead = (this.tradeHead + 1) % this.options.recentTrades;
  }

  /**
   * Forgets the ended orders pushed out of the history since the last call. The feed calls it before
   * applying more events, not while applying them: the answers of the commands just made durable
   * read their orders after the whole update, which may have ended more than `orderHistory` orders.
   */
  forgetPushedOut(): void {
    for (const id of this.pushedOut) {
      const old = this.orders.get(id);
      if (old !== undefined && isTerminal(old)) this.orders.delete(id);
    }
    this.pushedOut = [];
  }

  /** A terminal order is kept for queries until `orderHistory` orders that ended later push it out. */
  private finish(o: OrderState): void {
    if (this.terminalHead === this.terminal.length) {
      // Full at this size for the first time: grown while below orderHistory (the ids keep their
      // places, the oldest first), else the ring goes round and overwrites its oldest.
      if (this.terminal.length < this.options.orderHistory) {
        const grown = new Float64Array(Math.min(this.options.orderHistory, this.terminal.length * 2));
        grown.set(this.terminal);
        this.terminal = grown;
      } else {
        this.terminalHead = 0;
      }
    }
    const oldest = this.terminal[this.terminalHead] as number;
    if (oldest !== 0 && oldest !== o.orderId) this.pushedOut.push(oldest);
    this.terminal[this.terminalHead] = o.orderId;
    this.terminalHead++;
  }
}

/** The order history's first size (ids of ended orders); it doubles as needed up to `orderHistory`. */
const INITIAL_HISTORY = 4096;

function isTerminal(o: OrderState): boolean {
  return o.status === 'filled' || o.status === 'canceled' || o.status === 'rejected';
}
