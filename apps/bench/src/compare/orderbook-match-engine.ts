// orderbook-match-engine 2.0.0 as a compare subject, through its synchronous `Orderbook` (the
// matching core; its `Engine` only adds async hooks and an event emitter around the same calls).
//
// Mapping (read from lib/orderbook.js):
// - `L,<id>,<B|S>,<price>,<qty>` (GTC) -> `add(id, side, price, qty)`. Sides: TRADE_SIDE.BID is 1
//   and ASK is 0, the reverse of gx3's codes. Prices and quantities are passed as numbers and held
//   as `Decimal`s (string based, exact for integers). `add` matches at the maker's level price while
//   the best opposite level crosses, one Trade per maker order touched, then rests the remainder.
//   It throws on a duplicate live id, which counts as a reject.
// - `C,<id>` -> `cancel(id)`, which throws `NOT FOUND ORDERID` for an id that is not resting: that
//   is the library's only way to answer a cancel of a filled, canceled or unknown order, so the
//   adapter catches it and counts a cancel reject (the throw, with its stack trace, is timed: it is
//   the library's cost of that answer).
// - No time in force (IOC, FOK, post-only), no market order, no reduce/amend: not expressible.
//   (An IOC could be emulated with add + cancel, but that is a different command sequence, so the
//   compare workload simply does not use them.)
//
// Fills come from the Trade objects that `add` returns (makerOrderId, takerOrderId, tradePrice,
// tradeQuantity). The final book comes from the library's state: the public `getBids`/`getAsks`
// (levels with aggregated quantity; `limit` is raised so that they list every level) and, because
// no public call lists orders, its private per-side level arrays and their order lists, read after
// the timed part; the two are checked against each other.

import { createRequire } from 'node:module';
import type * as OmeModule from 'orderbook-match-engine';
import type { Order, Trade } from 'orderbook-match-engine';
import { BenchError } from '../errors.js';
import { OpKind, type Workload } from '../workload.js';
import { FillLog } from '../summary.js';
import { BookWalker, type CommandName, type CompareBook, type CompareSubject, type CompareSummary } from './book.js';

// A CommonJS package whose named exports Node's ESM loader cannot detect (they are getters over
// `__importDefault(...)`), and whose default export is its async Engine: `require` gives the same
// module object under Node and under vitest.
const ome = createRequire(import.meta.url)('orderbook-match-engine') as typeof OmeModule;

type Decimal = Trade['tradePrice'];
type Orderbook = InstanceType<typeof ome.Orderbook>;

/** The parts of the library's private state that the final summary reads. */
interface OmeNode {
  readonly order: Order;
  readonly next: OmeNode | null;
}
interface OmeLevel {
  readonly price: Decimal;
  readonly totalQuantity: Decimal;
  readonly head: OmeNode | null;
}
interface OmeState {
  readonly bidSorted: readonly OmeLevel[];
  readonly askSorted: readonly OmeLevel[];
  readonly orderIdMap: ReadonlyMap<number, unknown>;
}

const BID = ome.TRADE_SIDE.BID;
const ASK = ome.TRADE_SIDE.ASK;

function num(d: Decimal): number {
  const v = d.getValue();
  if (v === null || !Number.isSafeInteger(v)) throw new Error(`orderbook-match-engine: not an integer: ${d.toString()}`);
  return v;
}

function isError(err: unknown, prefix: string): boolean {
  return err instanceof Error && err.message.startsWith(prefix);
}

class OmeBook implements CompareBook {
  private readonly book: Orderbook = new ome.Orderbook({ limit: Number.MAX_SAFE_INTEGER });
  private readonly fills: FillLog;
  private ops = 0;
  private cancels = 0;
  private cancelRejects = 0;
  private rejects = 0;

  constructor(private readonly w: Workload) {
    this.fills = new FillLog(w.length);
  }

  apply(from: number, to: number): void {
    const { kind, id, side, price, qty, tif } = this.w;
    const book = this.book;
    const fills = this.fills;
    for (let i = from; i < to; i++) {
      const oid = id[i] as number;
      switch (kind[i]) {
        case OpKind.Limit: {
          if (tif[i] !== 0) throw new BenchError('BAD_ARGUMENT', `orderbook-match-engine cannot express a limit order with time in force code ${tif[i]}`);
          let trades: Trade[];
          try {
            trades = book.add(oid, side[i] === 0 ? BID : ASK, price[i] as number, qty[i] as number).trades;
          } catch (err) {
            if (!isError(err, 'DUPLICATE ORDERID')) throw err;
            this.rejects++;
            break;
          }
          for (const t of trades) fills.add(t.makerOrderId, t.takerOrderId, num(t.tradePrice), num(t.tradeQuantity));
          break;
        }
        case OpKind.Cancel:
          try {
            book.cancel(oid);
            this.cancels++;
          } catch (err) {
            if (!isError(err, 'NOT FOUND ORDERID')) throw err;
            this.cancelRejects++;
          }
          break;
        default:
          throw new BenchError('BAD_ARGUMENT', `orderbook-match-engine cannot express operation kind ${kind[i]} (market or amend)`);
      }
    }
    this.ops += to - from;
  }

  summary(): CompareSummary {
    const state = this.book as unknown as OmeState;
    if (!Array.isArray(state.bidSorted) || !Array.isArray(state.askSorted) || !(state.orderIdMap instanceof Map)) {
      throw new Error('orderbook-match-engine: bidSorted, askSorted and orderIdMap are not where version 2.0.0 keeps them');
    }
    const walker = new BookWalker();
    const walk = (levels: readonly OmeLevel[], pub: readonly { price: string; quantity: string }[], buy: boolean): void => {
      if (pub.length !== levels.length) throw new Error('orderbook-match-engine: public and private level counts differ');
      levels.forEach((level, k) => {
        const price = num(level.price);
        let levelQty = 0;
        for (let n = level.head; n !== null; n = n.next) {
          const q = num(n.order.leaveQuantity);
          levelQty += q;
          walker.order(buy, price, n.order.orderId, q);
        }
        const p = pub[k];
        if (p === undefined || Number(p.price) !== price || Number(p.quantity) !== levelQty) {
          throw new Error(`orderbook-match-engine: level ${price} lists ${levelQty} lots in its orders, ${p?.quantity ?? 'none'} publicly`);
        }
      });
    };
    walk(state.bidSorted, this.book.getBids(), true);
    walk(state.askSorted, this.book.getAsks(), false);
    const book = walker.finish();
    if (book.restingBids + book.restingAsks !== state.orderIdMap.size) {
      throw new Error(`orderbook-match-engine: ${state.orderIdMap.size} ids mapped but ${book.restingBids + book.restingAsks} orders on its levels`);
    }
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

export const orderbookMatchEngine: CompareSubject = {
  name: 'orderbook-match-engine',
  supports: new Set<CommandName>(['L/GTC', 'C']),
  create: (w) => new OmeBook(w),
};
