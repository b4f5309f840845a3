// nodejs-order-book 10.1.1 as a compare subject, through its `OrderBook` (journaling off, its
// default).
//
// Mapping (read from dist/cjs/orderbook.js):
// - `L,<id>,<B|S>,<price>,<qty>[,<tif>]` -> `limit({ id, side: 'buy' | 'sell', size, price })`,
//   with `timeInForce: 'IOC' | 'FOK'` or `postOnly: true` for IOC, FOK and POST. Ids are strings in
//   its API: they are converted once per workload, before the timed part. Any `err` in the answer
//   (duplicate id, unfillable FOK, post-only that would match) counts as a reject.
// - `M,<id>,<B|S>,<qty>` -> `market({ side, size })`: market orders carry no id in its API, so the
//   workload's id is only used as the taker id of their fills.
// - `C,<id>` -> `cancel(id)`, which returns `undefined` for an id that is not resting (cancel reject).
// - `A` (reduce, keeping time priority) is not expressible: `modify(id, { size })` cancels and
//   re-enters the order, which loses its time priority (documented in its README).
//
// Fills come from the answers of `limit`/`market`: `done` lists the maker orders filled completely
// (with their quantity before the fill) and, when the incoming limit order filled completely, that
// order itself (skipped: same id as the taker); `partial` is the maker filled partly, with
// `partialQuantityProcessed` traded, unless it is the incoming order (it traded and rests). Fills
// are at the maker's price, in that order. The final book comes from the public `snapshot()`.

import { OrderBook, type NobLimitOptions, type NobProcessOrder, type NobSide } from 'nodejs-order-book';
import { BenchError } from '../errors.js';
import { OpKind, type Workload } from '../workload.js';
import { FillLog } from '../summary.js';
import { BookWalker, type CommandName, type CompareBook, type CompareSubject, type CompareSummary } from './book.js';

const SIDES: readonly NobSide[] = ['buy', 'sell'];

class NobBook implements CompareBook {
  private readonly book = new OrderBook();
  private readonly ids: readonly string[];
  private readonly fills: FillLog;
  private ops = 0;
  private cancels = 0;
  private cancelRejects = 0;
  private rejects = 0;

  constructor(private readonly w: Workload) {
    this.ids = Array.from(w.id, String);
    this.fills = new FillLog(w.length);
  }

  apply(from: number, to: number): void {
    const { kind, id, side, price, qty, tif } = this.w;
    const book = this.book;
    const ids = this.ids;
    for (let i = from; i < to; i++) {
      const sid = ids[i] as string;
      switch (kind[i]) {
        case OpKind.Limit: {
          const o: NobLimitOptions = { id: sid, side: SIDES[side[i] as number] as NobSide, size: qty[i] as number, price: price[i] as number };
          switch (tif[i]) {
            case 1:
              o.timeInForce = 'IOC';
              break;
            case 2:
              o.timeInForce = 'FOK';
              break;
            case 3:
              o.postOnly = true;
              break;
            default:
          }
          const r = book.limit(o);
          if (r.err !== null) this.rejects++;
          else this.record(r, sid, id[i] as number);
          break;
        }
        case OpKind.Market: {
          const r = book.market({ side: SIDES[side[i] as number] as NobSide, size: qty[i] as number });
          if (r.err !== null) this.rejects++;
          else this.record(r, sid, id[i] as number);
          break;
        }
        case OpKind.Cancel:
          if (book.cancel(sid) === undefined) this.cancelRejects++;
          else this.cancels++;
          break;
        default:
          throw new BenchError('BAD_ARGUMENT', 'nodejs-order-book cannot express a reduce that keeps time priority (A)');
      }
    }
    this.ops += to - from;
  }

  /** The fills of one answer, in order: makers filled completely, then the maker filled partly. */
  private record(r: NobProcessOrder, takerId: string, taker: number): void {
    for (const o of r.done) if (o.id !== takerId) this.fills.add(Number(o.id), taker, o.price, o.size);
    const p = r.partial;
    if (p !== null && p.id !== takerId) this.fills.add(Number(p.id), taker, p.price, r.partialQuantityProcessed);
  }

  summary(): CompareSummary {
    const snap = this.book.snapshot();
    const walker = new BookWalker();
    for (const level of snap.bids) for (const o of level.orders) walker.order(true, o.price, Number(o.id), o.size);
    for (const level of snap.asks) for (const o of level.orders) walker.order(false, o.price, Number(o.id), o.size);
    const book = walker.finish();
    return {
      ops: this.ops,
      trades: this.fills.count,
      volume: this.fills.volume,
      cancels: this.cancels,
      cancelRejects: this.cancelRejects,
      rejects: this.rejects,
      restingBids: book.restingBids,
      restingBidQty: book.restingBidQty,
      restingAsks: book.restingAsks,
      restingAskQty: book.restingAskQty,
      bestBid: book.bestBid,
      bestAsk: book.bestAsk,
      tradeHash: this.fills.hash(),
      bookHash: book.bookHash,
    };
  }
}

export const nodejsOrderBook: CompareSubject = {
  name: 'nodejs-order-book',
  supports: new Set<CommandName>(['L/GTC', 'L/IOC', 'L/FOK', 'L/POST', 'M', 'C']),
  create: (w) => new NobBook(w),
};
