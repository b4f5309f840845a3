// gx3's own order book as a compare subject: the replay's book (sized for the workload, pools that
// never grow while timed), its apply loop and its summary sink, unchanged.

import type { OrderBook } from '@gx3/orderbook';
import { apply, bookFor } from '../replay.js';
import { summarize, SummarySink } from '../summary.js';
import type { Workload } from '../workload.js';
import type { CommandName, CompareBook, CompareSubject, CompareSummary } from './book.js';

class Gx3Book implements CompareBook {
  private readonly sink: SummarySink;
  private readonly book: OrderBook;
  private ops = 0;

  constructor(private readonly w: Workload) {
    this.sink = new SummarySink(w.length);
    this.book = bookFor(w, this.sink);
  }

  apply(from: number, to: number): void {
    apply(this.book, this.w, from, to);
    this.ops += to - from;
  }

  summary(): CompareSummary {
    const s = summarize(this.ops, this.sink, this.book);
    return {
      ops: s.ops,
      trades: s.trades,
      volume: s.volume,
      cancels: s.cancels,
      cancelRejects: s.cancelRejects,
      rejects: s.rejects,
      restingBids: s.restingBids,
      restingBidQty: s.restingBidQty,
      restingAsks: s.restingAsks,
      restingAskQty: s.restingAskQty,
      bestBid: s.bestBid,
      bestAsk: s.bestAsk,
      tradeHash: s.tradeHash,
      bookHash: s.bookHash,
    };
  }
}

export const gx3: CompareSubject = {
  name: 'gx3',
  supports: new Set<CommandName>(['L/GTC', 'L/IOC', 'L/FOK', 'L/POST', 'M', 'C', 'A']),
  create: (w) => new Gx3Book(w),
};
