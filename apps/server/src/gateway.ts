// The exchange gateway's core, shared by HTTP and WebSocket: turns checked client requests into
// engine commands (assigning order ids), waits for each command to be durable, and answers with its
// outcome; serves queries from the symbols' MarketStates; remembers recent client order ids so that
// a resubmission returns the original outcome instead of placing a second order. The ids are logged
// with the orders, so the window is rebuilt from the outbox's history after a restart.

import path from 'node:path';
import type { Command, Event } from '@gx3/codecs';
import { EngineError, type Engine, type SymbolActor } from '@gx3/engine';
import type { FileIO } from '@gx3/wal';
import type { InstrumentConfig, ServerConfig } from './config.js';
import { ApiError } from './errors.js';
import { EventFeed } from './event-feed.js';
import { MarketState, type OrderState, type PublicTrade } from './market-state.js';
import { invalid, type AmendOrder, type PlaceOrder } from './requests.js';
import type { User } from './auth.js';

export interface OrderResult {
  order: OrderView | undefined;
  events: Event[];
  /** True when this answers a resubmitted client order id (no new order was placed). */
  duplicate?: boolean;
}

/** An order as clients see it. */
export interface OrderView {
  orderId: number;
  symbol: string;
  user: string;
  side: string;
  type: string;
  tif: string;
  price: number;
  qty: number;
  filledQty: number;
  remainingQty: number;
  status: string;
  reason?: string;
  clientOrderId?: string;
  updatedAt: number;
}

/** What the gateway measures (the metrics module counts them). */
export interface GatewayObserver {
  command(kind: Command['type'], outcome: 'ok' | 'rejected' | 'refused', seconds: number): void;
}

const HISTORY_BYTES = 64 * 1024 * 1024;

export interface GatewayOptions {
  /** The file layer the feeds read the outboxes through (the engine's; tests inject faults). */
  readonly io?: FileIO;
  /** Called once when a symbol's feed stops (its outbox could not be read). */
  readonly onFeedFailure?: (symbol: string, err: Error) => void;
}

/**
 * What an order with a client order id asked for, to tell a resubmission from a different order
 * reusing the id. An undefined field is not compared: a market order has no price or tif; an order
 * recovered from an event logged before events carried the order's stp has no stp, and a rejected
 * one logged before rejections carried their orders has none of them.
 */
interface RequestPrint {
  readonly side?: string | undefined;
  readonly type?: string | undefined;
  readonly price?: number | undefined;
  readonly qty?: number | undefined;
  readonly tif?: string | undefined;
  readonly stp?: string | undefined;
}

interface Remembered {
  readonly request: RequestPrint;
  readonly result: Promise<OrderResult>;
}

function printOf(req: PlaceOrder): RequestPrint {
  const limit = req.type === 'limit';
  return { side: req.side, type: req.type, price: limit ? req.price : undefined, qty: req.qty, tif: limit ? req.tif : undefined, stp: req.stp };
}

function samePrint(a: RequestPrint, b: RequestPrint): boolean {
  const same = (x: unknown, y: unknown): boolean => x === undefined || y === undefined || x === y;
  return same(a.side, b.side) && same(a.type, b.type) && same(a.price, b.price) && same(a.qty, b.qty) && same(a.tif, b.tif) && same(a.stp, b.stp);
}

export class Gateway {
  readonly instruments: ReadonlyMap<string, InstrumentConfig>;
  readonly feeds = new Map<string, EventFeed>();
  private readonly nextOrderId = new Map<string, number>();
  private readonly clientOrders = new Map<string, Remembered>();
  /** Each user's remembered keys, oldest first: the window is per user (another user's orders push none out). */
  private readonly clientOrderKeys = new Map<number, Set<string>>();
  private closing = false;
  /** Each order's amendment under way (the next one of the same order waits for it). */
  private readonly amending = new Map<string, Promise<OrderResult>>();
  /** Amendments taken and not finished: a shutdown lets them finish before the engine closes. */
  private readonly amendsInFlight = new Set<Promise<unknown>>();

  constructor(
    readonly engine: Engine,
    private readonly config: ServerConfig,
    private readonly userName: (id: number) => string,
    private readonly observer?: GatewayObserver,
    options: GatewayOptions = {},
  ) {
    this.instruments = new Map(config.instruments.map((i) => [i.symbol, i]));
    try {
      this.openFeeds(engine, config, options);
    } catch (err) {
      // A feed that cannot read its history: the feeds opened before it are closed (their readers
      // hold the outbox files open), and the caller closes the rest.
      for (const f of this.feeds.values()) f.close();
      throw err;
    }
    this.recoverClientOrders();
  }

  private openFeeds(engine: Engine, config: ServerConfig, options: GatewayOptions): void {
    for (const inst of config.instruments) {
      const actor = this.actorOf(inst.symbol);
      this.feeds.set(
        inst.symbol,
        new EventFeed(actor, path.join(engine.dataDir, inst.symbol, 'ev'), engine.codec, {
          recentTrades: config.recentTrades,
          orderHistory: config.orderHistory,
          historyBytes: HISTORY_BYTES,
          clientOrderWindow: config.clientOrderIdWindow,
          ...(options.io === undefined ? {} : { io: options.io }),
          onFailure: (err) => options.onFeedFailure?.(inst.symbol, err),
        }),
      );
      this.nextOrderId.set(inst.symbol, actor.lastOrderId + 1);
    }
  }

  /**
   * Remembers the client order ids of the orders in the outbox's recent history (they are logged
   * with their commands), so that a client retrying across a restart gets the original outcome, not
   * a second order.
   */
  private recoverClientOrders(): void {
    // The orders of all symbols in the order they were taken (as the live window saw them), so
    // that trimming to the window keeps the newest ids whatever their symbol.
    for (const r of mergeByTime([...this.feeds.values()].map((f) => f.takeRecoveredClientOrders()))) {
      const a = r.accepted ?? r.rejected;
      const limit = r.accepted !== undefined ? r.accepted.orderType === 'limit' : r.rejected?.commandType === 'limit';
      const type = r.accepted !== undefined ? r.accepted.orderType : r.rejected?.commandType;
      // A rejection logged before rejections carried their orders says nothing: then nothing is compared.
      const request: RequestPrint =
        a?.side === undefined ? {} : { side: a.side, type, price: limit ? a.price : undefined, qty: a.qty, tif: limit ? a.tif : undefined, stp: a.stp };
      const key = clientOrderKey(r.userId, r.symbol, r.clientOrderId);
      // The order as recovered; one that has left the order history (it ended, and as many orders
      // ended after it) as its own command's events left it: the outcome first answered.
      const order = this.view(r.symbol, r.orderId) ?? this.viewFromEvents(r.symbol, r.orderId, r.events);
      this.remember(r.userId, key, { request, result: Promise.resolve({ order, events: r.events }) });
    }
  }

  /** Remembers a client order id as the user's newest, forgetting the user's oldest beyond the window. */
  private remember(userId: number, key: string, value: Remembered): void {
    this.clientOrders.set(key, value);
    let keys = this.clientOrderKeys.get(userId);
    if (keys === undefined) {
      keys = new Set();
      this.clientOrderKeys.set(userId, keys);
    }
    keys.delete(key);
    keys.add(key);
    while (keys.size > this.config.clientOrderIdWindow) {
      const oldest = keys.values().next().value as string;
      keys.delete(oldest);
      this.clientOrders.delete(oldest);
    }
  }

  private forget(userId: number, key: string): void {
    this.clientOrders.delete(key);
    this.clientOrderKeys.get(userId)?.delete(key);
  }

  /** Refuses new commands from now on (graceful shutdown). */
  stopIntake(): void {
    this.closing = true;
  }

  /** Amendments taken and not finished (those waiting for an earlier one of the same order included). */
  get amendmentsInFlight(): number {
    return this.amendsInFlight.size;
  }

  /** Resolves once the amendments taken before stopIntake() have finished (their second commands included). */
  async drained(): Promise<void> {
    while (this.amendsInFlight.size > 0) await Promise.allSettled([...this.amendsInFlight]);
  }

  instrument(symbol: string): InstrumentConfig {
    const inst = this.instruments.get(symbol);
    if (inst === undefined) throw new ApiError('UNKNOWN_SYMBOL', `unknown symbol ${JSON.stringify(symbol.slice(0, 40))}`);
    return inst;
  }

  feed(symbol: string): EventFeed {
    this.instrument(symbol);
    return this.feeds.get(symbol) as EventFeed;
  }

  /** Places an order; resolves with its outcome once durable. */
  place(user: User, req: PlaceOrder): Promise<OrderResult> {
    if (req.clientOrderId === undefined) return this.placeNew(user, req);
    const key = clientOrderKey(user.id, req.symbol, req.clientOrderId);
    const request = printOf(req);
    const seen = this.clientOrders.get(key);
    if (seen !== undefined) {
      if (!samePrint(seen.request, request)) {
        return Promise.reject(
          new ApiError('DUPLICATE_CLIENT_ORDER_ID', `clientOrderId ${req.clientOrderId} was used recently for a different order on ${req.symbol}`),
        );
      }
      return seen.result.then((r) => ({ ...r, duplicate: true }));
    }
    let taken = false;
    const result = this.placeNew(user, req, () => {
      taken = true;
    });
    // Remembered only once the engine took it: a refused command (never logged) leaves the id free
    // at once, also for a later order of the same WebSocket frame.
    if (!taken) return result;
    this.remember(user.id, key, { request, result });
    // A command that fails after it was taken (a halt) may be retried with the same client order id.
    result.catch(() => {
      if (this.clientOrders.get(key)?.result === result) this.forget(user.id, key);
    });
    return result;
  }

  private placeNew(user: User, req: PlaceOrder, onTaken?: () => void): Promise<OrderResult> {
    const orderId = this.nextOrderId.get(req.symbol) as number;
    // Literal objects of one shape per type (no spread): the engine's hot path sees few shapes.
    const cmd: Command =
      req.type === 'limit'
        ? { symbol: req.symbol, seq: 0, reqId: 0, orderId, userId: user.id, ts: 0, type: 'limit', side: req.side, price: req.price, qty: req.qty, tif: req.tif, stp: req.stp, clientOrderId: req.clientOrderId }
        : { symbol: req.symbol, seq: 0, reqId: 0, orderId, userId: user.id, ts: 0, type: 'market', side: req.side, qty: req.qty, stp: req.stp, clientOrderId: req.clientOrderId };
    return this.submit(cmd, () => {
      this.nextOrderId.set(req.symbol, orderId + 1);
      onTaken?.();
    }).then((r) => ({ order: this.answerView(req.symbol, orderId, r.order), events: r.events }));
  }

  cancel(user: User, symbol: string, orderId: number): Promise<OrderResult> {
    this.ownOrder(user, symbol, orderId, true);
    return this.command({ symbol, seq: 0, reqId: 0, orderId, userId: user.id, ts: 0, type: 'cancel' }, symbol, orderId);
  }

  amend(user: User, symbol: string, orderId: number, req: AmendOrder): Promise<OrderResult> {
    this.ownOrder(user, symbol, orderId, true);
    if (this.closing) return Promise.reject(new ApiError('SHUTTING_DOWN', 'the server is shutting down', 5));
    // One amendment of an order at a time: a quantity alone may take two commands, the second at
    // the price the view holds once the first is durable, and an amendment in between (a new
    // price) would be undone by it.
    const key = `${symbol}\u0000${orderId}`;
    const before = this.amending.get(key);
    const started = performance.now();
    const run = (): Promise<OrderResult> => this.amendNow(user, symbol, orderId, req, started);
    const result = before === undefined ? run() : before.then(run, run);
    this.amending.set(key, result);
    this.amendsInFlight.add(result);
    const done = (): void => {
      if (this.amending.get(key) === result) this.amending.delete(key);
      this.amendsInFlight.delete(result);
    };
    result.then(done, done);
    return result;
  }

  private amendNow(user: User, symbol: string, orderId: number, req: AmendOrder, started: number): Promise<OrderResult> {
    // The order as this gateway sees it may be older than the engine's (a fill, or another
    // amendment, may be processed and not durable yet), so what the request leaves out is resolved
    // by the engine: a quantity left out is qty 0, the quantity the order has left when the amend
    // is applied; and the book itself tells a reduction at the same price (which keeps time
    // priority) from a replace.
    const amend = (price: number, qty: number): Command => ({ symbol, seq: 0, reqId: 0, orderId, userId: user.id, ts: 0, type: 'amend', price, qty });
    // An order's quantity is what it has filled plus what it has open: a new open quantity that
    // would take it past 2^53 - 1 could not be told exactly (a reduction never can).
    const tooMuch = req.qty === undefined ? undefined : overflow(orderId, this.feeds.get(symbol)?.state.getOrder(orderId)?.filledQty ?? 0, req.qty);
    if (tooMuch !== undefined) return Promise.reject(tooMuch);
    if (req.price !== undefined) {
      return this.submit(amend(req.price, req.qty ?? 0), undefined, true, started, true, false).then((r) => this.outcome(r, 'amend', symbol, orderId));
    }
    const qty = req.qty as number;
    // A quantity alone: first as a reduction at whatever price the order has then (price 0). If it
    // is not one (the order has no more than `qty` left), it is a size increase at the order's
    // price: read once that refusal is durable, the gateway's view then holds every amendment
    // processed before it.
    // One request, one outcome in the metrics: the first attempt is counted only if it is the answer,
    // and the second is timed from the start of the first.
    return this.submit(amend(0, qty), undefined, false, started, true, false).then((first) => {
      const events = first.events;
      const refused = events.find((e) => e.type === 'rejected');
      const now = this.feeds.get(symbol)?.state.getOrder(orderId);
      if (refused?.reason === 'AMEND_NOT_REDUCING') {
        // Not a reduction, and the order ended meanwhile (canceled, filled): it is gone, as for a
        // PATCH that came after.
        if (now?.resting !== true) {
          this.observe('amend', events, started);
          throw new ApiError('ORDER_NOT_FOUND', `no open order ${orderId} on ${symbol}`);
        }
        // Checked again with the fills made durable since the first check.
        const tooMuchNow = overflow(orderId, now.filledQty, qty);
        if (tooMuchNow !== undefined) {
          this.observe('amend', events, started);
          throw tooMuchNow;
        }
        return this.submit(amend(now.price, qty), undefined, true, started, true).then((second) => this.outcome(second, 'amend', symbol, orderId));
      }
      this.observe('amend', events, started);
      return this.outcome(first, 'amend', symbol, orderId);
    });
  }

  getOrder(user: User, symbol: string, orderId: number): OrderView {
    this.ownOrder(user, symbol, orderId, false);
    return this.view(symbol, orderId) as OrderView;
  }

  book(symbol: string, depth: number): { symbol: string; seq: number; bids: [number, number][]; asks: [number, number][] } {
    const state = this.feed(symbol).state;
    return { symbol, seq: state.l2Seq, ...state.book(depth) };
  }

  trades(symbol: string, limit: number): PublicTrade[] {
    return this.feed(symbol).state.recentTrades(limit);
  }

  /**
   * The view of an order for a command's answer: as the command left it (`captured`, from the
   * feed), or, if that was not taken (null), as the state holds it now.
   */
  private answerView(symbol: string, orderId: number, captured: OrderState | undefined | null): OrderView | undefined {
    if (captured === null) return this.view(symbol, orderId);
    return captured === undefined ? undefined : toView(captured, this.userName(captured.userId));
  }

  /** The client's view of an order, if the state still holds it. */
  view(symbol: string, orderId: number): OrderView | undefined {
    const o = this.feeds.get(symbol)?.state.getOrder(orderId);
    return o === undefined ? undefined : toView(o, this.userName(o.userId));
  }

  /** The view of an order as `events` (those of the command that placed it) leave it. */
  private viewFromEvents(symbol: string, orderId: number, events: readonly Event[]): OrderView | undefined {
    const state = new MarketState(symbol, { orderHistory: 1, recentTrades: 1 });
    for (const e of events) state.apply(e);
    const o = state.getOrder(orderId);
    return o === undefined ? undefined : toView(o, this.userName(o.userId));
  }

  /** An order of `user` (404 if unknown, 403 if someone else's); with `live`, it must be resting. */
  private ownOrder(user: User, symbol: string, orderId: number, live: boolean): OrderState {
    const o = this.feed(symbol).state.getOrder(orderId);
    if (o === undefined) throw new ApiError('ORDER_NOT_FOUND', live ? `no open order ${orderId} on ${symbol}` : `no order ${orderId} on ${symbol}`);
    // Ownership before liveness: another user's order answers the same whether it still rests or
    // has ended, so that no one can watch another's orders fill or end by polling them.
    if (o.userId !== user.id) throw new ApiError('NOT_OWNER', `order ${orderId} on ${symbol} belongs to another user`);
    if (live && !o.resting) throw new ApiError('ORDER_NOT_FOUND', `no open order ${orderId} on ${symbol}`);
    return o;
  }

  private async command(cmd: Command, symbol: string, orderId: number): Promise<OrderResult> {
    return this.outcome(await this.submit(cmd), cmd.type, symbol, orderId);
  }

  /** The answer to a cancel or an amendment from its events (its rejection as an ApiError). */
  private outcome(submitted: Submitted, type: Command['type'], symbol: string, orderId: number): OrderResult {
    const events = submitted.events;
    const rejected = events.find((e) => e.type === 'rejected');
    if (rejected !== undefined) {
      const reason = rejected.reason;
      if (reason === 'UNKNOWN_ORDER') throw new ApiError('ORDER_NOT_FOUND', `no open order ${orderId} on ${symbol}`);
      if (reason === 'NOT_OWNER') throw new ApiError('NOT_OWNER', `order ${orderId} on ${symbol} belongs to another user`);
      throw new ApiError('REJECTED', `the engine rejected the ${type}: ${reason}`);
    }
    return { order: this.answerView(symbol, orderId, submitted.order), events };
  }

  /**
   * Submits a command and resolves with its events once durable; `taken` runs once the engine took
   * it. Its outcome and its time since `started` go to the metrics: a refusal always, the events
   * only with `observeEvents` (an attempt that another may follow is counted by its caller).
   */
  /**
   * With `continuing` (a command of a request already taken: an amendment's), a shutdown does not
   * refuse it. With `waitIfFull` (the second command of a request whose first is logged already),
   * a full mailbox is waited for instead of answered BACKPRESSURE; a request's first command meets
   * a full mailbox with BACKPRESSURE, as any other (nothing of it is logged).
   */
  private submit(cmd: Command, taken?: () => void, observeEvents = true, started = performance.now(), continuing = false, waitIfFull = continuing): Promise<Submitted> {
    if (this.closing && !continuing) return Promise.reject(new ApiError('SHUTTING_DOWN', 'the server is shutting down', 5));
    let actor: SymbolActor;
    try {
      actor = this.actorOf(cmd.symbol);
    } catch (err) {
      return rejected(err);
    }
    // Without its feed, the gateway's view of the symbol (orders, book, trades) no longer follows
    // the engine: what it would answer and what amendments resolve against could be wrong, and
    // market data has stopped. Only cancels, which need no view beyond ownership, are taken.
    const symbolFeed = this.feeds.get(cmd.symbol);
    const feedError = symbolFeed?.error;
    if (feedError !== undefined && cmd.type !== 'cancel') {
      this.observer?.command(cmd.type, 'refused', 0);
      return Promise.reject(
        new ApiError('HALTED', `${cmd.symbol} takes only cancels until the server is restarted: its market data stopped (reading the outbox failed: ${feedError.message})`, 30),
      );
    }
    const promise = actor.submit(cmd);
    // submit() takes the command synchronously (or refuses it): an accepted order id is used.
    const seq = cmd.seq;
    const wasTaken = actor.lastSubmittedSeq === seq && seq > 0;
    const feed = wasTaken ? symbolFeed : undefined;
    if (wasTaken) {
      feed?.capture(seq, cmd.orderId);
      taken?.();
    }
    return promise.then(
      ({ events }) => {
        if (observeEvents) this.observe(cmd.type, events, started);
        return { events, order: feed === undefined ? null : feed.takeCaptured(seq) };
      },
      (err: unknown) => {
        feed?.takeCaptured(seq);
        if (waitIfFull && err instanceof EngineError && (err.code === 'MAILBOX_FULL' || err.code === 'DURABILITY_BACKLOG')) {
          // Room comes as queued commands are processed (a full mailbox), or as applied ones
          // become durable (a backlog of commands not durable yet).
          const room =
            err.code === 'MAILBOX_FULL' && actor.queued > 0
              ? actor.waitForProcessed(actor.processedSeq + 1)
              : actor.lastSubmittedSeq > actor.durableSeq
                ? actor.waitForDurable(actor.durableSeq + 1)
                : Promise.resolve(); // room came meanwhile
          return room.then(
            () => this.submit(cmd, taken, observeEvents, started, continuing, true),
            (halted: unknown) => {
              // The symbol halted (or the engine closed) while waiting: refused as any other command.
              this.observer?.command(cmd.type, 'refused', (performance.now() - started) / 1000);
              throw engineToApi(halted);
            },
          );
        }
        this.observer?.command(cmd.type, 'refused', (performance.now() - started) / 1000);
        throw engineToApi(err, wasTaken ? cmd : undefined);
      },
    );
  }

  private observe(kind: Command['type'], events: readonly Event[], started: number): void {
    this.observer?.command(kind, events.some((e) => e.type === 'rejected') ? 'rejected' : 'ok', (performance.now() - started) / 1000);
  }

  private actorOf(symbol: string): SymbolActor {
    const actor = this.engine.actor(symbol);
    if (actor === undefined) throw new ApiError('UNKNOWN_SYMBOL', `unknown symbol ${JSON.stringify(symbol.slice(0, 40))}`);
    return actor;
  }

  close(): void {
    for (const f of this.feeds.values()) f.close();
  }
}

/** A command's outcome for its answer: its events, and its order's state as it left it (see EventFeed.capture; null: not taken). */
interface Submitted {
  readonly events: Event[];
  readonly order: OrderState | undefined | null;
}

/** The entries of lists each in time order, merged in time order (each list keeps its own order). */
function mergeByTime<T extends { readonly ts: number }>(lists: readonly (readonly T[])[]): T[] {
  const at = lists.map(() => 0);
  const out: T[] = [];
  for (;;) {
    let best = -1;
    for (let k = 0; k < lists.length; k++) {
      const head = lists[k]?.[at[k] as number];
      if (head !== undefined && (best < 0 || head.ts < (lists[best]?.[at[best] as number] as T).ts)) best = k;
    }
    if (best < 0) return out;
    out.push(lists[best]?.[at[best] as number] as T);
    at[best] = (at[best] as number) + 1;
  }
}

/** VALIDATION if an open quantity of `qty` would take an order that has filled `filled` lots past 2^53 - 1 lots. */
function overflow(orderId: number, filled: number, qty: number): ApiError | undefined {
  if (qty <= Number.MAX_SAFE_INTEGER - filled) return undefined;
  return invalid('qty', `with the ${filled} lots order ${orderId} has filled, a quantity of ${qty} would take it past ${Number.MAX_SAFE_INTEGER} lots`);
}

function clientOrderKey(userId: number, symbol: string, clientOrderId: string): string {
  return `${userId}\u0000${symbol}\u0000${clientOrderId}`;
}

function rejected(err: unknown): Promise<never> {
  return Promise.reject(err instanceof Error ? err : new Error(String(err)));
}

/**
 * The API's error for an engine's. With `taken`, the command was in the engine when it failed: a
 * halt then leaves its outcome unknown until a restart (it may be in the command log).
 */
export function engineToApi(err: unknown, taken?: Command): Error {
  if (err instanceof ApiError) return err;
  if (!(err instanceof EngineError)) return err as Error;
  switch (err.code) {
    case 'MAILBOX_FULL':
      return new ApiError('BACKPRESSURE', 'the engine is busy: retry shortly', 1);
    case 'DURABILITY_BACKLOG':
      return new ApiError('BACKPRESSURE', 'the engine is waiting for its disk: retry shortly', 1);
    case 'HALTED':
      return new ApiError(
        'HALTED',
        taken
          ? `the engine halted after an I/O error before this command (${takenWhat(taken)}) was durable: a restart carries it out if it reached the command log, and not otherwise (an order id whose command was lost is given again to a later order); resend an order with the same clientOrderId after the restart to learn which; no orders are taken until the restart`
          : 'the engine halted after an I/O error and takes no orders until it is restarted',
        30,
      );
    case 'CLOSED':
      return new ApiError('SHUTTING_DOWN', 'the server is shutting down', 5);
    case 'UNKNOWN_SYMBOL':
      return new ApiError('UNKNOWN_SYMBOL', err.message);
    case 'INVALID_COMMAND':
      return new ApiError('VALIDATION', err.message);
    case 'RECOVERY_FAILED':
    case 'LOCKED':
    case 'INVALID_CONFIG':
      return new ApiError('INTERNAL', err.message);
  }
}

/** What a command taken before a halt was, for its answer. */
function takenWhat(cmd: Command): string {
  switch (cmd.type) {
    case 'limit':
    case 'market':
      return `order ${cmd.orderId}`;
    case 'cancel':
      return `the cancel of order ${cmd.orderId}`;
    case 'amend':
      return `the amendment of order ${cmd.orderId}`;
  }
}

function toView(o: OrderState, user: string): OrderView {
  const v: OrderView = {
    orderId: o.orderId,
    symbol: o.symbol,
    user,
    side: o.side,
    type: o.type,
    tif: o.tif,
    price: o.price,
    qty: o.qty,
    filledQty: o.filledQty,
    remainingQty: o.remainingQty,
    status: o.status,
    updatedAt: o.updatedAt,
  };
  if (o.reason !== undefined) v.reason = o.reason;
  if (o.clientOrderId !== undefined) v.clientOrderId = o.clientOrderId;
  return v;
}
