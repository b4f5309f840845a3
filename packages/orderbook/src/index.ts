export { OrderBook, NOOP_SINK } from './order-book.js';
export { OrderBookError, type OrderBookErrorCode } from './errors.js';
export { EventRecorder, type BookEvent } from './event-recorder.js';
export {
  AMEND_KIND_NAMES,
  AmendKind,
  CANCEL_REASON_NAMES,
  CancelReason,
  COMMAND_KIND_NAMES,
  CommandKind,
  REJECT_REASON_NAMES,
  RejectReason,
  SELF_TRADE_PREVENTION_NAMES,
  SelfTradePrevention,
  Side,
  TIME_IN_FORCE_NAMES,
  TimeInForce,
  type BookEventSink,
  type DepthLevel,
  type OrderBookOptions,
  type OrderView,
} from './types.js';
