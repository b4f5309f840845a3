// What the compare benchmark needs from one order book, whichever library it is: apply workload
// operations, and afterwards describe the outcome from the book's own outputs (fills, cancel
// answers) and its own final state. The summary fields are a subset of the replay summary of
// docs/workload-format.md, computed the same way (tradeHash and bookHash included).

import { createHash } from 'node:crypto';
import { ChunkedHasher } from '../summary.js';
import { OpKind, type Workload } from '../workload.js';

/** The outcome of a replay, as one book reports it. */
export interface CompareSummary {
  /** Operations applied. */
  ops: number;
  /** Fills: one per resting (maker) order touched. */
  trades: number;
  /** Quantity traded. */
  volume: number;
  cancels: number;
  cancelRejects: number;
  /** Limit orders refused. */
  rejects: number;
  restingBids: number;
  restingBidQty: number;
  restingAsks: number;
  restingAskQty: number;
  bestBid: number | null;
  bestAsk: number | null;
  /** First 16 hex digits of SHA-256 over `maker,taker,price,qty;` for every fill, in order. */
  tradeHash: string;
  /** The same over `side,price,id,remainingQty;` for every resting order, bids then asks, best first, in time priority. */
  bookHash: string;
}

/** The fields compared, in report order. */
export const COMPARED_FIELDS = [
  'ops',
  'trades',
  'volume',
  'cancels',
  'cancelRejects',
  'rejects',
  'restingBids',
  'restingBidQty',
  'restingAsks',
  'restingAskQty',
  'bestBid',
  'bestAsk',
  'tradeHash',
  'bookHash',
] as const satisfies readonly (keyof CompareSummary)[];

/** A command kind of the workload format: `L` with its time in force, `M`, `C` or `A`. */
export type CommandName = 'L/GTC' | 'L/IOC' | 'L/FOK' | 'L/POST' | 'M' | 'C' | 'A';
const TIF_NAMES = ['L/GTC', 'L/IOC', 'L/FOK', 'L/POST'] as const;

/** The command kind of operation `i`. */
export function commandName(w: Workload, i: number): CommandName {
  switch (w.kind[i]) {
    case OpKind.Limit:
      return TIF_NAMES[w.tif[i] as number] ?? 'L/GTC';
    case OpKind.Market:
      return 'M';
    case OpKind.Cancel:
      return 'C';
    default:
      return 'A';
  }
}

/** The command kinds a workload uses. */
export function commandsUsed(w: Workload): Set<CommandName> {
  const used = new Set<CommandName>();
  for (let i = 0; i < w.length; i++) used.add(commandName(w, i));
  return used;
}

/** One order book under comparison, built fresh (untimed) for each pass. */
export interface CompareBook {
  /** Applies operations [from, to) of the workload it was built for. This is what is timed. */
  apply(from: number, to: number): void;
  /** The outcome so far, from the book's own outputs and state (called after the timed part). */
  summary(): CompareSummary;
}

/** An order book library: its name, what it can express, and how to build a book for a workload. */
export interface CompareSubject {
  readonly name: string;
  /** The command kinds it can express faithfully; a workload with any other kind is refused. */
  readonly supports: ReadonlySet<CommandName>;
  create(w: Workload): CompareBook;
}

/** Builds the book part of a summary from resting orders visited bids first, then asks, each best price first and in time priority. */
export class BookWalker {
  bids = 0;
  bidQty = 0;
  asks = 0;
  askQty = 0;
  bestBid: number | null = null;
  bestAsk: number | null = null;
  private readonly h = createHash('sha256');
  private readonly chunk = new ChunkedHasher(this.h);

  /** `buy` orders must all come before the first sell order. */
  order(buy: boolean, price: number, id: number, qty: number): void {
    if (buy) {
      if (this.asks > 0) throw new Error('BookWalker: a bid after the asks');
      if (this.bids === 0) this.bestBid = price;
      this.bids++;
      this.bidQty += qty;
    } else {
      if (this.asks === 0) this.bestAsk = price;
      this.asks++;
      this.askQty += qty;
    }
    this.chunk.add(`${buy ? 'B' : 'S'},${price},${id},${qty};`);
  }

  finish(): Pick<CompareSummary, 'restingBids' | 'restingBidQty' | 'restingAsks' | 'restingAskQty' | 'bestBid' | 'bestAsk' | 'bookHash'> {
    this.chunk.end();
    return {
      restingBids: this.bids,
      restingBidQty: this.bidQty,
      restingAsks: this.asks,
      restingAskQty: this.askQty,
      bestBid: this.bestBid,
      bestAsk: this.bestAsk,
      bookHash: this.h.digest('hex').slice(0, 16),
    };
  }
}

/** One field on which two summaries differ. */
export interface Mismatch {
  field: (typeof COMPARED_FIELDS)[number];
  expected: number | string | null;
  actual: number | string | null;
}

/** The fields on which `actual` differs from `expected` (empty when they agree). */
export function compareSummaries(expected: CompareSummary, actual: CompareSummary): Mismatch[] {
  const out: Mismatch[] = [];
  for (const field of COMPARED_FIELDS) {
    if (!Object.is(expected[field], actual[field])) out.push({ field, expected: expected[field], actual: actual[field] });
  }
  return out;
}
