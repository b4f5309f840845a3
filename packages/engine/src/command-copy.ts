// The mailbox's copy of a command, taken when the command is logged. One object literal per type,
// always with the same properties in the same order, so that the actor's hot path sees one shape
// per type whatever shapes its callers build.

import type { Command } from '@gx3/codecs';

export function copyCommand(c: Command): Command {
  switch (c.type) {
    case 'limit':
      return {
        type: 'limit',
        symbol: c.symbol,
        seq: c.seq,
        reqId: c.reqId,
        orderId: c.orderId,
        userId: c.userId,
        ts: c.ts,
        side: c.side,
        price: c.price,
        qty: c.qty,
        tif: c.tif,
        stp: c.stp,
        clientOrderId: c.clientOrderId,
      };
    case 'market':
      return { type: 'market', symbol: c.symbol, seq: c.seq, reqId: c.reqId, orderId: c.orderId, userId: c.userId, ts: c.ts, side: c.side, qty: c.qty, stp: c.stp, clientOrderId: c.clientOrderId };
    case 'cancel':
      return { type: 'cancel', symbol: c.symbol, seq: c.seq, reqId: c.reqId, orderId: c.orderId, userId: c.userId, ts: c.ts };
    case 'amend':
      return { type: 'amend', symbol: c.symbol, seq: c.seq, reqId: c.reqId, orderId: c.orderId, userId: c.userId, ts: c.ts, price: c.price, qty: c.qty };
  }
}
