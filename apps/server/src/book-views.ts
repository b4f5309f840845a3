// What the WebSocket book subscribers of one depth were last sent, per symbol: the top `depth`
// levels of each side. A book update for them is the difference between that and the new top
// levels, so that a level entering the top (the next one, after the best is canceled) is sent, and
// one pushed out of it is sent with qty 0 (it may still exist deeper in the book). Every subscriber
// of a depth has been sent the same levels since its snapshot (each L2 update reaches all of them),
// so one view per depth serves them all, and its message is made once per update.

export interface BookSnapshot {
  readonly symbol: string;
  readonly seq: number;
  readonly bids: [number, number][];
  readonly asks: [number, number][];
}

interface TopView {
  /** The L2 sequence number the view is at. */
  seq: number;
  bids: Map<number, number>;
  asks: Map<number, number>;
  /** The update message that brought it to `seq`. */
  message: string;
  /** Subscriptions at this depth: the view is dropped when the last one ends. */
  subscribers: number;
}

export class BookViews {
  private readonly views = new Map<string, Map<number, TopView>>();

  constructor(private readonly book: (symbol: string, depth: number) => BookSnapshot) {}

  /**
   * The snapshot for a new subscriber of `depth` (counted: `release` ends the subscription); the
   * view of that depth restarts from it if it was not kept up to date.
   */
  snapshot(symbol: string, depth: number): BookSnapshot {
    const b = this.book(symbol, depth);
    let byDepth = this.views.get(symbol);
    if (byDepth === undefined) {
      byDepth = new Map();
      this.views.set(symbol, byDepth);
    }
    const v = byDepth.get(depth);
    if (v === undefined || v.seq !== b.seq) byDepth.set(depth, { seq: b.seq, bids: new Map(b.bids), asks: new Map(b.asks), message: '', subscribers: (v?.subscribers ?? 0) + 1 });
    else v.subscribers++;
    return b;
  }

  /** A subscription of `depth` ended: the view is forgotten once it has no subscriber left. */
  release(symbol: string, depth: number): void {
    const byDepth = this.views.get(symbol);
    const v = byDepth?.get(depth);
    if (byDepth === undefined || v === undefined) return;
    if (--v.subscribers <= 0) byDepth.delete(depth);
  }

  /** Views kept (for the tests: one per depth with subscribers). */
  get size(): number {
    let n = 0;
    for (const byDepth of this.views.values()) n += byDepth.size;
    return n;
  }

  /**
   * The `book.update` message (JSON) for the subscribers of `depth` once the book is at L2 sequence
   * number `seq` (one more than the view, or equal to it: then the message already made).
   */
  update(symbol: string, depth: number, seq: number): string {
    const byDepth = this.views.get(symbol);
    let v = byDepth?.get(depth);
    if (v !== undefined && v.seq === seq) return v.message;
    if (v === undefined) {
      // Not subscribed through `snapshot` (cannot happen): what it was sent is unknown, so the
      // update carries the whole top.
      v = { seq, bids: new Map(), asks: new Map(), message: '', subscribers: 0 };
      this.views.set(symbol, (byDepth ?? new Map<number, TopView>()).set(depth, v));
    }
    const b = this.book(symbol, depth);
    const bids = diff(v.bids, b.bids);
    const asks = diff(v.asks, b.asks);
    v.bids = new Map(b.bids);
    v.asks = new Map(b.asks);
    v.seq = seq;
    v.message = JSON.stringify({ type: 'book.update', symbol, seq, bids, asks });
    return v.message;
  }

  /**
   * After an update to L2 sequence number `seq` reached every subscriber: forgets the views that
   * were not brought to it (no subscriber of that depth is left).
   */
  prune(symbol: string, seq: number): void {
    const byDepth = this.views.get(symbol);
    if (byDepth === undefined) return;
    // A view with subscribers is kept even if it was not brought to `seq` (its subscribers were all
    // closing): the next update diffs from what it holds, and `release` drops it with the last one.
    for (const [d, v] of byDepth) if (v.seq !== seq && v.subscribers <= 0) byDepth.delete(d);
  }
}

/** The changes from `was` to `now`: levels gone (qty 0), new or changed. */
function diff(was: ReadonlyMap<number, number>, now: readonly [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  const next = new Map(now);
  for (const p of was.keys()) if (!next.has(p)) out.push([p, 0]);
  for (const [p, q] of now) if (was.get(p) !== q) out.push([p, q]);
  return out;
}
