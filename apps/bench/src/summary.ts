// The replay summary of the reference matcher (docs/workload-format.md): counters kept by an event
// sink during the replay, fills recorded into typed arrays (hashed after the timed part), and the
// book hash computed from the final book.

import { createHash, type Hash } from 'node:crypto';
import {
  AmendKind,
  CancelReason,
  CommandKind,
  Side,
  type BookEventSink,
  type OrderBook,
  type RejectReason,
} from '@gx3/orderbook';

export interface ReplaySummary {
  ops: number;
  trades: number;
  volume: number;
  cancels: number;
  cancelRejects: number;
  rejects: number;
  amends: number;
  amendRejects: number;
  restingBids: number;
  restingBidQty: number;
  restingAsks: number;
  restingAskQty: number;
  bestBid: number | null;
  bestAsk: number | null;
  tradeHash: string;
  bookHash: string;
}

/**
 * The fills a book reported, kept as numbers in typed arrays while timed (an allocation only when
 * they grow) and hashed afterwards: `tradeHash`, the first 16 hex digits of SHA-256 over
 * `maker,taker,price,qty;` for every fill in order. The replay's SummarySink and the compare's
 * adapters of other books record into one.
 */
export class FillLog {
  count = 0;
  volume = 0;
  private maker: Float64Array;
  private taker: Float64Array;
  private price: Float64Array;
  private qty: Float64Array;

  constructor(expected = 1 << 12) {
    const n = Math.max(16, expected);
    this.maker = new Float64Array(n);
    this.taker = new Float64Array(n);
    this.price = new Float64Array(n);
    this.qty = new Float64Array(n);
  }

  add(maker: number, taker: number, price: number, qty: number): void {
    const i = this.count;
    if (i === this.maker.length) this.grow();
    this.maker[i] = maker;
    this.taker[i] = taker;
    this.price[i] = price;
    this.qty[i] = qty;
    this.count = i + 1;
    this.volume += qty;
  }

  hash(): string {
    const h = createHash('sha256');
    const chunk = new ChunkedHasher(h);
    for (let i = 0; i < this.count; i++) chunk.add(`${this.maker[i]},${this.taker[i]},${this.price[i]},${this.qty[i]};`);
    chunk.end();
    return h.digest('hex').slice(0, 16);
  }

  private grow(): void {
    const n = this.maker.length * 2;
    const g = (a: Float64Array): Float64Array => {
      const b = new Float64Array(n);
      b.set(a);
      return b;
    };
    this.maker = g(this.maker);
    this.taker = g(this.taker);
    this.price = g(this.price);
    this.qty = g(this.qty);
  }
}

/** Counts what the summary needs and records every fill, allocating only when its arrays grow. */
export class SummarySink implements BookEventSink {
  readonly fills: FillLog;
  cancels = 0;
  cancelRejects = 0;
  rejects = 0;
  amends = 0;
  amendRejects = 0;

  constructor(expectedFills = 1 << 16) {
    this.fills = new FillLog(expectedFills);
  }

  get trades(): number {
    return this.fills.count;
  }

  get volume(): number {
    return this.fills.volume;
  }

  onAccepted(): void {}
  onAdded(): void {}
  onRejected(kind: CommandKind, _orderId: number, _reason: RejectReason): void {
    if (kind === CommandKind.Cancel) this.cancelRejects++;
    else if (kind === CommandKind.Amend) this.amendRejects++;
    else this.rejects++;
  }
  onTrade(makerId: number, takerId: number, _mu: number, _tu: number, _side: Side, price: number, qty: number): void {
    this.fills.add(makerId, takerId, price, qty);
  }
  onCanceled(_orderId: number, _userId: number, reason: CancelReason): void {
    if (reason === CancelReason.User) this.cancels++;
  }
  onAmended(_orderId: number, _userId: number, _side: Side, _price: number, _qty: number, kind: AmendKind): void {
    if (kind === AmendKind.Reduce) this.amends++;
  }

  /** First 16 hex digits of SHA-256 over `maker,taker,price,qty;` for every fill in order. */
  tradeHash(): string {
    return this.fills.hash();
  }
}

/** Feeds many small strings to a hash in large chunks. */
export class ChunkedHasher {
  private parts: string[] = [];
  private size = 0;
  constructor(private readonly h: Hash) {}
  add(s: string): void {
    this.parts.push(s);
    this.size += s.length;
    if (this.size > 1 << 16) this.flush();
  }
  end(): void {
    this.flush();
  }
  private flush(): void {
    if (this.parts.length > 0) this.h.update(this.parts.join(''));
    this.parts = [];
    this.size = 0;
  }
}

/** The final book's part of the summary: resting orders and quantities per side, best prices, bookHash. */
export type BookSummary = Pick<ReplaySummary, 'restingBids' | 'restingBidQty' | 'restingAsks' | 'restingAskQty' | 'bestBid' | 'bestAsk' | 'bookHash'>;

/** SHA-256 over `side,price,id,remainingQty;` for every resting order, bids then asks, each best price first and in time priority. */
export function summarizeBook(book: OrderBook): BookSummary {
  const bh = createHash('sha256');
  const chunk = new ChunkedHasher(bh);
  const rest = [
    [0, 0],
    [0, 0],
  ] as [[number, number], [number, number]];
  for (const side of [Side.Buy, Side.Sell]) {
    const tag = side === Side.Buy ? 'B' : 'S';
    const acc = rest[side];
    book.forEachOrder(side, (id, _user, price, qty) => {
      chunk.add(`${tag},${price},${id},${qty};`);
      acc[0]++;
      acc[1] += qty;
    });
  }
  chunk.end();
  return {
    restingBids: rest[0][0],
    restingBidQty: rest[0][1],
    restingAsks: rest[1][0],
    restingAskQty: rest[1][1],
    bestBid: book.bestBid,
    bestAsk: book.bestAsk,
    bookHash: bh.digest('hex').slice(0, 16),
  };
}

/** The summary of a finished replay. */
export function summarize(ops: number, sink: SummarySink, book: OrderBook): ReplaySummary {
  const b = summarizeBook(book);
  return {
    ops,
    trades: sink.trades,
    volume: sink.volume,
    cancels: sink.cancels,
    cancelRejects: sink.cancelRejects,
    rejects: sink.rejects,
    amends: sink.amends,
    amendRejects: sink.amendRejects,
    restingBids: b.restingBids,
    restingBidQty: b.restingBidQty,
    restingAsks: b.restingAsks,
    restingAskQty: b.restingAskQty,
    bestBid: b.bestBid,
    bestAsk: b.bestAsk,
    tradeHash: sink.tradeHash(),
    bookHash: b.bookHash,
  };
}
