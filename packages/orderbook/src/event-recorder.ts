// A sink that keeps every event as a plain object: for tests, debugging and examples, not for the
// hot path (it allocates one object per event).

import type { AmendKind, BookEventSink, CancelReason, CommandKind, RejectReason, Side } from './types.js';

export type BookEvent =
  | { type: 'accepted'; kind: CommandKind; orderId: number; userId: number; side: Side; price: number; qty: number }
  | { type: 'rejected'; kind: CommandKind; orderId: number; reason: RejectReason }
  | { type: 'added'; orderId: number; userId: number; side: Side; price: number; qty: number }
  | {
      type: 'trade';
      makerId: number;
      takerId: number;
      makerUserId: number;
      takerUserId: number;
      takerSide: Side;
      price: number;
      qty: number;
      makerRemaining: number;
    }
  | { type: 'canceled'; orderId: number; userId: number; reason: CancelReason; qty: number }
  | { type: 'amended'; orderId: number; userId: number; side: Side; price: number; qty: number; kind: AmendKind };

export class EventRecorder implements BookEventSink {
  readonly events: BookEvent[] = [];

  /** Returns the events recorded so far and starts a new list. */
  take(): BookEvent[] {
    return this.events.splice(0, this.events.length);
  }

  onAccepted(kind: CommandKind, orderId: number, userId: number, side: Side, price: number, qty: number): void {
    this.events.push({ type: 'accepted', kind, orderId, userId, side, price, qty });
  }
  onRejected(kind: CommandKind, orderId: number, reason: RejectReason): void {
    this.events.push({ type: 'rejected', kind, orderId, reason });
  }
  onAdded(orderId: number, userId: number, side: Side, price: number, qty: number): void {
    this.events.push({ type: 'added', orderId, userId, side, price, qty });
  }
  onTrade(
    makerId: number,
    takerId: number,
    makerUserId: number,
    takerUserId: number,
    takerSide: Side,
    price: number,
    qty: number,
    makerRemaining: number,
  ): void {
    this.events.push({ type: 'trade', makerId, takerId, makerUserId, takerUserId, takerSide, price, qty, makerRemaining });
  }
  onCanceled(orderId: number, userId: number, reason: CancelReason, qty: number): void {
    this.events.push({ type: 'canceled', orderId, userId, reason, qty });
  }
  onAmended(orderId: number, userId: number, side: Side, price: number, qty: number, kind: AmendKind): void {
    this.events.push({ type: 'amended', orderId, userId, side, price, qty, kind });
  }
}
