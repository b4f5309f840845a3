// Turns the order book's callbacks into the engine's events: each gets the symbol, the command's
// sequence number and timestamp, and the next per-symbol event sequence number; it is encoded into
// the outbox from one reused object per event type (no allocation), and copied into a list only
// when someone awaits the command's outcome. An order's client order id goes into its accepted or
// rejected event (a cancel's or an amend's rejection has none).

import type {
  AcceptedEvent,
  AddedEvent,
  AmendedEvent,
  CanceledEvent,
  CommandType,
  Event,
  LimitCommand,
  MarketCommand,
  RejectedEvent,
  RejectReason,
  TimeInForce,
  TradeEvent,
} from '@gx3/codecs';
import type { EventOutbox } from '@gx3/outbox-publisher';
import {
  CommandKind,
  type AmendKind as BookAmendKind,
  type BookEventSink,
  type CancelReason as BookCancelReason,
  type RejectReason as BookRejectReason,
  type Side as BookSide,
} from '@gx3/orderbook';
import { AMEND_NAME, CANCEL_NAME, REJECT_NAME, SIDE_NAME } from './mapping.js';

const COMMAND_TYPE: readonly CommandType[] = ['limit', 'market', 'cancel', 'amend'];

export class EngineSink implements BookEventSink {
  /** The last event sequence number used. */
  eventSeq: number;
  /** Events of the current command. */
  count = 0;
  /** When false (recovery of commands the outbox already holds), events are counted, not written. */
  writing = true;
  /** Copies of the current command's events, when its outcome is awaited. */
  collected: Event[] | undefined;

  private seq = 0;
  private ts = 0;
  private userId = 0;
  private tif: TimeInForce = 'GTC';
  /** The current order's client order id (echoed in its accepted or rejected event). */
  private clientOrderId: string | undefined = undefined;
  /** The current command, if it is an order (its rejection carries what it asked for). */
  private order: LimitCommand | MarketCommand | undefined = undefined;

  private readonly accepted: AcceptedEvent;
  private readonly rejected: RejectedEvent;
  private readonly added: AddedEvent;
  private readonly trade: TradeEvent;
  private readonly canceled: CanceledEvent;
  private readonly amended: AmendedEvent;

  constructor(
    readonly symbol: string,
    /** Replaced when recovery reopens the outbox. */
    public outbox: EventOutbox,
    lastEventSeq: number,
  ) {
    this.eventSeq = lastEventSeq;
    const base = { symbol, seq: 0, eventSeq: 0, ts: 0 };
    this.accepted = { ...base, type: 'accepted', orderType: 'limit', orderId: 0, userId: 0, side: 'buy', price: 0, qty: 0, tif: 'GTC', clientOrderId: undefined, stp: 'NONE' };
    this.rejected = {
      ...base,
      type: 'rejected',
      commandType: 'limit',
      orderId: 0,
      userId: 0,
      reason: 'INVALID_QTY',
      clientOrderId: undefined,
      side: undefined,
      price: undefined,
      qty: undefined,
      tif: undefined,
      stp: undefined,
    };
    this.added = { ...base, type: 'added', orderId: 0, userId: 0, side: 'buy', price: 0, qty: 0 };
    this.trade = {
      ...base,
      type: 'trade',
      makerOrderId: 0,
      takerOrderId: 0,
      makerUserId: 0,
      takerUserId: 0,
      takerSide: 'buy',
      price: 0,
      qty: 0,
      makerRemaining: 0,
    };
    this.canceled = { ...base, type: 'canceled', orderId: 0, userId: 0, reason: 'USER', qty: 0 };
    this.amended = { ...base, type: 'amended', orderId: 0, userId: 0, side: 'buy', price: 0, qty: 0, kind: 'REDUCE' };
  }

  /** Starts a command's events; `order` is the command if it is a limit or market order. */
  begin(seq: number, ts: number, userId: number, order: LimitCommand | MarketCommand | undefined, collect: boolean): void {
    this.seq = seq;
    this.ts = ts;
    this.userId = userId;
    this.order = order;
    this.tif = order?.type === 'limit' ? order.tif : 'GTC';
    this.clientOrderId = order?.clientOrderId;
    this.count = 0;
    this.collected = collect ? [] : undefined;
  }

  /** Ends a command: its CmdEnd marker. */
  end(): void {
    if (this.writing) this.outbox.appendCmdEnd(this.symbol, this.seq, this.eventSeq, this.count, this.ts);
  }

  /** A rejection decided by the engine rather than the book (e.g. NOT_OWNER). */
  engineReject(kind: CommandType, orderId: number, reason: RejectReason): void {
    const e = this.rejected;
    e.commandType = kind;
    e.orderId = orderId;
    e.userId = this.userId;
    e.reason = reason;
    this.describeRejected(e, kind === 'limit' || kind === 'market');
    this.emit(e);
  }

  /** Sets (or clears) what the rejected order asked for, and its client order id. */
  private describeRejected(e: RejectedEvent, isOrder: boolean): void {
    const o = isOrder ? this.order : undefined;
    e.clientOrderId = o?.clientOrderId;
    if (o === undefined) {
      e.side = undefined;
      e.price = undefined;
      e.qty = undefined;
      e.tif = undefined;
      e.stp = undefined;
      return;
    }
    e.side = o.side;
    e.qty = o.qty;
    e.stp = o.stp;
    if (o.type === 'limit') {
      e.price = o.price;
      e.tif = o.tif;
    } else {
      e.price = 0;
      e.tif = 'IOC';
    }
  }

  onAccepted(kind: CommandKind, orderId: number, userId: number, side: BookSide, price: number, qty: number): void {
    const e = this.accepted;
    const market = kind === CommandKind.Market;
    e.orderType = market ? 'market' : 'limit';
    e.orderId = orderId;
    e.userId = userId;
    e.side = SIDE_NAME[side] as AcceptedEvent['side'];
    e.price = price;
    e.qty = qty;
    e.tif = market ? 'IOC' : this.tif;
    e.clientOrderId = this.clientOrderId;
    e.stp = this.order?.stp ?? 'NONE';
    this.emit(e);
  }

  onRejected(kind: CommandKind, orderId: number, reason: BookRejectReason): void {
    const e = this.rejected;
    e.commandType = COMMAND_TYPE[kind] as CommandType;
    e.orderId = orderId;
    e.userId = this.userId;
    e.reason = REJECT_NAME[reason] as RejectReason;
    this.describeRejected(e, kind === CommandKind.Limit || kind === CommandKind.Market);
    this.emit(e);
  }

  onAdded(orderId: number, userId: number, side: BookSide, price: number, qty: number): void {
    const e = this.added;
    e.orderId = orderId;
    e.userId = userId;
    e.side = SIDE_NAME[side] as AddedEvent['side'];
    e.price = price;
    e.qty = qty;
    this.emit(e);
  }

  onTrade(
    makerId: number,
    takerId: number,
    makerUserId: number,
    takerUserId: number,
    takerSide: BookSide,
    price: number,
    qty: number,
    makerRemaining: number,
  ): void {
    const e = this.trade;
    e.makerOrderId = makerId;
    e.takerOrderId = takerId;
    e.makerUserId = makerUserId;
    e.takerUserId = takerUserId;
    e.takerSide = SIDE_NAME[takerSide] as TradeEvent['takerSide'];
    e.price = price;
    e.qty = qty;
    e.makerRemaining = makerRemaining;
    this.emit(e);
  }

  onCanceled(orderId: number, userId: number, reason: BookCancelReason, qty: number): void {
    const e = this.canceled;
    e.orderId = orderId;
    e.userId = userId;
    e.reason = CANCEL_NAME[reason] as CanceledEvent['reason'];
    e.qty = qty;
    this.emit(e);
  }

  onAmended(orderId: number, userId: number, side: BookSide, price: number, qty: number, kind: BookAmendKind): void {
    const e = this.amended;
    e.orderId = orderId;
    e.userId = userId;
    e.side = SIDE_NAME[side] as AmendedEvent['side'];
    e.price = price;
    e.qty = qty;
    e.kind = AMEND_NAME[kind] as AmendedEvent['kind'];
    this.emit(e);
  }

  private emit(e: Event): void {
    e.seq = this.seq;
    e.ts = this.ts;
    e.eventSeq = ++this.eventSeq;
    this.count++;
    if (this.writing) this.outbox.append(e);
    if (this.collected) this.collected.push(copyOf(e));
  }
}

/**
 * A copy of an event for an awaited outcome; without a `clientOrderId` property when it has none.
 * (Built as a literal without it rather than by deleting it from a spread copy: a delete turns the
 * copy into a slow dictionary object, several times the cost of the copy.)
 */
function copyOf(e: Event): Event {
  if (e.type === 'accepted' && e.clientOrderId === undefined) {
    const { symbol, seq, eventSeq, ts, orderType, orderId, userId, side, price, qty, tif, stp } = e;
    const c: AcceptedEvent = { symbol, seq, eventSeq, ts, type: 'accepted', orderType, orderId, userId, side, price, qty, tif };
    if (stp !== undefined) c.stp = stp;
    return c;
  }
  if (e.type === 'rejected') {
    const { symbol, seq, eventSeq, ts, commandType, orderId, userId, reason } = e;
    const c: RejectedEvent = { symbol, seq, eventSeq, ts, type: 'rejected', commandType, orderId, userId, reason };
    if (e.clientOrderId !== undefined) c.clientOrderId = e.clientOrderId;
    if (e.side !== undefined) {
      c.side = e.side;
      c.price = e.price;
      c.qty = e.qty;
      c.tif = e.tif;
      c.stp = e.stp;
    }
    return c;
  }
  return { ...e };
}
