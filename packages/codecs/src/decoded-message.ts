// A mutable record with every field of every message type, filled in place by
// `BinaryCodec.decodeInto` so that a reader decodes a stream of records without allocating.
import type {
  AmendKind,
  CancelReason,
  CommandType,
  Message,
  MessageType,
  OrderType,
  RejectReason,
  SelfTradePrevention,
  Side,
  TimeInForce,
} from './types.js';

/**
 * The last record decoded into it. Only the fields of `type` are meaningful: the others keep the
 * values of earlier records. After a DecodeError its content is unspecified. All number fields are
 * initialised to numbers and all string fields to strings, so the object keeps one shape.
 */
export class DecodedMessage {
  type: MessageType = 'limit';
  symbol = '';
  seq = 0;
  eventSeq = 0;
  reqId = 0;
  orderId = 0;
  userId = 0;
  ts = 0;
  side: Side = 'buy';
  price = 0;
  qty = 0;
  tif: TimeInForce = 'GTC';
  stp: SelfTradePrevention = 'NONE';
  orderType: OrderType = 'limit';
  commandType: CommandType = 'limit';
  /** A RejectReason in a `rejected` event, a CancelReason in a `canceled` event. */
  reason: RejectReason | CancelReason = 'USER';
  makerOrderId = 0;
  takerOrderId = 0;
  makerUserId = 0;
  takerUserId = 0;
  takerSide: Side = 'buy';
  makerRemaining = 0;
  kind: AmendKind = 'REDUCE';
  events = 0;
  /**
   * The client order id of a `limit`, `market`, `accepted` or `rejected` record, undefined when it
   * has none (like every field, meaningful only for those types: other records leave it as it was).
   */
  clientOrderId: string | undefined = undefined;
  /**
   * Whether a `rejected` record carries its order's side, price, qty, tif and stp; whether an
   * `accepted` record carries its order's stp.
   */
  orderDetails = false;

  /** A new plain message with the fields of `type` (allocates). */
  toMessage(): Message {
    const { symbol, seq, eventSeq, ts } = this;
    switch (this.type) {
      case 'limit': {
        const m: Message = {
          type: 'limit',
          symbol,
          seq,
          reqId: this.reqId,
          orderId: this.orderId,
          userId: this.userId,
          ts,
          side: this.side,
          price: this.price,
          qty: this.qty,
          tif: this.tif,
          stp: this.stp,
        };
        return withClientOrderId(m, this.clientOrderId);
      }
      case 'market': {
        const m: Message = {
          type: 'market',
          symbol,
          seq,
          reqId: this.reqId,
          orderId: this.orderId,
          userId: this.userId,
          ts,
          side: this.side,
          qty: this.qty,
          stp: this.stp,
        };
        return withClientOrderId(m, this.clientOrderId);
      }
      case 'cancel':
        return { type: 'cancel', symbol, seq, reqId: this.reqId, orderId: this.orderId, userId: this.userId, ts };
      case 'amend':
        return {
          type: 'amend',
          symbol,
          seq,
          reqId: this.reqId,
          orderId: this.orderId,
          userId: this.userId,
          ts,
          price: this.price,
          qty: this.qty,
        };
      case 'accepted': {
        const m: Message = {
          type: 'accepted',
          symbol,
          seq,
          eventSeq,
          ts,
          orderType: this.orderType,
          orderId: this.orderId,
          userId: this.userId,
          side: this.side,
          price: this.price,
          qty: this.qty,
          tif: this.tif,
        };
        withClientOrderId(m, this.clientOrderId);
        if (this.orderDetails) m.stp = this.stp;
        return m;
      }
      case 'rejected': {
        const m: Message = {
          type: 'rejected',
          symbol,
          seq,
          eventSeq,
          ts,
          commandType: this.commandType,
          orderId: this.orderId,
          userId: this.userId,
          reason: this.reason as RejectReason,
        };
        withClientOrderId(m, this.clientOrderId);
        if (this.orderDetails) {
          m.side = this.side;
          m.price = this.price;
          m.qty = this.qty;
          m.tif = this.tif;
          m.stp = this.stp;
        }
        return m;
      }
      case 'added':
        return {
          type: 'added',
          symbol,
          seq,
          eventSeq,
          ts,
          orderId: this.orderId,
          userId: this.userId,
          side: this.side,
          price: this.price,
          qty: this.qty,
        };
      case 'trade':
        return {
          type: 'trade',
          symbol,
          seq,
          eventSeq,
          ts,
          makerOrderId: this.makerOrderId,
          takerOrderId: this.takerOrderId,
          makerUserId: this.makerUserId,
          takerUserId: this.takerUserId,
          takerSide: this.takerSide,
          price: this.price,
          qty: this.qty,
          makerRemaining: this.makerRemaining,
        };
      case 'canceled':
        return {
          type: 'canceled',
          symbol,
          seq,
          eventSeq,
          ts,
          orderId: this.orderId,
          userId: this.userId,
          reason: this.reason as CancelReason,
          qty: this.qty,
        };
      case 'amended':
        return {
          type: 'amended',
          symbol,
          seq,
          eventSeq,
          ts,
          orderId: this.orderId,
          userId: this.userId,
          side: this.side,
          price: this.price,
          qty: this.qty,
          kind: this.kind,
        };
      case 'cmdEnd':
        return { type: 'cmdEnd', symbol, seq, eventSeq, ts, events: this.events };
    }
  }
}

/** `m` with its client order id, if there is one (no property at all otherwise, as the message had). */
function withClientOrderId(m: Message, clientOrderId: string | undefined): Message {
  if (clientOrderId !== undefined) (m as { clientOrderId?: string }).clientOrderId = clientOrderId;
  return m;
}
