// The canonical command and event types of gx3, shared by every package that logs, publishes or
// serves them. Prices are integer ticks, quantities integer lots, ids positive integers, all safe
// integers; timestamps are integer microseconds since the Unix epoch, fixed before a command is
// logged so that replay never reads the clock.

export type Side = 'buy' | 'sell';
export type TimeInForce = 'GTC' | 'IOC' | 'FOK' | 'POST';
export type SelfTradePrevention = 'NONE' | 'CANCEL_NEWEST' | 'CANCEL_OLDEST' | 'CANCEL_BOTH' | 'DECREMENT_CANCEL';
export type CommandType = 'limit' | 'market' | 'cancel' | 'amend';
/** The kind of order an `accepted` event is about. */
export type OrderType = 'limit' | 'market';

export const SIDES: readonly Side[] = ['buy', 'sell'];
export const TIMES_IN_FORCE: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK', 'POST'];
export const SELF_TRADE_PREVENTIONS: readonly SelfTradePrevention[] = ['NONE', 'CANCEL_NEWEST', 'CANCEL_OLDEST', 'CANCEL_BOTH', 'DECREMENT_CANCEL'];
export const COMMAND_TYPES: readonly CommandType[] = ['limit', 'market', 'cancel', 'amend'];
export const ORDER_TYPES: readonly OrderType[] = ['limit', 'market'];

/** Why a command was refused (the order book's reasons plus the engine's). */
export type RejectReason =
  | 'INVALID_ORDER_ID'
  | 'INVALID_USER_ID'
  | 'INVALID_SIDE'
  | 'INVALID_PRICE'
  | 'INVALID_QTY'
  | 'INVALID_TIME_IN_FORCE'
  | 'INVALID_SELF_TRADE_PREVENTION'
  | 'PRICE_OUT_OF_BAND'
  | 'QTY_ABOVE_MAX'
  | 'DUPLICATE_ORDER_ID'
  | 'POST_ONLY_WOULD_CROSS'
  | 'FOK_NOT_FILLABLE'
  | 'UNKNOWN_ORDER'
  | 'AMEND_NOT_REDUCING'
  | 'AMEND_NO_CHANGE'
  | 'LEVEL_QTY_OVERFLOW'
  | 'NOT_OWNER'
  | 'UNKNOWN_SYMBOL';
export const REJECT_REASONS: readonly RejectReason[] = [
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
  'NOT_OWNER',
  'UNKNOWN_SYMBOL',
];

export type CancelReason = 'USER' | 'UNFILLED' | 'SELF_TRADE';
export const CANCEL_REASONS: readonly CancelReason[] = ['USER', 'UNFILLED', 'SELF_TRADE'];

export type AmendKind = 'REDUCE' | 'REPLACE' | 'SELF_TRADE_DECREMENT';
export const AMEND_KINDS: readonly AmendKind[] = ['REDUCE', 'REPLACE', 'SELF_TRADE_DECREMENT'];

/** Fields every command carries. `seq` is the per-symbol command sequence number, assigned by the engine (0 before). */
interface CommandBase {
  symbol: string;
  seq: number;
  /** The client's request id (0 when none), echoed in its outcome. */
  reqId: number;
  orderId: number;
  userId: number;
  /** Microseconds since the Unix epoch. */
  ts: number;
}

export interface LimitCommand extends CommandBase {
  type: 'limit';
  side: Side;
  price: number;
  qty: number;
  tif: TimeInForce;
  stp: SelfTradePrevention;
  /** The client's own id for the order (optional): logged with it and echoed in its accepted or rejected event. */
  clientOrderId?: string | undefined;
}

export interface MarketCommand extends CommandBase {
  type: 'market';
  side: Side;
  qty: number;
  stp: SelfTradePrevention;
  /** As in LimitCommand. */
  clientOrderId?: string | undefined;
}

export interface CancelCommand extends CommandBase {
  type: 'cancel';
}

/** Amend a resting order to `price` and `qty` remaining (a reduction at the same price keeps priority). */
export interface AmendCommand extends CommandBase {
  type: 'amend';
  /** The new price; 0 keeps the current one and makes the amend reduce-only (`qty` below the remaining). */
  price: number;
  /**
   * The new remaining quantity; 0 (only with a positive price) keeps the quantity the order has
   * left when the engine applies the amend: a price change that cannot restore lots filled since
   * the client last saw the order.
   */
  qty: number;
}

export type Command = LimitCommand | MarketCommand | CancelCommand | AmendCommand;

/** Fields every event carries: its symbol, the command it answers, and its per-symbol event sequence number (its identity). */
interface EventBase {
  symbol: string;
  /** The command's sequence number. */
  seq: number;
  /** Per-symbol event sequence number, from 1, without gaps: the event's id for de-duplication. */
  eventSeq: number;
  /** The command's timestamp (microseconds since the Unix epoch). */
  ts: number;
}

export interface AcceptedEvent extends EventBase {
  type: 'accepted';
  orderType: OrderType;
  orderId: number;
  userId: number;
  side: Side;
  /** 0 for a market order. */
  price: number;
  qty: number;
  tif: TimeInForce;
  /** The order's client order id, if its command had one. */
  clientOrderId?: string | undefined;
  /**
   * The order's self-trade prevention, so that the accepted event alone tells what the order asked
   * for (the engine always sets it; events logged before it did have none).
   */
  stp?: SelfTradePrevention | undefined;
}

export interface RejectedEvent extends EventBase {
  type: 'rejected';
  commandType: CommandType;
  orderId: number;
  userId: number;
  reason: RejectReason;
  /** The client order id of a rejected limit or market order, if its command had one. */
  clientOrderId?: string | undefined;
  // What a rejected limit or market order asked for: all five or none (none in events logged before
  // they were added). `price` is 0 for a market order, whose `tif` is IOC.
  side?: Side | undefined;
  price?: number | undefined;
  qty?: number | undefined;
  tif?: TimeInForce | undefined;
  stp?: SelfTradePrevention | undefined;
}

export interface AddedEvent extends EventBase {
  type: 'added';
  orderId: number;
  userId: number;
  side: Side;
  price: number;
  qty: number;
}

export interface TradeEvent extends EventBase {
  type: 'trade';
  makerOrderId: number;
  takerOrderId: number;
  makerUserId: number;
  takerUserId: number;
  takerSide: Side;
  price: number;
  qty: number;
  makerRemaining: number;
}

export interface CanceledEvent extends EventBase {
  type: 'canceled';
  orderId: number;
  userId: number;
  reason: CancelReason;
  /** The quantity canceled (unfilled). */
  qty: number;
}

export interface AmendedEvent extends EventBase {
  type: 'amended';
  orderId: number;
  userId: number;
  side: Side;
  price: number;
  /** The new remaining quantity. */
  qty: number;
  kind: AmendKind;
}

/**
 * The boundary after the last event of a command in the outbox. It is never published; reaching it
 * lets the publisher commit its cursor. `eventSeq` is the last event sequence number used so far
 * (it does not consume one) and `events` the number of events of the command.
 */
export interface CmdEndEvent extends EventBase {
  type: 'cmdEnd';
  events: number;
}

export type Event = AcceptedEvent | RejectedEvent | AddedEvent | TradeEvent | CanceledEvent | AmendedEvent | CmdEndEvent;
export type EventType = Event['type'];
export const EVENT_TYPES: readonly EventType[] = ['accepted', 'rejected', 'added', 'trade', 'canceled', 'amended', 'cmdEnd'];

/** Anything a codec encodes: a command or an event. */
export type Message = Command | Event;
export type MessageType = Message['type'];
export const MESSAGE_TYPES: readonly MessageType[] = [...COMMAND_TYPES, ...EVENT_TYPES];
