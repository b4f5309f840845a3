// The market state's history of ended orders: it keeps the latest `orderHistory` of them (grown
// as orders end, not allocated up front), forgets the older ones, and never forgets a live order.

import type { Event } from '@gx3/codecs';
import { describe, expect, it } from 'vitest';
import { MarketState } from '../src/market-state.js';

const SYM = 'BTCUSDT';

function driver(state: MarketState): { place: (orderId: number, rest: boolean) => void; cancel: (orderId: number) => void } {
  let eventSeq = 0;
  let seq = 0;
  const apply = (e: Event): void => {
    state.apply(e);
  };
  return {
    place(orderId, rest) {
      seq++;
      state.forgetPushedOut(); // as the feed does before each update
      apply({ symbol: SYM, seq, eventSeq: ++eventSeq, ts: seq, type: 'accepted', orderType: 'limit', orderId, userId: 1, side: 'buy', price: 100, qty: 1, tif: rest ? 'GTC' : 'IOC' });
      if (rest) apply({ symbol: SYM, seq, eventSeq: ++eventSeq, ts: seq, type: 'added', orderId, userId: 1, side: 'buy', price: 100, qty: 1 });
      else apply({ symbol: SYM, seq, eventSeq: ++eventSeq, ts: seq, type: 'canceled', orderId, userId: 1, reason: 'UNFILLED', qty: 1 });
    },
    cancel(orderId) {
      seq++;
      state.forgetPushedOut();
      apply({ symbol: SYM, seq, eventSeq: ++eventSeq, ts: seq, type: 'canceled', orderId, userId: 1, reason: 'USER', qty: 1 });
    },
  };
}

describe('the history of ended orders', () => {
  for (const orderHistory of [1, 3, 4096, 5000, 10_000]) {
    it(`orderHistory ${orderHistory}: the latest ${orderHistory} ended orders are kept, the older forgotten, live orders never`, () => {
      const state = new MarketState(SYM, { orderHistory, recentTrades: 10 });
      const d = driver(state);
      const ended: number[] = [];
      const live: number[] = [];
      let id = 0;
      const total = orderHistory * 2 + 1500;
      for (let k = 0; k < total; k++) {
        id++;
        // Every 7th order rests (live), and every 3rd live one is canceled later.
        if (id % 7 === 0) {
          d.place(id, true);
          live.push(id);
        } else {
          d.place(id, false);
          ended.push(id);
        }
        if (id % 21 === 0) {
          const victim = live.shift() as number;
          d.cancel(victim);
          ended.push(victim);
        }
      }
      state.forgetPushedOut();
      const kept = new Set(ended.slice(-orderHistory));
      for (const e of ended) {
        const o = state.getOrder(e);
        if (kept.has(e)) expect(o?.status, `ended order ${e}`).toBe('canceled');
        else expect(o, `order ${e} ended before the latest ${orderHistory}`).toBeUndefined();
      }
      for (const l of live) expect(state.getOrder(l)?.status, `live order ${l}`).toBe('open');
    });
  }
});
