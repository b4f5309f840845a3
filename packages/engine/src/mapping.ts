// The codecs' string enums and the order book's numeric codes, both ways.

import type { AmendKind, CancelReason, RejectReason, SelfTradePrevention, Side, TimeInForce } from '@gx3/codecs';
import {
  AMEND_KIND_NAMES,
  CANCEL_REASON_NAMES,
  REJECT_REASON_NAMES,
  SelfTradePrevention as BookStp,
  Side as BookSide,
  TimeInForce as BookTif,
} from '@gx3/orderbook';

export const SIDE_CODE: Readonly<Record<Side, BookSide>> = { buy: BookSide.Buy, sell: BookSide.Sell };
export const SIDE_NAME: readonly Side[] = ['buy', 'sell'];

export const TIF_CODE: Readonly<Record<TimeInForce, BookTif>> = { GTC: BookTif.GTC, IOC: BookTif.IOC, FOK: BookTif.FOK, POST: BookTif.POST };
export const TIF_NAME: readonly TimeInForce[] = ['GTC', 'IOC', 'FOK', 'POST'];

export const STP_CODE: Readonly<Record<SelfTradePrevention, BookStp>> = {
  NONE: BookStp.None,
  CANCEL_NEWEST: BookStp.CancelNewest,
  CANCEL_OLDEST: BookStp.CancelOldest,
  CANCEL_BOTH: BookStp.CancelBoth,
  DECREMENT_CANCEL: BookStp.DecrementCancel,
};

export const REJECT_NAME = REJECT_REASON_NAMES as unknown as readonly RejectReason[];
export const CANCEL_NAME = CANCEL_REASON_NAMES as readonly CancelReason[];
export const AMEND_NAME = AMEND_KIND_NAMES as readonly AmendKind[];
