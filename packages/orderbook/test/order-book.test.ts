// The order book's rules, one by one, through its public API and the events it emits.
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
const ALICE = 1;
const BOB = 2;

function setup(options: OrderBookOptions = {}): { book: OrderBook; rec: EventRecorder } {
  const rec = new EventRecorder();
  const book = new OrderBook({ minPrice: 1, maxPrice: 1_000_000, ...options }, rec);
  return { book, rec };
}

/** Every resting order, both sides, in priority order. */
function snapshot(book: OrderBook): string[] {
  const out: string[] = [];
  for (const side of [Buy, Sell]) {
    book.forEachOrder(side, (id, user, price, qty) => out.push(`${side === Buy ? 'B' : 'S'} ${price} #${id} u${user} q${qty}`));
  }
  return out;
}

const accepted = (orderId: number, userId: number, side: Side, price: number, qty: number, kind: CommandKind = CommandKind.Limit): BookEvent => ({
  type: 'accepted',
  kind,
  orderId,
  userId,
  side,
  price,
  qty,
});
const added = (orderId: number, userId: number, side: Side, price: number, qty: number): BookEvent => ({ type: 'added', orderId, userId, side, price, qty });
const trade = (
  makerId: number,
  takerId: number,
  makerUserId: number,
  takerUserId: number,
  takerSide: Side,
  price: number,
  qty: number,
  makerRemaining: number,
): BookEvent => ({ type: 'trade', makerId, takerId, makerUserId, takerUserId, takerSide, price, qty, makerRemaining });
const canceled = (orderId: number, userId: number, reason: CancelReason, qty: number): BookEvent => ({ type: 'canceled', orderId, userId, reason, qty });
const rejected = (kind: CommandKind, orderId: number, reason: RejectReason): BookEvent => ({ type: 'rejected', kind, orderId, reason });
const amended = (orderId: number, userId: number, side: Side, price: number, qty: number, kind: AmendKind): BookEvent => ({
  type: 'amended',
  orderId,
  userId,
  side,
  price,
  qty,
  kind,
});

describe('construction', () => {
  it.each<[string, OrderBookOptions]>([
    ['minPrice 0', { minPrice: 0 }],
    ['fractional minPrice', { minPrice: 1.5 }],
    ['maxPrice below minPrice', { minPrice: 10, maxPrice: 9 }],
    ['a band over 2^31 ticks', { minPrice: 1, maxPrice: 2 ** 31 + 1 }],
    ['maxQty 0', { maxQty: 0 }],
    ['unsafe maxQty', { maxQty: 2 ** 53 }],
    ['initialOrders 0', { initialOrders: 0 }],
    ['initialLevels NaN', { initialLevels: Number.NaN }],
    ['idWindow not a power of two', { idWindow: 1000 }],
  ])('refuses %s with a typed error', (_name, options) => {
    let err: unknown;
    try {
      new OrderBook(options);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OrderBookError);
    expect((err as OrderBookError).code).toBe('INVALID_OPTIONS');
    expect((err as OrderBookError).message).toMatch(/OrderBook option \w+ must be/);
  });

  it('starts empty', () => {
    const { book } = setup();
    expect(book.bestBid).toBeNull();
    expect(book.bestAsk).toBeNull();
    expect(book.orderCount).toBe(0);
    expect(book.depth(Buy, 10)).toEqual([]);
    book.audit();
  });
});

describe('limit orders and price-time priority', () => {
  it('rests a non-crossing order and reports accepted then added', () => {
    const { book, rec } = setup();
    expect(book.submitLimit(1, ALICE, Buy, 100, 5)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([accepted(1, ALICE, Buy, 100, 5), added(1, ALICE, Buy, 100, 5)]);
    expect(book.bestBid).toBe(100);
    expect(book.getOrder(1)).toEqual({ orderId: 1, userId: ALICE, side: Buy, price: 100, qty: 5, timeInForce: TIF.GTC, selfTradePrevention: STP.None });
  });

  it('fills the best price first, then the earliest order at a price, at the maker price', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Sell, 101, 5);
    book.submitLimit(2, ALICE, Sell, 100, 5);
    book.submitLimit(3, ALICE, Sell, 100, 5);
    book.submitLimit(4, ALICE, Sell, 102, 5);
    rec.take();
    book.submitLimit(10, BOB, Buy, 101, 12);
    expect(rec.take()).toEqual([
      accepted(10, BOB, Buy, 101, 12),
      trade(2, 10, ALICE, BOB, Buy, 100, 5, 0),
      trade(3, 10, ALICE, BOB, Buy, 100, 5, 0),
      trade(1, 10, ALICE, BOB, Buy, 101, 2, 3),
    ]);
    expect(book.bestAsk).toBe(101);
    expect(book.getOrder(1)?.qty).toBe(3);
    expect(book.has(2)).toBe(false);
    expect(snapshot(book)).toEqual(['S 101 #1 u1 q3', 'S 102 #4 u1 q5']);
    book.audit();
  });

  it('rests the unfilled rest of a crossing GTC order at its limit', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 3);
    rec.take();
    book.submitLimit(2, BOB, Sell, 99, 10);
    expect(rec.take()).toEqual([accepted(2, BOB, Sell, 99, 10), trade(1, 2, ALICE, BOB, Sell, 100, 3, 0), added(2, BOB, Sell, 99, 7)]);
    expect(book.bestBid).toBeNull();
    expect(book.bestAsk).toBe(99);
    book.audit();
  });

  it('does not trade through its limit', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Sell, 105, 3);
    rec.take();
    book.submitLimit(2, BOB, Buy, 104, 3);
    expect(rec.take()).toEqual([accepted(2, BOB, Buy, 104, 3), added(2, BOB, Buy, 104, 3)]);
    expect(book.depth(Buy, 5)).toEqual([{ price: 104, qty: 3, orders: 1 }]);
    expect(book.depth(Sell, 5)).toEqual([{ price: 105, qty: 3, orders: 1 }]);
  });

  it('aggregates depth per level, best first, and counts levels and orders', () => {
    const { book } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 1);
    book.submitLimit(2, ALICE, Buy, 100, 2);
    book.submitLimit(3, ALICE, Buy, 98, 4);
    book.submitLimit(4, ALICE, Buy, 99, 8);
    book.submitLimit(5, ALICE, Sell, 103, 16);
    expect(book.depth(Buy, 2)).toEqual([
      { price: 100, qty: 3, orders: 2 },
      { price: 99, qty: 8, orders: 1 },
    ]);
    expect(book.depth(Buy, 10)).toHaveLength(3);
    expect(book.levelsOn(Buy)).toBe(3);
    expect(book.ordersOn(Buy)).toBe(4);
    expect(book.levelsOn(Sell)).toBe(1);
    expect(book.orderCount).toBe(5);
  });

  it('rejects a duplicate live id, and accepts the id again once the order is gone', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 5);
    rec.take();
    expect(book.submitLimit(1, ALICE, Buy, 90, 5)).toBe(RejectReason.DuplicateOrderId);
    expect(book.submitMarket(1, BOB, Sell, 1)).toBe(RejectReason.DuplicateOrderId);
    expect(rec.take()).toEqual([rejected(CommandKind.Limit, 1, RejectReason.DuplicateOrderId), rejected(CommandKind.Market, 1, RejectReason.DuplicateOrderId)]);
    book.cancel(1);
    expect(book.submitLimit(1, ALICE, Buy, 90, 5)).toBe(RejectReason.None);
  });
});

describe('time in force', () => {
  it('IOC: trades what it can and cancels the rest', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Sell, 100, 4);
    rec.take();
    book.submitLimit(2, BOB, Buy, 100, 10, TIF.IOC);
    expect(rec.take()).toEqual([accepted(2, BOB, Buy, 100, 10), trade(1, 2, ALICE, BOB, Buy, 100, 4, 0), canceled(2, BOB, CancelReason.Unfilled, 6)]);
    expect(book.orderCount).toBe(0);
  });

  it('IOC that crosses nothing is accepted and canceled whole', () => {
    const { book, rec } = setup();
    book.submitLimit(2, BOB, Buy, 100, 10, TIF.IOC);
    expect(rec.take()).toEqual([accepted(2, BOB, Buy, 100, 10), canceled(2, BOB, CancelReason.Unfilled, 10)]);
  });

  it('FOK: fills completely across levels or is rejected with nothing traded', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Sell, 100, 4);
    book.submitLimit(2, ALICE, Sell, 101, 4);
    book.submitLimit(3, ALICE, Sell, 102, 4);
    rec.take();
    expect(book.submitLimit(10, BOB, Buy, 101, 9, TIF.FOK)).toBe(RejectReason.FokNotFillable);
    expect(rec.take()).toEqual([rejected(CommandKind.Limit, 10, RejectReason.FokNotFillable)]);
    expect(book.depth(Sell, 5)).toHaveLength(3);
    expect(book.submitLimit(11, BOB, Buy, 101, 8, TIF.FOK)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([accepted(11, BOB, Buy, 101, 8), trade(1, 11, ALICE, BOB, Buy, 100, 4, 0), trade(2, 11, ALICE, BOB, Buy, 101, 4, 0)]);
    expect(book.submitLimit(12, BOB, Buy, 99, 1, TIF.FOK)).toBe(RejectReason.FokNotFillable);
    book.audit();
  });

  it('POST: rejected if it would match on arrival, rests otherwise', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Sell, 100, 4);
    rec.take();
    expect(book.submitLimit(2, BOB, Buy, 100, 1, TIF.POST)).toBe(RejectReason.PostOnlyWouldCross);
    expect(rec.take()).toEqual([rejected(CommandKind.Limit, 2, RejectReason.PostOnlyWouldCross)]);
    expect(book.submitLimit(3, BOB, Buy, 99, 1, TIF.POST)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([accepted(3, BOB, Buy, 99, 1), added(3, BOB, Buy, 99, 1)]);
    expect(book.getOrder(3)?.timeInForce).toBe(TIF.POST);
  });
});

describe('market orders', () => {
  it('sweep every price and cancel what no liquidity fills', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 2);
    book.submitLimit(2, ALICE, Buy, 1, 2);
    rec.take();
    expect(book.submitMarket(3, BOB, Sell, 5)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([
      accepted(3, BOB, Sell, 0, 5, CommandKind.Market),
      trade(1, 3, ALICE, BOB, Sell, 100, 2, 0),
      trade(2, 3, ALICE, BOB, Sell, 1, 2, 0),
      canceled(3, BOB, CancelReason.Unfilled, 1),
    ]);
    expect(book.orderCount).toBe(0);
  });

  it('on an empty book is accepted and canceled', () => {
    const { book, rec } = setup();
    book.submitMarket(3, BOB, Buy, 5);
    expect(rec.take()).toEqual([accepted(3, BOB, Buy, 0, 5, CommandKind.Market), canceled(3, BOB, CancelReason.Unfilled, 5)]);
  });
});

describe('cancel', () => {
  it('removes a resting order from the middle of its level', () => {
    const { book, rec } = setup();
    for (let id = 1; id <= 3; id++) book.submitLimit(id, ALICE, Buy, 100, id);
    rec.take();
    expect(book.cancel(2)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([canceled(2, ALICE, CancelReason.User, 2)]);
    expect(snapshot(book)).toEqual(['B 100 #1 u1 q1', 'B 100 #3 u1 q3']);
    expect(book.depth(Buy, 1)).toEqual([{ price: 100, qty: 4, orders: 2 }]);
    book.audit();
  });

  it('moves the best price to the next level when the best level empties', () => {
    const { book } = setup({ maxPrice: 1_000_000_000 });
    book.submitLimit(1, ALICE, Buy, 999_000_000, 1);
    book.submitLimit(2, ALICE, Buy, 7, 1);
    book.submitLimit(3, ALICE, Sell, 999_999_999, 1);
    book.submitLimit(4, ALICE, Sell, 1_000_000_000, 1);
    book.cancel(1);
    expect(book.bestBid).toBe(7);
    book.cancel(3);
    expect(book.bestAsk).toBe(1_000_000_000);
    book.cancel(2);
    book.cancel(4);
    expect(book.bestBid).toBeNull();
    expect(book.bestAsk).toBeNull();
    book.audit();
  });

  it('rejects an unknown, filled or already canceled id and changes nothing', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 1);
    book.submitLimit(2, ALICE, Buy, 100, 1);
    book.submitLimit(3, BOB, Sell, 100, 1);
    book.cancel(2);
    rec.take();
    const before = snapshot(book);
    expect(book.cancel(1)).toBe(RejectReason.UnknownOrder); // filled
    expect(book.cancel(2)).toBe(RejectReason.UnknownOrder); // canceled
    expect(book.cancel(99)).toBe(RejectReason.UnknownOrder); // never seen
    expect(book.cancel(0)).toBe(RejectReason.InvalidOrderId);
    expect(rec.take()).toEqual([
      rejected(CommandKind.Cancel, 1, RejectReason.UnknownOrder),
      rejected(CommandKind.Cancel, 2, RejectReason.UnknownOrder),
      rejected(CommandKind.Cancel, 99, RejectReason.UnknownOrder),
      rejected(CommandKind.Cancel, 0, RejectReason.InvalidOrderId),
    ]);
    expect(snapshot(book)).toEqual(before);
  });
});

describe('reduce and amend', () => {
  it('reduce keeps time priority', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Sell, 100, 10);
    book.submitLimit(2, ALICE, Sell, 100, 10);
    rec.take();
    expect(book.reduce(1, 4)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([amended(1, ALICE, Sell, 100, 4, AmendKind.Reduce)]);
    book.submitLimit(3, BOB, Buy, 100, 5);
    expect(rec.take().filter((e) => e.type === 'trade')).toEqual([trade(1, 3, ALICE, BOB, Buy, 100, 4, 0), trade(2, 3, ALICE, BOB, Buy, 100, 1, 9)]);
    book.audit();
  });

  it('reduce is reduce-only: 0 < newQty < remaining', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Sell, 100, 10);
    rec.take();
    expect(book.reduce(1, 10)).toBe(RejectReason.AmendNotReducing);
    expect(book.reduce(1, 11)).toBe(RejectReason.AmendNotReducing);
    expect(book.reduce(1, 0)).toBe(RejectReason.InvalidQty);
    expect(book.reduce(1, 2.5)).toBe(RejectReason.InvalidQty);
    expect(book.reduce(5, 1)).toBe(RejectReason.UnknownOrder);
    expect(rec.take().every((e) => e.type === 'rejected' && e.kind === CommandKind.Amend)).toBe(true);
    expect(book.getOrder(1)?.qty).toBe(10);
  });

  it('amend to a lower quantity at the same price keeps priority', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 10);
    book.submitLimit(2, ALICE, Buy, 100, 10);
    rec.take();
    expect(book.amend(1, 100, 3)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([amended(1, ALICE, Buy, 100, 3, AmendKind.Reduce)]);
    expect(snapshot(book)).toEqual(['B 100 #1 u1 q3', 'B 100 #2 u1 q10']);
    expect(book.amend(1, 100, 3)).toBe(RejectReason.AmendNoChange);
  });

  it('amend to a larger quantity loses priority', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 10);
    book.submitLimit(2, ALICE, Buy, 100, 10);
    rec.take();
    expect(book.amend(1, 100, 12)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([amended(1, ALICE, Buy, 100, 12, AmendKind.Replace), added(1, ALICE, Buy, 100, 12)]);
    expect(snapshot(book)).toEqual(['B 100 #2 u1 q10', 'B 100 #1 u1 q12']);
    book.audit();
  });

  it('amend to a crossing price re-matches like an incoming order', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 10);
    book.submitLimit(2, BOB, Sell, 102, 4);
    rec.take();
    expect(book.amend(1, 102, 10)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([
      amended(1, ALICE, Buy, 102, 10, AmendKind.Replace),
      trade(2, 1, BOB, ALICE, Buy, 102, 4, 0),
      added(1, ALICE, Buy, 102, 6),
    ]);
    expect(book.bestBid).toBe(102);
    expect(book.bestAsk).toBeNull();
    book.audit();
  });

  it('refuses to move a post-only order across the book and leaves it as it was', () => {
    const { book, rec } = setup();
    book.submitLimit(1, ALICE, Buy, 100, 10, TIF.POST);
    book.submitLimit(2, BOB, Sell, 102, 4);
    rec.take();
    expect(book.amend(1, 103, 10)).toBe(RejectReason.PostOnlyWouldCross);
    expect(rec.take()).toEqual([rejected(CommandKind.Amend, 1, RejectReason.PostOnlyWouldCross)]);
    expect(book.getOrder(1)?.price).toBe(100);
  });

  it.each<[string, number, number, RejectReason]>([
    ['a zero price', 0, 5, RejectReason.InvalidPrice],
    ['a price out of band', 2_000_000, 5, RejectReason.PriceOutOfBand],
    ['a zero quantity', 100, 0, RejectReason.InvalidQty],
    ['a fractional quantity', 100, 1.5, RejectReason.InvalidQty],
    ['a quantity above the maximum', 100, 1001, RejectReason.QtyAboveMax],
  ])('rejects an amend with %s', (_name, price, qty, reason) => {
    const { book, rec } = setup({ maxQty: 1000 });
    book.submitLimit(1, ALICE, Buy, 100, 10);
    rec.take();
    expect(book.amend(1, price, qty)).toBe(reason);
    expect(rec.take()).toEqual([rejected(CommandKind.Amend, 1, reason)]);
    expect(snapshot(book)).toEqual(['B 100 #1 u1 q10']);
  });
});

describe('self-trade prevention', () => {
  function withSelfLiquidity(): { book: OrderBook; rec: EventRecorder } {
    const s = setup();
    s.book.submitLimit(1, ALICE, Sell, 100, 5); // ALICE's own order first in line
    s.book.submitLimit(2, BOB, Sell, 100, 5);
    s.rec.take();
    return s;
  }

  it('None: orders of the same user trade', () => {
    const { book, rec } = withSelfLiquidity();
    book.submitLimit(10, ALICE, Buy, 100, 5, TIF.GTC, STP.None);
    expect(rec.take()).toEqual([accepted(10, ALICE, Buy, 100, 5), trade(1, 10, ALICE, ALICE, Buy, 100, 5, 0)]);
  });

  it('CancelNewest: cancels the incoming order, the resting one stays', () => {
    const { book, rec } = withSelfLiquidity();
    book.submitLimit(10, ALICE, Buy, 100, 5, TIF.GTC, STP.CancelNewest);
    expect(rec.take()).toEqual([accepted(10, ALICE, Buy, 100, 5), canceled(10, ALICE, CancelReason.SelfTrade, 5)]);
    expect(snapshot(book)).toEqual(['S 100 #1 u1 q5', 'S 100 #2 u2 q5']);
  });

  it('CancelOldest: cancels the resting order and matches on', () => {
    const { book, rec } = withSelfLiquidity();
    book.submitLimit(10, ALICE, Buy, 100, 7, TIF.GTC, STP.CancelOldest);
    expect(rec.take()).toEqual([
      accepted(10, ALICE, Buy, 100, 7),
      canceled(1, ALICE, CancelReason.SelfTrade, 5),
      trade(2, 10, BOB, ALICE, Buy, 100, 5, 0),
      added(10, ALICE, Buy, 100, 2),
    ]);
    book.audit();
  });

  it('CancelBoth: cancels the resting order and the incoming rest', () => {
    const { book, rec } = withSelfLiquidity();
    book.submitLimit(10, ALICE, Buy, 100, 7, TIF.GTC, STP.CancelBoth);
    expect(rec.take()).toEqual([accepted(10, ALICE, Buy, 100, 7), canceled(1, ALICE, CancelReason.SelfTrade, 5), canceled(10, ALICE, CancelReason.SelfTrade, 7)]);
    expect(snapshot(book)).toEqual(['S 100 #2 u2 q5']);
  });

  it('DecrementCancel: reduces both by the smaller quantity without a trade', () => {
    const { book, rec } = withSelfLiquidity();
    book.submitLimit(10, ALICE, Buy, 100, 3, TIF.GTC, STP.DecrementCancel);
    expect(rec.take()).toEqual([
      accepted(10, ALICE, Buy, 100, 3),
      amended(1, ALICE, Sell, 100, 2, AmendKind.SelfTradeDecrement),
      canceled(10, ALICE, CancelReason.SelfTrade, 3),
    ]);
    expect(snapshot(book)).toEqual(['S 100 #1 u1 q2', 'S 100 #2 u2 q5']);
    book.submitLimit(11, ALICE, Buy, 100, 4, TIF.GTC, STP.DecrementCancel);
    expect(rec.take()).toEqual([
      accepted(11, ALICE, Buy, 100, 4),
      canceled(1, ALICE, CancelReason.SelfTrade, 2),
      amended(11, ALICE, Buy, 100, 2, AmendKind.SelfTradeDecrement),
      trade(2, 11, BOB, ALICE, Buy, 100, 2, 3),
    ]);
    book.audit();
  });

  it('FOK counts only liquidity it can reach before a self-match stops it', () => {
    const { book, rec } = withSelfLiquidity();
    expect(book.submitLimit(10, ALICE, Buy, 100, 5, TIF.FOK, STP.CancelNewest)).toBe(RejectReason.FokNotFillable);
    expect(book.submitLimit(11, ALICE, Buy, 100, 5, TIF.FOK, STP.CancelOldest)).toBe(RejectReason.None);
    expect(rec.take()).toEqual([
      rejected(CommandKind.Limit, 10, RejectReason.FokNotFillable),
      accepted(11, ALICE, Buy, 100, 5),
      canceled(1, ALICE, CancelReason.SelfTrade, 5),
      trade(2, 11, BOB, ALICE, Buy, 100, 5, 0),
    ]);
  });
});

describe('invalid input', () => {
  const cases: [string, (b: OrderBook) => RejectReason, RejectReason][] = [
    ['order id 0', (b) => b.submitLimit(0, 1, Buy, 100, 1), RejectReason.InvalidOrderId],
    ['a negative order id', (b) => b.submitLimit(-5, 1, Buy, 100, 1), RejectReason.InvalidOrderId],
    ['a fractional order id', (b) => b.submitLimit(1.5, 1, Buy, 100, 1), RejectReason.InvalidOrderId],
    ['an unsafe order id', (b) => b.submitLimit(2 ** 53, 1, Buy, 100, 1), RejectReason.InvalidOrderId],
    ['a NaN order id', (b) => b.submitLimit(Number.NaN, 1, Buy, 100, 1), RejectReason.InvalidOrderId],
    ['a negative user id', (b) => b.submitLimit(1, -1, Buy, 100, 1), RejectReason.InvalidUserId],
    ['an infinite user id', (b) => b.submitLimit(1, Number.POSITIVE_INFINITY, Buy, 100, 1), RejectReason.InvalidUserId],
    ['side 2', (b) => b.submitLimit(1, 1, 2 as Side, 100, 1), RejectReason.InvalidSide],
    ['price 0', (b) => b.submitLimit(1, 1, Buy, 0, 1), RejectReason.InvalidPrice],
    ['a negative price', (b) => b.submitLimit(1, 1, Buy, -100, 1), RejectReason.InvalidPrice],
    ['a fractional price', (b) => b.submitLimit(1, 1, Buy, 100.5, 1), RejectReason.InvalidPrice],
    ['a price above the band', (b) => b.submitLimit(1, 1, Buy, 1_000_001, 1), RejectReason.PriceOutOfBand],
    ['a price below the band', (b) => b.submitLimit(1, 1, Buy, 9, 1), RejectReason.PriceOutOfBand],
    ['quantity 0', (b) => b.submitLimit(1, 1, Buy, 100, 0), RejectReason.InvalidQty],
    ['a negative quantity', (b) => b.submitLimit(1, 1, Buy, 100, -3), RejectReason.InvalidQty],
    ['a fractional quantity', (b) => b.submitLimit(1, 1, Buy, 100, 0.5), RejectReason.InvalidQty],
    ['an unsafe quantity', (b) => b.submitLimit(1, 1, Buy, 100, 2 ** 60), RejectReason.InvalidQty],
    ['a quantity above the maximum', (b) => b.submitLimit(1, 1, Buy, 100, 1_000_001), RejectReason.QtyAboveMax],
    ['time in force 9', (b) => b.submitLimit(1, 1, Buy, 100, 1, 9 as TIF), RejectReason.InvalidTimeInForce],
    ['stp mode 5', (b) => b.submitLimit(1, 1, Buy, 100, 1, TIF.GTC, 5 as STP), RejectReason.InvalidSelfTradePrevention],
    ['a market order of quantity 0', (b) => b.submitMarket(1, 1, Sell, 0), RejectReason.InvalidQty],
    ['a market order with side -1', (b) => b.submitMarket(1, 1, -1 as Side, 5), RejectReason.InvalidSide],
  ];

  it.each(cases)('rejects %s with one event and changes nothing', (_name, command, reason) => {
    const { book, rec } = setup({ minPrice: 10, maxQty: 1_000_000 });
    book.submitLimit(100, ALICE, Buy, 99, 5);
    book.submitLimit(101, ALICE, Sell, 101, 5);
    rec.take();
    const before = snapshot(book);
    expect(command(book)).toBe(reason);
    const events = rec.take();
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: 'rejected', reason });
    expect(snapshot(book)).toEqual(before);
    book.audit();
  });

  it('refuses an order that would push a level total past the safe integer range', () => {
    const { book } = setup({ maxQty: 2 ** 52 });
    expect(book.submitLimit(1, ALICE, Buy, 100, 2 ** 52)).toBe(RejectReason.None);
    expect(book.submitLimit(2, ALICE, Buy, 100, 2 ** 52)).toBe(RejectReason.LevelQtyOverflow);
    expect(book.submitLimit(3, ALICE, Buy, 99, 2 ** 52)).toBe(RejectReason.None);
    expect(book.amend(3, 100, 2 ** 52)).toBe(RejectReason.LevelQtyOverflow);
    expect(book.getOrder(3)?.price).toBe(99);
    book.audit();
  });
});

describe('capacity', () => {
  it('grows its pools when full and keeps every order', () => {
    const { book } = setup({ initialOrders: 2, initialLevels: 1, idWindow: 4 });
    for (let id = 1; id <= 2000; id++) book.submitLimit(id, ALICE, id % 2 === 0 ? Buy : Sell, id % 2 === 0 ? 500 - (id % 300) : 600 + (id % 300), id);
    expect(book.orderCount).toBe(2000);
    book.audit();
    for (let id = 1; id <= 2000; id += 3) book.cancel(id);
    book.audit();
    expect(book.getOrder(2)?.qty).toBe(2);
    expect(book.has(1)).toBe(false);
  });

  it('finds orders whose ids are far apart', () => {
    const { book } = setup({ idWindow: 1024 });
    const ids = [1, 7, 5_000, 2 ** 33 + 1, 2 ** 52, 3];
    ids.forEach((id, i) => {
      expect(book.submitLimit(id, ALICE, Buy, 100 + i, 1)).toBe(RejectReason.None);
    });
    for (const id of ids) expect(book.has(id)).toBe(true);
    expect(book.submitLimit(2 ** 33 + 1, ALICE, Buy, 1, 1)).toBe(RejectReason.DuplicateOrderId);
    for (const id of ids) expect(book.cancel(id)).toBe(RejectReason.None);
    expect(book.orderCount).toBe(0);
    book.audit();
  });

  it('delivers events to a sink set after construction', () => {
    const book = new OrderBook();
    const rec = new EventRecorder();
    book.submitLimit(1, ALICE, Buy, 100, 1);
    book.setSink(rec);
    book.cancel(1);
    expect(rec.events).toEqual([canceled(1, ALICE, CancelReason.User, 1)]);
  });
});

describe('ownerOf', () => {
  it('names the user of a resting order and -1 otherwise', () => {
    const { book } = setup();
    book.submitLimit(1, BOB, Buy, 100, 1);
    expect(book.ownerOf(1)).toBe(BOB);
    expect(book.ownerOf(2)).toBe(-1);
    expect(book.ownerOf(0)).toBe(-1);
    book.cancel(1);
    expect(book.ownerOf(1)).toBe(-1);
  });
});
