// The order book's vocabulary: sides, time in force, self-trade prevention modes, reason codes and
// the event sink. Codes are small integers so that events carry primitives only (no allocation);
// each code table has a matching name table for logs, JSON and error messages.

/** Order side. */
export const Side = { Buy: 0, Sell: 1 } as const;
export type Side = (typeof Side)[keyof typeof Side];

/** Time in force of a limit order. Market orders behave as IOC at any price. */
export const TimeInForce = {
  /** Good till cancel: the unfilled rest rests at the limit price. */
  GTC: 0,
  /** Immediate or cancel: the unfilled rest is canceled. */
  IOC: 1,
  /** Fill or kill: filled completely on arrival or rejected with nothing traded. */
  FOK: 2,
  /** Post-only: rejected if it would match anything on arrival, otherwise rests. */
  POST: 3,
} as const;
export type TimeInForce = (typeof TimeInForce)[keyof typeof TimeInForce];
export const TIME_IN_FORCE_NAMES = ['GTC', 'IOC', 'FOK', 'POST'] as const;

/**
 * Self-trade prevention, applied when an incoming order would trade with a resting order of the same
 * user id. The incoming (taker) order's mode decides.
 */
export const SelfTradePrevention = {
  /** No prevention: orders of the same user trade with each other. */
  None: 0,
  /** Cancel newest: the incoming order's unfilled rest is canceled; the resting order stays. */
  CancelNewest: 1,
  /** Cancel oldest: the resting order is canceled and matching continues. */
  CancelOldest: 2,
  /** Cancel both: the resting order and the incoming order's rest are canceled. */
  CancelBoth: 3,
  /**
   * Decrement and cancel: both are reduced by the smaller of the two quantities without a trade;
   * whichever reaches zero is canceled (both when equal).
   */
  DecrementCancel: 4,
} as const;
export type SelfTradePrevention = (typeof SelfTradePrevention)[keyof typeof SelfTradePrevention];
export const SELF_TRADE_PREVENTION_NAMES = ['NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'] as const;

/** The command an event answers. */
export const CommandKind = { Limit: 0, Market: 1, Cancel: 2, Amend: 3 } as const;
export type CommandKind = (typeof CommandKind)[keyof typeof CommandKind];
export const COMMAND_KIND_NAMES = ['LIMIT', 'MARKET', 'CANCEL', 'AMEND'] as const;

/** Why a command was refused. A rejected command changes nothing in the book. */
export const RejectReason = {
  None: 0,
  InvalidOrderId: 1,
  InvalidUserId: 2,
  InvalidSide: 3,
  InvalidPrice: 4,
  InvalidQty: 5,
  InvalidTimeInForce: 6,
  InvalidSelfTradePrevention: 7,
  PriceOutOfBand: 8,
  QtyAboveMax: 9,
  DuplicateOrderId: 10,
  PostOnlyWouldCross: 11,
  FokNotFillable: 12,
  UnknownOrder: 13,
  AmendNotReducing: 14,
  AmendNoChange: 15,
  LevelQtyOverflow: 16,
} as const;
export type RejectReason = (typeof RejectReason)[keyof typeof RejectReason];
export const REJECT_REASON_NAMES = [
  'NONE',
  'INVALID_ORDER_ID',
  'INVALID_USER_ID',
  'INVALID_SIDE',
  'INVALID_PRICE',
  'INVALID_QTY',
  'INVALID_TIME_IN_FORCE',
  'INVALID_SELF_TRADE_PREVENTION',
  'PRICE_OUT_OF_BAND',
  'QTY_ABOVE_MAX',
  'DUPLICATE_ORDER_ID',
  'POST_ONLY_WOULD_CROSS',
  'FOK_NOT_FILLABLE',
  'UNKNOWN_ORDER',
  'AMEND_NOT_REDUCING',
  'AMEND_NO_CHANGE',
  'LEVEL_QTY_OVERFLOW',
] as const;

/** Why an order left the book (or never rested) without being filled. */
export const CancelReason = {
  /** A cancel command. */
  User: 0,
  /** The unfilled rest of an IOC or market order. */
  Unfilled: 1,
  /** Self-trade prevention. */
  SelfTrade: 2,
} as const;
export type CancelReason = (typeof CancelReason)[keyof typeof CancelReason];
export const CANCEL_REASON_NAMES = ['USER', 'UNFILLED', 'SELF_TRADE'] as const;

/** What an amendment did. */
export const AmendKind = {
  /** Quantity reduced at the same price: time priority kept. */
  Reduce: 0,
  /** Price changed or quantity increased: cancel-replace, time priority lost. */
  Replace: 1,
  /** Reduced by decrement-and-cancel self-trade prevention: priority kept if resting. */
  SelfTradeDecrement: 2,
} as const;
export type AmendKind = (typeof AmendKind)[keyof typeof AmendKind];
export const AMEND_KIND_NAMES = ['REDUCE', 'REPLACE', 'SELF_TRADE_DECREMENT'] as const;

/**
 * Receives every outcome of every command, synchronously and in order, as primitives: the book
 * allocates nothing per event. For a limit or market order the order is: `onAccepted` (or a single
 * `onRejected`), then trades and cancels as matching proceeds, then `onAdded` if the rest rests. A
 * cancel, reduce or amend emits no `onAccepted`: its outcome (`onCanceled`, `onAmended` then any
 * trades and `onAdded` of a cancel-replace) or a single `onRejected`.
 */
export interface BookEventSink {
  /** An order passed validation and will be processed. `price` is 0 for a market order. */
  onAccepted(kind: CommandKind, orderId: number, userId: number, side: Side, price: number, qty: number): void;
  /** A command was refused; nothing changed. */
  onRejected(kind: CommandKind, orderId: number, reason: RejectReason): void;
  /** An order (or its unfilled rest) now rests in the book at `price` with `qty` remaining. */
  onAdded(orderId: number, userId: number, side: Side, price: number, qty: number): void;
  /**
   * A fill between a resting maker and an incoming taker, at the maker's price.
   * `makerRemaining` is the maker's quantity left after the fill (0 = filled and removed).
   */
  onTrade(
    makerId: number,
    takerId: number,
    makerUserId: number,
    takerUserId: number,
    takerSide: Side,
    price: number,
    qty: number,
    makerRemaining: number,
  ): void;
  /** An order is gone with `qty` unfilled: canceled, the rest of an IOC/market order, or self-trade prevention. */
  onCanceled(orderId: number, userId: number, reason: CancelReason, qty: number): void;
  /** An order was amended; `qty` is its new remaining quantity at `price`. */
  onAmended(orderId: number, userId: number, side: Side, price: number, qty: number, kind: AmendKind): void;
}

/** A snapshot of a resting order, for queries (allocates; not for the hot path). */
export interface OrderView {
  readonly orderId: number;
  readonly userId: number;
  readonly side: Side;
  readonly price: number;
  readonly qty: number;
  readonly timeInForce: TimeInForce;
  readonly selfTradePrevention: SelfTradePrevention;
}

/** One aggregated price level. */
export interface DepthLevel {
  readonly price: number;
  readonly qty: number;
  readonly orders: number;
}

export interface OrderBookOptions {
  /** Lowest valid price in ticks (inclusive). Default 1. */
  readonly minPrice?: number;
  /** Highest valid price in ticks (inclusive). Default 1,000,000,000. The band holds at most 2^31 - 1 prices (`maxPrice - minPrice <= 2^31 - 2`). */
  readonly maxPrice?: number;
  /** Largest quantity of one order. Default 2^48. */
  readonly maxQty?: number;
  /** Order slots allocated up front (grows by doubling when full). Default 65,536. */
  readonly initialOrders?: number;
  /** Price levels allocated up front (grows by doubling when full). Default 4,096. */
  readonly initialLevels?: number;
  /**
   * Size of the direct-mapped window of the order-id index (a power of two). Ids within this
   * distance of the newest id are found with one array read; older live ids move to a hash map.
   * Default 1,048,576.
   */
  readonly idWindow?: number;
}
