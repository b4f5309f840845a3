// Follows one symbol's outbox in-process, up to what is durable, and applies each event to the
// symbol's MarketState; then tells its listeners what changed (the events, the orders they touched,
// the L2 levels). It is pumped synchronously whenever the actor's durable watermark advances, so
// the state a client reads after its command's acknowledgement already includes that command.
// At start it reads the outbox's tail (up to `historyBytes`) to seed the order history and the
// recent trades, then seeds the live orders and levels from the recovered book.

import { BinaryCodec, DecodedMessage, type AcceptedEvent, type Codec, type Event, type RejectedEvent, type TradeEvent } from '@gx3/codecs';
import type { SymbolActor } from '@gx3/engine';
import { Side as BookSide, TimeInForce as BookTif } from '@gx3/orderbook';
import { listSegments, nodeFileIO, WalReader, WalRecord, type FileIO } from '@gx3/wal';
import { MarketState, type L2Changes, type MarketStateOptions, type OrderState } from './market-state.js';

export interface FeedUpdate {
  readonly symbol: string;
  /** The trades among the events applied (the other events reach clients through their orders). */
  readonly trades: readonly TradeEvent[];
  readonly orders: readonly OrderState[];
  /** The L2 changes and the book's sequence number after them, if any level changed. */
  readonly l2: { readonly seq: number; readonly changes: L2Changes } | undefined;
}

export type FeedListener = (update: FeedUpdate) => void;

/** An order with a client order id, found in the outbox's history at start (for the gateway's de-duplication). */
export interface RecoveredClientOrder {
  readonly symbol: string;
  /** Its command's timestamp (one clock for every symbol: the orders of all symbols sort by it). */
  readonly ts: number;
  readonly seq: number;
  readonly userId: number;
  readonly orderId: number;
  readonly clientOrderId: string;
  /** Its accepted event; undefined for a rejected order. */
  readonly accepted: AcceptedEvent | undefined;
  /** Its rejected event; undefined for an accepted order. */
  readonly rejected: RejectedEvent | undefined;
  /** The events of its command: its outcome. */
  readonly events: Event[];
}

const TIF_NAMES = { [BookTif.GTC]: 'GTC', [BookTif.IOC]: 'IOC', [BookTif.FOK]: 'FOK', [BookTif.POST]: 'POST' } as const;

export class EventFeed {
  readonly state: MarketState;
  private readonly reader: WalReader;
  private readonly rec = new WalRecord();
  private readonly listeners = new Set<FeedListener>();
  private readonly unsubscribe: () => void;
  private failure: Error | undefined;
  private readonly onFailure: ((err: Error) => void) | undefined;
  private readonly binary: BinaryCodec | undefined;
  private readonly scratch = new DecodedMessage();
  /** While the history is read: each user's orders with client order ids, the last `clientOrderWindow` of them. */
  private recovered = new Map<number, RecoveredClientOrder[]>();
  /**
   * Orders to copy at the end of a command's events (`capture`): command seq → the order id and,
   * once its CmdEnd is applied, a copy of the order's state then (undefined: the state has no such
   * order). An answer reads the order as its own command left it, not as the later commands made
   * durable by the same sync (and applied with it) left it.
   */
  private readonly captures = new Map<number, { orderId: number; taken: boolean; order: OrderState | undefined }>();
  private readonly clientOrderWindow: number;

  constructor(
    private readonly actor: SymbolActor,
    evDir: string,
    private readonly codec: Codec,
    options: MarketStateOptions & {
      historyBytes: number;
      clientOrderWindow?: number;
      /** The file layer the outbox is read through (the engine's, so that tests can inject faults). */
      io?: FileIO;
      /** Called once if reading the outbox fails while running: the feed stops there. */
      onFailure?: (err: Error) => void;
    },
  ) {
    this.onFailure = options.onFailure;
    const io = options.io ?? nodeFileIO;
    this.clientOrderWindow = options.clientOrderWindow ?? 0;
    this.state = new MarketState(actor.symbol, options);
    this.binary = codec instanceof BinaryCodec ? codec : undefined;
    const end = actor.durableEventOffset;
    let from = 0;
    for (const s of listSegments(io, evDir)) if (s.base <= Math.max(0, end - options.historyBytes)) from = s.base;
    // Further back if an order still resting was placed before that: its accepted event, fills and
    // client order id are in the history, and an order rebuilt from the book alone would lose them.
    let oldestLive = Number.POSITIVE_INFINITY;
    for (const side of [BookSide.Buy, BookSide.Sell]) {
      actor.book.forEachOrder(side, (orderId) => {
        if (orderId < oldestLive) oldestLive = orderId;
      });
    }
    if (oldestLive !== Number.POSITIVE_INFINITY) from = Math.min(from, segmentOfOrder(io, evDir, codec, oldestLive, from));
    // Up to the events of the last durable command: the outbox alone may be durable ahead of it.
    this.reader = new WalReader(evDir, { from, end: () => this.actor.durableEventOffset, io });
    // History first: the book's effects of these events are in the recovered book already.
    try {
      this.read(undefined);
    } catch (err) {
      this.reader.close();
      throw err;
    }
    const live = new Set<number>();
    for (const side of [BookSide.Buy, BookSide.Sell]) {
      actor.book.forEachOrder(side, (orderId, userId, price, qty) => {
        live.add(orderId);
        const tif = actor.book.getOrder(orderId)?.timeInForce ?? BookTif.GTC;
        this.state.seedResting(orderId, userId, side === BookSide.Buy ? 'buy' : 'sell', price, qty, TIF_NAMES[tif]);
      });
    }
    this.state.dropUnseededLive(live);
    this.state.forgetPushedOut();
    this.state.takeChanges();
    // The L2 sequence goes on from the last event applied: each update before the restart applied at
    // least one event, so no number served then is above it (a client never sees a number again).
    this.state.l2Seq = Math.max(this.state.l2Seq, this.state.lastEventSeq);
    this.unsubscribe = actor.onDurable(() => {
      this.pump();
    });
  }

  onUpdate(listener: FeedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The error that stopped the feed (a corrupt outbox, a read that failed), if any. The market
   * state stays as it was then (what was read before the failure was applied and sent to the
   * listeners): the gateway then takes only cancels for the symbol.
   */
  get error(): Error | undefined {
    return this.failure;
  }

  /** Copies order `orderId`'s state once the events of command `seq` are applied (see `takeCaptured`). */
  capture(seq: number, orderId: number): void {
    this.captures.set(seq, { orderId, taken: false, order: undefined });
  }

  /**
   * The copy `capture` asked for, and forgets it: the order's state as command `seq` left it
   * (undefined if the state held no such order then), or null if it was not taken (the feed
   * stopped before that command's events, or nothing was asked).
   */
  takeCaptured(seq: number): OrderState | undefined | null {
    const c = this.captures.get(seq);
    if (c === undefined) return null;
    this.captures.delete(seq);
    return c.taken ? c.order : null;
  }

  /** Applies every durable event not applied yet and notifies the listeners. */
  pump(): void {
    if (this.failure) return;
    this.state.forgetPushedOut();
    const live = { trades: [] as TradeEvent[], touched: new Set<OrderState>(), applied: 0 };
    const { trades, touched } = live;
    try {
      this.read(live);
    } catch (err) {
      this.failure = err as Error;
      this.onFailure?.(this.failure);
      // What was applied before the failure still goes out (with its L2 sequence number): the
      // subscribers then hold the book that GET serves, under the same number.
    }
    if (live.applied === 0) return;
    const changes = this.state.takeChanges();
    const update: FeedUpdate = { symbol: this.state.symbol, trades, orders: [...touched], l2: changes ? { seq: this.state.l2Seq, changes } : undefined };
    for (const l of this.listeners) l(update);
  }

  close(): void {
    this.unsubscribe();
    this.reader.close();
  }

  /** The orders with client order ids found in the history at start, oldest first (handed over once). */
  takeRecoveredClientOrders(): RecoveredClientOrder[] {
    const all: RecoveredClientOrder[] = [];
    for (const r of this.recovered.values()) all.push(...(r.length > this.clientOrderWindow ? r.slice(r.length - this.clientOrderWindow) : r));
    this.recovered = new Map();
    return all.sort((a, b) => a.seq - b.seq);
  }

  /**
   * Applies the durable events not applied yet; returns how many (CmdEnd markers aside). `live`
   * collects the trades and the orders touched; without it (seeding from the outbox's history,
   * whose book effects the recovered book holds already) the L2 levels are left alone.
   */
  private read(live: { trades: TradeEvent[]; touched: Set<OrderState>; applied: number } | undefined): number {
    let n = 0;
    const binary = this.binary;
    const history = live === undefined && this.clientOrderWindow > 0;
    let order: RecoveredClientOrder | undefined;
    for (let r = this.reader.next(this.rec); r; r = this.reader.next(this.rec)) {
      // Decoded in place (no view of the record, no object per event): the binary codec then
      // reuses its DataView of the reader's window; only trades are copied out, for the listeners.
      const e = binary ? binary.decodeInto(r.buf, r.start, r.end - r.start, this.scratch) : (this.codec.decode(r.buf.subarray(r.start, r.end)) as Event);
      if (e.type === 'cmdEnd') {
        order = undefined;
        if (live !== undefined && this.captures.size !== 0) {
          const c = this.captures.get(e.seq);
          if (c !== undefined) {
            const o = this.state.getOrder(c.orderId);
            c.order = o === undefined ? undefined : { ...o };
            c.taken = true;
          }
        }
        continue;
      }
      if (history) order = this.recoverClientOrder(e, order);
      n++;
      this.state.apply(e, live !== undefined, live?.touched);
      if (live !== undefined) live.applied = n;
      if (live !== undefined && e.type === 'trade') live.trades.push((e instanceof DecodedMessage ? e.toMessage() : e) as TradeEvent);
    }
    return n;
  }

  /** Collects the history's orders with client order ids and their events; returns the one being collected. */
  private recoverClientOrder(e: Event | DecodedMessage, order: RecoveredClientOrder | undefined): RecoveredClientOrder | undefined {
    if (order !== undefined && e.seq === order.seq) {
      order.events.push(plain(e));
      return order;
    }
    const isOrder = e.type === 'accepted' || (e.type === 'rejected' && (e.commandType === 'limit' || e.commandType === 'market'));
    if (!isOrder || e.clientOrderId === undefined) return undefined;
    const first = plain(e);
    const started: RecoveredClientOrder = {
      symbol: e.symbol,
      ts: e.ts,
      seq: e.seq,
      userId: e.userId,
      orderId: e.orderId,
      clientOrderId: e.clientOrderId,
      accepted: first.type === 'accepted' ? first : undefined,
      rejected: first.type === 'rejected' ? first : undefined,
      events: [first],
    };
    let mine = this.recovered.get(e.userId);
    if (mine === undefined) {
      mine = [];
      this.recovered.set(e.userId, mine);
    }
    mine.push(started);
    // Bounded while reading: keep each user's last window's worth (and at most as much again).
    if (mine.length >= 2 * this.clientOrderWindow) this.recovered.set(e.userId, mine.slice(this.clientOrderWindow));
    return started;
  }
}

/**
 * The base of the segment that holds the accepted event of order `orderId`, or `below` if that is
 * in the segment starting at `below` or later (only the segments up to it are looked at). The gateway gives order ids in the order
 * it takes orders, so a segment whose first accepted order has a higher id starts after it: the
 * segments are tried from the newest back, each by its first accepted event. 0 if none tells.
 */
function segmentOfOrder(io: FileIO, evDir: string, codec: Codec, orderId: number, below: number): number {
  // The segment at `below` itself first: when the order is in it or after, nothing more is read.
  const segments = listSegments(io, evDir).filter((s) => s.base <= below);
  const scratch = new DecodedMessage();
  const binary = codec instanceof BinaryCodec ? codec : undefined;
  const rec = new WalRecord();
  for (let i = segments.length - 1; i >= 0; i--) {
    const seg = segments[i] as { base: number };
    const next = segments[i + 1]?.base ?? Number.POSITIVE_INFINITY;
    const reader = new WalReader(evDir, { from: seg.base, io });
    try {
      for (let r = reader.next(rec); r !== null && r.offset < next; r = reader.next(rec)) {
        const e = binary ? binary.decodeInto(r.buf, r.start, r.end - r.start, scratch) : (codec.decode(r.buf.subarray(r.start, r.end)) as Event);
        if (e.type !== 'accepted') continue;
        if (e.orderId <= orderId) return seg.base;
        break;
      }
    } finally {
      reader.close();
    }
  }
  return 0;
}

/** A plain event object of its own (a record decoded in place is copied out). */
function plain(e: Event | DecodedMessage): Event {
  return e instanceof DecodedMessage ? (e.toMessage() as Event) : e;
}
